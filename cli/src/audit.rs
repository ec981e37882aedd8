//! The audit trail in the tool: `--audit-log FILE` (or `ENVCRYPT_AUDIT_LOG`),
//! `--audit-signing-key PEM`, `keygen audit` (in `keygen`) and `audit verify`.
//!
//! When a log is given, every keyring the tool builds is wrapped in an
//! [`AuditedKeyring`] (one event per generate, wrap and unwrap, written before the data key
//! is used: an unwritable log stops the run before any output), each encrypt, decrypt,
//! rewrap and `--require-key` check adds one event per input, and the end of the run adds a
//! signed checkpoint. `inspect`, `info`, `keygen` and `audit` record nothing.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use envcrypt::audit::{
    verify_log, AuditEvent, AuditSigningKey, AuditVerifyingKey, AuditedKeyring, Auditor,
    JsonLinesOptions, JsonLinesSink, KeyRef, Operation, VerifyError,
};
use envcrypt::crypto::CryptoProvider;
use envcrypt::keyring::spec::Purpose;
use envcrypt::keyring::Keyring;
use envcrypt::pipeline::StreamStats;
use envcrypt::Header;

use crate::cli::{AuditFlags, AuditVerifyArgs};
use crate::crypt::Done;
use crate::error::{AppError, EXIT_DATA};
use crate::keyring_spec::KeyringSpec;

/// The run's auditor, when a log was given.
static AUDITOR: OnceLock<Auditor> = OnceLock::new();

/// Opens the log named by the flags (if any) for this run. A log that cannot be opened or
/// appended to stops the run here (exit 3): the trail fails closed.
pub fn install(flags: &AuditFlags, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let Some(log) = flags.audit_log.as_deref() else {
        if flags.audit_signing_key.is_some() {
            return Err(AppError::usage(
                "--audit-signing-key needs --audit-log (or ENVCRYPT_AUDIT_LOG)",
            ));
        }
        return Ok(());
    };
    let mut options = JsonLinesOptions::default();
    if let Some(path) = flags.audit_signing_key.as_deref() {
        let (key, warnings) = AuditSigningKey::from_pem_file(path, provider)
            .map_err(|e| AppError::lib("--audit-signing-key", e.into()))?;
        for warning in warnings {
            eprintln!("envcrypt: warning: {warning}");
        }
        options = options.with_signing_key(key);
    }
    let sink = JsonLinesSink::open(log, provider, options)
        .map_err(|e| AppError::lib("audit log", e.into()))?;
    let mut auditor = Auditor::new(Arc::new(sink));
    if flags.audit_fail_open {
        auditor = auditor.fail_open();
    }
    let _ = AUDITOR.set(auditor);
    crate::metadata::keep_book();
    Ok(())
}

/// `keyring`, recorded when a log is open.
pub fn keyring(keyring: Arc<dyn Keyring>) -> Arc<dyn Keyring> {
    match AUDITOR.get() {
        Some(auditor) => Arc::new(AuditedKeyring::new(keyring, auditor.clone())),
        None => keyring,
    }
}

/// A keyring that could not even be set up (a refused HSM login, a key service down):
/// recorded as a failed call of its purpose, then returned. If the event cannot be
/// recorded, that error is returned instead.
pub fn keyring_failed(purpose: Purpose, spec: &KeyringSpec, error: AppError) -> AppError {
    let Some(auditor) = AUDITOR.get() else {
        return error;
    };
    let op = match purpose {
        Purpose::Encrypt => Operation::Wrap,
        _ => Operation::Unwrap,
    };
    let mut event = AuditEvent::new(op).failed_as(error.kind(), error.to_string());
    if let Some(id) = crate::key_id::of_spec(spec) {
        event = event.key(KeyRef {
            provider_id: id.provider_id,
            key: id.key,
        });
    }
    match auditor.record(&event) {
        Ok(()) => error,
        Err(e) => AppError::lib("audit log", e),
    }
}

/// Whether events are being recorded.
pub fn enabled() -> bool {
    AUDITOR.get().is_some()
}

