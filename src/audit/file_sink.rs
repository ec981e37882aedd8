//! The JSON-lines file sink: chained lines, signed checkpoints, an fsync policy, and an
//! exclusive lock per append so that several processes can share one log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;

use super::auditor::{AuditError, AuditSink};
use super::event::{AuditEvent, CheckpointFields, Operation};
use super::key::AuditSigningKey;
use super::line::{self, LineError, GENESIS};
use crate::crypto::CryptoProvider;

/// When the sink asks the disk to keep what it wrote (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// After every event: nothing recorded is lost in a power cut; slowest.
    EveryEvent,
    /// After each checkpoint and at the end of a run (the default): a crash may lose the
    /// events since the last checkpoint, which verification then reports as unsigned.
    #[default]
    Checkpoints,
    /// Never (the operating system writes back in its own time).
    Never,
}

/// Options of [`JsonLinesSink`].
#[non_exhaustive]
pub struct JsonLinesOptions {
    /// A signed checkpoint after this many events of this process (and at its end), when a
    /// signing key is set. Default 1000.
    pub checkpoint_every: u64,
    /// When to fsync. Default [`FsyncPolicy::Checkpoints`].
    pub fsync: FsyncPolicy,
    /// The key that signs checkpoints; without one the log is chained but has no
    /// checkpoints (edits by someone who can rewrite the whole file are not caught).
    pub signing_key: Option<AuditSigningKey>,
}

impl Default for JsonLinesOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 1000,
            fsync: FsyncPolicy::default(),
            signing_key: None,
        }
    }
}

impl JsonLinesOptions {
    /// Signs checkpoints with `key`.
    pub fn with_signing_key(mut self, key: AuditSigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// A checkpoint every `n` events (at least 1).
    pub fn with_checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n.max(1);
        self
    }

    /// The fsync policy.
    pub fn with_fsync(mut self, fsync: FsyncPolicy) -> Self {
        self.fsync = fsync;
        self
    }
}

/// Appends events to a file as chained JSON lines (see [`super`] for the format and what it
/// proves). The file is created with mode 0600 and only ever appended to.
pub struct JsonLinesSink {
    path: PathBuf,
    provider: &'static CryptoProvider,
    options: JsonLinesOptions,
    state: Mutex<State>,
}

struct State {
    file: File,
    /// Events written by this process since its last checkpoint.
    since_checkpoint: u64,
    /// The end of the file as this process last saw it: length, last seq and hash.
    tail: Option<(u64, u64, String)>,
}

/// How far back the last line is looked for.
pub(crate) const MAX_LINE: u64 = 1 << 20;

impl JsonLinesSink {
    /// Opens (or creates) the log at `path` and checks that its last line is a chained line
    /// that can be appended to.
    pub fn open(
        path: impl AsRef<Path>,
        provider: &'static CryptoProvider,
        options: JsonLinesOptions,
    ) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let mut open = OpenOptions::new();
        open.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open.open(&path).map_err(|e| io_error(&path, e))?;
        let sink = Self {
            path,
            provider,
            options,
            state: Mutex::new(State {
                file,
                since_checkpoint: 0,
                tail: None,
            }),
        };
        sink.locked(|_, _| Ok(()))?;
        Ok(sink)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the file locked against other processes and its end read.
    fn locked(
        &self,
        f: impl FnOnce(&mut State, (u64, String)) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.file.lock().map_err(|e| io_error(&self.path, e))?;
        let result = self
            .read_tail(&mut state)
            .and_then(|end| f(&mut state, end));
        let unlocked = state.file.unlock().map_err(|e| io_error(&self.path, e));
        if result.is_err() {
            state.tail = None;
        }
        result.and(unlocked)
    }

