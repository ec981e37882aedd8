//! The decrypting state machine.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::crypto::{AeadKey, CryptoProvider, Verifier, NONCE_LEN, TAG_LEN};
use crate::error::{AuthenticationError, ConfigError, Error, FormatError, PolicyError};
use crate::format::{
    footer_len_hint, frame_aad, frame_prefix_len, parse_footer, parse_frame_header, parse_header,
    regular_frame_len, BodyKind, ContentType, EncryptionContext, FrameHeader, HeaderLimits,
    ParsedHeader, FINAL_FRAME_PREFIX_LEN, FOOTER_LENGTH_LEN, FRAME_MARKER_LEN,
    NON_FRAMED_PREFIX_LEN,
};
use crate::materials::{DecryptionMaterials, DecryptionRequest};
use crate::policy::{CommitmentPolicy, SignaturePolicy};

use super::keys::{self, ContentKey};

/// What a reader accepts.
///
/// ```
/// use envcrypt::engine::{DecryptConfig, Decryptor};
/// use envcrypt::SignaturePolicy;
///
/// let config = DecryptConfig::default()
///     .with_signature_policy(SignaturePolicy::UnsignedOnly)
///     .with_max_frame_length(1 << 20);
/// let decryptor = Decryptor::new(config);
/// # let _ = decryptor;
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DecryptConfig {
    /// Whether version 1 messages may be read.
    pub commitment_policy: CommitmentPolicy,
    /// Whether signed messages may be read.
    pub signature_policy: SignaturePolicy,
    /// Most encrypted data keys accepted.
    pub max_encrypted_data_keys: u16,
    /// Largest frame (or non-framed body) accepted: the memory a reader may need.
    pub max_frame_length: u32,
    /// Largest header accepted, in bytes.
    pub max_header_length: u32,
}

impl Default for DecryptConfig {
    fn default() -> Self {
        Self {
            commitment_policy: CommitmentPolicy::default(),
            signature_policy: SignaturePolicy::default(),
            max_encrypted_data_keys: super::DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
            max_frame_length: super::DEFAULT_MAX_FRAME_LENGTH,
            max_header_length: super::DEFAULT_MAX_HEADER_LENGTH,
        }
    }
}

impl DecryptConfig {
    /// Sets [`commitment_policy`](Self::commitment_policy).
    pub const fn with_commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.commitment_policy = policy;
        self
    }

    /// Sets [`signature_policy`](Self::signature_policy).
    pub const fn with_signature_policy(mut self, policy: SignaturePolicy) -> Self {
        self.signature_policy = policy;
        self
    }

    /// Sets [`max_encrypted_data_keys`](Self::max_encrypted_data_keys).
    pub const fn with_max_encrypted_data_keys(mut self, max: u16) -> Self {
        self.max_encrypted_data_keys = max;
        self
    }

    /// Sets [`max_frame_length`](Self::max_frame_length).
    pub const fn with_max_frame_length(mut self, max: u32) -> Self {
        self.max_frame_length = max;
        self
    }

    /// Sets [`max_header_length`](Self::max_header_length).
    pub const fn with_max_header_length(mut self, max: u32) -> Self {
        self.max_header_length = max;
        self
    }
}

/// Where the next body unit sits in the input, as returned by [`Decryptor::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    /// The parsed frame header.
    pub header: FrameHeader,
    /// Footer bytes that follow this unit (signed suites, final unit only), else 0.
    pub footer_len: usize,
}

impl FrameLayout {
    /// Plaintext (= ciphertext) length.
    pub fn body_len(&self) -> usize {
        self.header.content_len as usize
    }

    /// Bytes from the start of the unit to the end of its tag (and footer, if any).
    pub fn total_len(&self) -> usize {
        self.header.prefix_len + self.body_len() + TAG_LEN + self.footer_len
    }

    /// Where the plaintext lies within the unit after it is opened in place.
    pub fn plaintext_range(&self) -> Range<usize> {
        self.header.prefix_len..self.header.prefix_len + self.body_len()
    }

    /// True for the last unit of the message.
    pub fn is_final(&self) -> bool {
        self.header.kind != BodyKind::Regular
    }