/// Records the operation `verb` (`encrypt`, `decrypt`, `rewrap`) on `input`: its outcome
/// and the message it read or wrote (an encrypted message's header from `done`, else from
/// the file at `written`). If the event cannot be recorded, the output `remove` (a new file
/// this run made) is deleted and the run fails: nothing unrecorded is left behind. An
/// in-place rewrap passes no `remove`: its input is already replaced.
pub fn record_done(
    verb: &str,
    input: &str,
    written: Option<&Path>,
    remove: Option<&Path>,
    outcome: Result<Finished<'_>, &AppError>,
) -> Result<(), AppError> {
    let Some(auditor) = AUDITOR.get() else {
        return Ok(());
    };
    let op = match verb {
        "encrypt" => Operation::Encrypt,
        "decrypt" => Operation::Decrypt,
        _ => Operation::Rewrap,
    };
    let mut event = AuditEvent::new(op).path(input);
    match &outcome {
        Ok(done) => {
            let read;
            let header = match (done.header, written) {
                (Some(h), _) => Some(h),
                (None, Some(path)) => {
                    read = crate::metadata::header_of_file(path);
                    read.as_ref()
                }
                _ => None,
            };
            if let Some(header) = header {
                event = event.message(header);
            }
            let opened = match op {
                Operation::Decrypt => done.header,
                _ => done.source,
            };
            if let Some(id) =
                opened.and_then(|h| crate::metadata::opened_by(&h.encrypted_data_keys))
            {
                event = event.unwrapped_by(KeyRef {
                    provider_id: id.provider_id,
                    key: id.key,
                });
            }
            event = event.bytes(match op {
                Operation::Decrypt => done.stats.bytes_out,
                _ => done.stats.bytes_in,
            });
        }
        Err(e) => event = event.failed_as(e.kind(), e.to_string()),
    }
    auditor.record(&event).map_err(|e| {
        if let (Ok(_), Some(path)) = (&outcome, remove) {
            let _ = std::fs::remove_file(path);
        }
        AppError::lib("audit log", e)
    })
}

/// What a finished operation read and wrote.
pub struct Finished<'a> {
    /// Bytes in and out.
    pub stats: &'a StreamStats,
    /// The message read (decrypt) or written (encrypt, when known; rewrap).
    pub header: Option<&'a Header>,
    /// The source message (rewrap).
    pub source: Option<&'a Header>,
}

impl Done {
    /// What the audit trail records of it.
    pub fn finished(&self) -> Finished<'_> {
        Finished {
            stats: &self.stats,
            header: self.header.as_ref(),
            source: self.source.as_ref(),
        }
    }
}

/// Records a `--require-key` check of the message `name`: whether the key opened it.
pub fn record_require_key(
    name: &str,
    header: &Header,
    error: Option<&envcrypt::Error>,
) -> Result<(), AppError> {
    let Some(auditor) = AUDITOR.get() else {
        return Ok(());
    };
    let mut event = AuditEvent::new(Operation::RequireKey)
        .path(name)
        .message(header);
    if let Some(e) = error {
        event = event.failed(e);
    }
    auditor
        .record(&event)
        .map_err(|e| AppError::lib("audit log", e))
}

/// Ends the run: the closing signed checkpoint (exit 3 when it cannot be written).
pub fn finish() -> Result<(), AppError> {
    match AUDITOR.get() {
        Some(auditor) => auditor.finish().map_err(|e| AppError::lib("audit log", e)),
        None => Ok(()),
    }
}

/// `envcrypt audit verify FILE [--public-key PEM]`: a JSON summary and exit 0, or the first
/// broken line and exit 1.
pub fn verify(args: &AuditVerifyArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let key = match args.public_key.as_deref() {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AppError::io(format!("public key {}", path.display()), e))?;
            Some(
                AuditVerifyingKey::from_pem(&text, provider)
                    .map_err(|e| AppError::usage(format!("public key {}: {e}", path.display())))?,
            )
        }
    };
    let shown = args.log.display();
    let file = std::fs::File::open(&args.log)
        .map_err(|e| AppError::io(format!("audit log {shown}"), e))?;
    match verify_log(file, key.as_ref(), provider) {
        Ok(summary) => {
            let json = serde_json::to_string(&summary)
                .map_err(|e| AppError::io("audit summary", std::io::Error::other(e)))?;
            println!("{json}");
            Ok(())
        }
        Err(VerifyError::Broken { line, reason }) => Err(AppError::with_code(
            EXIT_DATA,
            format!("audit log {shown}: line {line}: {reason}"),
        )),
        Err(VerifyError::Io(e)) => Err(AppError::io(format!("audit log {shown}"), e)),
        Err(e) => Err(AppError::with_code(
            EXIT_DATA,
            format!("audit log {shown}: {e}"),
        )),
    }
}
