//! Algorithm suites: the table of what each suite id means.

use crate::crypto::{AeadAlgorithm, HashAlgorithm, SignatureAlgorithm};

/// How the content key is derived from the data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kdf {
    /// The data key is the content key (legacy, version 1 only).
    Identity,
    /// HKDF with this hash, no salt, info = suite id || message id (version 1).
    Hkdf(HashAlgorithm),
    /// HKDF-SHA512 with the message id as salt, plus a key commitment (version 2).
    HkdfSha512Committing,
}

/// An AES-GCM algorithm suite of the AWS Encryption SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlgorithmSuite {
    /// `0x0014`: AES-128-GCM, data key used directly.
    Aes128GcmNoKdf,
    /// `0x0046`: AES-192-GCM, data key used directly.
    Aes192GcmNoKdf,
    /// `0x0078`: AES-256-GCM, data key used directly.
    Aes256GcmNoKdf,
    /// `0x0114`: AES-128-GCM, HKDF-SHA256.
    Aes128GcmHkdfSha256,
    /// `0x0146`: AES-192-GCM, HKDF-SHA256.
    Aes192GcmHkdfSha256,
    /// `0x0178`: AES-256-GCM, HKDF-SHA256.
    Aes256GcmHkdfSha256,
    /// `0x0214`: AES-128-GCM, HKDF-SHA256, ECDSA P-256.
    Aes128GcmHkdfSha256EcdsaP256,
    /// `0x0346`: AES-192-GCM, HKDF-SHA384, ECDSA P-384.
    Aes192GcmHkdfSha384EcdsaP384,
    /// `0x0378`: AES-256-GCM, HKDF-SHA384, ECDSA P-384.
    Aes256GcmHkdfSha384EcdsaP384,
    /// `0x0478`: AES-256-GCM, HKDF-SHA512, key commitment.
    Aes256GcmHkdfSha512Commit,
    /// `0x0578`: AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384 (the default).
    Aes256GcmHkdfSha512CommitEcdsaP384,
}

impl AlgorithmSuite {
    /// Every suite, in id order.
    pub const ALL: [Self; 11] = [
        Self::Aes128GcmNoKdf,
        Self::Aes192GcmNoKdf,
        Self::Aes256GcmNoKdf,
        Self::Aes128GcmHkdfSha256,
        Self::Aes192GcmHkdfSha256,
        Self::Aes256GcmHkdfSha256,
        Self::Aes128GcmHkdfSha256EcdsaP256,
        Self::Aes192GcmHkdfSha384EcdsaP384,
        Self::Aes256GcmHkdfSha384EcdsaP384,
        Self::Aes256GcmHkdfSha512Commit,
        Self::Aes256GcmHkdfSha512CommitEcdsaP384,
    ];

    /// The two-byte id on the wire.
    pub const fn id(self) -> u16 {
        match self {
            Self::Aes128GcmNoKdf => 0x0014,
            Self::Aes192GcmNoKdf => 0x0046,
            Self::Aes256GcmNoKdf => 0x0078,
            Self::Aes128GcmHkdfSha256 => 0x0114,
            Self::Aes192GcmHkdfSha256 => 0x0146,
            Self::Aes256GcmHkdfSha256 => 0x0178,
            Self::Aes128GcmHkdfSha256EcdsaP256 => 0x0214,
            Self::Aes192GcmHkdfSha384EcdsaP384 => 0x0346,
            Self::Aes256GcmHkdfSha384EcdsaP384 => 0x0378,
            Self::Aes256GcmHkdfSha512Commit => 0x0478,
            Self::Aes256GcmHkdfSha512CommitEcdsaP384 => 0x0578,
        }
    }

    /// The suite with this id, if known.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The name the official SDKs use.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128GcmNoKdf => "AES_128_GCM_IV12_TAG16_NO_KDF",
            Self::Aes192GcmNoKdf => "AES_192_GCM_IV12_TAG16_NO_KDF",
            Self::Aes256GcmNoKdf => "AES_256_GCM_IV12_TAG16_NO_KDF",
            Self::Aes128GcmHkdfSha256 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256",
            Self::Aes192GcmHkdfSha256 => "AES_192_GCM_IV12_TAG16_HKDF_SHA256",
            Self::Aes256GcmHkdfSha256 => "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
            Self::Aes128GcmHkdfSha256EcdsaP256 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256",
            Self::Aes192GcmHkdfSha384EcdsaP384 => "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
            Self::Aes256GcmHkdfSha384EcdsaP384 => "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
            Self::Aes256GcmHkdfSha512Commit => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            Self::Aes256GcmHkdfSha512CommitEcdsaP384 => {
                "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
            }
        }
    }

    /// The AEAD used for the body (and its key length, which is also the data key length).
    pub const fn aead(self) -> AeadAlgorithm {
        match self {
            Self::Aes128GcmNoKdf
            | Self::Aes128GcmHkdfSha256
            | Self::Aes128GcmHkdfSha256EcdsaP256 => AeadAlgorithm::Aes128Gcm,
            Self::Aes192GcmNoKdf
            | Self::Aes192GcmHkdfSha256
            | Self::Aes192GcmHkdfSha384EcdsaP384 => AeadAlgorithm::Aes192Gcm,
            _ => AeadAlgorithm::Aes256Gcm,
        }
    }

    /// Data key length in bytes.
    pub const fn data_key_len(self) -> usize {
        self.aead().key_len()
    }

    /// How the content key is derived.
    pub const fn kdf(self) -> Kdf {
        match self {
            Self::Aes128GcmNoKdf | Self::Aes192GcmNoKdf | Self::Aes256GcmNoKdf => Kdf::Identity,
            Self::Aes128GcmHkdfSha256
            | Self::Aes192GcmHkdfSha256
            | Self::Aes256GcmHkdfSha256
            | Self::Aes128GcmHkdfSha256EcdsaP256 => Kdf::Hkdf(HashAlgorithm::Sha256),
            Self::Aes192GcmHkdfSha384EcdsaP384 | Self::Aes256GcmHkdfSha384EcdsaP384 => {
                Kdf::Hkdf(HashAlgorithm::Sha384)
            }
            Self::Aes256GcmHkdfSha512Commit | Self::Aes256GcmHkdfSha512CommitEcdsaP384 => {
                Kdf::HkdfSha512Committing
            }
        }
    }

    /// The footer signature algorithm, for signed suites.
    pub const fn signature(self) -> Option<SignatureAlgorithm> {
        match self {
            Self::Aes128GcmHkdfSha256EcdsaP256 => Some(SignatureAlgorithm::EcdsaP256Sha256),
            Self::Aes192GcmHkdfSha384EcdsaP384
            | Self::Aes256GcmHkdfSha384EcdsaP384
            | Self::Aes256GcmHkdfSha512CommitEcdsaP384 => Some(SignatureAlgorithm::EcdsaP384Sha384),
            _ => None,
        }
    }

    /// True for the key-committing suites (message format version 2).
    pub const fn is_committing(self) -> bool {
        matches!(self.kdf(), Kdf::HkdfSha512Committing)
    }

    /// Message format version this suite is written in (1 or 2).
    pub const fn message_version(self) -> u8 {
        if self.is_committing() {
            2
        } else {
            1
        }
    }
}

impl core::fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#06x} {}", self.id(), self.name())
    }
}
