//! The plumbing shared by the async adapters: the parallel pipeline runs on a dedicated OS
//! thread and exchanges buffers with the async side over bounded tokio channels.
//!
//! ```text
//!  async side (caller's task)              pipeline thread (+ its workers)
//!  ──────────────────────────              ──────────────────────────────
//!  chunks in  ── mpsc(depth) of In ──────► ChannelReader: Input  ─┐
//!                                                                  ├─ pipeline::{encrypt,decrypt}::run
//!  chunks out ◄─ mpsc(depth) of Out ────── ChannelWriter: Output ─┘
//!  spent buffers go back on unbounded "recycle" channels, so allocations stay bounded
//! ```
//!
//! No copies beyond the ones a sync pipeline makes: the async side fills input chunks laid
//! out like the pipeline's own buffers (a plaintext chunk is a frame buffer with the
//! plaintext where it is sealed; a ciphertext chunk holds exactly one regular frame), so the
//! pipeline swaps a whole chunk in instead of copying it; sealed or opened frames travel
//! out in the buffers they were processed in.
//!
//! Back-pressure comes from the bounded channels: a full channel parks the side that fills
//! it. Cancellation: the async side owns the only sender of the input channel and the only
//! receiver of the output channel; dropping it closes both, the thread's blocking calls
//! return an error, the pipeline aborts and the thread exits. The input's end is an explicit
//! [`In::End`], so a closed channel is never mistaken for the end of the stream.

use std::future::Future;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc::{
    self, error::TrySendError, OwnedPermit, Receiver, Sender, UnboundedReceiver, UnboundedSender,
};

use crate::engine::FrameSlots;
use crate::error::Error;
use crate::format::{regular_frame_len, ContentType, Header};
use crate::pipeline::{Input, Output, StreamStats};

/// Size of the chunks used when frames are too small to travel one per chunk.
const CHUNK: usize = 128 * 1024;
/// Frames at least this long travel one per chunk (swapped in, not copied); smaller ones
/// are gathered into `CHUNK`s, which keeps the hand-overs few.
const WHOLE_FRAME_MIN: usize = 32 * 1024;
/// Bytes each channel holds at most (about): bounds the memory between the two sides on
/// top of the pipeline's own frames in flight.
const CHANNEL_BYTES: usize = 1 << 20;

/// Where data sits in the buffers the async side fills for the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Offset of the data in the buffer.
    at: usize,
    /// Bytes of data a full chunk holds.
    cap: usize,
    /// Length of the buffer.
    buf_len: usize,
}

impl Layout {
    fn gathered() -> Self {
        Self {
            at: 0,
            cap: CHUNK,
            buf_len: CHUNK,
        }
    }

    /// Plaintext for the encrypting pipeline: a chunk is a frame buffer.
    pub(crate) fn plaintext(frame_length: usize) -> Self {
        if frame_length < WHOLE_FRAME_MIN {
            return Self::gathered();
        }
        Self {
            at: FrameSlots::PLAINTEXT_AT,
            cap: frame_length,
            buf_len: FrameSlots::new(frame_length).buffer_len(),
        }
    }

    /// Ciphertext for the decrypting pipeline: a chunk is one regular frame.
    pub(crate) fn ciphertext(header: &Header) -> Self {
        let frame = regular_frame_len(header.frame_length);
        if header.content_type == ContentType::NonFramed || frame < WHOLE_FRAME_MIN {
            return Self::gathered();
        }
        Self {
            at: 0,
            cap: frame,
            buf_len: frame,
        }
    }
}

/// A buffer whose `len` bytes from `at` carry data.
pub(crate) struct Chunk {
    pub(crate) buf: Vec<u8>,
    at: usize,
    len: usize,
    cap: usize,
}

