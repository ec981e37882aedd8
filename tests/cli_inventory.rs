//! `envcrypt inspect --summary` (the key inventory of CLI.md): messages and bytes per key
//! read from the EDK lists without a key (advisory), and `--require-key`, which opens and
//! verifies every header with one key (the break-glass check). Each test runs the built tool
//! (the binary of `tests/common/cli.rs`) on real files.

#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use serde_json::{json, Value};
use tool::{Out, Scratch as Env};

const KA: &str = "raw-aes:hosp:key-a:ka.key";
const KB: &str = "raw-aes:hosp:key-b:kb.key";
const KC: &str = "raw-aes:lab:key-c:kc.key";
/// The escrow key: the public half wraps, the private half opens.
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
const ESCROW_PUB: &str = "raw-rsa:escrow:escrow-2026:oaep-sha256:escrow.pub.pem";
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
const ESCROW: &str = "raw-rsa:escrow:escrow-2026:oaep-sha256:escrow.pem";

impl Env {
    /// A scratch directory with three AES keys (mode 0600, as keygen writes them).
    fn new() -> Self {
        let env = Self::empty();
        for key in ["ka.key", "kb.key", "kc.key"] {
            env.run(&["keygen", "aes256", "-o", key]).ok();
            env.assert_private(key);
        }
        env
    }

    /// Also the escrow RSA key pair (the private key 0600).
    #[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
    fn with_escrow() -> Self {
        let env = Self::new();
        env.run(&["keygen", "rsa", "--bits", "2048", "-o", "escrow"])
            .ok();
        env.assert_private("escrow.pem");
        env
    }

