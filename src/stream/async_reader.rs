//! A decrypting tokio `AsyncRead` over the parallel frame pipeline.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use zeroize::Zeroize;

use super::async_pipe::{self, AsyncSide, Chunk, In, Layout, Out};
use crate::client::{Client, DecryptOptions};
use crate::engine::Decryptor;
use crate::error::{ConfigError, Error, FormatError};
use crate::format::regular_frame_len;
use crate::format::Header;
use crate::pipeline::{PipelineOptions, StreamStats};
use crate::stream::{read_header_async, HeaderRead};

/// Decrypts a message read from the inner `AsyncRead`.
///
/// The frames are opened by the parallel frame pipeline ([`crate::pipeline`]) on a
/// dedicated OS thread (plus its workers), so no crypto runs on the executor's threads; the
/// caller's task only moves ciphertext chunks in and plaintext chunks out. The release rule
/// holds: a frame's plaintext is readable only after its tag verified, and the last frame's
/// only after the signature (signed suites) verified and `inner` ended right after the
/// message. A reader that is not read from stops pulling from `inner` once a few chunks are
/// buffered (back-pressure).
///
/// Errors come out as `io::Error`s; one of kind `InvalidData` wraps an [`Error`] (get it
/// back with `get_ref()` and `downcast_ref`). Plaintext read before an error came from
/// frames that verified, but the message as a whole is not authentic: discard it. Dropping
/// the reader at any point stops its pipeline thread.
///
/// ```
/// use tokio::io::AsyncReadExt;
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
/// use envcrypt::pipeline::PipelineOptions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let message = client.encrypt(b"pixel data", &EncryptionContext::new())?;
/// let mut r = client
///     .decrypt_async_reader(&message[..], &DecryptOptions::default(), &PipelineOptions::default())
///     .await?;
/// assert_eq!(r.header().frame_length, 65536);
/// let mut plaintext = Vec::new();
/// r.read_to_end(&mut plaintext).await?;
/// assert_eq!(plaintext, b"pixel data");
/// # Ok(())
/// # }
/// ```
pub struct AsyncDecryptingReader<R> {
    inner: R,
    header: Header,
    chan: AsyncSide,
    /// How ciphertext chunks are laid out for the pipeline.
    layout: Layout,
    /// Bytes read past the header while looking for its end, and how many of them went on.
    leftover: (Vec<u8>, usize),
    /// Ciphertext read from `inner`, not yet handed to the pipeline thread.
    staging: Option<Chunk>,
    /// `inner` reached its end.
    inner_eof: bool,
    /// ... and the thread was told.
    input_ended: bool,
    /// Plaintext being handed out, and how much of it is.
    current: Option<(Chunk, usize)>,
    state: State,
    stats: StreamStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The message verified and all its plaintext was read.
    Done,
    Failed,
}

impl<R: AsyncRead + Unpin> AsyncDecryptingReader<R> {
    /// Reads the header from `inner`, gets the data key, authenticates the header and
    /// starts the pipeline thread. See [`Client::decrypt_async_reader`].
    ///
    /// The header is parsed here (no crypto); the keyrings and the header's authentication
    /// run on the pipeline thread through the blocking path, inside the caller's tokio
    /// runtime context (if any), while this future waits.
    pub async fn new(
        client: &Client,
        mut inner: R,
        options: &DecryptOptions,
        pipeline: &PipelineOptions,
    ) -> Result<Self, Error> {
        let config = client.decrypt_config();
        let mut decryptor = Decryptor::new(config);
        let HeaderRead {
            buf,
            header_len: start,
        } = read_header_async(&mut decryptor, &mut inner).await?;
        let (layout, unit_len) = {
            let header = &decryptor.header().ok_or(FormatError::Truncated)?.header;
            let frame = regular_frame_len(header.frame_length);
            (Layout::ciphertext(header), frame)
        };
        let (chan, thread) = async_pipe::channels(layout, unit_len);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<Header, Error>>();
        let (client, options, pipeline) = (client.clone(), options.clone(), pipeline.clone());
        let runtime = async_pipe::current_runtime();
        async_pipe::spawn("envcrypt-dec", move || {
            let unlocked = {
                let _entered = runtime.as_ref().map(|h| h.enter());
                client.unlock(&mut decryptor, &options)
            };
            let header = unlocked.and_then(|()| {
                Ok(decryptor
                    .header()
                    .ok_or(Error::Internal("no header after it was authenticated"))?
                    .header
                    .clone())
            });
            let failed = header.is_err();
            if ready_tx.send(header).is_err() || failed {
                return;
            }
            let mut writer = thread.writer;
            let result = crate::pipeline::decrypt::run(
                decryptor,
                thread.reader,
                &mut writer,
                &pipeline,
                options.release,
            );
            writer.finish(result.map(|mut stats| {
                stats.bytes_in += start as u64;
                stats
            }));
        })?;
        let header = ready_rx
            .await
            .unwrap_or_else(|_| Err(async_pipe::thread_lost()))?;
        Ok(Self {
            inner,
            header,
            chan,
            layout,
            leftover: (buf, start),
            staging: None,
            inner_eof: false,
            input_ended: false,
            current: None,
            state: State::Open,
            stats: StreamStats::default(),
        })
    }

