//! The `envcrypt` tool's KMS keyring specs (`aws-kms:KEY`, `aws-kms-discovery:ACCOUNTS`)
//! against moto's KMS server (see `common/moto.rs`), configured for the child process only
//! through the usual AWS environment (`AWS_ENDPOINT_URL_KMS`, `AWS_REGION`, credentials).
//!
//! The tool must be built with `--features aws-kms`: the binary of `tests/common/cli.rs`
//! is built with the features of this test binary, and checked once to have KMS support.

#![cfg(feature = "aws-kms")]

#[path = "common/moto.rs"]
mod moto;
#[path = "common/cli.rs"]
mod tool;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use moto::{Moto, ACCOUNT, REGION};
use serde_json::Value;
use tool::Out;

/// The tool (see `tests/common/cli.rs`), checked once to have KMS support.
fn bin() -> &'static Path {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    let bin = tool::bin();
    CHECKED.call_once(|| {
        // A build without KMS says so for any aws-kms spec (no network needed to tell).
        let probe = Command::new(bin)
            .args(["encrypt", "-k", "aws-kms-discovery:1", "/dev/null"])
            .output()
            .expect("run envcrypt");
        let stderr = String::from_utf8_lossy(&probe.stderr);
        assert!(
            !stderr.contains("not yet supported in this build"),
            "{} was built without --features aws-kms: {stderr}",
            bin.display()
        );
    });
    bin
}

/// A scratch directory and the AWS environment of the child processes.
struct Env {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Env {
    fn new(endpoint: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            endpoint: endpoint.to_owned(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            // Only what the tests set: no profile, no instance metadata, no other endpoint.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_ENDPOINT_URL_KMS", &self.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        tool::run(cmd, None)
    }

    fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.path(name), data).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

/// CreateKey (and an alias) against moto: the key ARN.
fn create_key(moto: &Moto, alias: Option<&str>) -> String {
    let (id, arn) = moto::create_key(moto);
    if let Some(alias) = alias {
        let (rt, client) = moto::kms_client(moto);
        rt.block_on(
            client
                .create_alias()
                .alias_name(alias)
                .target_key_id(id)
                .send(),
        )
        .expect("CreateAlias");
    }
    arn
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn kms_round_trip_through_the_tool() {
    let moto = Moto::start();
    let a = create_key(&moto, Some("alias/cli-imaging"));
    let b = create_key(&moto, None);
    let env = Env::new(&moto.endpoint);
    let data = payload(200_000);
    env.write("scan.dcm", &data);
    env.write("aes.key", &[0x11; 32]);
    let (ka, kb) = (format!("aws-kms:{a}"), format!("aws-kms:{b}"));

    for suite in ["0478", "0578"] {
        let enc = env
            .run(&[
                "encrypt",
                "-q",
                "-k",
                &ka,
                "-k",
                &kb,
                "-k",
                "raw-aes:ns:escrow:aes.key",
                "-c",
                "study=ct",
                "--suite",
                suite,
                "--force",
                "-o",
                "scan.enc",
                "scan.dcm",
            ])
            .ok();
        let inspect: Value =
            serde_json::from_slice(&env.run(&["inspect", "scan.enc"]).ok().stdout).unwrap();
        let ids: Vec<&str> = inspect["encrypted_data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["provider_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["aws-kms", "aws-kms", "ns"]);
        eprintln!(
            "encrypt ({suite}, 3 keyrings) took {:.3} s",
            enc.took.as_secs_f64()
        );
        for keyring in [
            ka.as_str(),
            kb.as_str(),
            "aws-kms-discovery:123456789012",
            "aws-kms-discovery:111122223333,123456789012",
            "raw-aes:ns:escrow:aes.key",
        ] {
            let _ = std::fs::remove_file(env.path("scan.out"));
            let dec = env
                .run(&[
                    "decrypt", "-q", "-k", keyring, "-c", "study=ct", "-o", "scan.out", "scan.enc",
                ])
                .ok();
            assert_eq!(env.read("scan.out"), data, "{keyring}");
            eprintln!(
                "decrypt with {keyring} took {:.3} s",
                dec.took.as_secs_f64()
            );
        }
    }

    // Alias as generator; a discovery filter of another account is refused with the reason.
    env.run(&[
        "encrypt",
        "-q",
        "-k",
        "aws-kms:alias/cli-imaging",
        "-o",
        "alias.enc",
        "scan.dcm",
    ])
    .ok();
    env.run(&["decrypt", "-q", "-k", &ka, "-o", "alias.out", "alias.enc"])
        .ok();
    assert_eq!(env.read("alias.out"), data);
    let out = env
        .run(&[
            "decrypt",
            "-q",
            "-k",
            "aws-kms-discovery:111122223333",
            "-o",
            "x.out",
            "alias.enc",
        ])
        .fails(1);
    assert!(
        out.stderr
            .contains("account 123456789012 is not in the filter [111122223333]"),
        "{}",
        out.stderr
    );
    assert!(!env.path("x.out").exists());
    // Wrong key: not ours (exit 1); discovery cannot encrypt (exit 2); bad specs (exit 2).
    env.run(&["decrypt", "-q", "-k", &kb, "-o", "x.out", "alias.enc"])
        .fails(1);
    env.run(&[
        "encrypt",
        "-q",
        "-k",
        &format!("aws-kms-discovery:{ACCOUNT}"),
        "scan.dcm",
    ])
    .fails(2);
    env.run(&["encrypt", "-q", "-k", "aws-kms:", "scan.dcm"])
        .fails(2);
    env.run(&["decrypt", "-q", "-k", "aws-kms-discovery:12a", "alias.enc"])
        .fails(2);
}

#[test]
fn kms_unreachable_exits_4() {
    let mut moto = Moto::start();
    let a = create_key(&moto, None);
    let env = Env::new(&moto.endpoint);
    env.write("p", b"payload");
    let ka = format!("aws-kms:{a}");
    env.run(&["encrypt", "-q", "-k", &ka, "-o", "p.enc", "p"])
        .ok();
    moto.stop();
    for args in [
        vec!["encrypt", "-q", "-k", ka.as_str(), "-o", "q.enc", "p"],
        vec!["decrypt", "-q", "-k", ka.as_str(), "-o", "p.out", "p.enc"],
        vec![
            "decrypt",
            "-q",
            "-k",
            "aws-kms-discovery:123456789012",
            "-o",
            "p.out",
            "p.enc",
        ],
    ] {
        let out = env.run(&args).fails(4);
        assert!(out.stderr.contains("unavailable"), "{}", out.stderr);
        assert!(out.took < Duration::from_secs(15), "{:?}", out.took);
        eprintln!(
            "{} with KMS down: exit 4 after {:.3} s: {}",
            args[0],
            out.took.as_secs_f64(),
            out.stderr.trim()
        );
    }
    assert!(!env.path("q.enc").exists() && !env.path("p.out").exists());
}