    fn assert_private(&self, name: &str) {
        let mode = fs::metadata(self.path(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }

    /// Encrypts `len` bytes into the message `name`, wrapped by every keyring of `keys`.
    fn message(&self, name: &str, len: usize, keys: &[&str], context: &[&str]) {
        let plain = format!("plain-{}", name.replace('/', "-"));
        self.write(&plain, &vec![b'p'; len]);
        if let Some(dir) = self.path(name).parent() {
            fs::create_dir_all(dir).unwrap();
        }
        let mut args = vec!["encrypt", "-q"];
        for k in keys {
            args.extend(["-k", k]);
        }
        for c in context {
            args.extend(["-c", c]);
        }
        args.extend(["-o", name, &plain]);
        let out = self.run(&args).ok();
        assert!(out.stderr.is_empty(), "{}", out.stderr);
    }

    fn size(&self, name: &str) -> u64 {
        fs::metadata(self.path(name)).unwrap().len()
    }

    /// Flips the last bit of the byte at `at` of the file `name`.
    fn flip(&self, name: &str, at: usize) {
        let mut bytes = self.read(name);
        bytes[at] ^= 1;
        fs::write(self.path(name), bytes).unwrap();
    }

    /// `inspect --summary ARGS...` and its JSON.
    fn summary(&self, args: &[&str]) -> (Out, Value) {
        let mut all = vec!["inspect", "--summary"];
        all.extend(args);
        let out = self.run(&all);
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("JSON on stdout ({e}): {out:?}"));
        (out, json)
    }
}

fn key(provider_id: &str, key: &str, files: u64, bytes: u64) -> Value {
    json!({"provider_id": provider_id, "key": key, "files": files, "bytes": bytes})
}

/// A folder of messages under three AES keys, some with two EDKs, and two files that are
/// not messages.
fn aes_store(env: &Env) {
    env.message("store/a/one.enc", 1000, &[KA, KB], &[]);
    env.message("store/a/two.enc", 5000, &[KB], &[]);
    env.message("store/b/three.enc", 70_000, &[KC, KA], &["dept=lab"]);
    env.message("store/four.enc", 0, &[KA], &[]);
    env.write("store/notes.txt", b"not a message\n");
    env.write("store/b/empty", b"");
}

#[test]
fn summary_counts_messages_and_bytes_per_key() {
    let env = Env::new();
    aes_store(&env);
    // A link in the folder is skipped (and named), not counted.
    symlink("a/one.enc", env.path("store/link.enc")).unwrap();
    let [one, two, three, four] =
        ["a/one", "a/two", "b/three", "four"].map(|n| env.size(&format!("store/{n}.enc")));

    let (out, json) = env.summary(&["-r", "store"]);
    let out = out.ok();
    assert_eq!(
        json,
        json!({
            "files": 4,
            "bytes": one + two + three + four,
            "keys": [
                key("hosp", "key-a", 3, one + three + four),
                key("hosp", "key-b", 2, one + two),
                key("lab", "key-c", 1, three),
            ],
            "unreadable": ["store/b/empty", "store/notes.txt"],
        })
    );
    // Fields in the order of CLI.md.
    let text = out.stdout_str();
    let at = |field: &str| text.find(&format!("\"{field}\":")).unwrap();
    assert!(at("files") < at("bytes") && at("bytes") < at("keys"));
    assert!(at("keys") < at("unreadable") && at("provider_id") < at("key"));
    assert_eq!(
        out.stderr_lines(),
        ["envcrypt: skipped store/link.enc: symbolic link"]
    );

    // Several PATHs, files and folders; a file reached twice counts once.
    let (out, json) = env.summary(&["-r", "store/a", "store/four.enc", "store/a/one.enc"]);
    out.ok();
    assert_eq!(json["files"], 3);
    assert_eq!(json["bytes"], one + two + four);
    assert_eq!(
        json["keys"],
        json!([
            key("hosp", "key-a", 2, one + four),
            key("hosp", "key-b", 2, one + two),
        ])
    );
    assert_eq!(json["unreadable"], json!([]));
    assert!(json.get("missing_key").is_none());
}

#[test]
fn a_file_that_is_not_a_message_is_unreadable_not_a_failure() {
    let env = Env::new();
    aes_store(&env);
    let (out, json) = env.summary(&["store/notes.txt", "store/four.enc"]);
    let out = out.ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let four = env.size("store/four.enc");
    assert_eq!(
        json,
        json!({"files": 1, "bytes": four, "keys": [key("hosp", "key-a", 1, four)],
               "unreadable": ["store/notes.txt"]})
    );
}

#[test]
fn a_damaged_message_fails_require_key_but_a_stray_file_does_not() {
    let env = Env::new();
    aes_store(&env);
    // A message cut inside its header: not a message any more, and not recoverable.
    let whole = env.read("store/four.enc");
    env.write("store/cut.enc", &whole[..40]);
    let (out, json) = env.summary(&[
        "--require-key",
        KA,
        "store/notes.txt",
        "store/cut.enc",
        "store/four.enc",
    ]);
    out.fails(1);
    assert_eq!(
        json["unreadable"],
        json!(["store/cut.enc", "store/notes.txt"])
    );
    assert_eq!(json["missing_key"], json!(["store/cut.enc"]));
    let (out, json) = env.summary(&["--require-key", KA, "store/notes.txt", "store/four.enc"]);
    out.ok();
    assert_eq!(json["missing_key"], json!([]));
}

#[test]
fn require_key_names_exactly_the_files_it_cannot_open() {
    let env = Env::new();
    aes_store(&env);
    let (advisory, plain) = env.summary(&["-r", "store"]);
    advisory.ok();

    let (out, json) = env.summary(&["-r", "--require-key", KA, "store"]);
    let out = out.fails(1);
    assert_eq!(json["missing_key"], json!(["store/a/two.enc"]));
    // The rest is the advisory summary, unchanged.
    for field in ["files", "bytes", "keys", "unreadable"] {
        assert_eq!(json[field], plain[field], "{field}");
    }
    let line = out.stderr.trim_end();
    assert!(
        line.contains("1 of 4 messages cannot be opened and verified")
            && line.contains("hosp/key-a")
            && line.ends_with(": store/a/two.enc"),
        "{line}"
    );

    let (out, json) = env.summary(&["-r", "--require-key", KB, "store"]);
    let out = out.fails(1);
    assert_eq!(
        json["missing_key"],
        json!(["store/b/three.enc", "store/four.enc"])
    );
    assert!(
        out.stderr
            .trim_end()
            .ends_with(": store/b/three.enc, store/four.enc"),
        "{}",
        out.stderr
    );

    // Every message has the key: exit 0 (the files that are not messages do not count).
    let args = ["-r", "--require-key", KA, "store/a/one.enc", "store/b"];
    let (out, json) = env.summary(&args);
    let out = out.ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(json["missing_key"], json!([]));
    assert_eq!(json["files"], 2);
    assert_eq!(json["unreadable"], json!(["store/b/empty"]));
}

/// A message that lists the key in its EDKs but whose header was altered after it was
/// written: the advisory summary still counts it under that key; `--require-key` does not
/// verify it and names it.
fn altered_header_is_claimed_but_not_verified(env: &Env, require: &str, id: (&str, &str)) {
    let (out, json) = env.summary(&["-r", "vault"]);
    out.ok();
    let entry = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["provider_id"] == id.0 && k["key"] == id.1)
        .unwrap_or_else(|| panic!("{id:?} in {json}"))
        .clone();
    assert_eq!(entry["files"], json["files"], "every file claims {id:?}");
    assert_eq!(entry["bytes"], json["bytes"]);

