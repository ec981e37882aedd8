//! The `envcrypt` tool with S3 objects (CLI.md "S3", docs/scale-out.md) against a real S3
//! implementation: moto's server, one per test (`common/moto.rs`), reached by the child
//! process only through the usual AWS environment (`AWS_ENDPOINT_URL_S3`, `AWS_REGION`,
//! static credentials). Objects are created and checked behind the tool's back with a plain
//! `aws-sdk-s3` client (`common/s3.rs`).
//!
//! Covered:
//! - single objects: file -> object -> file and stdout, both suites, 0 bytes, small and
//!   30 MiB (a multipart upload), stdin of unknown length, `inspect s3://...`;
//! - an existing output object kept without `--force`, replaced with it;
//! - plaintext to S3 only with `--allow-plaintext-upload`;
//! - a tampered message leaves no file, no object and no pending multipart upload;
//! - a tool killed (SIGKILL) in the middle of a multipart upload leaves no object;
//! - `--manifest` runs: 4 concurrent `--shard I/4` workers with reports, `--shard auto`
//!   (Kubernetes and AWS Batch variables), idempotent reruns, decrypt to a folder with a
//!   corrupt object, URL-encoded keys (`+`, `%2B`, non-ASCII);
//! - `rewrap --in-place` over a manifest and of one object, rewrap to another object;
//! - `-r s3://BUCKET/PREFIX/` for encrypt (to S3) and decrypt (to a folder);
//! - usage errors (bad manifest row, bad shards, `--report` misuse) and a missing object.
//!
//! Run: `cargo test --release --features aws-s3,... --test cli_s3` with
//! `ENVCRYPT_MOTO_SERVER` (default `target/esdk-venv/bin/moto_server`). A missing server
//! fails the tests; nothing is skipped.

#![cfg(feature = "aws-s3")]

#[path = "common/moto.rs"]
mod moto;

#[path = "common/python.rs"]
mod python;

#[path = "common/s3.rs"]
mod s3_env;

#[path = "common/cli.rs"]
mod tool;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use envcrypt::crypto::HashAlgorithm;
use s3_env::{payload, rt, KIB, MIB};
use serde_json::Value;
use tool::Out;

/// The key of most tests, and the two keys of the rewrap test.
const K: &str = "raw-aes:tests:k:k.key";
const OLD: &str = "raw-aes:tests:old:old.key";
const NEW: &str = "raw-aes:tests:new:new.key";
/// The output metadata naming the source's ETag.
const SOURCE_ETAG: &str = "envcrypt-source-etag";
/// The variables `--shard auto` reads.
const SHARD_VARS: [&str; 4] = [
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "JOB_COMPLETION_INDEX",
    "ENVCRYPT_SHARDS",
];

/// The tool (see `tests/common/cli.rs`), checked once to have S3 support.
fn bin() -> &'static Path {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    let bin = tool::bin();
    CHECKED.call_once(|| {
        let probe = Command::new(bin)
            .args(["inspect", "s3://no-such-bucket/"])
            .output()
            .expect("run envcrypt");
        let stderr = String::from_utf8_lossy(&probe.stderr);
        assert!(
            !stderr.contains("aws-s3 feature"),
            "{} was built without --features aws-s3: {stderr}",
            bin.display()
        );
    });
    bin
}

/// What HeadObject says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    etag: String,
    last_modified: String,
    metadata: HashMap<String, String>,
    size: i64,
}

/// One test: its moto server and bucket (`common/s3.rs`), a scratch directory with the keys,
/// and the child's AWS environment.
struct Cli {
    s3: s3_env::Env,
    dir: tool::Scratch,
}

impl Cli {
    fn new(tag: &str) -> Self {
        let s3 = s3_env::Env::new(tag);
        let dir = tool::Scratch::empty();
        for (name, byte) in [("k.key", 0x42u8), ("old.key", 0x01), ("new.key", 0x02)] {
            dir.write(name, &[byte; 32]);
            std::fs::set_permissions(dir.path(name), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        Self { s3, dir }
    }

    fn bucket(&self) -> &str {
        &self.s3.bucket
    }

    /// `s3://BUCKET/key` of this test's bucket.
    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.s3.bucket)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path(name)
    }

    /// The tool with `args` in the scratch directory, with only the AWS environment of the
    /// test (no profile, no instance metadata, no other endpoint, no shard variables) plus
    /// `env`.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.dir.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("ENVCRYPT_AUDIT_LOG")
            .env("AWS_ENDPOINT_URL_S3", &self.s3.endpoint)
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for var in SHARD_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        tool::run(self.command(args, &[]), None)
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        tool::run(self.command(args, env), None)
    }

    fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Out {
        tool::run(self.command(args, &[]), Some(stdin))
    }

    /// Starts the tool (stdout and stderr piped); `finish` collects it.
    fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> (Child, Instant) {
        let child = self
            .command(args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn envcrypt");
        (child, Instant::now())
    }

    fn create_bucket(&self, name: &str) {
        rt().block_on(self.s3.raw.create_bucket().bucket(name).send())
            .unwrap_or_else(|e| panic!("CreateBucket {name}: {e:?}"));
    }

    /// PutObject behind the tool's back: the ETag.
    fn put_in(&self, bucket: &str, key: &str, bytes: &[u8]) -> String {
        rt().block_on(
            self.s3
                .raw
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(bytes.to_vec()))
                .send(),
        )
        .unwrap_or_else(|e| panic!("PutObject {bucket}/{key}: {e:?}"))
        .e_tag
        .expect("etag")
    }

    fn put(&self, key: &str, bytes: &[u8]) -> String {
        self.put_in(self.bucket(), key, bytes)
    }

    /// The object's bytes, `None` when there is no such object.
    fn get_in(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        rt().block_on(async {
            match self
                .s3
                .raw
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
            {
                Ok(out) => Some(
                    out.body
                        .collect()
                        .await
                        .expect("body")
                        .into_bytes()
                        .to_vec(),
                ),
                Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => None,
                Err(e) => panic!("GetObject {bucket}/{key}: {e:?}"),
            }
        })
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_in(self.bucket(), key)
    }

    fn head_in(&self, bucket: &str, key: &str) -> Option<Head> {
        let out = rt().block_on(self.s3.raw.head_object().bucket(bucket).key(key).send());
        match out {
            Ok(out) => Some(Head {
                etag: out.e_tag.clone().expect("etag"),
                last_modified: format!("{:?}", out.last_modified),
                metadata: out.metadata.clone().unwrap_or_default(),
                size: out.content_length.unwrap_or(-1),
            }),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => None,
            Err(e) => panic!("HeadObject {bucket}/{key}: {e:?}"),
        }
    }

    fn head(&self, key: &str) -> Option<Head> {
        self.head_in(self.bucket(), key)
    }

    /// Every key of `bucket` under `prefix`, sorted.
    fn keys_in(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = rt()
                .block_on(
                    self.s3
                        .raw
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .set_continuation_token(token)
                        .send(),
                )
                .expect("ListObjectsV2");
            keys.extend(out.contents().iter().filter_map(|o| o.key.clone()));
            token = out.next_continuation_token.clone();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// Multipart uploads neither completed nor aborted: (key, upload id).
    fn pending_in(&self, bucket: &str) -> Vec<(String, String)> {
        let out = rt()
            .block_on(self.s3.raw.list_multipart_uploads().bucket(bucket).send())
            .expect("ListMultipartUploads");
        out.uploads
            .unwrap_or_default()
            .into_iter()
            .map(|u| (u.key.unwrap_or_default(), u.upload_id.unwrap_or_default()))
            .collect()
    }

    /// The numbers of the parts of an upload.
    fn parts(&self, key: &str, upload_id: &str) -> Vec<i32> {
        let out = rt()
            .block_on(
                self.s3
                    .raw
                    .list_parts()
                    .bucket(self.bucket())
                    .key(key)
                    .upload_id(upload_id)
                    .send(),
            )
            .expect("ListParts");
        out.parts
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.part_number)
            .collect()
    }

    /// `decrypt -q -k key s3://...` to stdout.
    fn decrypt_object(&self, key: &str, keyring: &str) -> Out {
        self.run(&["decrypt", "-q", "-k", keyring, &self.uri(key)])
    }
}

