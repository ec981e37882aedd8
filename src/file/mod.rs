//! File to file encryption and decryption: atomic, synced, through the frame pipeline.
//!
//! The output appears under its name only when the whole operation succeeded, complete and
//! synced to disk, so a failed decrypt leaves no partial plaintext and an existing file is
//! never half-overwritten. The input is only read.
//!
//! While it is written, the output is:
//! - on Linux, an unnamed file in the destination directory (`O_TMPFILE`), linked into
//!   place on success. No name refers to it before, so a crash or `kill -9` mid-run leaves
//!   nothing on disk (the kernel frees it with its last descriptor);
//! - elsewhere, or on a filesystem without unnamed files, a hidden `.envcrypt-*.tmp` in the
//!   destination directory, renamed into place on success and removed on failure. A crash
//!   leaves it behind; the next run in that directory removes it once it is an hour old and
//!   no live run holds it locked (see `stale.rs` for the exact rule).
//!
//! Outputs get mode 0600 (Unix): decrypted ones are plaintext. After putting the output in
//! place the directory is synced, and a failure of that sync is returned as an error (the
//! output is then in place, but may not survive a power loss).
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

use tracing::debug;

use crate::client::{Client, DecryptOptions};
use crate::error::Error;
use crate::format::{EncryptionContext, Header};
use crate::pipeline::{PipelineOptions, StreamStats};
use crate::policy::ReleasePolicy;

mod atomic;
mod named;
mod stale;
#[cfg(target_os = "linux")]
mod unnamed;
mod writeback;

use atomic::{Pending, Placement};
use writeback::with_early_writeback;
pub(crate) use writeback::EarlyWriteback;

/// How a file operation runs.
///
/// ```
/// use std::sync::atomic::AtomicBool;
/// use envcrypt::file::FileOptions;
/// use envcrypt::pipeline::PipelineOptions;
///
/// let cancel = AtomicBool::new(false);
/// let options = FileOptions::default()
///     .with_pipeline(PipelineOptions::single_threaded())
///     .with_overwrite(true)
///     .with_cancel(&cancel);
/// assert!(options.overwrite);
/// ```
#[derive(Default)]
#[non_exhaustive]
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

