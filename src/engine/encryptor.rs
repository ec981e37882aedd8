//! The encrypting state machine.

use crate::crypto::{AeadKey, Signer, NONCE_LEN, TAG_LEN};
use crate::error::{ConfigError, Error, PolicyError};
use crate::format::{
    frame_aad, regular_frame_len, write_final_frame_header, write_header_v2,
    write_regular_frame_header, BodyKind, EncryptionContext, HeaderV2Fields,
    FINAL_FRAME_PREFIX_LEN, MAX_FRAME_LENGTH, REGULAR_FRAME_PREFIX_LEN,
};
use crate::materials::EncryptionMaterials;

use super::keys::{self, ContentKey};
use super::FrameSlots;

/// Seals one message, frame by frame, into buffers the caller owns.
///
/// Order of use: write [`header`](Self::header), then any number of
/// [`seal_frame`](Self::seal_frame), then exactly one
/// [`seal_final_frame`](Self::seal_final_frame), whose return value (the footer) ends the
/// message. IVs are `0` for the header tag, then the sequence numbers 1, 2, 3, ...
///
/// A plaintext that fills its last frame ends with an empty final frame.
///
/// Parallel adapters split the same steps: [`reserve_frame`](Self::reserve_frame) /
/// [`reserve_frames`](Self::reserve_frames) / [`reserve_final_frame`](Self::reserve_final_frame)
/// hand out [`FrameTicket`]s in order, workers seal with their own [`FrameSealer`], and the sealed frames are hashed in order
/// (for signed suites) by whoever holds the signer ([`take_signer`](Self::take_signer)).
pub struct Encryptor {
    header: Vec<u8>,
    content_key: ContentKey,
    sealer: FrameSealer,
    next_sequence: u32,
    signer: Option<Box<dyn Signer>>,
    finished: bool,
}

/// The right to seal one frame of one message: its sequence number, handed out once.
///
/// Only [`Encryptor::reserve_frame`], [`Encryptor::reserve_final_frame`] and
/// [`FrameTickets`] make tickets, each number once per message, and a [`FrameSealer`]
/// consumes the ticket it seals with. A ticket is neither `Clone` nor `Copy`, so no safe
/// code can seal two frames under one GCM nonce:
///
/// ```compile_fail
/// # use envcrypt::{Client, EncryptionContext, keyring::RawAesKeyring};
/// # let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32]).unwrap());
/// let mut enc = client.encryptor(&EncryptionContext::new(), None).unwrap();
/// let mut sealer = enc.frame_sealer().unwrap();
/// let ticket = enc.reserve_frame().unwrap();
/// let (mut a, mut b) = (vec![0; enc.regular_frame_len()], vec![0; enc.regular_frame_len()]);
/// sealer.seal(ticket, &mut a).unwrap();
/// sealer.seal(ticket, &mut b).unwrap(); // error[E0382]: use of moved value: `ticket`
/// ```
#[derive(Debug)]
#[must_use = "a reserved frame must be sealed, or the message cannot be finished"]
pub struct FrameTicket {
    sequence: u32,
    last: bool,
    message_id: [u8; 32],
}

impl FrameTicket {
    /// The frame's sequence number (1, 2, 3, ...).
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// True for the final frame's ticket.
    pub fn is_final(&self) -> bool {
        self.last
    }
}

/// Consecutive regular-frame tickets reserved at once ([`Encryptor::reserve_frames`]), to
/// split into batches for workers; yields them in order.
#[derive(Debug)]
#[must_use = "reserved frames must be sealed, or the message cannot be finished"]
pub struct FrameTickets {
    next: u32,
    end: u32,
    message_id: [u8; 32],
}

impl FrameTickets {
    /// Takes the first `n` tickets (fewer if fewer are left) as a run of their own.
    pub fn split_front(&mut self, n: usize) -> FrameTickets {
        let n = u32::try_from(n)
            .unwrap_or(u32::MAX)
            .min(self.end - self.next);
        let front = FrameTickets {
            next: self.next,
            end: self.next + n,
            message_id: self.message_id,
        };
        self.next += n;
        front
    }