/// Waits for a spawned tool.
fn finish((child, started): (Child, Instant)) -> Out {
    let output = child.wait_with_output().expect("wait");
    Out {
        code: output.status.code().expect("exit code (not a signal)"),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Exit `code` with the one-line error that contains `needle`.
#[track_caller]
fn fails_with(out: Out, code: i32, needle: &str) -> Out {
    let out = out.fails(code);
    assert!(
        out.stderr.contains(needle),
        "expected {needle:?} in: {}",
        out.stderr
    );
    out
}

/// A run over many objects ended with `code` and the summary line `summary` last on stderr.
#[track_caller]
fn run_ended(out: Out, code: i32, summary: &str) -> Out {
    assert_eq!(out.code, code, "exit code; stderr: {}", out.stderr);
    assert_eq!(
        out.stderr.trim_end().lines().last(),
        Some(summary),
        "summary line; stderr: {}",
        out.stderr
    );
    out
}

/// One completion-report row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    bucket: String,
    key: String,
    version: String,
    status: String,
    code: String,
    http: String,
    message: String,
}

/// The rows of a report (CSV as report.rs writes it: quoted fields, LF after every row).
fn read_report(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut rows, mut row, mut field, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "quote inside a field: {text:?}");
                quoted = true;
            }
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "the report does not end with a whole row: {text:?}"
    );
    rows.into_iter()
        .map(|r| {
            let [bucket, key, version, status, code, http, message]: [String; 7] = r
                .clone()
                .try_into()
                .unwrap_or_else(|_| panic!("not 7 fields: {r:?}"));
            Row {
                bucket,
                key,
                version,
                status,
                code,
                http,
                message,
            }
        })
        .collect()
}

/// The shard of N owning (bucket, decoded key), by the rule docs/scale-out.md fixes.
fn shard_of(bucket: &str, key: &str, n: u64) -> u64 {
    let mut h = envcrypt::crypto::default_provider()
        .digest
        .start(HashAlgorithm::Sha256);
    h.update(bucket.as_bytes());
    h.update(&[0]);
    h.update(key.as_bytes());
    let digest = h.finish();
    u64::from_be_bytes(digest[..8].try_into().unwrap()) % n
}

/// The ETag of an object written in parts looks like `"<md5>-<parts>"`.
fn is_multipart(etag: &str) -> bool {
    etag.trim_matches('"').contains('-')
}

/// Flips one bit of byte `at`.
fn flipped(mut bytes: Vec<u8>, at: usize) -> Vec<u8> {
    bytes[at] ^= 0x20;
    bytes
}

// ---------------------------------------------------------------------------------------------

#[test]
fn single_objects_round_trip_both_suites_and_sizes() {
    let t = Cli::new("single");
    let sizes = [0usize, 1000, 30 * MIB];
    for (i, &size) in sizes.iter().enumerate() {
        let data = payload(i as u64 + 1, size);
        t.dir.write(&format!("plain-{size}"), &data);
        for suite in ["0578", "0478"] {
            let key = format!("dir/k-{suite}-{size}.enc");
            let uri = t.uri(&key);
            let plain = format!("plain-{size}");
            let mut args = vec!["encrypt", "-q", "-k", K, "-c", "study=ct-secret-value"];
            if suite == "0478" {
                args.extend(["--suite", "0478"]);
            }
            args.extend(["-o", &uri, &plain]);
            let enc = t.run(&args).ok();
            assert_eq!(enc.stdout, b"", "{key}");
            let head = t
                .head(&key)
                .unwrap_or_else(|| panic!("{key} was not written"));
            assert_eq!(
                is_multipart(&head.etag),
                size > 8 * MIB,
                "{key}: ETag {}",
                head.etag
            );
            // A file source has no ETag: no metadata at all, never a context value.
            assert_eq!(head.metadata, HashMap::new(), "{key}");
            assert!(head.size as usize > size, "{key}");

            let inspect = t.run(&["inspect", &uri]).ok();
            let header: Value = serde_json::from_slice(&inspect.stdout).unwrap();
            assert_eq!(header["suite_id"], format!("0x{suite}"), "{key}");
            assert_eq!(
                header["encryption_context"]["study"], "ct-secret-value",
                "{key}: {header}"
            );
            assert_eq!(header["encrypted_data_keys"][0]["provider_id"], "tests");

            let out = format!("out-{suite}-{size}");
            let dec = t
                .run(&["decrypt", "-q", "-k", K, "-c", "study", "-o", &out, &uri])
                .ok();
            assert_eq!(dec.stdout, b"");
            assert!(t.dir.read(&out) == data, "{key}: file differs");
            let dec = t.run(&["decrypt", "-q", "-k", K, &uri]).ok();
            assert!(dec.stdout == data, "{key}: stdout differs");
            eprintln!(
                "{key}: {size} bytes, encrypt {:.2} s, decrypt to stdout {:.2} s",
                enc.took.as_secs_f64(),
                dec.took.as_secs_f64()
            );
        }
    }

    // stdin of unknown length (a pipe), large enough for parts.
    let data = payload(9, 12 * MIB + 12_345);
    let uri = t.uri("piped.enc");
    t.run_stdin(&["encrypt", "-q", "-k", K, "-o", &uri, "-"], &data)
        .ok();
    assert!(is_multipart(&t.head("piped.enc").unwrap().etag));
    let dec = t.run(&["decrypt", "-q", "-k", K, &uri]).ok();
    assert!(dec.stdout == data, "piped: round trip differs");
    // A small pipe (one PUT) and the default stdin.
    t.run_stdin(
        &["encrypt", "-q", "-k", K, "-o", &t.uri("small-pipe.enc")],
        b"hi",
    )
    .ok();
    assert_eq!(
        t.decrypt_object("small-pipe.enc", K).ok().stdout,
        b"hi".to_vec()
    );

    // Errors: a missing object, a prefix where an object is needed, a wrong key.
    let out = fails_with(
        t.run(&["decrypt", "-q", "-k", K, "-o", "x", &t.uri("no/such.enc")]),
        3,
        "no/such.enc",
    );
    assert!(!t.path("x").exists(), "{}", out.stderr);
    fails_with(
        t.run(&["decrypt", "-q", "-k", K, "-o", "x", &t.uri("dir/")]),
        2,
        "names a prefix, not an object",
    );
    t.run(&["decrypt", "-q", "-k", OLD, "-o", "x", &t.uri("piped.enc")])
        .fails(1);
    assert!(!t.path("x").exists());
    assert_eq!(t.pending_in(t.bucket()), vec![]);
}

