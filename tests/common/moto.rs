//! A moto KMS server for one test: started on 127.0.0.1 and a free port, stopped on drop.
//!
//! The binary comes from `ENVCRYPT_MOTO_SERVER`, else `target/esdk-venv/bin/moto_server`
//! (what `scripts/test-all.sh` installs). A missing binary fails the test with the fix; it
//! never skips.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's fixed account id (ARNs it returns carry it).
pub const ACCOUNT: &str = "123456789012";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

const INSTALL_HINT: &str = "install moto's server: python3 -m venv target/esdk-venv && \
     target/esdk-venv/bin/pip install 'moto[server]>=5,<6' \
     (or point ENVCRYPT_MOTO_SERVER at a moto_server binary)";

/// The moto_server binary; panics with the fix when it is missing.
pub fn moto_server_path() -> PathBuf {
    let path = match std::env::var_os("ENVCRYPT_MOTO_SERVER") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/esdk-venv/bin/moto_server"),
    };
    assert!(
        path.exists(),
        "moto_server not found at {} (ENVCRYPT_MOTO_SERVER {}); {INSTALL_HINT}",
        path.display(),
        if std::env::var_os("ENVCRYPT_MOTO_SERVER").is_some() {
            "is set"
        } else {
            "is not set"
        }
    );
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running moto server; killed on drop.
pub struct Moto {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    log: tempfile::NamedTempFile,
    /// Time from spawn to the first answered request.
    pub startup: Duration,
}

impl Moto {
    /// Starts moto and waits until it answers HTTP (at most 30 s; three ports are tried).
    pub fn start() -> Self {
        let bin = moto_server_path();
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("temp log");
            let started = Instant::now();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.reopen().expect("log")))
                .stderr(Stdio::from(log.reopen().expect("log")))
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}; {INSTALL_HINT}", bin.display()));
            loop {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    last_log = std::fs::read_to_string(log.path()).unwrap_or_default();
                    eprintln!("moto_server on port {port} exited ({status}); retrying");
                    break;
                }
                if answers_http(port) {
                    return Self {
                        child: Some(child),
                        port,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        log,
                        startup: started.elapsed(),
                    };
                }
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "moto_server did not answer on port {port} within 30 s; log:\n{}",
                        std::fs::read_to_string(log.path()).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto_server failed to start three times; last log:\n{last_log}");
    }

    /// Stops the server now (the tests of an outage); waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a moto server answers HTTP on `port` of 127.0.0.1.
pub fn answers_http(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

/// A current-thread runtime and a KMS client for `moto` (test credentials, [`REGION`]).
#[cfg(feature = "aws-kms")]
pub fn kms_client(moto: &Moto) -> (tokio::runtime::Runtime, aws_sdk_kms::Client) {
    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
            .endpoint_url(&moto.endpoint)
            .build(),
    );
    (rt, client)
}

/// CreateKey against `moto`: the new key's (id, ARN).
#[cfg(feature = "aws-kms")]
pub fn create_key(moto: &Moto) -> (String, String) {
    let (rt, client) = kms_client(moto);
    rt.block_on(async {
        let meta = client
            .create_key()
            .send()
            .await
            .expect("CreateKey")
            .key_metadata
            .expect("metadata");
        (meta.key_id().to_owned(), meta.arn.expect("arn"))
    })
}
