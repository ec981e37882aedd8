//! The multi-keyring: one generator plus children that each wrap the same data key.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Keyring, KeyringError};
use crate::format::EncryptedDataKey;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// Combines keyrings: on encrypt the generator makes the data key and every keyring wraps
/// it; on decrypt each is tried in turn until one recovers the key.
///
/// ```
/// use envcrypt::keyring::{MultiKeyring, RawAesKeyring};
/// let primary = RawAesKeyring::new("ns", "primary", &[1; 32])?;
/// let escrow = RawAesKeyring::new("ns", "escrow", &[2; 16])?;
/// let keyring = MultiKeyring::new(Some(primary), [escrow]);
/// # Ok::<(), envcrypt::keyring::KeyringError>(())
/// ```
pub struct MultiKeyring {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

impl MultiKeyring {
    /// A multi-keyring with an optional generator and any number of children.
    pub fn new<G: Keyring + 'static, C: Keyring + 'static>(
        generator: Option<G>,
        children: impl IntoIterator<Item = C>,
    ) -> Self {
        Self {
            generator: generator.map(|g| Arc::new(g) as Arc<dyn Keyring>),
            children: children
                .into_iter()
                .map(|c| Arc::new(c) as Arc<dyn Keyring>)
                .collect(),
        }
    }

    /// A multi-keyring from shared keyrings (of different types).
    pub fn from_arcs(generator: Option<Arc<dyn Keyring>>, children: Vec<Arc<dyn Keyring>>) -> Self {
        Self {
            generator,
            children,
        }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Keyring>> {
        self.generator.iter().chain(self.children.iter())
    }
}

#[async_trait]
impl Keyring for MultiKeyring {
    async fn on_encrypt(
        &self,
        mut materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        if self.generator.is_none() && materials.data_key.is_none() {
            return Err(KeyringError::Unsupported(
                "a multi-keyring without generator cannot create a data key",
            ));
        }
        for keyring in self.all() {
            materials = keyring.on_encrypt(materials).await?;
        }
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
        let mut failures = Vec::new();
        for keyring in self.all() {
            // Each child gets the materials back unchanged when it fails: `on_decrypt`
            // consumes them, so hand over a shell and keep the verifier across attempts.
            let shell = DecryptionMaterials {
                provider: materials.provider,
                suite: materials.suite,
                encryption_context: materials.encryption_context.clone(),
                required_context_keys: materials.required_context_keys.clone(),
                data_key: None,
                verifier: None,
            };
            match keyring.on_decrypt(shell, encrypted_data_keys).await {
                Ok(done) if done.data_key.is_some() => {
                    materials.data_key = done.data_key;
                    return Ok(materials);
                }
                Ok(_) => failures.push(KeyringError::NoMatchingKey),
                Err(e) => failures.push(e),
            }
        }
        Err(KeyringError::AllFailed(failures))
    }
}
