//! Keyrings: wrap a data key into encrypted data keys (EDKs) and unwrap them.
//!
//! A keyring is async because some live across a network (KMS). Sync callers go through
//! [`crate::block_on`]. A keyring that finds no EDK of its own answers
//! [`KeyringError::NoMatchingKey`] ("not mine"), distinct from failing to unwrap one that is
//! ("mine but failed": [`KeyringError::UnwrapFailed`]).

#[cfg(feature = "aws-kms")]
pub mod aws_kms;
mod multi;
pub(crate) mod pem;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod raw_aes;
mod raw_aes_edk;
mod raw_rsa;
pub mod spec;

use std::sync::Arc;

use async_trait::async_trait;

#[cfg(feature = "aws-kms")]
pub use aws_kms::{AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, KmsClient};
pub use multi::MultiKeyring;
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Pkcs11Config, Pkcs11KeyKind, Pkcs11Keyring};
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::RawRsaKeyring;
pub use spec::{from_spec, KeyringSpec, SpecError};

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

/// A shared keyring is a keyring: pass an `Arc` wherever `impl Keyring` is taken (one
/// keyring, e.g. one KMS client or one HSM session pool, serving several clients).
#[async_trait]
impl<K: Keyring + ?Sized> Keyring for Arc<K> {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        (**self).on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        (**self).on_decrypt(materials, encrypted_data_keys).await
    }
}

/// A boxed keyring (including `Box<dyn Keyring>`) is a keyring.
#[async_trait]
impl<K: Keyring + ?Sized> Keyring for Box<K> {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        (**self).on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        (**self).on_decrypt(materials, encrypted_data_keys).await
    }
}
