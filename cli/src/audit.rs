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
    JsonLinesOptions, JsonLinesSink, Operation, VerifyError,
};
use envcrypt::crypto::CryptoProvider;
use envcrypt::keyring::Keyring;
use envcrypt::Header;

use crate::cli::{AuditFlags, AuditVerifyArgs};
use crate::error::{AppError, EXIT_DATA};
use crate::secret_file::SecretFile;

/// The run's auditor, when a log was given.
static AUDITOR: OnceLock<Auditor> = OnceLock::new();

/// Largest PEM key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

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
        let file = SecretFile::read(path, MAX_KEY_FILE, "audit signing key")?;
        file.enforce("audit signing key")?;
        let text = std::str::from_utf8(file.bytes()).map_err(|_| {
            AppError::usage(format!("audit signing key {}: not PEM text", path.display()))
        })?;
        let key = AuditSigningKey::from_pem(text, provider).map_err(|e| {
            AppError::usage(format!("audit signing key {}: {e}", path.display()))
        })?;
        options = options.with_signing_key(key);
    }
    let sink = JsonLinesSink::open(log, provider, options)
        .map_err(|e| AppError::lib("audit log", e.into()))?;
    let mut auditor = Auditor::new(Arc::new(sink));
    if flags.audit_fail_open {
        auditor = auditor.fail_open();
    }
    let _ = AUDITOR.set(auditor);
    Ok(())
}

/// `keyring`, recorded when a log is open.
pub fn keyring(keyring: Arc<dyn Keyring>) -> Arc<dyn Keyring> {
    match AUDITOR.get() {
        Some(auditor) => Arc::new(AuditedKeyring::new(keyring, auditor.clone())),
        None => keyring,
    }
}

/// Whether events are being recorded.
pub fn enabled() -> bool {
    AUDITOR.get().is_some()
}

/// Records one operation on `input` (a path, or stdin): its outcome and, when known, the
/// message it read or wrote. An event that cannot be recorded is an error (fail closed).
pub fn operation(
    op: Operation,
    input: Option<&Path>,
    header: Option<&Header>,
    bytes: Option<u64>,
    error: Option<&envcrypt::Error>,
) -> Result<(), envcrypt::Error> {
    let Some(auditor) = AUDITOR.get() else {
        return Ok(());
    };
    let mut event = AuditEvent::new(op).path(match input {
        Some(p) if p.as_os_str() != "-" => p.display().to_string(),
        _ => "-".to_owned(),
    });
    if let Some(header) = header {
        event = event.message(header);
    }
    if let Some(bytes) = bytes {
        event = event.bytes(bytes);
    }
    if let Some(e) = error {
        event = event.failed(e);
    }
    auditor.record(&event)
}

/// Ends the run: the closing signed checkpoint (exit 3 when it cannot be written).
pub fn finish() -> Result<(), AppError> {
    match AUDITOR.get() {
        Some(auditor) => auditor
            .finish()
            .map_err(|e| AppError::lib("audit log", e)),
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
            Some(AuditVerifyingKey::from_pem(&text, provider).map_err(|e| {
                AppError::usage(format!("public key {}: {e}", path.display()))
            })?)
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
        Err(e) => Err(AppError::with_code(EXIT_DATA, format!("audit log {shown}: {e}"))),
    }
}
