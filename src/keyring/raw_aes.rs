//! The raw AES keyring: a local AES-GCM wrapping key, interoperable with every official SDK.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{Keyring, KeyringError};
use crate::crypto::{AeadAlgorithm, NONCE_LEN, TAG_LEN};
use crate::format::EncryptedDataKey;
use crate::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};

const TAG_BITS: u32 = (TAG_LEN * 8) as u32;

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

    /// The IV of an EDK of ours, or `None` when the EDK belongs to another keyring.
    fn our_iv<'a>(&self, edk: &'a EncryptedDataKey) -> Option<&'a [u8]> {
        if edk.provider_id != self.namespace {
            return None;
        }
        let info = edk.provider_info.strip_prefix(self.name.as_bytes())?;
        let (tag_bits, rest) = info.split_first_chunk::<4>()?;
        let (iv_len, iv) = rest.split_first_chunk::<4>()?;
        (u32::from_be_bytes(*tag_bits) == TAG_BITS
            && u32::from_be_bytes(*iv_len) as usize == NONCE_LEN
            && iv.len() == NONCE_LEN)
            .then_some(iv)
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
        ciphertext.extend_from_slice(&tag);
        let mut provider_info = Vec::with_capacity(self.name.len() + 8 + NONCE_LEN);
        provider_info.extend_from_slice(self.name.as_bytes());
        provider_info.extend_from_slice(&TAG_BITS.to_be_bytes());
        provider_info.extend_from_slice(&(NONCE_LEN as u32).to_be_bytes());
        provider_info.extend_from_slice(&iv);
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: self.namespace.clone(),
            provider_info,
            ciphertext,
        });
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
            let Some(iv) = self.our_iv(edk) else { continue };
            failure = KeyringError::UnwrapFailed {
                provider_id: edk.provider_id.clone(),
                key_name: self.name.clone(),
            };
            if edk.ciphertext.len() != key_len + TAG_LEN {
                continue;
            }
            let aad = materials
                .encryption_context
                .to_bytes()
                .map_err(|e| KeyringError::InvalidKey(format!("encryption context: {e}")))?;
            let key = materials.provider.aead.key(self.alg, &self.key)?;
            let mut buf = Zeroizing::new(edk.ciphertext.clone());
            let nonce: &[u8; NONCE_LEN] = iv.try_into().map_err(|_| KeyringError::NoMatchingKey)?;
            if key.open_in_place(nonce, &aad, &mut buf).is_ok() {
                buf.truncate(key_len);
                materials.data_key = Some(DataKey::new(core::mem::take(&mut *buf)));
                return Ok(materials);
            }
        }
        Err(failure)
    }
}
