//! `--metadata-output FILE|-`: one JSON line per message, appended as each one finishes.
//!
//! `{"op", "input", "output", "outcome", "message_id", "suite", "context_keys",
//! "encrypted_data_keys": [{"provider_id", "key"}], "unwrapped_by": {"provider_id", "key"}}`
//! (`unwrapped_by` on decrypt and rewrap; `error_kind` instead of the message fields when
//! the operation failed). Keys are named as `inspect --summary` names them (`key_id`).
//! Context values never appear: only their keys.
//!
//! Which EDK opened a message is recorded by [`Recording`], a wrapper around each `-k`
//! keyring, in a book keyed by the message's EDK list (so a data key served from the cache
//! is still attributed).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use envcrypt::format::EncryptedDataKey;
use envcrypt::keyring::{Keyring, KeyringError};
use envcrypt::materials::{DecryptionMaterials, EncryptionMaterials};
use envcrypt::Header;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::key_id::{self, KeyId};

/// Where the lines go.
enum Sink {
    Stdout,
    File(File),
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();
static BOOK: OnceLock<Book> = OnceLock::new();

/// Which key opened each message, by its EDK list.
#[derive(Default)]
pub struct Book(Mutex<HashMap<Vec<u8>, KeyId>>);

impl Book {
    fn insert(&self, edks: &[EncryptedDataKey], id: KeyId) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(book_key(edks), id);
    }

    fn get(&self, edks: &[EncryptedDataKey]) -> Option<KeyId> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&book_key(edks)).cloned()
    }
}

/// The EDK list as bytes (each field length-prefixed).
fn book_key(edks: &[EncryptedDataKey]) -> Vec<u8> {
    let mut out = Vec::new();
    for edk in edks {
        for part in [
            edk.provider_id.as_bytes(),
            &edk.provider_info[..],
            &edk.ciphertext[..],
        ] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Opens FILE for appending (or takes stdout for `-`; refused when the data goes there).
pub fn open(target: Option<&Path>, data_to_stdout: bool) -> Result<(), AppError> {
    let Some(target) = target else {
        return Ok(());
    };
    let sink = if target == Path::new("-") {
        if data_to_stdout {
            return Err(AppError::usage(
                "--metadata-output - needs the data to go elsewhere (-o OUT): stdout carries it",
            ));
        }
        Sink::Stdout
    } else {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(target)
            .map_err(|e| AppError::io(format!("metadata output {}", target.display()), e))?;
        Sink::File(file)
    };
    let _ = SINK.set(Mutex::new(sink));
    let _ = BOOK.set(Book::default());
    Ok(())
}

/// Keeps the book of which key opened each message without writing lines (the audit
/// trail's `unwrapped_by`).
pub fn keep_book() {
    let _ = BOOK.set(Book::default());
}

/// The key that opened the message with these EDKs, when the book knows.
pub fn opened_by(edks: &[EncryptedDataKey]) -> Option<KeyId> {
    book().and_then(|b| b.get(edks))
}

/// Whether lines are wanted.
pub fn enabled() -> bool {
    SINK.get().is_some()
}

/// The book [`Recording`] keyrings write to, when lines are wanted.
pub fn book() -> Option<&'static Book> {
    BOOK.get()
}

/// What one operation on one message gave.
pub struct Line<'a> {
    pub op: &'static str,
    pub input: &'a str,
    pub output: &'a str,
    /// The message written (encrypt, rewrap) or read (decrypt).
    pub header: Option<&'a Header>,
    /// The message opened (decrypt: the same; rewrap: the source).
    pub opened: Option<&'a Header>,
    /// The error kind of a failure.
    pub error: Option<&'a AppError>,
}

/// Appends one line (nothing when `--metadata-output` is not given).
pub fn record(line: Line<'_>) -> Result<(), AppError> {
    let Some(sink) = SINK.get() else {
        return Ok(());
    };
    let mut v = json!({
        "op": line.op,
        "input": line.input,
        "output": line.output,
        "outcome": if line.error.is_none() { "ok" } else { "failed" },
    });
    if let Some(e) = line.error {
        v["error_kind"] = json!(crate::error::kind_name(e.code()));
    }
    if let Some(h) = line.header {
        v["message_id"] = json!(hex::encode(&h.message_id));
        v["suite"] = json!(h.suite.name());
        v["context_keys"] = json!(h
            .encryption_context
            .iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>());
        v["encrypted_data_keys"] =
            Value::Array(h.encrypted_data_keys.iter().map(key_json).collect());
    }
    if let Some(opened) = line.opened {
        let by = book().and_then(|b| b.get(&opened.encrypted_data_keys));
        v["unwrapped_by"] = match by {
            Some(id) => json!({"provider_id": id.provider_id, "key": id.key}),
            None => Value::Null,
        };
    }
    let mut text = v.to_string();
    text.push('\n');
    let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
    let written = match &mut *sink {
        Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
        Sink::File(f) => f.write_all(text.as_bytes()),
    };
    written.map_err(|e| AppError::io("metadata output", e))
}

