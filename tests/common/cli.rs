//! Running the `envcrypt` tool (the `envcrypt-cli` crate in `cli/`) from the CLI tests: the
//! binary, a command for it, one run's outcome, a scratch directory. Shared by
//! `tests/cli*.rs` (each uses part of it).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The library features this test binary was built with; the tool's crate passes them
/// through under the same names.
pub fn features() -> Vec<&'static str> {
    [
        ("aws-lc-rs", cfg!(feature = "aws-lc-rs")),
        ("fips", cfg!(feature = "fips")),
        ("rust-crypto", cfg!(feature = "rust-crypto")),
        ("openssl", cfg!(feature = "openssl")),
        ("aws-kms", cfg!(feature = "aws-kms")),
        ("aws-s3", cfg!(feature = "aws-s3")),
        ("pkcs11", cfg!(feature = "pkcs11")),
        ("tokio", cfg!(feature = "tokio")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The tool with this test binary's features, as a private copy.
///
/// The first call runs `cargo build -p envcrypt-cli` with those features (a no-op when the
/// binary is current; `ENVCRYPT_CLI_NO_BUILD=1` skips it), then
/// copies the binary: other test binaries sharing the target directory may rebuild it with
/// other features while these tests run. `ENVCRYPT_BIN` names a binary to use instead.
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("ENVCRYPT_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <target>/<profile>/deps")
            .to_path_buf();
        if std::env::var_os("ENVCRYPT_CLI_NO_BUILD").is_none() {
            build(&profile_dir);
        }
        let built = profile_dir.join(format!("envcrypt{}", std::env::consts::EXE_SUFFIX));
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_copies(tmp);
        let copy = tmp.join(format!("envcrypt-cli-{}", std::process::id()));
        fs::copy(&built, &copy).unwrap_or_else(|e| {
            panic!(
                "copy {}: {e} (build it with `cargo build -p envcrypt-cli`)",
                built.display()
            )
        });
        copy
    })
}

fn build(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "-p",
            "envcrypt-cli",
            "--no-default-features",
        ])
        .arg("--features")
        .arg(features().join(","));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target_dir);
    }
    let status = cmd.status().expect("run cargo build -p envcrypt-cli");
    assert!(status.success(), "cargo build -p envcrypt-cli failed");
}

/// Copies left by test processes that are gone.
fn remove_stale_copies(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("envcrypt-cli-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// The tool with `args`, run in `dir`.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir);
    cmd
}

/// What one run of the tool did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Wall time of the run.
    pub took: Duration,
}

impl Out {
    pub fn stdout_str(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("UTF-8 stdout")
    }

    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success, stderr: {}", self.stderr);
        self
    }

    /// Exit `code` and, as CLI.md says, one line on stderr saying what failed.
    #[track_caller]
    pub fn fails(self, code: i32) -> Self {
        let out = self.fails_each(code);
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "error must be one line: {:?}",
            out.stderr
        );
        out
    }

    /// Exit `code`; every stderr line (one per failed file of a folder) is an `envcrypt:`
    /// message.
    #[track_caller]
    pub fn fails_each(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, stderr: {}",
            self.stderr
        );
        assert!(!self.stderr.is_empty());
        for line in self.stderr.lines() {
            assert!(line.starts_with("envcrypt: "), "{:?}", self.stderr);
        }
        self
    }
}

/// Runs `cmd`, feeding it `stdin` if given (else an empty stdin).
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Out {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn envcrypt");
    let mut child_stdin = child.stdin.take().expect("stdin");
    let input = stdin.map(<[u8]>::to_vec);
    let feeder = std::thread::spawn(move || {
        if let Some(data) = input {
            // The tool may stop reading early (an error): ignore a broken pipe.
            let _ = child_stdin.write_all(&data);
        }
    });
    let output = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder");
    Out {
        code: output.status.code().expect("exit code (not a signal)"),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Runs the tool in `dir` with `args`, feeding `stdin` if given.
pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Out {
    run(command(dir, args), stdin)
}

/// A scratch directory the tool runs in, with the file helpers every CLI test needs (test
/// files add their own on top: `use tool::Scratch as Env; impl Env { ... }`).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A new, empty directory.
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the tool here with an empty stdin.
    pub fn run(&self, args: &[&str]) -> Out {
        run_in(self.dir.path(), args, None)
    }

    /// Runs the tool here, feeding it `stdin`.
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        run_in(self.dir.path(), args, Some(stdin))
    }

    /// Writes a file, making its folders.
    pub fn write(&self, name: &str, data: &[u8]) {
        let p = self.path(name);
        fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        fs::write(p, data).expect("write");
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }
}
