//! Message headers: version 2 write and parse, version 1 parse.

use core::fmt;

use super::context::EncryptionContext;
use super::cursor::{need, Cursor};
use super::suite::AlgorithmSuite;
use super::Parsed;
use crate::crypto::{NONCE_LEN, TAG_LEN};
use crate::error::FormatError;

/// Message format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageVersion {
    /// Version 1: no key commitment (read only).
    V1,
    /// Version 2: key-committing suites.
    V2,
}

impl MessageVersion {
    /// The version byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// How the body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentType {
    /// One block (`0x01`, read only).
    NonFramed,
    /// Frames of a fixed length (`0x02`).
    Framed,
}

/// A data key wrapped by one keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    /// Which keyring family wrapped it (`aws-kms`, or a raw keyring's namespace).
    pub provider_id: String,
    /// Keyring-specific data (key name, IV, ...).
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field("provider_info_len", &self.provider_info.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Everything a header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Message format version.
    pub version: MessageVersion,
    /// Algorithm suite.
    pub suite: AlgorithmSuite,
    /// Message id: 16 bytes (v1) or 32 bytes (v2).
    pub message_id: Vec<u8>,
    /// The context stored in the header (required-context pairs are not stored).
    pub encryption_context: EncryptionContext,
    /// Wrapped copies of the data key.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Framed or not.
    pub content_type: ContentType,
    /// Frame length (0 for non-framed bodies).
    pub frame_length: u32,
    /// Key commitment (version 2 only).
    pub commitment: Option<[u8; 32]>,
    /// IV of the header tag: stored in v1, all zero in v2.
    pub header_iv: [u8; NONCE_LEN],
    /// Header authentication tag.
    pub header_tag: [u8; TAG_LEN],
}

/// A parsed header and the exact bytes it came from.
#[derive(Debug, Clone)]
pub struct ParsedHeader {
    /// The parsed fields.
    pub header: Header,
    bytes: Vec<u8>,
    authenticated_len: usize,
}

impl ParsedHeader {
    /// The whole header as it appeared in the message.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes the header tag authenticates (everything before the IV/tag).
    pub fn authenticated_bytes(&self) -> &[u8] {
        &self.bytes[..self.authenticated_len]
    }
}

/// Reader-side limits applied while parsing.
///
/// The default is that of [`DecryptConfig`](crate::engine::DecryptConfig).
///
/// ```
/// use envcrypt::format::HeaderLimits;
///
/// const STRICT: HeaderLimits = HeaderLimits::new(1, 4096);
/// let lenient = HeaderLimits::default().with_max_encrypted_data_keys(u16::MAX);
/// assert_eq!(STRICT.max_frame_length, 4096);
/// assert_eq!(lenient.max_encrypted_data_keys, u16::MAX);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HeaderLimits {
    /// Most encrypted data keys accepted.
    pub max_encrypted_data_keys: u16,
    /// Largest frame length accepted (bounds the memory a reader needs).
    pub max_frame_length: u32,
}

