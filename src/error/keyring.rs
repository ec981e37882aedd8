//! Why a keyring could not wrap or unwrap (re-exported as [`crate::keyring::KeyringError`]).

use core::fmt;

use super::{crypto_kind, ErrorKind};
use crate::crypto::CryptoError;

/// Why a keyring could not wrap or unwrap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// None of the EDKs belong to this keyring ("not mine").
    NoMatchingKey,
    /// EDKs of this keyring's type were there, but its filter excluded every one ("not
    /// mine", with one reason per EDK), e.g. a KMS discovery filter naming other accounts.
    Excluded(Vec<String>),
    /// An EDK of this keyring did not unwrap: wrong key bytes or wrong encryption context.
    UnwrapFailed {
        /// Provider id of the EDK.
        provider_id: String,
        /// Key name (provider info) of the EDK, lossily decoded.
        key_name: String,
    },
    /// The key service could not be reached.
    Unavailable(String),
    /// The key service refused the request.
    AccessDenied(String),
    /// The keyring's configuration or key is invalid.
    InvalidKey(String),
    /// The keyring cannot do this (e.g. encrypt with a public-only key absent).
    Unsupported(&'static str),
    /// A primitive failed.
    Crypto(CryptoError),
    /// Every child of a multi-keyring failed; one entry per child, in order.
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

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMatchingKey => f.write_str("no encrypted data key matches this keyring"),
            Self::Excluded(why) => write!(
                f,
                "no encrypted data key passed this keyring's filter: {}",
                why.join("; ")
            ),
            Self::UnwrapFailed {
                provider_id,
                key_name,
            } => write!(
                f,
                "could not unwrap the data key of {provider_id}/{key_name} (wrong key, padding or encryption context)"
            ),
            Self::Unavailable(w) => write!(f, "key service unavailable: {w}"),
            Self::AccessDenied(w) => write!(f, "access denied: {w}"),
            Self::InvalidKey(w) => write!(f, "invalid key: {w}"),
            Self::Unsupported(w) => write!(f, "unsupported: {w}"),
            Self::Crypto(e) => write!(f, "{e}"),
            Self::AllFailed(all) => {
                f.write_str("every keyring failed: ")?;
                for (i, e) in all.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "[{i}] {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for KeyringError {}

impl From<CryptoError> for KeyringError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}
