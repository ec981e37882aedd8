//! `raw-rsa:NAMESPACE:NAME:PADDING:PATH` keyring specs.
//!
//! PADDING is `pkcs1`, `oaep-sha1`, `oaep-sha256`, `oaep-sha384` or `oaep-sha512`; PATH is a
//! PEM public key (`-----BEGIN PUBLIC KEY-----`: encrypt only) or an unencrypted PKCS#8
//! private key (`-----BEGIN PRIVATE KEY-----`: decrypt, or both), as `keygen rsa` writes them.
//! A private key file is a secret (see `secret_file`): refused when group or others can
//! write it. Errors name the spec up to its key name and the file, never key bytes.

use std::path::PathBuf;
use std::sync::Arc;

use envcrypt::crypto::RsaPadding;
use envcrypt::keyring::{Keyring, RawRsaKeyring};

use crate::error::AppError;
use crate::keyring_spec::Purpose;
use crate::secret_file::SecretFile;

/// Largest PEM key file read (an 8192-bit PKCS#8 key is about 6.5 KB of PEM).
const MAX_PEM_FILE: u64 = 64 * 1024;

/// The paddings of the spec, by name.
const PADDINGS: [(&str, RsaPadding); 5] = [
    ("pkcs1", RsaPadding::Pkcs1v15),
    ("oaep-sha1", RsaPadding::OaepSha1),
    ("oaep-sha256", RsaPadding::OaepSha256),
    ("oaep-sha384", RsaPadding::OaepSha384),
    ("oaep-sha512", RsaPadding::OaepSha512),
];

const USAGE: &str = "raw-rsa keyring spec must be raw-rsa:NAMESPACE:NAME:PADDING:PATH";

/// One parsed `raw-rsa:` spec.
#[derive(Debug)]
pub struct RawRsaSpec {
    namespace: String,
    name: String,
    padding: RsaPadding,
    path: PathBuf,
}

impl RawRsaSpec {
    /// Parses what follows `raw-rsa:`.
    pub fn parse(rest: &str) -> Result<Self, AppError> {
        let mut parts = rest.splitn(4, ':');
        let (Some(namespace), Some(name), Some(padding), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AppError::usage(USAGE));
        };
        if namespace.is_empty() || name.is_empty() || padding.is_empty() || path.is_empty() {
            return Err(AppError::usage(format!("{USAGE} (none empty)")));
        }
        let Some(&(_, padding)) = PADDINGS.iter().find(|(n, _)| *n == padding) else {
            return Err(AppError::usage(format!(
                "keyring raw-rsa:{namespace}:{name}: unknown padding {:?} (expected one of {})",
                padding.chars().take(32).collect::<String>(),
                PADDINGS.map(|(n, _)| n).join(", ")
            )));
        };
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            padding,
            path: PathBuf::from(path),
        })
    }

    /// The EDK namespace (provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name (the EDKs' provider info).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the PEM key and builds the keyring. A public key cannot decrypt: asked to, this
    /// is a usage error here rather than a failure per message.
    pub fn build(&self, purpose: Purpose) -> Result<Arc<dyn Keyring>, AppError> {
        let Self {
            namespace,
            name,
            padding,
            path,
        } = self;
        let shown = path.display();
        let file = SecretFile::read(path, MAX_PEM_FILE, "key file")?;
        let text = std::str::from_utf8(file.bytes())
            .map_err(|_| AppError::usage(format!("key file {shown}: not a PEM file (not text)")))?;
        let keyring = RawRsaKeyring::from_pem(namespace, name, *padding, text).map_err(|e| {
            AppError::usage(format!(
                "keyring raw-rsa:{namespace}:{name}: key file {shown}: {e}"
            ))
        })?;
        // A private key is a secret (a public key may be readable by anyone).
        if keyring.can_decrypt() {
            file.enforce("key file")?;
        }
        if purpose == Purpose::Decrypt && !keyring.can_decrypt() {
            return Err(AppError::usage(format!(
                "keyring raw-rsa:{namespace}:{name}: key file {shown} holds a public key; \
                 decrypting needs the private key (the PREFIX.pem of keygen rsa)"
            )));
        }
        Ok(Arc::new(keyring))
    }
}
