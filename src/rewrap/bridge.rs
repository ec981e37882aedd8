//! The in-memory link between a rewrap's two pipelines: the decrypting pipeline's output
//! is the encrypting pipeline's input.
//!
//! ```text
//!  decrypting pipeline ── PlainSink: Output ══ bounded channel ══► PlainSource: Input ── encrypting pipeline
//!                      ◄──────────────── spent buffers (recycled) ─────────────────
//! ```
//!
//! Opened frames travel in the buffers they were opened in. A full frame is moved to where
//! the encrypting pipeline seals plaintext ([`FrameSlots::PLAINTEXT_AT`], 8 bytes further
//! than a regular frame's body) and its buffer is handed over whole, so it is sealed in
//! place: the plaintext is overwritten by ciphertext, not copied and left behind. Anything
//! else (the short final frame, a non-framed body) is copied out and its buffer wiped
//! before it goes back. A buffer dropped in the channel (a failed rewrap) is wiped too.
//!
//! The channel is bounded: memory stays at a few frames whatever the message's size. The
//! end of the plaintext is an explicit [`Msg::End`], sent only once the decrypting side
//! verified the whole message; a closed channel is an error, never an end.

use std::io;
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};

use zeroize::Zeroize;

use crate::engine::FrameSlots;
use crate::pipeline::{Input, Output};

/// Plaintext in a buffer: `len` bytes from `at`. Wiped when dropped unsealed.
struct Chunk {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

enum Msg {
    Data(Chunk),
    /// The source verified completely: no more plaintext.
    End,
}

/// The decrypting pipeline's output.
pub(crate) struct PlainSink {
    tx: SyncSender<Msg>,
    recycle: Receiver<Vec<u8>>,
    slots: FrameSlots,
    /// A send found the encrypting side gone (it failed; its error is the one to report).
    peer_gone: bool,
}

/// The encrypting pipeline's input.
pub(crate) struct PlainSource {
    rx: Receiver<Msg>,
    cur: Option<Chunk>,
    /// Bytes of `cur` already taken.
    pos: usize,
    ended: bool,
    recycle: Sender<Vec<u8>>,
}

/// A linked sink and source for frames of `slots`, holding at most `depth` chunks between
/// them.
pub(crate) fn link(slots: FrameSlots, depth: usize) -> (PlainSink, PlainSource) {
    let (tx, rx) = sync_channel(depth.max(1));
    let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
    (
        PlainSink {
            tx,
            recycle: recycle_rx,
            slots,
            peer_gone: false,
        },
        PlainSource {
            rx,
            cur: None,
            pos: 0,
            ended: false,
            recycle: recycle_tx,
        },
    )
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the other half of the rewrap stopped",
    )
}

impl PlainSink {
    /// Says the plaintext is complete. Call only once the source message verified.
    pub(crate) fn end(mut self) -> io::Result<()> {
        self.send(Msg::End)
    }

    /// Whether the encrypting side stopped first.
    pub(crate) fn peer_gone(&self) -> bool {
        self.peer_gone
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        self.tx.send(msg).map_err(|_| {
            self.peer_gone = true;
            gone()
        })
    }
}

