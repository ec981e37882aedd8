//! The data-key cache: reuse a data key for several messages, within limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::debug;
use zeroize::Zeroizing;

use super::default::verifier_for;
use super::{
    DataKey, DecryptionMaterials, DecryptionRequest, EncryptionMaterials, EncryptionRequest,
    MaterialsManager,
};
use crate::crypto::Signer;
use crate::format::EncryptedDataKey;
use crate::Error;

/// How long and how much one cached data key may be used.
///
/// Start from [`CacheLimits::default`] and change limits with the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheLimits {
    /// Age after which an entry is not used again.
    pub max_age: Duration,
    /// Messages one data key may encrypt (or decrypt).
    pub max_messages: u64,
    /// Plaintext bytes one data key may encrypt.
    pub max_bytes: u64,
}

impl Default for CacheLimits {
    /// Five minutes, 4,096 messages, 1 TiB.
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_messages: 4096,
            max_bytes: 1 << 40,
        }
    }
}

impl CacheLimits {
    /// These limits with entries retired at age `max_age`.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// These limits with at most `max_messages` messages per data key.
    pub fn with_max_messages(mut self, max_messages: u64) -> Self {
        self.max_messages = max_messages;
        self
    }

    /// These limits with at most `max_bytes` plaintext bytes encrypted per data key.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// Caches materials so that a remote keyring (KMS, HSM) is called once per data key
/// instead of once per message.
///
/// Entries are kept apart by provider, suite, encryption context and required keys (and, on
/// decrypt, the encrypted data keys), bounded in number (least recently used first out), and
/// each is retired when it reaches any limit of [`CacheLimits`]. Thread-safe: share one
/// manager (in an `Arc`, or by cloning) between clients and threads. Encryption with an
/// unknown plaintext length (streaming) bypasses the cache when a byte limit is set, since
/// the bytes could not be counted. For signed suites the messages of one entry share its
/// signing key pair (its public key is part of their context), as in the official SDKs.
///
/// ```
/// use std::time::Duration;
/// use envcrypt::{Client, EncryptionContext, keyring::RawAesKeyring};
/// use envcrypt::materials::{CacheLimits, CachingMaterialsManager, DefaultMaterialsManager};
///
/// let inner = DefaultMaterialsManager::new(RawAesKeyring::new("ns", "k", &[3; 32])?);
/// let limits = CacheLimits::default()
///     .with_max_age(Duration::from_secs(60))
///     .with_max_messages(100);
/// let cache = CachingMaterialsManager::new(inner, 16, limits);
/// let client = Client::builder().materials_manager(cache.clone()).build()?;
/// client.encrypt(b"one", &EncryptionContext::new())?;
/// client.encrypt(b"two", &EncryptionContext::new())?;
/// assert_eq!(cache.stats().encrypt_misses, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CachingMaterialsManager {
    inner: Arc<dyn MaterialsManager>,
    limits: CacheLimits,
    capacity: usize,
    state: Arc<Mutex<State>>,
}

/// Hit and miss counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Encryptions served from the cache.
    pub encrypt_hits: u64,
    /// Encryptions that called the inner manager.
    pub encrypt_misses: u64,
    /// Decryptions served from the cache.
    pub decrypt_hits: u64,
    /// Decryptions that called the inner manager.
    pub decrypt_misses: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Vec<u8>, Entry>,
    clock: u64,
    stats: CacheStats,
}

struct Entry {
    created: Instant,
    last_used: u64,
    messages: u64,
    bytes: u64,
    data_key: Zeroizing<Vec<u8>>,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Encryption entries: the context with the public key, and the signer to fork.
    encryption: Option<(crate::format::EncryptionContext, Option<Box<dyn Signer>>)>,
}

impl CachingMaterialsManager {
    /// A cache of at most `capacity` entries in front of `inner`.
    pub fn new(
        inner: impl MaterialsManager + 'static,
        capacity: usize,
        limits: CacheLimits,
    ) -> Self {
        Self {
            inner: Arc::new(inner),
            limits,
            capacity: capacity.max(1),
            state: Arc::default(),
        }
    }

    /// Hit and miss counts so far.
    pub fn stats(&self) -> CacheStats {
        self.state.lock().map(|s| s.stats).unwrap_or_default()
    }

    /// Takes one use of the entry under `key` if it is within its limits; drops it if not.
    fn take(&self, key: &[u8], bytes: u64) -> Option<Hit> {
        let mut state = self.state.lock().ok()?;
        state.clock += 1;
        let clock = state.clock;
        let fresh = {
            let e = state.entries.get(key)?;
            e.created.elapsed() < self.limits.max_age
                && e.messages < self.limits.max_messages
                && e.bytes.saturating_add(bytes) <= self.limits.max_bytes
        };
        if !fresh {
            state.entries.remove(key);
            return None;
        }
        let e = state.entries.get_mut(key)?;
        e.messages += 1;
        e.bytes += bytes;
        e.last_used = clock;
        let signer = match &e.encryption {
            Some((_, Some(s))) => Some(s.fork().ok()?),
            _ => None,
        };
        Some(Hit {
            data_key: DataKey::new(e.data_key.to_vec()),
            encrypted_data_keys: e.encrypted_data_keys.clone(),
            context: e.encryption.as_ref().map(|(c, _)| c.clone()),
            signer,
        })
    }

