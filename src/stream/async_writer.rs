//! An encrypting tokio `AsyncWrite` over the parallel frame pipeline.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;

use super::async_pipe::{self, AsyncSide, Chunk, In, Layout, Out};
use crate::client::Client;
use crate::engine::FrameSlots;
use crate::error::{ConfigError, Error};
use crate::format::EncryptionContext;
use crate::pipeline::{PipelineOptions, StreamStats};

/// Encrypts everything written to it into one message on the inner `AsyncWrite`.
///
/// The sealing runs on the parallel frame pipeline ([`crate::pipeline`]) on a dedicated
/// OS thread (plus its workers and, for signed suites, its hash thread); the caller's task
/// only copies plaintext into bounded chunks and moves sealed chunks to `inner`, so no
/// crypto runs on the executor's threads. Memory stays bounded: a writer that outpaces the
/// pipeline or `inner` gets `Poll::Pending` (back-pressure).
///
/// [`finish`](Self::finish) (or `AsyncWriteExt::shutdown`, which also shuts `inner`
/// down) is mandatory: it writes the final frame and the signature. A writer dropped
/// without it, at any point (including mid-`finish`), stops its pipeline thread and leaves
/// a truncated message on `inner`, which every reader rejects.
///
/// Errors come out as `io::Error`s; one of kind `InvalidData` wraps an [`Error`] (get it
/// back with `get_ref()` and `downcast_ref`). After an error the writer refuses further
/// writes.
///
/// ```
/// use tokio::io::AsyncWriteExt;
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
/// use envcrypt::pipeline::PipelineOptions;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let ctx = EncryptionContext::from_pairs([("study", "ct-42")]);
/// let mut w = client
///     .encrypt_async_writer(Vec::new(), &ctx, &PipelineOptions::default())
///     .await?;
/// w.write_all(b"pixel data").await?;
/// let message: Vec<u8> = w.finish().await?;
/// let back = client.decrypt(&message, &DecryptOptions::default())?;
/// assert_eq!(back.plaintext, b"pixel data");
/// # Ok(())
/// # }
/// ```
pub struct AsyncEncryptingWriter<W> {
    inner: W,
    chan: AsyncSide,
    /// How plaintext chunks are laid out for the pipeline.
    layout: Layout,
    /// Plaintext gathered for the pipeline thread.
    staging: Option<Chunk>,
    /// Ciphertext being written to `inner`, and how much of it is written.
    pending: Option<(Chunk, usize)>,
    state: State,
    stats: StreamStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Accepting plaintext.
    Open,
    /// The end of input was sent; moving the rest of the message to `inner`.
    Ending,
    /// The whole message is written to `inner`; flushing it.
    Flushing,
    /// The message is complete and flushed; `shut` once `inner` is shut down too.
    Done {
        shut: bool,
    },
    Failed,
}

/// What moving ciphertext to `inner` came to.
enum Drain {
    /// The output channel is empty for now (the task will be woken when more comes).
    Empty,
    /// `inner` is not ready (the task will be woken when it is).
    Blocked,
    /// The pipeline finished and everything it produced is written.
    Finished(StreamStats),
}