#[test]
fn existing_output_objects_need_force() {
    let t = Cli::new("force");
    t.dir.write("a", b"first plaintext");
    t.dir.write("b", b"second plaintext");
    let uri = t.uri("k.enc");
    t.run(&["encrypt", "-q", "-k", K, "-o", &uri, "a"]).ok();
    let before = t.head("k.enc").unwrap();
    let bytes = t.get("k.enc").unwrap();

    let out = fails_with(
        t.run(&["encrypt", "-q", "-k", K, "-o", &uri, "b"]),
        2,
        "exists",
    );
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(t.head("k.enc").unwrap(), before, "object changed");
    assert_eq!(t.get("k.enc").unwrap(), bytes);
    // Also from stdin and from another object.
    fails_with(
        t.run_stdin(&["encrypt", "-q", "-k", K, "-o", &uri, "-"], b"x"),
        2,
        "exists",
    );
    t.put("plain", b"an object");
    fails_with(
        t.run(&["encrypt", "-q", "-k", K, "-o", &uri, &t.uri("plain")]),
        2,
        "exists",
    );
    assert_eq!(t.head("k.enc").unwrap(), before, "object changed");

    t.run(&["encrypt", "-q", "-k", K, "--force", "-o", &uri, "b"])
        .ok();
    assert_ne!(t.head("k.enc").unwrap().etag, before.etag);
    assert_eq!(
        t.decrypt_object("k.enc", K).ok().stdout,
        b"second plaintext".to_vec()
    );
    // Object to object with --force: the output names its source's ETag.
    let src_etag = t.head("plain").unwrap().etag;
    t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "--force",
        "-o",
        &uri,
        &t.uri("plain"),
    ])
    .ok();
    assert_eq!(
        t.head("k.enc").unwrap().metadata.get(SOURCE_ETAG),
        Some(&src_etag)
    );
    assert_eq!(
        t.decrypt_object("k.enc", K).ok().stdout,
        b"an object".to_vec()
    );

    // An existing local output file is kept too.
    t.dir.write("local.out", b"keep me");
    fails_with(
        t.run(&["decrypt", "-q", "-k", K, "-o", "local.out", &uri]),
        2,
        "exists",
    );
    assert_eq!(t.dir.read("local.out"), b"keep me");
    t.run(&["decrypt", "-q", "-k", K, "--force", "-o", "local.out", &uri])
        .ok();
    assert_eq!(t.dir.read("local.out"), b"an object");
    // The output is the input.
    fails_with(
        t.run(&["encrypt", "-q", "-k", K, "--force", "-o", &uri, &uri]),
        2,
        "the output is the input",
    );
    assert_eq!(t.pending_in(t.bucket()), vec![]);
}

#[test]
fn plaintext_to_s3_needs_allow_plaintext_upload() {
    let t = Cli::new("plainup");
    let data = payload(3, 300 * KIB);
    t.dir.write("p", &data);
    let (enc, out) = (t.uri("k.enc"), t.uri("k.out"));
    t.run(&["encrypt", "-q", "-k", K, "-o", &enc, "p"]).ok();

    fails_with(
        t.run(&["decrypt", "-q", "-k", K, "-o", &out, &enc]),
        2,
        "refusing to write plaintext to S3 (add --allow-plaintext-upload",
    );
    // From a local message too.
    t.run(&["encrypt", "-q", "-k", K, "-o", "p.enc", "p"]).ok();
    fails_with(
        t.run(&["decrypt", "-q", "-k", K, "-o", &out, "p.enc"]),
        2,
        "refusing to write plaintext to S3",
    );
    // And for a manifest run (beside the messages) and a prefix run.
    t.dir
        .write("m.csv", format!("{},k.enc\n", t.bucket()).as_bytes());
    fails_with(
        t.run(&["decrypt", "-q", "-k", K, "--manifest", "m.csv"]),
        2,
        "refusing to write plaintext to S3",
    );
    fails_with(
        t.run(&[
            "decrypt",
            "-q",
            "-k",
            K,
            "-r",
            &t.uri(""),
            "-o",
            &t.uri("plain/"),
        ]),
        2,
        "refusing to write plaintext to S3",
    );
    assert_eq!(t.keys_in(t.bucket(), ""), ["k.enc"]);
    assert_eq!(t.pending_in(t.bucket()), vec![]);

    let enc_etag = t.head("k.enc").unwrap().etag;
    t.run(&[
        "decrypt",
        "-q",
        "-k",
        K,
        "--allow-plaintext-upload",
        "-o",
        &out,
        &enc,
    ])
    .ok();
    assert!(t.get("k.out").unwrap() == data);
    assert_eq!(
        t.head("k.out").unwrap().metadata,
        HashMap::from([(SOURCE_ETAG.to_owned(), enc_etag)])
    );
    // The manifest run writes beside the message, with the suffix removed.
    t.run(&[
        "decrypt",
        "-q",
        "-k",
        K,
        "--allow-plaintext-upload",
        "--manifest",
        "m.csv",
    ])
    .ok();
    assert!(t.get("k").unwrap() == data);
}

