//! A tamper-evident audit trail of key use, kept on the client where the data is.
//!
//! Cloud KMS logs see KMS calls, but not raw AES, RSA or HSM keyrings, not which file a key
//! opened, and not failures before a key was used. This module records them:
//!
//! - [`AuditEvent`]: one per operation (encrypt, decrypt, rewrap, a key requirement check)
//!   and per keyring call (generate, wrap, unwrap, including "not mine" and failures), with
//!   time, outcome and error kind, message id, suite, EDK keys, the key that unwrapped,
//!   encryption-context **keys**, path, user, host and version. Never key bytes, data keys,
//!   PINs, credentials, plaintext or context values.
//! - [`AuditSink`]: where events go. [`JsonLinesSink`] appends them to a file as JSON lines
//!   chained by SHA-256 (each line carries the hash of the line before it), with checkpoints
//!   signed by an ECDSA P-384 key ([`AuditSigningKey`], through the crypto provider, so a
//!   FIPS build signs inside the module) every N events and at the end of each run.
//! - [`Auditor`]: a sink plus its failure rule. **Fail closed** by default: an event that
//!   cannot be written fails the operation (before the data key is released, for keyring
//!   calls); [`Auditor::fail_open`] chooses to go on.
//! - [`AuditedKeyring`]: wraps a keyring so that each of its calls is recorded before its
//!   result is used.
//! - [`verify_log`]: checks a log and names the first broken line.
//!
//! ```
//! use std::sync::Arc;
//! use envcrypt::audit::{AuditedKeyring, Auditor, JsonLinesSink, JsonLinesOptions, verify_log};
//! use envcrypt::{Client, EncryptionContext, keyring::RawAesKeyring};
//!
//! let dir = tempfile::tempdir()?;
//! let log = dir.path().join("audit.jsonl");
//! let provider = envcrypt::crypto::default_provider();
//! let auditor = Auditor::new(Arc::new(JsonLinesSink::open(&log, provider, JsonLinesOptions::default())?));
//! let keyring = RawAesKeyring::new("hospital-a", "imaging-2026", &[7; 32])?;
//! let client = Client::new(AuditedKeyring::new(keyring, auditor.clone()));
//! client.encrypt(b"pixel data", &EncryptionContext::new())?;
//! auditor.finish()?;
//!
//! let summary = verify_log(std::fs::File::open(&log)?, None, provider)?;
//! assert_eq!(summary.events, 1); // the keyring made and wrapped the data key
//! assert_eq!(summary.operations["generate"], 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What the chain shows, and what it cannot: an edited, removed, inserted or reordered line
//! breaks the chain at that line; a log re-chained without the signing key breaks at the
//! next checkpoint; a log cut after the last checkpoint ends unsigned. A log cut exactly at
//! an earlier checkpoint, or replaced whole, is only caught against a copy kept elsewhere
//! (ship the log to write-once storage; compare the last `seq` and `hash` you know).

mod auditor;
mod event;
mod file_sink;
mod identity;
mod key;
mod keyring;
mod line;
mod time;
mod verify;

pub use auditor::{AuditError, AuditSink, Auditor};
pub use event::{AuditEvent, KeyRef, Operation, Outcome};
pub use file_sink::{FsyncPolicy, JsonLinesOptions, JsonLinesSink};
pub use key::{AuditSigningKey, AuditVerifyingKey};
pub use keyring::AuditedKeyring;
pub use verify::{verify_log, LogSummary, VerifyError};