impl HeaderLimits {
    /// Limits of `max_encrypted_data_keys` data keys and `max_frame_length`-byte frames.
    pub const fn new(max_encrypted_data_keys: u16, max_frame_length: u32) -> Self {
        Self {
            max_encrypted_data_keys,
            max_frame_length,
        }
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
}

impl Default for HeaderLimits {
    fn default() -> Self {
        Self::new(
            crate::engine::DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
            crate::engine::DEFAULT_MAX_FRAME_LENGTH,
        )
    }
}

/// Parses a header from the front of `input`.
///
/// Returns `Ok(None)` while `input` holds only part of a header.
pub fn parse_header(input: &[u8], limits: &HeaderLimits) -> Parsed<ParsedHeader> {
    let mut c = Cursor::new(input);
    let version = match need!(c.u8()) {
        1 => MessageVersion::V1,
        2 => MessageVersion::V2,
        v => return Err(FormatError::UnknownVersion(v)),
    };
    if version == MessageVersion::V1 {
        let t = need!(c.u8());
        if t != 0x80 {
            return Err(FormatError::UnknownMessageType(t));
        }
    }
    let suite_id = need!(c.u16());
    let suite = AlgorithmSuite::from_id(suite_id).ok_or(FormatError::UnknownSuite(suite_id))?;
    if suite.message_version() != version.byte() {
        return Err(FormatError::SuiteVersionMismatch {
            version: version.byte(),
            suite: suite_id,
        });
    }
    let id_len = if version == MessageVersion::V1 {
        16
    } else {
        32
    };
    let message_id = need!(c.take(id_len)).to_vec();
    let context_bytes = need!(c.u16_prefixed());
    let encryption_context = EncryptionContext::from_bytes(context_bytes)?;

    let edk_count = need!(c.u16());
    if edk_count == 0 {
        return Err(FormatError::NoEncryptedDataKeys);
    }
    if edk_count > limits.max_encrypted_data_keys {
        return Err(FormatError::TooManyEncryptedDataKeys {
            count: edk_count,
            max: limits.max_encrypted_data_keys,
        });
    }
    let mut encrypted_data_keys = Vec::with_capacity(usize::from(edk_count));
    for _ in 0..edk_count {
        let provider_id = need!(c.u16_prefixed());
        let provider_id = core::str::from_utf8(provider_id)
            .map_err(|_| FormatError::InvalidProviderId)?
            .to_owned();
        let provider_info = need!(c.u16_prefixed()).to_vec();
        let ciphertext = need!(c.u16_prefixed()).to_vec();
        encrypted_data_keys.push(EncryptedDataKey {
            provider_id,
            provider_info,
            ciphertext,
        });
    }

    let content_type = match need!(c.u8()) {
        1 => ContentType::NonFramed,
        2 => ContentType::Framed,
        t => return Err(FormatError::UnknownContentType(t)),
    };
    if version == MessageVersion::V1 {
        if need!(c.array::<4>()) != [0; 4] {
            return Err(FormatError::NonZeroReserved);
        }
        let iv_len = need!(c.u8());
        if usize::from(iv_len) != NONCE_LEN {
            return Err(FormatError::InvalidIvLength(iv_len));
        }
    }
    let frame_length = need!(c.u32());
    match content_type {
        ContentType::Framed if frame_length == 0 => return Err(FormatError::ZeroFrameLength),
        ContentType::NonFramed if frame_length != 0 => {
            return Err(FormatError::NonFramedWithFrameLength(frame_length))
        }
        ContentType::Framed if frame_length > limits.max_frame_length => {
            return Err(FormatError::FrameLengthOverLimit {
                length: frame_length.into(),
                max: limits.max_frame_length.into(),
            })
        }
        _ => {}
    }
    let commitment = match version {
        MessageVersion::V2 => Some(need!(c.array::<32>())),
        MessageVersion::V1 => None,
    };
    let authenticated_len = c.position();
    let header_iv = match version {
        MessageVersion::V1 => need!(c.array::<NONCE_LEN>()),
        MessageVersion::V2 => [0; NONCE_LEN],
    };
    let header_tag = need!(c.array::<TAG_LEN>());
    let len = c.position();
    Ok(Some(ParsedHeader {
        header: Header {
            version,
            suite,
            message_id,
            encryption_context,
            encrypted_data_keys,
            content_type,
            frame_length,
            commitment,
            header_iv,
            header_tag,
        },
        bytes: input[..len].to_vec(),
        authenticated_len,
    }))
}

/// The fields of a version 2 header that the writer chooses.
#[derive(Debug)]
pub struct HeaderV2Fields<'a> {
    /// A committing suite.
    pub suite: AlgorithmSuite,
    /// 32 random bytes.
    pub message_id: &'a [u8; 32],
    /// The context to store (without required-context pairs).
    pub stored_context: &'a EncryptionContext,
    /// At least one wrapped data key.
    pub encrypted_data_keys: &'a [EncryptedDataKey],
    /// 1 ..= 2^31 - 1.
    pub frame_length: u32,
    /// The key commitment.
    pub commitment: &'a [u8; 32],
}

