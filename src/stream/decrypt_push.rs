//! Decryption driven by pushes of ciphertext into caller-owned output buffers, for callers
//! that own the I/O loop (the C API's sessions, event loops): the engine's byte requests,
//! with a partial unit buffered here.

use std::ops::Range;

use zeroize::Zeroize;

use super::encrypt_push::Pushed;
use crate::client::{Client, DecryptOptions};
use crate::engine::{Decryptor, FrameLayout, Next};
use crate::error::{ConfigError, Error, FormatError};
use crate::format::Header;

/// Decrypts a message pushed in pieces of any size into output buffers of any size.
///
/// Release rule: a frame's plaintext is written only after its tag verified; the final
/// frame's only by [`finish`](Self::finish), once the input ended right after it (and, for
/// signed suites, the signature verified). For signed messages the frames before the final
/// one are **not yet covered by the signature** when they are written: a holder of the data
/// key can forge them. Keep them private until `finish` leaves [`is_done`](Self::is_done)
/// true, or use the file API.
///
/// A unit that lies whole in the input and fits the output is opened straight from one
/// into the other (no copy). Memory: at most one unit buffered.
///
/// ```
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
/// use envcrypt::stream::DecryptingPush;
///
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let message = client.encrypt(&[5u8; 200_000], &EncryptionContext::new())?;
/// let mut push = DecryptingPush::new(&client, &DecryptOptions::default());
/// let (mut plaintext, mut out) = (Vec::new(), vec![0u8; 100_000]);
/// let mut rest = &message[..];
/// while !rest.is_empty() {
///     let step = push.push(rest, &mut out)?;
///     plaintext.extend_from_slice(&out[..step.written]);
///     rest = &rest[step.consumed..];
/// }
/// while !push.is_done() {
///     let n = push.finish(&mut out)?;
///     plaintext.extend_from_slice(&out[..n]);
/// }
/// assert_eq!(plaintext, [5u8; 200_000]);
/// # Ok::<(), envcrypt::Error>(())
/// ```
pub struct DecryptingPush {
    client: Client,
    options: DecryptOptions,
    decryptor: Decryptor,
    /// Input of a unit (or of the header) not yet complete, or a unit opened in place.
    buf: Vec<u8>,
    header: Option<Header>,
    /// `buf` holds an opened unit: its plaintext not yet written.
    opened: Option<Range<usize>>,
    /// The opened unit is the final one: its plaintext waits for `finish`.
    last: bool,
    /// `finish` released the final unit.
    ended: bool,
    failed: bool,
}

impl std::fmt::Debug for DecryptingPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingPush")
            .field("header", &self.header.is_some())
            .field("buffered", &self.buf.len())
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}

impl DecryptingPush {
    /// A push decryptor for one message (the header is read from the first pushes).
    pub fn new(client: &Client, options: &DecryptOptions) -> Self {
        Self {
            client: client.clone(),
            options: options.clone(),
            decryptor: Decryptor::new(client.decrypt_config()),
            buf: Vec::new(),
            header: None,
            opened: None,
            last: false,
            ended: false,
            failed: false,
        }
    }

    /// The authenticated header, once it was read.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// True once [`finish`](Self::finish) wrote the last plaintext of a verified message.
    pub fn is_done(&self) -> bool {
        self.ended && self.opened.as_ref().is_none_or(Range::is_empty)
    }

