//! File to file encryption and decryption: atomic, synced, through the frame pipeline.
//!
//! The output is written to a temporary file in the destination's directory, synced, and
//! renamed into place only when the whole operation succeeded, so a failed decrypt leaves no
//! partial plaintext and an existing file is never half-overwritten. The input is only read.
//!
//! The disk starts taking the output every 2 MiB while the pipeline runs (early writeback),
//! so the final sync has little left to do.
//!
//! ```
//! use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
//! use envcrypt::file::FileOptions;
//!
//! let dir = tempfile::tempdir()?;
//! let (image, sealed, back) = (dir.path().join("a.dcm"), dir.path().join("a.enc"), dir.path().join("b.dcm"));
//! std::fs::write(&image, b"DICM...")?;
//! let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
//! client.encrypt_file(&image, &sealed, &EncryptionContext::new(), &FileOptions::default())?;
//! client.decrypt_file(&sealed, &back, &DecryptOptions::default(), &FileOptions::default())?;
//! assert_eq!(std::fs::read(&back)?, b"DICM...");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::client::{Client, DecryptOptions};
use crate::error::Error;
use crate::format::{EncryptionContext, Header};
use crate::pipeline::{PipelineOptions, StreamStats};
use crate::policy::ReleasePolicy;

/// How a file operation runs.
#[derive(Default)]
pub struct FileOptions<'a> {
    /// Threads and frames in flight.
    pub pipeline: PipelineOptions,
    /// Replace an existing output file (default: refuse).
    pub overwrite: bool,
    /// Called with the number of input bytes read so far, after every read.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// Once set, the operation stops at its next read (or before the output is renamed
    /// into place) with [`Error::Cancelled`], and no output is created (set it from a
    /// Ctrl-C handler, say).
    pub cancel: Option<&'a AtomicBool>,
}

impl std::fmt::Debug for FileOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOptions")
            .field("pipeline", &self.pipeline)
            .field("overwrite", &self.overwrite)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// Counts the bytes read and reports them; fails once cancelled.
struct Counting<'a, R> {
    inner: R,
    read: u64,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    cancel: Option<&'a AtomicBool>,
    /// A read was refused because of `cancel`.
    refused: bool,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if is_set(self.cancel) {
            self.refused = true;
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(p) = self.progress {
            p(self.read);
        }
        Ok(n)
    }
}

/// Reads smaller than this are gathered into reads of this size.
const READ_AHEAD: usize = 64 << 10;

/// Output bytes between two early writebacks (see [`EarlyWriteback`]).
const WRITEBACK_EVERY: u64 = 2 << 20;

/// Writes to the temporary file and, every [`WRITEBACK_EVERY`] bytes, asks a helper thread
/// to start writing what is written so far to disk. The disk then takes the data while the
/// pipeline works, so the sync that must precede the rename finds little left to write; the
/// writer never waits for the helper.
struct EarlyWriteback<'a> {
    file: &'a mut File,
    written: u64,
    since_writeback: u64,
    /// Wakes the helper with how far to write back; a full slot means a writeback is
    /// already pending, and the next one will cover this one's bytes.
    wake: std::sync::mpsc::SyncSender<u64>,
}

/// Early writeback stops at a multiple of this: the page the writer is still filling is
/// left alone (written back and dropped, it would have to be read again from disk before
/// the next write could complete it).
const WRITEBACK_ALIGN: u64 = 64 << 10;

impl EarlyWriteback<'_> {
    fn count(&mut self, written: usize) {
        self.written += written as u64;
        self.since_writeback += written as u64;
        if self.since_writeback >= WRITEBACK_EVERY {
            self.since_writeback = 0;
            let _ = self
                .wake
                .try_send(self.written / WRITEBACK_ALIGN * WRITEBACK_ALIGN);
        }
    }
}

