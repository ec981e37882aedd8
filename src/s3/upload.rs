//! [`S3Upload`]: a `Write` that streams into one S3 object, which appears only when the
//! upload is finished.
//!
//! Bytes are cut into parts; a driver task on the client's runtime uploads up to
//! [`UploadOptions::concurrency`] parts at a time while the writer fills the next. An
//! object that fits in one part is written with one `PutObject`; a larger one is a
//! multipart upload, completed by [`S3Upload::finish`]. Anything else (an error, a dropped
//! writer, [`S3Upload::abort`]) aborts the multipart upload: no object appears and no
//! parts are left behind. Only a killed process can leave parts behind, never an object:
//! a bucket lifecycle rule (`AbortIncompleteMultipartUpload`) removes those.
//!
//! Memory is bounded by a few parts: the one being filled, one queued and the ones in
//! flight.

use std::collections::HashMap;
use std::io::{self, Write};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{S3Client, S3Error, S3Object};
use crate::error::Error;

/// The smallest part (and the whole object written in one request below it).
pub const MIN_PART_SIZE: usize = 8 << 20;
/// S3's largest part.
const MAX_PART_SIZE: u64 = 5 << 30;
/// S3's most parts in one upload.
const MAX_PARTS: u32 = 10_000;
/// Parts of one size before the size doubles, when the input's size is not known.
const PARTS_PER_SIZE: u32 = 1_000;

/// When a write may replace an existing object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteCondition {
    /// Only if no object has the key (`If-None-Match: *`): the default.
    #[default]
    IfAbsent,
    /// Only if the object still has this ETag (`If-Match`): for replacing an object read
    /// earlier, e.g. an in-place rewrap.
    IfMatch(String),
    /// Whatever is there.
    Overwrite,
}

/// How an object is uploaded.
///
/// ```
/// use envcrypt::s3::{UploadOptions, WriteCondition};
/// let options = UploadOptions::default()
///     .with_size_hint(3 << 30)
///     .with_condition(WriteCondition::Overwrite);
/// assert_eq!(options.concurrency, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UploadOptions {
    /// The expected size of the object, if known: parts are then sized so that it fits in
    /// about 9,000 of them (never under [`MIN_PART_SIZE`]). Without it parts start at
    /// [`MIN_PART_SIZE`] and double every 1,000 parts, so input of any length fits.
    pub size_hint: Option<u64>,
    /// Parts uploaded at the same time (default 4; at least 1).
    pub concurrency: usize,
    /// When an existing object may be replaced (default: never).
    pub condition: WriteCondition,
    /// User metadata (`x-amz-meta-*`) of the new object. Never put context values or key
    /// material here: metadata is not encrypted.
    pub metadata: HashMap<String, String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            size_hint: None,
            concurrency: 4,
            condition: WriteCondition::IfAbsent,
            metadata: HashMap::new(),
        }
    }
}

impl UploadOptions {
    /// Sets [`size_hint`](Self::size_hint).
    pub fn with_size_hint(mut self, size: u64) -> Self {
        self.size_hint = Some(size);
        self
    }

    /// Sets [`concurrency`](Self::concurrency).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets [`condition`](Self::condition).
    pub fn with_condition(mut self, condition: WriteCondition) -> Self {
        self.condition = condition;
        self
    }

    /// Adds one pair of user metadata (see [`metadata`](Self::metadata)).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// The object an upload made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written {
    /// Its ETag, as S3 returned it (quoted).
    pub etag: Option<String>,
    /// Its version, in a versioned bucket.
    pub version_id: Option<String>,
    /// Its size in bytes.
    pub bytes: u64,
    /// Parts uploaded (0 for a single `PutObject`).
    pub parts: u32,
}

/// The size of part `number` (from 1) when the first parts are `base` bytes.
fn part_size(base: usize, number: u32) -> usize {
    let doublings = ((number.saturating_sub(1)) / PARTS_PER_SIZE).min(20);
    ((base as u64) << doublings).min(MAX_PART_SIZE) as usize
}

/// The first parts' size for `size_hint`: about 9,000 parts, at least [`MIN_PART_SIZE`],
/// a whole number of MiB.
fn base_part_size(size_hint: Option<u64>) -> usize {
    const MIB: u64 = 1 << 20;
    let wanted = size_hint.map_or(0, |s| s.div_ceil(9_000).div_ceil(MIB) * MIB);
    wanted.clamp(MIN_PART_SIZE as u64, MAX_PART_SIZE) as usize
}