    /// Where the ciphertext and its tag lie within the unit.
    pub fn sealed_range(&self) -> Range<usize> {
        self.header.prefix_len..self.header.prefix_len + self.body_len() + TAG_LEN
    }

    /// Splits a whole unit (`total_len` bytes) into its prefix, its ciphertext and tag (to
    /// open in place), and its footer (empty but for the final unit of a signed message).
    pub fn split_mut<'a>(&self, unit: &'a mut [u8]) -> (&'a [u8], &'a mut [u8], &'a [u8]) {
        let (prefix, rest) = unit[..self.total_len()].split_at_mut(self.header.prefix_len);
        let (sealed, footer) = rest.split_at_mut(self.body_len() + TAG_LEN);
        (prefix, sealed, footer)
    }

    /// [`split_mut`](Self::split_mut) for a unit that is only read.
    pub fn split<'a>(&self, unit: &'a [u8]) -> (&'a [u8], &'a [u8], &'a [u8]) {
        let (prefix, rest) = unit[..self.total_len()].split_at(self.header.prefix_len);
        let (sealed, footer) = rest.split_at(self.body_len() + TAG_LEN);
        (prefix, sealed, footer)
    }
}

/// What [`Decryptor::next_frame`] found at the front of its input.
///
/// Exhaustive on purpose: a new variant would be a new instruction that every loop driving
/// a [`Decryptor`] must follow, so it should fail to compile rather than reach a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The unit (and, for the final unit of a signed message, the footer) is whole in the
    /// input: open it.
    Unit(FrameLayout),
    /// The unit needs at least this many bytes, counted from its start, before it can be
    /// laid out. Read until the input holds them; an input that ends first is truncated.
    NeedBytes(usize),
}

enum State {
    Header,
    NeedMaterials(Box<ParsedHeader>),
    Body(Box<Body>),
    Done,
    Failed,
}

struct Body {
    header: ParsedHeader,
    content_key: ContentKey,
    opener: FrameOpener,
    next_sequence: u32,
    /// The final unit was accepted; the signature (if any) is still to be checked.
    final_accepted: bool,
    verifier: Option<Box<dyn Verifier>>,
}

/// Opens (authenticates and decrypts) units of one message: one per worker thread.
///
/// Stateless between calls: ordering, sequence numbers and the signature are the
/// [`Decryptor`]'s business ([`Decryptor::accept_frame`]).
pub struct FrameOpener {
    key: Box<dyn AeadKey>,
    message_id: Vec<u8>,
}

impl FrameOpener {
    /// Opens one unit in place: `ciphertext_and_tag` is the unit's ciphertext and tag; on
    /// success its first `layout.body_len()` bytes are plaintext. On failure it is zeroed.
    pub fn open(&self, layout: &FrameLayout, ciphertext_and_tag: &mut [u8]) -> Result<(), Error> {
        let fh = &layout.header;
        if ciphertext_and_tag.len() != layout.body_len() + TAG_LEN {
            return Err(ConfigError::FrameBufferSize(ciphertext_and_tag.len()).into());
        }
        let aad = frame_aad(&self.message_id, fh.kind, fh.sequence, fh.content_len);
        let iv: &[u8; NONCE_LEN] = &fh.iv;
        self.key
            .open_in_place(iv, aad.as_ref(), ciphertext_and_tag)
            .map_err(|_| {
                ciphertext_and_tag.fill(0);
                AuthenticationError::FrameTag {
                    sequence: fh.sequence,
                }
                .into()
            })
    }

    /// Opens one unit from `ciphertext_and_tag` into `out` (`layout.body_len()` bytes),
    /// without copying the ciphertext first. On failure `out` is zeroed.
    pub fn open_to(
        &self,
        layout: &FrameLayout,
        ciphertext_and_tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        let fh = &layout.header;
        let n = layout.body_len();
        let (ciphertext, tag) = ciphertext_and_tag
            .split_at_checked(n)
            .filter(|(_, t)| t.len() == TAG_LEN && out.len() == n)
            .ok_or(ConfigError::FrameBufferSize(out.len()))?;
        let tag: &[u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| ConfigError::FrameBufferSize(n))?;
        let aad = frame_aad(&self.message_id, fh.kind, fh.sequence, fh.content_len);
        self.key
            .open_to(&fh.iv, aad.as_ref(), ciphertext, tag, out)
            .map_err(|_| {
                out.fill(0);
                AuthenticationError::FrameTag {
                    sequence: fh.sequence,
                }
                .into()
            })
    }
}