#[test]
fn tampered_objects_leave_nothing_behind() {
    let t = Cli::new("tamper");
    // A small signed message, and a 20 MiB unsigned one damaged near its end (parts of the
    // plaintext are uploaded before the damage is found).
    let cases = [
        ("small.enc", payload(4, 200 * KIB), "0578", 100 * KIB),
        ("large.enc", payload(5, 20 * MIB), "0478", 18 * MIB),
    ];
    for (key, data, suite, at) in cases {
        let plain = format!("{key}.plain");
        t.dir.write(&plain, &data);
        t.run(&[
            "encrypt",
            "-q",
            "-k",
            K,
            "--suite",
            suite,
            "-o",
            &t.uri(key),
            &plain,
        ])
        .ok();
        let good = t.get(key).unwrap();
        t.put(key, &flipped(good, at));

        let out = t
            .run(&["decrypt", "-q", "-k", K, "-o", "out", &t.uri(key)])
            .fails(1);
        assert!(out.stderr.contains(key), "{}", out.stderr);
        assert!(!t.path("out").exists(), "{key}: a file was left");
        let leftovers: Vec<_> = std::fs::read_dir(t.dir.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("out"))
            .collect();
        assert_eq!(leftovers, Vec::<String>::new(), "temporary files left");

        let dest = format!("{key}.out");
        let started = Instant::now();
        t.run(&[
            "decrypt",
            "-q",
            "-k",
            K,
            "--allow-plaintext-upload",
            "-o",
            &t.uri(&dest),
            &t.uri(key),
        ])
        .fails(1);
        assert_eq!(t.head(&dest), None, "{dest} was written");
        assert_eq!(t.pending_in(t.bucket()), vec![], "{key}: uploads left");
        if data.len() > 8 * MIB {
            // The upload had started (parts of the plaintext went up) and was aborted.
            let log = t.s3.server_log();
            let bucket = t.bucket();
            assert!(
                log.contains(&format!("POST /{bucket}/{dest}?uploads ")),
                "no multipart upload started:\n{log}"
            );
            assert!(
                log.contains(&format!(
                    "DELETE /{bucket}/{dest}?x-id=AbortMultipartUpload"
                )),
                "the upload was not aborted:\n{log}"
            );
        }
        eprintln!("{key}: refused in {:.2} s", started.elapsed().as_secs_f64());
        // Stdout gets nothing of a signed message that fails.
        if suite == "0578" {
            let out = t.run(&["decrypt", "-q", "-k", K, &t.uri(key)]).fails(1);
            assert_eq!(out.stdout, b"");
        }
    }
    let mut keys = t.keys_in(t.bucket(), "");
    keys.sort();
    assert_eq!(keys, ["large.enc", "small.enc"]);
}

