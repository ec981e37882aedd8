//! The raw AES keyring: a local AES-GCM wrapping key, interoperable with every official SDK.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{raw_aes_edk, Keyring, KeyringError};
use crate::crypto::AeadAlgorithm;
use crate::format::EncryptedDataKey;
use crate::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};

/// Wraps data keys with a local 128-, 192- or 256-bit AES-GCM key.
///
/// EDK format (shared with the official SDKs): provider id = namespace; provider info =
/// key name || `u32` tag bits (128) || `u32` IV length (12) || IV; ciphertext = wrapped key ||
/// tag, with the serialized encryption context as AAD.
///
/// ```
/// use envcrypt::keyring::RawAesKeyring;
/// let keyring = RawAesKeyring::new("hospital-a", "imaging-2026", &[0x42; 32])?;
/// # Ok::<(), envcrypt::keyring::KeyringError>(())
/// ```
pub struct RawAesKeyring {
    namespace: String,
    name: String,
    alg: AeadAlgorithm,
    key: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl RawAesKeyring {
    /// A keyring for `key` (16, 24 or 32 bytes) under `namespace`/`name`.
    pub fn new(namespace: &str, name: &str, key: &[u8]) -> Result<Self, KeyringError> {
        let alg = AeadAlgorithm::for_key_len(key.len()).ok_or_else(|| {
            KeyringError::InvalidKey(format!(
                "AES wrapping key of {} bytes (must be 16, 24 or 32)",
                key.len()
            ))
        })?;
        if namespace.starts_with("aws-kms") {
            return Err(KeyringError::InvalidKey(
                "namespace may not begin with aws-kms".into(),
            ));
        }
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            alg,
            key: Zeroizing::new(key.to_vec()),
        })
    }
}

#[async_trait]
impl Keyring for RawAesKeyring {
    async fn on_encrypt(
        &self,
        mut materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let provider = materials.provider;
        if materials.data_key.is_none() {
            let mut fresh = Zeroizing::new(vec![0u8; materials.suite.data_key_len()]);
            provider.random.fill(&mut fresh)?;
            materials.data_key = Some(DataKey::new(core::mem::take(&mut *fresh)));
        }
        let data_key = materials.data_key.as_ref().map(DataKey::expose_secret);
        let aad = materials
            .encryption_context
            .to_bytes()
            .map_err(|e| KeyringError::InvalidKey(format!("encryption context: {e}")))?;
        let key = provider.aead.key(self.alg, &self.key)?;
        let mut ciphertext = Vec::with_capacity(48);
        ciphertext.extend_from_slice(data_key.unwrap_or_default());
        let (iv, tag) = key.seal_with_random_nonce(&aad, &mut ciphertext)?;
        let edk = raw_aes_edk::encode(&self.namespace, &self.name, &iv, ciphertext, &tag);
        materials.encrypted_data_keys.push(edk);
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        mut materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            return Ok(materials);
        }
        let key_len = materials.suite.data_key_len();
        let mut failure = KeyringError::NoMatchingKey;
        for edk in encrypted_data_keys {
            let Some(ours) = raw_aes_edk::decode(edk, &self.namespace, &self.name) else {
                continue;
            };
            failure = KeyringError::UnwrapFailed {
                provider_id: edk.provider_id.clone(),
                key_name: self.name.clone(),
            };
            let Some((wrapped, tag)) = ours.split().filter(|(w, _)| w.len() == key_len) else {
                continue;
            };
            let aad = materials
                .encryption_context
                .to_bytes()
                .map_err(|e| KeyringError::InvalidKey(format!("encryption context: {e}")))?;
            let key = materials.provider.aead.key(self.alg, &self.key)?;
            let mut plain = Zeroizing::new(vec![0u8; key_len]);
            if key
                .open_to(&ours.iv, &aad, wrapped, tag, &mut plain)
                .is_ok()
            {
                materials.data_key = Some(DataKey::new(core::mem::take(&mut *plain)));
                return Ok(materials);
            }
        }
        Err(failure)
    }
}
