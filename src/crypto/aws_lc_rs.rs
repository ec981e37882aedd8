//! The aws-lc-rs backend: AWS-LC, or its FIPS 140-3 module with feature `fips`.
//!
//! In the FIPS build every service on the encrypt and decrypt paths is one the module's
//! service indicator reports as approved: frames and the header tag are sealed with the TLS
//! 1.2 record key (nonces strictly increase per key object: 0 for the header, then the
//! sequence numbers), raw AES wrapping uses the randomized-nonce key, and ECDSA signing runs
//! through the module's streaming sign (`fips_sign`). AES-192 sealing is not offered there.

use aws_lc_rs::{aead, digest, hkdf, rand, rsa, signature};
use zeroize::Zeroizing;

use super::{
    AeadAlgorithm, CryptoError, CryptoProvider, HashAlgorithm, RsaPadding, SignatureAlgorithm,
    NONCE_LEN, TAG_LEN,
};

/// The provider's name, and the module name of its components.
#[cfg(not(feature = "fips"))]
const NAME: &str = "aws-lc-rs";
/// The provider's name, and the module name of its components.
#[cfg(feature = "fips")]
const NAME: &str = "aws-lc-rs-fips";

/// aws-lc-rs (AWS-LC), non-FIPS build.
#[cfg(not(feature = "fips"))]
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: NAME,
    aead: &Aead,
    hkdf: &Hkdf,
    signature: &Signature,
    random: &Random,
    rsa: &Rsa,
    digest: &Digest,
};

/// aws-lc-rs on the AWS-LC FIPS 140-3 module.
#[cfg(feature = "fips")]
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: NAME,
    aead: &Aead,
    hkdf: &Hkdf,
    signature: &Signature,
    random: &Random,
    rsa: &Rsa,
    digest: &Digest,
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
        let unbound = aead::UnboundKey::new(algorithm, key).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(AeadKey {
            open: aead::LessSafeKey::new(unbound),
            #[cfg(feature = "fips")]
            seal: aead::TlsRecordSealingKey::new(algorithm, aead::TlsProtocolId::TLS12, key).ok(),
            #[cfg(feature = "fips")]
            random: aead::RandomizedNonceKey::new(algorithm, key).ok(),
        }))
    }

    fn fips(&self) -> bool {
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

struct AeadKey {
    /// Opens (both builds) and seals (non-FIPS build).
    open: aead::LessSafeKey,
    /// FIPS sealing with caller nonces: the TLS 1.2 record key (AES-128/256 only).
    #[cfg(feature = "fips")]
    seal: Option<aead::TlsRecordSealingKey>,
    /// FIPS sealing with random nonces (AES-128/256 only).
    #[cfg(feature = "fips")]
    random: Option<aead::RandomizedNonceKey>,
}

impl super::AeadKey for AeadKey {
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        #[cfg(not(feature = "fips"))]
        let tag = self
            .open
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), in_out);
        #[cfg(feature = "fips")]
        let tag = self
            .seal
            .as_mut()
            .ok_or(CryptoError::Unsupported(
                "AES-192-GCM sealing in the FIPS module",
            ))?
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), in_out);
        let tag = tag.map_err(|_| CryptoError::Failure)?;
        tag.as_ref().try_into().map_err(|_| CryptoError::Failure)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.open
            .open_in_place(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                ciphertext_and_tag,
            )
            .map(|_| ())
            .map_err(|_| CryptoError::Verification)
    }

    fn seal_to(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let nonce = aead::Nonce::assume_unique_for_key(*nonce);
        let mut tag = [0u8; TAG_LEN];
        #[cfg(not(feature = "fips"))]
        let key = &self.open;
        #[cfg(feature = "fips")]
        let key = self.seal.as_mut().ok_or(CryptoError::Unsupported(
            "AES-192-GCM sealing in the FIPS module",
        ))?;
        key.seal_out_of_place_scatter(nonce, aead::Aad::from(aad), plaintext, out, &[], &mut tag)
            .map_err(|_| CryptoError::Failure)?;
        Ok(tag)
    }

    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.open
            .open_separate_gather(
                aead::Nonce::assume_unique_for_key(*nonce),
                aead::Aad::from(aad),
                ciphertext,
                tag,
                out,
            )
            .map_err(|_| CryptoError::Verification)
    }

    fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        #[cfg(not(feature = "fips"))]
        let (nonce, tag) = {
            let mut nonce = [0u8; NONCE_LEN];
            rand::fill(&mut nonce).map_err(|_| CryptoError::Failure)?;
            let tag = self
                .open
                .seal_in_place_separate_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(aad),
                    in_out,
                )
                .map_err(|_| CryptoError::Failure)?;
            (nonce, tag)
        };
        #[cfg(feature = "fips")]
        let (nonce, tag) = {
            let (nonce, tag) = self
                .random
                .as_ref()
                .ok_or(CryptoError::Unsupported(
                    "AES-192-GCM sealing in the FIPS module",
                ))?
                .seal_in_place_separate_tag(aead::Aad::from(aad), in_out)
                .map_err(|_| CryptoError::Failure)?;
            let nonce: [u8; NONCE_LEN] = *nonce.as_ref();
            (nonce, tag)
        };
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
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