impl Chunk {
    /// A spent buffer from `recycle`, or a new one, laid out as `layout`.
    pub(crate) fn take(recycle: &mut UnboundedReceiver<Vec<u8>>, layout: Layout) -> Self {
        let mut buf = recycle.try_recv().unwrap_or_default();
        if buf.len() < layout.buf_len {
            buf.resize(layout.buf_len, 0);
        }
        Self {
            buf,
            at: layout.at,
            len: 0,
            cap: layout.cap,
        }
    }

    /// The data.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.at..self.at + self.len]
    }

    /// Room for more data.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.at + self.len..self.at + self.cap]
    }

    /// Counts `n` more bytes of data (written into [`spare`](Self::spare)).
    pub(crate) fn filled(&mut self, n: usize) {
        self.len += n;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.cap
    }
}

/// What flows into the pipeline thread.
pub(crate) enum In {
    Data(Chunk),
    /// The input ended here (the encrypting writer was finished, or the ciphertext source
    /// reached its end).
    End,
}

/// What flows out of the pipeline thread: data, then exactly one `Done`.
pub(crate) enum Out {
    Data(Chunk),
    Done(Result<StreamStats, Error>),
}

/// The channels of one adapter, split between the two sides.
pub(crate) struct AsyncSide {
    pub(crate) input: PollSender<In>,
    pub(crate) input_recycle: UnboundedReceiver<Vec<u8>>,
    pub(crate) output: Receiver<Out>,
    pub(crate) output_recycle: UnboundedSender<Vec<u8>>,
}

pub(crate) struct ThreadSide {
    pub(crate) reader: ChannelReader,
    pub(crate) writer: ChannelWriter,
}

/// Channel depth for buffers of `buf_len` bytes: about [`CHANNEL_BYTES`] in all.
fn depth(buf_len: usize) -> usize {
    (CHANNEL_BYTES / buf_len.max(1)).clamp(2, 64)
}

/// The channels for input chunks laid out as `input` and output buffers of about
/// `output_len` bytes.
pub(crate) fn channels(input: Layout, output_len: usize) -> (AsyncSide, ThreadSide) {
    let (in_tx, in_rx) = mpsc::channel(depth(input.buf_len));
    let (in_recycle_tx, in_recycle_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel(depth(output_len));
    let (out_recycle_tx, out_recycle_rx) = mpsc::unbounded_channel();
    (
        AsyncSide {
            input: PollSender::new(in_tx),
            input_recycle: in_recycle_rx,
            output: out_rx,
            output_recycle: out_recycle_tx,
        },
        ThreadSide {
            reader: ChannelReader {
                rx: in_rx,
                cur: None,
                pos: 0,
                ended: false,
                recycle: in_recycle_tx,
            },
            writer: ChannelWriter {
                tx: out_tx,
                recycle: out_recycle_rx,
            },
        },
    )
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the async adapter was dropped before the end of the stream",
    )
}

/// The pipeline's input over the input channel (pipeline thread side; blocking).
pub(crate) struct ChannelReader {
    rx: Receiver<In>,
    cur: Option<Chunk>,
    /// Data of `cur` already taken.
    pos: usize,
    ended: bool,
    recycle: UnboundedSender<Vec<u8>>,
}

impl ChannelReader {
    /// Makes sure `cur` holds the chunk to read from, unless the input ended.
    fn next_chunk(&mut self) -> io::Result<()> {
        if self.cur.is_none() && !self.ended {
            match self.rx.blocking_recv() {
                Some(In::Data(chunk)) => {
                    self.cur = Some(chunk);
                    self.pos = 0;
                }
                Some(In::End) => self.ended = true,
                None => return Err(closed()),
            }
        }
        Ok(())
    }
}

