//! The `envcrypt` tool as people use it: folders (`-r`), pipes between processes (a 1 GiB
//! stream with flat memory), the progress bar under a pseudo-terminal, and messages that the
//! Python AWS Encryption SDK reads and writes. Each test runs the built tool on
//! real files (the binary of `tests/common/cli.rs`).
//!
//! Needs `script` (util-linux) for the pseudo-terminal tests and the Python ESDK
//! (`ENVCRYPT_PYTHON`, else `target/esdk-venv/bin/python`; see `tests/interop_python.rs`).

#[path = "common/cli.rs"]
mod tool;

#[path = "common/python.rs"]
mod python;

use python::Esdk;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tool::{bin, run_in, Scratch as Env};

const KEY: &str = "raw-aes:hospital-a:imaging:key";

/// A scratch directory with a key.
impl Env {
    fn new() -> Self {
        let env = Self::empty();
        env.run(&["keygen", "aes256", "-o", "key"]).ok();
        env
    }

    /// Every regular file under `name` (relative path → bytes); links are not followed.
    fn tree(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        collect(&self.path(name), Path::new(""), &mut out);
        out
    }

    /// Runs the tool under a pseudo-terminal (`script`): returns the exit code and what the
    /// terminal showed (stdout and stderr together).
    fn run_pty(&self, args: &[&str]) -> (i32, String) {
        let mut cmd = format!("cd {} && {}", quote(self.dir.path()), quote(bin()));
        for a in args {
            cmd.push(' ');
            cmd.push_str(&quote(Path::new(a)));
        }
        let out = Command::new("script")
            .args(["-qfec", &cmd, "/dev/null"])
            // CI runners often say TERM=dumb, which turns the bar off on purpose.
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .output()
            .expect("run `script` (util-linux) for the pseudo-terminal tests");
        (
            out.status.code().expect("exit code"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

fn collect(dir: &Path, rel: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let r = rel.join(e.file_name());
        if t.is_dir() {
            collect(&e.path(), &r, out);
        } else if t.is_file() {
            out.insert(r.display().to_string(), fs::read(e.path()).unwrap());
        }
    }
}

/// Asserts no temporary file of the library is left under `dir`.
#[track_caller]
fn no_temp_files(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".envcrypt-"),
                "left behind: {}",
                e.path().display()
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

/// Deterministic bytes: splitmix64 of a counter, so a stream can be regenerated cheaply.
fn fill(buf: &mut [u8], offset: u64, seed: u64) {
    assert_eq!(offset % 8, 0);
    for (i, chunk) in (offset / 8..).zip(buf.chunks_mut(8)) {
        let mut z = (i ^ seed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill(&mut v, 0, seed);
    v
}

/// Writes a study: `series` folders of `per` files of varying sizes (one empty).
fn make_study(env: &Env, name: &str, series: usize, per: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for s in 0..series {
        for i in 0..per {
            let rel = format!("series-{s:02}/IM{i:04}.dcm");
            let len = (s * per + i) * 97 % 6000;
            let data = payload(len, (s * 1000 + i) as u64);
            env.write(&format!("{name}/{rel}"), &data);
            files.insert(rel, data);
        }
    }
    files
}

fn with_enc(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files.keys().map(|k| format!("{k}.enc")).collect()
}

// ---------------------------------------------------------------------------------------
// folders

#[test]
fn folder_of_200_small_files_round_trips() {
    let env = Env::new();
    let study = make_study(&env, "study", 10, 20);
    assert_eq!(study.len(), 200);
    let out = env
        .run(&[
            "encrypt",
            "-k",
            KEY,
            "-c",
            "purpose=archive",
            "-r",
            "-o",
            "upload",
            "study",
        ])
        .ok();
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr in a pipe: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    let up = env.tree("upload");
    assert_eq!(up.keys().cloned().collect::<Vec<_>>(), with_enc(&study));
    // One message per file, each with its own message id.
    let ids: std::collections::BTreeSet<Vec<u8>> = up.values().map(|m| m[3..35].to_vec()).collect();
    assert_eq!(ids.len(), 200);
    let h: Value = serde_json::from_slice(
        &env.run(&["inspect", "upload/series-03/IM0007.dcm.enc"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(h["encryption_context"]["purpose"], "archive");

    let out = env
        .run(&[
            "decrypt",
            "-k",
            KEY,
            "-c",
            "purpose=archive",
            "-r",
            "-o",
            "back",
            "upload",
        ])
        .ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(env.tree("back"), study);
    assert_eq!(env.tree("study"), study, "inputs untouched");
    no_temp_files(env.dir.path());

    // Every file fails the context check: exit 1, one line per file and a summary, and the
    // folder the run created is gone again.
    let out = env
        .run(&[
            "decrypt",
            "-k",
            KEY,
            "-c",
            "purpose=other",
            "-r",
            "-o",
            "bad",
            "upload",
        ])
        .fails_each(1);
    assert_eq!(out.stderr_lines().len(), 201, "{}", out.stderr);
    assert!(
        out.stderr.contains("200 of 200 files failed"),
        "{}",
        out.stderr
    );
    assert!(!env.exists("bad"), "nothing partial left behind");

    // --threads 1 processes one file at a time, same result.
    env.run(&[
        "encrypt",
        "--threads",
        "1",
        "-k",
        KEY,
        "-r",
        "-o",
        "up1",
        "study",
    ])
    .ok();
    env.run(&[
        "decrypt",
        "--threads",
        "1",
        "-k",
        KEY,
        "-r",
        "-o",
        "back1",
        "up1",
    ])
    .ok();
    assert_eq!(env.tree("back1"), study);
}

#[test]
fn folder_of_large_files_round_trips() {
    let env = Env::new();
    let mut files = BTreeMap::new();
    for (i, len) in [(0u64, 40 << 20), (1, (17 << 20) + 1), (2, (5 << 20) - 3)] {
        let rel = format!("ct/volume-{i}.raw");
        let data = payload(len, 77 + i);
        env.write(&format!("big/{rel}"), &data);
        files.insert(rel, data);
    }
    env.run(&[
        "encrypt", "-k", KEY, "--suite", "0478", "-r", "-o", "up", "big",
    ])
    .ok();
    let up = env.tree("up");
    assert_eq!(up.keys().cloned().collect::<Vec<_>>(), with_enc(&files));
    env.run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
        .ok();
    assert_eq!(env.tree("back"), files);
    no_temp_files(env.dir.path());
}

/// Whether process `pid` is writing an output under `dir`: it holds an unnamed `O_TMPFILE`
/// there (`/proc` shows `DIR/#INODE (deleted)`) or a named `.envcrypt-*.tmp`.
fn writing_under(pid: u32, dir: &Path) -> bool {
    let Ok(dir) = fs::canonicalize(dir) else {
        return false;
    };
    let fds = fs::read_dir(format!("/proc/{pid}/fd"));
    fds.into_iter().flatten().flatten().any(|fd| {
        fs::read_link(fd.path()).is_ok_and(|target| {
            let name = target.to_string_lossy();
            target.starts_with(&dir)
                && (name.ends_with(" (deleted)") || name.contains("/.envcrypt-"))
        })
    })
}

#[test]
fn an_interrupted_folder_run_keeps_finished_files_and_starts_no_more() {
    let env = Env::new();
    let mut files = BTreeMap::new();
    for i in 0..16u64 {
        let rel = format!("IM{i:04}.dcm");
        let data = payload(8 << 20, 500 + i);
        env.write(&format!("study/{rel}"), &data);
        files.insert(rel, data);
    }
    // One file at a time, in 1 KiB frames: slow enough to be caught mid-way.
    let child = tool::command(
        env.dir.path(),
        &[
            "encrypt",
            "-q",
            "-k",
            KEY,
            "--threads",
            "1",
            "--frame-length",
            "1024",
            "-r",
            "-o",
            "up",
            "study",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn the tool");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writing_under(child.id(), &env.path("up")) {
        assert!(Instant::now() < deadline, "no file was started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let [line] = lines[..] else {
        panic!("one line: {stderr}");
    };
    let written: usize = line
        .strip_prefix("envcrypt: interrupted; ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(
        line,
        format!("envcrypt: interrupted; {written} of 16 files written under up")
    );
    assert!(written < 16, "{line}");
    no_temp_files(env.dir.path());
    // What was written is complete: it decrypts to its source.
    let up = if written > 0 {
        env.tree("up")
    } else {
        BTreeMap::new()
    };
    assert_eq!(up.len(), written);
    if written > 0 {
        env.run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
            .ok();
        for (rel, data) in env.tree("back") {
            assert_eq!(&data, &files[&rel], "{rel}");
        }
    }
}

#[test]
fn one_corrupt_file_is_reported_and_the_rest_succeed() {
    let env = Env::new();
    let study = make_study(&env, "study", 4, 5);
    env.run(&["encrypt", "-k", KEY, "-r", "-o", "up", "study"])
        .ok();
    let victim = "up/series-02/IM0003.dcm.enc";
    let original = env.read(victim);
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    env.write(victim, &bad);
    let before = env.tree("up");

    let out = env
        .run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
        .fails_each(1);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].contains("series-02/IM0003.dcm.enc"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("1 of 20 files failed"), "{}", lines[1]);
    let back = env.tree("back");
    let mut expected = study.clone();
    expected.remove("series-02/IM0003.dcm");
    assert_eq!(
        back, expected,
        "the other 19 decrypted, nothing for the corrupt one"
    );
    assert_eq!(env.tree("up"), before, "inputs untouched");
    no_temp_files(env.dir.path());

    // A truncated file as well, and an existing output (usage, 2): the exit code is the
    // most serious failure (1).
    let t = "up/series-00/IM0001.dcm.enc";
    let m = env.read(t);
    env.write(t, &m[..m.len() - 7]);
    fs::remove_dir_all(env.path("back")).unwrap();
    env.write("back/series-01/IM0000.dcm", b"precious");
    let out = env
        .run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
        .fails_each(1);
    assert!(
        out.stderr.contains("3 of 20 files failed"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(env.read("back/series-01/IM0000.dcm"), b"precious");
    assert!(!env.exists("back/series-00/IM0001.dcm"));
    assert_eq!(env.tree("back").len(), 18);

    // Only an existing output: exit 2. An unreadable entry (a dangling link followed): 3,
    // which outranks 2.
    env.write(victim, &original);
    env.write(t, &m);
    let fresh_back = || {
        fs::remove_dir_all(env.path("back")).unwrap();
        env.write("back/series-01/IM0000.dcm", b"precious");
    };
    fresh_back();
    let out = env
        .run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
        .fails_each(2);
    assert!(
        out.stderr.contains("1 of 20 files failed"),
        "{}",
        out.stderr
    );
    assert_eq!(env.tree("back").len(), 20);
    fresh_back();
    symlink("no-such-target.enc", env.path("up/dangling.enc")).unwrap();
    let out = env
        .run(&[
            "decrypt",
            "-k",
            KEY,
            "-r",
            "--follow-symlinks",
            "-o",
            "back",
            "up",
        ])
        .fails_each(3);
    assert!(out.stderr.contains("dangling.enc"), "{}", out.stderr);
    assert!(
        out.stderr.contains("2 of 21 files failed"),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("back/series-01/IM0000.dcm"), b"precious");
    assert_eq!(env.tree("back").len(), 20);
    no_temp_files(env.dir.path());
}

#[test]
fn symbolic_links_are_skipped_unless_followed() {
    let env = Env::new();
    env.write("study/a.dcm", b"aaaa");
    env.write("elsewhere/b.dcm", b"bbbb");
    symlink("a.dcm", env.path("study/link-to-a.dcm")).unwrap();
    symlink("../elsewhere", env.path("study/linked-dir")).unwrap();
    symlink(".", env.path("study/loop")).unwrap(); // study/loop -> study

    let out = env
        .run(&["encrypt", "-k", KEY, "-r", "-o", "up", "study"])
        .ok();
    assert_eq!(env.tree("up").keys().collect::<Vec<_>>(), ["a.dcm.enc"]);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 3, "{}", out.stderr);
    assert!(lines
        .iter()
        .all(|l| l.contains("skipped") && l.contains("symbolic link")));
    // -q: no notes.
    let out = env
        .run(&["encrypt", "-q", "-k", KEY, "-r", "-o", "up-q", "study"])
        .ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // Followed: the file link and the linked folder become messages; the loop is cut.
    let out = env
        .run(&[
            "encrypt",
            "-k",
            KEY,
            "-r",
            "--follow-symlinks",
            "-o",
            "up2",
            "study",
        ])
        .ok();
    assert_eq!(
        env.tree("up2").keys().collect::<Vec<_>>(),
        ["a.dcm.enc", "link-to-a.dcm.enc", "linked-dir/b.dcm.enc"]
    );
    assert!(
        out.stderr.contains("study/loop") && out.stderr.contains("loop"),
        "{}",
        out.stderr
    );
    env.run(&["decrypt", "-k", KEY, "-r", "-o", "back2", "up2"])
        .ok();
    assert_eq!(env.read("back2/linked-dir/b.dcm"), b"bbbb");
    assert_eq!(env.read("back2/link-to-a.dcm"), b"aaaa");
    // INPUT itself may be a link to a folder.
    symlink("study", env.path("study-link")).unwrap();
    env.run(&["encrypt", "-q", "-k", KEY, "-r", "-o", "up3", "study-link"])
        .ok();
    assert!(env.exists("up3/a.dcm.enc"));
}

#[test]
fn decrypting_a_folder_skips_files_without_enc() {
    let env = Env::new();
    env.write("study/x.dcm", b"x");
    env.run(&["encrypt", "-k", KEY, "-r", "-o", "up", "study"])
        .ok();
    env.write("up/README.txt", b"not a message");
    env.write("up/.enc", b"no name left");
    let out = env
        .run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
        .ok();
    assert_eq!(env.tree("back").keys().collect::<Vec<_>>(), ["x.dcm"]);
    assert_eq!(out.stderr_lines().len(), 2, "{}", out.stderr);
    assert!(out.stderr.contains("README.txt") && out.stderr.contains("does not end in .enc"));
    let out = env
        .run(&["decrypt", "-q", "-k", KEY, "-r", "-o", "back-q", "up"])
        .ok();
    assert!(out.stderr.is_empty());
    // An empty folder is fine and writes nothing.
    fs::create_dir(env.path("empty")).unwrap();
    env.run(&["encrypt", "-k", KEY, "-r", "-o", "empty-out", "empty"])
        .ok();
    assert!(env.tree("empty-out").is_empty());
}

#[test]
fn folder_outputs_need_force_and_usage_errors() {
    let env = Env::new();
    let study = make_study(&env, "study", 2, 3);
    env.run(&["encrypt", "-k", KEY, "-r", "-o", "up", "study"])
        .ok();
    let first = env.tree("up");
    let out = env
        .run(&["encrypt", "-k", KEY, "-r", "-o", "up", "study"])
        .fails_each(2);
    assert!(out.stderr.contains("6 of 6 files failed"), "{}", out.stderr);
    assert_eq!(env.tree("up"), first, "nothing replaced without --force");
    env.run(&["encrypt", "-k", KEY, "-r", "--force", "-o", "up", "study"])
        .ok();
    let second = env.tree("up");
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    assert!(
        second.iter().all(|(k, v)| first[k] != *v),
        "all replaced with --force"
    );
    env.run(&["decrypt", "-k", KEY, "-r", "-o", "back", "up"])
        .ok();
    assert_eq!(env.tree("back"), study);

    // OUTDIR inside INPUT, or INPUT itself: refused before anything is written.
    for outdir in ["study/enc", "study", "study/series-00/../x", "./study/y/z"] {
        let out = env
            .run(&["encrypt", "-k", KEY, "-r", "-o", outdir, "study"])
            .fails_each(2);
        assert!(
            out.stderr.contains("or inside it"),
            "{outdir}: {}",
            out.stderr
        );
        assert_eq!(out.stderr_lines().len(), 1);
    }
    assert_eq!(env.tree("study"), study);
    // -r needs a folder and -o; a folder needs -r; OUTDIR may not be a file.
    env.write("file", b"data");
    for args in [
        &["encrypt", "-k", KEY, "-r", "study"][..],
        &["encrypt", "-k", KEY, "-r", "-o", "x", "file"],
        &["encrypt", "-k", KEY, "-r", "-o", "x", "-"],
        &["encrypt", "-k", KEY, "-r", "-o", "file", "study"],
        &["encrypt", "-k", KEY, "-o", "x", "study"],
        &["encrypt", "-k", KEY, "--follow-symlinks", "-o", "x", "file"],
        &["decrypt", "-k", KEY, "-o", "x", "up"],
    ] {
        let out = env.run(args).fails_each(2);
        assert_eq!(out.stderr_lines().len(), 1, "{args:?}: {}", out.stderr);
    }
    let out = env
        .run(&["encrypt", "-k", KEY, "-o", "x", "study"])
        .fails_each(2);
    assert!(out.stderr.contains("-r"), "{}", out.stderr);
    env.run(&["encrypt", "-k", KEY, "-r", "-o", "x", "no-such-dir"])
        .fails_each(3);
    assert!(!env.exists("x"));
}

// ---------------------------------------------------------------------------------------
// progress bar

#[test]
fn progress_bar_under_a_terminal_and_not_in_a_pipe() {
    let env = Env::new();
    env.write("scan.dcm", &payload(6 << 20, 5));
    let (code, screen) = env.run_pty(&["encrypt", "-k", KEY, "-o", "scan.dcm.enc", "scan.dcm"]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("encrypt ["), "{screen:?}");
    assert!(
        screen.contains("100%") && screen.contains("6.0 MiB / 6.0 MiB"),
        "{screen:?}"
    );
    assert!(screen.contains("MiB/s"), "{screen:?}");
    let (code, screen) = env.run_pty(&["decrypt", "-k", KEY, "-o", "back.dcm", "scan.dcm.enc"]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("decrypt [") && screen.contains("100%"),
        "{screen:?}"
    );
    assert_eq!(env.read("back.dcm"), env.read("scan.dcm"));
    // One bar for a whole folder, with a file count.
    make_study(&env, "study", 3, 4);
    let (code, screen) = env.run_pty(&["encrypt", "-k", KEY, "-r", "-o", "up", "study"]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("12/12 files"), "{screen:?}");
    assert_eq!(screen.matches('\n').count(), 1, "one bar: {screen:?}");
    // -q: nothing on the terminal.
    let (code, screen) = env.run_pty(&["encrypt", "-q", "-k", KEY, "-o", "q.enc", "scan.dcm"]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.is_empty(), "{screen:?}");

    // In pipes: nothing on stderr (file to file, stdin to stdout, folders).
    for args in [
        &["encrypt", "-k", KEY, "-o", "p.enc", "scan.dcm"][..],
        &["decrypt", "-k", KEY, "-o", "p.out", "p.enc"],
        &["decrypt", "-k", KEY, "-r", "-o", "back", "up"],
    ] {
        let out = env.run(args).ok();
        assert!(out.stderr.is_empty(), "{args:?}: {:?}", out.stderr);
    }
    let out = run_in(
        env.dir.path(),
        &["encrypt", "-k", KEY],
        Some(&payload(3 << 20, 1)),
    )
    .ok();
    assert!(out.stderr.is_empty());
}

#[test]
fn terminal_guard_rails() {
    let env = Env::new();
    env.write("p", b"data");
    env.run(&["encrypt", "-k", KEY, "-o", "p.enc", "p"]).ok();
    // Binary output to a terminal is refused (exit 2); text output (inspect, info) is fine.
    for args in [
        &["encrypt", "-k", KEY, "p"][..],
        &["decrypt", "-k", KEY, "p.enc"],
    ] {
        let (code, screen) = env.run_pty(args);
        assert_eq!(code, 2, "{args:?}: {screen}");
        assert!(
            screen.contains("refusing to write binary output to a terminal"),
            "{screen}"
        );
    }
    let (code, screen) = env.run_pty(&["inspect", "p.enc"]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("\"suite_id\": \"0x0578\""), "{screen}");
    // No INPUT with a terminal on stdin: refused rather than waiting for typing.
    let (code, screen) = env.run_pty(&["decrypt", "-k", KEY, "-o", "x"]);
    assert_eq!(code, 2, "{screen}");
    assert!(screen.contains("stdin is a terminal"), "{screen}");
    assert!(!env.exists("x"));
}

// ---------------------------------------------------------------------------------------
// pipes between processes

/// Peak resident set size (VmHWM) of a running process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `envcrypt encrypt | envcrypt decrypt` over OS pipes: `len` bytes in, checked out.
/// Returns the peak RSS of each child in KiB and the seconds taken.
fn pipe_chain(env: &Env, len: u64, encrypt_extra: &[&str]) -> (u64, u64, f64) {
    const CHUNK: usize = 1 << 20;
    const SEED: u64 = 0xD1C0_1234;
    let started = Instant::now();
    let mut enc = Command::new(bin())
        .args(["encrypt", "-k", KEY])
        .args(encrypt_extra)
        .current_dir(env.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut dec = Command::new(bin())
        .args(["decrypt", "-k", KEY, "-"])
        .current_dir(env.dir.path())
        .stdin(Stdio::from(enc.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (enc_pid, dec_pid) = (enc.id(), dec.id());
    let done = Arc::new(AtomicBool::new(false));
    let peaks = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let monitor = {
        let (done, peaks) = (Arc::clone(&done), Arc::clone(&peaks));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(k) = vm_hwm_kib(enc_pid) {
                    peaks.0.fetch_max(k, Ordering::Relaxed);
                }
                if let Some(k) = vm_hwm_kib(dec_pid) {
                    peaks.1.fetch_max(k, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut stdin = enc.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        let mut off = 0u64;
        while off < len {
            let n = (len - off).min(CHUNK as u64) as usize;
            fill(&mut buf[..n], off, SEED);
            stdin.write_all(&buf[..n]).expect("feed encrypt");
            off += n as u64;
        }
    });
    let mut out = dec.stdout.take().unwrap();
    let mut got = vec![0u8; CHUNK];
    let mut want = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        // Read whole chunks so they line up with the generator.
        let mut n = 0;
        while n < CHUNK {
            match out.read(&mut got[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        if n == 0 {
            break;
        }
        assert!(off + n as u64 <= len, "more output than input");
        fill(&mut want[..n], off, SEED);
        assert!(
            got[..n] == want[..n],
            "output differs in the chunk at {off}"
        );
        off += n as u64;
    }
    writer.join().unwrap();
    let mut enc_err = String::new();
    enc.stderr
        .take()
        .unwrap()
        .read_to_string(&mut enc_err)
        .unwrap();
    let mut dec_err = String::new();
    dec.stderr
        .take()
        .unwrap()
        .read_to_string(&mut dec_err)
        .unwrap();
    // The last samples are taken while the children are still alive (zombies have no VmHWM).
    let enc_status = enc.wait().unwrap();
    let dec_status = dec.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    assert!(enc_status.success(), "encrypt: {enc_err}");
    assert!(dec_status.success(), "decrypt: {dec_err}");
    assert!(
        enc_err.is_empty() && dec_err.is_empty(),
        "{enc_err}{dec_err}"
    );
    assert_eq!(off, len, "all the data came back");
    (
        peaks.0.load(Ordering::Relaxed),
        peaks.1.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn stdin_to_stdout_through_pipes_both_suites() {
    let env = Env::new();
    for suite in ["0578", "0478"] {
        for len in [0, 1, 65_536, 1_000_003] {
            pipe_chain(&env, len, &["--suite", suite]);
        }
    }
    // A file into a pipe and a pipe into a file.
    env.write("p", &payload(300_000, 9));
    let enc = env.run(&["encrypt", "-k", KEY, "p"]).ok().stdout;
    let out = run_in(
        env.dir.path(),
        &["decrypt", "-k", KEY, "-o", "p.out"],
        Some(&enc),
    )
    .ok();
    assert!(out.stdout.is_empty());
    assert_eq!(env.read("p.out"), env.read("p"));
}

#[test]
fn one_gib_stream_through_a_pipe_with_flat_memory() {
    const GIB: u64 = 1 << 30;
    const LIMIT_KIB: u64 = 64 * 1024;
    let env = Env::new();
    let (enc_kib, dec_kib, secs) = pipe_chain(&env, GIB, &[]);
    eprintln!(
        "1 GiB through encrypt | decrypt in {secs:.1} s; peak RSS encrypt {:.1} MiB, decrypt {:.1} MiB",
        enc_kib as f64 / 1024.0,
        dec_kib as f64 / 1024.0
    );
    assert!(enc_kib > 0 && dec_kib > 0, "RSS was sampled");
    assert!(enc_kib < LIMIT_KIB, "encrypt peak RSS {enc_kib} KiB");
    assert!(dec_kib < LIMIT_KIB, "decrypt peak RSS {dec_kib} KiB");
}

// ---------------------------------------------------------------------------------------
// the Python AWS Encryption SDK reads what the tool writes, and the reverse

#[test]
fn python_esdk_reads_the_tools_messages_and_the_reverse() {
    let env = Env::new();
    let key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(29).wrapping_add(3))
        .collect();
    env.write("interop.key", &key); // 32 raw bytes: the tool reads raw or base64
    let spec = "raw-aes:hospital-a:interop-key:interop.key";
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let peer_key =
        serde_json::json!({"namespace": "hospital-a", "name": "interop-key", "hex": hex});
    let p = |name: &str| env.path(name).display().to_string();

    // The tool encrypts: files (both suites), a pipe, and a folder.
    let plains: [(&str, Vec<u8>); 3] = [
        ("a.dcm", payload(200_001, 1)),
        ("b.dcm", Vec::new()),
        ("c.dcm", payload(65_536 * 3, 3)),
    ];
    let mut cases = Vec::new();
    for (i, (name, data)) in plains.iter().enumerate() {
        env.write(name, data);
        let suite = ["0578", "0478"][i % 2];
        env.run(&[
            "encrypt",
            "-k",
            spec,
            "-c",
            "dept=radiology",
            "--suite",
            suite,
            "--frame-length",
            "4096",
            "-o",
            &format!("{name}.enc"),
            name,
        ])
        .ok();
        cases.push(serde_json::json!({"id": format!("tool-{name}"), "op": "decrypt", "key": peer_key,
            "input": p(&format!("{name}.enc")), "output": p(&format!("{name}.py")), "api": "stream"}));
    }
    let piped = env.run(&["encrypt", "-k", spec]).ok().stdout; // empty stdin
    env.write("piped.enc", &piped);
    let stdin_data = payload(100_000, 4);
    let piped2 = run_in(env.dir.path(), &["encrypt", "-k", spec], Some(&stdin_data))
        .ok()
        .stdout;
    env.write("piped2.enc", &piped2);
    for name in ["piped", "piped2"] {
        cases.push(
            serde_json::json!({"id": format!("tool-{name}"), "op": "decrypt", "key": peer_key,
            "input": p(&format!("{name}.enc")), "output": p(&format!("{name}.py"))}),
        );
    }
    make_study(&env, "study", 1, 3);
    env.run(&["encrypt", "-k", spec, "-r", "-o", "up", "study"])
        .ok();
    cases.push(
        serde_json::json!({"id": "tool-folder", "op": "decrypt", "key": peer_key,
        "input": p("up/series-00/IM0002.dcm.enc"), "output": p("folder.py")}),
    );

    // The Python SDK encrypts, the tool decrypts.
    for (suite, frame) in [("0578", 65_536), ("0478", 4096), ("0578", 128)] {
        let id = format!("py-{suite}-{frame}");
        cases.push(
            serde_json::json!({"id": id, "op": "encrypt", "key": peer_key,
            "input": p("a.dcm"), "output": p(&format!("{id}.enc")), "suite": suite,
            "frame_length": frame, "context": {"dept": "radiology", "site": "north"}}),
        );
    }
    env.write(
        "job.json",
        serde_json::json!({"cases": cases}).to_string().as_bytes(),
    );
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/esdk_peer.py");
    let out = Command::new(python::python(Esdk::V4))
        .arg(&peer)
        .arg(env.path("job.json"))
        .arg(env.path("results.json"))
        .output()
        .expect("run the Python peer");
    assert!(
        out.status.success(),
        "peer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&env.read("results.json")).unwrap();
    let results = results["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for r in results {
        assert_eq!(r["ok"], true, "{r}");
    }
    for (name, data) in &plains {
        assert_eq!(
            &env.read(&format!("{name}.py")),
            data,
            "Python decrypted {name}.enc"
        );
    }
    assert!(env.read("piped.py").is_empty());
    assert_eq!(env.read("piped2.py"), stdin_data);
    assert_eq!(
        env.read("folder.py"),
        env.read("study/series-00/IM0002.dcm")
    );
    let a = &plains[0].1;
    for (suite, frame) in [("0578", 65_536), ("0478", 4096), ("0578", 128)] {
        let id = format!("py-{suite}-{frame}");
        let h: Value =
            serde_json::from_slice(&env.run(&["inspect", &format!("{id}.enc")]).ok().stdout)
                .unwrap();
        assert_eq!(h["suite_id"], format!("0x{suite}"));
        assert_eq!(h["frame_length"], frame);
        env.run(&[
            "decrypt",
            "-k",
            spec,
            "-c",
            "dept=radiology",
            "-c",
            "site=north",
            "-o",
            &format!("{id}.out"),
            &format!("{id}.enc"),
        ])
        .ok();
        assert_eq!(&env.read(&format!("{id}.out")), a, "{id}");
        let piped = run_in(
            env.dir.path(),
            &["decrypt", "-k", spec],
            Some(&env.read(&format!("{id}.enc"))),
        )
        .ok()
        .stdout;
        assert_eq!(&piped, a, "{id} through a pipe");
        env.run(&[
            "decrypt",
            "-k",
            spec,
            "-c",
            "site=south",
            &format!("{id}.enc"),
        ])
        .fails_each(1);
    }
    // A folder of Python messages decrypts with -r.
    fs::create_dir(env.path("py-folder")).unwrap();
    for (suite, frame) in [("0578", 65_536), ("0478", 4096)] {
        let id = format!("py-{suite}-{frame}");
        fs::copy(
            env.path(&format!("{id}.enc")),
            env.path(&format!("py-folder/{id}.enc")),
        )
        .unwrap();
    }
    env.run(&["decrypt", "-k", spec, "-r", "-o", "py-back", "py-folder"])
        .ok();
    assert_eq!(&env.read("py-back/py-0478-4096"), a);
}
