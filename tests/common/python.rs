//! The real Python ESDK the interoperability tests talk to: which interpreter, and how to
//! get one when it is missing (a missing peer fails the test with the fix, never skips it).
//! Shared by the test binaries that run `tests/peer/*.py`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Which major version of the Python ESDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esdk {
    /// 4.x with the Material Providers Library (keyrings); its venv also holds moto.
    V4,
    /// 3.x, the version the AWS Encryption CLI pins (master keys).
    V3,
}

impl Esdk {
    /// The environment variable that names the interpreter.
    pub fn env_var(self) -> &'static str {
        match self {
            Esdk::V4 => "ENVCRYPT_PYTHON",
            Esdk::V3 => "ENVCRYPT_PYTHON_ESDK3",
        }
    }

    /// The venv `scripts/test-all.sh` makes, under `target/`.
    pub fn venv(self) -> &'static str {
        match self {
            Esdk::V4 => "target/esdk-venv",
            Esdk::V3 => "target/esdk3-venv",
        }
    }

    /// How to install it.
    pub fn install_hint(self) -> String {
        let packages = match self {
            Esdk::V4 => "'aws-encryption-sdk[MPL]>=4,<5' 'moto[server]>=5,<6' (Python >= 3.11)",
            Esdk::V3 => "'aws-encryption-sdk>=3,<4'",
        };
        format!(
            "python3 -m venv {venv} && {venv}/bin/pip install {packages}, then run with \
             {var}={venv}/bin/python (or leave it unset: that is the default); \
             scripts/test-all.sh does all of this",
            venv = self.venv(),
            var = self.env_var(),
        )
    }
}

/// The interpreter of a venv with that ESDK; panics with the fix when there is none.
pub fn python(esdk: Esdk) -> PathBuf {
    let var = esdk.env_var();
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "{var}={} does not exist; {}",
            p.display(),
            esdk.install_hint()
        );
        return p;
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(esdk.venv())
        .join("bin/python");
    assert!(
        p.exists(),
        "no Python ESDK: {var} is not set and {} does not exist; {}",
        p.display(),
        esdk.install_hint()
    );
    p
}

/// A peer script of `tests/peer/`.
pub fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peer")
        .join(name)
}
