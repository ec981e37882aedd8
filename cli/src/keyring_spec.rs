//! `-k/--keyring` specs: parse them and build the keyrings.
//!
//! Errors echo a spec only up to its type (a PKCS#11 URI may carry a PIN) and never show
//! key bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use envcrypt::keyring::{Keyring, MultiKeyring, RawAesKeyring};
use zeroize::Zeroizing;

use crate::error::AppError;
use crate::secret_file::SecretFile;

/// Largest key file read (a base64 line of a 32-byte key is 44 characters).
const MAX_KEY_FILE: u64 = 4096;

/// The keyring types of `CLI.md`, by their spec prefix.
const TYPES: [&str; 5] = [
    "raw-aes",
    "raw-rsa",
    "aws-kms",
    "aws-kms-discovery",
    "pkcs11",
];

/// The keyring types of [`TYPES`] this build offers (`info`'s `keyrings`).
pub fn supported() -> Vec<&'static str> {
    TYPES
        .into_iter()
        .filter(|t| match *t {
            "aws-kms" | "aws-kms-discovery" => cfg!(feature = "aws-kms"),
            "pkcs11" => cfg!(feature = "pkcs11"),
            _ => true,
        })
        .collect()
}

/// What the keyring is for: some types only decrypt (discovery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Encrypt,
    Decrypt,
}

/// One parsed `-k` spec.
#[derive(Debug)]
pub enum KeyringSpec {
    /// `raw-aes:NAMESPACE:NAME:PATH`.
    RawAes {
        namespace: String,
        name: String,
        path: PathBuf,
    },
    /// `raw-rsa:NAMESPACE:NAME:PADDING:PATH`.
    RawRsa(crate::raw_rsa::RawRsaSpec),
    /// `aws-kms:KEY` or `aws-kms-discovery:ACCOUNT[,ACCOUNT...]` (built with `--features aws-kms`).
    #[cfg(feature = "aws-kms")]
    Kms(crate::kms::KmsSpec),
    /// `pkcs11:...` (built with `--features pkcs11`).
    #[cfg(feature = "pkcs11")]
    Pkcs11(crate::pkcs11::Pkcs11Spec),
    /// A type of `CLI.md` that this build does not offer yet (`aws-kms`,
    /// `aws-kms-discovery`, `pkcs11`). Each gets its own variant when it lands.
    NotYetSupported(&'static str),
}

impl KeyringSpec {
    /// Parses one spec.
    pub fn parse(spec: &str) -> Result<Self, AppError> {
        let Some((kind, rest)) = spec.split_once(':') else {
            return Err(AppError::usage(format!(
                "keyring spec without a type (expected one of {}, e.g. raw-aes:NAMESPACE:NAME:PATH)",
                TYPES.join(", ")
            )));
        };
        let Some(kind) = TYPES.into_iter().find(|t| *t == kind) else {
            return Err(AppError::usage(format!(
                "unknown keyring type {:?} (expected one of {})",
                shorten(kind),
                TYPES.join(", ")
            )));
        };
        match kind {
            "raw-aes" => {
                let mut parts = rest.splitn(3, ':');
                let (Some(namespace), Some(name), Some(path)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(AppError::usage(
                        "raw-aes keyring spec must be raw-aes:NAMESPACE:NAME:PATH",
                    ));
                };
                if namespace.is_empty() || name.is_empty() || path.is_empty() {
                    return Err(AppError::usage(
                        "raw-aes keyring spec must be raw-aes:NAMESPACE:NAME:PATH (none empty)",
                    ));
                }
                Ok(Self::RawAes {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    path: PathBuf::from(path),
                })
            }
            #[cfg(feature = "aws-kms")]
            "aws-kms" | "aws-kms-discovery" => {
                crate::kms::KmsSpec::parse(kind, rest).map(Self::Kms)
            }
            #[cfg(feature = "pkcs11")]
            "pkcs11" => crate::pkcs11::Pkcs11Spec::parse(spec).map(Self::Pkcs11),
            "raw-rsa" => crate::raw_rsa::RawRsaSpec::parse(rest).map(Self::RawRsa),
            other => Ok(Self::NotYetSupported(other)),
        }
    }

    /// Loads the key and builds the keyring.
    pub fn build(&self, purpose: Purpose) -> Result<Arc<dyn Keyring>, AppError> {
        match self {
            Self::RawAes {
                namespace,
                name,
                path,
            } => {
                let key = read_aes_key(path)?;
                let keyring = RawAesKeyring::new(namespace, name, &key).map_err(|e| {
                    AppError::usage(format!("keyring raw-aes:{namespace}:{name}: {e}"))
                })?;
                Ok(Arc::new(keyring))
            }
            Self::RawRsa(spec) => spec.build(purpose),
            #[cfg(feature = "aws-kms")]
            Self::Kms(spec) => spec.build(purpose),
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(spec) => spec.build(),
            Self::NotYetSupported(kind @ "aws-kms-discovery") if purpose == Purpose::Encrypt => {
                Err(AppError::usage(format!(
                    "keyring type {kind} can only decrypt; give a key to encrypt with"
                )))
            }
            Self::NotYetSupported(kind) => Err(AppError::usage(format!(
                "keyring type {kind} is not yet supported in this build"
            ))),
        }
    }
}

/// Parses every spec, then builds them in order: the first generates the data key, every
/// one wraps it (encrypt); each is tried in turn (decrypt).
pub fn build_keyring(specs: &[String], purpose: Purpose) -> Result<MultiKeyring, AppError> {
    let parsed = specs
        .iter()
        .map(|s| KeyringSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut keyrings = parsed
        .iter()
        .map(|s| s.build(purpose))
        .collect::<Result<Vec<_>, _>>()?;
    if keyrings.is_empty() {
        return Err(AppError::usage("at least one -k/--keyring is required"));
    }
    let generator = keyrings.remove(0);
    Ok(MultiKeyring::from_arcs(Some(generator), keyrings))
}

/// Reads an AES key file: 16, 24 or 32 raw bytes, or their base64 on one line. The file is
/// a secret: see [`SecretFile::enforce`].
pub fn read_aes_key(path: &Path) -> Result<Zeroizing<Vec<u8>>, AppError> {
    let shown = path.display();
    let file = SecretFile::read(path, MAX_KEY_FILE, "key file")?;
    let bad = || {
        AppError::usage(format!(
            "key file {shown}: expected 16, 24 or 32 raw bytes, or their base64 on one line"
        ))
    };
    let key = aes_key_bytes(file.bytes()).ok_or_else(bad)?;
    file.enforce("key file")?;
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

/// At most 32 characters of an unrecognised type, for an error message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}
