//! Encryption driven by pushes of plaintext into caller-owned output buffers, for callers
//! that own the I/O loop (the C API's sessions, event loops).

use zeroize::Zeroize;

use crate::engine::{Encryptor, FrameSlots};
use crate::error::{ConfigError, Error};

/// What one call took and gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Input bytes taken.
    pub consumed: usize,
    /// Output bytes written.
    pub written: usize,
}

/// Encrypts a message pushed in pieces of any size into output buffers of any size.
///
/// [`push`](Self::push) takes what it can and writes what fits; a full frame whose
/// plaintext is in the input and whose room is in the output is sealed straight from one
/// into the other (no copy). Then call [`finish`](Self::finish) until
/// [`is_done`](Self::is_done). Memory: one frame buffer plus at most one frame (or the
/// header, or the footer) waiting for room.
///
/// ```
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
/// use envcrypt::stream::EncryptingPush;
///
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let mut push = EncryptingPush::new(client.encryptor(&EncryptionContext::new(), None)?);
/// let (plaintext, mut message, mut out) = (vec![7u8; 300_000], Vec::new(), [0u8; 4096]);
/// let mut rest = &plaintext[..];
/// while !rest.is_empty() {
///     let step = push.push(rest, &mut out)?;
///     message.extend_from_slice(&out[..step.written]);
///     rest = &rest[step.consumed..];
/// }
/// while !push.is_done() {
///     let n = push.finish(&mut out)?;
///     message.extend_from_slice(&out[..n]);
/// }
/// assert_eq!(client.decrypt(&message, &DecryptOptions::default())?.plaintext, plaintext);
/// # Ok::<(), envcrypt::Error>(())
/// ```
pub struct EncryptingPush {
    encryptor: Encryptor,
    slots: FrameSlots,
    /// The frame being filled: plaintext at `FrameSlots::PLAINTEXT_AT`.
    buf: Vec<u8>,
    filled: usize,
    /// Sealed bytes waiting for room in an output buffer, and how many went out.
    pending: Vec<u8>,
    handed: usize,
    finished: bool,
    failed: bool,
}

