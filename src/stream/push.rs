//! Decryption driven by pushes of ciphertext, for callers that own the I/O loop (the C
//! API's sessions, event loops): the engine's byte requests, with the input buffered here.

use std::ops::Range;

use zeroize::Zeroize;

use crate::client::{Client, DecryptOptions};
use crate::engine::{Decryptor, Next};
use crate::error::{ConfigError, Error, FormatError};
use crate::format::Header;

/// Decrypts a message pushed in pieces of any size.
///
/// Each [`push`](Self::push) takes bytes and returns plaintext of the units that verified.
/// Release rule: a frame's plaintext only after its tag verified; the final frame's only
/// at [`finish`](Self::finish), once the input ended right after it (and, signed suites,
/// the signature verified). For signed messages the frames before the final one are **not
/// yet covered by the signature** when they are returned: a holder of the data key can
/// forge them. Keep them private until `finish` returns `Ok`, or use the file API.
///
/// Memory: the buffered input never exceeds one unit (one frame with its header bytes).
///
/// ```
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
/// use envcrypt::stream::DecryptingPush;
///
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let message = client.encrypt(&[5u8; 200_000], &EncryptionContext::new())?;
/// let mut push = DecryptingPush::new(&client, &DecryptOptions::default());
/// let mut plaintext = Vec::new();
/// for piece in message.chunks(1000) {
///     let mut rest = piece;
///     while !rest.is_empty() {
///         let used = push.push(rest, &mut plaintext)?;
///         rest = &rest[used..];
///     }
/// }
/// push.finish(&mut plaintext)?;
/// assert_eq!(plaintext, [5u8; 200_000]);
/// # Ok::<(), envcrypt::Error>(())
/// ```
pub struct DecryptingPush {
    client: Client,
    options: DecryptOptions,
    decryptor: Decryptor,
    /// Input not yet consumed by the engine.
    buf: Vec<u8>,
    /// The header's length once it authenticated (its bytes were dropped from `buf`).
    header: Option<Header>,
    /// Plaintext of the final unit, held until the input ends.
    held: Option<Range<usize>>,
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
            held: None,
            failed: false,
        }
    }

    /// The authenticated header, once it was read.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// True once [`finish`](Self::finish) verified the whole message.
    pub fn is_done(&self) -> bool {
        self.decryptor.is_done() && self.held.is_none()
    }

    /// Takes up to all of `input` (returns how much) and appends the plaintext of every
    /// unit that verified to `out` (at most one unit per call). Bytes after the final unit
    /// are an error ([`FormatError::TrailingBytes`]). Any error is final.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        if self.failed {
            return Err(ConfigError::StreamFinished.into());
        }
        let result = self.step(input, out);
        if result.is_err() {
            self.fail();
        }
        result
    }

    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        if self.held.is_some() || self.decryptor.is_done() {
            if input.is_empty() {
                return Ok(0);
            }
            return Err(FormatError::TrailingBytes.into());
        }
        if self.header.is_none() {
            return self.take_header(input);
        }
        // Take only what completes the next unit: at most one unit stays buffered.
        let (layout, used) = match self.decryptor.next_frame(&self.buf)? {
            Next::Unit(layout) => (layout, 0),
            Next::NeedBytes(need) => {
                let used = need.saturating_sub(self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..used]);
                if self.buf.len() < need {
                    return Ok(used);
                }
                match self.decryptor.next_frame(&self.buf)? {
                    Next::Unit(layout) => (layout, used),
                    Next::NeedBytes(_) => return Ok(used),
                }
            }
        };
        let total = layout.total_len();
        let range = self
            .decryptor
            .open_frame_in_place(&layout, &mut self.buf[..total])?;
        if layout.is_final() {
            // Released at `finish`, once nothing followed it.
            if self.buf.len() > total {
                return Err(FormatError::TrailingBytes.into());
            }
            self.held = Some(range);
        } else {
            out.extend_from_slice(&self.buf[range]);
            self.buf[..total].zeroize();
            self.buf.drain(..total);
        }
        Ok(used)
    }

    /// Buffers header bytes until the header parses, then unlocks and authenticates it.
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
        // Give back what followed the header: the frames are taken one unit at a time by
        // the next pushes (else units buffered here would wait for input that never comes,
        // and a message pushed whole would end `Truncated`). The header was incomplete
        // before this piece, so it ends inside it: `surplus < used`.
        let surplus = self.buf.len() - len;
        self.buf.clear();
        Ok(used - surplus)
    }

    /// Ends the input: releases the final unit's plaintext to `out` if the message is
    /// complete, else fails with [`FormatError::Truncated`]. On a finished message: `Ok`,
    /// nothing appended.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.failed {
            return Err(ConfigError::StreamFinished.into());
        }
        match self.held.take() {
            Some(range) => {
                out.extend_from_slice(&self.buf[range]);
                self.buf.zeroize();
                Ok(())
            }
            None if self.decryptor.is_done() => Ok(()),
            None => {
                self.fail();
                Err(FormatError::Truncated.into())
            }
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.held = None;
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

    /// Pushes `message` in pieces of `piece` bytes; returns the plaintext and the result.
    fn run(c: &Client, message: &[u8], piece: usize) -> (Vec<u8>, Result<(), Error>) {
        let mut push = DecryptingPush::new(c, &DecryptOptions::default());
        let mut out = Vec::new();
        for chunk in message.chunks(piece) {
            let mut rest = chunk;
            while !rest.is_empty() {
                match push.push(rest, &mut out) {
                    Ok(n) => rest = &rest[n..],
                    Err(e) => return (out, Err(e)),
                }
            }
        }
        let result = push.finish(&mut out);
        if result.is_ok() {
            assert!(push.is_done());
        }
        (out, result)
    }

    #[test]
    fn any_piece_size_round_trips() {
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            let c = client(suite);
            for len in [0, 999, 1000, 5500] {
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
                for piece in [1, 7, 1000, 4096, m.len()] {
                    let (out, r) = run(&c, &m, piece);
                    r.unwrap();
                    assert_eq!(out, pt, "{len} bytes in pieces of {piece}");
                }
            }
        }
    }

    #[test]
    fn a_message_pushed_whole_is_taken_one_unit_at_a_time() {
        // The first push parses the header and gives back what follows it; each later push
        // takes one unit. Pushing the rest until it is empty, then finish, decrypts it all.
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            let c = client(suite);
            let pt: Vec<u8> = (0..5500).map(|i| (i * 7) as u8).collect();
            let m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
            let mut push = DecryptingPush::new(&c, &DecryptOptions::default());
            let mut out = Vec::new();
            let mut rest = &m[..];
            let mut calls = 0;
            while !rest.is_empty() {
                let used = push.push(rest, &mut out).unwrap();
                assert!(used > 0, "every push takes bytes");
                assert!(push.buf.len() <= 1000 + 100, "buffered {}", push.buf.len());
                rest = &rest[used..];
                calls += 1;
            }
            assert!(calls >= 7, "{calls} pushes: header, 5 frames, final frame");
            push.finish(&mut out).unwrap();
            assert!(push.is_done());
            assert_eq!(out, pt);
        }
    }

    #[test]
    fn the_final_unit_waits_for_the_end_and_bad_endings_fail() {
        let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
        let pt = vec![9u8; 2500];
        let m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
        // Truncated: the frames before the cut were returned, the last one never.
        let (out, r) = run(&c, &m[..m.len() - 10], 100);
        assert!(
            matches!(r, Err(Error::Format(FormatError::Truncated))),
            "{r:?}"
        );
        assert_eq!(out.len(), 2000);
        // Appended bytes.
        let mut longer = m.clone();
        longer.push(0);
        let (out, r) = run(&c, &longer, 100);
        assert!(
            matches!(r, Err(Error::Format(FormatError::TrailingBytes))),
            "{r:?}"
        );
        assert_eq!(out.len(), 2000);
        // A bad signature: the final frame is never returned.
        let mut forged = m.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let (out, r) = run(&c, &forged, 100);
        assert!(
            matches!(
                r,
                Err(Error::Authentication(AuthenticationError::Signature))
            ),
            "{r:?}"
        );
        assert_eq!(out.len(), 2000);
        // After an error, everything fails.
        let mut push = DecryptingPush::new(&c, &DecryptOptions::default());
        let mut out = Vec::new();
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
