//! `envcrypt rewrap` (key rotation, CLI.md "rewrap"): one file to `-o`, stdout or in place,
//! folders with `-r`, the skip rules that make re-runs idempotent, no laundering of bad
//! messages, and an in-place run killed at random points. Each test runs the built tool (the
//! binary of `tests/common/cli.rs`) on real files; the library side is `tests/rewrap.rs`.
//!
//! The interoperability test needs the Python ESDK (`ENVCRYPT_PYTHON`, else
//! `target/esdk-venv/bin/python`; see `tests/interop_python.rs`): missing, it fails.

#[path = "common/cli.rs"]
mod tool;

#[path = "common/python.rs"]
mod python;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tool::{Out, Scratch as Env};

const KA: &str = "raw-aes:hosp:key-a:ka.key";
const KB: &str = "raw-aes:hosp:key-b:kb.key";
const KC: &str = "raw-aes:lab:key-c:kc.key";
const SUMMARY_CLEAN: &str = "rewrapped 0, skipped 0, failed 0";

impl Env {
    /// A scratch directory with three AES keys (mode 0600, as keygen writes them).
    fn new() -> Self {
        let env = Self::empty();
        for key in ["ka.key", "kb.key", "kc.key"] {
            env.run(&["keygen", "aes256", "-o", key]).ok();
            let mode = fs::metadata(env.path(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        env
    }

    /// Encrypts `plain` into the message `name` under the keyrings `keys`, with `extra`
    /// arguments (suite, context, frame length).
    fn encrypt(&self, name: &str, plain: &[u8], keys: &[&str], extra: &[&str]) {
        let src = format!("{}.plain", name.replace('/', "-"));
        self.write(&src, plain);
        if let Some(dir) = self.path(name).parent() {
            fs::create_dir_all(dir).unwrap();
        }
        let mut args = vec!["encrypt", "-q"];
        for k in keys {
            args.extend(["-k", k]);
        }
        args.extend(extra);
        args.extend(["-o", name, &src]);
        self.run(&args).ok();
        fs::remove_file(self.path(&src)).unwrap();
    }

    /// `rewrap -q ARGS...`.
    fn rewrap(&self, args: &[&str]) -> Out {
        let mut all = vec!["rewrap", "-q"];
        all.extend(args);
        self.run(&all)
    }

    /// Decrypts `name` with `key` to stdout.
    fn decrypt(&self, key: &str, name: &str) -> Out {
        self.run(&["decrypt", "-q", "-k", key, name])
    }

    /// Asserts `name` decrypts with `key` to `plain` and not with `wrong` (exit 1).
    #[track_caller]
    fn opens_only_with(&self, name: &str, key: &str, wrong: &str, plain: &[u8]) {
        assert_eq!(self.decrypt(key, name).ok().stdout, plain, "{name}");
        let out = self.decrypt(wrong, name).fails(1);
        assert!(out.stdout.is_empty(), "{name}");
    }

    fn inspect(&self, name: &str) -> Value {
        let out = self.run(&["inspect", name]).ok();
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
    }

    /// Names of the files directly in the folder `name`.
    fn names(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Every regular file under `name` (relative path → bytes).
    fn tree(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        collect(&self.path(name), Path::new(""), &mut out);
        out
    }
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

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xA24B_AED4_963E_E407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The stored context without the signing key of signed suites (a new one per message).
fn stored_context(h: &Value) -> BTreeMap<String, String> {
    let mut c: BTreeMap<String, String> =
        serde_json::from_value(h["encryption_context"].clone()).unwrap();
    c.remove("aws-crypto-public-key");
    c
}

fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The key names of the raw AES EDKs of a header (the provider info without its last 20
/// bytes), e.g. `["key-b"]`.
fn edk_names(h: &Value) -> Vec<String> {
    use base64::Engine as _;
    h["encrypted_data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let info = base64::engine::general_purpose::STANDARD
                .decode(e["provider_info"].as_str().unwrap())
                .unwrap();
            String::from_utf8(info[..info.len() - 20].to_vec()).unwrap()
        })
        .collect()
}

/// A folder run: exit `code`, one `envcrypt:` line per failed file, and the summary last.
#[track_caller]
fn folder_run(out: Out, code: i32, summary: &str) -> Out {
    assert_eq!(out.code, code, "stderr: {}", out.stderr);
    let lines = out.stderr_lines();
    assert_eq!(lines.last().copied(), Some(summary), "{}", out.stderr);
    for line in &lines[..lines.len() - 1] {
        assert!(line.starts_with("envcrypt: "), "{}", out.stderr);
    }
    out
}

// ---------------------------------------------------------------------------------------
// one file

#[test]
fn one_file_moves_to_the_new_key_and_keeps_the_header_fields() {
    let env = Env::new();
    let plain = payload(100_000, 1);
    for (suite, suite_id) in [("0578", "0x0578"), ("0478", "0x0478")] {
        let old = format!("old-{suite}.enc");
        let new = format!("new-{suite}.enc");
        env.encrypt(
            &old,
            &plain,
            &[KA],
            &[
                "--suite",
                suite,
                "-c",
                "dept=radiology",
                "-c",
                "site=north",
                "--frame-length",
                "4096",
            ],
        );
        let before = env.read(&old);
        let out = env.rewrap(&["-k", KA, "--to", KB, "-o", &new, &old]).ok();
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        assert_eq!(env.read(&old), before, "input untouched");
        env.opens_only_with(&new, KB, KA, &plain);

        let (h0, h1) = (env.inspect(&old), env.inspect(&new));
        assert_ne!(h0["message_id"], h1["message_id"]);
        assert_eq!(h1["suite_id"], suite_id);
        assert_eq!(h1["frame_length"], 4096);
        assert_eq!(
            stored_context(&h1),
            context(&[("dept", "radiology"), ("site", "north")])
        );
        assert_eq!(edk_names(&h1), ["key-b"]);
        if suite == "0578" {
            // A new signing key.
            let pk = |h: &Value| h["encryption_context"]["aws-crypto-public-key"].clone();
            assert!(pk(&h1).is_string());
            assert_ne!(pk(&h0), pk(&h1));
        }
        // Two --to keys: both EDKs, each opens it.
        let both = format!("both-{suite}.enc");
        env.rewrap(&["-k", KA, "--to", KB, "--to", KC, "-o", &both, &old])
            .ok();
        assert_eq!(edk_names(&env.inspect(&both)), ["key-b", "key-c"]);
        env.opens_only_with(&both, KC, KA, &plain);
        env.opens_only_with(&both, KB, KA, &plain);
        // Several -k keyrings: each tried in turn.
        env.rewrap(&["-k", KC, "-k", KA, "--to", KB, "-o", "tried.enc", &old])
            .ok();
        env.opens_only_with("tried.enc", KB, KA, &plain);
        fs::remove_file(env.path("tried.enc")).unwrap();
    }
}

#[test]
fn one_file_to_stdout_and_from_stdin() {
    let env = Env::new();
    let plain = payload(70_000, 2);
    env.encrypt("old.enc", &plain, &[KA], &["--frame-length", "1024"]);
    let out = env.rewrap(&["-k", KA, "--to", KB, "old.enc"]).ok();
    env.write("stdout.enc", &out.stdout);
    env.opens_only_with("stdout.enc", KB, KA, &plain);

    let out = env
        .run_stdin(
            &["rewrap", "-q", "-k", KA, "--to", KB, "-"],
            &env.read("old.enc"),
        )
        .ok();
    env.write("stdin.enc", &out.stdout);
    env.opens_only_with("stdin.enc", KB, KA, &plain);
    assert_ne!(env.read("stdin.enc"), env.read("stdout.enc"), "fresh keys");
}

#[test]
fn suite_and_context_changes() {
    let env = Env::new();
    let plain = payload(9_000, 3);
    env.encrypt(
        "s.enc",
        &plain,
        &[KA],
        &[
            "--suite",
            "0578",
            "-c",
            "dept=radiology",
            "-c",
            "site=north",
        ],
    );
    env.rewrap(&[
        "-k", KA, "--to", KB, "--suite", "0478", "-o", "u.enc", "s.enc",
    ])
    .ok();
    let h = env.inspect("u.enc");
    assert_eq!(h["suite_id"], "0x0478");
    assert!(h["encryption_context"]["aws-crypto-public-key"].is_null());
    assert_eq!(
        stored_context(&h),
        context(&[("dept", "radiology"), ("site", "north")])
    );
    env.opens_only_with("u.enc", KB, KA, &plain);
    // And back to a signed suite.
    env.rewrap(&[
        "-k", KB, "--to", KC, "--suite", "0578", "-o", "s2.enc", "u.enc",
    ])
    .ok();
    let h = env.inspect("s2.enc");
    assert_eq!(h["suite_id"], "0x0578");
    assert!(h["encryption_context"]["aws-crypto-public-key"].is_string());
    env.opens_only_with("s2.enc", KC, KB, &plain);

    // Add one pair, remove another; the new context is what decrypt -c checks.
    env.rewrap(&[
        "-k",
        KA,
        "--to",
        KB,
        "--add-context",
        "rotated=2026",
        "--remove-context",
        "site",
        "-o",
        "c.enc",
        "s.enc",
    ])
    .ok();
    let h = env.inspect("c.enc");
    assert_eq!(
        stored_context(&h),
        context(&[("dept", "radiology"), ("rotated", "2026")])
    );
    env.run(&["decrypt", "-q", "-k", KB, "-c", "rotated=2026", "c.enc"])
        .ok();
    env.run(&["decrypt", "-q", "-k", KB, "-c", "site=north", "c.enc"])
        .fails(1);
    // A value changes by removing and adding the key in one run.
    env.rewrap(&[
        "-k",
        KA,
        "--to",
        KB,
        "--remove-context",
        "site",
        "--add-context",
        "site=south",
        "-o",
        "moved.enc",
        "s.enc",
    ])
    .ok();
    assert_eq!(
        stored_context(&env.inspect("moved.enc")),
        context(&[("dept", "radiology"), ("site", "south")])
    );

    // Refused (usage, exit 2, no output): removing a key the message does not have, adding
    // one it has.
    let out = env
        .rewrap(&[
            "-k",
            KA,
            "--to",
            KB,
            "--remove-context",
            "ward",
            "-o",
            "x.enc",
            "s.enc",
        ])
        .fails(2);
    assert!(
        out.stderr.contains("cannot remove context key \"ward\""),
        "{}",
        out.stderr
    );
    assert!(!env.exists("x.enc"));
    let out = env
        .rewrap(&[
            "-k",
            KA,
            "--to",
            KB,
            "--add-context",
            "dept=lab",
            "-o",
            "x.enc",
            "s.enc",
        ])
        .fails(2);
    assert!(
        out.stderr
            .contains("context key \"dept\" is already in the message"),
        "{}",
        out.stderr
    );
    assert!(!env.exists("x.enc"));
    // -c is checked as in decrypt: a mismatch is a policy failure (exit 1).
    env.rewrap(&[
        "-k", KA, "--to", KB, "-c", "dept=lab", "-o", "x.enc", "s.enc",
    ])
    .fails(1);
    assert!(!env.exists("x.enc"));
    env.rewrap(&[
        "-k",
        KA,
        "--to",
        KB,
        "-c",
        "dept=radiology",
        "-o",
        "x.enc",
        "s.enc",
    ])
    .ok();
    // The wrong -k key: exit 1, nothing written.
    env.rewrap(&["-k", KC, "--to", KB, "-o", "y.enc", "s.enc"])
        .fails(1);
    assert!(!env.exists("y.enc"));
    // An existing output is kept unless --force.
    let kept = env.read("x.enc");
    let out = env
        .rewrap(&["-k", KA, "--to", KB, "-o", "x.enc", "s.enc"])
        .fails(2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(env.read("x.enc"), kept);
    env.rewrap(&["-k", KA, "--to", KB, "--force", "-o", "x.enc", "s.enc"])
        .ok();
    assert_ne!(env.read("x.enc"), kept);
}

#[test]
fn usage_errors() {
    let env = Env::new();
    env.encrypt("m.enc", b"abc", &[KA], &[]);
    env.write("dir/m.enc", &env.read("m.enc"));
    // --to is required; -o and --in-place conflict (clap: exit 2).
    assert_eq!(env.rewrap(&["-k", KA, "m.enc"]).code, 2);
    assert_eq!(
        env.rewrap(&["-k", KA, "--to", KB, "--in-place", "-o", "x", "m.enc"])
            .code,
        2
    );
    let out = env
        .rewrap(&[
            "-k",
            KA,
            "--to",
            KB,
            "--only-wrapped-by",
            KA,
            "-o",
            "x",
            "m.enc",
        ])
        .fails(2);
    assert!(out.stderr.contains("--only-wrapped-by"), "{}", out.stderr);
    let out = env
        .run_stdin(
            &["rewrap", "-q", "-k", KA, "--to", KB, "--in-place", "-"],
            b"",
        )
        .fails(2);
    assert!(out.stderr.contains("not stdin"), "{}", out.stderr);
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "dir"]).fails(2);
    assert!(
        out.stderr.contains("-r needs -o OUTDIR or --in-place"),
        "{}",
        out.stderr
    );
    let out = env
        .rewrap(&["-k", KA, "--to", KB, "--in-place", "dir"])
        .fails(2);
    assert!(out.stderr.contains("is not a file"), "{}", out.stderr);
    env.rewrap(&["-k", KA, "--to", KB, "-o", "x", "missing.enc"])
        .fails(3);
    assert!(!env.exists("x"));
    assert_eq!(env.names("dir"), ["m.enc"]);
}

// ---------------------------------------------------------------------------------------
// no laundering: a bad message never becomes a good one under the new key

#[test]
fn bad_messages_are_refused_and_nothing_is_written() {
    let env = Env::new();
    let plain = payload(50_000, 4);
    env.encrypt(
        "u.enc",
        &plain,
        &[KA],
        &["--suite", "0478", "--frame-length", "4096"],
    );
    env.encrypt(
        "s.enc",
        &plain,
        &[KA],
        &["--suite", "0578", "--frame-length", "4096"],
    );
    let (u, s) = (env.read("u.enc"), env.read("s.enc"));
    let u_header = env.inspect("u.enc")["header_length"].as_u64().unwrap() as usize;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut body = u.clone();
    body[u_header + 5000] ^= 0x01;
    cases.push(("body byte flipped", body));
    cases.push(("truncated", u[..u.len() - 100].to_vec()));
    cases.push(("truncated in the body", u[..u_header + 4096].to_vec()));
    let mut appended = u.clone();
    appended.push(0);
    cases.push(("byte appended", appended));
    let mut sig = s.clone();
    *sig.last_mut().unwrap() ^= 0x01;
    cases.push(("signature byte flipped", sig));
    let mut s_appended = s.clone();
    s_appended.push(0);
    cases.push(("signed, byte appended", s_appended));

    for (what, bad) in cases {
        fs::create_dir_all(env.path("case")).unwrap();
        env.write("case/bad.enc", &bad);
        let out = env
            .rewrap(&["-k", KA, "--to", KB, "-o", "case/out.enc", "case/bad.enc"])
            .fails(1);
        assert!(out.stdout.is_empty(), "{what}");
        assert!(!env.exists("case/out.enc"), "{what}: no output");
        assert_eq!(env.names("case"), ["bad.enc"], "{what}: no temporary files");

        // To stdout: exit 1, and whatever was written is not a message that opens (the
        // new message's end is withheld until the input verified).
        let out = env.rewrap(&["-k", KA, "--to", KB, "case/bad.enc"]).fails(1);
        env.write("partial.enc", &out.stdout);
        env.run(&[
            "decrypt",
            "-q",
            "-k",
            KB,
            "-o",
            "partial.out",
            "partial.enc",
        ])
        .fails(1);
        assert!(!env.exists("partial.out"), "{what}");
        assert_eq!(env.names("case"), ["bad.enc"], "{what}");

        let out = env
            .rewrap(&["-k", KA, "--to", KB, "--in-place", "case/bad.enc"])
            .fails(1);
        assert!(
            out.stderr.contains("case/bad.enc"),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(env.read("case/bad.enc"), bad, "{what}: input untouched");
        assert_eq!(env.names("case"), ["bad.enc"], "{what}: no temporary files");

        // As one file of a folder run: counted failed, left as it was.
        let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "--in-place", "case"]);
        folder_run(out, 1, "rewrapped 0, skipped 0, failed 1");
        assert_eq!(env.read("case/bad.enc"), bad, "{what}: input untouched");
        assert_eq!(env.names("case"), ["bad.enc"], "{what}: no temporary files");
        fs::remove_dir_all(env.path("case")).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// one file in place

#[test]
fn one_file_in_place_then_skipped() {
    let env = Env::new();
    let plain = payload(20_000, 5);
    env.encrypt("m.enc", &plain, &[KA], &["-c", "dept=radiology"]);
    env.rewrap(&["-k", KA, "--to", KB, "--in-place", "m.enc"])
        .ok();
    env.opens_only_with("m.enc", KB, KA, &plain);
    assert_eq!(env.names("."), ["ka.key", "kb.key", "kc.key", "m.enc"]);
    let after = env.read("m.enc");
    // Again: already under B and its header opens with B, so left alone.
    let out = env
        .run(&["rewrap", "-k", KA, "--to", KB, "--in-place", "m.enc"])
        .ok();
    assert!(out.stderr.contains("skipped"), "{}", out.stderr);
    assert_eq!(env.read("m.enc"), after);
    // With -k naming the new key too (a typical re-run): still skipped.
    env.rewrap(&["-k", KA, "-k", KB, "--to", KB, "--in-place", "m.enc"])
        .ok();
    assert_eq!(env.read("m.enc"), after);
}

// ---------------------------------------------------------------------------------------
// folders

/// A store: three messages under A (one in a subfolder), one already under B, a file that is
/// not a message. Returns the plaintexts by message path.
fn store(env: &Env) -> BTreeMap<&'static str, Vec<u8>> {
    let mut plains = BTreeMap::new();
    for (i, (name, len, keys)) in [
        ("store/one.enc", 1000, KA),
        ("store/two.enc", 0, KA),
        ("store/sub/three.enc", 70_000, KA),
        ("store/done.enc", 3000, KB),
    ]
    .into_iter()
    .enumerate()
    {
        let plain = payload(len, 10 + i as u64);
        env.encrypt(name, &plain, &[keys], &["-c", "dept=radiology"]);
        plains.insert(name, plain);
    }
    env.write("store/notes.txt", b"not a message\n");
    plains
}

#[test]
fn folder_in_place_rotates_once_and_reruns_are_idempotent() {
    let env = Env::new();
    let plains = store(&env);
    let done = env.read("store/done.enc");
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "--in-place", "store"]);
    let out = folder_run(out, 0, "rewrapped 3, skipped 1, failed 0");
    assert_eq!(out.stderr_lines().len(), 1, "-q: only the summary");
    for (name, plain) in &plains {
        env.opens_only_with(name, KB, KA, plain);
    }
    assert_eq!(env.read("store/done.enc"), done, "skipped: untouched");
    assert_eq!(env.read("store/notes.txt"), b"not a message\n");
    let first = env.tree("store");
    assert_eq!(first.len(), 5, "no other files: {:?}", first.keys());

    // Without -q, each skipped file is named before the summary.
    let out = env.run(&["rewrap", "-k", KA, "--to", KB, "-r", "--in-place", "store"]);
    let out = folder_run(out, 0, "rewrapped 0, skipped 4, failed 0");
    let skipped = out
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("skipped store/") && l.contains("already wrapped"))
        .count();
    assert_eq!(skipped, 4, "{}", out.stderr);
    assert_eq!(env.tree("store"), first, "idempotent");
    // Same with -k naming both keys.
    let out = env.rewrap(&["-k", KA, "-k", KB, "--to", KB, "-r", "--in-place", "store"]);
    folder_run(out, 0, "rewrapped 0, skipped 4, failed 0");
    assert_eq!(env.tree("store"), first, "idempotent");
    // Only part of the --to keys present: not rotated yet (B and C wanted).
    let out = env.rewrap(&[
        "-k",
        KB,
        "--to",
        KB,
        "--to",
        KC,
        "-r",
        "--in-place",
        "store",
    ]);
    folder_run(out, 0, "rewrapped 4, skipped 0, failed 0");
    for name in plains.keys() {
        assert_eq!(edk_names(&env.inspect(name)), ["key-b", "key-c"]);
    }
    // An empty folder.
    fs::create_dir(env.path("empty")).unwrap();
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "--in-place", "empty"]);
    folder_run(out, 0, SUMMARY_CLEAN);
}