/// Opens one message, unit by unit, in buffers the caller owns.
///
/// Order of use: [`parse_header`](Self::parse_header) until it returns the header length;
/// [`materials_request`](Self::materials_request) and, with the materials a manager returns,
/// [`set_materials`](Self::set_materials) (checks commitment and header tag); then
/// [`next_frame`](Self::next_frame) and [`open_frame`](Self::open_frame) until
/// [`is_done`](Self::is_done). A unit's plaintext may be released only after `open_frame`
/// returned `Ok` for it. Any error is final.
pub struct Decryptor {
    config: DecryptConfig,
    state: State,
}

impl Decryptor {
    /// A decryptor that applies `config`.
    pub fn new(config: DecryptConfig) -> Self {
        Self {
            config,
            state: State::Header,
        }
    }

    /// The error for a step taken in a state that does not allow it.
    fn misuse(&self, step: &'static str) -> Error {
        match self.state {
            State::Failed => ConfigError::AfterFailure.into(),
            _ => ConfigError::OutOfOrder { step }.into(),
        }
    }

    fn fail<T>(&mut self, e: impl Into<Error>) -> Result<T, Error> {
        self.state = State::Failed;
        Err(e.into())
    }

    /// Parses the header from the front of `input`; `Ok(None)` means more bytes are needed.
    /// Returns the header length and applies the commitment and signature policies. A
    /// header still incomplete after `max_header_length` bytes is refused.
    pub fn parse_header(&mut self, input: &[u8]) -> Result<Option<usize>, Error> {
        if !matches!(self.state, State::Header) {
            return self.fail(self.misuse("parse_header"));
        }
        let limits = HeaderLimits::new(
            self.config.max_encrypted_data_keys,
            self.config.max_frame_length,
        );
        let max = self.config.max_header_length as usize;
        let parsed = match parse_header(&input[..input.len().min(max)], &limits) {
            Ok(Some(p)) => p,
            Ok(None) if input.len() >= max => {
                return self.fail(FormatError::HeaderTooLong { max: max as u64 })
            }
            Ok(None) => return Ok(None),
            Err(e) => return self.fail(e),
        };
        let suite = parsed.header.suite;
        if !self.config.commitment_policy.allows_decrypt(suite) {
            return self.fail(PolicyError::UncommittedMessage);
        }
        if suite.signature().is_some()
            && self.config.signature_policy == SignaturePolicy::UnsignedOnly
        {
            return self.fail(PolicyError::SignedMessage);
        }
        let len = parsed.bytes().len();
        self.state = State::NeedMaterials(Box::new(parsed));
        Ok(Some(len))
    }

    /// The parsed header, once [`parse_header`](Self::parse_header) succeeded.
    pub fn header(&self) -> Option<&ParsedHeader> {
        match &self.state {
            State::NeedMaterials(h) => Some(h),
            State::Body(b) => Some(&b.header),
            _ => None,
        }
    }

    /// The request to hand a materials manager.
    ///
    /// `reproduced` is the caller's context: a pair whose key is stored must match it
    /// (else [`PolicyError::ContextMismatch`]); a pair whose key is not stored is a required
    /// pair, authenticated by the header tag but kept out of the header.
    pub fn materials_request(
        &self,
        provider: &'static CryptoProvider,
        reproduced: &EncryptionContext,
    ) -> Result<DecryptionRequest, Error> {
        let State::NeedMaterials(parsed) = &self.state else {
            return Err(self.misuse("materials_request"));
        };
        let header = &parsed.header;
        let mut context = header.encryption_context.clone();
        let mut required_context_keys = BTreeSet::new();
        for (k, v) in reproduced.iter() {
            match header.encryption_context.get(k) {
                Some(stored) if stored == v => {}
                Some(_) => return Err(PolicyError::ContextMismatch(k.to_owned()).into()),
                None => {
                    context.insert(k, v);
                    required_context_keys.insert(k.to_owned());
                }
            }
        }
        Ok(DecryptionRequest {
            provider,
            suite: header.suite,
            encrypted_data_keys: header.encrypted_data_keys.clone(),
            encryption_context: context,
            required_context_keys,
            reproduced_context_keys: reproduced.iter().map(|(k, _)| k.to_owned()).collect(),
        })
    }

