//! Body frames, the non-framed body block, their AAD, and the footer.

use super::cursor::{need, Cursor};
use super::header::ContentType;
use super::Parsed;
use crate::crypto::{NONCE_LEN, TAG_LEN};
use crate::error::FormatError;

/// Bytes before a regular frame's ciphertext: `u32 seq`, IV.
pub const REGULAR_FRAME_PREFIX_LEN: usize = 4 + NONCE_LEN;
/// Bytes before the final frame's ciphertext: marker, `u32 seq`, IV, `u32 len`.
pub const FINAL_FRAME_PREFIX_LEN: usize = 4 + 4 + NONCE_LEN + 4;
/// Bytes before a non-framed body's ciphertext: IV, `u64 len`.
pub const NON_FRAMED_PREFIX_LEN: usize = NONCE_LEN + 8;
/// The sequence-number field value that marks the final frame.
pub const FINAL_MARKER: u32 = 0xFFFF_FFFF;
/// Length of a sealed regular frame of a message with `frame_length`: prefix, ciphertext,
/// tag. Every regular frame has it, so frame `k` starts `(k - 1)` of them after the header.
pub const fn regular_frame_len(frame_length: u32) -> usize {
    REGULAR_FRAME_PREFIX_LEN + frame_length as usize + TAG_LEN
}

/// Length of a sealed final frame holding `len` plaintext bytes: prefix, ciphertext, tag.
pub const fn final_frame_len(len: usize) -> usize {
    FINAL_FRAME_PREFIX_LEN + len + TAG_LEN
}

/// Bytes that tell a regular frame from the final one (the sequence number field).
pub const FRAME_MARKER_LEN: usize = 4;
/// Bytes of the footer's signature length field.
pub const FOOTER_LENGTH_LEN: usize = 2;

/// The length of the next unit's prefix once the first [`FRAME_MARKER_LEN`] bytes are in
/// `input` (framed) or at once (non-framed); `None` while too few bytes are there to tell.
pub fn frame_prefix_len(input: &[u8], content_type: ContentType) -> Option<usize> {
    match content_type {
        ContentType::NonFramed => Some(NON_FRAMED_PREFIX_LEN),
        ContentType::Framed => {
            let marker = input.get(..FRAME_MARKER_LEN)?;
            Some(match marker == FINAL_MARKER.to_be_bytes() {
                true => FINAL_FRAME_PREFIX_LEN,
                false => REGULAR_FRAME_PREFIX_LEN,
            })
        }
    }
}

/// The whole footer's length once its length field is in `input`.
pub fn footer_len_hint(input: &[u8]) -> Option<usize> {
    let len = input.get(..FOOTER_LENGTH_LEN)?;
    Some(FOOTER_LENGTH_LEN + usize::from(u16::from_be_bytes([len[0], len[1]])))
}

/// Largest frame length envcrypt writes (and every official reader accepts).
pub const MAX_FRAME_LENGTH: u32 = i32::MAX as u32;
/// Largest non-framed body the format allows (GCM's limit).
pub const MAX_NON_FRAMED_LENGTH: u64 = (1 << 36) - 32;

/// Which kind of body unit, which decides its AAD content string.
///
/// Exhaustive: the format defines exactly these three content strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A full-length frame that is not the last.
    Regular,
    /// The last frame.
    Final,
    /// The single block of a non-framed body.
    SingleBlock,
}

impl BodyKind {
    /// The AAD content string.
    pub const fn content_string(self) -> &'static [u8] {
        match self {
            Self::Regular => b"AWSKMSEncryptionClient Frame",
            Self::Final => b"AWSKMSEncryptionClient Final Frame",
            Self::SingleBlock => b"AWSKMSEncryptionClient Single Block",
        }
    }
}

/// The fields in front of a frame's ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Regular, final or single block.
    pub kind: BodyKind,
    /// Sequence number (1 for a single block).
    pub sequence: u32,
    /// The IV as stored.
    pub iv: [u8; NONCE_LEN],
    /// Ciphertext length (= plaintext length).
    pub content_len: u64,
    /// Bytes of this header.
    pub prefix_len: usize,
}

/// Parses the header of the next body unit from the front of `input`.
///
/// `frame_length` is the header's; a final frame longer than it is rejected.
pub fn parse_frame_header(
    input: &[u8],
    content_type: ContentType,
    frame_length: u32,
) -> Parsed<FrameHeader> {
    let mut c = Cursor::new(input);
    let (kind, sequence, iv, content_len) = match content_type {
        ContentType::NonFramed => {
            let iv = need!(c.array::<NONCE_LEN>());
            let len = need!(c.u64());
            if len > MAX_NON_FRAMED_LENGTH {
                return Err(FormatError::BodyTooLong(len));
            }
            (BodyKind::SingleBlock, 1, iv, len)
        }
        ContentType::Framed => {
            let seq = need!(c.u32());
            if seq == FINAL_MARKER {
                let seq = need!(c.u32());
                let iv = need!(c.array::<NONCE_LEN>());
                let len = need!(c.u32());
                if len > frame_length {
                    return Err(FormatError::FinalFrameTooLong {
                        length: len,
                        frame_length,
                    });
                }
                (BodyKind::Final, seq, iv, u64::from(len))
            } else {
                let iv = need!(c.array::<NONCE_LEN>());
                (BodyKind::Regular, seq, iv, u64::from(frame_length))
            }
        }
    };
    Ok(Some(FrameHeader {
        kind,
        sequence,
        iv,
        content_len,
        prefix_len: c.position(),
    }))
}