fn key_json(edk: &EncryptedDataKey) -> Value {
    let id = key_id::of_edk(edk);
    json!({"provider_id": id.provider_id, "key": id.key})
}

/// The display name of an optional path (`-` for stdin/stdout).
pub fn name(path: Option<&Path>) -> String {
    match path {
        Some(p) if p != Path::new("-") => p.display().to_string(),
        _ => "-".to_owned(),
    }
}

/// What a fresh [`DecryptionMaterials`] needs: provider, suite, context, required keys.
type Shell = (
    &'static envcrypt::crypto::CryptoProvider,
    envcrypt::AlgorithmSuite,
    envcrypt::EncryptionContext,
    std::collections::BTreeSet<String>,
);

/// A keyring that notes in the [`Book`] which of its keys opened a message.
pub struct Recording {
    inner: Arc<dyn Keyring>,
    /// The key its EDKs carry, when the spec names one.
    own: Option<KeyId>,
    book: &'static Book,
}

impl Recording {
    /// Wraps `inner` (of a spec naming `own`) when lines are wanted.
    pub fn wrap(inner: Arc<dyn Keyring>, own: Option<KeyId>) -> Arc<dyn Keyring> {
        match book() {
            Some(book) => Arc::new(Self { inner, own, book }),
            None => inner,
        }
    }

    /// Which EDK of `edks` the inner keyring opened.
    async fn which(&self, shell: Shell, edks: &[EncryptedDataKey]) -> Option<KeyId> {
        if let Some(own) = &self.own {
            if edks.iter().any(|e| key_id::of_edk(e) == *own) {
                return Some(own.clone());
            }
        }
        // A KMS key named by alias or discovery: the EDK is the one KMS EDK, or the first
        // that opens on its own.
        let kms: Vec<&EncryptedDataKey> = edks
            .iter()
            .filter(|e| e.provider_id == key_id::KMS_PROVIDER_ID)
            .collect();
        if let [one] = kms[..] {
            return Some(key_id::of_edk(one));
        }
        for edk in kms {
            let mut fresh = DecryptionMaterials::new(shell.0, shell.1, shell.2.clone());
            fresh.required_context_keys = shell.3.clone();
            if let Ok(m) = self
                .inner
                .on_decrypt(fresh, std::slice::from_ref(edk))
                .await
            {
                if m.data_key.is_some() {
                    return Some(key_id::of_edk(edk));
                }
            }
        }
        None
    }
}

#[async_trait]
impl Keyring for Recording {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        self.inner.on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        let had = materials.data_key.is_some();
        let done = self.inner.on_decrypt(materials, edks).await?;
        if !had && done.data_key.is_some() {
            let shell = (
                done.provider,
                done.suite,
                done.encryption_context.clone(),
                done.required_context_keys.clone(),
            );
            if let Some(id) = self.which(shell, edks).await {
                self.book.insert(edks, id);
            }
        }
        Ok(done)
    }
}

/// Keeps the first bytes written through it (an encrypted message's header, for its line).
pub struct Capture<W> {
    pub inner: W,
    pub head: Vec<u8>,
}

/// Bytes kept by [`Capture`]: enough for any header this tool writes.
const CAPTURE: usize = 1 << 20;

impl<W: Write> Write for Capture<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let room = CAPTURE.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..room]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The header at the start of `bytes`, if it parses.
pub fn header_of(mut bytes: &[u8]) -> Option<Header> {
    crate::inspect::read_header(&mut bytes, "output")
        .ok()
        .map(|p| p.header)
}

/// The header of the message file at `path`, if it parses.
pub fn header_of_file(path: &Path) -> Option<Header> {
    let mut f = File::open(path).ok()?;
    crate::inspect::read_header(&mut f, "output")
        .ok()
        .map(|p| p.header)
}

/// Appends the line of one operation of `op` (`encrypt`, `decrypt`, `rewrap`) from `input`
/// to `output`. An encrypted message's header comes from `done` or, failing that, from the
/// file at `written` (the output, still reachable).
pub fn record_done(
    op: &'static str,
    input: &str,
    output: &str,
    written: Option<&Path>,
    result: &Result<crate::crypt::Done, AppError>,
) -> Result<(), AppError> {
    if !enabled() {
        return Ok(());
    }
    let done = result.as_ref().ok();
    let read;
    let header = match (done.and_then(|d| d.header.as_ref()), written) {
        (Some(h), _) => Some(h),
        (None, Some(path)) if done.is_some() => {
            read = header_of_file(path);
            read.as_ref()
        }
        _ => None,
    };
    let opened = match op {
        "decrypt" => done.and_then(|d| d.header.as_ref()),
        "rewrap" => done.and_then(|d| d.source.as_ref()),
        _ => None,
    };
    record(Line {
        op,
        input,
        output,
        header,
        opened,
        error: result.as_ref().err(),
    })
}