impl Input for ChannelReader {
    fn fill(&mut self, buf: &mut Vec<u8>, at: usize, len: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < len {
            self.next_chunk()?;
            let Some(chunk) = &mut self.cur else {
                break;
            };
            // The chunk holds exactly what is asked for, where it is asked for: take it.
            let whole = n == 0 && self.pos == 0 && chunk.at == at && chunk.len == len;
            if whole && chunk.buf.len() >= buf.len() {
                let taken = std::mem::replace(buf, std::mem::take(&mut chunk.buf));
                self.cur = None;
                let _ = self.recycle.send(taken);
                return Ok(len);
            }
            let k = (chunk.len - self.pos).min(len - n);
            buf[at + n..at + n + k].copy_from_slice(&chunk.data()[self.pos..self.pos + k]);
            n += k;
            self.pos += k;
            if self.pos == chunk.len {
                if let Some(spent) = self.cur.take() {
                    let _ = self.recycle.send(spent.buf);
                }
            }
        }
        Ok(n)
    }
}

/// The pipeline's output over the output channel (pipeline thread side; blocking).
pub(crate) struct ChannelWriter {
    tx: Sender<Out>,
    recycle: UnboundedReceiver<Vec<u8>>,
}

impl ChannelWriter {
    fn send(&mut self, buf: Vec<u8>, range: Range<usize>) -> io::Result<()> {
        let chunk = Chunk {
            buf,
            at: range.start,
            len: range.len(),
            cap: range.len(),
        };
        self.tx
            .blocking_send(Out::Data(chunk))
            .map_err(|_| closed())
    }

    /// Sends the outcome; the last thing the thread does.
    pub(crate) fn finish(self, result: Result<StreamStats, Error>) {
        let _ = self.tx.blocking_send(Out::Done(result));
    }
}

impl Output for &mut ChannelWriter {
    const HANDS_OVER: bool = true;

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.send(bytes.to_vec(), 0..bytes.len())
    }

    fn put_buffer(&mut self, buf: Vec<u8>, range: Range<usize>) -> io::Result<Option<Vec<u8>>> {
        self.send(buf, range)?;
        Ok(self.recycle.try_recv().ok())
    }

    fn flush_output(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Reserve<T> =
    Pin<Box<dyn Future<Output = Result<OwnedPermit<T>, mpsc::error::SendError<()>>> + Send>>;

/// A bounded sender usable from `poll_*` functions: reserve a slot (registering the task's
/// waker when the channel is full), then send into it.
pub(crate) struct PollSender<T> {
    state: SendState<T>,
}

enum SendState<T> {
    Idle(Sender<T>),
    Reserving(Reserve<T>),
    Reserved(OwnedPermit<T>),
    Closed,
}

impl<T: Send + 'static> PollSender<T> {
    fn new(tx: Sender<T>) -> Self {
        Self {
            state: SendState::Idle(tx),
        }
    }

    /// `Ready(true)` once a slot is reserved, `Ready(false)` if the receiver is gone.
    pub(crate) fn poll_reserve(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        loop {
            self.state = match std::mem::replace(&mut self.state, SendState::Closed) {
                SendState::Idle(tx) => match tx.try_reserve_owned() {
                    Ok(permit) => SendState::Reserved(permit),
                    Err(TrySendError::Full(tx)) => {
                        SendState::Reserving(Box::pin(tx.reserve_owned()))
                    }
                    Err(TrySendError::Closed(_)) => SendState::Closed,
                },
                SendState::Reserving(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Ready(Ok(permit)) => SendState::Reserved(permit),
                    Poll::Ready(Err(_)) => SendState::Closed,
                    Poll::Pending => {
                        self.state = SendState::Reserving(fut);
                        return Poll::Pending;
                    }
                },
                SendState::Reserved(permit) => {
                    self.state = SendState::Reserved(permit);
                    return Poll::Ready(true);
                }
                SendState::Closed => return Poll::Ready(false),
            };
        }
    }

    /// Sends into the slot reserved by [`poll_reserve`](Self::poll_reserve).
    pub(crate) fn send(&mut self, value: T) {
        if let SendState::Reserved(permit) = std::mem::replace(&mut self.state, SendState::Closed) {
            self.state = SendState::Idle(permit.send(value));
        }
    }

    /// Closes the channel: the receiver sees its end.
    pub(crate) fn close(&mut self) {
        self.state = SendState::Closed;
    }
}