    let (out, json) = env.summary(&["-r", "--require-key", require, "vault"]);
    let out = out.fails(1);
    assert_eq!(json["missing_key"], json!(["vault/altered.enc"]));
    assert!(
        out.stderr
            .contains("(1 of them list it among their keys): vault/altered.enc"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_header_with_a_flipped_tag_byte_fails_require_key() {
    let env = Env::new();
    env.message("vault/fine.enc", 3000, &[KA, KB], &["dept=radiology"]);
    env.message("vault/altered.enc", 3000, &[KB, KA], &["dept=radiology"]);
    let (out, json) = env.summary(&["-r", "--require-key", KA, "vault"]);
    out.ok();
    assert_eq!(json["missing_key"], json!([]));

    // The header tag is the last 16 bytes of the header.
    let out = env.run(&["inspect", "vault/altered.enc"]).ok();
    let header: Value = serde_json::from_slice(&out.stdout).unwrap();
    let header_len = header["header_length"].as_u64().unwrap() as usize;
    env.flip("vault/altered.enc", header_len - 1);
    altered_header_is_claimed_but_not_verified(&env, KA, ("hosp", "key-a"));
}

// RSA needs a provider that has it (RustCrypto alone has none).
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn the_escrow_key_break_glass_check() {
    let env = Env::with_escrow();
    env.message("vault/x.enc", 1000, &[KA, ESCROW_PUB], &[]);
    env.message("vault/y.enc", 2000, &[KB, ESCROW_PUB], &[]);
    env.message("vault/sub/z.enc", 3000, &[KC, ESCROW_PUB], &[]);
    env.message("vault/w.enc", 4000, &[ESCROW_PUB], &[]);
    env.write("vault/readme", b"the vault\n");
    let [x, y, z, w] = ["x", "y", "sub/z", "w"].map(|n| env.size(&format!("vault/{n}.enc")));

    let (out, json) = env.summary(&["-r", "--require-key", ESCROW, "vault"]);
    let out = out.ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(
        json,
        json!({
            "files": 4,
            "bytes": x + y + z + w,
            "keys": [
                key("escrow", "escrow-2026", 4, x + y + z + w),
                key("hosp", "key-a", 1, x),
                key("hosp", "key-b", 1, y),
                key("lab", "key-c", 1, z),
            ],
            "unreadable": ["vault/readme"],
            "missing_key": [],
        })
    );

    // Files written without the escrow key are named, and only they.
    env.message("vault/late.enc", 500, &[KA], &[]);
    env.message("vault/sub/later.enc", 500, &[KB, KC], &[]);
    let (out, json) = env.summary(&["-r", "--require-key", ESCROW, "vault"]);
    let out = out.fails(1);
    assert_eq!(
        json["missing_key"],
        json!(["vault/late.enc", "vault/sub/later.enc"])
    );
    assert_eq!(json["files"], 6);
    assert!(
        out.stderr.contains("escrow/escrow-2026")
            && out
                .stderr
                .trim_end()
                .ends_with(": vault/late.enc, vault/sub/later.enc"),
        "{}",
        out.stderr
    );

    // The public key alone cannot open anything: a usage error before any file is read.
    let args = [
        "inspect",
        "--summary",
        "--require-key",
        ESCROW_PUB,
        "vault/x.enc",
    ];
    let out = env.run(&args).fails(2);
    assert!(out.stdout.is_empty());
}

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn an_altered_context_value_fails_the_escrow_check() {
    let env = Env::with_escrow();
    let context = ["dept=radiology-7f3a"];
    env.message("vault/fine.enc", 3000, &[KA, ESCROW_PUB], &context);
    env.message("vault/altered.enc", 3000, &[KB, ESCROW_PUB], &context);
    // The stored context value, one bit changed: the RSA EDK still unwraps (it does not
    // depend on the context), the header's authentication does not verify.
    let bytes = env.read("vault/altered.enc");
    let at = bytes
        .windows(b"radiology-7f3a".len())
        .position(|w| w == b"radiology-7f3a")
        .expect("the context value in the header");
    env.flip("vault/altered.enc", at + 3);
    let out = env.run(&["inspect", "vault/altered.enc"]).ok();
    assert!(
        out.stdout_str().contains("\"dept\": \"radhology-7f3a\""),
        "{}",
        out.stdout_str()
    );
    altered_header_is_claimed_but_not_verified(&env, ESCROW, ("escrow", "escrow-2026"));
}

#[test]
fn usage_errors_and_the_plain_form() {
    let env = Env::new();
    aes_store(&env);

    // A folder without -r.
    let out = env.run(&["inspect", "--summary", "store"]).fails(2);
    assert!(
        out.stderr.contains("store is a directory"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    // Also among other PATHs, and with --require-key: nothing is read.
    let args = [
        "inspect",
        "--summary",
        "--require-key",
        KA,
        "store/four.enc",
        "store/a",
    ];
    assert!(env.run(&args).fails(2).stdout.is_empty());
    // No PATH, stdin, -r or --require-key without --summary.
    env.run(&["inspect", "--summary"]).fails(2);
    env.run_stdin(&["inspect", "--summary", "-"], b"").fails(2);
    env.run(&["inspect", "-r", "store"]).fails(2);
    env.run(&["inspect", "--require-key", KA, "store/four.enc"])
        .fails(2);
    // Several inputs need --summary.
    env.run(&["inspect", "store/four.enc", "store/a/two.enc"])
        .fails(2);
    // A PATH that does not exist: I/O (exit 3), nothing printed.
    let out = env
        .run(&["inspect", "--summary", "store/four.enc", "gone.enc"])
        .fails(3);
    assert!(out.stdout.is_empty() && out.stderr.contains("gone.enc"));

    // The plain form still reads one file, or stdin.
    let from_file = env.run(&["inspect", "store/a/one.enc"]).ok();
    let header: Value = serde_json::from_slice(&from_file.stdout).unwrap();
    assert_eq!(header["encrypted_data_keys"].as_array().unwrap().len(), 2);
    let message = env.read("store/a/one.enc");
    let from_stdin = env.run_stdin(&["inspect", "-"], &message).ok();
    assert_eq!(from_stdin.stdout, from_file.stdout);
    let from_stdin = env.run_stdin(&["inspect"], &message).ok();
    assert_eq!(from_stdin.stdout, from_file.stdout);
}
