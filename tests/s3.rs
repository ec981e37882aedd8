//! S3 objects as inputs and outputs (feature `aws-s3`) against a real S3 implementation:
//! moto's server, one per test on 127.0.0.1 and a free port (`common/moto.rs`), or moto
//! with injected UploadPart failures (`tests/peer/moto_faults.py`). No mocks: every byte
//! goes through HTTP to the server and back.
//!
//! Covered:
//! - round trips for suites 0x0578 and 0x0478, sizes 0, 1, frame-aligned, a few MiB and
//!   17 MiB (a multipart upload of 3 parts), input of unknown length read in odd-sized
//!   pieces; through the async calls (`encrypt_to_s3`, `decrypt_from_s3`) and the blocking
//!   ones (`S3Client::write_object` + `encrypt_stream`, `S3Client::get` +
//!   `decrypt_stream`); `decrypt_to_s3`; one 200 MiB message;
//! - the Python ESDK (boto3 on the same server) decrypts our objects, we decrypt its;
//! - a tampered frame and a tampered signature fail with the authentication error, and
//!   `decrypt_to_s3` of them leaves no object and no multipart upload behind;
//! - an UploadPart answered 500 on every try fails the upload with that S3 error, after
//!   the retries, and the multipart upload is aborted before the call returns;
//! - write conditions (`IfAbsent`, `IfMatch`, `Overwrite`) for PutObject and multipart
//!   uploads, including an object that appears while the upload runs; `If-Match` reads;
//! - cancellation from the progress callback (encrypt and decrypt);
//! - `decrypt_s3_range` fetches a small part of a 20 MiB object; signed messages refused;
//! - object metadata is only what the caller set, never a context value;
//! - `S3Client::from_env` (in a child process: the AWS variables are process-global) and
//!   `from_env_with`.
//!
//! Run: `cargo test --release --features aws-s3 --test s3`, with `ENVCRYPT_MOTO_SERVER`
//! (default `target/esdk-venv/bin/moto_server`) and `ENVCRYPT_PYTHON` (default
//! `target/esdk-venv/bin/python`, with `aws-encryption-sdk[MPL]>=4,<5` and
//! `moto[server]>=5,<6`). Missing components fail the tests; nothing is skipped.

#![cfg(feature = "aws-s3")]

#[path = "common/moto.rs"]
mod moto;

#[path = "common/python.rs"]
mod python;

#[path = "common/s3.rs"]
mod s3_env;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use envcrypt::pipeline::PipelineOptions;
use envcrypt::s3::{S3Client, S3Object, S3Options, UploadOptions, WriteCondition, MAX_ATTEMPTS};
use envcrypt::{
    AlgorithmSuite, AuthenticationError, ConfigError, DecryptOptions, EncryptionContext, Error,
};
use s3_env::{client, payload, rt, Chunked, Env, Verifier, KEY_NAME, KIB, MIB, NAMESPACE};
use serde_json::{json, Value};

const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384;
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
const SUITES: [AlgorithmSuite; 2] = [SIGNED, UNSIGNED];
const FRAME: u32 = 64 * 1024;
const PUBLIC_KEY: &str = "aws-crypto-public-key";

/// Sizes of the round trips: empty, one byte, three whole frames, a few MiB (ragged), and
/// one that takes a multipart upload of three 8 MiB parts.
const SIZES: [usize; 5] = [0, 1, 3 * FRAME as usize, 3 * MIB + 12_345, 17 * MIB + 333];
const MULTIPART: usize = 17 * MIB + 333;

fn context() -> EncryptionContext {
    [("purpose", "s3-tests"), ("site", "zürich")]
        .into_iter()
        .collect()
}

fn suite_tag(suite: AlgorithmSuite) -> &'static str {
    match suite {
        SIGNED => "0578",
        _ => "0478",
    }
}

/// The S3 error in `e`, or a panic saying what came instead.
fn s3_error(e: &Error) -> &envcrypt::s3::S3Error {
    match e {
        Error::S3(s) => s,
        other => panic!("expected Error::S3, got {other:?} ({other})"),
    }
}

fn assert_precondition_failed(e: &Error, operation: &str) {
    let s = s3_error(e);
    assert_eq!(s.operation(), operation, "{s}");
    assert_eq!(s.http_status(), Some(412), "{s}");
    assert_eq!(s.code(), Some("PreconditionFailed"), "{s}");
    assert!(s.is_precondition_failed(), "{s}");
}

/// Encrypts the payload `seed` of `len` bytes into `key` with the async call.
fn encrypt_async(
    env: &Env,
    client: &envcrypt::Client,
    key: &str,
    seed: u64,
    len: usize,
    options: S3Options,
) -> Result<envcrypt::s3::ToS3, Error> {
    rt().block_on(client.encrypt_to_s3(
        &env.s3,
        Chunked::new(seed, len as u64),
        &env.object(key),
        &context(),
        options,
    ))
}

