//! The encrypting state machine.

use crate::crypto::{AeadKey, Signer, NONCE_LEN, TAG_LEN};
use crate::error::{ConfigError, Error};
use crate::format::{
    frame_aad, write_final_frame_header, write_header_v2, write_regular_frame_header, BodyKind,
    EncryptionContext, HeaderV2Fields, FINAL_FRAME_PREFIX_LEN, MAX_FRAME_LENGTH,
    REGULAR_FRAME_PREFIX_LEN,
};
use crate::materials::EncryptionMaterials;

use super::keys;

/// Seals one message, frame by frame, into buffers the caller owns.
///
/// Order of use: write [`header`](Self::header), then any number of
/// [`seal_frame`](Self::seal_frame), then exactly one
/// [`seal_final_frame`](Self::seal_final_frame), whose return value (the footer) ends the
/// message. IVs are `0` for the header tag, then the sequence numbers 1, 2, 3, ...
pub struct Encryptor {
    header: Vec<u8>,
    message_id: [u8; 32],
    key: Box<dyn AeadKey>,
    frame_length: u32,
    next_sequence: u32,
    signer: Option<Box<dyn Signer>>,
    finished: bool,
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
            .ok_or(crate::error::PolicyError::InvalidMaterials("no data key"))?;
        let provider = materials.provider;
        let mut message_id = [0u8; 32];
        provider.random.fill(&mut message_id)?;
        let (mut key, commitment) =
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
        let tag = key.seal_in_place(&[0; NONCE_LEN], &header, &mut [])?;
        header.truncate(header_len);
        header.extend_from_slice(&tag);

        let mut signer = materials.signer.take();
        if let Some(s) = signer.as_mut() {
            s.update(&header);
        }
        Ok(Self {
            header,
            message_id,
            key,
            frame_length,
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
        self.frame_length as usize
    }

    /// Length of a sealed regular frame: prefix, `frame_length` bytes, tag.
    pub fn regular_frame_len(&self) -> usize {
        REGULAR_FRAME_PREFIX_LEN + self.frame_length() + TAG_LEN
    }

    fn next(&mut self) -> Result<(u32, [u8; NONCE_LEN]), Error> {
        if self.finished {
            return Err(ConfigError::StreamFinished.into());
        }
        let seq = self.next_sequence;
        self.next_sequence = seq
            .checked_add(1)
            .filter(|&n| n != u32::MAX)
            .ok_or(ConfigError::StreamFinished)?;
        let mut iv = [0u8; NONCE_LEN];
        iv[8..].copy_from_slice(&seq.to_be_bytes());
        Ok((seq, iv))
    }

    /// Seals a regular frame in place.
    ///
    /// `frame` must be [`regular_frame_len`](Self::regular_frame_len) bytes with the plaintext
    /// at `16 .. 16 + frame_length`; the prefix and tag slots are overwritten.
    pub fn seal_frame(&mut self, frame: &mut [u8]) -> Result<(), Error> {
        if frame.len() != self.regular_frame_len() {
            return Err(ConfigError::FrameBufferSize(frame.len()).into());
        }
        let (seq, iv) = self.next()?;
        let (prefix, rest) = frame.split_at_mut(REGULAR_FRAME_PREFIX_LEN);
        let (body, tag) = rest.split_at_mut(self.frame_length as usize);
        write_regular_frame_header(prefix, seq, &iv);
        let aad = frame_aad(&self.message_id, BodyKind::Regular, seq, body.len() as u64);
        tag.copy_from_slice(&self.key.seal_in_place(&iv, aad.as_ref(), body)?);
        if let Some(s) = self.signer.as_mut() {
            s.update(frame);
        }
        Ok(())
    }

    /// Seals the final frame in place and returns the footer (empty for unsigned suites).
    ///
    /// `frame` is `24 + n + 16` bytes with `n <= frame_length` plaintext bytes at `24 ..`.
    pub fn seal_final_frame(&mut self, frame: &mut [u8]) -> Result<Vec<u8>, Error> {
        let len = frame
            .len()
            .checked_sub(FINAL_FRAME_PREFIX_LEN + TAG_LEN)
            .filter(|&n| n <= self.frame_length())
            .ok_or(ConfigError::FrameBufferSize(frame.len()))?;
        let (seq, iv) = self.next()?;
        self.finished = true;
        let (prefix, rest) = frame.split_at_mut(FINAL_FRAME_PREFIX_LEN);
        let (body, tag) = rest.split_at_mut(len);
        write_final_frame_header(prefix, seq, &iv, len as u32);
        let aad = frame_aad(&self.message_id, BodyKind::Final, seq, len as u64);
        tag.copy_from_slice(&self.key.seal_in_place(&iv, aad.as_ref(), body)?);
        match self.signer.take() {
            None => Ok(Vec::new()),
            Some(mut s) => {
                s.update(frame);
                let sig = s.sign()?;
                let mut footer = Vec::with_capacity(2 + sig.len());
                footer.extend_from_slice(&(sig.len() as u16).to_be_bytes());
                footer.extend_from_slice(&sig);
                Ok(footer)
            }
        }
    }
}