enum Msg {
    Part(Vec<u8>),
    Last(Vec<u8>),
}

/// A `Write` into one new S3 object (see [`crate::s3`]).
///
/// [`finish`](Self::finish) is mandatory: it sends the last part and completes the upload;
/// until then no object exists. Dropping the writer, or [`abort`](Self::abort), aborts
/// the upload. Made by [`S3Client::upload`].
pub struct S3Upload {
    object: S3Object,
    buf: Vec<u8>,
    base: usize,
    parts_sent: u32,
    tx: Option<mpsc::Sender<Msg>>,
    driver: Option<tokio::task::JoinHandle<Result<Written, Error>>>,
}

impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Upload")
            .field("object", &self.object)
            .field("parts_sent", &self.parts_sent)
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// Starts writing `object` (see [`S3Upload`]). Nothing is sent before the first part
    /// is full, or [`finish`](S3Upload::finish).
    pub fn upload(&self, object: &S3Object, options: &UploadOptions) -> Result<S3Upload, Error> {
        let (tx, rx) = mpsc::channel(1);
        let driver = Driver {
            client: self.sdk_client().clone(),
            object: object.clone(),
            options: options.clone(),
            upload_id: None,
            running: JoinSet::new(),
            done: Vec::new(),
            bytes: 0,
        };
        let driver = self.handle()?.spawn(driver.run(rx));
        let base = base_part_size(options.size_hint);
        Ok(S3Upload {
            object: object.clone(),
            buf: Vec::with_capacity(base),
            base,
            parts_sent: 0,
            tx: Some(tx),
            driver: Some(driver),
        })
    }

    /// Runs `work` into a new upload of `object`, then finishes it; if `work` fails the
    /// upload is aborted and no object appears. When the upload itself failed (a part
    /// refused, the network), its error is returned rather than the writer's.
    ///
    /// ```no_run
    /// use envcrypt::s3::{S3Client, S3Object, UploadOptions};
    /// use envcrypt::{Client, EncryptionContext, keyring::RawAesKeyring};
    /// use envcrypt::pipeline::PipelineOptions;
    ///
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let s3 = S3Client::from_env()?;
    /// let image = std::fs::File::open("ct-0001.dcm")?;
    /// let object = S3Object::parse("s3://scans/ct-0001.dcm.enc")?;
    /// let (stats, written) = s3.write_object(&object, &UploadOptions::default(), |upload| {
    ///     client.encrypt_stream(image, upload, &EncryptionContext::new(), &PipelineOptions::default())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_object<T>(
        &self,
        object: &S3Object,
        options: &UploadOptions,
        work: impl FnOnce(&mut S3Upload) -> Result<T, Error>,
    ) -> Result<(T, Written), Error> {
        let mut upload = self.upload(object, options)?;
        match work(&mut upload) {
            Ok(value) => Ok((value, upload.finish()?)),
            Err(e) => Err(upload.abort().unwrap_or(super::error::lift(e))),
        }
    }
}

impl S3Upload {
    /// The object being written.
    pub fn object(&self) -> &S3Object {
        &self.object
    }

    /// Sends the last part and completes the upload, blocking until the object exists.
    /// Call it from a thread that may block; in async code use
    /// [`finish_async`](Self::finish_async).
    pub fn finish(mut self) -> Result<Written, Error> {
        let driver = self.send_last()?;
        crate::block_on(driver).unwrap_or_else(|e| Err(lost(&self.object, e)))
    }

    /// [`finish`](Self::finish), awaited.
    pub async fn finish_async(mut self) -> Result<Written, Error> {
        let driver = self.send_last()?;
        driver.await.unwrap_or_else(|e| Err(lost(&self.object, e)))
    }

    /// Aborts the upload and waits until it is aborted (no object, no parts left). Returns
    /// the upload's own error if it had failed before.
    pub fn abort(mut self) -> Option<Error> {
        drop(self.tx.take());
        let driver = self.driver.take()?;
        match crate::block_on(driver) {
            Ok(Err(Error::Cancelled)) | Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(lost(&self.object, e)),
        }
    }