#[test]
fn only_wrapped_by_selects_the_messages_of_that_key() {
    let env = Env::new();
    let mut plains = BTreeMap::new();
    for (i, (name, key)) in [
        ("f/a1.enc", KA),
        ("f/a2.enc", KA),
        ("f/c1.enc", KC),
        ("f/ac.enc", KC),
    ]
    .into_iter()
    .enumerate()
    {
        let plain = payload(5000, 20 + i as u64);
        let keys: &[&str] = match name {
            "f/ac.enc" => &[KC, KA],
            _ => &[key],
        };
        env.encrypt(name, &plain, keys, &[]);
        plains.insert(name, plain);
    }
    let c1 = env.read("f/c1.enc");
    let out = env.rewrap(&[
        "-k",
        KA,
        "-k",
        KC,
        "--to",
        KB,
        "--only-wrapped-by",
        KA,
        "-r",
        "--in-place",
        "f",
    ]);
    folder_run(out, 0, "rewrapped 3, skipped 1, failed 0");
    for name in ["f/a1.enc", "f/a2.enc", "f/ac.enc"] {
        env.opens_only_with(name, KB, KA, &plains[name]);
        assert_eq!(edk_names(&env.inspect(name)), ["key-b"]);
    }
    assert_eq!(env.read("f/c1.enc"), c1, "not wrapped by A: untouched");
    // --only-wrapped-by needs a spec naming one key.
    let out = env.rewrap(&[
        "-k",
        KA,
        "--to",
        KB,
        "--only-wrapped-by",
        "nonsense",
        "-r",
        "--in-place",
        "f",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(env.read("f/c1.enc"), c1);
}

#[test]
fn an_edited_header_claiming_the_new_key_is_not_skipped() {
    let env = Env::new();
    let plain = payload(3000, 30);
    env.encrypt("h/good.enc", &plain, &[KA], &[]);
    env.encrypt("h/forged.enc", &plain, &[KB], &["-c", "dept=radiology"]);
    // Flip a byte of the stored context value: the EDK list still names B only.
    let mut forged = env.read("h/forged.enc");
    let at = forged
        .windows(9)
        .position(|w| w == b"radiology")
        .expect("the context value in the header");
    forged[at] ^= 0x20; // "Radiology"
    fs::write(env.path("h/forged.enc"), &forged).unwrap();
    assert_eq!(edk_names(&env.inspect("h/forged.enc")), ["key-b"]);

    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "--in-place", "h"]);
    let out = folder_run(out, 1, "rewrapped 1, skipped 0, failed 1");
    assert_eq!(out.stderr_lines().len(), 2, "{}", out.stderr);
    assert!(
        out.stderr_lines()[0].contains("h/forged.enc"),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("h/forged.enc"), forged, "left as it was");
    env.opens_only_with("h/good.enc", KB, KA, &plain);
    // Even when -k can open B-messages, the edited header fails authentication.
    let out = env.rewrap(&["-k", KA, "-k", KB, "--to", KB, "-r", "--in-place", "h"]);
    folder_run(out, 1, "rewrapped 0, skipped 1, failed 1");
    assert_eq!(env.read("h/forged.enc"), forged);
}

