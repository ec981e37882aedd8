//! Keyrings: wrap a data key into encrypted data keys (EDKs) and unwrap them.
//!
//! A keyring is async because some live across a network (KMS). Sync callers go through
//! [`crate::block_on`]. A keyring that finds no EDK of its own answers
//! [`KeyringError::NoMatchingKey`] ("not mine"), distinct from failing to unwrap one that is
//! ("mine but failed": [`KeyringError::UnwrapFailed`]).

#[cfg(feature = "aws-kms")]
pub mod aws_kms;
mod multi;
mod pem;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod raw_aes;
mod raw_rsa;

use core::fmt;

use async_trait::async_trait;

#[cfg(feature = "aws-kms")]
pub use aws_kms::{AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, KmsClient};
pub use multi::MultiKeyring;
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Pkcs11Config, Pkcs11KeyKind, Pkcs11Keyring};
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::RawRsaKeyring;

use crate::crypto::CryptoError;
use crate::format::EncryptedDataKey;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// Wraps and unwraps data keys.
#[async_trait]
pub trait Keyring: Send + Sync {
    /// Generates the data key if the materials have none, then adds this keyring's EDK.
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError>;

    /// Sets the data key from the first EDK this keyring can unwrap (no-op if already set).
    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError>;
}

/// Why a keyring could not wrap or unwrap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// None of the EDKs belong to this keyring ("not mine").
    NoMatchingKey,
    /// EDKs of this keyring's type were there, but its filter excluded every one ("not
    /// mine", with one reason per EDK), e.g. a KMS discovery filter naming other accounts.
    Excluded(Vec<String>),
    /// An EDK of this keyring did not unwrap: wrong key bytes or wrong encryption context.
    UnwrapFailed {
        /// Provider id of the EDK.
        provider_id: String,
        /// Key name (provider info) of the EDK, lossily decoded.
        key_name: String,
    },
    /// The key service could not be reached.
    Unavailable(String),
    /// The key service refused the request.
    AccessDenied(String),
    /// The keyring's configuration or key is invalid.
    InvalidKey(String),
    /// The keyring cannot do this (e.g. encrypt with a public-only key absent).
    Unsupported(&'static str),
    /// A primitive failed.
    Crypto(CryptoError),
    /// Every child of a multi-keyring failed; one entry per child, in order.
    AllFailed(Vec<KeyringError>),
}

impl KeyringError {
    /// True when the failure is about reaching a key service, not about the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::AccessDenied(_) => true,
            Self::AllFailed(v) => !v.is_empty() && v.iter().all(Self::is_unavailable),
            _ => false,
        }
    }
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMatchingKey => f.write_str("no encrypted data key matches this keyring"),
            Self::Excluded(why) => write!(
                f,
                "no encrypted data key passed this keyring's filter: {}",
                why.join("; ")
            ),
            Self::UnwrapFailed {
                provider_id,
                key_name,
            } => write!(
                f,
                "could not unwrap the data key of {provider_id}/{key_name} (wrong key, padding or encryption context)"
            ),
            Self::Unavailable(w) => write!(f, "key service unavailable: {w}"),
            Self::AccessDenied(w) => write!(f, "access denied: {w}"),
            Self::InvalidKey(w) => write!(f, "invalid key: {w}"),
            Self::Unsupported(w) => write!(f, "unsupported: {w}"),
            Self::Crypto(e) => write!(f, "{e}"),
            Self::AllFailed(all) => {
                f.write_str("every keyring failed: ")?;
                for (i, e) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "[{i}] {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for KeyringError {}

impl From<CryptoError> for KeyringError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}