    /// Queues the buffered bytes as the last part; returns the driver to wait for.
    fn send_last(&mut self) -> Result<tokio::task::JoinHandle<Result<Written, Error>>, Error> {
        let last = std::mem::take(&mut self.buf);
        let sent = self
            .tx
            .take()
            .is_some_and(|tx| crate::block_on(tx.send(Msg::Last(last))).is_ok());
        let driver = self
            .driver
            .take()
            .ok_or(Error::Internal("upload already finished"))?;
        if !sent {
            // The driver stopped early: its error says why.
            return match crate::block_on(driver) {
                Ok(Err(e)) => Err(e),
                Ok(Ok(_)) => Err(Error::Internal("upload completed before its last part")),
                Err(e) => Err(lost(&self.object, e)),
            };
        }
        Ok(driver)
    }

    /// Sends the full buffer as the next part.
    fn send_part(&mut self) -> io::Result<()> {
        self.parts_sent += 1;
        if self.parts_sent >= MAX_PARTS {
            return Err(io::Error::other(S3Error::local(
                "UploadPart",
                &self.object,
                format!("more than {MAX_PARTS} parts"),
            )));
        }
        let next = Vec::with_capacity(part_size(self.base, self.parts_sent + 1));
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("upload closed"))?;
        // A closed channel means the driver failed; finish or abort returns its error.
        crate::block_on(tx.send(Msg::Part(full)))
            .map_err(|_| io::Error::other(format!("the upload of {} failed", self.object)))
    }
}

impl Write for S3Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.buf.capacity() - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.buf.capacity() {
            self.send_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        drop(self.tx.take());
        // Outside async code, wait for the abort so that it is done when we return.
        if let Some(driver) = self.driver.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = crate::block_on(driver);
            }
        }
    }
}

fn lost(object: &S3Object, e: tokio::task::JoinError) -> Error {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    S3Error::local("upload", object, format!("the upload task stopped: {e}")).into()
}

/// The task that uploads the parts.
struct Driver {
    client: aws_sdk_s3::Client,
    object: S3Object,
    options: UploadOptions,
    upload_id: Option<String>,
    running: JoinSet<Result<CompletedPart, Error>>,
    done: Vec<CompletedPart>,
    bytes: u64,
}

impl Driver {
    async fn run(mut self, rx: mpsc::Receiver<Msg>) -> Result<Written, Error> {
        let result = self.upload(rx).await;
        if result.is_err() {
            self.running.abort_all();
            if let Some(id) = self.upload_id.take() {
                let aborted = self
                    .client
                    .abort_multipart_upload()
                    .bucket(self.object.bucket())
                    .key(self.object.key())
                    .upload_id(id)
                    .send()
                    .await;
                if let Err(e) = aborted {
                    let e = S3Error::sdk("AbortMultipartUpload", &self.object, e);
                    tracing::warn!(error = %e, "could not abort a multipart upload");
                }
            }
        }
        result
    }

    async fn upload(&mut self, mut rx: mpsc::Receiver<Msg>) -> Result<Written, Error> {
        let mut number = 0;
        loop {
            let msg = if self.running.is_empty() {
                rx.recv().await
            } else {
                tokio::select! {
                    biased;
                    Some(joined) = self.running.join_next() => {
                        self.joined(joined)?;
                        continue;
                    }
                    msg = rx.recv() => msg,
                }
            };
            match msg {
                // The writer went away without finishing.
                None => return Err(Error::Cancelled),
                Some(Msg::Part(part)) => {
                    if self.upload_id.is_none() {
                        self.upload_id = Some(self.create().await?);
                    }
                    while self.running.len() >= self.options.concurrency.max(1) {
                        let joined = self.running.join_next().await.expect("running");
                        self.joined(joined)?;
                    }
                    number += 1;
                    self.spawn_part(number, part);
                }
                Some(Msg::Last(last)) => {
                    if self.upload_id.is_none() {
                        return self.put(last).await;
                    }
                    if !last.is_empty() {
                        number += 1;
                        self.spawn_part(number, last);
                    }
                    while let Some(joined) = self.running.join_next().await {
                        self.joined(joined)?;
                    }
                    return self.complete().await;
                }
            }
        }
    }

    fn joined(
        &mut self,
        joined: Result<Result<CompletedPart, Error>, tokio::task::JoinError>,
    ) -> Result<(), Error> {
        let part = joined.map_err(|e| lost(&self.object, e))??;
        self.done.push(part);
        Ok(())
    }

