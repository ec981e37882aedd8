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

/// Seals one message, frame by frame, into buffers the caller owns.
///
/// Order of use: write [`header`](Self::header), then any number of
/// [`seal_frame`](Self::seal_frame), then exactly one
/// [`seal_final_frame`](Self::seal_final_frame), whose return value (the footer) ends the
/// message. IVs are `0` for the header tag, then the sequence numbers 1, 2, 3, ...
///
/// Parallel adapters split the same steps: [`reserve_frame`](Self::reserve_frame) /
/// [`reserve_final_frame`](Self::reserve_final_frame) hand out sequence numbers in order,
/// workers seal with their own [`FrameSealer`], and the sealed frames are hashed in order
/// (for signed suites) by whoever holds the signer ([`take_signer`](Self::take_signer)).
pub struct Encryptor {
    header: Vec<u8>,
    content_key: ContentKey,
    sealer: FrameSealer,
    next_sequence: u32,
    signer: Option<Box<dyn Signer>>,
    finished: bool,
}

/// Seals the frames of one message given their sequence numbers: one per worker thread.
///
/// Each sealer owns its key object; the sequence numbers it seals must strictly increase
/// (the FIPS module enforces rising nonces per key object).
pub struct FrameSealer {
    key: Box<dyn AeadKey>,
    message_id: [u8; 32],
    frame_length: u32,
}

impl FrameSealer {
    /// Length of a sealed regular frame: prefix, `frame_length` bytes, tag.
    pub fn regular_frame_len(&self) -> usize {
        regular_frame_len(self.frame_length)
    }

    /// Seals regular frame `sequence` in place: `frame` is
    /// [`regular_frame_len`](Self::regular_frame_len) bytes with the plaintext at
    /// `16 .. 16 + frame_length`; the prefix and tag slots are overwritten.
    pub fn seal_frame(&mut self, sequence: u32, frame: &mut [u8]) -> Result<(), Error> {
        self.seal_unit(BodyKind::Regular, sequence, None, frame)
    }

    /// Seals regular frame `sequence` from `plaintext` (`frame_length` bytes) into `frame`
    /// ([`regular_frame_len`](Self::regular_frame_len) bytes), without copying it first.
    pub fn seal_frame_from(
        &mut self,
        sequence: u32,
        plaintext: &[u8],
        frame: &mut [u8],
    ) -> Result<(), Error> {
        self.seal_unit(BodyKind::Regular, sequence, Some(plaintext), frame)
    }

    /// Seals the final frame `sequence` in place: `frame` is `24 + n + 16` bytes with
    /// `n <= frame_length` plaintext bytes at `24 ..`.
    pub fn seal_final_frame(&mut self, sequence: u32, frame: &mut [u8]) -> Result<(), Error> {
        self.seal_unit(BodyKind::Final, sequence, None, frame)
    }

    /// Seals the final frame `sequence` from `plaintext` into `frame` (`24 + n + 16` bytes).
    pub fn seal_final_frame_from(
        &mut self,
        sequence: u32,
        plaintext: &[u8],
        frame: &mut [u8],
    ) -> Result<(), Error> {
        self.seal_unit(BodyKind::Final, sequence, Some(plaintext), frame)
    }

    fn seal_unit(
        &mut self,
        kind: BodyKind,
        sequence: u32,
        source: Option<&[u8]>,
        frame: &mut [u8],
    ) -> Result<(), Error> {
        let prefix_len = match kind {
            BodyKind::Regular => REGULAR_FRAME_PREFIX_LEN,
            _ => FINAL_FRAME_PREFIX_LEN,
        };
        let fl = self.frame_length as usize;
        let len = frame
            .len()
            .checked_sub(prefix_len + TAG_LEN)
            .filter(|&n| match kind {
                BodyKind::Regular => n == fl,
                _ => n <= fl,
            })
            .filter(|&n| source.is_none_or(|p| p.len() == n))
            .ok_or(ConfigError::FrameBufferSize(frame.len()))?;
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

    /// A sealer with its own key object, for a worker thread.
    pub fn frame_sealer(&self) -> Result<FrameSealer, Error> {
        Ok(FrameSealer {
            key: self.content_key.key_object()?,
            message_id: self.sealer.message_id,
            frame_length: self.sealer.frame_length,
        })
    }

    /// The sequence number of the next regular frame.
    pub fn reserve_frame(&mut self) -> Result<u32, Error> {
        if self.finished {
            return Err(ConfigError::StreamFinished.into());
        }
        let seq = self.next_sequence;
        // The last frame needs a number too, so a regular frame may not take the last one.
        self.next_sequence = seq
            .checked_add(1)
            .filter(|&n| n != u32::MAX)
            .ok_or(ConfigError::StreamFinished)?;
        Ok(seq)
    }

    /// The sequence number of the final frame; no frame may follow.
    pub fn reserve_final_frame(&mut self) -> Result<u32, Error> {
        if self.finished {
            return Err(ConfigError::StreamFinished.into());
        }
        self.finished = true;
        Ok(self.next_sequence)
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

    /// Seals the next regular frame in place (see [`FrameSealer::seal_frame`]).
    pub fn seal_frame(&mut self, frame: &mut [u8]) -> Result<(), Error> {
        let seq = self.reserve_frame()?;
        self.sealer.seal_frame(seq, frame)?;
        self.absorb(frame);
        Ok(())
    }

    /// Seals the next regular frame from `plaintext` into `frame` (see
    /// [`FrameSealer::seal_frame_from`]).
    pub fn seal_frame_from(&mut self, plaintext: &[u8], frame: &mut [u8]) -> Result<(), Error> {
        let seq = self.reserve_frame()?;
        self.sealer.seal_frame_from(seq, plaintext, frame)?;
        self.absorb(frame);
        Ok(())
    }

    /// Seals the final frame in place (see [`FrameSealer::seal_final_frame`]) and returns
    /// the footer (empty for unsigned suites).
    pub fn seal_final_frame(&mut self, frame: &mut [u8]) -> Result<Vec<u8>, Error> {
        let seq = self.reserve_final_frame()?;
        self.sealer.seal_final_frame(seq, frame)?;
        self.absorb(frame);
        footer(self.signer.take())
    }
}
