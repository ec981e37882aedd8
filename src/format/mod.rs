//! The AWS Encryption SDK message format: bytes only, no keys, no I/O.
//!
//! Parsers take a byte slice that may hold only part of a structure and answer `Ok(None)`
//! when they need more bytes, a typed [`FormatError`] when the bytes break the format, and the
//! parsed value with the number of bytes it used otherwise. They never panic.

mod context;
mod cursor;
mod frame;
mod header;
mod key_name;
mod suite;

pub use context::EncryptionContext;
pub use frame::{
    final_frame_len, footer_len_hint, frame_aad, frame_prefix_len, parse_footer,
    parse_frame_header, regular_frame_len, write_final_frame_header, write_regular_frame_header,
    BodyKind, FrameHeader, FINAL_FRAME_PREFIX_LEN, FINAL_MARKER, FOOTER_LENGTH_LEN,
    FRAME_MARKER_LEN, MAX_FRAME_LENGTH, MAX_NON_FRAMED_LENGTH, NON_FRAMED_PREFIX_LEN,
    REGULAR_FRAME_PREFIX_LEN,
};
pub use header::{
    parse_header, write_header_v2, ContentType, EncryptedDataKey, Header, HeaderLimits,
    HeaderV2Fields, MessageVersion, ParsedHeader,
};
pub use suite::{AlgorithmSuite, Kdf};

use crate::error::FormatError;

/// `Ok(None)`: more bytes needed. The shape every incremental parser here returns.
pub type Parsed<T> = Result<Option<T>, FormatError>;