    /// Tickets left.
    pub fn len(&self) -> usize {
        (self.end - self.next) as usize
    }

    /// True when no ticket is left.
    pub fn is_empty(&self) -> bool {
        self.next == self.end
    }
}

impl Iterator for FrameTickets {
    type Item = FrameTicket;

    fn next(&mut self) -> Option<FrameTicket> {
        (self.next < self.end).then(|| {
            self.next += 1;
            FrameTicket {
                sequence: self.next - 1,
                last: false,
                message_id: self.message_id,
            }
        })
    }
}

/// Seals the frames of one message given their [`FrameTicket`]s: one per worker thread.
///
/// Each sealer owns its key object and seals its tickets in rising order (the FIPS module
/// enforces rising nonces per key object): a ticket at or below the last one it sealed, or
/// one of another message, is refused.
pub struct FrameSealer {
    key: Box<dyn AeadKey>,
    message_id: [u8; 32],
    frame_length: u32,
    /// Sequence number of the last frame sealed (0: none yet; the header tag used IV 0).
    last_sealed: u32,
}

impl FrameSealer {
    /// Length of a sealed regular frame: prefix, `frame_length` bytes, tag.
    pub fn regular_frame_len(&self) -> usize {
        regular_frame_len(self.frame_length)
    }

    /// Seals the frame of `ticket` in place. A regular frame's buffer is
    /// [`regular_frame_len`](Self::regular_frame_len) bytes with the plaintext at
    /// `16 .. 16 + frame_length`; the final frame's is `24 + n + 16` bytes with
    /// `n < frame_length` plaintext bytes at `24 ..`. The prefix and tag slots are
    /// overwritten.
    pub fn seal(&mut self, ticket: FrameTicket, frame: &mut [u8]) -> Result<(), Error> {
        self.seal_unit(ticket, None, frame)
    }

    /// Seals the frame of `ticket` from `plaintext` into `frame` (laid out as for
    /// [`seal`](Self::seal)), without copying the plaintext first.
    pub fn seal_from(
        &mut self,
        ticket: FrameTicket,
        plaintext: &[u8],
        frame: &mut [u8],
    ) -> Result<(), Error> {
        self.seal_unit(ticket, Some(plaintext), frame)
    }

    /// The plaintext length of a frame sealed in a buffer of `frame_len` bytes (from
    /// `source_len` bytes of plaintext, if given), or why the buffer does not fit.
    fn body_len(
        &self,
        last: bool,
        frame_len: usize,
        source_len: Option<usize>,
    ) -> Result<usize, Error> {
        let prefix_len = match last {
            false => REGULAR_FRAME_PREFIX_LEN,
            true => FINAL_FRAME_PREFIX_LEN,
        };
        let fl = self.frame_length as usize;
        // A final frame is shorter than a regular one: a plaintext that fills its last
        // frame ends with an empty final frame, as the official encryptors write it (the
        // AWS Encryption CLI refuses a final frame of the full frame length).
        let len = frame_len
            .checked_sub(prefix_len + TAG_LEN)
            .filter(|&n| if last { n < fl } else { n == fl })
            .filter(|&n| source_len.is_none_or(|p| p == n))
            .ok_or(ConfigError::FrameBufferSize(frame_len))?;
        Ok(len)
    }

