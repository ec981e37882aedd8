//! [`SpecError`] and [`SpecWarning`]: what can go wrong with a keyring spec, and what is
//! worth telling its caller although the keyring was built.
//!
//! Neither ever shows a spec past its type and the fields that name a key (a PKCS#11 URI may
//! hold a PIN), nor any key byte.

use std::path::PathBuf;

use crate::error::ErrorKind;
use crate::keyring::KeyringError;

/// Why a keyring spec could not be parsed or its keyring built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No `TYPE:` prefix.
    #[error(
        "keyring spec without a type (expected one of {}, e.g. raw-aes:NAMESPACE:NAME:PATH)",
        super::KINDS.join(", ")
    )]
    MissingType,
    /// A type that is not one of [`KINDS`](super::KINDS) (at most 32 characters of it).
    #[error("unknown keyring type {0:?} (expected one of {kinds})", kinds = super::KINDS.join(", "))]
    UnknownType(String),
    /// A type this build does not offer (its cargo feature is off).
    #[error("keyring type {0} is not yet supported in this build")]
    NotInBuild(&'static str),
    /// The spec does not have the form of its type.
    #[error("{kind} keyring spec must be {form}")]
    Malformed {
        /// The spec's type.
        kind: &'static str,
        /// The expected form, with what was wrong when it helps.
        form: &'static str,
    },
    /// A `raw-rsa` padding name that is not one of the spec's.
    #[error(
        "keyring raw-rsa:{key}: unknown padding {padding:?} (expected one of pkcs1, oaep-sha1, \
         oaep-sha256, oaep-sha384, oaep-sha512)"
    )]
    UnknownPadding {
        /// `NAMESPACE:NAME` of the spec.
        key: String,
        /// The padding given (at most 32 characters).
        padding: String,
    },
    /// A `?name=value` option the type does not take, or one given twice or empty (only its
    /// name is shown, at most 32 characters).
    #[error(
        "{kind} keyring spec: unknown, repeated or empty option {option:?} (expected {expected})"
    )]
    BadOption {
        /// The spec's type.
        kind: &'static str,
        /// The option's name.
        option: String,
        /// The options the type takes.
        expected: &'static str,
    },
    /// An option value outside its grammar (the value is not shown).
    #[error("{kind} keyring spec: option {option} must be {form}")]
    BadOptionValue {
        /// The spec's type.
        kind: &'static str,
        /// The option's name.
        option: &'static str,
        /// What the value may be.
        form: &'static str,
    },
    /// The type only decrypts (discovery) and was asked to encrypt.
    #[error("keyring type {0} can only decrypt; give a key to encrypt with")]
    DecryptOnly(&'static str),
    /// A public RSA key was given to decrypt.
    #[error(
        "keyring raw-rsa:{key}: key file {} holds a public key; decrypting needs the private \
         key (the PREFIX.pem of keygen rsa)", path.display()
    )]
    PublicKeyOnly {
        /// `NAMESPACE:NAME` of the spec.
        key: String,
        /// The key file.
        path: PathBuf,
    },
    /// A key or PIN file could not be used.
    #[error("{what} {}: {problem}", path.display())]
    File {
        /// `key file` or `PKCS#11 PIN file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
    /// The keyring refused its configuration or could not reach its key (KMS client, HSM
    /// login, a key of the wrong size).
    #[error("keyring {what}: {source}")]
    Keyring {
        /// The spec's type and the fields naming its key.
        what: String,
        /// The keyring's error.
        source: KeyringError,
    },
}

/// What is wrong with a key or PIN file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// Opening or reading it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file (a directory, FIFO, device, ...).
    #[error("not a regular file")]
    NotRegularFile,
    /// Larger than its limit.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    /// Group or others may write it.
    #[error("writable by group or others (mode {0:03o}); refusing it (chmod 600)")]
    WritableByOthers(u32),
    /// A raw AES key file without 16, 24 or 32 bytes (raw or base64 on one line).
    #[error("expected 16, 24 or 32 raw bytes, or their base64 on one line")]
    NotAnAesKey,
    /// A PEM key file that is not text.
    #[error("not a PEM file (not text)")]
    NotText,
}

impl SpecError {
    /// The stable category: [`ErrorKind::Io`] for an unreadable file,
    /// [`ErrorKind::KeyringUnavailable`] / [`ErrorKind::KeyringRefused`] when a key service
    /// or HSM could not be reached or refused, else [`ErrorKind::Usage`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::File {
                problem: FileProblem::Io(_),
                ..
            } => ErrorKind::Io,
            Self::Keyring { source, .. } if source.is_unavailable() => source.kind(),
            _ => ErrorKind::Usage,
        }
    }
}

/// Something the caller should tell its user although the keyring was built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecWarning {
    /// A secret file that group or others can read.
    #[error("{what} {} is readable by group or others (mode {mode:03o}); chmod 600 {}", path.display(), path.display())]
    ReadableByOthers {
        /// `key file` or `PKCS#11 PIN file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A PKCS#11 PIN given in the URI (`pin-value`): on a command line, other users see it.
    #[error(
        "keyring pkcs11: a PIN in pin-value is visible to other users of this machine (ps, \
         /proc); use pin-source=FILE or ENVCRYPT_PKCS11_PIN"
    )]
    PinInSpec,
}
