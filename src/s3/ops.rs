//! The client's S3 calls: async [`Client::encrypt_to_s3`] and [`Client::decrypt_from_s3`]
//! for services, and the blocking [`Client::decrypt_to_s3`] and
//! [`Client::decrypt_s3_range`].

use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{S3Client, S3Object, UploadOptions, Written};
use crate::client::{Client, DecryptOptions};
use crate::client_async::off_executor;
use crate::error::Error;
use crate::format::{EncryptionContext, Header};
use crate::pipeline::{PipelineOptions, StreamStats};
use crate::policy::ReleasePolicy;

/// How an S3 call runs: the pipeline, the upload, progress and cancellation.
///
/// ```
/// use std::sync::{Arc, atomic::AtomicBool};
/// use envcrypt::s3::{S3Options, UploadOptions};
/// let cancel = Arc::new(AtomicBool::new(false));
/// let options = S3Options::default()
///     .with_upload(UploadOptions::default().with_concurrency(8))
///     .with_progress(Arc::new(|read| eprintln!("{read} bytes")))
///     .with_cancel(cancel.clone());
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct S3Options {
    /// Threads and frames in flight.
    pub pipeline: PipelineOptions,
    /// How the object is written (uploads only).
    pub upload: UploadOptions,
    /// Called with the number of input bytes read so far, after every read.
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Once set, the call stops at its next read with [`Error::Cancelled`]; an upload is
    /// aborted (no object appears).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl S3Options {
    /// Sets [`pipeline`](Self::pipeline).
    pub fn with_pipeline(mut self, pipeline: PipelineOptions) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Sets [`upload`](Self::upload).
    pub fn with_upload(mut self, upload: UploadOptions) -> Self {
        self.upload = upload;
        self
    }

    /// Sets [`progress`](Self::progress).
    pub fn with_progress(mut self, progress: Arc<dyn Fn(u64) + Send + Sync>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Sets [`cancel`](Self::cancel).
    pub fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("pipeline", &self.pipeline)
            .field("upload", &self.upload)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// What an upload to S3 did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToS3 {
    /// Bytes read and written by the pipeline.
    pub stats: StreamStats,
    /// The new object.
    pub written: Written,
}

/// What a download from S3 did.
#[derive(Debug)]
#[non_exhaustive]
pub struct FromS3<W> {
    /// The output, given back.
    pub output: W,
    /// The message's authenticated header.
    pub header: Header,
    /// Bytes read and written by the pipeline.
    pub stats: StreamStats,
}

/// Counts what is read, reports it, and refuses to read once cancelled (by the caller, or
/// because the future that waited for the work was dropped).
struct Watched<R> {
    inner: R,
    read: u64,
    progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    cancel: Option<Arc<AtomicBool>>,
    abandoned: Arc<AtomicBool>,
    refused: Arc<AtomicBool>,
}

impl<R> Watched<R> {
    fn new(inner: R, options: &S3Options) -> Self {
        Self {
            inner,
            read: 0,
            progress: options.progress.clone(),
            cancel: options.cancel.clone(),
            abandoned: Arc::new(AtomicBool::new(false)),
            refused: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops the work at its next read when dropped: an abandoned call leaves no object.
    fn guard(&self) -> StopOnDrop {
        StopOnDrop(self.abandoned.clone())
    }
}

/// Sets its flag when dropped (with the future of an async call).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cancelled = self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed));
        if cancelled || self.abandoned.load(Ordering::Relaxed) {
            self.refused.store(true, Ordering::Relaxed);
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(p) = &self.progress {
            p(self.read);
        }
        Ok(n)
    }
}

/// `result`, or [`Error::Cancelled`] if a read was refused for that.
fn unless_cancelled<T>(refused: &AtomicBool, result: Result<T, Error>) -> Result<T, Error> {
    match result {
        Err(_) if refused.load(Ordering::Relaxed) => Err(Error::Cancelled),
        other => other.map_err(super::error::lift),
    }
}

impl Client {
    /// Encrypts all of `input` into the new object `to` (feature `aws-s3`): a streaming
    /// (multipart) upload that appears only once the whole message is in it, and is aborted
    /// on any failure. By default an existing object is not replaced
    /// ([`UploadOptions::condition`]).
    ///
    /// The reading and sealing run on tokio's blocking pool (off the executor), the S3
    /// calls on the [`S3Client`]'s runtime. From async code with an `AsyncRead` body, wrap
    /// it in `tokio_util::io::SyncIoBridge`.
    pub async fn encrypt_to_s3<R: Read + Send + 'static>(
        &self,
        s3: &S3Client,
        input: R,
        to: &S3Object,
        context: &EncryptionContext,
        options: S3Options,
    ) -> Result<ToS3, Error> {
        let (client, s3, to, context) = (self.clone(), s3.clone(), to.clone(), context.clone());
        let input = Watched::new(input, &options);
        // Dropping this future stops the work at its next read; the upload is aborted.
        let _stop = input.guard();
        off_executor(
            move || {
                let refused = input.refused.clone();
                let result = s3.write_object(&to, &options.upload, |upload| {
                    client.encrypt_stream(input, upload, &context, &options.pipeline)
                });
                let (stats, written) = unless_cancelled(&refused, result)?;
                Ok(ToS3 { stats, written })
            },
            drop,
        )
        .await
    }

    /// Decrypts the object `from` into `output` (feature `aws-s3`), streaming: one
    /// `GetObject` feeds the pipeline. What reaches `output` follows
    /// [`DecryptOptions::release`](crate::DecryptOptions) as in
    /// [`decrypt_stream`](Self::decrypt_stream); on an error, discard the output.
    pub async fn decrypt_from_s3<W: Write + Send + 'static>(
        &self,
        s3: &S3Client,
        from: &S3Object,
        output: W,
        decrypt: &DecryptOptions,
        options: S3Options,
    ) -> Result<FromS3<W>, Error> {
        let reader = s3.get_async(from, None).await?;
        let (client, decrypt) = (self.clone(), decrypt.clone());
        let input = Watched::new(reader, &options);
        let _stop = input.guard();
        off_executor(
            move || {
                let refused = input.refused.clone();
                let mut output = output;
                let result = client.decrypt_stream(input, &mut output, &decrypt, &options.pipeline);
                let (header, stats) = unless_cancelled(&refused, result)?;
                Ok(FromS3 {
                    output,
                    header,
                    stats,
                })
            },
            drop,
        )
        .await
    }

    /// Decrypts all of `input` into the new object `to`: PLAINTEXT in a bucket. The object
    /// appears only after the whole message verified (so frames go to the upload as they
    /// verify); any failure aborts the upload. Blocking: call it off the executor.
    pub fn decrypt_to_s3<R: Read>(
        &self,
        s3: &S3Client,
        input: R,
        to: &S3Object,
        decrypt: &DecryptOptions,
        options: &S3Options,
    ) -> Result<(Header, ToS3), Error> {
        let input = Watched::new(input, options);
        let refused = input.refused.clone();
        let result = s3.write_object(to, &options.upload, |upload| {
            // Nothing is published before `finish`: no need to hold frames back.
            let release = ReleasePolicy::UnverifiedStream;
            self.decrypt_stream_with(input, upload, decrypt, &options.pipeline, release)
        });
        let ((header, stats), written) = unless_cancelled(&refused, result)?;
        Ok((header, ToS3 { stats, written }))
    }

    /// [`decrypt_range`](Self::decrypt_range) of an object: fetches the header and only the
    /// frames that hold `range` (unsigned framed messages). Blocking.
    pub fn decrypt_s3_range(
        &self,
        s3: &S3Client,
        from: &S3Object,
        range: Range<u64>,
        decrypt: &DecryptOptions,
    ) -> Result<Vec<u8>, Error> {
        self.decrypt_range(s3.ranged(from)?, range, decrypt)
            .map_err(super::error::lift)
    }
}
