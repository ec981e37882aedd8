//! KMS specs' `?profile=` and discovery's `?partition=` / `?region=` through the tool,
//! against moto's KMS server (see `common/moto.rs`).

#![cfg(feature = "aws-kms")]

#[path = "common/moto.rs"]
mod moto;
#[path = "common/cli.rs"]
mod tool;

use std::path::PathBuf;
use std::process::Command;

use moto::{create_key, Moto, ACCOUNT, REGION};
use serde_json::Value;
use tool::Out;

/// A scratch directory, moto's endpoint, and an AWS config file with two profiles.
struct Env {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Env {
    fn new(endpoint: &str) -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
            endpoint: endpoint.to_owned(),
        };
        std::fs::write(
            env.path("aws-config"),
            format!(
                "[profile here]\nregion = {REGION}\n\n[profile elsewhere]\nregion = eu-west-1\n"
            ),
        )
        .unwrap();
        std::fs::write(env.path("scan.dcm"), b"DICM pixels").unwrap();
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The tool with moto's endpoint and credentials; the region only when `region`.
    fn run(&self, region: bool, args: &[&str]) -> Out {
        let mut cmd = Command::new(tool::bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ENDPOINT_URL_KMS", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_CONFIG_FILE", self.path("aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.path("no-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if region {
            cmd.env("AWS_REGION", REGION);
        }
        tool::run(cmd, None)
    }
}

/// Requests moto answered so far.
fn requests(moto: &Moto) -> usize {
    moto.log().matches("POST /").count()
}

#[test]
fn a_profile_picks_the_region_of_its_keyring() {
    let moto = Moto::start();
    let (id, arn) = create_key(&moto);
    let env = Env::new(&moto.endpoint);
    // A bare key id needs a region: none in the environment, so only the profile gives it.
    let out = env.run(
        false,
        &[
            "encrypt",
            "-k",
            &format!("aws-kms:{id}"),
            "-o",
            "x.enc",
            "scan.dcm",
        ],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no AWS region"), "{}", out.stderr);
    env.run(
        false,
        &[
            "encrypt",
            "-k",
            &format!("aws-kms:{id}?profile=here"),
            "-o",
            "x.enc",
            "scan.dcm",
        ],
    )
    .ok();
    let inspect: Value =
        serde_json::from_slice(&env.run(false, &["inspect", "x.enc"]).ok().stdout).unwrap();
    let info = inspect["encrypted_data_keys"][0]["provider_info"]
        .as_str()
        .unwrap()
        .to_owned();
    use base64::Engine as _;
    let info = base64::engine::general_purpose::STANDARD
        .decode(info)
        .unwrap();
    assert_eq!(String::from_utf8(info).unwrap(), arn);
    // The other profile's region does not hold the key.
    let out = env.run(
        false,
        &[
            "encrypt",
            "-k",
            &format!("aws-kms:{id}?profile=elsewhere"),
            "-o",
            "y.enc",
            "scan.dcm",
        ],
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!env.path("y.enc").exists());
    // Discovery with a profile (and no region in the environment) decrypts.
    env.run(
        false,
        &[
            "decrypt",
            "-k",
            &format!("aws-kms-discovery:{ACCOUNT}?profile=here"),
            "-o",
            "x.out",
            "x.enc",
        ],
    )
    .ok();
    assert_eq!(std::fs::read(env.path("x.out")).unwrap(), b"DICM pixels");
}

#[test]
fn discovery_skips_edks_of_other_partitions_without_a_call() {
    let moto = Moto::start();
    let (_, arn) = create_key(&moto);
    assert!(arn.starts_with("arn:aws:kms:"), "{arn}");
    let env = Env::new(&moto.endpoint);
    env.run(
        true,
        &[
            "encrypt",
            "-k",
            &format!("aws-kms:{arn}"),
            "-o",
            "x.enc",
            "scan.dcm",
        ],
    )
    .ok();

    let before = requests(&moto);
    assert!(before > 0, "moto's log shows no request: {}", moto.log());
    let gov = format!("aws-kms-discovery:{ACCOUNT}?partition=aws-us-gov&region={REGION}");
    let out = env
        .run(true, &["decrypt", "-k", &gov, "-o", "gov.out", "x.enc"])
        .fails(1);
    assert!(out.stderr.contains("aws-us-gov"), "{}", out.stderr);
    assert!(!env.path("gov.out").exists());
    assert_eq!(
        requests(&moto),
        before,
        "a call was made for an EDK of another partition"
    );

    // The partition of the EDK (explicit or the default) decrypts, with a call.
    for spec in [
        format!("aws-kms-discovery:{ACCOUNT}?partition=aws&region={REGION}"),
        format!("aws-kms-discovery:{ACCOUNT}"),
    ] {
        let _ = std::fs::remove_file(env.path("x.out"));
        env.run(true, &["decrypt", "-k", &spec, "-o", "x.out", "x.enc"])
            .ok();
        assert_eq!(std::fs::read(env.path("x.out")).unwrap(), b"DICM pixels");
    }
    assert!(requests(&moto) > before);
    // Bad options are usage errors before any call.
    for bad in [
        format!("aws-kms-discovery:{ACCOUNT}?partition=AWS"),
        format!("aws-kms-discovery:{ACCOUNT}?zone=1"),
        format!("aws-kms:{arn}?region={REGION}"),
    ] {
        let out = env
            .run(true, &["decrypt", "-k", &bad, "-o", "bad.out", "x.enc"])
            .fails(2);
        assert!(out.stderr.contains("option"), "{bad}: {}", out.stderr);
    }
}