/// Serializes a version 2 header up to (not including) its tag: exactly the tag's AAD prefix.
pub fn write_header_v2(fields: &HeaderV2Fields<'_>) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(256);
    out.push(2);
    out.extend_from_slice(&fields.suite.id().to_be_bytes());
    out.extend_from_slice(fields.message_id);
    let ctx = fields.stored_context.to_bytes()?;
    let ctx_len = u16::try_from(ctx.len()).map_err(|_| crate::error::ContextError::TooLarge)?;
    out.extend_from_slice(&ctx_len.to_be_bytes());
    out.extend_from_slice(&ctx);
    let count = u16::try_from(fields.encrypted_data_keys.len()).map_err(|_| {
        FormatError::TooManyEncryptedDataKeys {
            count: u16::MAX,
            max: u16::MAX,
        }
    })?;
    if count == 0 {
        return Err(FormatError::NoEncryptedDataKeys);
    }
    out.extend_from_slice(&count.to_be_bytes());
    for edk in fields.encrypted_data_keys {
        for field in [
            edk.provider_id.as_bytes(),
            &edk.provider_info,
            &edk.ciphertext,
        ] {
            let len = u16::try_from(field.len()).map_err(|_| FormatError::InvalidProviderId)?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    out.push(2);
    out.extend_from_slice(&fields.frame_length.to_be_bytes());
    out.extend_from_slice(fields.commitment);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeaderLimits = HeaderLimits {
        max_encrypted_data_keys: 4,
        max_frame_length: 1 << 20,
    };

    fn sample() -> Vec<u8> {
        let ctx = EncryptionContext::from_pairs([("a", "b")]);
        let edk = EncryptedDataKey {
            provider_id: "p".into(),
            provider_info: vec![1, 2],
            ciphertext: vec![3],
        };
        let mut bytes = write_header_v2(&HeaderV2Fields {
            suite: AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            message_id: &[7; 32],
            stored_context: &ctx,
            encrypted_data_keys: &[edk],
            frame_length: 4096,
            commitment: &[9; 32],
        })
        .unwrap();
        bytes.extend_from_slice(&[5; 16]);
        bytes
    }

    #[test]
    fn exact_v2_layout() {
        let bytes = sample();
        let mut expected = vec![2, 0x04, 0x78];
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(&[0, 8, 0, 1, 0, 1, b'a', 0, 1, b'b']);
        expected.extend_from_slice(&[0, 1, 0, 1, b'p', 0, 2, 1, 2, 0, 1, 3]);
        expected.extend_from_slice(&[2, 0, 0, 0x10, 0]);
        expected.extend_from_slice(&[9; 32]);
        expected.extend_from_slice(&[5; 16]);
        assert_eq!(bytes, expected);
        let parsed = parse_header(&bytes, &LIMITS).unwrap().unwrap();
        assert_eq!(parsed.bytes(), &bytes[..]);
        assert_eq!(parsed.authenticated_bytes(), &bytes[..bytes.len() - 16]);
        assert_eq!(parsed.header.frame_length, 4096);
        assert_eq!(parsed.header.header_tag, [5; 16]);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let bytes = sample();
        for n in 0..bytes.len() {
            assert!(parse_header(&bytes[..n], &LIMITS).unwrap().is_none(), "{n}");
        }
    }

    #[test]
    fn rejects_fields() {
        let bytes = sample();
        let with = |i: usize, v: u8| {
            let mut b = bytes.clone();
            b[i] = v;
            parse_header(&b, &LIMITS).map(|_| ())
        };
        assert_eq!(with(0, 3), Err(FormatError::UnknownVersion(3)));
        assert_eq!(with(2, 0x79), Err(FormatError::UnknownSuite(0x0479)));
        assert_eq!(
            with(1, 0x01),
            Err(FormatError::SuiteVersionMismatch {
                version: 2,
                suite: 0x0178
            })
        );
        let ct = 3 + 32 + 2 + 8 + 2 + 10;
        assert_eq!(with(ct, 7), Err(FormatError::UnknownContentType(7)));
        assert_eq!(
            with(3 + 32 + 2 + 8 + 1, 0),
            Err(FormatError::NoEncryptedDataKeys)
        );
        assert_eq!(
            with(3 + 32 + 2 + 8 + 1, 5),
            Err(FormatError::TooManyEncryptedDataKeys { count: 5, max: 4 })
        );
        assert_eq!(
            with(ct + 1, 1),
            Err(FormatError::FrameLengthOverLimit {
                length: 0x0100_1000,
                max: 1 << 20
            })
        );
    }
}
