//! Policies a reader or writer applies to messages.

use crate::format::AlgorithmSuite;

/// Which messages may be written and read, by key commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CommitmentPolicy {
    /// Write and read key-committing (version 2) messages only. The default.
    #[default]
    RequireEncryptRequireDecrypt,
    /// Write committed messages; also read legacy version 1 messages.
    RequireEncryptAllowDecrypt,
}

impl CommitmentPolicy {
    /// True when a message of this suite may be read.
    pub fn allows_decrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            Self::RequireEncryptRequireDecrypt => suite.is_committing(),
            Self::RequireEncryptAllowDecrypt => true,
        }
    }
}

/// Whether signed suites are accepted on decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignaturePolicy {
    /// Signed and unsigned messages.
    #[default]
    AllowSigned,
    /// Unsigned messages only (the signature check costs a full SHA-384 pass).
    UnsignedOnly,
}
