//! One audit event: what happened to which message with which keys, and never a secret.

use std::time::SystemTime;

use serde::Serialize;

use crate::error::{Error, ErrorKind};
use crate::format::{EncryptedDataKey, Header};

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// A message was written.
    Encrypt,
    /// A message was read.
    Decrypt,
    /// A message was moved to new keys.
    Rewrap,
    /// A message's header was opened to show a key can recover it (`--require-key`).
    RequireKey,
    /// A keyring made a data key.
    Generate,
    /// A keyring wrapped a data key.
    Wrap,
    /// A keyring tried to unwrap a data key.
    Unwrap,
    /// A signed checkpoint of the log (written by the sink).
    Checkpoint,
}

impl Operation {
    /// The name written in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Rewrap => "rewrap",
            Self::RequireKey => "require-key",
            Self::Generate => "generate",
            Self::Wrap => "wrap",
            Self::Unwrap => "unwrap",
            Self::Checkpoint => "checkpoint",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed; the event says the error kind.
    Failed,
}

/// A key as logs and reports name it: the EDK's provider id and the key name (raw AES, raw
/// RSA, PKCS#11) or ARN (KMS). See [`EncryptedDataKey::key_name`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct KeyRef {
    /// The EDK's provider id: a raw keyring's namespace, or `aws-kms`.
    pub provider_id: String,
    /// The key name or ARN.
    pub key: String,
}

impl KeyRef {
    /// The key `edk` names.
    pub fn of(edk: &EncryptedDataKey) -> Self {
        Self {
            provider_id: edk.provider_id.clone(),
            key: edk.key_name(),
        }
    }
}

/// One event. Build it with [`AuditEvent::new`] and the setters; the sink adds the sequence
/// number and the chain.
///
/// Fields hold names, ids and sizes only: an event has no place for key bytes, data keys,
/// PINs, credentials, plaintext or context values (context **keys** only).
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub(crate) time: String,
    pub(crate) op: Operation,
    pub(crate) outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) suite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frame_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) keys: Vec<KeyRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unwrapped_by: Option<KeyRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) context_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    pub(crate) user: String,
    pub(crate) host: String,
    pub(crate) version: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) checkpoint: Option<CheckpointFields>,
}

/// What a checkpoint adds: the key that signed it and the signature.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckpointFields {
    /// The signer's SubjectPublicKeyInfo, base64.
    pub(crate) public_key: String,
    /// DER ECDSA P-384 signature, base64, over the checkpoint line without this field
    /// (see `line::signed_part`); absent while that is being signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) signature: Option<String>,
}

impl AuditEvent {
    /// An event of `op` that succeeded, stamped now with this process's user and host.
    pub fn new(op: Operation) -> Self {
        let (user, host) = super::identity::user_and_host();
        Self {
            time: super::time::rfc3339_millis(SystemTime::now()),
            op,
            outcome: Outcome::Ok,
            error_kind: None,
            error: None,
            message_id: None,
            suite: None,
            frame_length: None,
            bytes: None,
            keys: Vec::new(),
            unwrapped_by: None,
            context_keys: None,
            path: None,
            user: user.clone(),
            host: host.clone(),
            version: env!("CARGO_PKG_VERSION"),
            checkpoint: None,
        }
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        self.op
    }

    /// The outcome.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Marks the event failed with `error`'s kind and message. Error messages name keys and
    /// files, never key material or context values.
    pub fn failed(self, error: &Error) -> Self {
        self.failed_as(error.kind(), error.to_string())
    }

    /// Marks the event failed with an error of `kind` described by `message` (for callers
    /// whose errors are their own, e.g. a tool's usage errors). The message must name keys
    /// and files only, never key material or context values.
    pub fn failed_as(mut self, kind: ErrorKind, message: impl Into<String>) -> Self {
        self.outcome = Outcome::Failed;
        self.error_kind = Some(kind_name(kind));
        self.error = Some(message.into());
        self
    }

    /// Records `result`'s outcome: [`failed`](Self::failed) on an error.
    pub fn outcome_of<T>(self, result: &Result<T, Error>) -> Self {
        match result {
            Ok(_) => self,
            Err(e) => self.failed(e),
        }
    }

    /// The message: id, suite, frame length, the keys of its EDKs and its stored context's
    /// keys (values are never recorded).
    pub fn message(mut self, header: &Header) -> Self {
        self.message_id = Some(hex(&header.message_id));
        self.suite = Some(format!("0x{:04x}", header.suite.id()));
        self.frame_length = Some(header.frame_length);
        self.keys = header.encrypted_data_keys.iter().map(KeyRef::of).collect();
        self.context_keys = Some(
            header
                .encryption_context
                .iter()
                .map(|(k, _)| k.to_owned())
                .collect(),
        );
        self
    }

    /// The keys of these EDKs (a keyring call's).
    pub fn keys(mut self, edks: &[EncryptedDataKey]) -> Self {
        self.keys = edks.iter().map(KeyRef::of).collect();
        self
    }

    /// One key (a keyring that failed before it saw a message names its own).
    pub fn key(mut self, key: KeyRef) -> Self {
        self.keys = vec![key];
        self
    }

    /// The key that unwrapped the data key.
    pub fn unwrapped_by(mut self, key: KeyRef) -> Self {
        self.unwrapped_by = Some(key);
        self
    }

    /// Context keys (for a keyring call, whose materials carry the full context).
    pub fn context_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Self {
        self.context_keys = Some(keys.into_iter().map(str::to_owned).collect());
        self
    }

    /// Bytes processed (plaintext on encrypt and decrypt, message size on rewrap).
    pub fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    /// The file or object the operation read.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

/// The log's name of an error kind.
pub(crate) fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Usage => "usage",
        ErrorKind::Format => "format",
        ErrorKind::Authentication => "authentication",
        ErrorKind::Policy => "policy",
        ErrorKind::KeyringUnavailable => "keyring-unavailable",
        ErrorKind::KeyringRefused => "keyring-refused",
        ErrorKind::Io => "io",
        ErrorKind::Cancelled => "cancelled",
        _ => "internal",
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
