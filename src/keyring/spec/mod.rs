//! Keyring specs: one line of text naming a keyring, as the `envcrypt` tool's `-k` takes it,
//! so services configure keyrings exactly as the tool does.
//!
//! | spec | keyring |
//! |---|---|
//! | `raw-aes:NAMESPACE:NAME:PATH` | [`RawAesKeyring`](super::RawAesKeyring); PATH holds 16, 24 or 32 raw bytes, or their base64 on one line |
//! | `raw-rsa:NAMESPACE:NAME:PADDING:PATH` | [`RawRsaKeyring`](super::RawRsaKeyring); PADDING `pkcs1`, `oaep-sha1`, `oaep-sha256`, `oaep-sha384` or `oaep-sha512`; PATH a PEM public or private key |
//! | `aws-kms:KEY[?profile=NAME]` | `AwsKmsKeyring` (feature `aws-kms`); an ARN sets the region |
//! | `aws-kms-discovery:ACCOUNT[,ACCOUNT...][?partition=P&region=R&profile=NAME]` | `AwsKmsDiscoveryKeyring`, decrypt only; partition default `aws` |
//! | `pkcs11:token=...;object=...?module-path=...` | `Pkcs11Keyring` (feature `pkcs11`), an RFC 7512 URI |
//!
//! NAMESPACE and NAME contain no `:`; PATH is the rest of the spec. Key and PIN files are
//! secrets: a file group or others can write is refused, one they can read gives a
//! [`SpecWarning`]. Errors ([`SpecError`]) never show a spec past its type and key names (a
//! PKCS#11 URI may hold a PIN), nor key bytes.
//!
//! ```no_run
//! use envcrypt::keyring::spec::{from_spec, Purpose};
//! use envcrypt::{Client, EncryptionContext};
//!
//! let built = from_spec("raw-aes:hospital-a:imaging-2026:/etc/envcrypt/site.key", Purpose::Encrypt)?;
//! for warning in &built.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! let client = Client::new(built.keyring);
//! let message = client.encrypt(b"scan", &EncryptionContext::new())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
#[cfg(feature = "aws-kms")]
mod kms;
#[cfg(feature = "aws-kms")]
mod options;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod raw;
pub(crate) mod secret_file;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use error::{FileProblem, SpecError, SpecWarning};
#[cfg(feature = "aws-kms")]
pub use kms::KmsSpec;
pub use raw::{RawAesSpec, RawRsaSpec, MAX_AES_KEY_FILE, MAX_PEM_FILE};

use super::Keyring;

/// Every spec type, by its prefix (whether or not this build offers it).
pub const KINDS: [&str; 5] = [
    "raw-aes",
    "raw-rsa",
    "aws-kms",
    "aws-kms-discovery",
    "pkcs11",
];

/// The spec types this build offers (the others need a cargo feature).
pub fn supported_kinds() -> Vec<&'static str> {
    KINDS
        .into_iter()
        .filter(|t| {
            let kms = matches!(*t, "aws-kms" | "aws-kms-discovery");
            let pkcs11 = *t == "pkcs11";
            (!kms || cfg!(feature = "aws-kms")) && (!pkcs11 || cfg!(feature = "pkcs11"))
        })
        .collect()
}

/// What a keyring is for: some keys only decrypt (discovery) or only encrypt (an RSA
/// public key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Wrap data keys.
    Encrypt,
    /// Unwrap data keys.
    Decrypt,
}

/// One parsed spec. Parsing reads no file and contacts no service; [`KeyringSpec::build`]
/// does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeyringSpec {
    /// `raw-aes:NAMESPACE:NAME:PATH`.
    RawAes(RawAesSpec),
    /// `raw-rsa:NAMESPACE:NAME:PADDING:PATH`.
    RawRsa(RawRsaSpec),
    /// `aws-kms:...` or `aws-kms-discovery:...`.
    #[cfg(feature = "aws-kms")]
    Kms(KmsSpec),
    /// `pkcs11:...`; the spec itself is kept (to resolve the PIN from the environment).
    #[cfg(feature = "pkcs11")]
    Pkcs11(Pkcs11Spec),
}

