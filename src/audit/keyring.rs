//! A keyring whose every call is recorded before its result is used.

use async_trait::async_trait;

use super::auditor::Auditor;
use super::event::{AuditEvent, Operation};
use crate::error::Error;
use crate::format::EncryptedDataKey;
use crate::keyring::{Keyring, KeyringError};
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// Records each call of the keyring it wraps: `generate` (the call that made the data key
/// and wrapped it), `wrap`, `unwrap` (including "not mine" and failures), with the keys of
/// the EDKs involved and the context's keys.
///
/// Fail closed: if the event cannot be recorded the call fails with
/// [`KeyringError::AuditFailed`], so the data key never reaches the caller and no output
/// is made. Wrap each keyring of a [`MultiKeyring`](crate::keyring::MultiKeyring) to get
/// one event per key.
pub struct AuditedKeyring<K> {
    inner: K,
    auditor: Auditor,
}

impl<K: Keyring> AuditedKeyring<K> {
    /// Wraps `inner`; events go to `auditor`.
    pub fn new(inner: K, auditor: Auditor) -> Self {
        Self { inner, auditor }
    }

    fn record(&self, event: AuditEvent) -> Result<(), KeyringError> {
        self.auditor
            .record(&event)
            .map_err(|e| KeyringError::AuditFailed(e.to_string()))
    }
}

fn context_keys(context: &crate::EncryptionContext) -> impl Iterator<Item = &str> {
    context.iter().map(|(k, _)| k)
}

#[async_trait]
impl<K: Keyring> Keyring for AuditedKeyring<K> {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let op = match materials.data_key {
            Some(_) => Operation::Wrap,
            None => Operation::Generate,
        };
        let before = materials.encrypted_data_keys.len();
        let keys: Vec<String> = context_keys(&materials.encryption_context)
            .map(str::to_owned)
            .collect();
        let result = self.inner.on_encrypt(materials).await;
        let event = AuditEvent::new(op).context_keys(keys.iter().map(String::as_str));
        let event = match &result {
            Ok(m) => event.keys(m.encrypted_data_keys.get(before..).unwrap_or_default()),
            Err(e) => event.failed(&Error::Keyring(e.clone())),
        };
        self.record(event)?;
        result
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            // Another keyring already unwrapped it: this call does nothing.
            return self.inner.on_decrypt(materials, encrypted_data_keys).await;
        }
        let keys: Vec<String> = context_keys(&materials.encryption_context)
            .map(str::to_owned)
            .collect();
        let result = self.inner.on_decrypt(materials, encrypted_data_keys).await;
        let event = AuditEvent::new(Operation::Unwrap)
            .keys(encrypted_data_keys)
            .context_keys(keys.iter().map(String::as_str));
        let event = match &result {
            Ok(_) => event,
            Err(e) => event.failed(&Error::Keyring(e.clone())),
        };
        self.record(event)?;
        result
    }
}
