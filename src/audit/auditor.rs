//! Where events go ([`AuditSink`]) and what happens when they cannot be written
//! ([`Auditor`]: fail closed unless told otherwise).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::event::AuditEvent;
use crate::crypto::CryptoError;

/// Why an event could not be recorded, or a key or log could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Writing, syncing or locking the log failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The log's last line is not a chained line: appending would hide the damage.
    #[error("audit log {path}: cannot append: {reason}")]
    Damaged {
        /// The log file.
        path: String,
        /// What is wrong with its end.
        reason: String,
    },
    /// A signing or verifying key could not be used.
    #[error("audit key: {0}")]
    Key(String),
    /// An event could not be serialized.
    #[error("audit event: {0}")]
    Encode(#[from] serde_json::Error),
    /// The crypto provider failed (hashing, signing).
    #[error("audit: {0}")]
    Crypto(#[from] CryptoError),
    /// Another destination's own failure.
    #[error("audit sink: {0}")]
    Sink(String),
}

/// A destination for audit events: a file ([`super::JsonLinesSink`]), syslog, a SIEM...
pub trait AuditSink: Send + Sync {
    /// Records one event durably enough for the sink's policy; an error means it was not
    /// recorded.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;

    /// Ends a run: a signing sink writes its checkpoint, and everything is made durable.
    fn finish(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

/// A sink and its failure rule, shared by every part of an operation (cheap to clone).
///
/// Fail closed (the default): [`record`](Self::record) returns the sink's error, and the
/// caller fails the operation; an [`AuditedKeyring`](super::AuditedKeyring) does so before
/// its data key can be used, so no output is made. Fail open: the error is counted
/// ([`failures`](Self::failures)) and the operation goes on.
#[derive(Clone)]
pub struct Auditor {
    sink: Arc<dyn AuditSink>,
    fail_open: bool,
    failures: Arc<AtomicU64>,
}

impl core::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Auditor")
            .field("fail_open", &self.fail_open)
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor that fails closed.
    pub fn new(sink: Arc<dyn AuditSink>) -> Self {
        Self {
            sink,
            fail_open: false,
            failures: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Goes on when an event cannot be recorded (counted in [`failures`](Self::failures)).
    /// Choose this only where availability outranks the audit trail.
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// Records `event`. Fail closed: the sink's error, as [`crate::Error::Audit`].
    pub fn record(&self, event: &AuditEvent) -> Result<(), crate::Error> {
        tracing::info!(
            target: "envcrypt::audit",
            op = event.op.as_str(),
            outcome = ?event.outcome,
            error_kind = event.error_kind.unwrap_or(""),
            message_id = event.message_id.as_deref().unwrap_or(""),
            path = event.path.as_deref().unwrap_or(""),
            "audit event"
        );
        let result = self.sink.record(event);
        match &result {
            // Failing open, this warning is all that tells of the gap in the trail.
            Err(e) if self.fail_open => {
                tracing::warn!(target: "envcrypt::audit", "audit event not recorded (failing open): {e}")
            }
            // Failing closed, the error is returned and reported by the caller.
            Err(e) => tracing::debug!(target: "envcrypt::audit", "audit event not recorded: {e}"),
            Ok(()) => {}
        }
        self.outcome(result)
    }

    /// Ends the run ([`AuditSink::finish`]): the closing signed checkpoint.
    pub fn finish(&self) -> Result<(), crate::Error> {
        self.outcome(self.sink.finish())
    }

    /// Events (and finishes) that could not be recorded while failing open.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn outcome(&self, result: Result<(), AuditError>) -> Result<(), crate::Error> {
        match result {
            Ok(()) => Ok(()),
            Err(_) if self.fail_open => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
