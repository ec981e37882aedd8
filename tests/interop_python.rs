//! Interoperability with the real AWS Encryption SDK for Python 4.x (`aws-encryption-sdk[MPL]`).
//!
//! Both directions, compared byte for byte (plaintext) and pair for pair (context):
//! messages written here are decrypted by Python, messages Python writes are decrypted here.
//! Covered: suites 0x0478 and 0x0578; frame lengths 16 (written here only: Python encrypts
//! only multiples of 128), 128, 4096, 65536 and 1 MiB, plus Python's non-framed messages;
//! payloads of 0 bytes, 1 byte, one frame, an exact multiple of the frame length, a ragged
//! multi-frame length and ~4 MiB; contexts empty, ASCII, non-ASCII and 50 pairs; the one-shot
//! and the streaming APIs on both sides; a wrong wrapping key refused on both sides.
//!
//! Every crypto provider compiled in (aws-lc-rs, OpenSSL, their mix, RustCrypto, ...) writes
//! and reads a smaller set in both directions: [`python_esdk_interop_every_provider`].
//!
//! Raw RSA keyrings (every padding, both directions, a 3072-bit key made at test time) have
//! a test function of their own: [`python_esdk_interop_raw_rsa_every_padding`].
//!
//! Each direction runs the full cross product suite x frame length x payload x context (200
//! cases), plus two ~4 MiB messages and a wrong-key case; every case runs through one Python
//! process (`tests/peer/esdk_peer.py`). About 5 s in release.
//!
//! The interpreter comes from `ENVCRYPT_PYTHON`, else `target/esdk-venv/bin/python` if it
//! exists. Missing Python or a missing package is a test failure that says how to fix it:
//!
//! ```text
//! python3 -m venv target/esdk-venv
//! target/esdk-venv/bin/pip install 'aws-encryption-sdk[MPL]>=4,<5'
//! ENVCRYPT_PYTHON=target/esdk-venv/bin/python cargo test --release --test interop_python
//! ```

#[path = "common/python.rs"]
mod python;

use python::Esdk;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use envcrypt::format::ContentType;
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, Decrypted, EncryptionContext, Error};
use serde_json::{json, Value};

const NAMESPACE: &str = "envcrypt-interop";
const KEY_NAME: &str = "aes-256-wrapping-key";
const PUBLIC_KEY: &str = "aws-crypto-public-key";
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn key() -> [u8; 32] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
}

fn wrong_key() -> [u8; 32] {
    let mut k = key();
    k[31] ^= 1;
    k
}

// ---------------------------------------------------------------------------------------------
// The Python side

fn run_peer(job: &Path, results: &Path) -> Output {
    let python = python::python(Esdk::V4);
    Command::new(&python)
        .arg(python::peer_script("esdk_peer.py"))
        .arg(job)
        .arg(results)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; {}",
                python.display(),
                Esdk::V4.install_hint()
            )
        })
}

