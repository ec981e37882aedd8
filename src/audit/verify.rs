//! Checking a log: the chain line by line, every checkpoint's signature, and the end.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use base64::Engine as _;
use serde::Serialize;

use super::key::AuditVerifyingKey;
use super::line::{self, LineError, GENESIS};
use crate::crypto::CryptoProvider;

/// A log that verified.
#[derive(Debug, Clone, Serialize)]
pub struct LogSummary {
    /// Lines read.
    pub lines: u64,
    /// Events (lines that are not checkpoints).
    pub events: u64,
    /// Events whose outcome is `failed`.
    pub failed: u64,
    /// Events per operation.
    pub operations: BTreeMap<String, u64>,
    /// Signed checkpoints.
    pub checkpoints: u64,
    /// The checkpoints' key ([`AuditVerifyingKey::fingerprint`]), if any.
    pub signed_by: Option<String>,
    /// Whether the checkpoints were checked against a key given by the caller (otherwise
    /// against the key the first checkpoint carries: compare `signed_by` with yours).
    pub key_pinned: bool,
    /// The first and last line's time.
    pub first_time: Option<String>,
    /// The last line's time.
    pub last_time: Option<String>,
    /// The last line's seq and hash: keep them elsewhere to detect a later cut.
    pub last_seq: u64,
    /// See `last_seq`.
    pub last_hash: String,
}

/// Why a log did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The first broken line (1-based) and what is wrong with it.
    #[error("line {line}: {reason}")]
    Broken {
        /// The line number, from 1.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log could not be read.
    #[error("reading the audit log: {0}")]
    Io(#[from] std::io::Error),
}

/// Verifies the log read from `log`. With `key`, every checkpoint must be signed by it and
/// the log must end with one; without, checkpoints must all carry the same key and verify
/// under it (the summary names it).
pub fn verify_log(
    log: impl Read,
    key: Option<&AuditVerifyingKey>,
    provider: &'static CryptoProvider,
) -> Result<LogSummary, VerifyError> {
    let mut reader = BufReader::new(log);
    let mut summary = LogSummary {
        lines: 0,
        events: 0,
        failed: 0,
        operations: BTreeMap::new(),
        checkpoints: 0,
        signed_by: None,
        key_pinned: key.is_some(),
        first_time: None,
        last_time: None,
        last_seq: 0,
        last_hash: GENESIS.to_owned(),
    };
    let mut signer = key.cloned();
    let mut last_was_checkpoint = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(super::file_sink::MAX_LINE + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        summary.lines += 1;
        let at = summary.lines;
        let broken = |reason: &str| VerifyError::Broken {
            line: at,
            reason: reason.to_owned(),
        };
        let Some(text) = buf.strip_suffix(b"\n") else {
            return Err(broken(
                "partial line at the end (cut mid-line, or too long)",
            ));
        };
        let text = std::str::from_utf8(text).map_err(|_| broken("not UTF-8"))?;
        let opened = line::open(provider, text).map_err(|e| match e {
            LineError::Edited => broken("edited: its hash does not match its content"),
            LineError::Malformed(why) => broken(&format!("not a chained audit line: {why}")),
        })?;
        if opened.seq != summary.last_seq + 1 || opened.prev != summary.last_hash {
            return Err(broken(if at == 1 {
                "does not start the chain (lines removed from the start?)"
            } else {
                "does not follow the line before it (a line was removed, inserted or moved)"
            }));
        }
        let op = opened
            .fields
            .get("op")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let time = opened.fields.get("time").and_then(|v| v.as_str());
        last_was_checkpoint = op == "checkpoint";
        if last_was_checkpoint {
            let b64 = |field: &str| {
                opened
                    .fields
                    .get(field)
                    .and_then(|v| v.as_str())
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                    .ok_or_else(|| broken(&format!("checkpoint without a base64 {field}")))
            };
            let carried = AuditVerifyingKey::from_spki(&b64("public_key")?, provider)
                .map_err(|_| broken("checkpoint with an unusable public key"))?;
            let expected = signer.get_or_insert_with(|| carried.clone());
            if *expected != carried {
                return Err(broken(&format!(
                    "checkpoint signed by another key ({}, expected {})",
                    carried.fingerprint(),
                    expected.fingerprint()
                )));
            }
            let signed = line::signed_part(&opened.body)
                .ok_or_else(|| broken("checkpoint without a signature"))?;
            if !expected.verifies(signed.as_bytes(), &b64("signature")?) {
                return Err(broken(
                    "checkpoint signature does not verify (it or the lines before it were changed)",
                ));
            }
            summary.checkpoints += 1;
        } else {
            summary.events += 1;
            *summary.operations.entry(op.to_owned()).or_default() += 1;
            if opened.fields.get("outcome").and_then(|v| v.as_str()) == Some("failed") {
                summary.failed += 1;
            }
        }
        if summary.first_time.is_none() {
            summary.first_time = time.map(str::to_owned);
        }
        summary.last_time = time.map(str::to_owned);
        summary.last_seq = opened.seq;
        summary.last_hash = opened.hash;
    }
    if (summary.checkpoints > 0 || key.is_some()) && !last_was_checkpoint {
        return Err(VerifyError::Broken {
            line: summary.lines,
            reason: if summary.checkpoints == 0 {
                "no checkpoint signed by the key".to_owned()
            } else {
                "the log ends after its last checkpoint with unsigned lines \
                 (cut, or a run did not finish)"
                    .to_owned()
            },
        });
    }
    summary.signed_by = signer.map(|k| k.fingerprint());
    Ok(summary)
}
