//! Rewraps of files: to a new file, or in place, each atomic (see [`crate::file`]).

use std::path::Path;

use super::{Rewrap, Rewrapped};
use crate::error::Error;
use crate::file::{atomically, replace_atomically, FileOptions};

impl Rewrap<'_> {
    /// Rewraps the file `input` into a new file `output`. The output appears, complete and
    /// synced, only if the whole source verified; an existing `output` is kept unless
    /// [`FileOptions::overwrite`].
    ///
    /// ```
    /// use envcrypt::{Client, EncryptionContext, keyring::RawAesKeyring};
    /// use envcrypt::file::FileOptions;
    /// use envcrypt::rewrap::Rewrap;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (old_path, new_path) = (dir.path().join("scan.enc"), dir.path().join("scan.2026.enc"));
    /// let old = Client::new(RawAesKeyring::new("site", "key-2025", &[1; 32])?);
    /// let new = Client::new(RawAesKeyring::new("site", "key-2026", &[2; 32])?);
    /// std::fs::write(&old_path, old.encrypt(b"DICM", &EncryptionContext::new())?)?;
    /// Rewrap::new(&old, &new).file(&old_path, &new_path, &FileOptions::default())?;
    /// let message = std::fs::read(&new_path)?;
    /// assert_eq!(new.decrypt(&message, &Default::default())?.plaintext, b"DICM");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file(
        &self,
        input: &Path,
        output: &Path,
        options: &FileOptions<'_>,
    ) -> Result<Rewrapped, Error> {
        atomically(input, output, options, |r, w| {
            self.stream(r, w, &options.pipeline)
        })
    }

    /// Rewraps the file at `path` in place: the new message is written beside it, synced,
    /// and renamed over it only once the whole source verified, so a crash at any instant
    /// leaves the old message or the new one, whole. The new file has mode 0600 (Unix).
    pub fn file_in_place(
        &self,
        path: &Path,
        options: &FileOptions<'_>,
    ) -> Result<Rewrapped, Error> {
        replace_atomically(path, options, |r, w| self.stream(r, w, &options.pipeline))
    }
}