    /// Takes what it can of `input` and writes the plaintext of verified units that fits
    /// into `out`. Bytes after the final unit are an error ([`FormatError::TrailingBytes`]).
    /// Any error is final.
    pub fn push(&mut self, input: &[u8], out: &mut [u8]) -> Result<Pushed, Error> {
        if self.failed || self.ended {
            return Err(ConfigError::StreamFinished.into());
        }
        let result = self.step(input, out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Pushed, Error> {
        let mut done = Pushed::default();
        if self.header.is_none() {
            done.consumed = self.take_header(input)?;
            if self.header.is_none() {
                return Ok(done);
            }
        }
        loop {
            if !self.last {
                done.written += self.drain(&mut out[done.written..]);
            }
            let rest = &input[done.consumed..];
            if self.last {
                if !rest.is_empty() {
                    return Err(FormatError::TrailingBytes.into());
                }
                return Ok(done);
            }
            if self.opened.is_some() || rest.is_empty() {
                return Ok(done); // The output is full, or the input used up.
            }
            if self.buf.is_empty() {
                // Whole in the input and room in the output: no copy.
                if let Next::Unit(layout) = self.decryptor.next_frame(rest)? {
                    let (n, total) = (layout.body_len(), layout.total_len());
                    let room = out.len() - done.written;
                    if !layout.is_final() && room >= n {
                        let (prefix, body, footer) = layout.split(&rest[..total]);
                        let to = &mut out[done.written..done.written + n];
                        self.decryptor
                            .open_frame_to(&layout, prefix, body, footer, to)?;
                        done.consumed += total;
                        done.written += n;
                        continue;
                    }
                    self.buf.extend_from_slice(&rest[..total]);
                    done.consumed += total;
                    self.open_buffered(layout)?;
                    continue;
                }
            }
            // A partial unit: take what completes it (at most the rest of the input).
            let used = match self.decryptor.next_frame(&self.buf)? {
                Next::Unit(_) => 0,
                Next::NeedBytes(need) => need.saturating_sub(self.buf.len()).min(rest.len()),
            };
            self.buf.extend_from_slice(&rest[..used]);
            done.consumed += used;
            match self.decryptor.next_frame(&self.buf)? {
                Next::Unit(layout) => self.open_buffered(layout)?,
                Next::NeedBytes(_) => return Ok(done),
            }
        }
    }

    /// Opens the unit at the start of `buf` in place; its plaintext waits there.
    fn open_buffered(&mut self, layout: FrameLayout) -> Result<(), Error> {
        let total = layout.total_len();
        let range = self
            .decryptor
            .open_frame_in_place(&layout, &mut self.buf[..total])?;
        self.opened = Some(range);
        self.last = layout.is_final();
        Ok(())
    }

    /// Buffers header bytes until the header parses, then unlocks and authenticates it;
    /// returns the bytes taken.
    fn take_header(&mut self, input: &[u8]) -> Result<usize, Error> {
        let max = self.client.decrypt_config().max_header_length as usize;
        let used = input
            .len()
            .min(max.saturating_add(1).saturating_sub(self.buf.len()));
        self.buf.extend_from_slice(&input[..used]);
        // The engine refuses a header over the limit; a piece never buffers beyond it.
        let Some(len) = self.decryptor.parse_header(&self.buf)? else {
            return Ok(used);
        };
        self.client.unlock(&mut self.decryptor, &self.options)?;
        let header = self
            .decryptor
            .header()
            .ok_or(Error::Internal("no header after it was authenticated"))?
            .header
            .clone();
        self.header = Some(header);
        // Give back what followed the header: the caller pushes it again.
        let extra = self.buf.len() - len;
        self.buf.clear();
        Ok(used - extra)
    }

    /// Moves waiting plaintext into `out`; returns how many bytes. Once all of it is out,
    /// the unit's buffer is wiped.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let Some(range) = &mut self.opened else {
            return 0;
        };
        let n = range.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[range.start..range.start + n]);
        range.start += n;
        if range.start == range.end {
            self.buf.zeroize();
            self.buf.clear();
            self.opened = None;
        }
        n
    }

    /// Ends the input: writes the final unit's plaintext (what fits into `out`) if the
    /// message is complete, else fails with [`FormatError::Truncated`]. Call until
    /// [`is_done`](Self::is_done); on a done message it writes nothing.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if self.failed {
            return Err(ConfigError::StreamFinished.into());
        }
        if !self.last {
            self.fail();
            return Err(FormatError::Truncated.into());
        }
        self.ended = true;
        Ok(self.drain(out))
    }

    fn fail(&mut self) {
        self.failed = true;
        self.opened = None;
        self.buf.zeroize();
    }
}