    fn seal_unit(
        &mut self,
        ticket: FrameTicket,
        source: Option<&[u8]>,
        frame: &mut [u8],
    ) -> Result<(), Error> {
        if ticket.message_id != self.message_id {
            return Err(ConfigError::ForeignFrameTicket.into());
        }
        if ticket.sequence <= self.last_sealed {
            return Err(ConfigError::FrameOutOfOrder {
                sequence: ticket.sequence,
                last: self.last_sealed,
            }
            .into());
        }
        let len = self.body_len(ticket.last, frame.len(), source.map(<[u8]>::len))?;
        let (kind, prefix_len) = match ticket.last {
            false => (BodyKind::Regular, REGULAR_FRAME_PREFIX_LEN),
            true => (BodyKind::Final, FINAL_FRAME_PREFIX_LEN),
        };
        let sequence = ticket.sequence;
        self.last_sealed = sequence;
        let iv = iv(sequence);
        let (prefix, rest) = frame.split_at_mut(prefix_len);
        let (body, tag) = rest.split_at_mut(len);
        match kind {
            BodyKind::Regular => write_regular_frame_header(prefix, sequence, &iv),
            _ => write_final_frame_header(prefix, sequence, &iv, len as u32),
        }
        let aad = frame_aad(&self.message_id, kind, sequence, len as u64);
        let sealed = match source {
            None => self.key.seal_in_place(&iv, aad.as_ref(), body)?,
            Some(plaintext) => self.key.seal_to(&iv, aad.as_ref(), plaintext, body)?,
        };
        tag.copy_from_slice(&sealed);
        Ok(())
    }
}

