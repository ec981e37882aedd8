//! Why a keyring could not wrap or unwrap (re-exported as [`crate::keyring::KeyringError`]).

use core::fmt;

use super::{crypto_kind, ErrorKind};
use crate::crypto::CryptoError;

/// Why a keyring could not wrap or unwrap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// None of the EDKs belong to this keyring ("not mine").
    #[error("no encrypted data key matches this keyring")]
    NoMatchingKey,
    /// EDKs of this keyring's type were there, but its filter excluded every one ("not
    /// mine", with one reason per EDK), e.g. a KMS discovery filter naming other accounts.
    #[error("no encrypted data key passed this keyring's filter: {}", .0.join("; "))]
    Excluded(Vec<String>),
    /// An EDK of this keyring did not unwrap: wrong key bytes or wrong encryption context.
    #[error(
        "could not unwrap the data key of {provider_id}/{key_name} \
         (wrong key, padding or encryption context)"
    )]
    UnwrapFailed {
        /// Provider id of the EDK.
        provider_id: String,
        /// Key name (provider info) of the EDK, lossily decoded.
        key_name: String,
    },
    /// The key service could not be reached.
    #[error("key service unavailable: {0}")]
    Unavailable(String),
    /// The key service refused the request.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The keyring's configuration or key is invalid.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The keyring cannot do this (e.g. encrypt with a public-only key absent).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A primitive failed.
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// The call could not be recorded in the audit trail, which fails closed: the data
    /// key was not released.
    #[error("not recorded in the audit trail, so refused: {0}")]
    AuditFailed(String),
    /// Every child of a multi-keyring failed; one entry per child, in order.
    #[error("every keyring failed: {}", numbered(.0))]
    AllFailed(Vec<KeyringError>),
}

impl KeyringError {
    /// The stable category ([`crate::Error::kind`]): a key that does not open the message
    /// is [`ErrorKind::Authentication`]; a configuration mistake [`ErrorKind::Usage`]; a
    /// multi-keyring's failure is unavailable or refused only if every child's was.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoMatchingKey | Self::Excluded(_) | Self::UnwrapFailed { .. } => {
                ErrorKind::Authentication
            }
            Self::Unavailable(_) => ErrorKind::KeyringUnavailable,
            Self::AccessDenied(_) => ErrorKind::KeyringRefused,
            Self::InvalidKey(_) | Self::Unsupported(_) => ErrorKind::Usage,
            Self::AuditFailed(_) => ErrorKind::Io,
            Self::Crypto(e) => crypto_kind(e),
            Self::AllFailed(all) => {
                let kinds: Vec<ErrorKind> = all.iter().map(Self::kind).collect();
                let service = |k: &ErrorKind| {
                    matches!(k, ErrorKind::KeyringUnavailable | ErrorKind::KeyringRefused)
                };
                if kinds.is_empty() {
                    ErrorKind::Authentication
                } else if kinds.iter().all(service) {
                    match kinds.contains(&ErrorKind::KeyringRefused) {
                        true => ErrorKind::KeyringRefused,
                        false => ErrorKind::KeyringUnavailable,
                    }
                } else if kinds.iter().all(|k| *k == ErrorKind::Usage) {
                    ErrorKind::Usage
                } else {
                    ErrorKind::Authentication
                }
            }
        }
    }

    /// True when the failure is about reaching a key service, not about the data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::AccessDenied(_) => true,
            Self::AllFailed(v) => !v.is_empty() && v.iter().all(Self::is_unavailable),
            _ => false,
        }
    }
}

/// The children's failures as `[0] ...; [1] ...`.
fn numbered(all: &[KeyringError]) -> impl fmt::Display + '_ {
    struct Numbered<'a>(&'a [KeyringError]);
    impl fmt::Display for Numbered<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, e) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str("; ")?;
                }
                write!(f, "[{i}] {e}")?;
            }
            Ok(())
        }
    }
    Numbered(all)
}