struct Signature;

/// The aws-lc-rs signing, verification and digest algorithms of `alg` (shared with the
/// `aws-lc-rs+openssl` mix, which signs with these keys over OpenSSL's digest).
#[cfg_attr(feature = "fips", allow(dead_code))]
pub(super) fn algorithms(
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
        #[cfg(not(feature = "fips"))]
        {
            let (signing, _, digest_alg) = algorithms(alg);
            let key =
                signature::EcdsaKeyPair::generate(signing).map_err(|_| CryptoError::Failure)?;
            Ok(Box::new(Signer {
                key,
                signing_alg: signing,
                hash: digest::Context::new(digest_alg),
            }))
        }
        #[cfg(feature = "fips")]
        {
            Ok(Box::new(super::fips_sign::FipsSigner::generate(alg)?))
        }
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
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }

    fn signing_key(
        &self,
        alg: SignatureAlgorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn super::SigningKey>, CryptoError> {
        let (signing, _, _) = algorithms(alg);
        let key = signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8_der)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(SigningKey(key)))
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::SigningKey>, CryptoError> {
        let (signing, _, _) = algorithms(alg);
        let key = signature::EcdsaKeyPair::generate(signing).map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(SigningKey(key)))
    }
}

/// A long-term ECDSA key (AWS-LC frees and wipes it on drop). `EcdsaKeyPair::sign` hashes
/// and signs in one approved service, in the FIPS module too.
struct SigningKey(signature::EcdsaKeyPair);

impl super::SigningKey for SigningKey {
    fn public_key(&self) -> Result<Vec<u8>, CryptoError> {
        use signature::KeyPair;
        Ok(self.0.public_key().as_ref().to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .0
            .sign(&rand::SystemRandom::new(), message)
            .map_err(|_| CryptoError::Failure)?;
        Ok(sig.as_ref().to_vec())
    }

    fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let doc = self.0.to_pkcs8v1().map_err(|_| CryptoError::Failure)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }
}

#[cfg(not(feature = "fips"))]
struct Signer {
    key: signature::EcdsaKeyPair,
    signing_alg: &'static signature::EcdsaSigningAlgorithm,
    hash: digest::Context,
}

#[cfg(not(feature = "fips"))]
impl super::Signer for Signer {
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
        use signature::KeyPair;
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

    fn fork(&self) -> Result<Box<dyn super::Signer>, CryptoError> {
        let pkcs8 = self.key.to_pkcs8v1().map_err(|_| CryptoError::Failure)?;
        let key = signature::EcdsaKeyPair::from_pkcs8(self.signing_alg, pkcs8.as_ref())
            .map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(Signer {
            key,
            signing_alg: self.signing_alg,
            hash: digest::Context::new(self.hash.algorithm()),
        }))
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
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

/// True in a `fips` build whose module runs in FIPS mode.
fn fips_mode() -> bool {
    cfg!(feature = "fips") && aws_lc_rs::try_fips_mode().is_ok()
}

#[cfg(feature = "fips")]
impl super::Signer for super::fips_sign::FipsSigner {
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        super::fips_sign::FipsSigner::public_key_compressed(self)
    }

    fn update(&mut self, data: &[u8]) {
        super::fips_sign::FipsSigner::update(self, data);
    }

    fn sign(self: Box<Self>) -> Result<Vec<u8>, CryptoError> {
        super::fips_sign::FipsSigner::sign(*self)
    }

    fn fork(&self) -> Result<Box<dyn super::Signer>, CryptoError> {
        Ok(Box::new(super::fips_sign::FipsSigner::fork(self)?))
    }
}