/// Decrypts `key` with the async call and checks it is the payload `seed` of `len` bytes.
fn decrypt_async_and_check(
    env: &Env,
    client: &envcrypt::Client,
    key: &str,
    seed: u64,
    len: usize,
) -> envcrypt::Header {
    let back = rt()
        .block_on(client.decrypt_from_s3(
            &env.s3,
            &env.object(key),
            Verifier::new(seed),
            &DecryptOptions::default().with_expected_context(context()),
            S3Options::default(),
        ))
        .unwrap_or_else(|e| panic!("decrypt_from_s3 {key}: {e}"));
    back.output.assert_complete(len as u64);
    assert_eq!(back.stats.bytes_out, len as u64);
    back.header
}

/// Byte offset, in the message, of content byte `at` of regular frame `index` (from 0).
fn frame_byte(message: &[u8], frame_length: u32, index: u64, at: u64) -> usize {
    let client = client(UNSIGNED, frame_length);
    let opened = client
        .open(&mut &message[..], &DecryptOptions::default())
        .expect("open");
    assert_eq!(opened.header.frame_length, frame_length);
    // Sequence number (4), IV (12), content, tag (16).
    let frame = 4 + 12 + u64::from(frame_length) + 16;
    (opened.header_len() as u64 + index * frame + 16 + at) as usize
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn round_trips_through_the_async_calls() {
    let env = Env::new("async");
    for suite in SUITES {
        let client = client(suite, FRAME);
        for (i, &len) in SIZES.iter().enumerate() {
            let key = format!("async/{}/{len}.enc", suite_tag(suite));
            let seed = 100 + i as u64;
            let started = Instant::now();
            let to = encrypt_async(&env, &client, &key, seed, len, S3Options::default())
                .unwrap_or_else(|e| panic!("encrypt_to_s3 {key}: {e}"));
            let up = started.elapsed();
            assert_eq!(to.stats.bytes_in, len as u64);
            assert_eq!(to.written.bytes, to.stats.bytes_out, "{key}");
            let info = env.s3.head(&env.object(&key)).unwrap().expect("object");
            assert_eq!(info.size, to.written.bytes, "{key}");
            assert_eq!(info.etag, to.written.etag, "{key}");
            if len == MULTIPART {
                assert!(to.written.parts >= 2, "{key}: {:?}", to.written);
            } else {
                assert_eq!(to.written.parts, 0, "{key}: one PutObject");
            }
            let started = Instant::now();
            let header = decrypt_async_and_check(&env, &client, &key, seed, len);
            assert_eq!(header.suite, suite);
            assert_eq!(header.encryption_context.get("site"), Some("zürich"));
            eprintln!(
                "{key}: {} bytes in {} parts, up {:.2} s, down {:.2} s",
                to.written.bytes,
                to.written.parts,
                up.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    assert_eq!(env.pending_uploads(), vec![]);
}

#[test]
fn round_trips_through_the_blocking_calls() {
    let env = Env::new("blocking");
    for suite in SUITES {
        let client = client(suite, FRAME);
        for (i, &len) in SIZES.iter().enumerate() {
            let key = format!("blocking/{}/{len}.enc", suite_tag(suite));
            let object = S3Object::parse(&format!("s3://{}/{key}", env.bucket)).unwrap();
            let seed = 200 + i as u64;
            // Half the uploads know their size, half do not.
            let mut options = UploadOptions::default().with_concurrency(2);
            if i % 2 == 0 {
                options = options.with_size_hint(len as u64);
            }
            let (stats, written) = env
                .s3
                .write_object(&object, &options, |upload| {
                    client.encrypt_stream(
                        Chunked::new(seed, len as u64),
                        upload,
                        &context(),
                        &PipelineOptions::default(),
                    )
                })
                .unwrap_or_else(|e| panic!("write_object {key}: {e}"));
            assert_eq!(stats.bytes_in, len as u64);
            assert_eq!(written.bytes, stats.bytes_out);
            if len == MULTIPART {
                assert!(written.parts >= 2, "{key}: {written:?}");
            }

            // Read it back pinned to the ETag the upload returned.
            let reader = env.s3.get(&object, written.etag.as_deref()).unwrap();
            assert_eq!(reader.info().size, written.bytes);
            assert_eq!(reader.info().etag, written.etag);
            let mut out = Verifier::new(seed);
            let (header, stats) = client
                .decrypt_stream(
                    reader,
                    &mut out,
                    &DecryptOptions::default().with_expected_context(context()),
                    &PipelineOptions::default(),
                )
                .unwrap_or_else(|e| panic!("decrypt_stream {key}: {e}"));
            out.assert_complete(len as u64);
            assert_eq!(stats.bytes_in, written.bytes);
            assert_eq!(header.suite, suite);
        }
    }
    assert_eq!(env.pending_uploads(), vec![]);
}

/// `decrypt_to_s3` writes the plaintext object, whole, once the message verified.
#[test]
fn decrypt_to_s3_writes_the_plaintext_object() {
    let env = Env::new("plain");
    for suite in SUITES {
        let client = client(suite, FRAME);
        for (len, seed) in [(0, 300), (MIB + 7, 301), (MULTIPART, 302)] {
            let key = format!("{}/{len}", suite_tag(suite));
            encrypt_async(
                &env,
                &client,
                &format!("{key}.enc"),
                seed,
                len,
                S3Options::default(),
            )
            .unwrap();
            let reader = env
                .s3
                .get(&env.object(&format!("{key}.enc")), None)
                .unwrap();
            let (header, to) = client
                .decrypt_to_s3(
                    &env.s3,
                    reader,
                    &env.object(&key),
                    &DecryptOptions::default(),
                    &S3Options::default(),
                )
                .unwrap_or_else(|e| panic!("decrypt_to_s3 {key}: {e}"));
            assert_eq!(header.suite, suite);
            assert_eq!(to.written.bytes, len as u64);
            assert_eq!(env.get(&key), payload(seed, len), "{key}");
        }
    }
    assert_eq!(env.pending_uploads(), vec![]);
}

/// 200 MiB of unknown length: 25 parts or so, memory bounded, checked as it streams.
#[test]
fn round_trip_of_200_mib() {
    const LEN: usize = 200 * MIB;
    let env = Env::new("big");
    let client = client(SIGNED, FRAME);
    let read = Arc::new(AtomicU64::new(0));
    let seen = read.clone();
    let options = S3Options::default().with_progress(Arc::new(move |n| {
        seen.fetch_max(n, Ordering::Relaxed);
    }));
    let started = Instant::now();
    let to = encrypt_async(&env, &client, "big.enc", 7, LEN, options).unwrap();
    let up = started.elapsed();
    assert_eq!(
        read.load(Ordering::Relaxed),
        LEN as u64,
        "progress saw every byte"
    );
    assert!(to.written.parts >= 25, "{:?}", to.written);
    assert_eq!(
        env.s3.head(&env.object("big.enc")).unwrap().unwrap().size,
        to.written.bytes
    );
    let started = Instant::now();
    decrypt_async_and_check(&env, &client, "big.enc", 7, LEN);
    eprintln!(
        "200 MiB: up {:.1} s ({} parts), down {:.1} s",
        up.as_secs_f64(),
        to.written.parts,
        started.elapsed().as_secs_f64()
    );
}

/// `S3Upload` on its own: part boundaries (exactly one and two parts), an empty object, and
/// a writer dropped or aborted mid-way (no object, no parts left).
#[test]
fn uploads_at_part_boundaries_and_abandoned_ones() {
    use envcrypt::s3::MIN_PART_SIZE;
    use std::io::Write;
    let env = Env::new("upload");
    for (key, len, parts) in [
        ("empty", 0, 0),
        ("under", MIN_PART_SIZE - 1, 0),
        ("one-part", MIN_PART_SIZE, 1),
        ("two-parts", 2 * MIN_PART_SIZE, 2),
        ("three-parts", 2 * MIN_PART_SIZE + 1, 3),
    ] {
        let data = payload(len as u64, len);
        let mut upload = env
            .s3
            .upload(&env.object(key), &UploadOptions::default())
            .unwrap();
        // Odd-sized writes.
        for chunk in data.chunks(1_000_003) {
            upload.write_all(chunk).unwrap();
        }
        let written = upload.finish().unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!((written.bytes, written.parts), (len as u64, parts), "{key}");
        assert!(env.get(key) == data, "{key}");
    }

    // Dropped after two parts went out: aborted before `drop` returns.
    let mut upload = env
        .s3
        .upload(&env.object("dropped"), &UploadOptions::default())
        .unwrap();
    upload.write_all(&payload(1, 20 * MIB)).unwrap();
    drop(upload);
    env.assert_nothing_left("dropped");
    assert_eq!(multipart_started_and_aborted(&env, "dropped"), (1, 1));

    let mut upload = env
        .s3
        .upload(&env.object("aborted"), &UploadOptions::default())
        .unwrap();
    upload.write_all(&payload(2, 20 * MIB)).unwrap();
    assert!(upload.abort().is_none(), "nothing had failed");
    env.assert_nothing_left("aborted");
    assert_eq!(multipart_started_and_aborted(&env, "aborted"), (1, 1));

    // Dropped before a part was full: nothing was ever sent.
    let mut upload = env
        .s3
        .upload(&env.object("small"), &UploadOptions::default())
        .unwrap();
    upload.write_all(b"a few bytes").unwrap();
    drop(upload);
    env.assert_nothing_left("small");
    assert_eq!(multipart_started_and_aborted(&env, "small"), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// The Python ESDK on the same bucket

#[test]
fn python_esdk_reads_our_objects_and_we_read_its() {
    let env = Env::new("python");
    let dir = tempfile::tempdir().unwrap();
    let key_json =
        json!({ "namespace": NAMESPACE, "name": KEY_NAME, "hex": hex::encode(s3_env::key()) });
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for suite in SUITES {
        let client = client(suite, FRAME);
        for (len, seed) in [(0, 400), (MIB + 17, 401), (9 * MIB + 5, 402)] {
            let key = format!("rust/{}/{len}.enc", suite_tag(suite));
            let to = encrypt_async(&env, &client, &key, seed, len, S3Options::default()).unwrap();
            assert_eq!(to.written.parts > 0, len > 8 * MIB, "{key}");
            let out = dir.path().join(format!("{}-{len}.out", suite_tag(suite)));
            cases.push(json!({
                "id": key, "op": "decrypt", "key": key_json,
                "bucket": env.bucket, "object": key, "output": out,
            }));
            ours.push((key, suite, out, seed, len));
        }
    }
    let mut theirs = Vec::new();
    for suite in SUITES {
        for (len, seed, multipart) in [
            (0, 500, false),
            (300_001, 501, false),
            (12 * MIB + 3, 502, true),
        ] {
            let key = format!("python/{}/{len}.enc", suite_tag(suite));
            let input = dir.path().join(format!("{}-{len}.in", suite_tag(suite)));
            std::fs::write(&input, payload(seed, len)).unwrap();
            cases.push(json!({
                "id": key, "op": "encrypt", "key": key_json,
                "bucket": env.bucket, "object": key, "input": input,
                "suite": suite_tag(suite), "frame_length": 4096,
                "context": { "written-by": "python", "site": "zürich" },
                "multipart": multipart,
            }));
            theirs.push((key, suite, seed, len));
        }
    }
    let (results, report) = s3_env::run_peer(
        "esdk_s3_peer.py",
        dir.path(),
        json!({
            "endpoint": env.endpoint, "cases": cases,
        }),
    );
    eprintln!(
        "python peer: aws-encryption-sdk {}, boto3 {}",
        report["esdk_version"], report["boto3_version"]
    );

    for (key, suite, out, seed, len) in ours {
        let r = &results[&key];
        assert_eq!(r["ok"], true, "Python could not decrypt {key}: {r}");
        assert_eq!(std::fs::read(&out).unwrap(), payload(seed, len), "{key}");
        let mut ctx: HashMap<String, Value> = serde_json::from_value(r["context"].clone()).unwrap();
        assert_eq!(ctx.remove(PUBLIC_KEY).is_some(), suite == SIGNED, "{key}");
        let want: HashMap<String, Value> = context()
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        assert_eq!(ctx, want, "{key}");
    }
    for (key, suite, seed, len) in theirs {
        let r = &results[&key];
        assert_eq!(r["ok"], true, "Python could not encrypt {key}: {r}");
        let back = rt()
            .block_on(client(UNSIGNED, FRAME).decrypt_from_s3(
                &env.s3,
                &env.object(&key),
                Verifier::new(seed),
                &DecryptOptions::default(),
                S3Options::default(),
            ))
            .unwrap_or_else(|e| panic!("decrypt_from_s3 {key}: {e}"));
        back.output.assert_complete(len as u64);
        assert_eq!(back.header.suite, suite);
        assert_eq!(back.header.frame_length, 4096);
        assert_eq!(
            back.header.encryption_context.get("written-by"),
            Some("python")
        );
        assert_eq!(back.header.encryption_context.get("site"), Some("zürich"));
    }
    // Python's 12 MiB messages went up as boto3 multipart uploads.
    for suite in SUITES {
        let key = format!("python/{}/{}.enc", suite_tag(suite), 12 * MIB + 3);
        assert_eq!(multipart_started_and_aborted(&env, &key), (1, 0), "{key}");
    }
    assert_eq!(env.pending_uploads(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Tampered objects

/// How many multipart uploads of `key` moto's request log shows started
/// (CreateMultipartUpload) and aborted (AbortMultipartUpload answered 204).
fn multipart_started_and_aborted(env: &Env, key: &str) -> (usize, usize) {
    let log = env.server_log();
    let path = format!("/{}/{key}?", env.bucket);
    let started = log
        .lines()
        .filter(|l| l.contains(&format!("POST {path}uploads")))
        .count();
    let aborted = log
        .lines()
        .filter(|l| {
            l.contains(&format!("DELETE {path}")) && l.contains("uploadId=") && l.contains("\" 204")
        })
        .count();
    (started, aborted)
}

#[test]
fn a_tampered_frame_fails_and_leaves_no_plaintext_object() {
    let env = Env::new("tamper");
    let client = client(UNSIGNED, FRAME);
    let len = 24 * MIB;
    encrypt_async(&env, &client, "scan.enc", 600, len, S3Options::default()).unwrap();
    let mut message = env.get("scan.enc");
    // Content of frame 321 (index 320): 20 MiB of good frames come first, so the
    // plaintext upload has sent two 8 MiB parts before the bad tag shows.
    let at = frame_byte(&message, FRAME, 320, 100);
    message[at] ^= 0x01;
    env.put("scan.enc", message);

    let e = rt()
        .block_on(client.decrypt_from_s3(
            &env.s3,
            &env.object("scan.enc"),
            Vec::new(),
            &DecryptOptions::default(),
            S3Options::default(),
        ))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Authentication(AuthenticationError::FrameTag { sequence: 321 })
        ),
        "{e:?}"
    );

    let reader = env.s3.get(&env.object("scan.enc"), None).unwrap();
    let e = client
        .decrypt_to_s3(
            &env.s3,
            reader,
            &env.object("scan"),
            &DecryptOptions::default(),
            &S3Options::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Authentication(AuthenticationError::FrameTag { sequence: 321 })
        ),
        "{e:?}"
    );
    env.assert_nothing_left("scan");
    assert_eq!(multipart_started_and_aborted(&env, "scan"), (1, 1));
}

#[test]
fn a_tampered_signature_fails_and_leaves_no_plaintext_object() {
    let env = Env::new("sig");
    let client = client(SIGNED, FRAME);
    encrypt_async(
        &env,
        &client,
        "scan.enc",
        601,
        MULTIPART,
        S3Options::default(),
    )
    .unwrap();
    let mut message = env.get("scan.enc");
    // The last byte of the DER signature: every frame verifies, the signature does not.
    *message.last_mut().unwrap() ^= 0x01;
    env.put("scan.enc", message);

    let e = rt()
        .block_on(client.decrypt_from_s3(
            &env.s3,
            &env.object("scan.enc"),
            Vec::new(),
            &DecryptOptions::default(),
            S3Options::default(),
        ))
        .unwrap_err();
    assert!(
        matches!(e, Error::Authentication(AuthenticationError::Signature)),
        "{e:?}"
    );

    // All the plaintext went into the upload before the signature failed: nothing appears.
    let reader = env.s3.get(&env.object("scan.enc"), None).unwrap();
    let e = client
        .decrypt_to_s3(
            &env.s3,
            reader,
            &env.object("scan"),
            &DecryptOptions::default(),
            &S3Options::default(),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Authentication(AuthenticationError::Signature)),
        "{e:?}"
    );
    env.assert_nothing_left("scan");
    assert_eq!(multipart_started_and_aborted(&env, "scan"), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// Injected failures

#[test]
fn a_failed_part_aborts_the_upload() {
    let env = Env::with_faults("faults", &[2], 500);
    let client = client(SIGNED, FRAME);
    let started = Instant::now();
    let e = encrypt_async(
        &env,
        &client,
        "async.enc",
        700,
        30 * MIB,
        S3Options::default(),
    )
    .unwrap_err();
    let s = s3_error(&e);
    assert_eq!(s.operation(), "UploadPart", "{s}");
    assert_eq!(s.http_status(), Some(500), "{s}");
    assert_eq!(s.code(), Some("InternalError"), "{s}");
    assert!(s.to_string().contains("injected fault on part 2"), "{s}");
    // Aborted before the call returned.
    env.assert_nothing_left("async.enc");
    eprintln!(
        "failed upload returned after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The blocking call, same fault: the upload's error, not the writer's.
    let e = env
        .s3
        .write_object(
            &env.object("blocking.enc"),
            &UploadOptions::default(),
            |upload| {
                client.encrypt_stream(
                    Chunked::new(701, 30 * MIB as u64),
                    upload,
                    &context(),
                    &PipelineOptions::default(),
                )
            },
        )
        .unwrap_err();
    let s = s3_error(&e);
    assert_eq!(
        (s.operation(), s.http_status()),
        ("UploadPart", Some(500)),
        "{s}"
    );
    env.assert_nothing_left("blocking.enc");

    // Each upload tried part 2 as often as the retry policy allows, then aborted.
    let log = env.server_log();
    let injected = log.matches("injected 500 UploadPart part 2").count();
    assert_eq!(injected, 2 * MAX_ATTEMPTS as usize, "{log}");
    for key in ["async.enc", "blocking.enc"] {
        assert_eq!(multipart_started_and_aborted(&env, key), (1, 1), "{key}");
    }
}

// ---------------------------------------------------------------------------------------------
// Write conditions

/// Runs the write conditions on an upload of `len` bytes; `operation` is the call that
/// refuses a failed condition.
fn write_conditions(tag: &str, len: usize, operation: &str) {
    let env = Env::new(tag);
    let client = client(SIGNED, FRAME);
    let with = |condition: WriteCondition| {
        S3Options::default().with_upload(UploadOptions::default().with_condition(condition))
    };
    let original = b"not ours".to_vec();
    let etag0 = env.put("x", original.clone());

    // IfAbsent (the default): the object exists.
    let e = encrypt_async(&env, &client, "x", 1, len, S3Options::default()).unwrap_err();
    assert_precondition_failed(&e, operation);
    assert_eq!(env.get("x"), original, "unchanged");
    assert_eq!(env.pending_uploads(), vec![]);

    // IfMatch of an ETag the object never had.
    let stale = "\"0123456789abcdef0123456789abcdef\"".to_owned();
    let e = encrypt_async(
        &env,
        &client,
        "x",
        1,
        len,
        with(WriteCondition::IfMatch(stale)),
    )
    .unwrap_err();
    assert_precondition_failed(&e, operation);
    assert_eq!(env.get("x"), original, "unchanged");
    assert_eq!(env.pending_uploads(), vec![]);

    // IfMatch of the current ETag replaces it.
    let to = encrypt_async(
        &env,
        &client,
        "x",
        2,
        len,
        with(WriteCondition::IfMatch(etag0.clone())),
    )
    .unwrap();
    decrypt_async_and_check(&env, &client, "x", 2, len);
    let etag1 = to.written.etag.clone().expect("etag");
    assert_ne!(etag1, etag0);

    // etag0 is stale now.
    let e = encrypt_async(
        &env,
        &client,
        "x",
        3,
        len,
        with(WriteCondition::IfMatch(etag0)),
    )
    .unwrap_err();
    assert_precondition_failed(&e, operation);
    decrypt_async_and_check(&env, &client, "x", 2, len);

    // A read pinned to a stale ETag is refused too; to the current one it works.
    let e = env
        .s3
        .get(
            &env.object("x"),
            Some("\"0123456789abcdef0123456789abcdef\""),
        )
        .unwrap_err();
    assert_precondition_failed(&e, "GetObject");
    env.s3.get(&env.object("x"), Some(&etag1)).unwrap();

    // Overwrite replaces whatever is there.
    encrypt_async(&env, &client, "x", 4, len, with(WriteCondition::Overwrite)).unwrap();
    decrypt_async_and_check(&env, &client, "x", 4, len);
    assert_eq!(env.pending_uploads(), vec![]);
}

#[test]
fn write_conditions_on_a_single_put() {
    write_conditions("cond-put", 100 * KIB, "PutObject");
}

#[test]
fn write_conditions_on_a_multipart_upload() {
    // moto ignores conditions on CompleteMultipartUpload: the HeadObject check before it
    // is what refuses these.
    write_conditions("cond-mpu", MULTIPART, "CompleteMultipartUpload");
}

/// IfAbsent is checked when the upload completes, not when it starts: an object that
/// appears in between wins.
#[test]
fn if_absent_refuses_an_object_that_appears_during_the_upload() {
    let env = Env::new("race");
    let client = client(UNSIGNED, FRAME);
    let object = env.object("x");
    let intruder = b"written while the upload ran".to_vec();
    /// The payload, and the intruder's PutObject once 12 MiB were read.
    struct Planting<'a> {
        input: Chunked,
        read: u64,
        env: &'a Env,
        intruder: Option<Vec<u8>>,
    }
    impl std::io::Read for Planting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.input.read(buf)?;
            self.read += n as u64;
            if self.read > 12 * MIB as u64 {
                if let Some(bytes) = self.intruder.take() {
                    // From a thread of its own: this one may be a runtime's.
                    let env = self.env;
                    std::thread::scope(|s| s.spawn(|| env.put("x", bytes)).join().unwrap());
                }
            }
            Ok(n)
        }
    }
    let input = Planting {
        input: Chunked::new(5, MULTIPART as u64),
        read: 0,
        env: &env,
        intruder: Some(intruder.clone()),
    };
    let e = env
        .s3
        .write_object(&object, &UploadOptions::default(), |upload| {
            client.encrypt_stream(input, upload, &context(), &PipelineOptions::default())
        })
        .unwrap_err();
    assert_precondition_failed(&e, "CompleteMultipartUpload");
    assert_eq!(env.get("x"), intruder, "the intruder's object stays");
    assert_eq!(env.pending_uploads(), vec![]);
}

#[test]
fn missing_objects_and_buckets_are_s3_errors() {
    let env = Env::new("missing");
    let client = client(SIGNED, FRAME);
    assert_eq!(env.s3.head(&env.object("nothing")).unwrap(), None);

    let e = rt()
        .block_on(client.decrypt_from_s3(
            &env.s3,
            &env.object("nothing"),
            Vec::new(),
            &DecryptOptions::default(),
            S3Options::default(),
        ))
        .unwrap_err();
    let s = s3_error(&e);
    assert_eq!(
        (s.operation(), s.code(), s.http_status()),
        ("GetObject", Some("NoSuchKey"), Some(404)),
        "{s}"
    );
    assert!(s.is_not_found());

    let e = rt()
        .block_on(client.encrypt_to_s3(
            &env.s3,
            Chunked::new(1, 10),
            &S3Object::new("no-such-bucket", "x"),
            &context(),
            S3Options::default(),
        ))
        .unwrap_err();
    let s = s3_error(&e);
    assert_eq!(
        (s.operation(), s.code(), s.http_status()),
        ("PutObject", Some("NoSuchBucket"), Some(404)),
        "{s}"
    );
    // The same, large: refused when the multipart upload is created.
    let e = rt()
        .block_on(client.encrypt_to_s3(
            &env.s3,
            Chunked::new(1, MULTIPART as u64),
            &S3Object::new("no-such-bucket", "x"),
            &context(),
            S3Options::default(),
        ))
        .unwrap_err();
    let s = s3_error(&e);
    assert_eq!(
        (s.operation(), s.code(), s.http_status()),
        ("CreateMultipartUpload", Some("NoSuchBucket"), Some(404)),
        "{s}"
    );

    let e = client
        .decrypt_s3_range(
            &env.s3,
            &env.object("nothing"),
            0..10,
            &DecryptOptions::default(),
        )
        .unwrap_err();
    // A missing object, found missing by the HeadObject that sizes it. (Its code and
    // status are not checked: the library reports this one without them.)
    let s = s3_error(&e);
    assert_eq!(s.operation(), "HeadObject", "{s}");
}

// ---------------------------------------------------------------------------------------------
// Cancellation

#[test]
fn cancel_from_the_progress_callback() {
    let env = Env::new("cancel");
    let client = client(SIGNED, FRAME);
    let cancel = Arc::new(AtomicBool::new(false));
    let trip = cancel.clone();
    let options = S3Options::default()
        .with_cancel(cancel.clone())
        .with_progress(Arc::new(move |read| {
            if read >= 12 * MIB as u64 {
                trip.store(true, Ordering::Relaxed);
            }
        }));
    let e = encrypt_async(&env, &client, "x.enc", 800, 40 * MIB, options).unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e:?}");
    env.assert_nothing_left("x.enc");
    // A multipart upload had started (12 MiB in) and was aborted.
    assert_eq!(multipart_started_and_aborted(&env, "x.enc"), (1, 1));

    // Decrypting, cancelled after 1 MiB of the object.
    encrypt_async(&env, &client, "y.enc", 801, MULTIPART, S3Options::default()).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let trip = cancel.clone();
    let options = S3Options::default()
        .with_cancel(cancel)
        .with_progress(Arc::new(move |read| {
            if read >= MIB as u64 {
                trip.store(true, Ordering::Relaxed);
            }
        }));
    let e = rt()
        .block_on(client.decrypt_from_s3(
            &env.s3,
            &env.object("y.enc"),
            Vec::new(),
            &DecryptOptions::default(),
            options,
        ))
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e:?}");
}

/// A service that gives up on a call (a request timeout drops the future) gets no object
/// later: the work stops at its next read and the upload is aborted.
#[test]
fn a_dropped_call_leaves_no_object() {
    let env = Env::new("dropped");
    let client = client(SIGNED, FRAME);
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let options = S3Options::default().with_progress(Arc::new(move |read| {
        seen.store(read, Ordering::Relaxed);
    }));
    let (object, context) = (env.object("gone.enc"), context());
    let call = client.encrypt_to_s3(
        &env.s3,
        Chunked::new(77, 200 * MIB as u64),
        &object,
        &context,
        options,
    );
    // Give up once a part is on its way (the multipart upload exists), long before the end.
    let gave_up = rt().block_on(async {
        let mut call = std::pin::pin!(call);
        loop {
            tokio::select! {
                done = &mut call => return Err(done),
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {
                    if progress.load(Ordering::Relaxed) > 20 * MIB as u64 {
                        return Ok(());
                    }
                }
            }
        }
    });
    assert!(gave_up.is_ok(), "the call ended first: {gave_up:?}");
    // The abandoned work notices at its next read and aborts; wait for that, then check
    // for a while that nothing appears.
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while multipart_started_and_aborted(&env, "gone.enc") != (1, 1) {
        assert!(Instant::now() < deadline, "{}", env.server_log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    env.assert_nothing_left("gone.enc");
}

// ---------------------------------------------------------------------------------------------
// Ranges

#[test]
fn ranges_fetch_only_the_frames_they_need() {
    const LEN: usize = 20 * MIB;
    let env = Env::new("range");
    let client = client(UNSIGNED, FRAME);
    let to = encrypt_async(&env, &client, "image.enc", 900, LEN, S3Options::default()).unwrap();
    let plain = payload(900, LEN);
    let object = env.object("image.enc");
    let mid = 10 * MIB + 123;
    for range in [
        0..1,
        mid..mid + 200_000,
        LEN - 10..LEN,
        LEN - 10..LEN + 100,
        5..5,
    ] {
        let got = client
            .decrypt_s3_range(
                &env.s3,
                &object,
                range.start as u64..range.end as u64,
                &DecryptOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{range:?}: {e}"));
        let end = range.end.min(LEN);
        assert!(got == plain[range.start..end], "{range:?}");
    }

    let mut reader = env.s3.ranged(&object).unwrap();
    assert_eq!(reader.info().size, to.written.bytes);
    let got = client
        .decrypt_range(
            &mut reader,
            mid as u64..mid as u64 + 200_000,
            &DecryptOptions::default(),
        )
        .unwrap();
    assert!(got == plain[mid..mid + 200_000]);
    let fetched = reader.bytes_fetched();
    eprintln!(
        "200,000 bytes of a {} byte object: {fetched} bytes fetched",
        to.written.bytes
    );
    assert!(fetched > 0 && fetched < 2 * MIB as u64, "{fetched}");

    // Reads are pinned to the ETag seen when the reader was made.
    let mut reader = env.s3.ranged(&object).unwrap();
    env.put("image.enc", env.get("image.enc"));
    let e = client
        .decrypt_range(&mut reader, 0..10, &DecryptOptions::default())
        .unwrap_err();
    eprintln!("a ranged read of a changed object: {e:?}");
    // Through the reader directly: the I/O error the reader returned, holding the S3Error.
    let found_412 = match &e {
        Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<envcrypt::s3::S3Error>())
            .is_some_and(|s| s.is_precondition_failed() && s.operation() == "GetObject"),
        _ => false,
    };
    assert!(found_412, "{e:?}");
    // Through the client's call: lifted back to Error::S3. A missing object is 404.
    let e = client
        .decrypt_s3_range(
            &env.s3,
            &env.object("nothing-here"),
            0..10,
            &DecryptOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::S3(s) if s.is_not_found() && s.code() == Some("NotFound")),
        "{e:?}"
    );

    // Signed messages cannot be read in pieces.
    encrypt_async(
        &env,
        &client_signed(),
        "signed.enc",
        901,
        MIB,
        S3Options::default(),
    )
    .unwrap();
    let e = client_signed()
        .decrypt_s3_range(
            &env.s3,
            &env.object("signed.enc"),
            0..10,
            &DecryptOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::RandomAccessUnsupported)),
        "{e:?}"
    );
}

fn client_signed() -> envcrypt::Client {
    client(SIGNED, FRAME)
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[test]
fn object_metadata_is_only_what_the_caller_set() {
    let env = Env::new("meta");
    let client = client(SIGNED, FRAME);
    let secret = "patient-123";
    let ctx: EncryptionContext = [("patient", secret), ("study", "ct")].into_iter().collect();
    let upload = UploadOptions::default()
        .with_metadata("purpose", "imaging")
        .with_metadata("owner", "radiology");
    let want: HashMap<String, String> = [("purpose", "imaging"), ("owner", "radiology")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (key, len) in [
        ("scans/ct-0001.enc", 100 * KIB),
        ("scans/ct-0002.enc", MULTIPART),
    ] {
        let to = rt()
            .block_on(client.encrypt_to_s3(
                &env.s3,
                Chunked::new(1000, len as u64),
                &env.object(key),
                &ctx,
                S3Options::default().with_upload(upload.clone()),
            ))
            .unwrap();
        assert_eq!(to.written.parts > 0, len == MULTIPART);
        let meta = env.metadata(key).expect("object");
        assert_eq!(meta, want, "{key}");
        for (k, v) in &meta {
            assert!(!k.contains(secret) && !v.contains(secret), "{key}: {k}={v}");
        }
        assert!(!key.contains(secret));
        // The library's views of it agree.
        assert_eq!(
            env.s3.head(&env.object(key)).unwrap().unwrap().metadata,
            want
        );
        assert_eq!(
            env.s3.get(&env.object(key), None).unwrap().info().metadata,
            want
        );
    }

    // Without metadata in the options, the object has none.
    encrypt_async(
        &env,
        &client,
        "bare.enc",
        1001,
        MULTIPART,
        S3Options::default(),
    )
    .unwrap();
    encrypt_async(
        &env,
        &client,
        "bare-small.enc",
        1002,
        10,
        S3Options::default(),
    )
    .unwrap();
    assert_eq!(env.metadata("bare.enc"), Some(HashMap::new()));
    assert_eq!(env.metadata("bare-small.enc"), Some(HashMap::new()));
}

// ---------------------------------------------------------------------------------------------
// Clients from the environment

/// `from_env_with`: the loader gets endpoint, region and credentials (path-style follows
/// from the endpoint).
#[test]
fn from_env_with_a_configured_loader() {
    use aws_sdk_s3::config::{Credentials, Region};
    let env = Env::new("loader");
    let endpoint = env.endpoint.clone();
    let s3 = S3Client::from_env_with(|l| {
        l.endpoint_url(endpoint)
            .region(Region::new(moto::REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "s3-tests"))
    })
    .unwrap();
    let client = client(UNSIGNED, FRAME);
    let object = env.object("loader.enc");
    rt().block_on(client.encrypt_to_s3(
        &s3,
        Chunked::new(1, 1000),
        &object,
        &context(),
        S3Options::default(),
    ))
    .unwrap();
    let back = rt()
        .block_on(client.decrypt_from_s3(
            &s3,
            &object,
            Verifier::new(1),
            &DecryptOptions::default(),
            S3Options::default(),
        ))
        .unwrap();
    back.output.assert_complete(1000);
    assert!(env.s3.head(&object).unwrap().is_some());
}

const CHILD_BUCKET: &str = "ENVCRYPT_S3_TEST_CHILD_BUCKET";

/// `from_env`, in a child process (the AWS variables are process-global): this test binary
/// again, running only [`from_env_child`] with AWS_ENDPOINT_URL_S3, AWS_REGION and static
/// credentials set and every profile file out of the way.
#[test]
fn from_env_reads_the_standard_variables() {
    let env = Env::new("fromenv");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "from_env_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_BUCKET, &env.bucket)
        .env("AWS_ENDPOINT_URL_S3", &env.endpoint)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
    // It really wrote to this moto.
    assert!(
        env.s3.head(&env.object("from-env.enc")).unwrap().is_some(),
        "{text}"
    );
}

/// The child of [`from_env_reads_the_standard_variables`]; passes without doing anything
/// when run on its own.
#[test]
#[ignore = "run by from_env_reads_the_standard_variables in a child process"]
fn from_env_child() {
    let Ok(bucket) = std::env::var(CHILD_BUCKET) else {
        eprintln!(
            "from_env_child: only meaningful as the child of from_env_reads_the_standard_variables"
        );
        return;
    };
    let s3 = S3Client::from_env().unwrap();
    let client = client(SIGNED, FRAME);
    let object = S3Object::new(bucket, "from-env.enc");
    rt().block_on(client.encrypt_to_s3(
        &s3,
        Chunked::new(2, 70_000),
        &object,
        &context(),
        S3Options::default(),
    ))
    .unwrap();
    let back = rt()
        .block_on(client.decrypt_from_s3(
            &s3,
            &object,
            Verifier::new(2),
            &DecryptOptions::default(),
            S3Options::default(),
        ))
        .unwrap();
    back.output.assert_complete(70_000);
}
