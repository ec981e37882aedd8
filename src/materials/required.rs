//! The required-encryption-context manager.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    DecryptionMaterials, DecryptionRequest, EncryptionMaterials, EncryptionRequest,
    MaterialsManager,
};
use crate::error::PolicyError;
use crate::Error;

/// Demands context keys: encryption refuses a context without them and keeps their pairs
/// out of the stored header (they are still authenticated); decryption refuses unless the
/// caller supplies them (`DecryptOptions::required_context`).
///
/// ```
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, PolicyError, Error};
/// use envcrypt::keyring::RawAesKeyring;
/// use envcrypt::materials::{DefaultMaterialsManager, RequiredContextManager};
///
/// let inner = DefaultMaterialsManager::new(RawAesKeyring::new("ns", "k", &[3; 32])?);
/// let client = Client::builder()
///     .materials_manager(RequiredContextManager::new(inner, ["tenant"]))
///     .build()?;
/// let ctx = EncryptionContext::from_pairs([("tenant", "hospital-a")]);
/// let message = client.encrypt(b"x", &ctx)?;
/// let refused = client.decrypt(&message, &DecryptOptions::default()).unwrap_err();
/// assert!(matches!(refused, Error::Policy(PolicyError::MissingRequiredContext(_))));
/// let options = DecryptOptions::default().with_required_context(ctx);
/// assert_eq!(client.decrypt(&message, &options)?.plaintext, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RequiredContextManager {
    inner: Arc<dyn MaterialsManager>,
    keys: BTreeSet<String>,
}

impl RequiredContextManager {
    /// Requires `keys` on top of `inner`.
    pub fn new<S: Into<String>>(
        inner: impl MaterialsManager + 'static,
        keys: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            inner: Arc::new(inner),
            keys: keys.into_iter().map(Into::into).collect(),
        }
    }
}

#[async_trait]
impl MaterialsManager for RequiredContextManager {
    async fn encryption_materials(
        &self,
        mut request: EncryptionRequest,
    ) -> Result<EncryptionMaterials, Error> {
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| !request.encryption_context.contains_key(k))
        {
            return Err(PolicyError::MissingRequiredContext(k.clone()).into());
        }
        request
            .required_context_keys
            .extend(self.keys.iter().cloned());
        self.inner.encryption_materials(request).await
    }

    async fn decryption_materials(
        &self,
        request: DecryptionRequest,
    ) -> Result<DecryptionMaterials, Error> {
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| !request.reproduced_context_keys.contains(*k))
        {
            return Err(PolicyError::MissingRequiredContext(k.clone()).into());
        }
        self.inner.decryption_materials(request).await
    }
}
