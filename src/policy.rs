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
#[non_exhaustive]
pub enum SignaturePolicy {
    /// Signed and unsigned messages.
    #[default]
    AllowSigned,
    /// Unsigned messages only (the signature check costs a full SHA-384 pass).
    UnsignedOnly,
}

/// When a streaming decrypt may release the plaintext of a **signed** message.
///
/// Every frame carries its own GCM tag, but the tag only proves that someone holding the
/// data key sealed it, and every authorised decryptor can unwrap the data key. Only the
/// footer signature proves the message came from the encryptor; it covers every byte, so it
/// can be checked only at the end. Unsigned messages have no such signature: their frames
/// are released as each tag verifies, whatever this policy says.
///
/// | adapter | [`Verified`](Self::Verified) (default) | [`UnverifiedStream`](Self::UnverifiedStream) |
/// |---|---|---|
/// | `Client::decrypt`, `decrypt_into`, `decrypt_parallel` | nothing until the signature verified | same |
/// | `Client::decrypt_file` | the output appears only after the signature verified | same |
/// | `Client::decrypt_stream`, `decrypt_async_reader` | plaintext is held in an unnamed temporary file (mode 0600, `O_TMPFILE` on Linux, in `TMPDIR`) and copied to the output only after the signature verified; nothing reaches the output on failure | each frame as its tag verifies; the last only after the signature |
/// | `Client::decrypt_reader` | the first read decrypts the whole message into an unnamed temporary file and verifies it; reads then come from that file | each frame as its tag verifies; the last only after the signature |
///
/// In every mode the final frame's plaintext is released only after the signature verified
/// and the input ended right after the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReleasePolicy {
    /// No plaintext of a signed message leaves the adapter before its signature verified.
    #[default]
    Verified,
    /// **Dangerous.** Release each frame of a signed message as soon as its tag verifies,
    /// before the signature: anyone who can unwrap the data key (any authorised decryptor)
    /// can forge such frames, and a consumer that acts on them (`| tar x`) acts on a
    /// forgery before the error arrives. For callers that discard the output on any error.
    UnverifiedStream,
}