    /// The authenticated header: suite, stored context, EDKs, frame length.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// What the pipeline moved (message bytes in, plaintext bytes out); complete once a
    /// read returned the end of the plaintext.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Stops the pipeline thread and wipes buffered plaintext.
    fn fail(&mut self, e: Error) -> Error {
        if self.state == State::Open {
            self.state = State::Failed;
            self.chan.input.close();
            self.chan.output.close();
            self.staging = None;
            if let Some((mut chunk, _)) = self.current.take() {
                chunk.buf.zeroize();
            }
        }
        e
    }

    /// Moves ciphertext from `inner` to the pipeline thread until one of them has to wait
    /// (or the input ended). Each party that makes us wait has the task's waker.
    ///
    /// Chunks go out full (or at the end of `inner`): the pipeline needs whole frames
    /// anyway, and a full chunk is exactly one frame it can take without a copy.
    fn pump_input(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        while !self.input_ended {
            let chunk = match &mut self.staging {
                Some(chunk) => chunk,
                None => self
                    .staging
                    .insert(Chunk::take(&mut self.chan.input_recycle, self.layout)),
            };
            let (rest, used) = &mut self.leftover;
            if *used < rest.len() {
                let spare = chunk.spare();
                let n = spare.len().min(rest.len() - *used);
                spare[..n].copy_from_slice(&rest[*used..*used + n]);
                chunk.filled(n);
                *used += n;
            }
            while !chunk.is_full() && !self.inner_eof {
                let mut rb = ReadBuf::new(chunk.spare());
                match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => self.inner_eof = true,
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        chunk.filled(n);
                    }
                    Poll::Ready(Err(e)) => return Err(e.into()),
                    Poll::Pending => return Ok(()),
                }
            }
            if chunk.len() > 0 {
                match self.chan.input.poll_reserve(cx) {
                    Poll::Ready(true) => {
                        if let Some(chunk) = self.staging.take() {
                            self.chan.input.send(In::Data(chunk));
                        }
                    }
                    // The thread stopped taking input: the output tells why.
                    Poll::Ready(false) | Poll::Pending => return Ok(()),
                }
            }
            if self.inner_eof {
                match self.chan.input.poll_reserve(cx) {
                    Poll::Ready(true) => {
                        self.chan.input.send(In::End);
                        self.input_ended = true;
                        self.leftover = (Vec::new(), 0);
                    }
                    Poll::Ready(false) | Poll::Pending => return Ok(()),
                }
            }
        }
        Ok(())
    }

    fn poll_read_steps(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<Result<(), Error>> {
        match self.state {
            State::Open => {}
            State::Done => return Poll::Ready(Ok(())),
            State::Failed => return Poll::Ready(Err(ConfigError::StreamFinished.into())),
        }
        self.pump_input(cx)?;
        loop {
            if let Some((chunk, pos)) = &mut self.current {
                let n = out.remaining().min(chunk.len() - *pos);
                out.put_slice(&chunk.data()[*pos..*pos + n]);
                *pos += n;
                if *pos == chunk.len() {
                    if let Some((chunk, _)) = self.current.take() {
                        let _ = self.chan.output_recycle.send(chunk.buf);
                    }
                }
                if n > 0 || out.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            match ready!(self.chan.output.poll_recv(cx)) {
                Some(Out::Data(chunk)) => self.current = Some((chunk, 0)),
                Some(Out::Done(Ok(stats))) => {
                    self.stats = stats;
                    self.state = State::Done;
                    return Poll::Ready(Ok(()));
                }
                Some(Out::Done(Err(e))) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Err(async_pipe::thread_lost())),
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncDecryptingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_read_steps(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.fail(e).into())),
            other => other.map_err(io::Error::from),
        }
    }
}

impl<R> Drop for AsyncDecryptingReader<R> {
    fn drop(&mut self) {
        if let Some((chunk, _)) = &mut self.current {
            chunk.buf.zeroize();
        }
    }
}