impl io::Write for EarlyWriteback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.count(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.file.write_vectored(bufs)?;
        self.count(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts writing `file`'s first `len` bytes to disk without waiting for them or for the
/// journal commit an `fdatasync` forces on every call (`posix_fadvise(DONTNEED)`, which also
/// drops the pages already on disk: a multi-gigabyte output does not push other files out
/// of the page cache; only advice, so its outcome is not an error). The final sync waits
/// for what is left.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, len: u64) -> io::Result<()> {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, 0, Some(len), rustix::fs::Advice::DontNeed);
    }
    Ok(())
}

/// Elsewhere than Linux: `sync_data`, whose error counts (a later sync need not report it
/// again).
#[cfg(not(target_os = "linux"))]
fn start_writeback(file: &File, _len: u64) -> io::Result<()> {
    file.sync_data()
}

/// Runs `work` writing into `file`, with early writeback on a helper thread (see
/// [`EarlyWriteback`]). The first failed early writeback fails the operation.
fn with_early_writeback<T>(
    file: &mut File,
    work: impl FnOnce(&mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let syncer = file.try_clone()?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<u64>(1);
    let result = std::thread::scope(|s| {
        let helper = s.spawn(move || {
            while let Ok(len) = woken.recv() {
                start_writeback(&syncer, len)?;
            }
            Ok::<(), io::Error>(())
        });
        let mut out = EarlyWriteback {
            file,
            written: 0,
            since_writeback: 0,
            wake,
        };
        let result = work(&mut out);
        drop(out); // The only sender: the helper stops.
        let early = helper
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("writeback")));
        (result, early)
    });
    match result {
        (Ok(value), Ok(())) => Ok(value),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
    }
}

/// Runs `work` from `input` into a temporary file next to `output`, then syncs and renames
/// it into place. On any error the temporary file is removed.
fn atomically<T>(
    input: &Path,
    output: &Path,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut dyn Read, &mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let source = File::open(input)?;
    if same_file(input, output) {
        return Err(
            io::Error::new(io::ErrorKind::InvalidInput, "the output is the input file").into(),
        );
    }
    if !options.overwrite && output.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", output.display()),
        )
        .into());
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".envcrypt-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    let mut reader = Counting {
        // Reads of a frame or more go straight to the file; small frames (4 KiB, the
        // ESDKs' default) are read 64 KiB at a time instead of one syscall each.
        inner: io::BufReader::with_capacity(READ_AHEAD, source),
        read: 0,
        progress: options.progress,
        cancel: options.cancel,
        refused: false,
    };
    let value = match with_early_writeback(tmp.as_file_mut(), |out| work(&mut reader, out)) {
        // Whatever the pipeline made of the refused read, the caller asked for this.
        Err(_) if reader.refused => return Err(Error::Cancelled),
        result => result?,
    };
    tmp.as_file().sync_all()?;
    // The last moment to stop: from here on the output exists.
    if is_set(options.cancel) {
        return Err(Error::Cancelled);
    }
    if options.overwrite {
        tmp.persist(output).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(output).map_err(|e| e.error)?;
    }
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(value)
}

fn is_set(flag: Option<&AtomicBool>) -> bool {
    flag.is_some_and(|f| f.load(Ordering::Relaxed))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl Client {
    /// Encrypts the file `input` into `output` (atomically; see [`crate::file`]).
    pub fn encrypt_file(
        &self,
        input: &Path,
        output: &Path,
        context: &EncryptionContext,
        options: &FileOptions<'_>,
    ) -> Result<StreamStats, Error> {
        atomically(input, output, options, |r, w| {
            self.encrypt_stream(r, w, context, &options.pipeline)
        })
    }

    /// Decrypts the file `input` into `output` (atomically; see [`crate::file`]): the
    /// output appears only if the whole message verified.
    pub fn decrypt_file(
        &self,
        input: &Path,
        output: &Path,
        decrypt: &DecryptOptions,
        options: &FileOptions<'_>,
    ) -> Result<(Header, StreamStats), Error> {
        atomically(input, output, options, |r, w| {
            // The output is private until renamed into place: no need to hold frames back.
            let release = ReleasePolicy::UnverifiedStream;
            self.decrypt_stream_with(r, w, decrypt, &options.pipeline, release)
        })
    }
}