/// A parsed `pkcs11:` spec. Its `Debug` output hides the PIN.
#[cfg(feature = "pkcs11")]
#[derive(Clone)]
pub struct Pkcs11Spec {
    uri: zeroize::Zeroizing<String>,
    config: super::Pkcs11Config,
}

#[cfg(feature = "pkcs11")]
impl Pkcs11Spec {
    /// The configuration parsed from the URI (without the PIN of `pin-source` or the
    /// environment).
    pub fn config(&self) -> &super::Pkcs11Config {
        &self.config
    }
}

#[cfg(feature = "pkcs11")]
impl core::fmt::Debug for Pkcs11Spec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pkcs11Spec")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A keyring built from a spec, and what its caller should be told.
pub struct BuiltKeyring {
    /// The keyring.
    pub keyring: Arc<dyn Keyring>,
    /// Warnings (a key file others can read, a PIN in the spec); show them to the user.
    pub warnings: Vec<SpecWarning>,
}

impl core::fmt::Debug for BuiltKeyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BuiltKeyring")
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl KeyringSpec {
    /// Parses one spec (see the [module documentation](self) for the grammar).
    ///
    /// ```
    /// use envcrypt::keyring::spec::{KeyringSpec, SpecError};
    /// assert!(matches!(KeyringSpec::parse("raw-aes:ns:key:/k"), Ok(KeyringSpec::RawAes(_))));
    /// assert!(matches!(KeyringSpec::parse("raw-aes:ns:key"), Err(SpecError::Malformed { .. })));
    /// ```
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let Some((kind, rest)) = spec.split_once(':') else {
            return Err(SpecError::MissingType);
        };
        let Some(kind) = KINDS.into_iter().find(|t| *t == kind) else {
            let mut shown: String = kind.chars().take(32).collect();
            if shown.len() < kind.len() {
                shown.push_str("...");
            }
            return Err(SpecError::UnknownType(shown));
        };
        match kind {
            "raw-aes" => RawAesSpec::parse(rest).map(Self::RawAes),
            "raw-rsa" => RawRsaSpec::parse(rest).map(Self::RawRsa),
            #[cfg(feature = "aws-kms")]
            "aws-kms" => KmsSpec::parse_key(rest).map(Self::Kms),
            #[cfg(feature = "aws-kms")]
            "aws-kms-discovery" => KmsSpec::parse_discovery(rest).map(Self::Kms),
            #[cfg(feature = "pkcs11")]
            "pkcs11" => Ok(Self::Pkcs11(Pkcs11Spec {
                config: pkcs11::parse(spec)?,
                uri: zeroize::Zeroizing::new(spec.to_owned()),
            })),
            other => Err(SpecError::NotInBuild(other)),
        }
    }

    /// The spec's type (`raw-aes`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RawAes(_) => "raw-aes",
            Self::RawRsa(_) => "raw-rsa",
            #[cfg(feature = "aws-kms")]
            Self::Kms(KmsSpec::Key { .. }) => "aws-kms",
            #[cfg(feature = "aws-kms")]
            Self::Kms(KmsSpec::Discovery { .. }) => "aws-kms-discovery",
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(_) => "pkcs11",
        }
    }

    /// Loads the key (reads its file, makes the KMS client, logs in to the HSM) and builds
    /// the keyring for `purpose`.
    pub fn build(&self, purpose: Purpose) -> Result<BuiltKeyring, SpecError> {
        let mut warnings = Vec::new();
        let keyring = match self {
            Self::RawAes(spec) => spec.build(&mut warnings)?,
            Self::RawRsa(spec) => spec.build(purpose, &mut warnings)?,
            #[cfg(feature = "aws-kms")]
            Self::Kms(spec) => spec.build(purpose)?,
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(spec) => pkcs11::build(&spec.uri, &spec.config, &mut warnings)?,
        };
        Ok(BuiltKeyring { keyring, warnings })
    }
}

/// Parses `spec` and builds its keyring for `purpose`: [`KeyringSpec::parse`] then
/// [`KeyringSpec::build`].
pub fn from_spec(spec: &str, purpose: Purpose) -> Result<BuiltKeyring, SpecError> {
    KeyringSpec::parse(spec)?.build(purpose)
}