/// Writes a regular frame header (`out.len()` must be [`REGULAR_FRAME_PREFIX_LEN`]).
pub fn write_regular_frame_header(out: &mut [u8], sequence: u32, iv: &[u8; NONCE_LEN]) {
    out[..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..].copy_from_slice(iv);
}

/// Writes a final frame header (`out.len()` must be [`FINAL_FRAME_PREFIX_LEN`]).
pub fn write_final_frame_header(out: &mut [u8], sequence: u32, iv: &[u8; NONCE_LEN], len: u32) {
    out[..4].copy_from_slice(&FINAL_MARKER.to_be_bytes());
    out[4..8].copy_from_slice(&sequence.to_be_bytes());
    out[8..20].copy_from_slice(iv);
    out[20..].copy_from_slice(&len.to_be_bytes());
}

/// AAD of a body unit: message id, content string, sequence number, content length.
pub struct FrameAad {
    buf: [u8; 32 + 35 + 4 + 8],
    len: usize,
}

impl AsRef<[u8]> for FrameAad {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Builds the AAD of a body unit.
pub fn frame_aad(message_id: &[u8], kind: BodyKind, sequence: u32, content_len: u64) -> FrameAad {
    let mut buf = [0u8; 32 + 35 + 4 + 8];
    let s = kind.content_string();
    let mut len = 0;
    for part in [
        message_id,
        s,
        &sequence.to_be_bytes()[..],
        &content_len.to_be_bytes()[..],
    ] {
        buf[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    FrameAad { buf, len }
}

/// Parses a footer: `u16 len` then a DER signature of that length. Returns the total length.
pub fn parse_footer(input: &[u8]) -> Parsed<usize> {
    let mut c = Cursor::new(input);
    let sig = need!(c.u16_prefixed());
    if sig.is_empty() {
        return Err(FormatError::InvalidFooter);
    }
    Ok(Some(c.position()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_frame_round_trip() {
        let mut b = [0u8; FINAL_FRAME_PREFIX_LEN];
        write_final_frame_header(&mut b, 3, &[1; 12], 10);
        let h = parse_frame_header(&b, ContentType::Framed, 16)
            .unwrap()
            .unwrap();
        assert_eq!(h.kind, BodyKind::Final);
        assert_eq!((h.sequence, h.content_len, h.prefix_len), (3, 10, 24));
        assert_eq!(
            parse_frame_header(&b, ContentType::Framed, 9),
            Err(FormatError::FinalFrameTooLong {
                length: 10,
                frame_length: 9
            })
        );
        for n in 0..b.len() {
            assert_eq!(
                parse_frame_header(&b[..n], ContentType::Framed, 16),
                Ok(None)
            );
        }
    }

    #[test]
    fn a_regular_frame_is_sequence_iv_ciphertext_tag() {
        assert_eq!(regular_frame_len(4096), 4 + 12 + 4096 + 16);
        assert_eq!(regular_frame_len(1), 33);
    }

    #[test]
    fn aad_layout() {
        let aad = frame_aad(&[0xAA; 32], BodyKind::Regular, 2, 5);
        let a = aad.as_ref();
        assert_eq!(&a[..32], &[0xAA; 32]);
        assert_eq!(&a[32..60], b"AWSKMSEncryptionClient Frame");
        assert_eq!(&a[60..], &[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn what_a_unit_needs_to_be_laid_out() {
        assert_eq!(frame_prefix_len(&[0, 0, 0], ContentType::Framed), None);
        assert_eq!(
            frame_prefix_len(&[0, 0, 0, 7], ContentType::Framed),
            Some(16)
        );
        assert_eq!(frame_prefix_len(&[0xFF; 4], ContentType::Framed), Some(24));
        assert_eq!(frame_prefix_len(&[], ContentType::NonFramed), Some(20));
        assert_eq!(footer_len_hint(&[0]), None);
        assert_eq!(footer_len_hint(&[0, 103]), Some(105));
        assert_eq!(final_frame_len(0), 40);
    }

    #[test]
    fn footer() {
        assert_eq!(parse_footer(&[0, 2, 1]), Ok(None));
        assert_eq!(parse_footer(&[0, 2, 1, 2]), Ok(Some(4)));
        assert_eq!(parse_footer(&[0, 0]), Err(FormatError::InvalidFooter));
    }
}
