//! The aws-lc-rs backend (default).

use aws_lc_rs::{aead, digest, hkdf, rand, signature};
use signature::{EcdsaKeyPair, KeyPair};

use super::{
    AeadAlgorithm, CryptoError, CryptoProvider, HashAlgorithm, SignatureAlgorithm, NONCE_LEN,
    TAG_LEN,
};

/// aws-lc-rs (AWS-LC), non-FIPS build.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "aws-lc-rs",
    aead: &Aead,
    hkdf: &Hkdf,
    signature: &Signature,
    random: &Random,
};

struct Aead;

impl super::Aead for Aead {
    fn key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn super::AeadKey>, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKey);
        }
        let algorithm = match alg {
            AeadAlgorithm::Aes128Gcm => &aead::AES_128_GCM,
            AeadAlgorithm::Aes192Gcm => &aead::AES_192_GCM,
            AeadAlgorithm::Aes256Gcm => &aead::AES_256_GCM,
        };
        let unbound =
            aead::UnboundKey::new(algorithm, key).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(AeadKey(aead::LessSafeKey::new(unbound))))
    }

    fn fips(&self) -> bool {
        false
    }
}

struct AeadKey(aead::LessSafeKey);

impl super::AeadKey for AeadKey {
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| CryptoError::Failure)?;
        tag.as_ref().try_into().map_err(|_| CryptoError::Failure)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.0
            .open_in_place(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                ciphertext_and_tag,
            )
            .map(|_| ())
            .map_err(|_| CryptoError::Verification)
    }

    fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| CryptoError::Failure)?;
        let tag = self
            .0
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| CryptoError::Failure)?;
        let tag = tag.as_ref().try_into().map_err(|_| CryptoError::Failure)?;
        Ok((nonce, tag))
    }
}

struct Hkdf;

impl super::Hkdf for Hkdf {
    fn extract_and_expand(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let alg = match hash {
            HashAlgorithm::Sha256 => hkdf::HKDF_SHA256,
            HashAlgorithm::Sha384 => hkdf::HKDF_SHA384,
            HashAlgorithm::Sha512 => hkdf::HKDF_SHA512,
        };
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let info = [info];
        hkdf::Salt::new(alg, salt)
            .extract(ikm)
            .expand(&info, Len(out.len()))
            .and_then(|okm| okm.fill(out))
            .map_err(|_| CryptoError::Failure)
    }

    fn fips(&self) -> bool {
        false
    }
}

struct Signature;

fn algorithms(
    alg: SignatureAlgorithm,
) -> (
    &'static signature::EcdsaSigningAlgorithm,
    &'static signature::EcdsaVerificationAlgorithm,
    &'static digest::Algorithm,
) {
    match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => (
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1,
            &digest::SHA256,
        ),
        SignatureAlgorithm::EcdsaP384Sha384 => (
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1,
            &digest::SHA384,
        ),
    }
}

impl super::Signature for Signature {
    fn generate_signer(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::Signer>, CryptoError> {
        let (signing, _, digest_alg) = algorithms(alg);
        let key = EcdsaKeyPair::generate(signing).map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(Signer {
            key,
            hash: digest::Context::new(digest_alg),
        }))
    }

    fn verifier(
        &self,
        alg: SignatureAlgorithm,
        public_key: &[u8],
    ) -> Result<Box<dyn super::Verifier>, CryptoError> {
        let (_, verification, digest_alg) = algorithms(alg);
        let key = signature::ParsedPublicKey::new(verification, public_key)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(Verifier {
            key,
            hash: digest::Context::new(digest_alg),
        }))
    }

    fn fips(&self) -> bool {
        false
    }
}

struct Signer {
    key: EcdsaKeyPair,
    hash: digest::Context,
}

impl super::Signer for Signer {
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
        let compressed: EcPublicKeyCompressedBin<'_> = self
            .key
            .public_key()
            .as_be_bytes()
            .map_err(|_| CryptoError::Failure)?;
        Ok(compressed.as_ref().to_vec())
    }

    fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
    }

    fn sign(self: Box<Self>) -> Result<Vec<u8>, CryptoError> {
        let digest = self.hash.finish();
        let sig = self
            .key
            .sign_digest(&digest)
            .map_err(|_| CryptoError::Failure)?;
        Ok(sig.as_ref().to_vec())
    }
}

struct Verifier {
    key: signature::ParsedPublicKey,
    hash: digest::Context,
}

impl super::Verifier for Verifier {
    fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
    }

    fn verify(self: Box<Self>, sig: &[u8]) -> Result<(), CryptoError> {
        let digest = self.hash.finish();
        self.key
            .verify_digest_sig(&digest, sig)
            .map_err(|_| CryptoError::Verification)
    }
}

struct Random;

impl super::SecureRandom for Random {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        rand::fill(out).map_err(|_| CryptoError::Failure)
    }

    fn fips(&self) -> bool {
        false
    }
}