#[test]
fn folder_to_outdir_keeps_names_and_inputs() {
    let env = Env::new();
    let plains = store(&env);
    let before = env.tree("store");
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "-o", "out", "store"]);
    folder_run(out, 0, "rewrapped 3, skipped 1, failed 0");
    assert_eq!(env.tree("store"), before, "inputs untouched");
    let written = env.tree("out");
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        ["one.enc", "sub/three.enc", "two.enc"],
        "the rewrapped messages, same names (the skipped one is not copied)"
    );
    for (name, plain) in &plains {
        if *name == "store/done.enc" {
            continue;
        }
        let target = name.replacen("store/", "out/", 1);
        env.opens_only_with(&target, KB, KA, plain);
    }
    // Again: the outputs exist, refused without --force, kept.
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "-o", "out", "store"]);
    folder_run(out, 2, "rewrapped 0, skipped 1, failed 3");
    assert_eq!(env.tree("out"), written);
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "--force", "-o", "out", "store"]);
    folder_run(out, 0, "rewrapped 3, skipped 1, failed 0");
    assert_ne!(env.tree("out"), written, "fresh messages");
    // OUTDIR inside the input folder is refused.
    let out = env.rewrap(&["-k", KA, "--to", KB, "-r", "-o", "store/out", "store"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!env.exists("store/out"));
}

