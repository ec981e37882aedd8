//! `raw-aes:NAMESPACE:NAME:PATH` and `raw-rsa:NAMESPACE:NAME:PADDING:PATH`.
//!
//! A raw AES key file holds 16, 24 or 32 raw bytes, or their base64 on one line (at most
//! 4 KiB). A raw RSA key file is a PEM public key (encrypt only) or an unencrypted PKCS#8
//! private key (at most 64 KiB). Key files are secrets (see [`SecretFile`]); a public key is
//! not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::error::{FileProblem, SpecError, SpecWarning};
use super::secret_file::SecretFile;
use super::Purpose;
use crate::crypto::RsaPadding;
use crate::keyring::{Keyring, RawAesKeyring, RawRsaKeyring};

/// Largest AES key file read (a base64 line of a 32-byte key is 44 characters).
pub const MAX_AES_KEY_FILE: u64 = 4096;
/// Largest PEM key file read (an 8192-bit PKCS#8 key is about 6.5 KB of PEM).
pub const MAX_PEM_FILE: u64 = 64 * 1024;

/// The paddings of the spec, by name.
const PADDINGS: [(&str, RsaPadding); 5] = [
    ("pkcs1", RsaPadding::Pkcs1v15),
    ("oaep-sha1", RsaPadding::OaepSha1),
    ("oaep-sha256", RsaPadding::OaepSha256),
    ("oaep-sha384", RsaPadding::OaepSha384),
    ("oaep-sha512", RsaPadding::OaepSha512),
];

const AES_FORM: &str = "raw-aes:NAMESPACE:NAME:PATH (none empty)";
const RSA_FORM: &str = "raw-rsa:NAMESPACE:NAME:PADDING:PATH (none empty)";

/// A parsed `raw-aes:` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAesSpec {
    /// The EDK namespace (provider id).
    pub namespace: String,
    /// The key name.
    pub name: String,
    /// The key file.
    pub path: PathBuf,
}

/// A parsed `raw-rsa:` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRsaSpec {
    /// The EDK namespace (provider id).
    pub namespace: String,
    /// The key name (the EDKs' provider info).
    pub name: String,
    /// The padding.
    pub padding: RsaPadding,
    /// The PEM key file.
    pub path: PathBuf,
}

/// Splits `rest` into `n` `:`-separated fields, the last taking the rest; none empty.
fn fields<'a>(
    rest: &'a str,
    n: usize,
    kind: &'static str,
    form: &'static str,
) -> Result<Vec<&'a str>, SpecError> {
    let parts: Vec<&str> = rest.splitn(n, ':').collect();
    if parts.len() != n || parts.iter().any(|p| p.is_empty()) {
        return Err(SpecError::Malformed { kind, form });
    }
    Ok(parts)
}

impl RawAesSpec {
    /// Parses what follows `raw-aes:`.
    pub(super) fn parse(rest: &str) -> Result<Self, SpecError> {
        let f = fields(rest, 3, "raw-aes", AES_FORM)?;
        Ok(Self {
            namespace: f[0].to_owned(),
            name: f[1].to_owned(),
            path: PathBuf::from(f[2]),
        })
    }

    /// Reads the key file and builds the keyring.
    pub(super) fn build(
        &self,
        warnings: &mut Vec<SpecWarning>,
    ) -> Result<Arc<dyn Keyring>, SpecError> {
        let key = read_aes_key(&self.path, warnings)?;
        let keyring = RawAesKeyring::new(&self.namespace, &self.name, &key).map_err(|source| {
            SpecError::Keyring {
                what: format!("raw-aes:{}:{}", self.namespace, self.name),
                source,
            }
        })?;
        Ok(Arc::new(keyring))
    }
}

impl RawRsaSpec {
    /// Parses what follows `raw-rsa:`.
    pub(super) fn parse(rest: &str) -> Result<Self, SpecError> {
        let f = fields(rest, 4, "raw-rsa", RSA_FORM)?;
        let Some(&(_, padding)) = PADDINGS.iter().find(|(n, _)| *n == f[2]) else {
            return Err(SpecError::UnknownPadding {
                key: format!("{}:{}", f[0], f[1]),
                padding: f[2].chars().take(32).collect(),
            });
        };
        Ok(Self {
            namespace: f[0].to_owned(),
            name: f[1].to_owned(),
            padding,
            path: PathBuf::from(f[3]),
        })
    }

    /// Reads the PEM key and builds the keyring. A public key cannot decrypt: asked to, this
    /// is an error here rather than a failure per message.
    pub(super) fn build(
        &self,
        purpose: Purpose,
        warnings: &mut Vec<SpecWarning>,
    ) -> Result<Arc<dyn Keyring>, SpecError> {
        let key = format!("{}:{}", self.namespace, self.name);
        let file = SecretFile::read(&self.path, MAX_PEM_FILE, "key file")?;
        let text = std::str::from_utf8(file.bytes()).map_err(|_| SpecError::File {
            what: "key file",
            path: self.path.clone(),
            problem: FileProblem::NotText,
        })?;
        let keyring = RawRsaKeyring::from_pem(&self.namespace, &self.name, self.padding, text)
            .map_err(|source| SpecError::Keyring {
                what: format!("raw-rsa:{key}: key file {}", self.path.display()),
                source,
            })?;
        // A private key is a secret (a public key may be readable by anyone).
        if keyring.can_decrypt() {
            file.enforce(warnings)?;
        }
        if purpose == Purpose::Decrypt && !keyring.can_decrypt() {
            return Err(SpecError::PublicKeyOnly {
                key,
                path: self.path.clone(),
            });
        }
        Ok(Arc::new(keyring))
    }
}

/// Reads an AES key file: 16, 24 or 32 raw bytes, or their base64 on one line.
pub(super) fn read_aes_key(
    path: &Path,
    warnings: &mut Vec<SpecWarning>,
) -> Result<Zeroizing<Vec<u8>>, SpecError> {
    let file = SecretFile::read(path, MAX_AES_KEY_FILE, "key file")?;
    let key = aes_key_bytes(file.bytes()).ok_or_else(|| SpecError::File {
        what: "key file",
        path: path.to_path_buf(),
        problem: FileProblem::NotAnAesKey,
    })?;
    file.enforce(warnings)?;
    Ok(key)
}

/// The key in a key file's bytes: base64 of 16, 24 or 32 bytes on one line, else exactly
/// that many raw bytes.
fn aes_key_bytes(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let text = bytes.trim_ascii();
    let looks_base64 = !text.is_empty()
        && text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if looks_base64 {
        let mut decoded = Zeroizing::new(Vec::with_capacity(48));
        if base64::engine::general_purpose::STANDARD
            .decode_vec(text, &mut decoded)
            .is_ok()
            && matches!(decoded.len(), 16 | 24 | 32)
        {
            return Some(decoded);
        }
    }
    matches!(bytes.len(), 16 | 24 | 32).then(|| Zeroizing::new(bytes.to_vec()))
}