    async fn create(&self) -> Result<String, Error> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(self.object.bucket())
            .key(self.object.key())
            .set_metadata(self.metadata())
            .send()
            .await
            .map_err(|e| S3Error::sdk("CreateMultipartUpload", &self.object, e))?;
        out.upload_id.ok_or_else(|| {
            S3Error::local("CreateMultipartUpload", &self.object, "no upload id".into()).into()
        })
    }

    fn spawn_part(&mut self, number: i32, part: Vec<u8>) {
        self.bytes += part.len() as u64;
        let call = self
            .client
            .upload_part()
            .bucket(self.object.bucket())
            .key(self.object.key())
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .part_number(number)
            .body(ByteStream::from(part));
        let object = self.object.clone();
        self.running.spawn(async move {
            let out = call
                .send()
                .await
                .map_err(|e| S3Error::sdk("UploadPart", &object, e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag)
                .part_number(number)
                .build())
        });
    }

    /// An object of one part: one `PutObject`, with the condition.
    async fn put(&mut self, body: Vec<u8>) -> Result<Written, Error> {
        let bytes = body.len() as u64;
        let mut call = self
            .client
            .put_object()
            .bucket(self.object.bucket())
            .key(self.object.key())
            .set_metadata(self.metadata())
            .body(ByteStream::from(body));
        match &self.options.condition {
            WriteCondition::IfAbsent => call = call.if_none_match("*"),
            WriteCondition::IfMatch(etag) => call = call.if_match(etag),
            WriteCondition::Overwrite => {}
        }
        let out = call
            .send()
            .await
            .map_err(|e| S3Error::sdk("PutObject", &self.object, e))?;
        Ok(Written {
            etag: out.e_tag,
            version_id: out.version_id,
            bytes,
            parts: 0,
        })
    }

    async fn complete(&mut self) -> Result<Written, Error> {
        self.check_condition().await?;
        self.done.sort_by_key(|p| p.part_number());
        let parts = self.done.len() as u32;
        let mut call = self
            .client
            .complete_multipart_upload()
            .bucket(self.object.bucket())
            .key(self.object.key())
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.done)))
                    .build(),
            );
        match &self.options.condition {
            WriteCondition::IfAbsent => call = call.if_none_match("*"),
            WriteCondition::IfMatch(etag) => call = call.if_match(etag),
            WriteCondition::Overwrite => {}
        }
        let out = call
            .send()
            .await
            .map_err(|e| S3Error::sdk("CompleteMultipartUpload", &self.object, e))?;
        self.upload_id = None;
        Ok(Written {
            etag: out.e_tag,
            version_id: out.version_id,
            bytes: self.bytes,
            parts,
        })
    }

    /// Checks the condition with a `HeadObject` before completing: servers that ignore
    /// conditions on `CompleteMultipartUpload` (some S3-compatible ones) are caught too,
    /// short of a write in between.
    async fn check_condition(&self) -> Result<(), Error> {
        let current = match &self.options.condition {
            WriteCondition::Overwrite => return Ok(()),
            _ => super::head(&self.client, &self.object).await?,
        };
        let holds = match (&self.options.condition, &current) {
            (WriteCondition::IfAbsent, None) => true,
            (WriteCondition::IfMatch(etag), Some(info)) => info.etag.as_deref() == Some(etag),
            _ => false,
        };
        if holds {
            return Ok(());
        }
        Err(S3Error::precondition(
            "CompleteMultipartUpload",
            &self.object,
            match current {
                Some(_) => "the object exists or changed",
                None => "the object is gone",
            },
        )
        .into())
    }

    fn metadata(&self) -> Option<HashMap<String, String>> {
        (!self.options.metadata.is_empty()).then(|| self.options.metadata.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_at_least_the_minimum_and_fit_any_size() {
        assert_eq!(base_part_size(None), MIN_PART_SIZE);
        assert_eq!(base_part_size(Some(1 << 30)), MIN_PART_SIZE);
        // 1 TiB in about 9,000 parts of a whole number of MiB.
        let tib = base_part_size(Some(1 << 40));
        assert_eq!(tib % (1 << 20), 0);
        assert!((1u64 << 40).div_ceil(tib as u64) <= 9_000);
        // Unknown size: 1,000 parts of each size, doubling; 10,000 parts hold S3's 5 TiB.
        assert_eq!(part_size(MIN_PART_SIZE, 1000), MIN_PART_SIZE);
        assert_eq!(part_size(MIN_PART_SIZE, 1001), 2 * MIN_PART_SIZE);
        let total: u64 = (1..MAX_PARTS)
            .map(|n| part_size(MIN_PART_SIZE, n) as u64)
            .sum();
        assert!(total >= 5 << 40, "{total}");
        assert!(part_size(MIN_PART_SIZE, MAX_PARTS) as u64 <= MAX_PART_SIZE);
    }
}
