//! The rewrap for async callers (feature `tokio`): files on tokio's blocking pool, and
//! `AsyncRead` to `AsyncWrite` through a pipeline thread that only ciphertext crosses.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::pin;
use std::task::Poll;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Rewrap, Rewrapped};
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

/// Bytes per chunk between the async side and the pipeline thread.
const CHUNK: usize = 256 << 10;
/// Chunks each way at most (bounds the memory between the two sides).
const DEPTH: usize = 8;

impl Rewrap<'_> {
    /// [`stream`](Self::stream) for async callers: the pipeline runs on a thread of its own
    /// and exchanges ciphertext chunks with this future (plaintext stays on that thread).
    /// As with [`stream`](Self::stream), bytes reach `output` as the new message is made:
    /// on `Err`, discard them. Dropping the future stops the rewrap at its next chunk.
    ///
    /// ```
    /// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
    /// use envcrypt::pipeline::PipelineOptions;
    /// use envcrypt::rewrap::Rewrap;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let old = Client::new(RawAesKeyring::new("site", "key-2025", &[1; 32])?);
    /// let new = Client::new(RawAesKeyring::new("site", "key-2026", &[2; 32])?);
    /// let message = old.encrypt(&[9u8; 100_000], &EncryptionContext::new())?;
    /// let mut rotated = Vec::new();
    /// Rewrap::new(&old, &new)
    ///     .stream_async(&message[..], &mut rotated, &PipelineOptions::default())
    ///     .await?;
    /// assert_eq!(new.decrypt(&rotated, &DecryptOptions::default())?.plaintext, [9u8; 100_000]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stream_async<R, W>(
        &self,
        mut input: R,
        mut output: W,
        pipeline: &PipelineOptions,
    ) -> Result<Rewrapped, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (from, to, options) = (self.from.clone(), self.to.clone(), self.options.clone());
        let pipeline = pipeline.clone();
        let (in_tx, in_rx) = mpsc::channel::<Option<Vec<u8>>>(DEPTH);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("envcrypt-rewrap".into())
            .spawn(move || {
                let rewrap = Rewrap::new(&from, &to).with_options(options);
                let reader = ChannelRead {
                    rx: in_rx,
                    cur: Vec::new(),
                    pos: 0,
                    ended: false,
                };
                let writer = ChannelWrite {
                    tx: out_tx,
                    buf: Vec::with_capacity(CHUNK),
                };
                let _ = done_tx.send(rewrap.stream(reader, writer, &pipeline));
            })?;

        let feed = async {
            loop {
                let mut buf = vec![0u8; CHUNK];
                let n = input.read(&mut buf).await?;
                if n == 0 {
                    let _ = in_tx.send(None).await;
                    return Ok::<(), io::Error>(());
                }
                buf.truncate(n);
                if in_tx.send(Some(buf)).await.is_err() {
                    return Ok(()); // The thread stopped; its result says why.
                }
            }
        };
        let drain = async {
            while let Some(chunk) = out_rx.recv().await {
                output.write_all(&chunk).await?;
            }
            output.flush().await
        };
        let (mut feed, mut drain) = (pin!(feed), pin!(drain));
        let (mut fed, mut drained) = (None, None);
        std::future::poll_fn(|cx| {
            if fed.is_none() {
                if let Poll::Ready(r) = feed.as_mut().poll(cx) {
                    fed = Some(r);
                }
            }
            if drained.is_none() {
                if let Poll::Ready(r) = drain.as_mut().poll(cx) {
                    drained = Some(r);
                }
            }
            // The output closes when the thread is done; a failed input ends it too.
            match (&fed, &drained) {
                (_, Some(_)) | (Some(Err(_)), _) => Poll::Ready(()),
                _ => Poll::Pending,
            }
        })
        .await;
        // Our own I/O errors first: the thread only saw a closed channel.
        if let Some(Err(e)) = fed {
            return Err(e.into());
        }
        if let Some(Err(e)) = drained {
            return Err(e.into());
        }
        done_rx.await.unwrap_or(Err(Error::Internal(
            "the rewrap thread stopped unexpectedly",
        )))
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the async side of the rewrap was dropped",
    )
}

/// The pipeline thread's input: chunks from the async side, `None` at the end.
struct ChannelRead {
    rx: mpsc::Receiver<Option<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
    /// The end came: every later read returns 0 (the end is sent once).
    ended: bool,
}

impl Read for ChannelRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Some(chunk)) => (self.cur, self.pos) = (chunk, 0),
                Some(None) => self.ended = true,
                None => return Err(closed()),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The pipeline thread's output: chunks of the new message to the async side.
struct ChannelWrite {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWrite {
    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(chunk).map_err(|_| closed())
    }
}

impl Write for ChannelWrite {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.buf.is_empty() {
            true => Ok(()),
            false => self.send(),
        }
    }
}