    fn put(&self, key: Vec<u8>, entry: Entry) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            if let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            {
                state.entries.remove(&oldest);
            }
        }
        state.clock += 1;
        let mut entry = entry;
        entry.last_used = state.clock;
        state.entries.insert(key, entry);
    }

    fn count(&self, f: impl FnOnce(&mut CacheStats)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s.stats);
        }
    }
}

struct Hit {
    data_key: DataKey,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    context: Option<crate::format::EncryptionContext>,
    signer: Option<Box<dyn Signer>>,
}

/// A cache key: an unambiguous encoding of every field that must match.
fn cache_key(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::new();
    for p in parts {
        key.extend_from_slice(&(p.len() as u64).to_be_bytes());
        key.extend_from_slice(p);
    }
    key
}

fn keys_bytes<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<u8> {
    cache_key(&keys.map(String::as_bytes).collect::<Vec<_>>())
}

#[async_trait]
impl MaterialsManager for CachingMaterialsManager {
    async fn encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<EncryptionMaterials, Error> {
        let bytes = match request.plaintext_length {
            Some(n) => n,
            None if self.limits.max_bytes == u64::MAX => 0,
            None => return self.inner.encryption_materials(request).await,
        };
        let context = request
            .encryption_context
            .to_bytes()
            .map_err(crate::error::ConfigError::Context)?;
        let key = cache_key(&[
            b"encrypt",
            request.provider.name.as_bytes(),
            &request.suite.id().to_be_bytes(),
            &context,
            &keys_bytes(request.required_context_keys.iter()),
        ]);
        if let Some(hit) = self.take(&key, bytes) {
            self.count(|s| s.encrypt_hits += 1);
            debug!("materials cache: encrypt hit (no keyring call)");
            return Ok(EncryptionMaterials {
                provider: request.provider,
                suite: request.suite,
                encryption_context: hit.context.unwrap_or(request.encryption_context),
                required_context_keys: request.required_context_keys,
                data_key: Some(hit.data_key),
                encrypted_data_keys: hit.encrypted_data_keys,
                signer: hit.signer,
            });
        }
        self.count(|s| s.encrypt_misses += 1);
        debug!("materials cache: encrypt miss");
        let materials = self.inner.encryption_materials(request).await?;
        if bytes <= self.limits.max_bytes && self.limits.max_messages > 0 {
            if let Some(dk) = &materials.data_key {
                let signer = match &materials.signer {
                    Some(s) => Some(s.fork()?),
                    None => None,
                };
                self.put(
                    key,
                    Entry {
                        created: Instant::now(),
                        last_used: 0,
                        messages: 1,
                        bytes,
                        data_key: Zeroizing::new(dk.expose_secret().to_vec()),
                        encrypted_data_keys: materials.encrypted_data_keys.clone(),
                        encryption: Some((materials.encryption_context.clone(), signer)),
                    },
                );
            }
        }
        Ok(materials)
    }

    async fn decryption_materials(
        &self,
        request: DecryptionRequest,
    ) -> Result<DecryptionMaterials, Error> {
        let context = request
            .encryption_context
            .to_bytes()
            .map_err(crate::error::ConfigError::Context)?;
        let mut parts: Vec<Vec<u8>> = vec![
            b"decrypt".to_vec(),
            request.provider.name.as_bytes().to_vec(),
            request.suite.id().to_be_bytes().to_vec(),
            context,
            keys_bytes(request.required_context_keys.iter()),
        ];
        for edk in &request.encrypted_data_keys {
            parts.push(cache_key(&[
                edk.provider_id.as_bytes(),
                &edk.provider_info,
                &edk.ciphertext,
            ]));
        }
        let key = cache_key(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
        if let Some(hit) = self.take(&key, 0) {
            self.count(|s| s.decrypt_hits += 1);
            debug!("materials cache: decrypt hit (no keyring call)");
            let verifier = verifier_for(&request)?;
            return Ok(DecryptionMaterials {
                provider: request.provider,
                suite: request.suite,
                encryption_context: request.encryption_context,
                required_context_keys: request.required_context_keys,
                data_key: Some(hit.data_key),
                verifier,
            });
        }
        self.count(|s| s.decrypt_misses += 1);
        debug!("materials cache: decrypt miss");
        let materials = self.inner.decryption_materials(request).await?;
        if let Some(dk) = &materials.data_key {
            self.put(
                key,
                Entry {
                    created: Instant::now(),
                    last_used: 0,
                    messages: 1,
                    bytes: 0,
                    data_key: Zeroizing::new(dk.expose_secret().to_vec()),
                    encrypted_data_keys: Vec::new(),
                    encryption: None,
                },
            );
        }
        Ok(materials)
    }
}