impl<W: AsyncWrite + Unpin> AsyncEncryptingWriter<W> {
    /// Gets the materials, starts the pipeline thread and returns the writer (the header
    /// reaches `inner` with the first ciphertext). See [`Client::encrypt_async_writer`].
    ///
    /// Keyrings run on the pipeline thread through the blocking path, inside the caller's
    /// tokio runtime context (if any), so neither a slow keyring (KMS, an HSM) nor a
    /// private-key operation blocks the executor: this future only waits for the result.
    pub async fn new(
        client: &Client,
        inner: W,
        context: &EncryptionContext,
        options: &PipelineOptions,
    ) -> Result<Self, Error> {
        let frame_length = client.frame_length() as usize;
        let layout = Layout::plaintext(frame_length);
        let (chan, thread) =
            async_pipe::channels(layout, FrameSlots::new(frame_length).buffer_len());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), Error>>();
        let (client, context, options) = (client.clone(), context.clone(), options.clone());
        let runtime = async_pipe::current_runtime();
        async_pipe::spawn("envcrypt-enc", move || {
            let encryptor = {
                let _entered = runtime.as_ref().map(|h| h.enter());
                client.encryptor(&context, None)
            };
            let encryptor = match encryptor {
                Ok(enc) => enc,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            if ready_tx.send(Ok(())).is_err() {
                return; // The caller stopped waiting.
            }
            let mut writer = thread.writer;
            let result =
                crate::pipeline::encrypt::run(encryptor, thread.reader, &mut writer, &options);
            writer.finish(result);
        })?;
        ready_rx
            .await
            .unwrap_or_else(|_| Err(async_pipe::thread_lost()))?;
        Ok(Self {
            inner,
            chan,
            layout,
            staging: None,
            pending: None,
            state: State::Open,
            stats: StreamStats::default(),
        })
    }

    /// Completes the message (final frame, signature), flushes `inner` and returns it.
    ///
    /// Dropping this future before it completes drops the writer: the message stays
    /// truncated.
    pub async fn finish(self) -> Result<W, Error> {
        self.finish_with_stats().await.map(|(w, _)| w)
    }

    /// Like [`finish`](Self::finish), and returns what the pipeline moved: plaintext bytes
    /// in, message bytes out.
    pub async fn finish_with_stats(mut self) -> Result<(W, StreamStats), Error> {
        let stats = std::future::poll_fn(|cx| self.poll_finish(cx)).await?;
        Ok((self.inner, stats))
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Stops the pipeline thread after an error; later calls report `StreamFinished`.
    fn fail(&mut self, e: Error) -> Error {
        if !matches!(self.state, State::Failed | State::Done { .. }) {
            self.state = State::Failed;
            self.chan.input.close();
            self.chan.output.close();
            self.staging = None;
            self.pending = None;
        }
        e
    }

    /// Moves ciphertext from the pipeline thread to `inner` until one of them has to wait.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Result<Drain, Error> {
        loop {
            if let Some((chunk, written)) = &mut self.pending {
                while *written < chunk.len() {
                    let data = &chunk.data()[*written..];
                    match Pin::new(&mut self.inner).poll_write(cx, data) {
                        Poll::Ready(Ok(0)) => {
                            return Err(io::Error::from(io::ErrorKind::WriteZero).into())
                        }
                        Poll::Ready(Ok(n)) => *written += n,
                        Poll::Ready(Err(e)) => return Err(e.into()),
                        Poll::Pending => return Ok(Drain::Blocked),
                    }
                }
                if let Some((chunk, _)) = self.pending.take() {
                    let _ = self.chan.output_recycle.send(chunk.buf);
                }
            }
            match self.chan.output.poll_recv(cx) {
                Poll::Ready(Some(Out::Data(chunk))) => self.pending = Some((chunk, 0)),
                Poll::Ready(Some(Out::Done(result))) => return result.map(Drain::Finished),
                Poll::Ready(None) => return Err(async_pipe::thread_lost()),
                Poll::Pending => return Ok(Drain::Empty),
            }
        }
    }

    /// Moves ciphertext on while the message is open; the pipeline cannot finish before
    /// the end of input, so a `Finished` here means it failed.
    fn poll_drain_open(&mut self, cx: &mut Context<'_>) -> Result<Drain, Error> {
        match self.poll_drain(cx)? {
            Drain::Finished(_) => Err(async_pipe::thread_lost()),
            other => Ok(other),
        }
    }