    /// Derives the content key, checks the key commitment and the header tag.
    pub fn set_materials(&mut self, mut materials: DecryptionMaterials) -> Result<(), Error> {
        if !matches!(self.state, State::NeedMaterials(_)) {
            return Err(self.misuse("set_materials"));
        }
        // Any error from here on is final.
        let State::NeedMaterials(parsed) = core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(Error::Internal("decryptor state changed"));
        };
        let header = &parsed.header;
        if materials.suite != header.suite {
            return Err(PolicyError::InvalidMaterials("suite differs from the header").into());
        }
        let Some(data_key) = materials.data_key.take() else {
            return Err(PolicyError::InvalidMaterials("no data key").into());
        };
        if header.suite.signature().is_some() != materials.verifier.is_some() {
            return Err(PolicyError::PublicKeyMismatch.into());
        }
        let (content_key, commitment) = keys::derive(
            materials.provider,
            header.suite,
            data_key.expose_secret(),
            &header.message_id,
        )?;
        if let (Some(stored), Some(derived)) = (&header.commitment, &commitment) {
            keys::check_commitment(stored, derived)?;
        }
        let mut aad = parsed.authenticated_bytes().to_vec();
        let required: EncryptionContext = materials
            .encryption_context
            .iter()
            .filter(|(k, _)| materials.required_context_keys.contains(*k))
            .collect();
        required.write_to(&mut aad).map_err(FormatError::Context)?;
        let key = content_key.key_object()?;
        let mut tag = header.header_tag;
        key.open_in_place(&header.header_iv, &aad, &mut tag)
            .map_err(|_| AuthenticationError::HeaderTag)?;
        let mut verifier = materials.verifier.take();
        if let Some(v) = verifier.as_mut() {
            v.update(parsed.bytes());
        }
        let message_id = header.message_id.clone();
        self.state = State::Body(Box::new(Body {
            header: *parsed,
            content_key,
            opener: FrameOpener { key, message_id },
            next_sequence: 1,
            final_accepted: false,
            verifier,
        }));
        Ok(())
    }

    /// Lays out the next unit from the front of `input` (which starts at the unit): checks
    /// its sequence number and the limits, and returns it once it is whole in `input` (with
    /// the footer, for the final unit of a signed message), else how many bytes it needs.
    /// Adapters read exactly that much; none parses a frame or footer itself.
    pub fn next_frame(&mut self, input: &[u8]) -> Result<Next, Error> {
        let State::Body(body) = &self.state else {
            return self.fail(self.misuse("next_frame"));
        };
        if body.final_accepted {
            return self.fail(self.misuse("next_frame"));
        }
        let h = &body.header.header;
        let fh = match parse_frame_header(input, h.content_type, h.frame_length) {
            Ok(Some(fh)) => fh,
            Ok(None) => {
                let prefix = frame_prefix_len(input, h.content_type);
                return Ok(Next::NeedBytes(prefix.unwrap_or(FRAME_MARKER_LEN)));
            }
            Err(e) => return self.fail(e),
        };
        if fh.sequence != body.next_sequence {
            let expected = body.next_sequence;
            return self.fail(FormatError::UnexpectedSequenceNumber {
                expected,
                found: fh.sequence,
            });
        }
        // Bound what an adapter will allocate before it reads the body.
        if fh.content_len > u64::from(self.config.max_frame_length) {
            return self.fail(FormatError::BodyTooLong(fh.content_len));
        }
        let mut layout = FrameLayout {
            header: fh,
            footer_len: 0,
        };
        let end = layout.total_len();
        if input.len() < end {
            return Ok(Next::NeedBytes(end));
        }
        if layout.is_final() && h.suite.signature().is_some() {
            match parse_footer(&input[end..]) {
                Ok(Some(n)) => layout.footer_len = n,
                Ok(None) => {
                    let need = footer_len_hint(&input[end..]).unwrap_or(FOOTER_LENGTH_LEN);
                    return Ok(Next::NeedBytes(end + need));
                }
                Err(e) => return self.fail(e),
            }
        }
        Ok(Next::Unit(layout))
    }

    /// How many bytes to ask for at once for the next unit: a whole regular frame (so one
    /// read brings one frame), or a non-framed body's prefix.
    pub fn unit_read_hint(&self) -> usize {
        match self
            .header()
            .map(|h| (h.header.content_type, h.header.frame_length))
        {
            Some((ContentType::Framed, fl)) => regular_frame_len(fl),
            _ => NON_FRAMED_PREFIX_LEN,
        }
    }

    /// Random access: where the final frame of an unsigned framed message must sit if its
    /// body (everything after the header) is `body_len` bytes long: its sequence number and
    /// its offset from the end of the header. Only a final frame that authenticates there
    /// proves the message's length (its AAD holds its sequence number and length).
    pub fn final_frame_position(&self, body_len: u64) -> Result<(u32, u64), Error> {
        let State::Body(body) = &self.state else {
            return Err(self.misuse("final_frame_position"));
        };
        let fl = body.header.header.frame_length;
        let regular = regular_frame_len(fl) as u64;
        let after_regulars = body_len
            .checked_sub((FINAL_FRAME_PREFIX_LEN + TAG_LEN) as u64)
            .ok_or(FormatError::Truncated)?;
        let (n, last) = (after_regulars / regular, after_regulars % regular);
        let sequence = u32::try_from(n + 1)
            .ok()
            .filter(|&s| s != u32::MAX && last <= u64::from(fl))
            .ok_or(FormatError::Truncated)?;
        Ok((sequence, n * regular))
    }

    /// Authenticates and decrypts one unit: [`accept_frame`](Self::accept_frame), then
    /// [`FrameOpener::open`], then for the final unit [`finish`](Self::finish).
    ///
    /// `prefix` is the unit's header bytes, `ciphertext_and_tag` the ciphertext followed by
    /// the tag (decrypted in place: on success its first `body_len` bytes are plaintext),
    /// `footer` the footer bytes for the final unit of a signed message (else empty). On any
    /// failure the buffer is zeroed and the decryptor is finished.
    pub fn open_frame(
        &mut self,
        layout: &FrameLayout,
        prefix: &[u8],
        ciphertext_and_tag: &mut [u8],
        footer: &[u8],
    ) -> Result<(), Error> {
        self.accept_frame(layout, prefix, ciphertext_and_tag)?;
        self.open_accepted(layout, footer, ciphertext_and_tag, |opener, buf| {
            opener.open(layout, buf)
        })
    }

    /// Like [`open_frame`](Self::open_frame), but decrypts from `ciphertext_and_tag` into
    /// `out` (`layout.body_len()` bytes) instead of in place.
    pub fn open_frame_to(
        &mut self,
        layout: &FrameLayout,
        prefix: &[u8],
        ciphertext_and_tag: &[u8],
        footer: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.accept_frame(layout, prefix, ciphertext_and_tag)?;
        self.open_accepted(layout, footer, out, |opener, out| {
            opener.open_to(layout, ciphertext_and_tag, out)
        })
    }

    /// Opens an accepted unit into `plaintext` with `open`, then ends the message if the
    /// unit is the final one. Any failure wipes `plaintext` and finishes the decryptor.
    fn open_accepted(
        &mut self,
        layout: &FrameLayout,
        footer: &[u8],
        plaintext: &mut [u8],
        open: impl FnOnce(&FrameOpener, &mut [u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let State::Body(body) = &self.state else {
            return self.fail(self.misuse("open_accepted"));
        };
        if let Err(e) = open(&body.opener, plaintext) {
            return self.fail(e);
        }
        if layout.is_final() {
            if let Err(e) = self.finish(footer, None) {
                plaintext.fill(0);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Takes the next unit in message order: checks its sequence number and layout and
    /// hashes its bytes for the signature (unless the verifier was taken). Call before the
    /// unit is opened (opening overwrites the ciphertext).
    pub fn accept_frame(
        &mut self,
        layout: &FrameLayout,
        prefix: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<(), Error> {
        let State::Body(body) = &mut self.state else {
            return self.fail(self.misuse("accept_frame"));
        };
        let fh = &layout.header;
        if body.final_accepted
            || fh.sequence != body.next_sequence
            || prefix.len() != fh.prefix_len
            || ciphertext_and_tag.len() != layout.body_len() + TAG_LEN
        {
            return self.fail(ConfigError::FrameBufferSize(ciphertext_and_tag.len()));
        }
        if let Some(v) = body.verifier.as_mut() {
            v.update(prefix);
            v.update(ciphertext_and_tag);
        }
        if layout.is_final() {
            body.final_accepted = true;
        } else {
            // `next_frame` refuses a sequence number it cannot follow.
            body.next_sequence = body.next_sequence.wrapping_add(1);
        }
        Ok(())
    }

    /// Random access: positions the decryptor before unit `sequence` of an unsigned framed
    /// message and returns that unit's offset from the end of the header (regular frames
    /// all have the same length). Signed messages cannot be read out of order: their
    /// signature covers every byte.
    pub fn seek_frame(&mut self, sequence: u32) -> Result<u64, Error> {
        if !matches!(self.state, State::Body(_)) {
            return Err(self.misuse("seek_frame"));
        }
        let State::Body(body) = &mut self.state else {
            return Err(Error::Internal("decryptor state changed"));
        };
        let h = &body.header.header;
        if h.suite.signature().is_some() || h.content_type != ContentType::Framed {
            return Err(ConfigError::RandomAccessUnsupported.into());
        }
        if sequence == 0 || sequence == u32::MAX {
            return Err(ConfigError::InvalidSequence(sequence).into());
        }
        body.next_sequence = sequence;
        body.final_accepted = false;
        let regular = regular_frame_len(h.frame_length) as u64;
        Ok(u64::from(sequence - 1) * regular)
    }

    /// An opener with its own key object, for a worker thread (after the header verified).
    pub fn frame_opener(&self) -> Result<FrameOpener, Error> {
        let State::Body(body) = &self.state else {
            return Err(self.misuse("frame_opener"));
        };
        Ok(FrameOpener {
            key: body.content_key.key_object()?,
            message_id: body.opener.message_id.clone(),
        })
    }

    /// Takes the verifier (the header already absorbed) to hash units on another thread;
    /// hand it back to [`finish`](Self::finish). `None` for unsigned suites.
    pub fn take_verifier(&mut self) -> Option<Box<dyn Verifier>> {
        match &mut self.state {
            State::Body(body) => body.verifier.take(),
            _ => None,
        }
    }

    /// Ends the message after its final unit was accepted and opened: checks the footer
    /// signature (signed suites) with the held verifier or the one handed back.
    pub fn finish(
        &mut self,
        footer: &[u8],
        verifier: Option<Box<dyn Verifier>>,
    ) -> Result<(), Error> {
        let State::Body(body) = &mut self.state else {
            return self.fail(self.misuse("finish"));
        };
        if !body.final_accepted {
            return self.fail(self.misuse("finish"));
        }
        let signed = body.header.header.suite.signature().is_some();
        match (signed, body.verifier.take().or(verifier)) {
            (false, _) if footer.is_empty() => {}
            (true, Some(v)) => {
                let signature = match footer.get(2..) {
                    Some(sig) if !sig.is_empty() => sig,
                    _ => return self.fail(FormatError::InvalidFooter),
                };
                if v.verify(signature).is_err() {
                    return self.fail(AuthenticationError::Signature);
                }
            }
            _ => return self.fail(FormatError::InvalidFooter),
        }
        self.state = State::Done;
        Ok(())
    }

    /// Opens a unit that sits whole in `unit` (as laid out by [`next_frame`](Self::next_frame))
    /// and returns where its plaintext now lies within `unit`.
    pub fn open_frame_in_place(
        &mut self,
        layout: &FrameLayout,
        unit: &mut [u8],
    ) -> Result<Range<usize>, Error> {
        if unit.len() != layout.total_len() {
            return self.fail(ConfigError::FrameBufferSize(unit.len()));
        }
        let (prefix, sealed, footer) = layout.split_mut(unit);
        self.open_frame(layout, prefix, sealed, footer)?;
        Ok(layout.plaintext_range())
    }

    /// True once the final unit (and footer) verified: the message is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}
