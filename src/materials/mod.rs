//! Cryptographic materials and the managers that assemble them.
//!
//! A materials manager turns an encrypt request into a data key, its wrapped copies and a
//! signing key, and a decrypt request (the header's EDKs and context) back into the data key
//! and a verification key. The [`DefaultMaterialsManager`] does this with one keyring.

mod cache;
mod default;
pub(crate) mod log;
mod required;

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use zeroize::Zeroizing;

pub use cache::{CacheLimits, CachingMaterialsManager};
pub use default::DefaultMaterialsManager;
pub use required::RequiredContextManager;

use crate::crypto::{CryptoProvider, Signer, Verifier};
use crate::format::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};
use crate::Error;

/// Context key under which signed suites store the public verification key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";
/// Prefix of context keys reserved to the SDK.
pub const RESERVED_CONTEXT_PREFIX: &str = "aws-crypto-";

/// A plaintext data key. Zeroized on drop; no `Clone`, and `Debug` never shows the bytes.
pub struct DataKey(Zeroizing<Vec<u8>>);

impl DataKey {
    /// Takes ownership of key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The secret bytes. Keep them out of logs and long-lived copies.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Key length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty key (never valid).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({} bytes, redacted)", self.0.len())
    }
}

/// What encrypting one message needs.
///
/// Built with [`EncryptionMaterials::new`] outside this crate (more fields may come); the
/// fields stay public to read and set.
#[non_exhaustive]
pub struct EncryptionMaterials {
    /// The crypto provider every keyring must use.
    pub provider: &'static CryptoProvider,
    /// The suite to encrypt with.
    pub suite: AlgorithmSuite,
    /// The full context (stored pairs plus required pairs, plus the public key if signed).
    pub encryption_context: EncryptionContext,
    /// Keys of pairs that are authenticated but not stored in the header.
    pub required_context_keys: BTreeSet<String>,
    /// The data key; the first keyring (the generator) sets it.
    pub data_key: Option<DataKey>,
    /// Wrapped copies of the data key, one per keyring.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The signing key for signed suites.
    pub signer: Option<Box<dyn Signer>>,
}

impl EncryptionMaterials {
    /// Materials with no data key, no EDKs, no signer and no required context keys yet.
    pub fn new(
        provider: &'static CryptoProvider,
        suite: AlgorithmSuite,
        encryption_context: EncryptionContext,
    ) -> Self {
        Self {
            provider,
            suite,
            encryption_context,
            required_context_keys: BTreeSet::new(),
            data_key: None,
            encrypted_data_keys: Vec::new(),
            signer: None,
        }
    }
}

impl fmt::Debug for EncryptionMaterials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionMaterials")
            .field("suite", &self.suite)
            .field("encryption_context", &self.encryption_context)
            .field("data_key", &self.data_key)
            .field("encrypted_data_keys", &self.encrypted_data_keys)
            .field("signed", &self.signer.is_some())
            .finish()
    }
}

/// What decrypting one message needs.
///
/// Built with [`DecryptionMaterials::new`] outside this crate (more fields may come); the
/// fields stay public to read and set.
#[non_exhaustive]
pub struct DecryptionMaterials {
    /// The crypto provider every keyring must use.
    pub provider: &'static CryptoProvider,
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The full context: stored pairs plus the caller's required pairs.
    pub encryption_context: EncryptionContext,
    /// Keys of pairs that were not stored in the header.
    pub required_context_keys: BTreeSet<String>,
    /// The data key, once a keyring recovers it.
    pub data_key: Option<DataKey>,
    /// The verification key for signed suites.
    pub verifier: Option<Box<dyn Verifier>>,
}

impl DecryptionMaterials {
    /// Materials with no data key, no verifier and no required context keys yet.
    pub fn new(
        provider: &'static CryptoProvider,
        suite: AlgorithmSuite,
        encryption_context: EncryptionContext,
    ) -> Self {
        Self {
            provider,
            suite,
            encryption_context,
            required_context_keys: BTreeSet::new(),
            data_key: None,
            verifier: None,
        }
    }
}

impl fmt::Debug for DecryptionMaterials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionMaterials")
            .field("suite", &self.suite)
            .field("encryption_context", &self.encryption_context)
            .field("data_key", &self.data_key)
            .field("signed", &self.verifier.is_some())
            .finish()
    }
}

/// A request for encryption materials.
///
/// Built with [`EncryptionRequest::new`] outside this crate; the fields stay public.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EncryptionRequest {
    /// The crypto provider to use.
    pub provider: &'static CryptoProvider,
    /// The caller's context (reserved keys are refused).
    pub encryption_context: EncryptionContext,
    /// The suite the caller chose.
    pub suite: AlgorithmSuite,
    /// Keys of context pairs to authenticate without storing.
    pub required_context_keys: BTreeSet<String>,
    /// Plaintext length when known (caches count bytes with it).
    pub plaintext_length: Option<u64>,
}

/// A request for decryption materials.
///
/// Built with [`DecryptionRequest::new`] outside this crate; the fields stay public.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DecryptionRequest {
    /// The crypto provider to use.
    pub provider: &'static CryptoProvider,
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The header's wrapped data keys.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Stored context plus the caller's required pairs.
    pub encryption_context: EncryptionContext,
    /// Keys of the caller's required pairs (those not stored in the header).
    pub required_context_keys: BTreeSet<String>,
    /// Keys of every pair the caller supplied (stored or not).
    pub reproduced_context_keys: BTreeSet<String>,
}

impl EncryptionRequest {
    /// A request without required context keys and of unknown plaintext length.
    pub fn new(
        provider: &'static CryptoProvider,
        suite: AlgorithmSuite,
        encryption_context: EncryptionContext,
    ) -> Self {
        Self {
            provider,
            encryption_context,
            suite,
            required_context_keys: BTreeSet::new(),
            plaintext_length: None,
        }
    }
}

impl DecryptionRequest {
    /// A request without required or reproduced context keys (the caller supplied no
    /// context).
    pub fn new(
        provider: &'static CryptoProvider,
        suite: AlgorithmSuite,
        encrypted_data_keys: Vec<EncryptedDataKey>,
        encryption_context: EncryptionContext,
    ) -> Self {
        Self {
            provider,
            suite,
            encrypted_data_keys,
            encryption_context,
            required_context_keys: BTreeSet::new(),
            reproduced_context_keys: BTreeSet::new(),
        }
    }
}

/// Assembles materials for each message.
#[async_trait]
pub trait MaterialsManager: Send + Sync {
    /// Materials to encrypt one message: a data key, its EDKs, a signer if signed.
    async fn encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<EncryptionMaterials, Error>;

    /// Materials to decrypt one message: the data key and a verifier if signed.
    async fn decryption_materials(
        &self,
        request: DecryptionRequest,
    ) -> Result<DecryptionMaterials, Error>;
}