    /// The pipeline thread stopped taking input: it failed. Waits for its error.
    fn poll_thread_error(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        self.pending = None;
        loop {
            match ready!(self.chan.output.poll_recv(cx)) {
                Some(Out::Data(_)) => {}
                Some(Out::Done(Err(e))) => return Poll::Ready(e),
                Some(Out::Done(Ok(_))) | None => return Poll::Ready(async_pipe::thread_lost()),
            }
        }
    }

    /// Reserves room in the input channel; an error if the thread stopped taking input.
    fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if ready!(self.chan.input.poll_reserve(cx)) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Ready(Err(ready!(self.poll_thread_error(cx))))
        }
    }

    /// Hands the staged chunk (if any) to the pipeline thread.
    fn poll_send_staging(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.staging.as_ref().is_none_or(|c| c.len() == 0) {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_reserve(cx))?;
        if let Some(chunk) = self.staging.take() {
            self.chan.input.send(In::Data(chunk));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_write_steps(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, Error>> {
        if self.state != State::Open {
            return Poll::Ready(Err(ConfigError::StreamFinished.into()));
        }
        // Keep the ciphertext moving first: the thread must never wait on us while we
        // wait on it.
        self.poll_drain_open(cx)?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.staging.as_ref().is_some_and(Chunk::is_full) {
            ready!(self.poll_send_staging(cx))?;
        }
        let chunk = match &mut self.staging {
            Some(chunk) => chunk,
            None => self
                .staging
                .insert(Chunk::take(&mut self.chan.input_recycle, self.layout)),
        };
        let spare = chunk.spare();
        let n = buf.len().min(spare.len());
        spare[..n].copy_from_slice(&buf[..n]);
        chunk.filled(n);
        if chunk.is_full() {
            // Hand it on now if there is room, else on the next call.
            if let Poll::Ready(Err(e)) = self.poll_send_staging(cx) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush_steps(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.state {
            State::Open => {
                if let Drain::Blocked = self.poll_drain_open(cx)? {
                    return Poll::Pending;
                }
            }
            State::Done { .. } => {}
            _ => return Poll::Ready(Err(ConfigError::StreamFinished.into())),
        }
        Poll::Ready(ready!(Pin::new(&mut self.inner).poll_flush(cx)).map_err(Error::from))
    }

    /// Drives the message to its end: the staged plaintext and the end of input to the
    /// thread, all ciphertext to `inner`, then flushes `inner`.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<StreamStats, Error>> {
        match self.poll_finish_steps(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.fail(e))),
            other => other,
        }
    }

    fn poll_finish_steps(&mut self, cx: &mut Context<'_>) -> Poll<Result<StreamStats, Error>> {
        loop {
            match self.state {
                State::Open => {
                    self.poll_drain_open(cx)?;
                    ready!(self.poll_send_staging(cx))?;
                    ready!(self.poll_reserve(cx))?;
                    self.chan.input.send(In::End);
                    self.state = State::Ending;
                }
                State::Ending => match self.poll_drain(cx)? {
                    Drain::Empty | Drain::Blocked => return Poll::Pending,
                    Drain::Finished(stats) => {
                        self.stats = stats;
                        self.state = State::Flushing;
                    }
                },
                State::Flushing => {
                    ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                    self.state = State::Done { shut: false };
                }
                State::Done { .. } => return Poll::Ready(Ok(self.stats)),
                State::Failed => return Poll::Ready(Err(ConfigError::StreamFinished.into())),
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncEncryptingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.poll_write_steps(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.fail(e).into())),
            other => other.map_err(io::Error::from),
        }
    }

    /// Moves the ciphertext ready so far to `inner` and flushes it. Plaintext stays
    /// buffered until its frame is full or the message is finished.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_flush_steps(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(this.fail(e).into())),
            other => other.map_err(io::Error::from),
        }
    }

    /// Completes the message (like [`finish`](AsyncEncryptingWriter::finish)), then shuts
    /// `inner` down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx))?;
        if let State::Done { shut: false } = this.state {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.state = State::Done { shut: true };
        }
        Poll::Ready(Ok(()))
    }
}