impl std::fmt::Debug for EncryptingPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptingPush")
            .field("frame_length", &self.slots.frame_length())
            .field("filled", &self.filled)
            .field("pending", &(self.pending.len() - self.handed))
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl EncryptingPush {
    /// Starts the message whose header `encryptor` built (the header is the first output).
    pub fn new(encryptor: Encryptor) -> Self {
        let slots = encryptor.slots();
        let pending = encryptor.header().to_vec();
        Self {
            encryptor,
            slots,
            buf: slots.buffer(),
            filled: 0,
            pending,
            handed: 0,
            finished: false,
            failed: false,
        }
    }

    /// True once [`finish`](Self::finish) wrote the last byte of the message.
    pub fn is_done(&self) -> bool {
        self.finished && self.handed == self.pending.len()
    }

    /// Takes what it can of `input` and writes what fits into `out`. Any error is final.
    pub fn push(&mut self, input: &[u8], out: &mut [u8]) -> Result<Pushed, Error> {
        if self.failed || self.finished {
            return Err(ConfigError::StreamFinished.into());
        }
        let result = self.step(input, out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Pushed, Error> {
        let fl = self.slots.frame_length();
        let rfl = self.encryptor.regular_frame_len();
        let mut done = Pushed::default();
        loop {
            done.written += self.drain(&mut out[done.written..]);
            let blocked = self.handed < self.pending.len();
            if self.filled == fl && !blocked {
                self.seal_full()?;
                continue;
            }
            let rest = &input[done.consumed..];
            if rest.is_empty() || self.filled == fl {
                return Ok(done); // Input used up, or a full frame waits for room.
            }
            let room = out.len() - done.written;
            if !blocked && self.filled == 0 && rest.len() >= fl && room >= rfl {
                // Straight from the input into the output.
                let frame = &mut out[done.written..done.written + rfl];
                self.encryptor.seal_frame_from(&rest[..fl], frame)?;
                done.consumed += fl;
                done.written += rfl;
                continue;
            }
            // Into the frame buffer (also while output waits for room).
            let take = rest.len().min(fl - self.filled);
            let at = FrameSlots::PLAINTEXT_AT + self.filled;
            self.buf[at..at + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            done.consumed += take;
        }
    }

    /// Seals the full frame in the buffer as a regular one (a full frame is never the last:
    /// the final frame may be empty) and queues it.
    fn seal_full(&mut self) -> Result<(), Error> {
        let frame = self.slots.frame(false, self.slots.frame_length());
        self.encryptor.seal_frame(&mut self.buf[frame.clone()])?;
        self.pending.clear();
        self.handed = 0;
        self.pending.extend_from_slice(&self.buf[frame]);
        self.filled = 0;
        Ok(())
    }

    /// Ends the input: seals the final frame (and the footer) and writes what fits into
    /// `out`; returns the bytes written. Call until [`is_done`](Self::is_done); on a done
    /// message it writes nothing.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if self.failed {
            return Err(ConfigError::StreamFinished.into());
        }
        let result = self.finish_step(out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn finish_step(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let mut written = self.drain(out);
        while !self.finished && self.handed == self.pending.len() {
            if self.filled == self.slots.frame_length() {
                self.seal_full()?;
            } else {
                let frame = self.slots.frame(true, self.filled);
                let footer = self
                    .encryptor
                    .seal_final_frame(&mut self.buf[frame.clone()])?;
                self.pending.clear();
                self.handed = 0;
                self.pending.extend_from_slice(&self.buf[frame]);
                self.pending.extend_from_slice(&footer);
                self.buf.zeroize();
                self.filled = 0;
                self.finished = true;
            }
            written += self.drain(&mut out[written..]);
        }
        Ok(written)
    }

    /// Moves waiting bytes into `out`; returns how many.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let rest = &self.pending[self.handed..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.handed += n;
        n
    }

    fn fail(&mut self) {
        self.failed = true;
        self.buf.zeroize();
        self.pending.clear();
        self.handed = 0;
    }
}

impl Drop for EncryptingPush {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Client, DecryptOptions};
    use crate::format::{AlgorithmSuite, EncryptionContext};
    use crate::keyring::RawAesKeyring;

    #[test]
    fn any_piece_and_buffer_size_makes_the_same_plaintext() {
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            let c = Client::builder()
                .keyring(RawAesKeyring::new("ns", "k", &[3; 32]).unwrap())
                .suite(suite)
                .frame_length(1000)
                .build()
                .unwrap();
            for len in [0, 1, 1000, 5500] {
                let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                for (piece, room) in [
                    (1, 1),
                    (7, 3000),
                    (1000, 1032),
                    (4096, 4096),
                    (6000, 1 << 16),
                ] {
                    let mut push =
                        EncryptingPush::new(c.encryptor(&EncryptionContext::new(), None).unwrap());
                    let (mut message, mut out) = (Vec::new(), vec![0u8; room]);
                    for chunk in pt.chunks(piece) {
                        let mut rest = chunk;
                        while !rest.is_empty() {
                            let step = push.push(rest, &mut out).unwrap();
                            message.extend_from_slice(&out[..step.written]);
                            rest = &rest[step.consumed..];
                        }
                    }
                    while !push.is_done() {
                        let n = push.finish(&mut out).unwrap();
                        message.extend_from_slice(&out[..n]);
                    }
                    assert_eq!(push.finish(&mut out).unwrap(), 0, "finish after done");
                    let back = c.decrypt(&message, &DecryptOptions::default()).unwrap();
                    assert_eq!(
                        back.plaintext, pt,
                        "{len} bytes, pieces {piece}, room {room}"
                    );
                    assert!(matches!(
                        push.push(b"x", &mut out),
                        Err(Error::Config(ConfigError::StreamFinished))
                    ));
                }
            }
        }
    }
}
