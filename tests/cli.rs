//! End-to-end tests of the `envcrypt` tool (`cli/`): they run the built binary and check
//! outputs, files and exit codes against `CLI.md`.
//!
//! The binary is the one of `tests/common/cli.rs`: built with this test binary's features.

#[path = "common/cli.rs"]
mod tool;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;
use tool::Scratch as Env;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const S0578: &str = "0578";
const S0478: &str = "0478";

/// A scratch directory with a key and some helpers.
impl Env {
    fn new() -> Self {
        let env = Self::empty();
        env.run(&["keygen", "aes256", "-o", "key"]).ok();
        env
    }

    /// Names in the directory (to see that no temporary file was left behind).
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn inspect(&self, name: &str) -> Value {
        let out = self.run(&["inspect", name]).ok();
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
    }
}

const KEY: &str = "raw-aes:ns:key1:key";

fn payload(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Encrypts `plain` (written to `name`) into `name.enc` with extra arguments.
fn encrypt_file(env: &Env, name: &str, plain: &[u8], extra: &[&str]) -> Vec<u8> {
    env.write(name, plain);
    let enc = format!("{name}.enc");
    let mut args = vec!["encrypt", "-k", KEY, "-o", &enc];
    args.extend_from_slice(extra);
    args.push(name);
    env.run(&args).ok();
    env.read(&enc)
}

// ---------------------------------------------------------------------------------------
// keygen

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
    let env = Env::new();
    let meta = fs::metadata(env.path("key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = String::from_utf8(env.read("key")).unwrap();
    assert!(text.ends_with('\n') && text.trim_end().lines().count() == 1);
    assert_eq!(B64.decode(text.trim_end()).unwrap().len(), 32);

    let out = env.run(&["keygen", "aes256", "-o", "key"]).fails(2);
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    assert_eq!(env.read("key"), text.as_bytes(), "existing key kept");
    assert!(!out.stderr.contains(text.trim_end()));

    // To stdout: one base64 line, a different key each time.
    let a = env.run(&["keygen", "aes256"]).ok().stdout_str();
    let b = env.run(&["keygen", "aes256"]).ok().stdout_str();
    assert_eq!(B64.decode(a.trim_end()).unwrap().len(), 32);
    assert_ne!(a, b);
    assert_ne!(a, text);
}

#[test]
fn key_files_raw_or_base64_of_every_aes_size() {
    let env = Env::new();
    let plain = payload(1000);
    env.write("p", &plain);
    for (i, len) in [16usize, 24, 32].into_iter().enumerate() {
        let key = payload(len + i)[i..].to_vec();
        env.write("raw.key", &key);
        env.write("b64.key", format!("{}\n", B64.encode(&key)).as_bytes());
        for name in ["raw.key", "b64.key"] {
            // Secret key files as they should be (others' read access gets a warning line).
            fs::set_permissions(env.path(name), fs::Permissions::from_mode(0o600)).unwrap();
        }
        let encrypt = [
            "encrypt",
            "-k",
            "raw-aes:ns:k:raw.key",
            "-o",
            "p.enc",
            "--force",
            "p",
        ];
        if cfg!(feature = "fips") && len == 24 {
            // AES-192 wrapping is not an approved service of the FIPS module: refused.
            let out = env.run(&encrypt).fails(2);
            assert!(out.stderr.contains("AES-192"), "{}", out.stderr);
            continue;
        }
        env.run(&encrypt).ok();
        env.run(&[
            "decrypt",
            "-k",
            "raw-aes:ns:k:b64.key",
            "-o",
            "p.out",
            "--force",
            "p.enc",
        ])
        .ok();
        assert_eq!(env.read("p.out"), plain, "key of {len} bytes");
    }
    env.write("bad.key", &[7u8; 20]);
    let out = env
        .run(&["encrypt", "-k", "raw-aes:ns:k:bad.key", "-o", "x", "p"])
        .fails(2);
    assert!(out.stderr.contains("bad.key"));
    assert!(!env.exists("x"));
    env.run(&["encrypt", "-k", "raw-aes:ns:k:no-such.key", "-o", "x", "p"])
        .fails(3);
}

// ---------------------------------------------------------------------------------------
// round trips

#[test]
fn round_trip_files_both_suites() {
    let env = Env::new();
    for suite in [S0578, S0478] {
        for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096, 100_000] {
            let plain = payload(len);
            let enc = encrypt_file(
                &env,
                "p",
                &plain,
                &["--suite", suite, "--frame-length", "4096"],
            );
            assert!(enc.len() > len);
            let h = env.inspect("p.enc");
            assert_eq!(h["suite_id"], format!("0x{suite}"));
            assert_eq!(h["frame_length"], 4096);
            env.run(&["decrypt", "-k", KEY, "-o", "p.out", "p.enc"])
                .ok();
            assert_eq!(env.read("p.out"), plain, "suite {suite}, {len} bytes");
            fs::remove_file(env.path("p.enc")).unwrap();
            fs::remove_file(env.path("p.out")).unwrap();
        }
    }
    assert_eq!(env.files(), ["key", "p"], "no temporary files left");
}

#[test]
fn round_trip_pipes_both_suites() {
    let env = Env::new();
    let plain = payload(300_000);
    for suite in [S0578, S0478] {
        let enc = env
            .run_stdin(&["encrypt", "-k", KEY, "--suite", suite], &plain)
            .ok()
            .stdout;
        assert!(enc.len() > plain.len());
        let dec = env
            .run_stdin(&["decrypt", "-k", KEY, "-"], &enc)
            .ok()
            .stdout;
        assert_eq!(dec, plain, "suite {suite}");
        // `-` names stdin explicitly; a file input to stdout also works.
        let enc2 = env
            .run_stdin(&["encrypt", "-k", KEY, "--suite", suite, "-"], &plain)
            .ok()
            .stdout;
        env.write("m.enc", &enc2);
        let dec2 = env.run(&["decrypt", "-k", KEY, "m.enc"]).ok().stdout;
        assert_eq!(dec2, plain);
        let h: Value =
            serde_json::from_slice(&env.run_stdin(&["inspect"], &enc).ok().stdout).expect("JSON");
        assert_eq!(h["suite_id"], format!("0x{suite}"));
    }
}

#[test]
fn default_suite_and_frame_length() {
    let env = Env::new();
    encrypt_file(&env, "p", &payload(70_000), &[]);
    let h = env.inspect("p.enc");
    assert_eq!(h["suite_id"], "0x0578");
    assert_eq!(h["frame_length"], 65536);
}

#[test]
fn several_keyrings_each_can_decrypt() {
    let env = Env::new();
    env.run(&["keygen", "aes256", "-o", "key2"]).ok();
    env.run(&["keygen", "aes256", "-o", "key3"]).ok();
    let plain = payload(5000);
    encrypt_file(&env, "p", &plain, &["-k", "raw-aes:escrow:key2:key2"]);
    let h = env.inspect("p.enc");
    let edks = h["encrypted_data_keys"].as_array().unwrap();
    assert_eq!(edks.len(), 2);
    assert_eq!(edks[0]["provider_id"], "ns");
    assert_eq!(edks[1]["provider_id"], "escrow");

    for keys in [
        vec!["-k", KEY],
        vec!["-k", "raw-aes:escrow:key2:key2"],
        vec![
            "-k",
            "raw-aes:other:key3:key3",
            "-k",
            "raw-aes:escrow:key2:key2",
        ],
    ] {
        let mut args = vec!["decrypt"];
        args.extend(keys);
        args.push("p.enc");
        assert_eq!(env.run(&args).ok().stdout, plain);
    }
    env.run(&["decrypt", "-k", "raw-aes:other:key3:key3", "p.enc"])
        .fails(1);
    // --max-edks below the message's count.
    env.run(&["decrypt", "-k", KEY, "--max-edks", "1", "p.enc"])
        .fails(1);
    env.run(&["decrypt", "-k", KEY, "--max-edks", "2", "p.enc"])
        .ok();
}

// ---------------------------------------------------------------------------------------
// encryption context

#[test]
fn context_must_match() {
    let env = Env::new();
    let plain = payload(10_000);
    encrypt_file(&env, "p", &plain, &["-c", "study=ct-42", "-c", "site=a"]);
    let h = env.inspect("p.enc");
    assert_eq!(h["encryption_context"]["study"], "ct-42");
    assert_eq!(h["encryption_context"]["site"], "a");

    let out = env
        .run(&[
            "decrypt",
            "-k",
            KEY,
            "-c",
            "study=ct-42",
            "-o",
            "ok",
            "p.enc",
        ])
        .ok();
    assert!(out.stdout.is_empty());
    assert_eq!(env.read("ok"), plain);
    env.run(&[
        "decrypt",
        "-k",
        KEY,
        "-c",
        "study=ct-42",
        "-c",
        "site=a",
        "p.enc",
    ])
    .ok();
    for bad in ["study=mr-1", "missing=x", "site=b"] {
        let out = env
            .run(&["decrypt", "-k", KEY, "-c", bad, "-o", "bad", "p.enc"])
            .fails(1);
        assert!(out.stderr.contains("context"), "{}", out.stderr);
        assert!(!env.exists("bad"), "no output on failure");
    }
    // Malformed pairs, a key given twice, a reserved key.
    env.run(&["encrypt", "-k", KEY, "-c", "novalue", "p"])
        .fails(2);
    env.run(&["encrypt", "-k", KEY, "-c", "=v", "p"]).fails(2);
    env.run(&["encrypt", "-k", KEY, "-c", "a=1", "-c", "a=2", "p"])
        .fails(2);
    env.run(&["encrypt", "-k", KEY, "-c", "aws-crypto-x=1", "-o", "r", "p"])
        .fails(1);
    assert!(!env.exists("r"));
}

#[test]
fn required_context_is_authenticated_but_not_stored() {
    let env = Env::new();
    let plain = payload(20_000);
    encrypt_file(
        &env,
        "p",
        &plain,
        &[
            "--suite",
            S0478,
            "-c",
            "a=b",
            "--required-context",
            "tenant=42",
        ],
    );
    let h = env.inspect("p.enc");
    assert_eq!(h["encryption_context"]["a"], "b");
    assert!(h["encryption_context"].get("tenant").is_none());

    env.run(&["decrypt", "-k", KEY, "p.enc"]).fails(1);
    env.run(&[
        "decrypt",
        "-k",
        KEY,
        "--required-context",
        "tenant=43",
        "p.enc",
    ])
    .fails(1);
    let out = env
        .run(&[
            "decrypt",
            "-k",
            KEY,
            "--required-context",
            "tenant=42",
            "p.enc",
        ])
        .ok();
    assert_eq!(out.stdout, plain);
    // A stored pair may be repeated with its value, not with another.
    env.run(&[
        "decrypt",
        "-k",
        KEY,
        "--required-context",
        "tenant=42",
        "--required-context",
        "a=b",
        "p.enc",
    ])
    .ok();
    env.run(&[
        "decrypt",
        "-k",
        KEY,
        "--required-context",
        "tenant=42",
        "--required-context",
        "a=c",
        "p.enc",
    ])
    .fails(1);
}

// ---------------------------------------------------------------------------------------
// bad input: exit 1, nothing released, nothing lost

#[test]
fn tampered_message_fails_and_leaves_nothing() {
    let env = Env::new();
    for suite in [S0578, S0478] {
        let enc = encrypt_file(
            &env,
            "p",
            &payload(50_000),
            &["--suite", suite, "--frame-length", "4096", "--force"],
        );
        let header_len = env.inspect("p.enc")["header_length"].as_u64().unwrap() as usize;
        for pos in [
            5,
            header_len - 1,
            header_len + 20,
            enc.len() / 2,
            enc.len() - 1,
        ] {
            let mut bad = enc.clone();
            bad[pos] ^= 0x01;
            env.write("bad.enc", &bad);
            let out = env
                .run(&["decrypt", "-k", KEY, "-o", "out", "bad.enc"])
                .fails(1);
            assert!(
                !env.exists("out"),
                "suite {suite} pos {pos}: no output file"
            );
            assert_eq!(env.read("bad.enc"), bad, "input untouched");
            assert!(!out.stderr.contains("panicked"));
            // Also through a pipe.
            env.run_stdin(&["decrypt", "-k", KEY], &bad).fails(1);
        }
        assert_eq!(
            env.files(),
            ["bad.enc", "key", "p", "p.enc"],
            "no temporary files left"
        );
    }
}

/// A signed message whose frames all verify but whose signature does not (anyone holding
/// the data key can make one): nothing reaches stdout, whether it is a pipe or a file it was
/// redirected to, unless `--unverified-stream` asks for the frames.
#[test]
fn signed_message_to_stdout_releases_nothing_before_the_signature() {
    let env = Env::new();
    let plain = payload(200_000);
    let enc = encrypt_file(&env, "p", &plain, &["--frame-length", "4096"]);
    let mut bad = enc.clone();
    *bad.last_mut().unwrap() ^= 0x01; // the signature's last byte
    env.write("bad.enc", &bad);

    // stdout a pipe.
    let out = env.run_stdin(&["decrypt", "-k", KEY], &bad).fails(1);
    assert!(
        out.stdout.is_empty(),
        "{} bytes on stdout",
        out.stdout.len()
    );
    assert!(out.stderr.contains("signature"), "{}", out.stderr);

    // stdout redirected to a regular file.
    let redirected = fs::File::create(env.path("redirected")).unwrap();
    let mut cmd = tool::command(env.dir.path(), &["decrypt", "-k", KEY, "bad.enc"]);
    cmd.stdout(redirected).stderr(std::process::Stdio::null());
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(fs::metadata(env.path("redirected")).unwrap().len(), 0);

    // The opt-in releases the verified frames before failing.
    let out = env
        .run_stdin(&["decrypt", "-k", KEY, "--unverified-stream"], &bad)
        .fails(1);
    assert_eq!(out.stdout, &plain[..48 * 4096]);

    // The good message still streams whole.
    let out = env.run_stdin(&["decrypt", "-k", KEY], &enc).ok();
    assert_eq!(out.stdout, plain);
}

#[test]
fn truncated_or_extended_message_fails() {
    let env = Env::new();
    for suite in [S0578, S0478] {
        let enc = encrypt_file(
            &env,
            "p",
            &payload(40_000),
            &["--suite", suite, "--frame-length", "4096", "--force"],
        );
        for len in [0, 1, 40, enc.len() / 2, enc.len() - 1] {
            env.write("t.enc", &enc[..len]);
            env.run(&["decrypt", "-k", KEY, "-o", "out", "t.enc"])
                .fails(1);
            assert!(!env.exists("out"));
            env.run_stdin(&["decrypt", "-k", KEY], &enc[..len]).fails(1);
        }
        let mut longer = enc.clone();
        longer.push(0);
        env.write("t.enc", &longer);
        env.run(&["decrypt", "-k", KEY, "-o", "out", "t.enc"])
            .fails(1);
        assert!(!env.exists("out"));
    }
    env.write("empty", b"");
    env.run(&["inspect", "empty"]).fails(1);
    env.write("junk", b"not a message at all");
    env.run(&["inspect", "junk"]).fails(1);
}

#[test]
fn wrong_key_fails() {
    let env = Env::new();
    env.run(&["keygen", "aes256", "-o", "other"]).ok();
    encrypt_file(&env, "p", &payload(3000), &[]);
    // Same namespace and name, other key bytes: mine but failed.
    let out = env
        .run(&[
            "decrypt",
            "-k",
            "raw-aes:ns:key1:other",
            "-o",
            "out",
            "p.enc",
        ])
        .fails(1);
    assert!(!env.exists("out"));
    let other_key = String::from_utf8(env.read("other")).unwrap();
    let key = String::from_utf8(env.read("key")).unwrap();
    assert!(!out.stderr.contains(other_key.trim()) && !out.stderr.contains(key.trim()));
    // Another name: not mine.
    env.run(&["decrypt", "-k", "raw-aes:ns:nope:key", "p.enc"])
        .fails(1);
}

#[test]
fn unsigned_only_refuses_signed_messages() {
    let env = Env::new();
    let plain = payload(2000);
    encrypt_file(&env, "p", &plain, &["--suite", S0578]);
    let out = env
        .run(&[
            "decrypt",
            "-k",
            KEY,
            "--unsigned-only",
            "-o",
            "out",
            "p.enc",
        ])
        .fails(1);
    assert!(out.stderr.contains("signed"), "{}", out.stderr);
    assert!(!env.exists("out"));
    encrypt_file(&env, "q", &plain, &["--suite", S0478]);
    let out = env
        .run(&["decrypt", "-k", KEY, "--unsigned-only", "q.enc"])
        .ok();
    assert_eq!(out.stdout, plain);
}

#[test]
fn max_frame_length_limit() {
    let env = Env::new();
    encrypt_file(&env, "p", &payload(10_000), &["--frame-length", "4096"]);
    env.run(&["decrypt", "-k", KEY, "--max-frame-length", "4095", "p.enc"])
        .fails(1);
    env.run(&["decrypt", "-k", KEY, "--max-frame-length", "4096", "p.enc"])
        .ok();
    env.run(&["encrypt", "-k", KEY, "--frame-length", "0", "p"])
        .fails(2);
}

// ---------------------------------------------------------------------------------------
// outputs

#[test]
fn existing_output_needs_force() {
    let env = Env::new();
    let plain = payload(9000);
    env.write("p", &plain);
    env.write("out.enc", b"precious");
    let out = env
        .run(&["encrypt", "-k", KEY, "-o", "out.enc", "p"])
        .fails(2);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(env.read("out.enc"), b"precious");

    env.run(&["encrypt", "-k", KEY, "-o", "out.enc", "--force", "p"])
        .ok();
    assert_ne!(env.read("out.enc"), b"precious");
    env.write("out", b"also precious");
    env.run(&["decrypt", "-k", KEY, "-o", "out", "out.enc"])
        .fails(2);
    assert_eq!(env.read("out"), b"also precious");
    env.run(&["decrypt", "-k", KEY, "-o", "out", "--force", "out.enc"])
        .ok();
    assert_eq!(env.read("out"), plain);

    // A failed run with --force keeps the existing output.
    let mut bad = env.read("out.enc");
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    env.write("bad.enc", &bad);
    env.run(&["decrypt", "-k", KEY, "-o", "out", "--force", "bad.enc"])
        .fails(1);
    assert_eq!(env.read("out"), plain);

    // The output may not be the input, even with --force.
    env.run(&["encrypt", "-k", KEY, "-o", "p", "--force", "p"])
        .fails(2);
    assert_eq!(env.read("p"), plain);
    assert_eq!(env.files(), ["bad.enc", "key", "out", "out.enc", "p"]);
}

#[test]
fn missing_input_is_an_io_error() {
    let env = Env::new();
    let out = env
        .run(&["encrypt", "-k", KEY, "-o", "x.enc", "no-such-file"])
        .fails(3);
    assert!(out.stderr.contains("no-such-file"), "{}", out.stderr);
    assert!(!env.exists("x.enc"));
    env.run(&["decrypt", "-k", KEY, "no-such-file"]).fails(3);
    env.run(&["inspect", "no-such-file"]).fails(3);
    env.run(&["encrypt", "-k", KEY, "-o", "x", "no-dir/p"])
        .fails(3);
    env.write("p", b"data");
    env.run(&["encrypt", "-k", KEY, "-o", "no-dir/x", "p"])
        .fails(3);
}

// ---------------------------------------------------------------------------------------
// keyring specs and usage

#[test]
fn keyring_specs() {
    let env = Env::new();
    env.write("p", b"data");
    let out = env.run(&["encrypt", "-k", "foo:bar", "p"]).fails(2);
    assert!(
        out.stderr.contains("unknown keyring type"),
        "{}",
        out.stderr
    );
    env.run(&["encrypt", "-k", "key", "p"]).fails(2);
    for spec in [
        "aws-kms:arn:aws:kms:us-east-1:111122223333:key/abc",
        "aws-kms-discovery:111122223333",
        "pkcs11:token=t;object=o?module-path=/x.so&pin-value=SECRET-PIN",
    ] {
        if cfg!(feature = "aws-kms") && spec.starts_with("aws-kms") {
            continue; // built with KMS: tests/cli_kms.rs covers these specs.
        }
        if cfg!(feature = "pkcs11") && spec.starts_with("pkcs11") {
            continue; // built with PKCS#11: tests/cli_pkcs11.rs covers this spec.
        }
        let out = env.run(&["decrypt", "-k", spec, "p"]).fails(2);
        assert!(
            out.stderr.contains("not yet supported in this build"),
            "{spec}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("SECRET-PIN"));
    }
    for spec in [
        "raw-aes:ns:key",
        "raw-aes::n:key",
        "raw-aes:ns::key",
        "raw-aes:ns:n:",
    ] {
        env.run(&["encrypt", "-k", spec, "p"]).fails(2);
    }
    // The namespace aws-kms is reserved to KMS.
    env.run(&["encrypt", "-k", "raw-aes:aws-kms:n:key", "p"])
        .fails(2);
    // -k is required; unknown options, suites and providers are usage errors.
    env.run(&["encrypt", "p"]).fails(2);
    env.run(&["encrypt", "-k", KEY, "--suite", "0178", "p"])
        .fails(2);
    env.run(&["encrypt", "-k", KEY, "--bogus", "p"]).fails(2);
    env.run(&["encrypt", "-k", KEY, "-r", "p"]).fails(2);
    env.run(&["--provider", "nope", "info"]).fails(2);
    env.run(&["frobnicate"]).fails(2);
    assert!(!env.run(&["--help"]).ok().stdout.is_empty());
    let v = env.run(&["--version"]).ok().stdout_str();
    assert!(v.contains(env!("CARGO_PKG_VERSION")));
}

// ---------------------------------------------------------------------------------------
// inspect and info

#[test]
fn inspect_prints_the_header() {
    let env = Env::new();
    let enc = encrypt_file(
        &env,
        "p",
        &payload(1000),
        &[
            "--suite",
            S0478,
            "-c",
            "k=v",
            "-c",
            "ünï=cödé",
            "--frame-length",
            "8192",
        ],
    );
    let out = env.run(&["inspect", "p.enc"]).ok();
    let text = out.stdout_str();
    assert_eq!(text.trim_end().lines().count(), 1, "one JSON object");
    let h: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "version",
        "suite_id",
        "suite",
        "message_id",
        "encryption_context",
        "encrypted_data_keys",
        "content_type",
        "frame_length",
        "header_length",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(h["version"], 2);
    assert_eq!(h["suite_id"], "0x0478");
    assert_eq!(h["suite"], "AES_256_GCM_HKDF_SHA512_COMMIT_KEY");
    let id = h["message_id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let context: BTreeMap<String, String> =
        serde_json::from_value(h["encryption_context"].clone()).unwrap();
    assert_eq!(
        context,
        BTreeMap::from([
            ("k".to_owned(), "v".to_owned()),
            ("ünï".to_owned(), "cödé".to_owned())
        ])
    );
    let edk = &h["encrypted_data_keys"][0];
    assert_eq!(edk["provider_id"], "ns");
    let info = B64.decode(edk["provider_info"].as_str().unwrap()).unwrap();
    // Raw AES provider info: key name || u32 tag bits || u32 IV length || IV.
    assert_eq!(&info[..4], b"key1");
    assert_eq!(&info[4..12], &[0, 0, 0, 128, 0, 0, 0, 12]);
    assert_eq!(info.len(), 4 + 8 + 12);
    assert_eq!(edk["ciphertext_length"], 48);
    assert_eq!(h["content_type"], "framed");
    assert_eq!(h["frame_length"], 8192);
    // The body starts right after the header: here one final frame.
    let hl = h["header_length"].as_u64().unwrap() as usize;
    assert_eq!(&enc[hl..hl + 4], &[0xff; 4]);
    assert_eq!(&enc[hl + 4..hl + 8], &[0, 0, 0, 1]);
    // A signed message carries its public key in the context.
    encrypt_file(&env, "s", b"x", &["--suite", S0578]);
    let h = env.inspect("s.enc");
    assert_eq!(h["suite"], "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384");
    assert!(h["encryption_context"]["aws-crypto-public-key"].is_string());
}

#[test]
fn info_prints_provider_json() {
    // The build's providers, default first (the tool and this test share the features).
    let compiled: Vec<&str> = envcrypt::crypto::providers()
        .iter()
        .map(|p| p.name)
        .collect();
    let default = envcrypt::crypto::default_provider();
    let env = Env::new();
    let mut runs = vec![(vec!["info"], default)];
    for p in envcrypt::crypto::providers() {
        runs.push((vec!["--provider", p.name, "info"], *p));
        // The global option also goes after the subcommand.
        runs.push((vec!["info", "--provider", p.name], *p));
    }
    for (args, provider) in runs {
        let out = env.run(&args).ok();
        let text = out.stdout_str();
        assert_eq!(text.trim_end().lines().count(), 1, "one JSON object");
        let v: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "fips",
                "keyrings",
                "modules",
                "provider",
                "providers",
                "version"
            ]
        );
        // Which module serves each component: the provider's own answer.
        let modules: serde_json::Map<String, Value> = provider
            .modules()
            .into_iter()
            .map(|(c, m)| (c.name().to_owned(), Value::from(m)))
            .collect();
        assert_eq!(v["modules"], Value::Object(modules), "{args:?}");
        if provider.name == "aws-lc-rs+openssl" {
            assert_eq!(v["modules"]["signature"], "aws-lc-rs+openssl");
            assert_eq!(v["modules"]["digest"], "openssl");
            assert_eq!(v["modules"]["aead"], "aws-lc-rs");
        }
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["provider"], provider.name, "{args:?}");
        assert_eq!(v["fips"], provider.fips(), "{args:?}");
        assert_eq!(v["providers"], serde_json::json!(compiled));
        // The keyring kinds of CLI.md this build offers (the tool shares this test's features).
        let mut keyrings = vec!["raw-aes", "raw-rsa"];
        if cfg!(feature = "aws-kms") {
            keyrings.extend(["aws-kms", "aws-kms-discovery"]);
        }
        if cfg!(feature = "pkcs11") {
            keyrings.push("pkcs11");
        }
        assert_eq!(v["keyrings"], serde_json::json!(keyrings), "{args:?}");
    }
    // CLI.md: the FIPS provider by default in a `fips` build, else aws-lc-rs (with
    // OpenSSL's signatures and digests when the `openssl` feature is on).
    let expected = if cfg!(feature = "fips") {
        "aws-lc-rs-fips"
    } else if cfg!(all(feature = "aws-lc-rs", feature = "openssl")) {
        // Both backends: AWS-LC with OpenSSL's faster SHA-384 (SECURITY.md).
        "aws-lc-rs+openssl"
    } else if cfg!(feature = "aws-lc-rs") {
        "aws-lc-rs"
    } else {
        "rust-crypto"
    };
    assert_eq!(default.name, expected);
    let out = env.run(&["--provider", "nope", "info"]).fails(2);
    assert!(out.stderr.contains("available:"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// interop: messages written by the official .NET ESDK

/// The raw AES vectors of `valid-Net-4.0.0.zip`: suites 0014, 0046, 0078 (version 1) and
/// 0478, 0578, each with the pairs `key1=val1, key2=val2` as required context.
#[test]
fn decrypts_official_vectors_with_allow_v1_and_required_context() {
    let dir = std::env::var_os("ENVCRYPT_ESDK_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/esdk"));
    let zip_path = dir.join("valid-Net-4.0.0.zip");
    let file = fs::File::open(&zip_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set ENVCRYPT_ESDK_VECTORS to the vectors directory)",
            zip_path.display()
        )
    });
    let mut zip = zip::ZipArchive::new(file).expect("zip");
    let mut read = |name: &str| {
        let mut v = Vec::new();
        zip.by_name(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .read_to_end(&mut v)
            .unwrap();
        v
    };
    let keys: Value = serde_json::from_slice(&read("keys.json")).unwrap();
    let manifest: Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    let env = Env::new();
    let mut seen = Vec::new();
    for (id, test) in manifest["tests"].as_object().unwrap() {
        let mk = &test["master-keys"][0];
        assert_eq!(mk["type"], "raw");
        let key = &keys["keys"][mk["key"].as_str().unwrap()];
        env.write("vector.key", key["material"].as_str().unwrap().as_bytes());
        // A key file readable by others draws a warning line; keep it private.
        fs::set_permissions(env.path("vector.key"), fs::Permissions::from_mode(0o600)).unwrap();
        let spec = format!(
            "raw-aes:{}:{}:vector.key",
            mk["provider-id"].as_str().unwrap(),
            key["key-id"].as_str().unwrap()
        );
        let file_of = |v: &Value| {
            v.as_str()
                .unwrap()
                .strip_prefix("file://")
                .unwrap()
                .to_owned()
        };
        env.write("vector.enc", &read(&file_of(&test["ciphertext"])));
        let plain = read(&file_of(&test["result"]["output"]["plaintext"]));
        let mut args = vec![
            "decrypt".to_owned(),
            "-k".to_owned(),
            spec,
            "--allow-v1".to_owned(),
        ];
        for (k, v) in test["encryption-context"].as_object().unwrap() {
            args.push("--required-context".to_owned());
            args.push(format!("{k}={}", v.as_str().unwrap()));
        }
        args.push("vector.enc".to_owned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&argv).ok();
        assert_eq!(out.stdout, plain, "{id}");

        // Without the required pairs: fails. Version 1 without --allow-v1: refused.
        let without: Vec<&str> = ["decrypt", "-k", argv[2], "--allow-v1", "vector.enc"].to_vec();
        env.run(&without).fails(1);
        let version = env.inspect("vector.enc")["version"].as_u64().unwrap();
        let strict: Vec<&str> = argv
            .iter()
            .copied()
            .filter(|a| *a != "--allow-v1")
            .collect();
        if version == 1 {
            let out = env.run(&strict).fails(1);
            assert!(out.stderr.contains("commitment"), "{}", out.stderr);
        } else {
            env.run(&strict).ok();
        }
        seen.push(id[..4].to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["0014", "0046", "0078", "0478", "0578"]);
}

// ---------------------------------------------------------------------------------------
// demo

#[test]
fn demo_round_trip() {
    let env = Env::new();
    let out = env
        .run(&["demo", "--size", "1048576", "--dir", "demo"])
        .ok();
    let text = out.stdout_str();
    assert!(text.contains("identical (SHA-256"), "{text}");
    assert!(
        text.contains("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"),
        "{text}"
    );
    assert!(text.contains("MB/s"), "{text}");
    let image = fs::read(env.path("demo/envcrypt-demo.dcm")).unwrap();
    assert_eq!(image.len(), 1_048_576);
    // CLI.md: the check is SHA-256; the summary shows it (`sha256sum` agrees).
    let digest = text
        .split("SHA-256 ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no SHA-256 in {text}"));
    let sum = Command::new("sha256sum")
        .arg(env.path("demo/envcrypt-demo.dcm"))
        .output()
        .expect("sha256sum (coreutils)");
    let sum = String::from_utf8(sum.stdout).unwrap();
    assert_eq!(Some(digest), sum.split_whitespace().next(), "{text}");
    assert_eq!(&image[..128], &[0u8; 128][..]);
    assert_eq!(&image[128..132], b"DICM");
    let decrypted = fs::read(env.path("demo/envcrypt-demo.decrypted.dcm")).unwrap();
    assert_eq!(decrypted, image);
    let mode = fs::metadata(env.path("demo/envcrypt-demo.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The message decrypts with the tool too.
    let dec = env
        .run(&[
            "decrypt",
            "-k",
            "raw-aes:envcrypt-demo:demo-key:demo/envcrypt-demo.key",
            "demo/envcrypt-demo.dcm.enc",
        ])
        .ok();
    assert_eq!(dec.stdout, image);
    // A second run in the same directory refuses to overwrite.
    env.run(&["demo", "--size", "1048576", "--dir", "demo"])
        .fails(2);

    // In a temporary directory (removed afterwards), with the other suite and odd sizes.
    let out = env
        .run(&[
            "demo",
            "--size",
            "100001",
            "--suite",
            "0478",
            "--frame-length",
            "4096",
        ])
        .ok();
    let text = out.stdout_str();
    assert!(text.contains("identical (SHA-256"), "{text}");
    assert!(
        text.contains("0x0478 AES_256_GCM_HKDF_SHA512_COMMIT_KEY\n"),
        "{text}"
    );
    env.run(&["demo", "--size", "10"]).fails(2);
}

// ---------------------------------------------------------------------------------------
// raw RSA: keygen rsa, raw-rsa:NAMESPACE:NAME:PADDING:PATH

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
const RSA_PADDINGS: [&str; 5] = [
    "pkcs1",
    "oaep-sha1",
    "oaep-sha256",
    "oaep-sha384",
    "oaep-sha512",
];

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn keygen_rsa_writes_pkcs8_and_spki_pem_and_refuses_to_overwrite() {
    let env = Env::new();
    env.run(&["keygen", "rsa", "-o", "rsa"]).ok();
    let private = String::from_utf8(env.read("rsa.pem")).unwrap();
    let public = String::from_utf8(env.read("rsa.pub.pem")).unwrap();
    assert!(
        private.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{private}"
    );
    assert!(private.ends_with("-----END PRIVATE KEY-----\n"));
    assert!(
        public.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public}"
    );
    assert!(public.ends_with("-----END PUBLIC KEY-----\n"));
    assert!(private.lines().all(|l| l.len() <= 64));
    let mode = |name| fs::metadata(env.path(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("rsa.pem"), 0o600);
    assert_eq!(mode("rsa.pub.pem") & 0o600, 0o600);
    assert_eq!(mode("rsa.pub.pem") & 0o022, 0, "no group/other write");
    // SPKI of a 3072-bit key (the default): 422 bytes of DER.
    let der = |pem: &str| {
        B64.decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap()
    };
    assert_eq!(der(&public).len(), 422);
    assert!(der(&private).len() > 1700);

    // Never overwrites either file; nothing new is written.
    for prefix in ["rsa", "half"] {
        if prefix == "half" {
            env.write("half.pub.pem", b"x");
        }
        let out = env.run(&["keygen", "rsa", "-o", prefix]).fails(2);
        assert!(out.stderr.contains("exists"), "{}", out.stderr);
    }
    assert_eq!(env.read("rsa.pem"), private.as_bytes());
    assert!(!env.exists("half.pem"));
    // Other sizes.
    env.run(&["keygen", "rsa", "--bits", "2048", "-o", "small"])
        .ok();
    let small = String::from_utf8(env.read("small.pub.pem")).unwrap();
    assert_eq!(der(&small).len(), 294);
    let out = env
        .run(&["keygen", "rsa", "--bits", "1024", "-o", "weak"])
        .fails(2);
    assert!(out.stderr.contains("2048, 3072 or 4096"), "{}", out.stderr);
    assert!(!env.exists("weak.pem") && !env.exists("weak.pub.pem"));
    env.run(&["keygen", "rsa"]).fails(2); // -o PREFIX is required
}

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn raw_rsa_encrypt_with_public_decrypt_with_private_every_padding() {
    let env = Env::new();
    env.run(&["keygen", "rsa", "-o", "rsa"]).ok();
    let plain = payload(100_000);
    env.write("p", &plain);
    for (i, padding) in RSA_PADDINGS.into_iter().enumerate() {
        let suite = [S0578, S0478][i % 2];
        let public = format!("raw-rsa:ns:rsa-key:{padding}:rsa.pub.pem");
        let private = format!("raw-rsa:ns:rsa-key:{padding}:rsa.pem");
        env.run(&[
            "encrypt", "-k", &public, "--suite", suite, "-o", "p.enc", "--force", "p",
        ])
        .ok();
        let h = env.inspect("p.enc");
        let edks = h["encrypted_data_keys"].as_array().unwrap();
        assert_eq!(edks.len(), 1, "{padding}");
        assert_eq!(edks[0]["provider_id"], "ns");
        assert_eq!(edks[0]["provider_info"], B64.encode("rsa-key"));
        assert_eq!(edks[0]["ciphertext_length"], 384, "{padding}: RSA-3072");
        env.run(&["decrypt", "-k", &private, "-o", "p.out", "--force", "p.enc"])
            .ok();
        assert_eq!(env.read("p.out"), plain, "{padding}");
        // The private key encrypts too (with its public half); through pipes.
        let enc = env.run_stdin(&["encrypt", "-k", &private], &plain).ok();
        let dec = env
            .run_stdin(&["decrypt", "-k", &private], &enc.stdout)
            .ok();
        assert_eq!(dec.stdout, plain, "{padding}");

        // Any other padding fails as bad data (exit 1) and leaves no output.
        let other = RSA_PADDINGS[(i + 1) % RSA_PADDINGS.len()];
        let wrong = format!("raw-rsa:ns:rsa-key:{other}:rsa.pem");
        let out = env
            .run(&["decrypt", "-k", &wrong, "-o", "wrong.out", "p.enc"])
            .fails(1);
        assert!(out.stderr.contains("could not unwrap"), "{}", out.stderr);
        assert!(!env.exists("wrong.out"));
    }
    // Another name: not this keyring's EDK (exit 1); another key pair: unwrap fails (exit 1).
    env.run(&[
        "decrypt",
        "-k",
        "raw-rsa:ns:other:oaep-sha512:rsa.pem",
        "-o",
        "x",
        "p.enc",
    ])
    .fails(1);
    env.run(&["keygen", "rsa", "--bits", "2048", "-o", "other"])
        .ok();
    let out = env
        .run(&[
            "decrypt",
            "-k",
            "raw-rsa:ns:rsa-key:oaep-sha512:other.pem",
            "-o",
            "x",
            "p.enc",
        ])
        .fails(1);
    assert!(out.stderr.contains("could not unwrap"), "{}", out.stderr);
    // A public key cannot decrypt: a usage error before anything is read.
    let out = env
        .run(&[
            "decrypt",
            "-k",
            "raw-rsa:ns:rsa-key:oaep-sha512:rsa.pub.pem",
            "-o",
            "x",
            "p.enc",
        ])
        .fails(2);
    assert!(out.stderr.contains("holds a public key"), "{}", out.stderr);
    assert!(!env.exists("x"));
    // The private key's bytes never appear in an error.
    let private = String::from_utf8(env.read("rsa.pem")).unwrap();
    let line = private.lines().nth(5).unwrap();
    assert!(!out.stderr.contains(line));
}

/// Raw AES makes the data key, raw RSA wraps it too: each decrypts alone.
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn raw_aes_and_raw_rsa_keyrings_together() {
    let env = Env::new();
    env.run(&["keygen", "rsa", "--bits", "2048", "-o", "rsa"])
        .ok();
    let rsa_pub = "raw-rsa:ns:escrow:oaep-sha256:rsa.pub.pem";
    let rsa = "raw-rsa:ns:escrow:oaep-sha256:rsa.pem";
    let plain = payload(70_000);
    env.write("p", &plain);
    env.run(&["encrypt", "-k", KEY, "-k", rsa_pub, "-o", "p.enc", "p"])
        .ok();
    let h = env.inspect("p.enc");
    let edks = h["encrypted_data_keys"].as_array().unwrap();
    assert_eq!(edks.len(), 2);
    assert_eq!(edks[1]["provider_info"], B64.encode("escrow"));
    for keyrings in [vec![KEY], vec![rsa], vec![rsa, KEY]] {
        let mut args = vec!["decrypt"];
        for k in &keyrings {
            args.extend(["-k", k]);
        }
        args.push("p.enc");
        assert_eq!(env.run(&args).ok().stdout, plain, "{keyrings:?}");
    }
}

#[test]
fn raw_rsa_specs_and_key_files() {
    let env = Env::new();
    env.write("p", b"data");
    env.write("not.pem", b"just text\n");
    env.write("ec.pem",
        b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7\nYfps5mliLmDyn7Z5A/4QCLi8maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==\n-----END PUBLIC KEY-----\n");
    env.write(
        "pkcs1.pem",
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    );
    env.write("bin.pem", &[0xff, 0xfe, 0x00, 0x80]);
    for (spec, needle) in [
        (
            "raw-rsa:ns:name:key.pem",
            "raw-rsa:NAMESPACE:NAME:PADDING:PATH",
        ),
        ("raw-rsa::name:pkcs1:key.pem", "none empty"),
        ("raw-rsa:ns:name:pkcs1:", "none empty"),
        ("raw-rsa:ns:name:oaep:key.pem", "unknown padding"),
        ("raw-rsa:ns:name:OAEP-SHA256:key.pem", "unknown padding"),
        ("raw-rsa:ns:name:pkcs1:not.pem", "no -----BEGIN"),
        ("raw-rsa:ns:name:pkcs1:ec.pem", "not rsaEncryption"),
        ("raw-rsa:ns:name:pkcs1:pkcs1.pem", "PKCS#1"),
        ("raw-rsa:ns:name:pkcs1:bin.pem", "not a PEM file"),
        (
            "raw-rsa:aws-kms:name:pkcs1:ec.pem",
            "may not begin with aws-kms",
        ),
    ] {
        let out = env.run(&["encrypt", "-k", spec, "-o", "x", "p"]).fails(2);
        assert!(out.stderr.contains(needle), "{spec}: {}", out.stderr);
        assert!(!env.exists("x"));
    }
    let out = env
        .run(&["encrypt", "-k", "raw-rsa:ns:name:pkcs1:missing.pem", "p"])
        .fails(3);
    assert!(out.stderr.contains("missing.pem"), "{}", out.stderr);
    // PATH is the rest of the spec, colons included.
    let out = env
        .run(&[
            "encrypt",
            "-k",
            "raw-rsa:ns:name:pkcs1:dir:with:colons.pem",
            "p",
        ])
        .fails(3);
    assert!(out.stderr.contains("dir:with:colons.pem"), "{}", out.stderr);
}

/// A provider without RSA (RustCrypto) refuses RSA work as a usage error (exit 2).
#[cfg(feature = "rust-crypto")]
#[test]
fn raw_rsa_with_a_provider_without_rsa_is_a_usage_error() {
    let env = Env::new();
    let info = env.run(&["info"]).ok().stdout_str();
    assert!(
        info.contains("\"rust-crypto\""),
        "the tool was built without rust-crypto ({info}); build it with \
         `cargo build --release -p envcrypt-cli --features rust-crypto` or run the whole \
         `cargo test --features rust-crypto`"
    );
    let out = env
        .run(&["--provider", "rust-crypto", "keygen", "rsa", "-o", "rsa"])
        .fails(2);
    assert!(out.stderr.contains("has no RSA"), "{}", out.stderr);
    assert!(!env.exists("rsa.pem") && !env.exists("rsa.pub.pem"));
    env.write("p", b"data");
    env.write("pub.pem", b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9sgu70LihpBZqbzCj8Jd\n38k6WAstz+kvKfSXhjH/tVnsTS64mWfzUqtS8XJ/XCn+N4z1/HaTR0Qd7LEPVE6g\nUfjcD3T17ufzTFSicol2N/i9INoqHKm+GYgVGn2euRQKCF7QtSXv8U7Rqlw8SGGK\nIInpp0AqQYkiD4xjZtR6e92PdAm2CKicnojtrNa9BnpiQKYFCd5QVFgmhMX6zjIQ\nDqOatBYB5bka4vaQQrvGnuUnSF1fgomFtW0RkVPashWKsL41+iJBSFgDH5NHr6J+\nyKqf3NCJ4AZnAnB8SjXsj2SO9m9OrIYfrjTLFTRQ+n6ut+A9AlD5n7FuQV1lpeIs\nIQIDAQAB\n-----END PUBLIC KEY-----\n");
    let out = env
        .run(&[
            "--provider",
            "rust-crypto",
            "encrypt",
            "-k",
            "raw-rsa:ns:name:oaep-sha256:pub.pem",
            "-o",
            "x",
            "p",
        ])
        .fails(2);
    assert!(
        out.stderr.contains("RSA is not supported"),
        "{}",
        out.stderr
    );
    assert!(!env.exists("x"));
}

// ---------------------------------------------------------------------------------------
// issue 5: the rest of the contract (help, --provider, --threads, failed decrypts leave
// nothing). Folders, pipes between processes, the progress bar and the Python ESDK are in
// `tests/cli_folders.rs`.

#[test]
fn help_texts_show_examples_and_the_context_warning() {
    let env = Env::new();
    for args in [
        &["--help"][..],
        &["encrypt", "--help"],
        &["decrypt", "--help"],
        &["inspect", "--help"],
        &["demo", "--help"],
        &["keygen", "--help"],
        &["info", "--help"],
    ] {
        let text = env.run(args).ok().stdout_str();
        assert!(text.contains("Example"), "{args:?}: {text}");
    }
    for args in [
        &["--help"][..],
        &["encrypt", "--help"],
        &["decrypt", "--help"],
    ] {
        let text = env.run(args).ok().stdout_str();
        assert!(text.contains("UNENCRYPTED"), "{args:?}: {text}");
        assert!(text.contains("patient identifiers"), "{args:?}: {text}");
    }
    let text = env.run(&["encrypt", "--help"]).ok().stdout_str();
    for option in [
        "--recursive",
        "--force",
        "--quiet",
        "--threads",
        "--follow-symlinks",
        "--provider",
        "--suite",
        "--frame-length",
        "--required-context",
    ] {
        assert!(text.contains(option), "{option}: {text}");
    }
    let text = env.run(&["decrypt", "--help"]).ok().stdout_str();
    for option in [
        "--allow-v1",
        "--unsigned-only",
        "--max-edks",
        "--max-frame-length",
        "--required-context",
    ] {
        assert!(text.contains(option), "{option}: {text}");
    }
    // A bare `envcrypt` prints the help with exit 2.
    let out = env.run(&[]);
    assert_eq!(out.code, 2);
}

#[test]
fn provider_option_picks_the_provider_for_each_direction() {
    let env = Env::new();
    let plain = payload(200_000);
    env.write("p", &plain);
    for a in envcrypt::crypto::providers() {
        for b in envcrypt::crypto::providers() {
            env.run(&[
                "--provider",
                a.name,
                "encrypt",
                "-k",
                KEY,
                "-o",
                "p.enc",
                "--force",
                "p",
            ])
            .ok();
            let out = env
                .run(&["decrypt", "--provider", b.name, "-k", KEY, "p.enc"])
                .ok();
            assert_eq!(out.stdout, plain, "{} -> {}", a.name, b.name);
        }
    }
    let out = env
        .run(&[
            "--provider",
            "aws-lc-rs-nope",
            "encrypt",
            "-k",
            KEY,
            "-o",
            "x",
            "p",
        ])
        .fails(2);
    assert!(out.stderr.contains("aws-lc-rs-nope"), "{}", out.stderr);
    assert!(!env.exists("x"));
}

#[test]
fn threads_option_maps_to_the_pipeline() {
    let env = Env::new();
    let plain = payload(1_000_000);
    env.write("p", &plain);
    for threads in ["1", "2", "7"] {
        env.run(&[
            "encrypt",
            "--threads",
            threads,
            "-k",
            KEY,
            "--frame-length",
            "4096",
            "-o",
            "p.enc",
            "--force",
            "p",
        ])
        .ok();
        for dthreads in ["1", "3"] {
            let out = env
                .run(&["decrypt", "--threads", dthreads, "-k", KEY, "p.enc"])
                .ok();
            assert_eq!(out.stdout, plain, "{threads}/{dthreads}");
        }
        let enc = env
            .run_stdin(&["encrypt", "--threads", threads, "-k", KEY], &plain)
            .ok()
            .stdout;
        let dec = env
            .run_stdin(&["decrypt", "--threads", threads, "-k", KEY], &enc)
            .ok()
            .stdout;
        assert_eq!(dec, plain);
    }
    for bad in ["0", "-1", "x", "100000"] {
        env.run(&["encrypt", "--threads", bad, "-k", KEY, "p"])
            .fails(2);
    }
}

/// Tampered, wrong key, context mismatch, truncated: exit 1, no output file (new or
/// existing with `--force`), the input byte-for-byte and time-stamp untouched, no temporary
/// files; from a file or from stdin.
#[test]
fn failed_decrypt_leaves_no_output_and_an_untouched_input() {
    let env = Env::new();
    env.run(&["keygen", "aes256", "-o", "other"]).ok();
    let plain = payload(300_000);
    let enc = encrypt_file(
        &env,
        "p",
        &plain,
        &["-c", "study=s1", "--frame-length", "4096"],
    );
    let mut tampered = enc.clone();
    tampered[enc.len() / 3] ^= 0x08;
    let cases: [(&str, Vec<u8>, Vec<&str>); 4] = [
        ("tampered", tampered, vec!["-k", KEY]),
        (
            "wrong-key",
            enc.clone(),
            vec!["-k", "raw-aes:ns:key1:other"],
        ),
        ("context", enc.clone(), vec!["-k", KEY, "-c", "study=s2"]),
        (
            "truncated",
            enc[..enc.len() - 100].to_vec(),
            vec!["-k", KEY],
        ),
    ];
    for (name, bytes, keys) in &cases {
        let input = format!("{name}.enc");
        env.write(&input, bytes);
        let mtime = fs::metadata(env.path(&input)).unwrap().modified().unwrap();
        // A new output, an existing one with --force, and stdin to a file.
        let runs: [(Vec<&str>, Option<&[u8]>); 3] = [
            (vec!["-o", "out", &input], None),
            (vec!["-o", "kept", "--force", &input], None),
            (vec!["-o", "out", "-"], Some(&bytes[..])),
        ];
        env.write("kept", b"keep me");
        for (extra, stdin) in runs {
            let mut args = vec!["decrypt"];
            args.extend(keys.iter().copied());
            args.extend(extra);
            let out = match stdin {
                Some(data) => env.run_stdin(&args, data),
                None => env.run(&args),
            };
            let out = out.fails(1);
            assert!(!out.stderr.contains("panicked"), "{name}");
            assert!(!env.exists("out"), "{name}: no output file");
            assert_eq!(env.read("kept"), b"keep me", "{name}: existing output kept");
        }
        assert_eq!(&env.read(&input), bytes, "{name}: input untouched");
        assert_eq!(
            fs::metadata(env.path(&input)).unwrap().modified().unwrap(),
            mtime
        );
        fs::remove_file(env.path("kept")).unwrap();
    }
    let mut names = env.files();
    names.retain(|n| n.starts_with('.'));
    assert!(names.is_empty(), "temporary files left: {names:?}");
}

#[test]
fn stdin_to_a_file_and_inspect_from_stdin() {
    let env = Env::new();
    let plain = payload(150_000);
    let out = env
        .run_stdin(&["encrypt", "-k", KEY, "-o", "s.enc"], &plain)
        .ok();
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let enc = env.read("s.enc");
    let out = env
        .run_stdin(&["decrypt", "-k", KEY, "-o", "s.out", "-"], &enc)
        .ok();
    assert!(out.stdout.is_empty());
    assert_eq!(env.read("s.out"), plain);
    let h: Value =
        serde_json::from_slice(&env.run_stdin(&["inspect", "-"], &enc).ok().stdout).unwrap();
    assert_eq!(h, env.inspect("s.enc"));
    // Only the header is needed.
    let hl = h["header_length"].as_u64().unwrap() as usize;
    let h2: Value =
        serde_json::from_slice(&env.run_stdin(&["inspect"], &enc[..hl]).ok().stdout).unwrap();
    assert_eq!(h2, h);
    env.run_stdin(&["inspect"], &enc[..hl - 1]).fails(1);
    // An existing output needs --force from stdin too.
    env.run_stdin(&["encrypt", "-k", KEY, "-o", "s.enc"], &plain)
        .fails(2);
    assert_eq!(env.read("s.enc"), enc);
}

/// Starts `encrypt -` with stdin piped (to `-o out`, or to stdout redirected into the file
/// `piped`), feeds it until it is reading, signals it, and goes on feeding it until it stops
/// reading (its next read after the signal is refused; stdin never ends while it runs, so it
/// cannot finish instead). Returns the exit code and stderr.
fn interrupted_encrypt(env: &Env, signal: &str, to_stdout: bool) -> (Option<i32>, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut args = vec!["encrypt", "-q", "-k", KEY, "-"];
    let stdout = if to_stdout {
        Stdio::from(fs::File::create(env.path("piped")).expect("create"))
    } else {
        args.extend(["-o", "out"]);
        Stdio::null()
    };
    let mut child = tool::command(env.dir.path(), &args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tool");
    let mut stdin = child.stdin.take().expect("stdin");
    // More than a pipe holds: this returns only once the tool is in its read loop (its
    // handler is installed before it reads).
    stdin.write_all(&payload(4 << 20)).expect("feed");
    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let chunk = payload(64 << 10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while stdin.write_all(&chunk).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{signal}: still reading a minute after the signal"
        );
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_interrupted_run_leaves_no_output_and_no_temporary_file() {
    for (signal, to_stdout) in [("-INT", false), ("-TERM", false), ("-INT", true)] {
        let env = Env::new();
        let (code, stderr) = interrupted_encrypt(&env, signal, to_stdout);
        assert_eq!(code, Some(130), "{signal}: exit code 130; stderr: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            "envcrypt: encrypt stdin: interrupted",
            "{signal}: one line"
        );
        let left = if to_stdout {
            vec!["key", "piped"]
        } else {
            vec!["key"]
        };
        assert_eq!(env.files(), left, "{signal}: nothing left behind");
    }
}