/// The escrow key: the public half wraps, the private half opens.
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
const ESCROW_PUB: &str = "raw-rsa:escrow:escrow-2026:oaep-sha256:escrow.pub.pem";
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
const ESCROW: &str = "raw-rsa:escrow:escrow-2026:oaep-sha256:escrow.pem";

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn raw_aes_to_raw_rsa_and_the_escrow_example() {
    let env = Env::new();
    env.run(&["keygen", "rsa", "--bits", "2048", "-o", "escrow"])
        .ok();
    let mode = fs::metadata(env.path("escrow.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let plain = payload(30_000, 60);
    env.encrypt("m.enc", &plain, &[KA], &["-c", "dept=radiology"]);
    // To the public key only: opens with the private key, not with A.
    env.rewrap(&["-k", KA, "--to", ESCROW_PUB, "-o", "rsa.enc", "m.enc"])
        .ok();
    let h = env.inspect("rsa.enc");
    assert_eq!(h["encrypted_data_keys"][0]["provider_id"], "escrow");
    assert_eq!(h["encrypted_data_keys"][0]["ciphertext_length"], 256);
    env.opens_only_with("rsa.enc", ESCROW, KA, &plain);
    // And back from RSA (private key) to AES.
    env.rewrap(&["-k", ESCROW, "--to", KC, "-o", "back.enc", "rsa.enc"])
        .ok();
    env.opens_only_with("back.enc", KC, ESCROW, &plain);
    // The help's example: a folder to B plus the escrow public key, in place. The re-run
    // skips them all (the header opens with B, the one --to key that can open).
    let plains = store(&env);
    let out = env.rewrap(&[
        "-k",
        KA,
        "-k",
        KB,
        "--to",
        KB,
        "--to",
        ESCROW_PUB,
        "-r",
        "--in-place",
        "store",
    ]);
    folder_run(out, 0, "rewrapped 4, skipped 0, failed 0");
    for (name, plain) in &plains {
        env.opens_only_with(name, ESCROW, KA, plain);
        env.opens_only_with(name, KB, KA, plain);
    }
    let first = env.tree("store");
    let out = env.rewrap(&[
        "-k",
        KA,
        "-k",
        KB,
        "--to",
        KB,
        "--to",
        ESCROW_PUB,
        "-r",
        "--in-place",
        "store",
    ]);
    folder_run(out, 0, "rewrapped 0, skipped 4, failed 0");
    assert_eq!(env.tree("store"), first);
    // With only the public key as --to, nothing can prove a header is rotated: rewrapped
    // again (a fresh message each time), never skipped on the EDK list alone.
    fs::create_dir(env.path("pub")).unwrap();
    fs::copy(env.path("rsa.enc"), env.path("pub/rsa.enc")).unwrap();
    let out = env.rewrap(&["-k", ESCROW, "--to", ESCROW_PUB, "-r", "--in-place", "pub"]);
    folder_run(out, 0, "rewrapped 1, skipped 0, failed 0");
    assert_ne!(env.read("pub/rsa.enc"), env.read("rsa.enc"));
    env.opens_only_with("pub/rsa.enc", ESCROW, KA, &plain);
}

// ---------------------------------------------------------------------------------------
// crash safety

#[test]
fn in_place_killed_at_any_point_leaves_the_old_or_the_new_message() {
    const LEN: usize = 64 << 20;
    let env = Env::new();
    let plain = payload(LEN, 40);
    env.encrypt("big.enc", &plain, &[KA], &["--suite", "0578"]);
    let original = env.read("big.enc");
    let args = [
        "rewrap",
        "-q",
        "--threads",
        "2",
        "-k",
        KA,
        "--to",
        KB,
        "--in-place",
        "big.enc",
    ];
    // How long a whole run takes here (to a copy), so the kills spread over all of it:
    // reading, sealing, syncing, the rename, and after.
    fs::copy(env.path("big.enc"), env.path("copy.enc")).unwrap();
    let mut timed = args;
    *timed.last_mut().unwrap() = "copy.enc";
    let full = env.run(&timed).ok().took;
    fs::remove_file(env.path("copy.enc")).unwrap();
    let full_ms = full.as_millis().max(20) as u64;
    let started = Instant::now();
    let (mut old, mut new) = (0, 0);
    let kills: Vec<u64> = (0..12u64)
        .map(|i| 10 + (full_ms * 12 / 10) * ((i * 7) % 12) / 11)
        .collect();
    for (i, ms) in kills.into_iter().enumerate() {
        let mut child = tool::command(env.dir.path(), &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill(); // SIGKILL (it may have finished already)
        child.wait().unwrap();
        let now = env.read("big.enc");
        if now == original {
            old += 1;
            continue;
        }
        // Not the old one: it must be the whole new one.
        let out = env.run(&["decrypt", "-q", "-k", KB, "-o", "check", "big.enc"]);
        assert_eq!(out.code, 0, "kill {i} after {ms} ms: {}", out.stderr);
        assert!(
            env.read("check") == plain,
            "kill {i}: new message, same data"
        );
        fs::remove_file(env.path("check")).unwrap();
        new += 1;
        // Put the old one back for the next round.
        fs::write(env.path("big.enc"), &original).unwrap();
    }
    eprintln!(
        "a full run {full:?}; 12 kills in {:?}: old {old}, new {new}; files now {:?}",
        started.elapsed(),
        env.names(".")
    );
    // The re-run finishes it.
    env.run(&args).ok();
    let out = env.run(&["decrypt", "-q", "-k", KB, "-o", "check", "big.enc"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(env.read("check") == plain);
    env.decrypt(KA, "big.enc").fails(1);
}

// ---------------------------------------------------------------------------------------
// the Python AWS Encryption SDK: its messages, rewrapped by the tool, open in it under the
// new key only

#[test]
fn python_esdk_messages_rewrapped_open_in_python_under_the_new_key_only() {
    use python::Esdk;
    use serde_json::json;

    let env = Env::empty();
    // Raw 32-byte keys the peer also gets (as hex), files 0600.
    let raw = |seed: u8| -> Vec<u8> {
        (0u8..32)
            .map(|i| i.wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    let (a, b) = (raw(7), raw(101));
    for (name, key) in [("pa.key", &a), ("pb.key", &b)] {
        env.write(name, key);
        fs::set_permissions(env.path(name), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let spec_a = "raw-aes:hospital-a:py-a:pa.key";
    let spec_b = "raw-aes:hospital-a:py-b:pb.key";
    let hex = |k: &[u8]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let peer_a = json!({"namespace": "hospital-a", "name": "py-a", "hex": hex(&a)});
    let peer_b = json!({"namespace": "hospital-a", "name": "py-b", "hex": hex(&b)});
    let p = |name: &str| env.path(name).display().to_string();
    let ctx = json!({"dept": "radiology", "site": "north"});

    // 1. Python encrypts under A: both suites, empty and multi-frame payloads.
    let plains = [
        ("empty", Vec::new()),
        ("multi", payload(10 * 1024 + 77, 50)),
    ];
    let mut cases = Vec::new();
    let mut ids = Vec::new();
    for (pname, data) in &plains {
        env.write(&format!("{pname}.plain"), data);
        for suite in ["0478", "0578"] {
            let id = format!("{pname}-{suite}");
            cases.push(
                json!({"id": format!("enc-{id}"), "op": "encrypt", "key": peer_a,
                "input": p(&format!("{pname}.plain")), "output": p(&format!("{id}.py.enc")),
                "suite": suite, "frame_length": 1024, "context": ctx}),
            );
            ids.push((id, suite, data.clone()));
        }
    }
    peer(&env, "job1", &cases, Esdk::V4, python::python(Esdk::V4));

    // 2. The tool rewraps each to B (kept suite, context, frame length).
    for (id, suite, _) in &ids {
        let (src, dst) = (format!("{id}.py.enc"), format!("{id}.b.enc"));
        env.rewrap(&["-k", spec_a, "--to", spec_b, "-o", &dst, &src])
            .ok();
        let (h0, h1) = (env.inspect(&src), env.inspect(&dst));
        assert_eq!(h1["suite_id"], format!("0x{suite}"), "{id}");
        assert_eq!(h1["frame_length"], 1024, "{id}");
        assert_ne!(h0["message_id"], h1["message_id"], "{id}");
        assert_eq!(
            stored_context(&h1),
            context(&[("dept", "radiology"), ("site", "north")]),
            "{id}"
        );
    }

    // 3. Python decrypts them under B (same plaintext), and not under A.
    let mut cases = Vec::new();
    for (id, _, _) in &ids {
        cases.push(
            json!({"id": format!("dec-b-{id}"), "op": "decrypt", "key": peer_b,
            "input": p(&format!("{id}.b.enc")), "output": p(&format!("{id}.b.out"))}),
        );
        cases.push(
            json!({"id": format!("dec-a-{id}"), "op": "decrypt", "key": peer_a,
            "input": p(&format!("{id}.b.enc")), "output": p(&format!("{id}.a.out")),
            "api": "stream"}),
        );
    }
    let results = peer(&env, "job2", &cases, Esdk::V4, python::python(Esdk::V4));
    for (id, suite, data) in &ids {
        let ok = &results[&format!("dec-b-{id}")];
        assert_eq!(ok["ok"], true, "{ok}");
        assert_eq!(ok["suite"], *suite, "{ok}");
        assert_eq!(&env.read(&format!("{id}.b.out")), data, "{id}");
        let refused = &results[&format!("dec-a-{id}")];
        assert_eq!(refused["ok"], false, "{refused}");
        assert!(
            !env.exists(&format!("{id}.a.out")) || env.read(&format!("{id}.a.out")).is_empty(),
            "{id}: nothing released under A"
        );
    }
}

/// Runs the Python peer on `cases` (the job file `NAME.json`); every result by id. Fails the
/// test loudly when Python or the ESDK is missing.
fn peer(
    env: &Env,
    name: &str,
    cases: &[Value],
    esdk: python::Esdk,
    interpreter: std::path::PathBuf,
) -> BTreeMap<String, Value> {
    let job = env.path(&format!("{name}.json"));
    let results = env.path(&format!("{name}.results.json"));
    fs::write(&job, json_cases(cases)).unwrap();
    let out = std::process::Command::new(interpreter)
        .arg(python::peer_script("esdk_peer.py"))
        .arg(&job)
        .arg(&results)
        .args(["--sdk", if esdk == python::Esdk::V4 { "4" } else { "3" }])
        .output()
        .expect("run the Python peer");
    assert!(
        out.status.success(),
        "peer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&fs::read(&results).unwrap()).unwrap();
    let list = all["results"].as_array().unwrap();
    assert_eq!(list.len(), cases.len());
    list.iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn json_cases(cases: &[Value]) -> Vec<u8> {
    serde_json::json!({ "cases": cases })
        .to_string()
        .into_bytes()
}