impl<'a> FileOptions<'a> {
    /// Sets [`pipeline`](Self::pipeline).
    pub fn with_pipeline(mut self, pipeline: PipelineOptions) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Sets [`overwrite`](Self::overwrite).
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Reports progress to `progress` (see [`progress`](Self::progress)).
    pub fn with_progress(mut self, progress: &'a (dyn Fn(u64) + Sync)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Stops once `cancel` is set (see [`cancel`](Self::cancel)).
    pub fn with_cancel(mut self, cancel: &'a AtomicBool) -> Self {
        self.cancel = Some(cancel);
        self
    }
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

/// Runs `work` from `input` into a new file in `output`'s directory, then syncs it and puts
/// it into place (see [`crate::file`]). On any error nothing is left at `output` or beside it.
pub(crate) fn atomically<T>(
    input: &Path,
    output: &Path,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut dyn Read, &mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    atomically_with(Placement::Auto, input, output, options, work)
}

/// [`atomically`], with the kind of output file chosen.
fn atomically_with<T>(
    placement: Placement,
    input: &Path,
    output: &Path,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut dyn Read, &mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    atomically_to(placement, input, output, false, options, work)
}

/// Runs `work` from `path` into a new file beside it, then syncs it and renames it over
/// `path`: a crash at any instant leaves the old file or the new one, whole (see
/// [`crate::file`]). On any error `path` is untouched.
pub(crate) fn replace_atomically<T>(
    path: &Path,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut dyn Read, &mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let options = FileOptions {
        pipeline: options.pipeline.clone(),
        overwrite: true,
        progress: options.progress,
        cancel: options.cancel,
    };
    atomically_to(Placement::Auto, path, path, true, &options, work)
}

/// [`atomically_with`]; `in_place` allows (and expects) the output to be the input.
fn atomically_to<T>(
    placement: Placement,
    input: &Path,
    output: &Path,
    in_place: bool,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut dyn Read, &mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let source = File::open(input)?;
    if !in_place && same_file(input, output) {
        return Err(
            io::Error::new(io::ErrorKind::InvalidInput, "the output is the input file").into(),
        );
    }
    let mut reader = Counting {
        // Reads of a frame or more go straight to the file; small frames (4 KiB, the
        // ESDKs' default) are read 64 KiB at a time instead of one syscall each.
        inner: io::BufReader::with_capacity(READ_AHEAD, source),
        read: 0,
        progress: options.progress,
        cancel: options.cancel,
        refused: false,
    };
    let refused = std::cell::Cell::new(false);
    let result = place_new(placement, output, options, |out| {
        let result = work(&mut reader, out);
        refused.set(reader.refused);
        result
    });
    match result {
        // Whatever the pipeline made of the refused read, the caller asked for this.
        Err(_) if refused.get() => Err(Error::Cancelled),
        result => result,
    }
}

/// Runs `work` into a new file in `output`'s directory, then syncs it and puts it into
/// place; on any error nothing is left at `output` or beside it.
fn place_new<T>(
    placement: Placement,
    output: &Path,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let Some(name) = output.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", output.display()),
        )
        .into());
    };
    if !options.overwrite && output.exists() {
        return Err(exists(output).into());
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut pending = Pending::create(dir, placement)?;
    stale::sweep_once(dir, pending.file());
    let value = with_early_writeback(pending.file(), work)?;
    pending.file().sync_all()?;
    // The last moment to stop: from here on the output exists.
    if is_set(options.cancel) {
        return Err(Error::Cancelled);
    }
    pending
        .place(output, name, options.overwrite)
        .map_err(|e| match e.kind() {
            // Created since the check above.
            io::ErrorKind::AlreadyExists if !options.overwrite => exists(output),
            _ => e,
        })?;
    Ok(value)
}

/// Writes the new file `output` from `work`, atomically (see [`crate::file`]): it appears,
/// synced, only if `work` returns `Ok`; on any error nothing is left at `output` or beside
/// it. For outputs whose input is not a file (an S3 object, a socket). Of `options`, the
/// pipeline and progress are `work`'s business; `overwrite` and `cancel` (checked before
/// the file is put into place) apply here.
///
/// ```
/// use std::io::Write;
/// use envcrypt::file::{write_atomically, FileOptions};
///
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("report.txt");
/// write_atomically(&out, &FileOptions::default(), |w| Ok(w.write_all(b"done")?))?;
/// assert_eq!(std::fs::read(&out)?, b"done");
/// let failed = write_atomically(&out.with_extension("x"), &FileOptions::default(), |w| {
///     w.write_all(b"half")?;
///     Err::<(), _>(envcrypt::Error::Cancelled)
/// });
/// assert!(failed.is_err() && !out.with_extension("x").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_atomically<T>(
    output: &Path,
    options: &FileOptions<'_>,
    work: impl FnOnce(&mut (dyn io::Write + Send)) -> Result<T, Error>,
) -> Result<T, Error> {
    debug!(output = %output.display(), "write_atomically");
    place_new(Placement::Auto, output, options, |out| work(out))
}

/// The refusal to replace `output`.
fn exists(output: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} exists", output.display()),
    )
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
        debug!(input = %input.display(), output = %output.display(), "encrypt_file");
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
        debug!(input = %input.display(), output = %output.display(), "decrypt_file");
        atomically(input, output, options, |r, w| {
            // The output is private until renamed into place: no need to hold frames back.
            let release = ReleasePolicy::UnverifiedStream;
            self.decrypt_stream_with(r, w, decrypt, &options.pipeline, release)
        })
    }
}

#[cfg(test)]
mod tests;
