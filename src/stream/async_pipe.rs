//! The plumbing shared by the async adapters: the parallel pipeline runs on a dedicated OS
//! thread and exchanges byte chunks with the async side over bounded tokio channels.
//!
//! ```text
//!  async side (caller's task)              pipeline thread (+ its workers)
//!  ──────────────────────────              ──────────────────────────────
//!  chunks in  ── mpsc(depth) of In ──────► ChannelReader: Read  ─┐
//!                                                                 ├─ pipeline::{encrypt,decrypt}::run
//!  chunks out ◄─ mpsc(depth) of Out ────── ChannelWriter: Write ─┘
//!  spent buffers go back on unbounded "recycle" channels, so allocations stay bounded
//! ```
//!
//! Back-pressure comes from the bounded channels: a full channel parks the side that fills
//! it. Cancellation: the async side owns the only sender of the input channel and the only
//! receiver of the output channel; dropping it closes both, the thread's blocking calls
//! return an error, the pipeline aborts and the thread exits. The input's end is an explicit
//! [`In::End`], so a closed channel is never mistaken for the end of the stream.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc::{
    self, error::TrySendError, OwnedPermit, Receiver, Sender, UnboundedReceiver, UnboundedSender,
};

use crate::error::Error;
use crate::pipeline::StreamStats;

/// Size of the chunks exchanged with the pipeline thread.
/// Two 64 KiB frames: small enough that a chunk is still in cache when the other side
/// copies it, large enough to keep the wake-ups few.
pub(crate) const CHUNK: usize = 128 * 1024;
/// Chunks each channel holds: bounds the memory between the two sides to about
/// `2 x (DEPTH + 2) x CHUNK` on top of the pipeline's own frames in flight.
pub(crate) const DEPTH: usize = 8;

/// A buffer of `CHUNK` initialized bytes, the first `len` of which carry data.
pub(crate) struct Chunk {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
}

impl Chunk {
    /// A spent buffer from `recycle`, or a new one.
    pub(crate) fn take(recycle: &mut UnboundedReceiver<Vec<u8>>) -> Self {
        let buf = recycle.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        Self { buf, len: 0 }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buf.len()
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

pub(crate) fn channels() -> (AsyncSide, ThreadSide) {
    let (in_tx, in_rx) = mpsc::channel(DEPTH);
    let (in_recycle_tx, in_recycle_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel(DEPTH);
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
                cur: None,
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

/// A blocking `Read` over the input channel (pipeline thread side).
pub(crate) struct ChannelReader {
    rx: Receiver<In>,
    cur: Option<Chunk>,
    pos: usize,
    ended: bool,
    recycle: UnboundedSender<Vec<u8>>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.cur {
                if self.pos < chunk.len {
                    let n = out.len().min(chunk.len - self.pos);
                    out[..n].copy_from_slice(&chunk.buf[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            if let Some(spent) = self.cur.take() {
                let _ = self.recycle.send(spent.buf);
            }
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            self.pos = 0;
            match self.rx.blocking_recv() {
                Some(In::Data(chunk)) => self.cur = Some(chunk),
                Some(In::End) => self.ended = true,
                None => return Err(closed()),
            }
        }
    }
}

/// A blocking `Write` over the output channel (pipeline thread side).
///
/// Bytes are gathered into chunks; a partial chunk goes out at once when the output channel
/// is empty (the async side is waiting), so a slow source does not delay what is ready,
/// while a busy consumer gets full chunks.
pub(crate) struct ChannelWriter {
    tx: Sender<Out>,
    cur: Option<Chunk>,
    recycle: UnboundedReceiver<Vec<u8>>,
}

impl ChannelWriter {
    fn send_chunk(&mut self) -> io::Result<()> {
        match self.cur.take() {
            Some(chunk) if chunk.len > 0 => self
                .tx
                .blocking_send(Out::Data(chunk))
                .map_err(|_| closed()),
            Some(chunk) => {
                self.cur = Some(chunk);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Sends what is buffered, then the outcome; the last thing the thread does.
    pub(crate) fn finish(mut self, result: Result<StreamStats, Error>) {
        let result = match result {
            Ok(stats) => self.send_chunk().map(|()| stats).map_err(Error::from),
            // Frames written before a failure verified (decrypt) or are a truncated message
            // (encrypt); hand them on in order, then the error.
            Err(e) => self.send_chunk().map_err(Error::from).and(Err(e)),
        };
        let _ = self.tx.blocking_send(Out::Done(result));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < data.len() {
            let chunk = match &mut self.cur {
                Some(chunk) => chunk,
                None => self.cur.insert(Chunk::take(&mut self.recycle)),
            };
            let n = (data.len() - written).min(chunk.buf.len() - chunk.len);
            chunk.buf[chunk.len..chunk.len + n].copy_from_slice(&data[written..written + n]);
            chunk.len += n;
            written += n;
            if chunk.is_full() {
                self.send_chunk()?;
            }
        }
        if self.tx.capacity() == self.tx.max_capacity() {
            self.send_chunk()?;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_chunk()
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