struct Rsa;

impl super::Rsa for Rsa {
    fn public_key(&self, spki_der: &[u8]) -> Result<Box<dyn super::RsaPublicKey>, CryptoError> {
        let key =
            rsa::PublicEncryptingKey::from_der(spki_der).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(RsaPublicKey(key)))
    }

    fn private_key(&self, pkcs8_der: &[u8]) -> Result<Box<dyn super::RsaPrivateKey>, CryptoError> {
        let key = rsa::PrivateDecryptingKey::from_pkcs8(pkcs8_der)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(RsaPrivateKey(key)))
    }

    fn generate(&self, bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        let size = match bits {
            2048 => rsa::KeySize::Rsa2048,
            3072 => rsa::KeySize::Rsa3072,
            4096 => rsa::KeySize::Rsa4096,
            _ => {
                return Err(CryptoError::Unsupported(
                    "RSA key size other than 2048/3072/4096",
                ))
            }
        };
        // In the FIPS build this is the module's FIPS key generation (with pairwise check).
        let key = rsa::PrivateDecryptingKey::generate(size).map_err(|_| CryptoError::Failure)?;
        let private: Pkcs8V1Der<'_> = key.as_der().map_err(|_| CryptoError::Failure)?;
        let public: PublicKeyX509Der<'_> = key
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Failure)?;
        Ok((
            Zeroizing::new(private.as_ref().to_vec()),
            public.as_ref().to_vec(),
        ))
    }

    fn fips(&self) -> bool {
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

fn oaep(padding: RsaPadding) -> Option<&'static rsa::OaepAlgorithm> {
    match padding {
        RsaPadding::Pkcs1v15 => None,
        RsaPadding::OaepSha1 => Some(&rsa::OAEP_SHA1_MGF1SHA1),
        RsaPadding::OaepSha256 => Some(&rsa::OAEP_SHA256_MGF1SHA256),
        RsaPadding::OaepSha384 => Some(&rsa::OAEP_SHA384_MGF1SHA384),
        RsaPadding::OaepSha512 => Some(&rsa::OAEP_SHA512_MGF1SHA512),
    }
}

struct RsaPublicKey(rsa::PublicEncryptingKey);

impl super::RsaPublicKey for RsaPublicKey {
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; self.0.key_size_bytes()];
        let n = match oaep(padding) {
            Some(alg) => rsa::OaepPublicEncryptingKey::new(self.0.clone())
                .and_then(|k| k.encrypt(alg, plaintext, &mut out, None).map(|c| c.len())),
            None => rsa::Pkcs1PublicEncryptingKey::new(self.0.clone())
                .and_then(|k| k.encrypt(plaintext, &mut out).map(|c| c.len())),
        }
        .map_err(|_| CryptoError::Failure)?;
        out.truncate(n);
        Ok(out)
    }

    fn bits(&self) -> usize {
        self.0.key_size_bits()
    }
}

struct RsaPrivateKey(rsa::PrivateDecryptingKey);

impl super::RsaPrivateKey for RsaPrivateKey {
    fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut out = Zeroizing::new(vec![0u8; self.0.key_size_bytes()]);
        let n = match oaep(padding) {
            Some(alg) => rsa::OaepPrivateDecryptingKey::new(self.0.clone())
                .and_then(|k| k.decrypt(alg, ciphertext, &mut out, None).map(|p| p.len())),
            None => rsa::Pkcs1PrivateDecryptingKey::new(self.0.clone())
                .and_then(|k| k.decrypt(ciphertext, &mut out).map(|p| p.len())),
        }
        .map_err(|_| CryptoError::Verification)?;
        out.truncate(n);
        Ok(out)
    }

    fn public_key(&self) -> Result<Box<dyn super::RsaPublicKey>, CryptoError> {
        Ok(Box::new(RsaPublicKey(self.0.public_key())))
    }
}

struct Digest;

impl super::Digest for Digest {
    fn start(&self, alg: HashAlgorithm) -> Box<dyn super::HashContext> {
        Box::new(HashContext(digest::Context::new(match alg {
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        })))
    }

    fn fips(&self) -> bool {
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

struct HashContext(digest::Context);

impl super::HashContext for HashContext {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finish(self: Box<Self>) -> Vec<u8> {
        self.0.finish().as_ref().to_vec()
    }
}
