//! The key schedule: content key and key commitment from the data key.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::{AeadAlgorithm, AeadKey, CryptoProvider, HashAlgorithm};
use crate::error::{AuthenticationError, Error, PolicyError};
use crate::format::{AlgorithmSuite, Kdf};

/// A key commitment (version 2 suites).
pub(crate) type Commitment = Zeroizing<[u8; 32]>;

/// The content key of one message, kept so that each worker can build its own key object.
pub(crate) struct ContentKey {
    provider: &'static CryptoProvider,
    alg: AeadAlgorithm,
    bytes: Zeroizing<[u8; 32]>,
}

impl ContentKey {
    /// A new key object (each thread, and each FIPS nonce sequence, needs its own).
    pub(crate) fn key_object(&self) -> Result<Box<dyn AeadKey>, Error> {
        Ok(self
            .provider
            .aead
            .key(self.alg, &self.bytes[..self.alg.key_len()])?)
    }
}

/// Derives the content key; for committing suites also returns the commitment.
pub(crate) fn derive(
    provider: &'static CryptoProvider,
    suite: AlgorithmSuite,
    data_key: &[u8],
    message_id: &[u8],
) -> Result<(ContentKey, Option<Commitment>), Error> {
    // Materials may come from any manager: a data key of the wrong length is refused here,
    // before any primitive sees it.
    if data_key.len() != suite.data_key_len() {
        return Err(
            PolicyError::InvalidMaterials("data key length differs from the suite's").into(),
        );
    }
    let alg = suite.aead();
    let mut bytes = Zeroizing::new([0u8; 32]);
    let content_key = &mut bytes[..alg.key_len()];
    let id = suite.id().to_be_bytes();
    let commitment = match suite.kdf() {
        Kdf::Identity => {
            content_key.copy_from_slice(data_key);
            None
        }
        Kdf::Hkdf(hash) => {
            // No salt means HashLen zero bytes (RFC 5869). As an HMAC key, any run of zero
            // bytes up to the block size is the same key, so 64 zero bytes give identical
            // output, and the FIPS module counts HKDF with a non-empty salt as approved.
            let salt = [0u8; 64];
            let mut info = Vec::with_capacity(2 + message_id.len());
            info.extend_from_slice(&id);
            info.extend_from_slice(message_id);
            provider
                .hkdf
                .extract_and_expand(hash, &salt, data_key, &info, content_key)?;
            None
        }
        Kdf::HkdfSha512Committing => {
            let mut info = [0u8; 2 + 9];
            info[..2].copy_from_slice(&id);
            info[2..].copy_from_slice(b"DERIVEKEY");
            let h = HashAlgorithm::Sha512;
            provider
                .hkdf
                .extract_and_expand(h, message_id, data_key, &info, content_key)?;
            let mut commitment = Zeroizing::new([0u8; 32]);
            provider.hkdf.extract_and_expand(
                h,
                message_id,
                data_key,
                b"COMMITKEY",
                &mut commitment[..],
            )?;
            Some(commitment)
        }
    };
    Ok((
        ContentKey {
            provider,
            alg,
            bytes,
        },
        commitment,
    ))
}

/// Compares the header's commitment with the derived one in constant time.
pub(crate) fn check_commitment(stored: &[u8; 32], derived: &[u8; 32]) -> Result<(), Error> {
    if bool::from(stored.ct_eq(derived)) {
        Ok(())
    } else {
        Err(AuthenticationError::Commitment.into())
    }
}