/// The runtime the adapter was created in, entered on the pipeline thread while keyrings
/// run, so a keyring that uses the ambient runtime (timers, I/O) works there too.
pub(crate) fn current_runtime() -> Option<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current().ok()
}

/// Starts the pipeline thread.
pub(crate) fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(Error::from)
}

/// The error reported when the pipeline thread ended without a word (it panicked).
pub(crate) fn thread_lost() -> Error {
    Error::from(io::Error::other("the pipeline thread stopped unexpectedly"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends chunks of `layout` holding `parts`, then the end.
    fn feed(parts: &[&[u8]], layout: Layout) -> (AsyncSide, ThreadSide, Vec<*const u8>) {
        let (mut side, thread) = channels(layout, 1024);
        let mut sent = Vec::new();
        for part in parts {
            let mut chunk = Chunk::take(&mut side.input_recycle, layout);
            chunk.spare()[..part.len()].copy_from_slice(part);
            chunk.filled(part.len());
            sent.push(chunk.buf.as_ptr());
            let waker = std::task::Waker::noop();
            assert!(side
                .input
                .poll_reserve(&mut Context::from_waker(waker))
                .is_ready());
            side.input.send(In::Data(chunk));
        }
        let waker = std::task::Waker::noop();
        assert!(side
            .input
            .poll_reserve(&mut Context::from_waker(waker))
            .is_ready());
        side.input.send(In::End);
        (side, thread, sent)
    }

    #[test]
    fn a_chunk_laid_out_as_asked_is_taken_whole() {
        let layout = Layout::plaintext(64 << 10);
        let frame = vec![7u8; 64 << 10];
        let (_side, mut thread, sent) = feed(&[&frame, &frame[..100]], layout);
        let mut buf = FrameSlots::new(64 << 10).buffer();
        let n = thread
            .reader
            .fill(&mut buf, FrameSlots::PLAINTEXT_AT, 64 << 10)
            .unwrap();
        assert_eq!(n, 64 << 10);
        assert_eq!(buf.as_ptr(), sent[0], "the chunk's own buffer, not a copy");
        assert_eq!(&buf[FrameSlots::PLAINTEXT_AT..][..n], &frame[..]);
        // A short last chunk is copied, then the end reads as 0.
        let n = thread
            .reader
            .fill(&mut buf, FrameSlots::PLAINTEXT_AT, 64 << 10)
            .unwrap();
        assert_eq!(n, 100);
        assert_ne!(buf.as_ptr(), sent[1]);
        assert_eq!(&buf[FrameSlots::PLAINTEXT_AT..][..100], &frame[..100]);
        assert_eq!(
            thread
                .reader
                .fill(&mut buf, FrameSlots::PLAINTEXT_AT, 10)
                .unwrap(),
            0
        );
    }

    #[test]
    fn misaligned_requests_are_copied_across_chunks() {
        let layout = Layout::gathered();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let parts = [
            &bytes[..CHUNK],
            &bytes[CHUNK..2 * CHUNK],
            &bytes[2 * CHUNK..],
        ];
        let (_side, mut thread, _) = feed(&parts, layout);
        let mut buf = vec![0u8; 200_000];
        assert_eq!(thread.reader.fill(&mut buf, 5, 150_000).unwrap(), 150_000);
        assert_eq!(&buf[5..150_005], &bytes[..150_000]);
        assert_eq!(thread.reader.fill(&mut buf, 0, 200_000).unwrap(), 150_000);
        assert_eq!(&buf[..150_000], &bytes[150_000..]);
    }

    #[test]
    fn a_dropped_async_side_is_an_error_not_an_end() {
        let (side, mut thread) = channels(Layout::gathered(), 1024);
        drop(side);
        let mut buf = vec![0u8; 16];
        let e = thread.reader.fill(&mut buf, 0, 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
