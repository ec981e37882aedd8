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
mod raw_aes_edk;
mod raw_rsa;

use async_trait::async_trait;

#[cfg(feature = "aws-kms")]
pub use aws_kms::{AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, KmsClient};
pub use multi::MultiKeyring;
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Pkcs11Config, Pkcs11KeyKind, Pkcs11Keyring};
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::RawRsaKeyring;

pub use crate::error::KeyringError;
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
