//! Helpers of the S3 tests (`tests/s3.rs`): a moto S3 server per test (plain, or with
//! injected faults from `tests/peer/moto_faults.py`), a bucket of its own, the library's
//! [`S3Client`] and a raw `aws-sdk-s3` client on it for what the test checks behind the
//! library's back, and data that is generated and checked as a stream (no copy of a
//! 200 MiB payload in memory).
//!
//! Needs the including test binary to declare `mod moto` (`common/moto.rs`) and
//! `mod python` (`common/python.rs`) at its root.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use envcrypt::keyring::RawAesKeyring;
use envcrypt::s3::{S3Client, S3Object};
use envcrypt::{AlgorithmSuite, Client};

use crate::moto::{answers_http, free_port, Moto, REGION};
use crate::python::{self, Esdk};

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;

/// The raw AES key both sides hold (the names are those of the other interop tests).
pub const NAMESPACE: &str = "envcrypt-interop";
pub const KEY_NAME: &str = "aes-256-wrapping-key";

pub fn key() -> [u8; 32] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
}

/// A client on the shared raw AES key, writing `suite` in frames of `frame_length`.
pub fn client(suite: AlgorithmSuite, frame_length: u32) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new(NAMESPACE, KEY_NAME, &key()).expect("raw AES keyring"))
        .suite(suite)
        .frame_length(frame_length)
        .build()
        .expect("client")
}

/// The runtime the tests drive async calls (the library's and the raw client's) on.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-tests")
            .enable_all()
            .build()
            .expect("test runtime")
    })
}

/// An `aws-sdk-s3` configuration for a local server: path-style, us-east-1, static
/// credentials.
pub fn sdk_config(endpoint: &str) -> aws_sdk_s3::Config {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "s3-tests"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build()
}

/// `moto_faults.py` as a server: moto with UploadPart of some part numbers failing.
pub struct FaultServer {
    child: Option<Child>,
    pub endpoint: String,
    log: tempfile::NamedTempFile,
}

impl FaultServer {
    /// Starts it with UploadPart of `parts` answering `status` (at most 30 s to answer).
    pub fn start(parts: &[u32], status: u16) -> Self {
        let py = python::python(Esdk::V4);
        let script = python::peer_script("moto_faults.py");
        let parts = parts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("temp log");
            let started = Instant::now();
            let mut child = Command::new(&py)
                .arg(&script)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_FAULT_UPLOAD_PART", &parts)
                .env("MOTO_FAULT_STATUS", status.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.reopen().expect("log")))
                .stderr(Stdio::from(log.reopen().expect("log")))
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("spawn {}: {e}; {}", py.display(), Esdk::V4.install_hint())
                });
            loop {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                    assert_ne!(status.code(), Some(3), "moto_faults.py:\n{text}");
                    eprintln!("moto_faults.py on port {port} exited ({status}); retrying:\n{text}");
                    break;
                }
                if answers_http(port) {
                    return Self {
                        child: Some(child),
                        endpoint: format!("http://127.0.0.1:{port}"),
                        log,
                    };
                }
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "moto_faults.py did not answer on port {port} within 30 s; log:\n{}",
                        std::fs::read_to_string(log.path()).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto_faults.py failed to start three times");
    }

    /// What the server printed so far (moto's request log and the injected faults).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

enum Server {
    Moto(Moto),
    Faults(FaultServer),
}

/// One test's S3: its server, a bucket of its own, the library's client and a raw one.
pub struct Env {
    server: Server,
    pub endpoint: String,
    pub bucket: String,
    /// The library's client (`S3Client::from_sdk_client`).
    pub s3: S3Client,
    /// A plain SDK client for the checks and the tampering.
    pub raw: aws_sdk_s3::Client,
}

