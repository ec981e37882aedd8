//! Display texts (pinned: the tool prints them) and `source()` chains of the error types.

use core::fmt;
use std::error::Error as StdError;

use super::*;

/// Every variant's message, exactly as it was before the move to `thiserror`.
#[test]
fn display_texts_are_stable() {
    let ctx = || ContextError::DuplicateKey("k".into());
    fn s(e: impl fmt::Display) -> String {
        e.to_string()
    }
    let cases: Vec<(String, &str)> = vec![
        // Error
        (
            s(Error::Format(FormatError::Truncated)),
            "malformed message: message is truncated",
        ),
        (
            s(Error::Authentication(AuthenticationError::Signature)),
            "authentication failed: message signature does not verify",
        ),
        (
            s(Error::Policy(PolicyError::SignedMessage)),
            "refused by policy: message is signed; only unsigned ones accepted",
        ),
        (
            s(Error::Keyring(KeyringError::NoMatchingKey)),
            "keyring: no encrypted data key matches this keyring",
        ),
        (
            s(Error::Crypto(CryptoError::Failure)),
            "crypto provider: primitive failed",
        ),
        (
            s(Error::Config(ConfigError::TooManyFrames)),
            "invalid argument: a message holds at most 2^32 - 2 frames",
        ),
        (
            s(Error::Io(std::io::Error::other("disk full"))),
            "I/O: disk full",
        ),
        (s(Error::Internal("worker panicked")), "internal error: worker panicked"),
        (s(Error::Cancelled), "cancelled"),
        // FormatError
        (s(FormatError::Truncated), "message is truncated"),
        (s(FormatError::TrailingBytes), "bytes follow the end of the message"),
        (s(FormatError::UnknownVersion(3)), "unknown message format version 0x03"),
        (s(FormatError::UnknownMessageType(0x81)), "unknown message type 0x81"),
        (s(FormatError::UnknownSuite(0x14)), "unknown algorithm suite 0x0014"),
        (
            s(FormatError::SuiteVersionMismatch {
                version: 1,
                suite: 0x0478,
            }),
            "suite 0x0478 is not valid in format version 1",
        ),
        (s(FormatError::UnknownContentType(9)), "unknown content type 0x09"),
        (s(FormatError::NonZeroReserved), "reserved header field is not zero"),
        (s(FormatError::InvalidIvLength(16)), "IV length 16 (must be 12)"),
        (s(FormatError::ZeroFrameLength), "framed message with frame length 0"),
        (
            s(FormatError::NonFramedWithFrameLength(7)),
            "non-framed message with frame length 7",
        ),
        (
            s(FormatError::FrameLengthOverLimit { length: 9, max: 8 }),
            "frame length 9 exceeds the limit of 8",
        ),
        (s(FormatError::NoEncryptedDataKeys), "no encrypted data keys"),
        (
            s(FormatError::TooManyEncryptedDataKeys { count: 5, max: 4 }),
            "5 encrypted data keys exceed the limit of 4",
        ),
        (s(FormatError::InvalidProviderId), "provider id is not UTF-8"),
        (
            s(FormatError::Context(ctx())),
            "encryption context: duplicate key \"k\"",
        ),
        (
            s(FormatError::UnexpectedSequenceNumber {
                expected: 2,
                found: 3,
            }),
            "frame sequence number 3, expected 2",
        ),
        (
            s(FormatError::FinalFrameTooLong {
                length: 5,
                frame_length: 4,
            }),
            "final frame of 5 bytes exceeds frame length 4",
        ),
        (s(FormatError::BodyTooLong(99)), "body of 99 bytes exceeds the limit"),
        (s(FormatError::InvalidFooter), "malformed footer"),
        (
            s(FormatError::HeaderTooLong { max: 1024 }),
            "header longer than the limit of 1024 bytes",
        ),
        // ContextError
        (s(ContextError::InvalidUtf8), "key or value is not UTF-8"),
        (s(ctx()), "duplicate key \"k\""),
        (s(ContextError::EmptyWithCount), "non-empty section with zero pairs"),
        (
            s(ContextError::LengthMismatch),
            "pairs do not match the declared length",
        ),
        (s(ContextError::TooLarge), "larger than 65,535 bytes"),
        (s(ContextError::EmptyKey), "empty key"),
        // AuthenticationError
        (s(AuthenticationError::HeaderTag), "header tag does not verify"),
        (s(AuthenticationError::Commitment), "key commitment does not match"),
        (
            s(AuthenticationError::FrameTag { sequence: 4 }),
            "tag of frame 4 does not verify",
        ),
        (
            s(AuthenticationError::Signature),
            "message signature does not verify",
        ),
        // PolicyError
        (
            s(PolicyError::UncommittedMessage),
            "message has no key commitment (version 1); the commitment policy forbids it",
        ),
        (
            s(PolicyError::SignedMessage),
            "message is signed; only unsigned ones accepted",
        ),
        (
            s(PolicyError::ReservedContextKey("aws-crypto-x".into())),
            "context key \"aws-crypto-x\" is reserved",
        ),
        (
            s(PolicyError::ContextMismatch("k".into())),
            "encryption context pair \"k\" is missing or differs",
        ),
        (
            s(PolicyError::PublicKeyMismatch),
            "aws-crypto-public-key does not agree with the suite",
        ),
        (
            s(PolicyError::RequiredContextConflict("k".into())),
            "required context key \"k\" conflicts with the stored context",
        ),
        (
            s(PolicyError::InvalidMaterials("short key")),
            "invalid materials: short key",
        ),
        (
            s(PolicyError::SuiteNotAllowed(0x0014)),
            "suite 0x0014 is not allowed by the commitment policy",
        ),
        (
            s(PolicyError::MissingRequiredContext("k".into())),
            "required encryption context key \"k\" was not supplied",
        ),
        // ConfigError
        (
            s(ConfigError::InvalidFrameLength(0)),
            "frame length 0 (must be 1 ..= 2147483647)",
        ),
        (
            s(ConfigError::UnsupportedEncryptSuite(0x0014)),
            "cannot encrypt with suite 0x0014 (use 0x0578 or 0x0478)",
        ),
        (
            s(ConfigError::Context(ContextError::TooLarge)),
            "encryption context: larger than 65,535 bytes",
        ),
        (
            s(ConfigError::StreamFinished),
            "stream already finished or failed",
        ),
        (
            s(ConfigError::MessageFinished),
            "the final frame was already reserved",
        ),
        (
            s(ConfigError::TooManyFrames),
            "a message holds at most 2^32 - 2 frames",
        ),
        (
            s(ConfigError::ForeignFrameTicket),
            "frame ticket of another message",
        ),
        (
            s(ConfigError::FrameOutOfOrder {
                sequence: 2,
                last: 3,
            }),
            "frame 2 sealed after frame 3 (nonces must rise)",
        ),
        (
            s(ConfigError::FrameBufferSize(10)),
            "frame buffer of 10 bytes has the wrong size",
        ),
        (
            s(ConfigError::FipsRequired("rust-crypto")),
            "FIPS required, but provider rust-crypto is not in FIPS mode",
        ),
        (
            s(ConfigError::RandomAccessUnsupported),
            "random access needs an unsigned, framed message (suite 0x0478)",
        ),
        // KeyringError
        (
            s(KeyringError::NoMatchingKey),
            "no encrypted data key matches this keyring",
        ),
        (
            s(KeyringError::Excluded(vec!["a".into(), "b".into()])),
            "no encrypted data key passed this keyring's filter: a; b",
        ),
        (
            s(KeyringError::UnwrapFailed {
                provider_id: "ns".into(),
                key_name: "key".into(),
            }),
            "could not unwrap the data key of ns/key (wrong key, padding or encryption context)",
        ),
        (
            s(KeyringError::Unavailable("timeout".into())),
            "key service unavailable: timeout",
        ),
        (
            s(KeyringError::AccessDenied("nope".into())),
            "access denied: nope",
        ),
        (
            s(KeyringError::InvalidKey("short".into())),
            "invalid key: short",
        ),
        (
            s(KeyringError::Unsupported("encrypt")),
            "unsupported: encrypt",
        ),
        (
            s(KeyringError::Crypto(CryptoError::InvalidKey)),
            "invalid key",
        ),
        (
            s(KeyringError::AllFailed(vec![])),
            "every keyring failed: ",
        ),
        (
            s(KeyringError::AllFailed(vec![
                KeyringError::NoMatchingKey,
                KeyringError::AccessDenied("x".into()),
            ])),
            "every keyring failed: [0] no encrypted data key matches this keyring; [1] access denied: x",
        ),
        // CryptoError
        (s(CryptoError::Verification), "verification failed"),
        (s(CryptoError::InvalidKey), "invalid key"),
        (
            s(CryptoError::Unsupported("RSA")),
            "RSA is not supported by this provider",
        ),
        (s(CryptoError::Failure), "primitive failed"),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

/// The `Display` texts of `e` and of each error down its `source()` chain.
fn chain(e: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(e) = next {
        out.push(e.to_string());
        next = e.source();
    }
    out
}

/// Every wrapping variant of [`Error`] exposes its inner error as `source()`, and the
/// sub-errors that wrap another chain on to it.
#[test]
fn source_chains() {
    let cases: Vec<(Error, &[&str])> = vec![
        (
            Error::Format(FormatError::Context(ContextError::EmptyKey)),
            &[
                "malformed message: encryption context: empty key",
                "encryption context: empty key",
                "empty key",
            ],
        ),
        (
            Error::Format(FormatError::Truncated),
            &[
                "malformed message: message is truncated",
                "message is truncated",
            ],
        ),
        (
            Error::Authentication(AuthenticationError::FrameTag { sequence: 2 }),
            &[
                "authentication failed: tag of frame 2 does not verify",
                "tag of frame 2 does not verify",
            ],
        ),
        (
            Error::Policy(PolicyError::UncommittedMessage),
            &[
                "refused by policy: message has no key commitment (version 1); the commitment policy forbids it",
                "message has no key commitment (version 1); the commitment policy forbids it",
            ],
        ),
        (
            Error::Keyring(KeyringError::Crypto(CryptoError::Verification)),
            &[
                "keyring: verification failed",
                "verification failed",
                "verification failed",
            ],
        ),
        (
            // Several children cannot all be one source: the chain stops here.
            Error::Keyring(KeyringError::AllFailed(vec![KeyringError::Crypto(
                CryptoError::Failure,
            )])),
            &[
                "keyring: every keyring failed: [0] primitive failed",
                "every keyring failed: [0] primitive failed",
            ],
        ),
        (
            Error::Crypto(CryptoError::Unsupported("RSA")),
            &[
                "crypto provider: RSA is not supported by this provider",
                "RSA is not supported by this provider",
            ],
        ),
        (
            Error::Config(ConfigError::Context(ContextError::TooLarge)),
            &[
                "invalid argument: encryption context: larger than 65,535 bytes",
                "encryption context: larger than 65,535 bytes",
                "larger than 65,535 bytes",
            ],
        ),
        (
            Error::Config(ConfigError::StreamFinished),
            &[
                "invalid argument: stream already finished or failed",
                "stream already finished or failed",
            ],
        ),
        (
            Error::Io(std::io::Error::other("disk full")),
            &["I/O: disk full", "disk full"],
        ),
        (Error::Internal("bug"), &["internal error: bug"]),
        (Error::Cancelled, &["cancelled"]),
    ];
    for (error, want) in cases {
        assert_eq!(chain(&error), *want, "{error:?}");
    }
}

/// The sources are the typed sub-errors, so callers can downcast them.
#[test]
fn sources_downcast() {
    let e = Error::Format(FormatError::Context(ContextError::EmptyKey));
    let format = e.source().and_then(|s| s.downcast_ref::<FormatError>());
    assert_eq!(format, Some(&FormatError::Context(ContextError::EmptyKey)));
    let context = format
        .and_then(|f| f.source())
        .and_then(|s| s.downcast_ref());
    assert_eq!(context, Some(&ContextError::EmptyKey));

    let e = Error::Keyring(KeyringError::Crypto(CryptoError::Failure));
    let crypto = e
        .source()
        .and_then(|s| s.downcast_ref::<KeyringError>())
        .and_then(|k| k.source())
        .and_then(|s| s.downcast_ref::<CryptoError>());
    assert_eq!(crypto, Some(&CryptoError::Failure));

    let e = Error::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
    let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(
        io.map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );
}

/// The `From` conversions (`?` in the crate relies on them) still pick the right variant,
/// and `kind()` still sees through them.
#[test]
fn conversions_and_kinds() {
    assert!(matches!(
        Error::from(FormatError::from(ContextError::EmptyKey)),
        Error::Format(FormatError::Context(ContextError::EmptyKey))
    ));
    assert!(matches!(
        KeyringError::from(CryptoError::Verification),
        KeyringError::Crypto(CryptoError::Verification)
    ));
    let kinds = [
        (Error::from(FormatError::Truncated), ErrorKind::Format),
        (
            Error::from(AuthenticationError::Commitment),
            ErrorKind::Authentication,
        ),
        (Error::from(PolicyError::SignedMessage), ErrorKind::Policy),
        (
            Error::from(KeyringError::Unavailable("x".into())),
            ErrorKind::KeyringUnavailable,
        ),
        (
            Error::from(KeyringError::Crypto(CryptoError::Verification)),
            ErrorKind::Authentication,
        ),
        (
            Error::from(CryptoError::Unsupported("RSA")),
            ErrorKind::Usage,
        ),
        (Error::from(CryptoError::Failure), ErrorKind::Internal),
        (Error::from(ConfigError::TooManyFrames), ErrorKind::Usage),
        (Error::from(std::io::Error::other("x")), ErrorKind::Io),
        (Error::Internal("x"), ErrorKind::Internal),
        (Error::Cancelled, ErrorKind::Cancelled),
    ];
    for (error, kind) in kinds {
        assert_eq!(error.kind(), kind, "{error:?}");
    }
}

/// Errors cross threads and can be boxed into `Box<dyn Error + Send + Sync>`.
#[test]
fn errors_are_send_sync_static() {
    fn check<T: StdError + Send + Sync + 'static>() {}
    check::<Error>();
    check::<FormatError>();
    check::<ContextError>();
    check::<AuthenticationError>();
    check::<PolicyError>();
    check::<ConfigError>();
    check::<KeyringError>();
    check::<CryptoError>();
    let boxed: Box<dyn StdError + Send + Sync> = Box::new(Error::Cancelled);
    assert_eq!(boxed.to_string(), "cancelled");
}
