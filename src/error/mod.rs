//! One error type for the whole crate, with a typed sub-error per concern.
//!
//! Every failure maps to exactly one variant, so callers (and the tool's exit codes) can tell
//! bad data ([`Error::Format`], [`Error::Authentication`]) from a policy refusal
//! ([`Error::Policy`]), a keyring problem ([`Error::Keyring`]) or I/O ([`Error::Io`]).

use core::fmt;

use crate::crypto::CryptoError;
mod keyring;

pub use keyring::KeyringError;

/// Everything that can go wrong in envcrypt.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed message, or break a configured limit.
    Format(FormatError),
    /// A tag, the key commitment or the signature did not verify.
    Authentication(AuthenticationError),
    /// The message is well-formed and authentic but a policy forbids it (or the request).
    Policy(PolicyError),
    /// No keyring could produce or recover the data key.
    Keyring(KeyringError),
    /// The crypto provider failed or lacks a primitive.
    Crypto(CryptoError),
    /// An argument is out of range (frame length, suite for encryption, ...).
    Config(ConfigError),
    /// Reading or writing failed.
    Io(std::io::Error),
    /// A bug: an invariant of envcrypt's own code broke (a worker thread panicked, say).
    /// Nothing was released; please report it.
    Internal(&'static str),
    /// The caller cancelled the operation (see [`crate::file::FileOptions::cancel`]); no
    /// output was created.
    Cancelled,
}

/// The category of an [`Error`]: stable across releases, for exit codes, C error codes and
/// metrics. New variants of [`Error`] map to one of these; new kinds are added only with a
/// new minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something invalid (argument out of range, API misuse, a
    /// keyring configured wrongly, a primitive this provider lacks, FIPS required).
    Usage,
    /// The input is not a well-formed message or breaks a configured limit (including
    /// truncation and trailing bytes).
    Format,
    /// A tag, the key commitment or the signature did not verify, or no keyring held a key
    /// that opens the message (wrong key, wrong context).
    Authentication,
    /// A well-formed, authentic message (or a request) that a policy refuses.
    Policy,
    /// A key service or HSM could not be reached.
    KeyringUnavailable,
    /// A key service or HSM refused the request (access denied).
    KeyringRefused,
    /// Reading or writing failed.
    Io,
    /// The caller cancelled the operation.
    Cancelled,
    /// A bug in envcrypt (a worker panicked, a primitive failed unexpectedly).
    Internal,
}

impl Error {
    /// The stable category of this error.
    ///
    /// ```
    /// use envcrypt::{Client, DecryptOptions, ErrorKind, keyring::RawAesKeyring};
    ///
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let e = client.decrypt(b"not a message", &DecryptOptions::default()).unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Format);
    /// # Ok::<(), envcrypt::Error>(())
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Format(_) => ErrorKind::Format,
            Self::Authentication(_) => ErrorKind::Authentication,
            Self::Policy(_) => ErrorKind::Policy,
            Self::Keyring(e) => e.kind(),
            Self::Crypto(e) => crypto_kind(e),
            Self::Config(_) => ErrorKind::Usage,
            Self::Io(_) => ErrorKind::Io,
            Self::Internal(_) => ErrorKind::Internal,
            Self::Cancelled => ErrorKind::Cancelled,
        }
    }
}

/// The kind of a primitive's failure.
pub(crate) fn crypto_kind(e: &CryptoError) -> ErrorKind {
    match e {
        CryptoError::Verification => ErrorKind::Authentication,
        CryptoError::Unsupported(_) => ErrorKind::Usage,
        CryptoError::InvalidKey | CryptoError::Failure => ErrorKind::Internal,
    }
}

/// Malformed or over-limit message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before the message did.
    Truncated,
    /// Bytes follow the end of the message.
    TrailingBytes,
    /// The first byte is not a known message format version.
    UnknownVersion(u8),
    /// Version 1 messages carry type `0x80`; this one does not.
    UnknownMessageType(u8),
    /// The suite id is not one this crate knows.
    UnknownSuite(u16),
    /// The suite belongs to the other message format version.
    SuiteVersionMismatch {
        /// Format version of the header.
        version: u8,
        /// Suite id found in it.
        suite: u16,
    },
    /// Content type other than `0x01` (non-framed) or `0x02` (framed).
    UnknownContentType(u8),
    /// The version 1 reserved field is not four zero bytes.
    NonZeroReserved,
    /// The version 1 IV length is not 12.
    InvalidIvLength(u8),
    /// A framed message declares frame length 0.
    ZeroFrameLength,
    /// A non-framed message declares a non-zero frame length.
    NonFramedWithFrameLength(u32),
    /// The frame length exceeds the reader's limit.
    FrameLengthOverLimit {
        /// Declared frame length.
        length: u64,
        /// Configured maximum.
        max: u64,
    },
    /// The header lists no encrypted data keys.
    NoEncryptedDataKeys,
    /// The header lists more encrypted data keys than allowed.
    TooManyEncryptedDataKeys {
        /// Declared count.
        count: u16,
        /// Configured maximum.
        max: u16,
    },
    /// A provider id is not valid UTF-8.
    InvalidProviderId,
    /// The encryption context section is malformed.
    Context(ContextError),
    /// A frame sequence number is not the next one.
    UnexpectedSequenceNumber {
        /// The sequence number that had to come next.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// The final frame is longer than the frame length.
    FinalFrameTooLong {
        /// Declared content length.
        length: u32,
        /// Frame length of the message.
        frame_length: u32,
    },
    /// A non-framed body is longer than the format allows or the reader accepts.
    BodyTooLong(u64),
    /// The footer is malformed (zero-length signature).
    InvalidFooter,
    /// The header is longer than the reader accepts.
    HeaderTooLong {
        /// Configured maximum, in bytes.
        max: u64,
    },
}