/// The IV of frame `sequence`: 8 zero bytes, then the sequence number.
fn iv(sequence: u32) -> [u8; NONCE_LEN] {
    let mut iv = [0u8; NONCE_LEN];
    iv[8..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

/// Serializes the footer: `u16` length, then the signature.
pub fn footer(signer: Option<Box<dyn Signer>>) -> Result<Vec<u8>, Error> {
    let Some(signer) = signer else {
        return Ok(Vec::new());
    };
    let sig = signer.sign()?;
    let mut out = Vec::with_capacity(2 + sig.len());
    out.extend_from_slice(&(sig.len() as u16).to_be_bytes());
    out.extend_from_slice(&sig);
    Ok(out)
}

impl Encryptor {
    /// Builds the header (and its tag) from `materials`.
    pub fn new(mut materials: EncryptionMaterials, frame_length: u32) -> Result<Self, Error> {
        if frame_length == 0 || frame_length > MAX_FRAME_LENGTH {
            return Err(ConfigError::InvalidFrameLength(frame_length.into()).into());
        }
        let suite = materials.suite;
        if !suite.is_committing() {
            return Err(ConfigError::UnsupportedEncryptSuite(suite.id()).into());
        }
        let data_key = materials
            .data_key
            .take()
            .ok_or(PolicyError::InvalidMaterials("no data key"))?;
        let provider = materials.provider;
        let mut message_id = [0u8; 32];
        provider.random.fill(&mut message_id)?;
        let (content_key, commitment) =
            keys::derive(provider, suite, data_key.expose_secret(), &message_id)?;
        let commitment = commitment.ok_or(ConfigError::UnsupportedEncryptSuite(suite.id()))?;

        let mut stored = materials.encryption_context.clone();
        let mut required = EncryptionContext::new();
        for k in &materials.required_context_keys {
            if let Some(v) = stored.remove(k) {
                required.insert(k.clone(), v);
            }
        }
        let mut header = write_header_v2(&HeaderV2Fields {
            suite,
            message_id: &message_id,
            stored_context: &stored,
            encrypted_data_keys: &materials.encrypted_data_keys,
            frame_length,
            commitment: &commitment,
        })?;
        let header_len = header.len();
        required
            .write_to(&mut header)
            .map_err(ConfigError::Context)?;
        // The header tag takes IV 0 on this key object; frames follow with 1, 2, 3, ...
        let mut key = content_key.key_object()?;
        let tag = key.seal_in_place(&[0; NONCE_LEN], &header, &mut [])?;
        header.truncate(header_len);
        header.extend_from_slice(&tag);

        let mut signer = materials.signer.take();
        if let Some(s) = signer.as_mut() {
            s.update(&header);
        }
        Ok(Self {
            header,
            content_key,
            sealer: FrameSealer {
                key,
                message_id,
                frame_length,
                last_sealed: 0,
            },
            next_sequence: 1,
            signer,
            finished: false,
        })
    }

    /// The serialized header, to be written before any frame.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The frame length in bytes.
    pub fn frame_length(&self) -> usize {
        self.sealer.frame_length as usize
    }

    /// Length of a sealed regular frame: prefix, `frame_length` bytes, tag.
    pub fn regular_frame_len(&self) -> usize {
        self.sealer.regular_frame_len()
    }

    /// The layout of a buffer that holds any frame of this message while it is sealed.
    pub fn slots(&self) -> FrameSlots {
        FrameSlots::new(self.frame_length())
    }

    /// A sealer with its own key object, for a worker thread.
    pub fn frame_sealer(&self) -> Result<FrameSealer, Error> {
        Ok(FrameSealer {
            key: self.content_key.key_object()?,
            message_id: self.sealer.message_id,
            frame_length: self.sealer.frame_length,
            last_sealed: 0,
        })
    }

    /// The ticket of the next regular frame.
    pub fn reserve_frame(&mut self) -> Result<FrameTicket, Error> {
        let mut run = self.reserve_frames(1)?;
        run.next().ok_or(ConfigError::TooManyFrames.into())
    }

    /// The tickets of the next `count` regular frames, in order.
    pub fn reserve_frames(&mut self, count: usize) -> Result<FrameTickets, Error> {
        if self.finished {
            return Err(ConfigError::MessageFinished.into());
        }
        let start = self.next_sequence;
        // The final frame needs a number too, so regular frames may not take the last one.
        let end = u32::try_from(count)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end != u32::MAX)
            .ok_or(ConfigError::TooManyFrames)?;
        self.next_sequence = end;
        Ok(FrameTickets {
            next: start,
            end,
            message_id: self.sealer.message_id,
        })
    }

    /// The ticket of the final frame; no frame may follow.
    pub fn reserve_final_frame(&mut self) -> Result<FrameTicket, Error> {
        if self.finished {
            return Err(ConfigError::MessageFinished.into());
        }
        self.finished = true;
        Ok(FrameTicket {
            sequence: self.next_sequence,
            last: true,
            message_id: self.sealer.message_id,
        })
    }

    /// Hashes sealed bytes, in message order, for the signature (no-op for unsigned suites
    /// or once the signer was taken).
    pub fn absorb(&mut self, sealed: &[u8]) {
        if let Some(s) = self.signer.as_mut() {
            s.update(sealed);
        }
    }

    /// Takes the signer (the header already absorbed), to hash the frames on another
    /// thread; [`footer`] then signs. `None` for unsigned suites.
    pub fn take_signer(&mut self) -> Option<Box<dyn Signer>> {
        self.signer.take()
    }

    /// Seals the next regular frame in place (see [`FrameSealer::seal`]). A buffer of the
    /// wrong size is refused before a sequence number is spent on it.
    pub fn seal_frame(&mut self, frame: &mut [u8]) -> Result<(), Error> {
        self.sealer.body_len(false, frame.len(), None)?;
        let ticket = self.reserve_frame()?;
        self.sealer.seal(ticket, frame)?;
        self.absorb(frame);
        Ok(())
    }

    /// Seals the next regular frame from `plaintext` into `frame` (see
    /// [`FrameSealer::seal_from`]).
    pub fn seal_frame_from(&mut self, plaintext: &[u8], frame: &mut [u8]) -> Result<(), Error> {
        self.sealer
            .body_len(false, frame.len(), Some(plaintext.len()))?;
        let ticket = self.reserve_frame()?;
        self.sealer.seal_from(ticket, plaintext, frame)?;
        self.absorb(frame);
        Ok(())
    }

    /// Seals the final frame in place (see [`FrameSealer::seal`]) and returns the footer
    /// (empty for unsigned suites).
    pub fn seal_final_frame(&mut self, frame: &mut [u8]) -> Result<Vec<u8>, Error> {
        self.sealer.body_len(true, frame.len(), None)?;
        let ticket = self.reserve_final_frame()?;
        self.sealer.seal(ticket, frame)?;
        self.absorb(frame);
        footer(self.signer.take())
    }
}