#[test]
fn killed_upload_leaves_no_object() {
    let t = Cli::new("killed");
    let key = "killed.enc";
    let mut child = t
        .command(&["encrypt", "-q", "-k", K, "-o", &t.uri(key), "-"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn envcrypt");
    let mut stdin = child.stdin.take().unwrap();
    // 20 MiB, then the pipe stays open: the tool waits for more, mid-upload.
    let writer = std::thread::spawn(move || {
        let data = payload(6, 20 * MIB);
        let written = stdin.write_all(&data);
        (stdin, written)
    });
    let started = Instant::now();
    let upload = loop {
        let pending = t.pending_in(t.bucket());
        if let Some((k, id)) = pending.first() {
            assert_eq!(k, key);
            if !t.parts(k, id).is_empty() {
                break id.clone();
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the tool ended early: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no part was uploaded within 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "first part up after {:.2} s; killing the tool",
        started.elapsed().as_secs_f64()
    );
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    assert!(!status.success());
    let (stdin, _) = writer.join().unwrap();
    drop(stdin);
    assert_eq!(t.head(key), None, "the object of a killed upload exists");
    assert_eq!(t.keys_in(t.bucket(), ""), Vec::<String>::new());
    // The upload itself stays pending (docs/scale-out.md: a lifecycle rule aborts it).
    assert_eq!(
        t.pending_in(t.bucket()),
        vec![(key.to_owned(), upload.clone())]
    );
    // A rerun writes the object.
    t.run_stdin(
        &["encrypt", "-q", "-k", K, "-o", &t.uri(key), "-"],
        b"again",
    )
    .ok();
    assert_eq!(t.decrypt_object(key, K).ok().stdout, b"again".to_vec());
}

/// The objects of the scale-out test: (decoded key, key as the manifest writes it, bytes).
fn scale_out_objects() -> Vec<(String, String, Vec<u8>)> {
    let mut objects: Vec<(String, String, Vec<u8>)> = (0..57)
        .map(|i| {
            let key = format!("batch/obj-{i:02}.bin");
            (
                key.clone(),
                key,
                payload(100 + i, (i as usize + 1) * 97 + KIB),
            )
        })
        .collect();
    for (key, raw) in [
        ("batch/with space.txt", "batch/with+space.txt"),
        ("batch/a+b.txt", "batch/a%2Bb.txt"),
        ("batch/café €.txt", "batch/caf%C3%A9+%E2%82%AC.txt"),
    ] {
        objects.push((key.into(), raw.into(), key.as_bytes().repeat(300)));
    }
    for i in 0..2 {
        let key = format!("batch/big-{i}.bin");
        objects.push((key.clone(), key, payload(200 + i, 9 * MIB + 777)));
    }
    objects
}

#[test]
fn manifest_shards_reports_reruns_and_decrypt_to_a_folder() {
    let t = Cli::new("shards");
    let bucket = t.bucket().to_owned();
    let objects = scale_out_objects();
    let mut source_etags = HashMap::new();
    for (key, _, bytes) in &objects {
        source_etags.insert(key.clone(), t.put(key, bytes));
    }
    let manifest: String = objects
        .iter()
        .map(|(_, raw, _)| format!("{bucket},{raw}\n"))
        .collect();
    t.dir.write("m.csv", manifest.as_bytes());
    let raw_keys: BTreeSet<String> = objects.iter().map(|(_, raw, _)| raw.clone()).collect();
    let decoded: HashMap<&str, &str> = objects
        .iter()
        .map(|(k, raw, _)| (raw.as_str(), k.as_str()))
        .collect();

    // Four concurrent workers.
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (shard, report) = (format!("{i}/4"), format!("r{i}.csv"));
            t.spawn(
                &[
                    "encrypt",
                    "-q",
                    "-k",
                    K,
                    "--manifest",
                    "m.csv",
                    "--shard",
                    &shard,
                    "--report",
                    &report,
                ],
                &[],
            )
        })
        .collect();
    let outs: Vec<Out> = workers.into_iter().map(finish).collect();
    eprintln!(
        "4 workers encrypted {} objects in {:.2} s",
        objects.len(),
        started.elapsed().as_secs_f64()
    );
    let mut by_shard: Vec<BTreeSet<String>> = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, out) in outs.into_iter().enumerate() {
        let rows = read_report(&t.path(&format!("r{i}.csv")));
        run_ended(
            out,
            0,
            &format!("encrypted {}, skipped 0, failed 0", rows.len()),
        );
        let mut mine = BTreeSet::new();
        for row in rows {
            assert_eq!(row.bucket, bucket, "{row:?}");
            assert_eq!(row.version, "", "{row:?}");
            assert_eq!(
                (row.status.as_str(), row.code.as_str(), row.http.as_str()),
                ("succeeded", "", "200"),
                "{row:?}"
            );
            let key = decoded
                .get(row.key.as_str())
                .unwrap_or_else(|| panic!("report key {:?} is not a manifest key", row.key));
            assert_eq!(
                row.message,
                format!("encrypt to s3://{bucket}/{key}.enc"),
                "{row:?}"
            );
            assert_eq!(shard_of(&bucket, key, 4), i as u64, "{row:?} in shard {i}");
            *seen.entry(row.key.clone()).or_insert(0) += 1;
            mine.insert(row.key);
        }
        assert!(!mine.is_empty(), "shard {i} got nothing");
        by_shard.push(mine);
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), raw_keys);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");

    // Every object encrypted exactly once: one output each, made from its source.
    let mut heads = BTreeMap::new();
    for (key, _, bytes) in &objects {
        let enc = format!("{key}.enc");
        let head = t.head(&enc).unwrap_or_else(|| panic!("{enc} missing"));
        assert_eq!(
            head.metadata.get(SOURCE_ETAG),
            source_etags.get(key),
            "{enc}"
        );
        assert_eq!(is_multipart(&head.etag), bytes.len() > 8 * MIB, "{enc}");
        heads.insert(enc, head);
    }
    assert_eq!(t.keys_in(&bucket, "").len(), 2 * objects.len());
    assert_eq!(t.pending_in(&bucket), vec![]);

    // `--shard auto` selects the same slices (and, rerun, skips them all).
    let auto_cases: [(&[(&str, &str)], usize); 3] = [
        (
            &[("JOB_COMPLETION_INDEX", "1"), ("ENVCRYPT_SHARDS", "4")],
            1,
        ),
        (
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "4"),
            ],
            2,
        ),
        // Both engines' variables: AWS Batch wins.
        (
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "3"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "4"),
                ("JOB_COMPLETION_INDEX", "0"),
                ("ENVCRYPT_SHARDS", "4"),
            ],
            3,
        ),
    ];
    for (env, shard) in auto_cases {
        let out = t.run_env(
            &[
                "encrypt",
                "-q",
                "-k",
                K,
                "--manifest",
                "m.csv",
                "--shard",
                "auto",
                "--report",
                "auto.csv",
            ],
            env,
        );
        let rows = read_report(&t.path("auto.csv"));
        run_ended(
            out,
            0,
            &format!("encrypted 0, skipped {}, failed 0", rows.len()),
        );
        let keys: BTreeSet<String> = rows.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys, by_shard[shard], "{env:?}");
        assert_eq!(keys.len(), rows.len());
    }

    // A second run of all four shards changes nothing and says so.
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (shard, report) = (format!("{i}/4"), format!("r{i}.csv"));
            t.spawn(
                &[
                    "encrypt",
                    "-q",
                    "-k",
                    K,
                    "--manifest",
                    "m.csv",
                    "--shard",
                    &shard,
                    "--report",
                    &report,
                ],
                &[],
            )
        })
        .collect();
    for (i, out) in workers.into_iter().map(finish).enumerate() {
        let rows = read_report(&t.path(&format!("r{i}.csv")));
        run_ended(
            out,
            0,
            &format!("encrypted 0, skipped {}, failed 0", rows.len()),
        );
        let keys: BTreeSet<String> = rows.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys, by_shard[i]);
        for row in rows {
            let key = decoded[row.key.as_str()];
            assert_eq!(
                (row.status.as_str(), row.code.as_str(), row.http.as_str()),
                ("succeeded", "", "200"),
                "{row:?}"
            );
            assert_eq!(
                row.message,
                format!("skipped: s3://{bucket}/{key}.enc was made from this version already"),
                "{row:?}"
            );
        }
    }
    for (enc, before) in &heads {
        assert_eq!(t.head(enc).as_ref(), Some(before), "{enc} changed");
    }
    // A changed source is not skipped: its existing output needs --force.
    let changed = "batch/obj-00.bin";
    t.put(changed, b"new version");
    t.dir
        .write("one.csv", format!("{bucket},{changed}\n").as_bytes());
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "--manifest",
        "one.csv",
        "--report",
        "one-r.csv",
    ]);
    // The run finished with a failed object: exit 1 (docs/scale-out.md).
    let out = run_ended(out, 1, "encrypted 0, skipped 0, failed 1");
    assert!(out.stderr.contains("exists (use --force"), "{}", out.stderr);
    let rows = read_report(&t.path("one-r.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].status.as_str(),
            rows[0].code.as_str(),
            rows[0].http.as_str()
        ),
        ("failed", "PreconditionFailed", "412")
    );
    t.run(&["encrypt", "-q", "-k", K, "--manifest", "one.csv", "--force"])
        .ok();
    assert_eq!(
        t.decrypt_object(&format!("{changed}.enc"), K).ok().stdout,
        b"new version".to_vec()
    );
    t.put(changed, &objects[0].2);
    t.run(&["encrypt", "-q", "-k", K, "--manifest", "one.csv", "--force"])
        .ok();

    // Decrypt through a manifest into a folder, one object corrupt.
    let good = t.get("batch/obj-56.bin.enc").unwrap();
    let len = good.len();
    t.put("batch/corrupt.bin.enc", &flipped(good, len / 2));
    let mut decrypt_manifest: String = objects
        .iter()
        .map(|(_, raw, _)| format!("{bucket},{raw}.enc\n"))
        .collect();
    decrypt_manifest.push_str(&format!("{bucket},batch/corrupt.bin.enc\n"));
    t.dir.write("d.csv", decrypt_manifest.as_bytes());
    let started = Instant::now();
    let out = t.run(&[
        "decrypt",
        "-q",
        "-k",
        K,
        "--manifest",
        "d.csv",
        "--report",
        "d-r.csv",
        "-o",
        "out",
    ]);
    eprintln!(
        "decrypted {} objects to a folder in {:.2} s",
        objects.len() + 1,
        started.elapsed().as_secs_f64()
    );
    let out = run_ended(
        out,
        1,
        &format!("decrypted {}, skipped 0, failed 1", objects.len()),
    );
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("envcrypt: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].contains("batch/corrupt.bin.enc"),
        "{}",
        out.stderr
    );
    let rows = read_report(&t.path("d-r.csv"));
    assert_eq!(rows.len(), objects.len() + 1);
    let mut keys = BTreeSet::new();
    for row in &rows {
        assert_eq!(row.bucket, bucket);
        keys.insert(row.key.clone());
        if row.key == "batch/corrupt.bin.enc" {
            assert_eq!(row.status, "failed", "{row:?}");
            assert_eq!(row.code, "Authentication", "{row:?}");
            assert_eq!(row.http, "400", "{row:?}");
            assert!(row.message.contains("corrupt.bin.enc"), "{row:?}");
        } else {
            assert_eq!(
                (row.status.as_str(), row.code.as_str(), row.http.as_str()),
                ("succeeded", "", "200"),
                "{row:?}"
            );
            assert!(row.message.starts_with("decrypt to "), "{row:?}");
        }
    }
    let mut expected: BTreeSet<String> = raw_keys.iter().map(|k| format!("{k}.enc")).collect();
    expected.insert("batch/corrupt.bin.enc".into());
    assert_eq!(keys, expected);
    for (key, _, bytes) in &objects {
        let got = std::fs::read(t.path("out").join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(&got == bytes, "{key}: decrypted bytes differ");
    }
    let mut files: Vec<String> = std::fs::read_dir(t.path("out/batch"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = objects
        .iter()
        .map(|(k, _, _)| k.trim_start_matches("batch/").to_owned())
        .collect();
    want.sort();
    assert_eq!(
        files, want,
        "the corrupt object left a file (or a temporary one)"
    );
    assert_eq!(t.pending_in(&bucket), vec![]);
}

#[test]
fn rewrap_in_place_over_a_manifest_and_of_one_object() {
    let t = Cli::new("rewrap");
    let bucket = t.bucket().to_owned();
    let objects = [
        ("r/a.txt", "r/a.txt", b"alpha".repeat(1000)),
        ("r/with space.txt", "r/with+space.txt", b"space".to_vec()),
        ("r/x+y.txt", "r/x%2By.txt", b"plus".to_vec()),
        ("r/big.bin", "r/big.bin", payload(7, 9 * MIB)),
    ];
    for (key, _, bytes) in &objects {
        t.put(key, bytes);
    }
    let plain_manifest: String = objects
        .iter()
        .map(|(_, raw, _)| format!("{bucket},{raw}\n"))
        .collect();
    t.dir.write("plain.csv", plain_manifest.as_bytes());
    t.run(&["encrypt", "-q", "-k", OLD, "--manifest", "plain.csv"])
        .ok();
    let manifest: String = objects
        .iter()
        .map(|(_, raw, _)| format!("{bucket},{raw}.enc\n"))
        .collect();
    t.dir.write("m.csv", manifest.as_bytes());
    let before: HashMap<&str, Head> = objects
        .iter()
        .map(|(k, _, _)| (*k, t.head(&format!("{k}.enc")).unwrap()))
        .collect();

    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "--manifest",
        "m.csv",
        "--in-place",
        "--report",
        "r.csv",
    ]);
    run_ended(out, 0, "rewrapped 4, skipped 0, failed 0");
    let rows = read_report(&t.path("r.csv"));
    assert_eq!(
        rows.iter().map(|r| r.key.clone()).collect::<BTreeSet<_>>(),
        objects
            .iter()
            .map(|(_, raw, _)| format!("{raw}.enc"))
            .collect::<BTreeSet<_>>()
    );
    for row in &rows {
        assert_eq!(
            (row.status.as_str(), row.code.as_str(), row.http.as_str()),
            ("succeeded", "", "200"),
            "{row:?}"
        );
        assert!(row.message.starts_with("rewrap to s3://"), "{row:?}");
    }
    let mut after = HashMap::new();
    for (key, _, bytes) in &objects {
        let enc = format!("{key}.enc");
        let head = t.head(&enc).unwrap();
        assert_ne!(head.etag, before[key].etag, "{enc} not replaced");
        assert!(
            t.decrypt_object(&enc, NEW).ok().stdout == *bytes,
            "{enc} with NEW"
        );
        t.decrypt_object(&enc, OLD).fails(1);
        after.insert(*key, head);
    }
    assert_eq!(
        t.keys_in(&bucket, "").len(),
        2 * objects.len(),
        "in place: no new objects"
    );

    // A second run skips all, touching nothing.
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "--manifest",
        "m.csv",
        "--in-place",
        "--report",
        "r.csv",
    ]);
    run_ended(out, 0, "rewrapped 0, skipped 4, failed 0");
    for row in read_report(&t.path("r.csv")) {
        assert_eq!(row.status, "succeeded", "{row:?}");
        assert_eq!(
            row.message, "skipped: already wrapped for the --to keys",
            "{row:?}"
        );
    }
    for (key, _, _) in &objects {
        assert_eq!(t.head(&format!("{key}.enc")).as_ref(), Some(&after[key]));
    }

    // One object in place, and one object to another.
    t.dir.write("one", b"one object");
    t.run(&["encrypt", "-q", "-k", OLD, "-o", &t.uri("one.enc"), "one"])
        .ok();
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "--in-place",
        &t.uri("one.enc"),
    ]);
    run_ended(out, 0, "rewrapped 1, skipped 0, failed 0");
    assert_eq!(
        t.decrypt_object("one.enc", NEW).ok().stdout,
        b"one object".to_vec()
    );
    t.decrypt_object("one.enc", OLD).fails(1);
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "--in-place",
        &t.uri("one.enc"),
    ]);
    run_ended(out, 0, "rewrapped 0, skipped 1, failed 0");

    t.run(&["encrypt", "-q", "-k", OLD, "-o", &t.uri("k.enc"), "one"])
        .ok();
    let k_before = t.head("k.enc").unwrap();
    t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "-o",
        &t.uri("k2.enc"),
        &t.uri("k.enc"),
    ])
    .ok();
    assert_eq!(t.head("k.enc"), Some(k_before), "the source changed");
    assert_eq!(
        t.decrypt_object("k2.enc", NEW).ok().stdout,
        b"one object".to_vec()
    );
    t.decrypt_object("k2.enc", OLD).fails(1);
    // ... and it is kept without --force.
    fails_with(
        t.run(&[
            "rewrap",
            "-q",
            "-k",
            OLD,
            "--to",
            NEW,
            "-o",
            &t.uri("k2.enc"),
            &t.uri("k.enc"),
        ]),
        2,
        "exists",
    );
    // A wrong key: the object is left as it was, the run fails with exit 1.
    let k2 = t.head("k2.enc").unwrap();
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        K,
        "--in-place",
        &t.uri("k2.enc"),
    ]);
    run_ended(out, 1, "rewrapped 0, skipped 0, failed 1");
    assert_eq!(t.head("k2.enc"), Some(k2));
    assert_eq!(t.pending_in(&bucket), vec![]);
}