/// The encryption context section is malformed (or cannot be serialized).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// A key or value is not valid UTF-8.
    InvalidUtf8,
    /// The same key appears twice.
    DuplicateKey(String),
    /// A non-empty section declares zero pairs.
    EmptyWithCount,
    /// The pairs do not fill the declared length exactly.
    LengthMismatch,
    /// The serialized context (or one key or value) exceeds 65,535 bytes.
    TooLarge,
    /// An empty key.
    EmptyKey,
}

/// Authentication failures: no plaintext is released after any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthenticationError {
    /// The header authentication tag did not verify (header altered, or wrong context).
    HeaderTag,
    /// The key commitment in the header does not match the data key.
    Commitment,
    /// A body frame's tag did not verify.
    FrameTag {
        /// Sequence number of the frame.
        sequence: u32,
    },
    /// The footer signature did not verify.
    Signature,
}

/// Well-formed input (or request) refused by policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A version 1 (non-committing) message, and the commitment policy requires commitment.
    UncommittedMessage,
    /// A signed suite, and the caller accepts unsigned messages only.
    SignedMessage,
    /// The caller's context uses a key reserved to the SDK (`aws-crypto-` prefix).
    ReservedContextKey(String),
    /// An expected context pair is missing from the message or has another value.
    ContextMismatch(String),
    /// A signed suite without `aws-crypto-public-key` in its context, or an unsigned one with it.
    PublicKeyMismatch,
    /// A required context pair collides with a stored pair of another value.
    RequiredContextConflict(String),
    /// The materials manager returned materials that break its own contract.
    InvalidMaterials(&'static str),
    /// The suite is not allowed by the commitment policy for this operation.
    SuiteNotAllowed(u16),
    /// A context key the required-context manager demands is missing (on encrypt from the
    /// context, on decrypt from the caller's pairs).
    MissingRequiredContext(String),
}