impl Output for &mut PlainSink {
    const HANDS_OVER: bool = true;

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put_buffer(bytes.to_vec(), 0..bytes.len()).map(drop)
    }

    fn put_buffer(&mut self, mut buf: Vec<u8>, range: Range<usize>) -> io::Result<Option<Vec<u8>>> {
        if range.is_empty() {
            return Ok(Some(buf));
        }
        let chunk = if range.len() == self.slots.frame_length() {
            // A full frame: move it where the encrypting side seals in place.
            if buf.len() < self.slots.buffer_len() {
                buf.resize(self.slots.buffer_len(), 0);
            }
            buf.copy_within(range.clone(), FrameSlots::PLAINTEXT_AT);
            Chunk {
                buf,
                at: FrameSlots::PLAINTEXT_AT,
                len: range.len(),
            }
        } else {
            Chunk {
                buf,
                at: range.start,
                len: range.len(),
            }
        };
        self.send(Msg::Data(chunk))?;
        Ok(self.recycle.try_recv().ok())
    }

    fn flush_output(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PlainSource {
    /// Makes sure `cur` holds the chunk to read from, unless the plaintext ended.
    fn next_chunk(&mut self) -> io::Result<()> {
        if self.cur.is_none() && !self.ended {
            match self.rx.recv() {
                Ok(Msg::Data(chunk)) => {
                    self.cur = Some(chunk);
                    self.pos = 0;
                }
                Ok(Msg::End) => self.ended = true,
                Err(_) => return Err(gone()),
            }
        }
        Ok(())
    }

    /// Wipes a spent chunk's plaintext and sends its buffer back for reuse.
    fn spend(&mut self, mut chunk: Chunk) {
        let mut buf = std::mem::take(&mut chunk.buf);
        buf[chunk.at..chunk.at + chunk.len].zeroize();
        let _ = self.recycle.send(buf);
    }
}

impl Input for PlainSource {
    fn fill(&mut self, buf: &mut Vec<u8>, at: usize, len: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < len {
            self.next_chunk()?;
            let Some(chunk) = &mut self.cur else {
                break;
            };
            // A whole frame where it is asked for: take its buffer, give ours back (it
            // holds only ciphertext, or nothing yet).
            let whole = n == 0 && self.pos == 0 && chunk.at == at && chunk.len == len;
            if whole && chunk.buf.len() >= buf.len() {
                let taken = std::mem::replace(buf, std::mem::take(&mut chunk.buf));
                self.cur = None;
                let _ = self.recycle.send(taken);
                return Ok(len);
            }
            let k = (chunk.len - self.pos).min(len - n);
            let from = chunk.at + self.pos;
            buf[at + n..at + n + k].copy_from_slice(&chunk.buf[from..from + k]);
            n += k;
            self.pos += k;
            if self.pos == chunk.len {
                if let Some(spent) = self.cur.take() {
                    self.spend(spent);
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FL: usize = 4096;

    #[test]
    fn a_full_frame_is_handed_over_in_its_own_buffer_at_the_sealing_place() {
        let slots = FrameSlots::new(FL);
        let (mut sink, mut source) = link(slots, 4);
        // As the decrypting pipeline leaves it: a regular frame's body after 16 bytes.
        let mut opened = vec![0xEE; 16 + FL + 16];
        opened[16..16 + FL].fill(7);
        (&mut sink).put_buffer(opened, 16..16 + FL).unwrap();
        sink.end().unwrap();
        let mut buf = slots.buffer();
        assert_eq!(
            source.fill(&mut buf, FrameSlots::PLAINTEXT_AT, FL).unwrap(),
            FL
        );
        assert_eq!(buf.len(), slots.buffer_len());
        assert!(buf[slots.plaintext(FL)].iter().all(|&b| b == 7));
        assert_eq!(
            source.fill(&mut buf, FrameSlots::PLAINTEXT_AT, FL).unwrap(),
            0
        );
    }

    #[test]
    fn a_short_chunk_is_copied_and_its_buffer_wiped_before_it_goes_back() {
        let slots = FrameSlots::new(FL);
        let (mut sink, mut source) = link(slots, 4);
        let mut last = vec![0u8; 64];
        last[24..34].copy_from_slice(b"0123456789");
        (&mut sink).put_buffer(last, 24..34).unwrap();
        let mut buf = slots.buffer();
        // Asked for exactly what is there: no wait for more (the link is still open).
        assert_eq!(
            source.fill(&mut buf, FrameSlots::PLAINTEXT_AT, 10).unwrap(),
            10
        );
        assert_eq!(&buf[slots.plaintext(10)], b"0123456789");
        // The decrypting side gets the spent buffer back with the next put: wiped.
        let back = (&mut sink).put_buffer(vec![1; 8], 0..0).unwrap();
        assert_eq!(back, Some(vec![1; 8]));
        let spent = sink.recycle.try_recv().unwrap();
        assert!(
            spent.iter().all(|&b| b == 0),
            "plaintext left in a recycled buffer"
        );
    }

    #[test]
    fn a_closed_link_is_an_error_not_an_end() {
        let (sink, mut source) = link(FrameSlots::new(FL), 4);
        drop(sink);
        let mut buf = vec![0u8; 32];
        assert_eq!(
            source.fill(&mut buf, 0, 16).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let (mut sink, source) = link(FrameSlots::new(FL), 4);
        drop(source);
        let e = (&mut sink).put_buffer(vec![1; 8], 0..8).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(sink.peer_gone());
    }

    #[test]
    fn unaligned_requests_are_served_across_chunks() {
        let slots = FrameSlots::new(FL);
        let (mut sink, mut source) = link(slots, 8);
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        for part in bytes.chunks(700) {
            (&mut sink).put(part).unwrap();
        }
        sink.end().unwrap();
        let mut buf = vec![0u8; 4000];
        assert_eq!(source.fill(&mut buf, 5, 2000).unwrap(), 2000);
        assert_eq!(&buf[5..2005], &bytes[..2000]);
        assert_eq!(source.fill(&mut buf, 0, 2000).unwrap(), 1000);
        assert_eq!(&buf[..1000], &bytes[2000..]);
    }
}