/// Runs the peer on `cases`; returns the results by case id.
fn run_batch(dir: &Path, cases: Vec<Value>) -> BTreeMap<String, Value> {
    let job = dir.join("job.json");
    let results = dir.join("results.json");
    fs::write(
        &job,
        serde_json::to_vec(&json!({ "cases": cases })).unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    let out = run_peer(&job, &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!("the Python ESDK is not usable:\n{stderr}"),
        _ => panic!(
            "the Python peer failed ({}):\nstdout:\n{}\nstderr:\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        ),
    }
    let report: Value = serde_json::from_slice(&fs::read(&results).unwrap_or_else(|e| {
        panic!("the peer exited 0 but wrote no results ({e}); stderr:\n{stderr}")
    }))
    .expect("results are JSON");
    let version = report["esdk_version"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("4."),
        "aws-encryption-sdk {version} found, 4.x required; {}",
        Esdk::V4.install_hint()
    );
    eprintln!(
        "python peer: aws-encryption-sdk {version} on Python {}, {} cases in {:.2} s \
         ({:.2} s including startup)",
        report["python"].as_str().unwrap_or("?"),
        report["results"].as_array().map_or(0, Vec::len),
        report["seconds"].as_f64().unwrap_or(0.0),
        started.elapsed().as_secs_f64()
    );
    report["results"]
        .as_array()
        .expect("results list")
        .iter()
        .map(|r| (r["id"].as_str().expect("result id").to_owned(), r.clone()))
        .collect()
}

fn key_json(key: &[u8; 32]) -> Value {
    json!({ "namespace": NAMESPACE, "name": KEY_NAME, "hex": hex::encode(key) })
}

fn context_json(ctx: &EncryptionContext) -> Value {
    Value::Object(
        ctx.iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

fn context_from_json(v: &Value) -> Result<EncryptionContext, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("context is not an object: {v}"))?;
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|v| (k.clone(), v.to_owned()))
                .ok_or_else(|| format!("context value of {k:?} is not a string: {v}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Test data

/// splitmix64: a small deterministic generator for payloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn contexts() -> Vec<(&'static str, EncryptionContext)> {
    let ascii = EncryptionContext::from_pairs([
        ("purpose", "backup"),
        ("department", "radiology"),
        ("study", "ct-abdomen-2026-05"),
        ("empty-value", ""),
    ]);
    // U+FF71 sorts before U+1F600 by code point / UTF-8 bytes but after it in UTF-16.
    let non_ascii = EncryptionContext::from_pairs([
        ("Größe", "groß"),
        ("患者", "山田太郎"),
        ("Ärzt:in", "Dr. Müller-Lüdenscheidt"),
        ("ｱ", "half-width katakana"),
        ("😀", "emoji 🏥 value"),
        ("ascii", "ünïcödé ✓"),
    ]);
    let fifty = (0..50)
        .map(|i| {
            (
                format!("key-{i:02}"),
                format!("value {i} {}", "x".repeat(i * 3)),
            )
        })
        .collect();
    vec![
        ("empty", EncryptionContext::new()),
        ("ascii", ascii),
        ("nonascii", non_ascii),
        ("fifty", fifty),
    ]
}

/// Payload kinds for a frame length (non-framed messages use 4096 as the yardstick).
fn sizes(frame_length: u32) -> [(&'static str, usize); 5] {
    let fl = if frame_length == 0 {
        4096
    } else {
        frame_length as usize
    };
    [
        ("empty", 0),
        ("onebyte", 1),
        ("oneframe", fl),
        ("multiple", 3 * fl),
        ("ragged", 2 * fl + fl / 3 + 1),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Written here, decrypted by Python.
    RustToPython,
    /// Written by Python, decrypted here.
    PythonToRust,
}

struct Case {
    id: String,
    direction: Direction,
    suite: AlgorithmSuite,
    frame_length: u32,
    len: usize,
    seed: u64,
    context: EncryptionContext,
    /// Streaming APIs (`encrypt_writer`/`decrypt_reader` here, `client.stream` in Python).
    stream: bool,
    /// Decrypt with the wrong wrapping key: must fail.
    wrong_key: bool,
}

impl Case {
    fn path(&self, dir: &Path, ext: &str) -> PathBuf {
        dir.join(format!("{}.{ext}", self.id))
    }

    fn plaintext(&self) -> Vec<u8> {
        payload(self.seed, self.len)
    }
}

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
];

fn cases() -> Vec<Case> {
    let contexts = contexts();
    let mut out = Vec::new();
    let mut push = |direction,
                    suite: AlgorithmSuite,
                    frame_length: u32,
                    kind: &str,
                    len: usize,
                    ctx: usize,
                    wrong_key: bool| {
        let n = out.len();
        let dir = match direction {
            Direction::RustToPython => "r2p",
            Direction::PythonToRust => "p2r",
        };
        // Alternate the APIs; Python's streaming encrypt needs a framed message.
        let stream = n % 2 == 1 && !(direction == Direction::PythonToRust && frame_length == 0);
        out.push(Case {
            id: format!(
                "{n:03}-{dir}-{:04x}-f{frame_length}-{kind}{len}-{}-{}{}",
                suite.id(),
                contexts[ctx].0,
                if stream { "stream" } else { "oneshot" },
                if wrong_key { "-wrongkey" } else { "" },
            ),
            direction,
            suite,
            frame_length,
            len,
            seed: 0x5EED_0000 + n as u64,
            context: contexts[ctx].1.clone(),
            stream,
            wrong_key,
        });
    };
    for (direction, frame_lengths) in [
        (Direction::RustToPython, [16, 128, 4096, 65536, MIB as u32]),
        (Direction::PythonToRust, [0, 128, 4096, 65536, MIB as u32]),
    ] {
        for suite in SUITES {
            for fl in frame_lengths {
                for (kind, len) in sizes(fl) {
                    for ctx in 0..contexts.len() {
                        push(direction, suite, fl, kind, len, ctx, false);
                    }
                }
            }
        }
    }
    // A few MiB, both directions, both suites.
    let (s78, s78sig) = (SUITES[0], SUITES[1]);
    let big = 4 * MIB + 12_345;
    push(Direction::RustToPython, s78, 4096, "big", big, 3, false);
    push(
        Direction::RustToPython,
        s78sig,
        MIB as u32,
        "big",
        big + 1,
        2,
        false,
    );
    push(
        Direction::PythonToRust,
        s78sig,
        65536,
        "big",
        big + 2,
        1,
        false,
    );
    push(Direction::PythonToRust, s78, 0, "big", big + 3, 0, false);
    // A wrong key on each side.
    push(
        Direction::RustToPython,
        s78sig,
        4096,
        "ragged",
        5000,
        1,
        true,
    );
    push(
        Direction::PythonToRust,
        s78sig,
        4096,
        "ragged",
        5000,
        2,
        true,
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The Rust side

fn client(suite: AlgorithmSuite, frame_length: u32, key: &[u8; 32]) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new(NAMESPACE, KEY_NAME, key).unwrap())
        .suite(suite)
        .frame_length(frame_length)
        .build()
        .unwrap()
}

fn rust_encrypt(case: &Case) -> Vec<u8> {
    let client = client(case.suite, case.frame_length, &key());
    let plaintext = case.plaintext();
    if case.stream {
        let mut w = client
            .encrypt_writer(Vec::new(), &case.context)
            .expect("encrypt_writer");
        // Odd-sized writes so that they straddle frame boundaries.
        for chunk in plaintext.chunks(7 * KIB + 13) {
            w.write_all(chunk).expect("write");
        }
        w.finish().expect("finish")
    } else {
        client.encrypt(&plaintext, &case.context).expect("encrypt")
    }
}

/// Decrypts with the one-shot or the streaming API; returns plaintext and header.
fn rust_decrypt(client: &Client, message: &[u8], stream: bool) -> Result<Decrypted, Error> {
    let options = DecryptOptions::default();
    if stream {
        let mut r = client.decrypt_reader(message, &options)?;
        let mut plaintext = Vec::new();
        r.read_to_end(&mut plaintext).map_err(|e| {
            // The reader reports envcrypt errors wrapped in io::Error.
            match e.into_inner().map(|inner| inner.downcast::<Error>()) {
                Some(Ok(err)) => *err,
                Some(Err(other)) => Error::Io(std::io::Error::other(other)),
                None => Error::Io(std::io::Error::other("read failed")),
            }
        })?;
        Ok(Decrypted {
            plaintext,
            header: r.header().clone(),
        })
    } else {
        client.decrypt(message, &options)
    }
}

/// The context a header should carry: the caller's pairs, plus the public key on 0x0578.
fn check_context(
    case: &Case,
    got: &EncryptionContext,
    failures: &mut Vec<String>,
    who: &str,
) -> bool {
    let mut user = got.clone();
    let public_key = user.remove(PUBLIC_KEY);
    let signed = case.suite == AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384;
    let mut ok = true;
    if public_key.is_some() != signed {
        failures.push(format!(
            "{}: {who} context has {PUBLIC_KEY}: {:?}, suite {:04x}",
            case.id,
            public_key,
            case.suite.id()
        ));
        ok = false;
    }
    if user != case.context {
        failures.push(format!(
            "{}: {who} context differs:\n  expected {:?}\n  got      {:?}",
            case.id, case.context, user
        ));
        ok = false;
    }
    ok
}

/// Checks Python's decryption of a message written here.
fn check_rust_to_python(
    case: &Case,
    dir: &Path,
    result: &Value,
    failures: &mut Vec<String>,
) -> bool {
    let id = &case.id;
    let out_path = case.path(dir, "out");
    if case.wrong_key {
        let error_type = result["error_type"].as_str().unwrap_or_default();
        if result["ok"] != json!(false) || !error_type.starts_with("aws_encryption_sdk.") {
            failures.push(format!(
                "{id}: Python decrypted with the wrong key or failed oddly: {result}"
            ));
            return false;
        }
        if out_path.exists() {
            failures.push(format!(
                "{id}: Python wrote plaintext despite the wrong key"
            ));
            return false;
        }
        return true;
    }
    if result["ok"] != json!(true) {
        failures.push(format!("{id}: Python could not decrypt: {result}"));
        return false;
    }
    let mut ok = true;
    let expected = [
        ("suite", json!(format!("{:04x}", case.suite.id()))),
        ("frame_length", json!(case.frame_length)),
        ("content_type", json!("framed")),
    ];
    for (field, want) in expected {
        if result[field] != want {
            failures.push(format!(
                "{id}: Python read {field} {}, expected {want}",
                result[field]
            ));
            ok = false;
        }
    }
    match context_from_json(&result["context"]) {
        Ok(got) => {
            ok &= check_context(case, &got, failures, "Python-read");
            // And exactly the context stored in the header written here (same public key).
            let message = fs::read(case.path(dir, "ct")).unwrap();
            let client = client(case.suite, case.frame_length, &key());
            let reader = client
                .decrypt_reader(&message[..], &DecryptOptions::default())
                .expect("own header");
            if reader.header().encryption_context != got {
                failures.push(format!(
                    "{id}: Python read context {got:?}, the header holds {:?}",
                    reader.header().encryption_context
                ));
                ok = false;
            }
        }
        Err(e) => {
            failures.push(format!("{id}: {e}"));
            ok = false;
        }
    }
    match fs::read(&out_path) {
        Ok(plaintext) if plaintext == case.plaintext() => {}
        Ok(plaintext) => {
            failures.push(format!(
                "{id}: Python's plaintext differs ({} bytes, expected {})",
                plaintext.len(),
                case.len
            ));
            ok = false;
        }
        Err(e) => {
            failures.push(format!("{id}: no plaintext from Python: {e}"));
            ok = false;
        }
    }
    ok
}

/// Decrypts here a message Python wrote.
fn check_python_to_rust(
    case: &Case,
    dir: &Path,
    result: &Value,
    failures: &mut Vec<String>,
) -> bool {
    let id = &case.id;
    if result["ok"] != json!(true) {
        failures.push(format!("{id}: Python could not encrypt: {result}"));
        return false;
    }
    let message = fs::read(case.path(dir, "ct")).unwrap();
    let right = client(case.suite, 4096, &key());
    if case.wrong_key {
        let wrong = client(case.suite, 4096, &wrong_key());
        let mut ok = true;
        for stream in [false, true] {
            match rust_decrypt(&wrong, &message, stream) {
                Err(Error::Keyring(_)) => {}
                Err(e) => {
                    failures.push(format!(
                        "{id}: wrong key (stream {stream}) refused, but not as a keyring \
                         error: {e:?}"
                    ));
                    ok = false;
                }
                Ok(_) => {
                    failures.push(format!(
                        "{id}: decrypted with the wrong key (stream {stream})"
                    ));
                    ok = false;
                }
            }
        }
        // The same message opens with the right key: the refusal was about the key.
        if let Err(e) = rust_decrypt(&right, &message, case.stream) {
            failures.push(format!("{id}: the right key fails too: {e:?}"));
            ok = false;
        }
        return ok;
    }
    let decrypted = match rust_decrypt(&right, &message, case.stream) {
        Ok(d) => d,
        Err(e) => {
            failures.push(format!(
                "{id}: cannot decrypt Python's message ({} bytes): {e:?}",
                message.len()
            ));
            return false;
        }
    };
    let mut ok = true;
    let header = &decrypted.header;
    let content_type = if case.frame_length == 0 {
        ContentType::NonFramed
    } else {
        ContentType::Framed
    };
    if header.suite != case.suite
        || header.frame_length != case.frame_length
        || header.content_type != content_type
    {
        failures.push(format!(
            "{id}: header says suite {:04x}, frame length {}, {:?}; expected {:04x}, {}, {:?}",
            header.suite.id(),
            header.frame_length,
            header.content_type,
            case.suite.id(),
            case.frame_length,
            content_type
        ));
        ok = false;
    }
    ok &= check_context(case, &header.encryption_context, failures, "Rust-read");
    match context_from_json(&result["context"]) {
        Ok(written) if written == header.encryption_context => {}
        Ok(written) => {
            failures.push(format!(
                "{id}: Python wrote context {written:?}, read here {:?}",
                header.encryption_context
            ));
            ok = false;
        }
        Err(e) => {
            failures.push(format!("{id}: {e}"));
            ok = false;
        }
    }
    if decrypted.plaintext != case.plaintext() {
        failures.push(format!(
            "{id}: plaintext differs ({} bytes, expected {})",
            decrypted.plaintext.len(),
            case.len
        ));
        ok = false;
    }
    ok
}

#[test]
fn python_esdk_interop_both_directions() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let cases = cases();

    // 1. Write here what Python decrypts, and the plaintexts Python encrypts.
    let mut job = Vec::with_capacity(cases.len() + 1);
    for case in &cases {
        let mut entry = json!({
            "id": case.id,
            "api": if case.stream { "stream" } else { "oneshot" },
            "key": key_json(&if case.wrong_key && case.direction == Direction::RustToPython {
                wrong_key()
            } else {
                key()
            }),
        });
        match case.direction {
            Direction::RustToPython => {
                fs::write(case.path(dir, "ct"), rust_encrypt(case)).unwrap();
                entry["op"] = json!("decrypt");
                entry["input"] = json!(case.path(dir, "ct"));
                entry["output"] = json!(case.path(dir, "out"));
            }
            Direction::PythonToRust => {
                fs::write(case.path(dir, "pt"), case.plaintext()).unwrap();
                entry["op"] = json!("encrypt");
                entry["suite"] = json!(format!("{:04x}", case.suite.id()));
                entry["frame_length"] = json!(case.frame_length);
                entry["context"] = context_json(&case.context);
                entry["input"] = json!(case.path(dir, "pt"));
                entry["output"] = json!(case.path(dir, "ct"));
            }
        }
        job.push(entry);
    }
    // The wrong-key message written here also opens in Python with the right key.
    let wrong = cases
        .iter()
        .find(|c| c.wrong_key && c.direction == Direction::RustToPython)
        .unwrap();
    job.push(json!({
        "id": format!("{}-rightkey", wrong.id),
        "op": "decrypt",
        "key": key_json(&key()),
        "input": wrong.path(dir, "ct"),
        "output": dir.join("rightkey.out"),
    }));
    let written = started.elapsed();

    // 2. One Python process for every case.
    let results = run_batch(dir, job);
    let python_done = started.elapsed();

    // 3. Check Python's decryptions; decrypt Python's messages here.
    let mut failures = Vec::new();
    let mut passed = [0usize; 2];
    for case in &cases {
        let Some(result) = results.get(&case.id) else {
            failures.push(format!("{}: no result from the peer", case.id));
            continue;
        };
        let ok = match case.direction {
            Direction::RustToPython => check_rust_to_python(case, dir, result, &mut failures),
            Direction::PythonToRust => check_python_to_rust(case, dir, result, &mut failures),
        };
        passed[usize::from(case.direction == Direction::PythonToRust)] += usize::from(ok);
    }
    let right = &results[&format!("{}-rightkey", wrong.id)];
    if right["ok"] != json!(true)
        || fs::read(dir.join("rightkey.out")).ok() != Some(wrong.plaintext())
    {
        failures.push(format!(
            "{}: Python cannot decrypt with the right key either: {right}",
            wrong.id
        ));
    }

    let r2p = cases
        .iter()
        .filter(|c| c.direction == Direction::RustToPython)
        .count();
    eprintln!(
        "interop: {} cases ({r2p} written here and decrypted by Python, {} written by Python \
         and decrypted here; {} passed / {} passed), {} MiB of plaintext; Rust writing {:.2} s, \
         Python {:.2} s, checks {:.2} s, total {:.2} s",
        cases.len(),
        cases.len() - r2p,
        passed[0],
        passed[1],
        cases.iter().map(|c| c.len).sum::<usize>() / MIB,
        written.as_secs_f64(),
        (python_done - written).as_secs_f64(),
        (started.elapsed() - python_done).as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        failures.is_empty(),
        "{} of {} interoperability cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The peer must not hide its own failures: a malformed job is a non-zero exit with a message.
#[test]
fn python_peer_fails_loudly_on_a_bad_job() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let job = tmp.path().join("job.json");
    let results = tmp.path().join("results.json");
    fs::write(
        &job,
        r#"{"cases": [{"id": "x", "op": "encrypt", "suite": "0478", "frame_length": 100,
            "key": {"namespace": "n", "name": "k", "hex": ""}, "input": "a", "output": "b",
            "context": {}}]}"#,
    )
    .unwrap();
    let out = run_peer(&job, &results);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr:\n{stderr}");
    assert!(stderr.contains("bad job file"), "stderr:\n{stderr}");
    assert!(!results.exists());
}

// ---------------------------------------------------------------------------------------------
// Raw RSA keyrings (needs a provider with RSA: aws-lc-rs or its FIPS module)

/// Raw RSA with a 3072-bit key made at test time, both directions, for each padding:
/// messages written here with the public key (a public-only keyring) are decrypted by Python
/// with the private key (MPL `create_raw_rsa_keyring`), and messages Python writes with the
/// public key are decrypted here with the private key. Per padding: both suites x payloads of
/// 0, 1 and 9558 bytes (3 frames of 4096) x the two directions, with contexts empty, ASCII and
/// non-ASCII; plus, across both implementations, a wrong padding refused in each direction, a
/// wrong key refused by Python, and an AES-generated message with an RSA child EDK that Python
/// opens with the RSA key alone. The PEM files Python reads are the ones the keyrings here are
/// made from.
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn python_esdk_interop_raw_rsa_every_padding() {
    rsa_interop::run();
}

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
mod rsa_interop {
    use super::*;
    use base64::Engine as _;
    use envcrypt::crypto::{default_provider, RsaPadding};
    use envcrypt::keyring::{KeyringError, MultiKeyring, RawRsaKeyring};
    use std::sync::Arc;

    const RSA_NAMESPACE: &str = "envcrypt-interop-rsa";
    const RSA_KEY_NAME: &str = "rsa-3072-wrapping-key";
    const RSA_BITS: usize = 3072;
    const FRAME: u32 = 4096;

    const PADDINGS: [(RsaPadding, &str); 5] = [
        (RsaPadding::Pkcs1v15, "pkcs1"),
        (RsaPadding::OaepSha1, "oaep-sha1"),
        (RsaPadding::OaepSha256, "oaep-sha256"),
        (RsaPadding::OaepSha384, "oaep-sha384"),
        (RsaPadding::OaepSha512, "oaep-sha512"),
    ];

    /// What a case checks beyond a plain round trip.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Twist {
        None,
        /// The reader uses the next padding of `PADDINGS`: must fail.
        WrongPadding,
        /// Python decrypts with the other key pair: must fail (written here only).
        WrongKey,
        /// Written here by a multi-keyring: raw AES generator, raw RSA child; Python has only
        /// the RSA key.
        AesGeneratorRsaChild,
    }

    struct RsaCase {
        id: String,
        direction: Direction,
        padding: usize,
        suite: AlgorithmSuite,
        len: usize,
        seed: u64,
        context: EncryptionContext,
        stream: bool,
        twist: Twist,
    }

    impl RsaCase {
        fn path(&self, dir: &Path, ext: &str) -> PathBuf {
            dir.join(format!("{}.{ext}", self.id))
        }

        fn plaintext(&self) -> Vec<u8> {
            payload(self.seed, self.len)
        }

        fn write_padding(&self) -> usize {
            self.padding
        }

        fn read_padding(&self) -> usize {
            match self.twist {
                Twist::WrongPadding => (self.padding + 1) % PADDINGS.len(),
                _ => self.padding,
            }
        }

        fn must_fail(&self) -> bool {
            matches!(self.twist, Twist::WrongPadding | Twist::WrongKey)
        }
    }

    fn cases() -> Vec<RsaCase> {
        let contexts = contexts();
        let mut out = Vec::new();
        let mut push = |direction, padding: usize, suite: AlgorithmSuite, len: usize, twist| {
            let n = out.len();
            let (ctx_name, context) = contexts[n % 3].clone();
            let stream = n % 2 == 1;
            out.push(RsaCase {
                id: format!(
                    "rsa{n:03}-{}-{}-{:04x}-len{len}-{ctx_name}-{}{}",
                    match direction {
                        Direction::RustToPython => "r2p",
                        Direction::PythonToRust => "p2r",
                    },
                    PADDINGS[padding].1,
                    suite.id(),
                    if stream { "stream" } else { "oneshot" },
                    match twist {
                        Twist::None => "",
                        Twist::WrongPadding => "-wrongpadding",
                        Twist::WrongKey => "-wrongkey",
                        Twist::AesGeneratorRsaChild => "-aesgen",
                    }
                ),
                direction,
                padding,
                suite,
                len,
                seed: 0x0052_5341_0000 + n as u64,
                context,
                stream,
                twist,
            });
        };
        let ragged = 2 * FRAME as usize + FRAME as usize / 3 + 1;
        for padding in 0..PADDINGS.len() {
            for direction in [Direction::RustToPython, Direction::PythonToRust] {
                for suite in SUITES {
                    for len in [0, 1, ragged] {
                        push(direction, padding, suite, len, Twist::None);
                    }
                }
                push(direction, padding, SUITES[1], 100, Twist::WrongPadding);
            }
        }
        push(Direction::RustToPython, 2, SUITES[1], 100, Twist::WrongKey);
        for suite in SUITES {
            push(
                Direction::RustToPython,
                2,
                suite,
                ragged,
                Twist::AesGeneratorRsaChild,
            );
        }
        out
    }

    /// PEM armor with 64-character lines.
    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out + &format!("-----END {label}-----\n")
    }

    /// A key pair written as `NAME.pem` (PKCS#8) and `NAME.pub.pem` (SPKI).
    struct KeyFiles {
        private: PathBuf,
        public: PathBuf,
    }

    impl KeyFiles {
        fn generate(dir: &Path, name: &str) -> Self {
            let (pkcs8, spki) = default_provider()
                .rsa
                .generate(RSA_BITS)
                .expect("RSA key generation");
            let files = Self {
                private: dir.join(format!("{name}.pem")),
                public: dir.join(format!("{name}.pub.pem")),
            };
            fs::write(&files.private, pem("PRIVATE KEY", &pkcs8)).unwrap();
            fs::write(&files.public, pem("PUBLIC KEY", &spki)).unwrap();
            files
        }

        fn keyring(&self, padding: usize, private: bool) -> RawRsaKeyring {
            let path = if private { &self.private } else { &self.public };
            let text = fs::read_to_string(path).unwrap();
            RawRsaKeyring::from_pem(RSA_NAMESPACE, RSA_KEY_NAME, PADDINGS[padding].0, &text)
                .unwrap()
        }

        /// The peer's key: public only to encrypt, private only to decrypt.
        fn json(&self, padding: usize, op: &str) -> Value {
            let mut key = json!({
                "type": "raw-rsa",
                "namespace": RSA_NAMESPACE,
                "name": RSA_KEY_NAME,
                "padding": PADDINGS[padding].1,
            });
            if op == "encrypt" {
                key["public_pem"] = json!(self.public);
            } else {
                key["private_pem"] = json!(self.private);
            }
            key
        }
    }

    fn rust_encrypt(case: &RsaCase, keys: &KeyFiles) -> Vec<u8> {
        let rsa = keys.keyring(case.write_padding(), false);
        let builder = Client::builder();
        let builder = if case.twist == Twist::AesGeneratorRsaChild {
            builder.keyring(MultiKeyring::from_arcs(
                Some(Arc::new(
                    RawAesKeyring::new(NAMESPACE, KEY_NAME, &key()).unwrap(),
                )),
                vec![Arc::new(rsa)],
            ))
        } else {
            builder.keyring(rsa)
        };
        let client = builder
            .suite(case.suite)
            .frame_length(FRAME)
            .build()
            .unwrap();
        let plaintext = case.plaintext();
        if case.stream {
            let mut w = client
                .encrypt_writer(Vec::new(), &case.context)
                .expect("encrypt_writer");
            for chunk in plaintext.chunks(3 * KIB + 7) {
                w.write_all(chunk).expect("write");
            }
            w.finish().expect("finish")
        } else {
            client.encrypt(&plaintext, &case.context).expect("encrypt")
        }
    }

    /// Python's context without the signing key must be the case's context.
    fn check_user_context(case: &RsaCase, got: &Value) -> Result<(), String> {
        let mut got = context_from_json(got)?;
        let signed = got.remove(PUBLIC_KEY).is_some();
        if signed != (case.suite == SUITES[1]) || got != case.context {
            return Err(format!(
                "context {got:?} (signing key: {signed}), expected {:?}",
                case.context
            ));
        }
        Ok(())
    }

    fn check_rust_to_python(case: &RsaCase, dir: &Path, result: &Value) -> Result<(), String> {
        let out = case.path(dir, "out");
        if case.must_fail() {
            let error_type = result["error_type"].as_str().unwrap_or_default();
            if result["ok"] != json!(false) || out.exists() {
                return Err(format!("Python decrypted it: {result}"));
            }
            // The MPL's raw RSA keyring found the EDK and could not unwrap it.
            let error = result["error"].as_str().unwrap_or_default();
            if !error_type.starts_with("aws_encryption_sdk.")
                || !error.contains("unable to decrypt any encrypted data key")
            {
                return Err(format!("Python failed oddly: {result}"));
            }
            return Ok(());
        }
        if result["ok"] != json!(true) {
            return Err(format!("Python could not decrypt: {result}"));
        }
        check_user_context(case, &result["context"])?;
        if result["suite"] != json!(format!("{:04x}", case.suite.id())) {
            return Err(format!("Python read suite {}", result["suite"]));
        }
        match fs::read(&out) {
            Ok(p) if p == case.plaintext() => Ok(()),
            Ok(p) => Err(format!("plaintext differs ({} bytes)", p.len())),
            Err(e) => Err(format!("no plaintext from Python: {e}")),
        }
    }

    fn check_python_to_rust(
        case: &RsaCase,
        dir: &Path,
        result: &Value,
        keys: &KeyFiles,
    ) -> Result<(), String> {
        if result["ok"] != json!(true) {
            return Err(format!("Python could not encrypt: {result}"));
        }
        let message = fs::read(case.path(dir, "ct")).unwrap();
        let client = Client::builder()
            .keyring(keys.keyring(case.read_padding(), true))
            .build()
            .unwrap();
        let decrypted = rust_decrypt(&client, &message, case.stream);
        if case.must_fail() {
            return match decrypted {
                Err(Error::Keyring(KeyringError::UnwrapFailed { provider_id, .. }))
                    if provider_id == RSA_NAMESPACE =>
                {
                    Ok(())
                }
                other => Err(format!(
                    "wrong padding must be UnwrapFailed, got {:?}",
                    other.map(|d| d.plaintext.len())
                )),
            };
        }
        let decrypted = decrypted.map_err(|e| format!("cannot decrypt Python's message: {e:?}"))?;
        let header = &decrypted.header;
        let edks = &header.encrypted_data_keys;
        if edks.len() != 1
            || edks[0].provider_id != RSA_NAMESPACE
            || edks[0].provider_info != RSA_KEY_NAME.as_bytes()
            || edks[0].ciphertext.len() != RSA_BITS / 8
        {
            return Err(format!("unexpected EDKs from Python: {edks:?}"));
        }
        if header.suite != case.suite || header.frame_length != FRAME {
            return Err(format!(
                "header: suite {:04x}, frame length {}",
                header.suite.id(),
                header.frame_length
            ));
        }
        check_user_context(case, &context_json(&header.encryption_context))?;
        if decrypted.plaintext != case.plaintext() {
            return Err(format!(
                "plaintext differs ({} bytes, expected {})",
                decrypted.plaintext.len(),
                case.len
            ));
        }
        Ok(())
    }

    pub(super) fn run() {
        let started = Instant::now();
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let keys = KeyFiles::generate(dir, "rsa");
        let other = KeyFiles::generate(dir, "rsa-other");
        let keygen = started.elapsed();
        let cases = cases();

        let mut job = Vec::with_capacity(cases.len());
        for case in &cases {
            let mut entry = json!({
                "id": case.id,
                "api": if case.stream { "stream" } else { "oneshot" },
            });
            match case.direction {
                Direction::RustToPython => {
                    fs::write(case.path(dir, "ct"), rust_encrypt(case, &keys)).unwrap();
                    let reader = if case.twist == Twist::WrongKey {
                        &other
                    } else {
                        &keys
                    };
                    entry["key"] = reader.json(case.read_padding(), "decrypt");
                    entry["op"] = json!("decrypt");
                    entry["input"] = json!(case.path(dir, "ct"));
                    entry["output"] = json!(case.path(dir, "out"));
                }
                Direction::PythonToRust => {
                    fs::write(case.path(dir, "pt"), case.plaintext()).unwrap();
                    entry["key"] = keys.json(case.write_padding(), "encrypt");
                    entry["op"] = json!("encrypt");
                    entry["suite"] = json!(format!("{:04x}", case.suite.id()));
                    entry["frame_length"] = json!(FRAME);
                    entry["context"] = context_json(&case.context);
                    entry["input"] = json!(case.path(dir, "pt"));
                    entry["output"] = json!(case.path(dir, "ct"));
                }
            }
            job.push(entry);
        }
        let written = started.elapsed();
        let results = run_batch(dir, job);
        let python_done = started.elapsed();

        let mut failures = Vec::new();
        let mut passed = BTreeMap::<&str, usize>::new();
        for case in &cases {
            let Some(result) = results.get(&case.id) else {
                failures.push(format!("{}: no result from the peer", case.id));
                continue;
            };
            let checked = match case.direction {
                Direction::RustToPython => check_rust_to_python(case, dir, result),
                Direction::PythonToRust => check_python_to_rust(case, dir, result, &keys),
            };
            match checked {
                Ok(()) => *passed.entry(PADDINGS[case.padding].1).or_default() += 1,
                Err(e) => failures.push(format!("{}: {e}", case.id)),
            }
        }
        let negatives = cases.iter().filter(|c| c.must_fail()).count();
        eprintln!(
            "raw RSA interop ({RSA_BITS}-bit keys): {} cases ({} must fail), passed per \
             padding {passed:?}; key generation {:.2} s, Rust writing {:.2} s, Python {:.2} s, \
             checks {:.2} s, total {:.2} s",
            cases.len(),
            negatives,
            keygen.as_secs_f64(),
            (written - keygen).as_secs_f64(),
            (python_done - written).as_secs_f64(),
            (started.elapsed() - python_done).as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
        assert!(
            failures.is_empty(),
            "{} of {} raw RSA interoperability cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
        // 5 paddings x 2 directions x (2 suites x 3 payloads + 1 wrong padding), + 3.
        assert_eq!(cases.len(), 73);
        assert_eq!(passed.values().sum::<usize>(), 73);
    }
}

/// Each compiled-in provider (the tests above use the default one) writes messages Python
/// decrypts and decrypts messages Python writes: both suites we write, four sizes, a
/// non-ASCII context, 4 KiB frames.
#[test]
fn python_esdk_interop_every_provider() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let context = EncryptionContext::from_pairs([("study", "every-provider"), ("Größe", "患者")]);
    let frame = 4096u32;
    let mut job = Vec::new();
    let mut cases = Vec::new();
    for &provider in envcrypt::crypto::providers() {
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            let client = Client::builder()
                .provider(provider)
                .keyring(RawAesKeyring::new(NAMESPACE, KEY_NAME, &key()).unwrap())
                .suite(suite)
                .frame_length(frame)
                .build()
                .unwrap();
            for len in [0usize, 1, 4096, 3 * 4096 + 5] {
                let id = format!("{}-{:04x}-{len}", provider.name, suite.id());
                let plaintext = payload(len as u64 + u64::from(suite.id()), len);
                let ct = dir.join(format!("{id}.ct"));
                fs::write(&ct, client.encrypt(&plaintext, &context).unwrap()).unwrap();
                job.push(json!({
                    "id": format!("{id}-to-python"), "op": "decrypt", "api": "oneshot",
                    "key": key_json(&key()), "input": ct, "output": dir.join(format!("{id}.out")),
                }));
                let pt = dir.join(format!("{id}.pt"));
                fs::write(&pt, &plaintext).unwrap();
                job.push(json!({
                    "id": format!("{id}-from-python"), "op": "encrypt", "api": "oneshot",
                    "key": key_json(&key()), "suite": format!("{:04x}", suite.id()),
                    "frame_length": frame, "context": context_json(&context),
                    "input": pt, "output": dir.join(format!("{id}.py.ct")),
                }));
                cases.push((id, client.clone(), suite, plaintext));
            }
        }
    }
    let results = run_batch(dir, job);
    for (id, client, suite, plaintext) in &cases {
        let to = &results[&format!("{id}-to-python")];
        assert_eq!(to["ok"], json!(true), "{id}: Python decrypts ours: {to}");
        assert_eq!(
            fs::read(dir.join(format!("{id}.out"))).unwrap(),
            *plaintext,
            "{id}: Python's plaintext"
        );
        let from = &results[&format!("{id}-from-python")];
        assert_eq!(from["ok"], json!(true), "{id}: Python encrypts: {from}");
        let message = fs::read(dir.join(format!("{id}.py.ct"))).unwrap();
        for stream in [false, true] {
            let got = rust_decrypt(client, &message, stream)
                .unwrap_or_else(|e| panic!("{id}: decrypt Python's message: {e}"));
            assert_eq!(got.plaintext, *plaintext, "{id} (stream: {stream})");
            assert_eq!(got.header.suite, *suite, "{id}");
        }
    }
    assert_eq!(cases.len(), envcrypt::crypto::providers().len() * 2 * 4);
}
