//! One error type for the whole crate, with a typed sub-error per concern.
//!
//! Every failure maps to exactly one variant, so callers (and the tool's exit codes) can tell
//! bad data ([`Error::Format`], [`Error::Authentication`]) from a policy refusal
//! ([`Error::Policy`]), a keyring problem ([`Error::Keyring`]) or I/O ([`Error::Io`]).
//!
//! A wrapping variant's message already includes its inner error's, and `source()` also
//! returns that inner error (for downcasting): a reporter that prints the whole chain
//! repeats the text, so print the top error's `Display` alone.

use crate::crypto::CryptoError;
mod keyring;

pub use keyring::KeyringError;

/// Everything that can go wrong in envcrypt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed message, or break a configured limit.
    #[error("malformed message: {0}")]
    Format(#[from] FormatError),
    /// A tag, the key commitment or the signature did not verify.
    #[error("authentication failed: {0}")]
    Authentication(#[from] AuthenticationError),
    /// The message is well-formed and authentic but a policy forbids it (or the request).
    #[error("refused by policy: {0}")]
    Policy(#[from] PolicyError),
    /// No keyring could produce or recover the data key.
    #[error("keyring: {0}")]
    Keyring(#[from] KeyringError),
    /// The crypto provider failed or lacks a primitive.
    #[error("crypto provider: {0}")]
    Crypto(#[from] CryptoError),
    /// An argument is out of range (frame length, suite for encryption, ...).
    #[error("invalid argument: {0}")]
    Config(#[from] ConfigError),
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A bug: an invariant of envcrypt's own code broke (a worker thread panicked, say).
    /// Nothing was released; please report it.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The caller cancelled the operation (see [`crate::file::FileOptions::cancel`]); no
    /// output was created.
    #[error("cancelled")]
    Cancelled,
    /// An audit event could not be recorded (the audit trail fails closed), or an audit
    /// key or log could not be used.
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
    /// An S3 call failed (feature `aws-s3`).
    #[cfg(feature = "aws-s3")]
    #[error("{0}")]
    S3(#[from] crate::s3::S3Error),
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
            Self::Audit(crate::audit::AuditError::Key(_)) => ErrorKind::Usage,
            Self::Audit(_) => ErrorKind::Io,
            #[cfg(feature = "aws-s3")]
            Self::S3(_) => ErrorKind::Io,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before the message did.
    #[error("message is truncated")]
    Truncated,
    /// Bytes follow the end of the message.
    #[error("bytes follow the end of the message")]
    TrailingBytes,
    /// The first byte is not a known message format version.
    #[error("unknown message format version {0:#04x}")]
    UnknownVersion(u8),
    /// Version 1 messages carry type `0x80`; this one does not.
    #[error("unknown message type {0:#04x}")]
    UnknownMessageType(u8),
    /// The suite id is not one this crate knows.
    #[error("unknown algorithm suite {0:#06x}")]
    UnknownSuite(u16),
    /// The suite belongs to the other message format version.
    #[error("suite {suite:#06x} is not valid in format version {version}")]
    SuiteVersionMismatch {
        /// Format version of the header.
        version: u8,
        /// Suite id found in it.
        suite: u16,
    },
    /// Content type other than `0x01` (non-framed) or `0x02` (framed).
    #[error("unknown content type {0:#04x}")]
    UnknownContentType(u8),
    /// The version 1 reserved field is not four zero bytes.
    #[error("reserved header field is not zero")]
    NonZeroReserved,
    /// The version 1 IV length is not 12.
    #[error("IV length {0} (must be 12)")]
    InvalidIvLength(u8),
    /// A framed message declares frame length 0.
    #[error("framed message with frame length 0")]
    ZeroFrameLength,
    /// A non-framed message declares a non-zero frame length.
    #[error("non-framed message with frame length {0}")]
    NonFramedWithFrameLength(u32),
    /// The frame length exceeds the reader's limit.
    #[error("frame length {length} exceeds the limit of {max}")]
    FrameLengthOverLimit {
        /// Declared frame length.
        length: u64,
        /// Configured maximum.
        max: u64,
    },
    /// The header lists no encrypted data keys.
    #[error("no encrypted data keys")]
    NoEncryptedDataKeys,
    /// The header lists more encrypted data keys than allowed.
    #[error("{count} encrypted data keys exceed the limit of {max}")]
    TooManyEncryptedDataKeys {
        /// Declared count.
        count: u16,
        /// Configured maximum.
        max: u16,
    },
    /// A provider id is not valid UTF-8.
    #[error("provider id is not UTF-8")]
    InvalidProviderId,
    /// The encryption context section is malformed.
    #[error("encryption context: {0}")]
    Context(#[from] ContextError),
    /// A frame sequence number is not the next one.
    #[error("frame sequence number {found}, expected {expected}")]
    UnexpectedSequenceNumber {
        /// The sequence number that had to come next.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// The final frame is longer than the frame length.
    #[error("final frame of {length} bytes exceeds frame length {frame_length}")]
    FinalFrameTooLong {
        /// Declared content length.
        length: u32,
        /// Frame length of the message.
        frame_length: u32,
    },
    /// A non-framed body is longer than the format allows or the reader accepts.
    #[error("body of {0} bytes exceeds the limit")]
    BodyTooLong(u64),
    /// The footer is malformed (zero-length signature).
    #[error("malformed footer")]
    InvalidFooter,
    /// The header is longer than the reader accepts.
    #[error("header longer than the limit of {max} bytes")]
    HeaderTooLong {
        /// Configured maximum, in bytes.
        max: u64,
    },
}

/// The encryption context section is malformed (or cannot be serialized).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A key or value is not valid UTF-8.
    #[error("key or value is not UTF-8")]
    InvalidUtf8,
    /// The same key appears twice.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// A non-empty section declares zero pairs.
    #[error("non-empty section with zero pairs")]
    EmptyWithCount,
    /// The pairs do not fill the declared length exactly.
    #[error("pairs do not match the declared length")]
    LengthMismatch,
    /// The serialized context (or one key or value) exceeds 65,535 bytes.
    #[error("larger than 65,535 bytes")]
    TooLarge,
    /// An empty key.
    #[error("empty key")]
    EmptyKey,
}

/// Authentication failures: no plaintext is released after any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthenticationError {
    /// The header authentication tag did not verify (header altered, or wrong context).
    #[error("header tag does not verify")]
    HeaderTag,
    /// The key commitment in the header does not match the data key.
    #[error("key commitment does not match")]
    Commitment,
    /// A body frame's tag did not verify.
    #[error("tag of frame {sequence} does not verify")]
    FrameTag {
        /// Sequence number of the frame.
        sequence: u32,
    },
    /// The footer signature did not verify.
    #[error("message signature does not verify")]
    Signature,
}

/// Well-formed input (or request) refused by policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A version 1 (non-committing) message, and the commitment policy requires commitment.
    #[error("message has no key commitment (version 1); the commitment policy forbids it")]
    UncommittedMessage,
    /// A signed suite, and the caller accepts unsigned messages only.
    #[error("message is signed; only unsigned ones accepted")]
    SignedMessage,
    /// The caller's context uses a key reserved to the SDK (`aws-crypto-` prefix).
    #[error("context key {0:?} is reserved")]
    ReservedContextKey(String),
    /// An expected context pair is missing from the message or has another value.
    #[error("encryption context pair {0:?} is missing or differs")]
    ContextMismatch(String),
    /// A signed suite without `aws-crypto-public-key` in its context, or an unsigned one with it.
    #[error("aws-crypto-public-key does not agree with the suite")]
    PublicKeyMismatch,
    /// A required context pair collides with a stored pair of another value.
    #[error("required context key {0:?} conflicts with the stored context")]
    RequiredContextConflict(String),
    /// The materials manager returned materials that break its own contract.
    #[error("invalid materials: {0}")]
    InvalidMaterials(&'static str),
    /// The suite is not allowed by the commitment policy for this operation.
    #[error("suite {0:#06x} is not allowed by the commitment policy")]
    SuiteNotAllowed(u16),
    /// A context key the required-context manager demands is missing (on encrypt from the
    /// context, on decrypt from the caller's pairs).
    #[error("required encryption context key {0:?} was not supplied")]
    MissingRequiredContext(String),
}

/// An argument out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Frame length must be 1 ..= 2^31 - 1.
    #[error("frame length {0} (must be 1 ..= 2147483647)")]
    InvalidFrameLength(u64),
    /// envcrypt writes suites 0x0478 and 0x0578 only.
    #[error("cannot encrypt with suite {0:#06x} (use 0x0578 or 0x0478)")]
    UnsupportedEncryptSuite(u16),
    /// The encryption context cannot be serialized.
    #[error("encryption context: {0}")]
    Context(#[source] ContextError),
    /// The stream was used after `finish` or after an error.
    #[error("stream already finished or failed")]
    StreamFinished,
    /// An engine step was called in a state that does not allow it (e.g. `next_frame`
    /// before `set_materials`, or anything after the message ended).
    #[error("{step} called out of order")]
    OutOfOrder {
        /// The step called.
        step: &'static str,
    },
    /// The engine failed earlier; any error is final.
    #[error("the decryptor already failed")]
    AfterFailure,
    /// A frame sequence number outside 1 ..= 2^32 - 2.
    #[error("frame sequence number {0} is out of range")]
    InvalidSequence(u32),
    /// A frame was reserved after the final frame.
    #[error("the final frame was already reserved")]
    MessageFinished,
    /// The message would need more than 2^32 - 2 frames.
    #[error("a message holds at most 2^32 - 2 frames")]
    TooManyFrames,
    /// A frame ticket of another message was handed to a sealer.
    #[error("frame ticket of another message")]
    ForeignFrameTicket,
    /// A sealer was handed a frame at or below the last one it sealed (its nonces must rise).
    #[error("frame {sequence} sealed after frame {last} (nonces must rise)")]
    FrameOutOfOrder {
        /// Sequence number of the ticket.
        sequence: u32,
        /// The last sequence number the sealer sealed.
        last: u32,
    },
    /// A frame buffer handed to the engine has the wrong size.
    #[error("frame buffer of {0} bytes has the wrong size")]
    FrameBufferSize(usize),
    /// Not an `s3://BUCKET/KEY` URI (or prefix) as required.
    #[error("S3 URI {0}")]
    S3Uri(String),
    /// FIPS was required and this provider is not a FIPS module in FIPS mode.
    #[error("FIPS required, but provider {0} is not in FIPS mode")]
    FipsRequired(&'static str),
    /// Random access needs an unsigned (0x0478-style), framed message.
    #[error("random access needs an unsigned, framed message (suite 0x0478)")]
    RandomAccessUnsupported,
    /// A rewrap was asked to remove a context key the message does not have.
    #[error("cannot remove context key {0:?}: the message has no such key")]
    ContextKeyAbsent(String),
    /// A rewrap was asked to add a context key the message already has (remove it in the
    /// same rewrap to change its value).
    #[error("context key {0:?} is already in the message (remove it to change its value)")]
    ContextKeyPresent(String),
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
