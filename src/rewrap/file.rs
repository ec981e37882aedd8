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

#[cfg(feature = "tokio")]
mod non_blocking {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::super::{Rewrap, Rewrapped};
    use crate::error::Error;
    use crate::file::FileOptions;
    use crate::pipeline::PipelineOptions;

    /// Sets the flag when dropped: a dropped future stops its blocking task.
    struct CancelOnDrop(Arc<AtomicBool>);

    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    impl Rewrap<'_> {
        /// [`file`](Self::file) for async callers: runs on tokio's blocking pool (as
        /// `tokio::fs` does). Dropping the future cancels the rewrap at its next read, and
        /// no output is created.
        pub async fn file_async(
            &self,
            input: impl AsRef<Path>,
            output: impl AsRef<Path>,
            pipeline: &PipelineOptions,
        ) -> Result<Rewrapped, Error> {
            let output = output.as_ref().to_path_buf();
            self.on_blocking_pool(input.as_ref(), pipeline, move |rewrap, input, options| {
                rewrap.file(input, &output, options)
            })
            .await
        }

        /// [`file_in_place`](Self::file_in_place) for async callers (see
        /// [`file_async`](Self::file_async)).
        pub async fn file_in_place_async(
            &self,
            path: impl AsRef<Path>,
            pipeline: &PipelineOptions,
        ) -> Result<Rewrapped, Error> {
            self.on_blocking_pool(path.as_ref(), pipeline, |rewrap, path, options| {
                rewrap.file_in_place(path, options)
            })
            .await
        }

        async fn on_blocking_pool(
            &self,
            input: &Path,
            pipeline: &PipelineOptions,
            work: impl FnOnce(&Rewrap<'_>, &Path, &FileOptions<'_>) -> Result<Rewrapped, Error>
                + Send
                + 'static,
        ) -> Result<Rewrapped, Error> {
            let (from, to) = (self.from.clone(), self.to.clone());
            let options = self.options.clone();
            let input: PathBuf = input.to_path_buf();
            let pipeline = pipeline.clone();
            let cancel = Arc::new(AtomicBool::new(false));
            let _guard = CancelOnDrop(Arc::clone(&cancel));
            let task = tokio::task::spawn_blocking(move || {
                let rewrap = Rewrap::new(&from, &to).with_options(options);
                let file_options = FileOptions::default()
                    .with_pipeline(pipeline)
                    .with_cancel(&cancel);
                work(&rewrap, &input, &file_options)
            });
            task.await
                .unwrap_or(Err(Error::Internal("the rewrap task panicked")))
        }
    }
}