/// An argument out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Frame length must be 1 ..= 2^31 - 1.
    InvalidFrameLength(u64),
    /// envcrypt writes suites 0x0478 and 0x0578 only.
    UnsupportedEncryptSuite(u16),
    /// The encryption context cannot be serialized.
    Context(ContextError),
    /// The stream was used after `finish` or after an error.
    StreamFinished,
    /// A frame was reserved after the final frame.
    MessageFinished,
    /// The message would need more than 2^32 - 2 frames.
    TooManyFrames,
    /// A frame ticket of another message was handed to a sealer.
    ForeignFrameTicket,
    /// A sealer was handed a frame at or below the last one it sealed (its nonces must rise).
    FrameOutOfOrder {
        /// Sequence number of the ticket.
        sequence: u32,
        /// The last sequence number the sealer sealed.
        last: u32,
    },
    /// A frame buffer handed to the engine has the wrong size.
    FrameBufferSize(usize),
    /// FIPS was required and this provider is not a FIPS module in FIPS mode.
    FipsRequired(&'static str),
    /// Random access needs an unsigned (0x0478-style), framed message.
    RandomAccessUnsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format(e) => write!(f, "malformed message: {e}"),
            Self::Authentication(e) => write!(f, "authentication failed: {e}"),
            Self::Policy(e) => write!(f, "refused by policy: {e}"),
            Self::Keyring(e) => write!(f, "keyring: {e}"),
            Self::Crypto(e) => write!(f, "crypto provider: {e}"),
            Self::Config(e) => write!(f, "invalid argument: {e}"),
            Self::Io(e) => write!(f, "I/O: {e}"),
            Self::Internal(what) => write!(f, "internal error: {what}"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("message is truncated"),
            Self::TrailingBytes => f.write_str("bytes follow the end of the message"),
            Self::UnknownVersion(v) => write!(f, "unknown message format version {v:#04x}"),
            Self::UnknownMessageType(t) => write!(f, "unknown message type {t:#04x}"),
            Self::UnknownSuite(s) => write!(f, "unknown algorithm suite {s:#06x}"),
            Self::SuiteVersionMismatch { version, suite } => {
                write!(
                    f,
                    "suite {suite:#06x} is not valid in format version {version}"
                )
            }
            Self::UnknownContentType(t) => write!(f, "unknown content type {t:#04x}"),
            Self::NonZeroReserved => f.write_str("reserved header field is not zero"),
            Self::InvalidIvLength(l) => write!(f, "IV length {l} (must be 12)"),
            Self::ZeroFrameLength => f.write_str("framed message with frame length 0"),
            Self::NonFramedWithFrameLength(l) => {
                write!(f, "non-framed message with frame length {l}")
            }
            Self::FrameLengthOverLimit { length, max } => {
                write!(f, "frame length {length} exceeds the limit of {max}")
            }
            Self::NoEncryptedDataKeys => f.write_str("no encrypted data keys"),
            Self::TooManyEncryptedDataKeys { count, max } => {
                write!(f, "{count} encrypted data keys exceed the limit of {max}")
            }
            Self::InvalidProviderId => f.write_str("provider id is not UTF-8"),
            Self::Context(e) => write!(f, "encryption context: {e}"),
            Self::UnexpectedSequenceNumber { expected, found } => {
                write!(f, "frame sequence number {found}, expected {expected}")
            }
            Self::FinalFrameTooLong {
                length,
                frame_length,
            } => write!(
                f,
                "final frame of {length} bytes exceeds frame length {frame_length}"
            ),
            Self::BodyTooLong(l) => write!(f, "body of {l} bytes exceeds the limit"),
            Self::InvalidFooter => f.write_str("malformed footer"),
            Self::HeaderTooLong { max } => write!(f, "header longer than the limit of {max} bytes"),
        }
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUtf8 => f.write_str("key or value is not UTF-8"),
            Self::DuplicateKey(k) => write!(f, "duplicate key {k:?}"),
            Self::EmptyWithCount => f.write_str("non-empty section with zero pairs"),
            Self::LengthMismatch => f.write_str("pairs do not match the declared length"),
            Self::TooLarge => f.write_str("larger than 65,535 bytes"),
            Self::EmptyKey => f.write_str("empty key"),
        }
    }
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderTag => f.write_str("header tag does not verify"),
            Self::Commitment => f.write_str("key commitment does not match"),
            Self::FrameTag { sequence } => write!(f, "tag of frame {sequence} does not verify"),
            Self::Signature => f.write_str("message signature does not verify"),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UncommittedMessage => f.write_str(
                "message has no key commitment (version 1); the commitment policy forbids it",
            ),
            Self::SignedMessage => f.write_str("message is signed; only unsigned ones accepted"),
            Self::ReservedContextKey(k) => write!(f, "context key {k:?} is reserved"),
            Self::ContextMismatch(k) => {
                write!(f, "encryption context pair {k:?} is missing or differs")
            }
            Self::PublicKeyMismatch => {
                f.write_str("aws-crypto-public-key does not agree with the suite")
            }
            Self::RequiredContextConflict(k) => {
                write!(
                    f,
                    "required context key {k:?} conflicts with the stored context"
                )
            }
            Self::InvalidMaterials(w) => write!(f, "invalid materials: {w}"),
            Self::MissingRequiredContext(k) => {
                write!(f, "required encryption context key {k:?} was not supplied")
            }
            Self::SuiteNotAllowed(s) => {
                write!(f, "suite {s:#06x} is not allowed by the commitment policy")
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidFrameLength(l) => {
                write!(f, "frame length {l} (must be 1 ..= 2147483647)")
            }
            Self::UnsupportedEncryptSuite(s) => {
                write!(
                    f,
                    "cannot encrypt with suite {s:#06x} (use 0x0578 or 0x0478)"
                )
            }
            Self::Context(e) => write!(f, "encryption context: {e}"),
            Self::StreamFinished => f.write_str("stream already finished or failed"),
            Self::MessageFinished => f.write_str("the final frame was already reserved"),
            Self::TooManyFrames => f.write_str("a message holds at most 2^32 - 2 frames"),
            Self::ForeignFrameTicket => f.write_str("frame ticket of another message"),
            Self::FrameOutOfOrder { sequence, last } => write!(
                f,
                "frame {sequence} sealed after frame {last} (nonces must rise)"
            ),
            Self::FrameBufferSize(n) => write!(f, "frame buffer of {n} bytes has the wrong size"),
            Self::FipsRequired(p) => {
                write!(f, "FIPS required, but provider {p} is not in FIPS mode")
            }
            Self::RandomAccessUnsupported => {
                f.write_str("random access needs an unsigned, framed message (suite 0x0478)")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Keyring(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Self::Format(e)
    }
}
impl From<AuthenticationError> for Error {
    fn from(e: AuthenticationError) -> Self {
        Self::Authentication(e)
    }
}
impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}
impl From<KeyringError> for Error {
    fn from(e: KeyringError) -> Self {
        Self::Keyring(e)
    }
}
impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}
impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}
impl From<ContextError> for FormatError {
    fn from(e: ContextError) -> Self {
        Self::Context(e)
    }
}

/// Adapters that speak `std::io` carry an [`Error`] inside an `io::Error`; this gets it back.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

#[cfg(test)]
mod tests;