    /// The last line's seq and hash (0 and the genesis hash for an empty log).
    fn read_tail(&self, state: &mut State) -> Result<(u64, String), AuditError> {
        let len = state
            .file
            .metadata()
            .map_err(|e| io_error(&self.path, e))?
            .len();
        if let Some((seen_len, seq, hash)) = &state.tail {
            if *seen_len == len {
                return Ok((*seq, hash.clone()));
            }
        }
        if len == 0 {
            state.tail = Some((0, 0, GENESIS.to_owned()));
            return Ok((0, GENESIS.to_owned()));
        }
        let window = len.min(MAX_LINE);
        let mut buf = vec![0; window as usize];
        state
            .file
            .seek(SeekFrom::Start(len - window))
            .and_then(|_| state.file.read_exact(&mut buf))
            .map_err(|e| io_error(&self.path, e))?;
        let damaged = |reason: &str| AuditError::Damaged {
            path: self.path.display().to_string(),
            reason: reason.to_owned(),
        };
        let Some(body) = buf.strip_suffix(b"\n") else {
            return Err(damaged("it ends in a partial line"));
        };
        let start = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if window == len => 0,
            None => return Err(damaged("its last line is longer than 1 MiB")),
        };
        let last = std::str::from_utf8(&body[start..])
            .map_err(|_| damaged("its last line is not UTF-8"))?;
        let opened = line::open(self.provider, last).map_err(|e| match e {
            LineError::Edited => damaged("its last line does not match its hash"),
            LineError::Malformed(why) => damaged(&format!("its last line is not chained: {why}")),
        })?;
        state.tail = Some((len, opened.seq, opened.hash.clone()));
        Ok((opened.seq, opened.hash))
    }

    /// Appends `event` as line `seq` after `prev`; returns the new hash.
    fn append(
        &self,
        state: &mut State,
        seq: u64,
        prev: &str,
        event: &AuditEvent,
    ) -> Result<String, AuditError> {
        let (text, hash) = line::seal(self.provider, seq, event, prev)?;
        state
            .file
            .write_all(text.as_bytes())
            .map_err(|e| io_error(&self.path, e))?;
        // Under the lock nobody else appends: the end is where this line ended.
        state.tail = state
            .tail
            .take()
            .map(|(len, _, _)| (len + text.len() as u64, seq, hash.clone()));
        Ok(hash)
    }

    /// Appends a checkpoint: a line signed whole (its `prev` commits to every line before).
    fn checkpoint(
        &self,
        state: &mut State,
        key: &AuditSigningKey,
        seq: u64,
        prev: &str,
    ) -> Result<(), AuditError> {
        let mut event = AuditEvent::new(Operation::Checkpoint);
        event.checkpoint = Some(CheckpointFields {
            public_key: key.verifying_key().spki_base64(),
            signature: None,
        });
        let signature = key.sign(line::body(seq, &event, prev)?.as_bytes())?;
        if let Some(fields) = event.checkpoint.as_mut() {
            fields.signature = Some(base64::engine::general_purpose::STANDARD.encode(signature));
        }
        self.append(state, seq, prev, &event)?;
        state.since_checkpoint = 0;
        if self.options.fsync != FsyncPolicy::Never {
            self.sync(state)?;
        }
        Ok(())
    }

    fn sync(&self, state: &State) -> Result<(), AuditError> {
        state.file.sync_data().map_err(|e| io_error(&self.path, e))
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.locked(|state, (seq, prev)| {
            let hash = self.append(state, seq + 1, &prev, event)?;
            state.since_checkpoint += 1;
            if self.options.fsync == FsyncPolicy::EveryEvent {
                self.sync(state)?;
            }
            match &self.options.signing_key {
                Some(key) if state.since_checkpoint >= self.options.checkpoint_every => {
                    self.checkpoint(state, key, seq + 2, &hash)
                }
                _ => Ok(()),
            }
        })
    }

    fn finish(&self) -> Result<(), AuditError> {
        self.locked(|state, (seq, prev)| match &self.options.signing_key {
            Some(key) if state.since_checkpoint > 0 => self.checkpoint(state, key, seq + 1, &prev),
            _ if self.options.fsync != FsyncPolicy::Never => self.sync(state),
            _ => Ok(()),
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}
