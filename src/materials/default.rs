//! The default materials manager: one keyring, suite and signature handling.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use tracing::debug;

use super::log::Edks;
use super::{
    DecryptionMaterials, DecryptionRequest, EncryptionMaterials, EncryptionRequest,
    MaterialsManager, PUBLIC_KEY_CONTEXT_KEY, RESERVED_CONTEXT_PREFIX,
};
use crate::error::{ConfigError, PolicyError};
use crate::keyring::Keyring;
use crate::Error;

/// Gets data keys from one keyring; makes and checks the signing key of signed suites.
///
/// ```
/// use envcrypt::{keyring::RawAesKeyring, materials::DefaultMaterialsManager};
/// let keyring = RawAesKeyring::new("my-namespace", "key-1", &[7u8; 32]).unwrap();
/// let _cmm = DefaultMaterialsManager::new(keyring);
/// ```
#[derive(Clone)]
pub struct DefaultMaterialsManager {
    keyring: Arc<dyn Keyring>,
}

impl DefaultMaterialsManager {
    /// A manager over `keyring`.
    pub fn new(keyring: impl Keyring + 'static) -> Self {
        Self {
            keyring: Arc::new(keyring),
        }
    }

    /// A manager over a shared keyring.
    pub fn from_arc(keyring: Arc<dyn Keyring>) -> Self {
        Self { keyring }
    }
}

/// The verifier a signed suite needs, from `aws-crypto-public-key` in the context; `None`
/// for unsigned suites. A key where the suite wants none (or the reverse) is refused.
pub(crate) fn verifier_for(
    request: &DecryptionRequest,
) -> Result<Option<Box<dyn crate::crypto::Verifier>>, Error> {
    let public_key = request.encryption_context.get(PUBLIC_KEY_CONTEXT_KEY);
    match (request.suite.signature(), public_key) {
        (Some(alg), Some(b64)) => {
            let point = BASE64
                .decode(b64)
                .map_err(|_| PolicyError::PublicKeyMismatch)?;
            Ok(Some(
                request
                    .provider
                    .signature
                    .verifier(alg, &point)
                    .map_err(|_| PolicyError::PublicKeyMismatch)?,
            ))
        }
        (None, None) => Ok(None),
        _ => Err(PolicyError::PublicKeyMismatch.into()),
    }
}

#[async_trait]
impl MaterialsManager for DefaultMaterialsManager {
    async fn encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<EncryptionMaterials, Error> {
        if let Some((k, _)) = request
            .encryption_context
            .iter()
            .find(|(k, _)| k.starts_with(RESERVED_CONTEXT_PREFIX))
        {
            return Err(PolicyError::ReservedContextKey(k.to_owned()).into());
        }
        let mut context = request.encryption_context;
        let signer = match request.suite.signature() {
            Some(alg) => {
                let signer = request.provider.signature.generate_signer(alg)?;
                context.insert(
                    PUBLIC_KEY_CONTEXT_KEY,
                    BASE64.encode(signer.public_key_compressed()?),
                );
                Some(signer)
            }
            None => None,
        };
        // Refuse a context that cannot be serialized before any keyring sees it (the public
        // key may push a context just under the limit over it).
        context.to_bytes().map_err(ConfigError::Context)?;
        let materials = EncryptionMaterials {
            provider: request.provider,
            suite: request.suite,
            encryption_context: context,
            required_context_keys: request.required_context_keys,
            data_key: None,
            encrypted_data_keys: Vec::new(),
            signer,
        };
        let call = if materials.data_key.is_some() {
            "wrap"
        } else {
            "generate"
        };
        let materials = match self.keyring.on_encrypt(materials).await {
            Ok(m) => {
                debug!(call, edks = %Edks(&m.encrypted_data_keys), "keyring on_encrypt: ok");
                m
            }
            Err(e) => {
                debug!(call, error = %e, "keyring on_encrypt: failed");
                return Err(e.into());
            }
        };
        match &materials.data_key {
            Some(k) if k.len() == materials.suite.data_key_len() => {}
            _ => {
                return Err(
                    PolicyError::InvalidMaterials("data key missing or wrong length").into(),
                )
            }
        }
        if materials.encrypted_data_keys.is_empty() {
            return Err(PolicyError::InvalidMaterials("no encrypted data keys").into());
        }
        Ok(materials)
    }

    async fn decryption_materials(
        &self,
        request: DecryptionRequest,
    ) -> Result<DecryptionMaterials, Error> {
        let verifier = verifier_for(&request)?;
        let materials = DecryptionMaterials {
            provider: request.provider,
            suite: request.suite,
            encryption_context: request.encryption_context,
            required_context_keys: request.required_context_keys,
            data_key: None,
            verifier,
        };
        let edks = &request.encrypted_data_keys;
        let materials = match self.keyring.on_decrypt(materials, edks).await {
            Ok(m) => {
                debug!(call = "unwrap", edks = %Edks(edks), "keyring on_decrypt: ok");
                m
            }
            Err(e) => {
                debug!(call = "unwrap", edks = %Edks(edks), error = %e, "keyring on_decrypt: failed");
                return Err(e.into());
            }
        };
        match &materials.data_key {
            Some(k) if k.len() == materials.suite.data_key_len() => Ok(materials),
            _ => Err(PolicyError::InvalidMaterials("data key missing or wrong length").into()),
        }
    }
}