/// A bucket name no other test of this process uses.
pub fn bucket_name(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "envcrypt-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Env {
    /// moto's server and a new bucket.
    pub fn new(tag: &str) -> Self {
        let moto = Moto::start();
        let endpoint = moto.endpoint.clone();
        Self::on(Server::Moto(moto), endpoint, tag)
    }

    /// `moto_faults.py` with UploadPart of `parts` failing with `status`, and a new bucket.
    pub fn with_faults(tag: &str, parts: &[u32], status: u16) -> Self {
        let server = FaultServer::start(parts, status);
        let endpoint = server.endpoint.clone();
        Self::on(Server::Faults(server), endpoint, tag)
    }

    fn on(server: Server, endpoint: String, tag: &str) -> Self {
        let raw = aws_sdk_s3::Client::from_conf(sdk_config(&endpoint));
        let s3 = S3Client::from_sdk_client(aws_sdk_s3::Client::from_conf(sdk_config(&endpoint)));
        let bucket = bucket_name(tag);
        rt().block_on(raw.create_bucket().bucket(&bucket).send())
            .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
        Self {
            server,
            endpoint,
            bucket,
            s3,
            raw,
        }
    }

    /// The fault server's log (empty for plain moto).
    pub fn server_log(&self) -> String {
        match &self.server {
            Server::Moto(m) => m.log(),
            Server::Faults(f) => f.log(),
        }
    }

    /// `key` in this test's bucket.
    pub fn object(&self, key: &str) -> S3Object {
        S3Object::new(&self.bucket, key)
    }

    /// PutObject of `bytes` behind the library's back (no condition); the new ETag.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> String {
        let out = rt()
            .block_on(
                self.raw
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .body(ByteStream::from(bytes))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
        out.e_tag.expect("etag")
    }

    /// The object's bytes, read behind the library's back.
    pub fn get(&self, key: &str) -> Vec<u8> {
        rt().block_on(async {
            let out = self
                .raw
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetObject {key}: {e:?}"));
            out.body
                .collect()
                .await
                .expect("body")
                .into_bytes()
                .to_vec()
        })
    }

    /// The object's user metadata (raw HeadObject), or `None` without an object.
    pub fn metadata(&self, key: &str) -> Option<HashMap<String, String>> {
        let out = rt().block_on(self.raw.head_object().bucket(&self.bucket).key(key).send());
        match out {
            Ok(out) => Some(out.metadata.unwrap_or_default()),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => None,
            Err(e) => panic!("HeadObject {key}: {e:?}"),
        }
    }

    /// Every key in the bucket.
    pub fn keys(&self) -> Vec<String> {
        let out = rt()
            .block_on(self.raw.list_objects_v2().bucket(&self.bucket).send())
            .expect("ListObjectsV2");
        out.contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect()
    }

    /// Multipart uploads started and neither completed nor aborted: (key, upload id).
    pub fn pending_uploads(&self) -> Vec<(String, String)> {
        let out = rt()
            .block_on(
                self.raw
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .send(),
            )
            .expect("ListMultipartUploads");
        out.uploads
            .unwrap_or_default()
            .into_iter()
            .map(|u| (u.key.unwrap_or_default(), u.upload_id.unwrap_or_default()))
            .collect()
    }

    /// No object `key` (the library's HeadObject says so, and the listing agrees) and no
    /// multipart upload pending in the bucket.
    pub fn assert_nothing_left(&self, key: &str) {
        let obj = self.object(key);
        assert_eq!(
            self.s3.head(&obj).expect("HeadObject"),
            None,
            "{obj} exists"
        );
        assert!(
            !self.keys().iter().any(|k| k == key),
            "{obj} is listed: {:?}",
            self.keys()
        );
        assert_eq!(
            self.pending_uploads(),
            vec![],
            "multipart uploads left behind"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Data

/// Byte `i` of the payload `seed` is byte `i % 8` of word `i / 8` of a splitmix64 stream.
fn word(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0xD1B5_4A32_D192_ED03)
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes `pos ..` of the payload `seed` into `buf`.
pub fn fill(seed: u64, pos: u64, buf: &mut [u8]) {
    let (mut p, mut i) = (pos, 0);
    while i < buf.len() {
        let w = word(seed, p / 8).to_le_bytes();
        let off = (p % 8) as usize;
        let n = (8 - off).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[off..off + n]);
        i += n;
        p += n as u64;
    }
}

/// The first `len` bytes of the payload `seed`.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill(seed, 0, &mut v);
    v
}

/// The payload `seed` of `len` bytes, read in odd-sized pieces with no size known in
/// advance (as from a pipe): 1, 7, 4093, 65537, 100003, 3 bytes at a time, over and over.
pub struct Chunked {
    seed: u64,
    len: u64,
    pos: u64,
    turn: usize,
}

impl Chunked {
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            seed,
            len,
            pos: 0,
            turn: 0,
        }
    }
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const SIZES: [usize; 6] = [1, 7, 4093, 65537, 100_003, 3];
        let left = (self.len - self.pos) as usize;
        let n = SIZES[self.turn % SIZES.len()].min(buf.len()).min(left);
        self.turn += 1;
        fill(self.seed, self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// A `Write` that checks what it is given against the payload `seed`, as it comes.
#[derive(Debug)]
pub struct Verifier {
    seed: u64,
    pos: u64,
    first_mismatch: Option<u64>,
    scratch: Vec<u8>,
}

impl Verifier {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            pos: 0,
            first_mismatch: None,
            scratch: Vec::new(),
        }
    }

    /// Asserts that exactly the payload's first `len` bytes came.
    pub fn assert_complete(&self, len: u64) {
        assert_eq!(
            self.first_mismatch, None,
            "the output differs from the payload"
        );
        assert_eq!(self.pos, len, "output length");
    }
}

impl Write for Verifier {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.scratch.resize(data.len(), 0);
        fill(self.seed, self.pos, &mut self.scratch);
        if self.first_mismatch.is_none() {
            if let Some(i) = data.iter().zip(&self.scratch).position(|(a, b)| a != b) {
                self.first_mismatch = Some(self.pos + i as u64);
            }
        }
        self.pos += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `peer_script` of `tests/peer/` on a job; its results by case id, and the report.
pub fn run_peer(
    peer_script: &str,
    dir: &Path,
    job: serde_json::Value,
) -> (HashMap<String, serde_json::Value>, serde_json::Value) {
    let py = python::python(Esdk::V4);
    let job_path = dir.join("job.json");
    let results = dir.join("results.json");
    std::fs::write(&job_path, serde_json::to_vec(&job).unwrap()).unwrap();
    let out = Command::new(&py)
        .arg(python::peer_script(peer_script))
        .arg(&job_path)
        .arg(&results)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; {}",
                py.display(),
                Esdk::V4.install_hint()
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!("the Python peer is not usable:\n{stderr}"),
        _ => panic!("the Python peer failed ({}):\n{stderr}", out.status),
    }
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&results)
            .unwrap_or_else(|e| panic!("the peer wrote no results ({e}); stderr:\n{stderr}")),
    )
    .expect("results are JSON");
    let version = report["esdk_version"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("4."),
        "aws-encryption-sdk {version} found, 4.x required; {}",
        Esdk::V4.install_hint()
    );
    let by_id = report["results"]
        .as_array()
        .expect("results list")
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r.clone()))
        .collect();
    (by_id, report)
}
