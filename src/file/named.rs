//! The output as a named temporary file (`.envcrypt-*.tmp`) in the destination directory,
//! renamed into place once complete: off Linux, and on Linux filesystems without unnamed
//! files. A crash leaves the temporary file; the next run removes it (see [`super::stale`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::stale::{PREFIX, SUFFIX};

/// A named temporary output, locked (see [`super::stale`]) and removed if dropped.
pub(super) struct Named {
    tmp: tempfile::NamedTempFile,
    dir: PathBuf,
}

impl Named {
    /// Creates the temporary file in `dir` (mode 0600 on Unix).
    pub(super) fn create(dir: &Path) -> io::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(PREFIX)
            .suffix(SUFFIX)
            .tempfile_in(dir)?;
        // Tells a sweep in another process that this file is live. Without locks on this
        // filesystem the sweep goes by the file's age alone.
        let _ = tmp.as_file().try_lock();
        Ok(Self {
            tmp,
            dir: dir.to_path_buf(),
        })
    }

    /// The file being written.
    pub(super) fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Renames the (synced) file to `output` (refusing an existing file unless
    /// `overwrite`), then syncs the directory so that the rename survives a power loss.
    /// An error from that last sync means the output is in place but may not last.
    pub(super) fn place(self, output: &Path, overwrite: bool) -> io::Result<()> {
        let placed = if overwrite {
            self.tmp.persist(output)
        } else {
            self.tmp.persist_noclobber(output)
        };
        // On failure the temporary file is removed with the error's handle.
        drop(placed.map_err(|e| e.error)?);
        sync_dir(&self.dir)
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Elsewhere (Windows) a directory cannot be opened as a file to sync it: the rename is
/// left to the filesystem.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