#[test]
fn prefix_runs_map_names() {
    let t = Cli::new("prefix");
    let src = t.bucket().to_owned();
    let dest = format!("{src}-dest");
    t.create_bucket(&dest);
    let objects = [
        ("prefix/a.txt", b"a".repeat(5000)),
        ("prefix/sub/b.bin", payload(8, 100 * KIB)),
        ("prefix/with space.txt", b"space".to_vec()),
        ("prefix/empty", Vec::new()),
    ];
    for (key, bytes) in &objects {
        t.put(key, bytes);
    }
    t.put("prefix/", b""); // a folder marker: left out
    t.put("prefixed.txt", b"not under prefix/");
    t.put("other/x.txt", b"elsewhere");

    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "-r",
        &format!("s3://{src}/prefix/"),
        "-o",
        &format!("s3://{dest}/out/"),
        "--report",
        "enc.csv",
    ]);
    run_ended(out, 0, "encrypted 4, skipped 0, failed 0");
    assert_eq!(
        t.keys_in(&dest, ""),
        [
            "out/a.txt.enc",
            "out/empty.enc",
            "out/sub/b.bin.enc",
            "out/with space.txt.enc"
        ]
    );
    let rows = read_report(&t.path("enc.csv"));
    assert_eq!(rows.len(), 4);
    assert!(rows
        .iter()
        .all(|r| r.bucket == src && r.status == "succeeded"));

    // Non-messages under the prefix are skipped (and said so) on decrypt.
    t.put_in(&dest, "out/readme.txt", b"not a message");
    let out = t.run(&[
        "decrypt",
        "-k",
        K,
        "-r",
        &format!("s3://{dest}/out/"),
        "-o",
        "dir",
    ]);
    let out = run_ended(out, 0, "decrypted 4, skipped 0, failed 0");
    assert!(
        out.stderr
            .contains(&format!("envcrypt: skipped s3://{dest}/out/readme.txt")),
        "{}",
        out.stderr
    );
    for (key, bytes) in &objects {
        let name = key.strip_prefix("prefix/").unwrap();
        assert!(t.dir.read(&format!("dir/{name}")) == *bytes, "{name}");
    }
    assert!(!t.path("dir/readme.txt").exists() && !t.path("dir/readme").exists());
    // A rerun to the same folder keeps the files (no --force).
    let out = t.run(&[
        "decrypt",
        "-q",
        "-k",
        K,
        "-r",
        &format!("s3://{dest}/out/"),
        "-o",
        "dir",
    ]);
    let out = run_ended(out, 1, "decrypted 0, skipped 0, failed 4");
    assert!(out.stderr.contains("exists"), "{}", out.stderr);
    // An encrypt rerun skips the objects already made from these versions.
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "-r",
        &format!("s3://{src}/prefix/"),
        "-o",
        &format!("s3://{dest}/out/"),
    ]);
    run_ended(out, 0, "encrypted 0, skipped 4, failed 0");
    // -r from a local folder to S3: every regular file (links skipped), suffix added; an
    // existing object refused unless --force; rewrap and decrypt back the same way.
    t.dir.write("local/x", b"x");
    t.dir.write("local/deep/y.dcm", &payload(9, 9 * MIB));
    std::os::unix::fs::symlink("/etc/passwd", t.path("local/link")).unwrap();
    let up = format!("s3://{dest}/up/");
    let out = t.run(&["encrypt", "-k", K, "-r", "local", "-o", &up]);
    let out = out.ok();
    assert!(out.stderr.contains("skipped local/link"), "{}", out.stderr);
    assert_eq!(
        t.keys_in(&dest, "up/"),
        vec!["up/deep/y.dcm.enc".to_owned(), "up/x.enc".to_owned()]
    );
    let out = t.run(&["encrypt", "-q", "-k", K, "-r", "local", "-o", &up]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("x.enc exists (use --force")
            && out
                .stderr
                .trim_end()
                .ends_with(&format!("2 of 2 files failed; 0 written under {up}")),
        "{}",
        out.stderr
    );
    t.run(&[
        "encrypt", "-q", "-k", K, "-r", "local", "-o", &up, "--force",
    ])
    .ok();
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "-r",
        "local",
        "-o",
        &up,
        "--follow-symlinks",
    ]);
    fails_with(out, 2, "a folder to S3 skips links");
    // A local folder of messages: rewrap to S3, decrypt to S3 only with the flag.
    t.run(&["encrypt", "-q", "-k", K, "-r", "local", "-o", "sealed"])
        .ok();
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        K,
        "--to",
        K,
        "-r",
        "sealed",
        "-o",
        &format!("s3://{dest}/rw/"),
    ]);
    out.ok();
    assert_eq!(
        t.keys_in(&dest, "rw/"),
        vec!["rw/deep/y.dcm.enc".to_owned(), "rw/x.enc".to_owned()]
    );
    let plain = format!("s3://{dest}/plain/");
    let out = t.run(&["decrypt", "-q", "-k", K, "-r", "sealed", "-o", &plain]);
    fails_with(out, 2, "refusing to write plaintext to S3");
    assert!(t.keys_in(&dest, "plain/").is_empty());
    t.run(&[
        "decrypt",
        "-q",
        "-k",
        K,
        "-r",
        "sealed",
        "-o",
        &plain,
        "--allow-plaintext-upload",
    ])
    .ok();
    assert_eq!(
        t.get_in(&dest, "plain/deep/y.dcm").unwrap(),
        payload(9, 9 * MIB)
    );
    assert_eq!(t.get_in(&dest, "plain/x").unwrap(), b"x");
}