impl Drop for DecryptingPush {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{AlgorithmSuite, EncryptionContext};
    use crate::keyring::RawAesKeyring;
    use crate::AuthenticationError;

    fn client(suite: AlgorithmSuite) -> Client {
        Client::builder()
            .keyring(RawAesKeyring::new("ns", "k", &[3; 32]).unwrap())
            .suite(suite)
            .frame_length(1000)
            .build()
            .unwrap()
    }

    /// Pushes `message` in pieces of `piece` bytes into buffers of `room`; returns the
    /// plaintext written and the outcome.
    fn run(c: &Client, message: &[u8], piece: usize, room: usize) -> (Vec<u8>, Result<(), Error>) {
        let mut push = DecryptingPush::new(c, &DecryptOptions::default());
        let (mut plaintext, mut out) = (Vec::new(), vec![0u8; room]);
        for chunk in message.chunks(piece) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match push.push(rest, &mut out) {
                    Ok(step) => {
                        plaintext.extend_from_slice(&out[..step.written]);
                        rest = &rest[step.consumed..];
                    }
                    Err(e) => return (plaintext, Err(e)),
                }
            }
        }
        loop {
            match push.finish(&mut out) {
                Ok(n) => plaintext.extend_from_slice(&out[..n]),
                Err(e) => return (plaintext, Err(e)),
            }
            if push.is_done() {
                assert_eq!(push.finish(&mut out).unwrap(), 0, "finish after done");
                return (plaintext, Ok(()));
            }
        }
    }

    #[test]
    fn any_piece_and_buffer_size_round_trips() {
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            let c = client(suite);
            for len in [0, 999, 1000, 5500] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
                for (piece, room) in [
                    (1, 1),
                    (7, 999),
                    (1000, 1000),
                    (4096, 3),
                    (m.len(), 1 << 16),
                ] {
                    let (out, r) = run(&c, &m, piece, room);
                    r.unwrap();
                    assert_eq!(out, pt, "{len} bytes, pieces of {piece}, room {room}");
                }
            }
        }
    }

    #[test]
    fn the_final_unit_waits_for_the_end_and_bad_endings_fail() {
        let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
        let pt = vec![9u8; 2500];
        let m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
        // Frames before the final one are written; a call that fails reports nothing (its
        // output is discarded), so a message pushed whole shows none of them.
        let before_the_last = |out: &[u8], piece: usize| {
            assert!(
                out.len() == 2000 || (piece == m.len() && out.is_empty()),
                "{}",
                out.len()
            );
        };
        for (piece, room) in [(100, 5000), (m.len(), 5000), (100, 10)] {
            // Truncated: the frames before the cut were written, the last one never.
            let (out, r) = run(&c, &m[..m.len() - 10], piece, room);
            assert!(
                matches!(r, Err(Error::Format(FormatError::Truncated))),
                "{r:?}"
            );
            before_the_last(&out, piece);
            // Appended bytes.
            let mut longer = m.clone();
            longer.push(0);
            let (out, r) = run(&c, &longer, piece, room);
            assert!(
                matches!(r, Err(Error::Format(FormatError::TrailingBytes))),
                "{r:?}"
            );
            before_the_last(&out, piece);
            // A bad signature: the final frame is never written.
            let mut forged = m.clone();
            let last = forged.len() - 1;
            forged[last] ^= 1;
            let (out, r) = run(&c, &forged, piece, room);
            assert!(
                matches!(
                    r,
                    Err(Error::Authentication(AuthenticationError::Signature))
                ),
                "{r:?}"
            );
            before_the_last(&out, piece);
        }
        // After an error, everything fails.
        let mut push = DecryptingPush::new(&c, &DecryptOptions::default());
        let mut out = vec![0u8; 10_000];
        let mut bad = m.clone();
        bad[5] ^= 1;
        assert!(push.push(&bad, &mut out).is_err());
        assert!(matches!(
            push.push(&m, &mut out),
            Err(Error::Config(ConfigError::StreamFinished))
        ));
        assert!(push.finish(&mut out).is_err());
    }
}
