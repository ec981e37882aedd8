//! Reading objects: [`S3Reader`] streams one `GetObject`, [`S3RangeReader`] reads ranges on
//! demand (for [`Client::decrypt_range`](crate::Client::decrypt_range)), plus `HeadObject`
//! and listing.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{S3Client, S3Error, S3Object};
use crate::aws_runtime::AbortOnDrop;
use crate::error::Error;

/// What S3 says about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, quoted as S3 returns it.
    pub etag: Option<String>,
    /// Version, in a versioned bucket.
    pub version_id: Option<String>,
    /// User metadata (`x-amz-meta-*`), from `HeadObject` and `GetObject` only.
    pub metadata: HashMap<String, String>,
}

/// `HeadObject`: `None` if there is no such object.
pub(crate) async fn head(
    client: &aws_sdk_s3::Client,
    object: &S3Object,
) -> Result<Option<ObjectInfo>, Error> {
    let out = client
        .head_object()
        .bucket(object.bucket())
        .key(object.key())
        .set_version_id(object.version_id().map(str::to_owned))
        .send()
        .await;
    match out {
        Ok(out) => Ok(Some(ObjectInfo {
            key: object.key().to_owned(),
            size: out.content_length.unwrap_or(0).max(0) as u64,
            etag: out.e_tag,
            version_id: out.version_id,
            metadata: out.metadata.unwrap_or_default(),
        })),
        Err(e) => {
            let e = S3Error::sdk("HeadObject", object, e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
    }
}

impl S3Client {
    /// `HeadObject`: the object's size, ETag and metadata, or `None` if it does not exist.
    pub fn head(&self, object: &S3Object) -> Result<Option<ObjectInfo>, Error> {
        let (client, object) = (self.sdk_client().clone(), object.clone());
        self.block_on(async move { head(&client, &object).await })
    }

    /// `DeleteObject` (of the version, if pinned).
    pub fn delete(&self, object: &S3Object) -> Result<(), Error> {
        let call = self
            .sdk_client()
            .delete_object()
            .bucket(object.bucket())
            .key(object.key())
            .set_version_id(object.version_id().map(str::to_owned));
        let object = object.clone();
        self.block_on(async move {
            call.send()
                .await
                .map_err(|e| S3Error::sdk("DeleteObject", &object, e))?;
            Ok(())
        })
    }

    /// Every object under `prefix` in `bucket` (all pages of `ListObjectsV2`), in S3's
    /// order.
    pub fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, Error> {
        let client = self.sdk_client().clone();
        let (bucket, prefix) = (bucket.to_owned(), prefix.to_owned());
        self.block_on(async move {
            let listing = S3Object::new(&bucket, &prefix);
            let mut pages = client
                .list_objects_v2()
                .bucket(&bucket)
                .prefix(&prefix)
                .into_paginator()
                .send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| S3Error::sdk("ListObjectsV2", &listing, e))?;
                for o in page.contents.unwrap_or_default() {
                    found.push(ObjectInfo {
                        key: o.key.unwrap_or_default(),
                        size: o.size.unwrap_or(0).max(0) as u64,
                        etag: o.e_tag,
                        ..ObjectInfo::default()
                    });
                }
            }
            Ok(found)
        })
    }

    /// Starts a streaming `GetObject` of `object` and waits for its headers. With
    /// `if_match`, the read fails unless the object still has that ETag (so a read and an
    /// earlier `HeadObject` see the same bytes).
    pub fn get(&self, object: &S3Object, if_match: Option<&str>) -> Result<S3Reader, Error> {
        crate::block_on(self.get_async(object, if_match))
    }

    /// [`get`](Self::get), awaited.
    pub async fn get_async(
        &self,
        object: &S3Object,
        if_match: Option<&str>,
    ) -> Result<S3Reader, Error> {
        let (info_tx, info_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
        let call = self
            .sdk_client()
            .get_object()
            .bucket(object.bucket())
            .key(object.key())
            .set_version_id(object.version_id().map(str::to_owned))
            .set_if_match(if_match.map(str::to_owned));
        let object = object.clone();
        let task = self.handle()?.spawn(async move {
            let out = match call.send().await {
                Ok(out) => out,
                Err(e) => {
                    let _ = info_tx.send(Err(S3Error::sdk("GetObject", &object, e)));
                    return;
                }
            };
            let info = ObjectInfo {
                key: object.key().to_owned(),
                size: out.content_length.unwrap_or(0).max(0) as u64,
                etag: out.e_tag.clone(),
                version_id: out.version_id.clone(),
                metadata: out.metadata.clone().unwrap_or_default(),
            };
            if info_tx.send(Ok(info)).is_err() {
                return;
            }
            let mut body = out.body;
            loop {
                let next = match body.next().await {
                    None => return,
                    Some(Ok(chunk)) => Ok(chunk),
                    Some(Err(e)) => Err(S3Error::local("GetObject", &object, e.to_string())),
                };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        let task = AbortOnDrop(task);
        let info = info_rx
            .await
            .map_err(|_| Error::Internal("the download task stopped"))??;
        Ok(S3Reader {
            rx,
            chunk: Bytes::new(),
            info,
            _task: task,
        })
    }

    /// A seekable reader of `object` that fetches only the ranges read (for
    /// [`Client::decrypt_range`](crate::Client::decrypt_range) on large objects). Reads are
    /// pinned to the ETag seen now: if the object changes, they fail.
    pub fn ranged(&self, object: &S3Object) -> Result<S3RangeReader, Error> {
        let info = self
            .head(object)?
            .ok_or_else(|| S3Error::not_found("HeadObject", object))?;
        Ok(S3RangeReader {
            s3: self.clone(),
            object: object.clone(),
            info,
            pos: 0,
            window: Bytes::new(),
            window_start: 0,
            fetched: 0,
        })
    }
}

/// Body chunks buffered ahead of the reader.
const CHUNKS_AHEAD: usize = 64;

/// A streaming `GetObject` as a [`Read`] (made by [`S3Client::get`]). A failure of the
/// body (the network, a timeout) is an [`io::Error`] wrapping the [`S3Error`].
pub struct S3Reader {
    rx: mpsc::Receiver<Result<Bytes, S3Error>>,
    chunk: Bytes,
    info: ObjectInfo,
    _task: AbortOnDrop<()>,
}

impl std::fmt::Debug for S3Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Reader")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl S3Reader {
    /// The object's size, ETag, version and metadata, from the response's headers.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            let next = match self.rx.try_recv() {
                Ok(next) => Some(next),
                Err(mpsc::error::TryRecvError::Empty) => crate::block_on(self.rx.recv()),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            };
            match next {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The least a ranged read fetches.
const RANGE_WINDOW: usize = 256 << 10;

/// Ranges of an object on demand, as [`Read`] + [`Seek`] (made by [`S3Client::ranged`]).
#[derive(Debug)]
pub struct S3RangeReader {
    s3: S3Client,
    object: S3Object,
    info: ObjectInfo,
    pos: u64,
    window: Bytes,
    window_start: u64,
    fetched: u64,
}

impl S3RangeReader {
    /// Bytes fetched from S3 so far.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched
    }

    /// The object's size and ETag.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    fn fetch(&mut self, want: usize) -> io::Result<()> {
        let end = (self.pos + want.max(RANGE_WINDOW) as u64).min(self.info.size);
        let (client, object) = (self.s3.sdk_client().clone(), self.object.clone());
        let call = client
            .get_object()
            .bucket(object.bucket())
            .key(object.key())
            .set_version_id(object.version_id().map(str::to_owned))
            .set_if_match(self.info.etag.clone())
            .range(format!("bytes={}-{}", self.pos, end - 1));
        let bytes = self
            .s3
            .block_on(async move {
                let out = call
                    .send()
                    .await
                    .map_err(|e| S3Error::sdk("GetObject", &object, e))?;
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| S3Error::local("GetObject", &object, e.to_string()))?;
                Ok(body.into_bytes())
            })
            .map_err(|e| match e {
                // One form for every S3 failure inside a reader: the bare S3Error.
                Error::S3(s3) => io::Error::other(s3),
                other => io::Error::other(other),
            })?;
        self.fetched += bytes.len() as u64;
        self.window_start = self.pos;
        self.window = bytes;
        Ok(())
    }
}

impl Read for S3RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.info.size || buf.is_empty() {
            return Ok(0);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if !(self.window_start..window_end).contains(&self.pos) {
            self.fetch(buf.len())?;
        }
        let at = (self.pos - self.window_start) as usize;
        let n = buf.len().min(self.window.len() - at);
        buf[..n].copy_from_slice(&self.window[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for S3RangeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.info.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}