#[test]
fn usage_errors_and_missing_objects() {
    let t = Cli::new("errors");
    let bucket = t.bucket().to_owned();
    t.put("there", b"present");
    t.dir.write(
        "bad.csv",
        format!("{bucket},there\n{bucket},bad%zzkey\n").as_bytes(),
    );
    let out = fails_with(
        t.run(&[
            "encrypt",
            "-q",
            "-k",
            K,
            "--manifest",
            "bad.csv",
            "--report",
            "r.csv",
        ]),
        2,
        "line 2: bad percent-encoding in the key: \"%zz\"",
    );
    assert!(out.stderr.contains("bad.csv"), "{}", out.stderr);
    assert!(
        !t.path("r.csv").exists(),
        "a report of a run that never started"
    );
    assert_eq!(
        t.keys_in(&bucket, ""),
        ["there"],
        "a bad manifest touched objects"
    );

    t.dir.write("m.csv", format!("{bucket},there\n").as_bytes());
    fails_with(
        t.run(&[
            "encrypt",
            "-q",
            "-k",
            K,
            "--manifest",
            "m.csv",
            "--shard",
            "4/4",
        ]),
        2,
        "--shard 4/4: the index must be below the count (0..=3)",
    );
    fails_with(
        t.run(&[
            "encrypt",
            "-q",
            "-k",
            K,
            "--manifest",
            "m.csv",
            "--shard",
            "1-4",
        ]),
        2,
        "expected I/N",
    );
    fails_with(
        t.run(&[
            "encrypt",
            "-q",
            "-k",
            K,
            "--manifest",
            "m.csv",
            "--shard",
            "auto",
        ]),
        2,
        "--shard auto: neither AWS_BATCH_JOB_ARRAY_INDEX",
    );
    fails_with(
        t.run_env(
            &[
                "encrypt",
                "-q",
                "-k",
                K,
                "--manifest",
                "m.csv",
                "--shard",
                "auto",
            ],
            &[("JOB_COMPLETION_INDEX", "0")],
        ),
        2,
        "ENVCRYPT_SHARDS is not set",
    );
    assert_eq!(t.keys_in(&bucket, ""), ["there"]);

    // --report without a manifest or an S3 -r.
    t.dir.write("p", b"p");
    fails_with(
        t.run(&[
            "encrypt",
            "-q",
            "-k",
            K,
            "--report",
            "r.csv",
            "-o",
            &t.uri("p.enc"),
            "p",
        ]),
        2,
        "--report needs --manifest or -r s3://BUCKET/PREFIX/",
    );
    t.dir.write("folder/x", b"x");
    fails_with(
        t.run(&[
            "encrypt", "-q", "-k", K, "--report", "r.csv", "-r", "folder", "-o", "outdir",
        ]),
        2,
        "--report needs --manifest or -r s3://BUCKET/PREFIX/",
    );
    assert!(!t.path("r.csv").exists() && !t.path("outdir").exists());
    assert_eq!(t.keys_in(&bucket, ""), ["there"]);

    // A missing object: its row fails with S3's code, the others go on.
    t.dir.write(
        "missing.csv",
        format!("{bucket},there\n{bucket},not+here\n").as_bytes(),
    );
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "--manifest",
        "missing.csv",
        "--report",
        "r.csv",
    ]);
    let out = run_ended(out, 1, "encrypted 1, skipped 0, failed 1");
    assert!(out.stderr.contains("not here"), "{}", out.stderr);
    let rows = read_report(&t.path("r.csv"));
    let row = rows
        .iter()
        .find(|r| r.key == "not+here")
        .expect("the missing row");
    assert_eq!(
        (row.status.as_str(), row.code.as_str(), row.http.as_str()),
        ("failed", "NoSuchKey", "404"),
        "{row:?}"
    );
    let row = rows
        .iter()
        .find(|r| r.key == "there")
        .expect("the present row");
    assert_eq!(row.status, "succeeded");
    assert_eq!(t.keys_in(&bucket, ""), ["there", "there.enc"]);
    // A missing bucket, too.
    t.dir.write("nobucket.csv", b"no-such-bucket-here,k\n");
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        K,
        "--manifest",
        "nobucket.csv",
        "--report",
        "r.csv",
    ]);
    let out = run_ended(out, 1, "encrypted 0, skipped 0, failed 1");
    eprintln!("missing bucket: {}", out.stderr);
    let rows = read_report(&t.path("r.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "failed", "{:?}", rows[0]);
    assert!(!rows[0].code.is_empty(), "{:?}", rows[0]);
    eprintln!("missing bucket: {:?}", rows[0]);
}

/// Reruns after a rotation, rewrap's destinations, and report keys of listed objects.
#[test]
fn reruns_after_rotation_and_listed_report_keys() {
    let t = Cli::new("rerun");
    let bucket = t.bucket().to_owned();
    t.put("p/x y+z%.txt", b"odd name");
    t.put("p/plain.txt", b"plain name");

    // A prefix run's report names each object as a manifest would (Inventory's encoding),
    // so its rows can be fed back as a manifest.
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        OLD,
        "-r",
        &t.uri("p/"),
        "-o",
        &t.uri("q/"),
        "--report",
        "r.csv",
    ]);
    run_ended(out, 0, "encrypted 2, skipped 0, failed 0");
    let keys: BTreeSet<String> = read_report(&t.path("r.csv"))
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["p/plain.txt".to_owned(), "p/x+y%2Bz%25.txt".to_owned()])
    );
    let fed_back: String = keys.iter().map(|k| format!("{bucket},{k}\n")).collect();
    t.dir.write("again.csv", fed_back.as_bytes());
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        OLD,
        "--manifest",
        "again.csv",
        "-o",
        &t.uri("q/p/"),
    ]);
    // Manifest outputs take the whole key: q/p/p/..., new objects, both found and read.
    run_ended(out, 0, "encrypted 2, skipped 0, failed 0");

    // Rewrap over objects writes in place or to -o, never over the sources by default.
    t.dir
        .write("enc.csv", format!("{bucket},q/plain.txt.enc\n").as_bytes());
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "--manifest",
        "enc.csv",
    ]);
    fails_with(out, 2, "needs --in-place or -o");

    // An in-place rotation keeps the mark of what the message was made from: the run that
    // made it, rerun, still finds it done.
    t.dir
        .write("src.csv", format!("{bucket},p/plain.txt\n").as_bytes());
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        OLD,
        "--manifest",
        "src.csv",
        "-o",
        &t.uri("s/"),
    ]);
    run_ended(out, 0, "encrypted 1, skipped 0, failed 0");
    let made = t.head("s/p/plain.txt.enc").unwrap();
    t.dir
        .write("s.csv", format!("{bucket},s/p/plain.txt.enc\n").as_bytes());
    let out = t.run(&[
        "rewrap",
        "-q",
        "-k",
        OLD,
        "--to",
        NEW,
        "--manifest",
        "s.csv",
        "--in-place",
    ]);
    run_ended(out, 0, "rewrapped 1, skipped 0, failed 0");
    let rotated = t.head("s/p/plain.txt.enc").unwrap();
    assert_ne!(made.etag, rotated.etag);
    let out = t.run(&[
        "encrypt",
        "-q",
        "-k",
        OLD,
        "--manifest",
        "src.csv",
        "-o",
        &t.uri("s/"),
        "--report",
        "s.csv.report",
    ]);
    run_ended(out, 0, "encrypted 0, skipped 1, failed 0");
    assert_eq!(t.head("s/p/plain.txt.enc").unwrap().etag, rotated.etag);
}
