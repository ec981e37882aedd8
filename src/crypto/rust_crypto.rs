//! The RustCrypto backend: pure Rust, no FIPS validation, no RSA.
//!
//! AES-GCM from `aes-gcm`, HKDF from `hkdf` over `sha2`, ECDSA from `p256`/`p384` (with
//! `ecdsa`'s DER signatures) and random bytes from the operating system through `getrandom`.
//!
//! ```
//! let provider = envcrypt::crypto::provider_by_name("rust-crypto").unwrap();
//! assert!(!provider.fips());
//! ```

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use getrandom::SysRng;
use p256::elliptic_curve::Generate;
use sha2::{Digest, Sha256, Sha384, Sha512};
use zeroize::Zeroize;

use super::{
    AeadAlgorithm, CryptoError, CryptoProvider, HashAlgorithm, SignatureAlgorithm, NONCE_LEN,
    TAG_LEN,
};

/// RustCrypto (pure Rust). Not FIPS-validated.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: "rust-crypto",
    aead: &Aead,
    hkdf: &Hkdf,
    signature: &Signature,
    random: &Random,
    rsa: &super::NoRsa,
    digest: &Digests,
};

type Aes192Gcm = AesGcm<Aes192, U12>;

struct Aead;

impl super::Aead for Aead {
    fn key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn super::AeadKey>, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKey);
        }
        // The AES key schedules and the GHASH key are zeroized on drop (`zeroize` feature).
        let cipher = match alg {
            AeadAlgorithm::Aes128Gcm => {
                Cipher::Aes128(Aes128Gcm::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?)
            }
            AeadAlgorithm::Aes192Gcm => {
                Cipher::Aes192(Aes192Gcm::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?)
            }
            AeadAlgorithm::Aes256Gcm => {
                Cipher::Aes256(Aes256Gcm::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?)
            }
        };
        Ok(Box::new(AeadKey(cipher)))
    }

    fn fips(&self) -> bool {
        false
    }

    fn module(&self) -> &'static str {
        "rust-crypto"
    }
}

enum Cipher {
    Aes128(Aes128Gcm),
    Aes192(Aes192Gcm),
    Aes256(Aes256Gcm),
}

struct AeadKey(Cipher);

impl AeadKey {
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let nonce = nonce.into();
        let tag = match &self.0 {
            Cipher::Aes128(c) => c.encrypt_inout_detached(nonce, aad, in_out.into()),
            Cipher::Aes192(c) => c.encrypt_inout_detached(nonce, aad, in_out.into()),
            Cipher::Aes256(c) => c.encrypt_inout_detached(nonce, aad, in_out.into()),
        }
        .map_err(|_| CryptoError::Failure)?;
        Ok(tag.into())
    }
}

impl super::AeadKey for AeadKey {
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        self.seal(nonce, aad, in_out)
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        let ct_len = ciphertext_and_tag
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::Verification)?;
        let (ciphertext, tag) = ciphertext_and_tag.split_at_mut(ct_len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().map_err(|_| CryptoError::Failure)?;
        let nonce = nonce.into();
        let tag = tag.into();
        // The tag is checked (in constant time) before anything is decrypted.
        match &self.0 {
            Cipher::Aes128(c) => c.decrypt_inout_detached(nonce, aad, ciphertext.into(), tag),
            Cipher::Aes192(c) => c.decrypt_inout_detached(nonce, aad, ciphertext.into(), tag),
            Cipher::Aes256(c) => c.decrypt_inout_detached(nonce, aad, ciphertext.into(), tag),
        }
        .map_err(|_| CryptoError::Verification)
    }

    fn seal_to(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let buf = InOutBuf::new(plaintext, out).map_err(|_| CryptoError::Failure)?;
        let nonce = nonce.into();
        let tag = match &self.0 {
            Cipher::Aes128(c) => c.encrypt_inout_detached(nonce, aad, buf),
            Cipher::Aes192(c) => c.encrypt_inout_detached(nonce, aad, buf),
            Cipher::Aes256(c) => c.encrypt_inout_detached(nonce, aad, buf),
        }
        .map_err(|_| CryptoError::Failure)?;
        Ok(tag.into())
    }

    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| CryptoError::Verification)?;
        let nonce = nonce.into();
        let tag = tag.into();
        match &self.0 {
            Cipher::Aes128(c) => c.decrypt_inout_detached(nonce, aad, buf, tag),
            Cipher::Aes192(c) => c.decrypt_inout_detached(nonce, aad, buf, tag),
            Cipher::Aes256(c) => c.decrypt_inout_detached(nonce, aad, buf, tag),
        }
        .map_err(|_| CryptoError::Verification)
    }

    fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Failure)?;
        let tag = self.seal(&nonce, aad, in_out)?;
        Ok((nonce, tag))
    }
}

struct Hkdf;

fn hkdf<H: hkdf::hmac::EagerHash>(
    salt: &[u8],
    ikm: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    // An empty salt is the same HMAC key as the RFC's default of HashLen zero bytes.
    let (mut prk, expander) = hkdf::Hkdf::<H>::extract(Some(salt), ikm);
    prk.as_mut_slice().zeroize();
    // The HMAC states holding the PRK are zeroized on drop (`sha2`'s `zeroize` feature);
    // an output longer than 255 hash lengths is an error.
    expander.expand(info, out).map_err(|_| CryptoError::Failure)
}

impl super::Hkdf for Hkdf {
    fn extract_and_expand(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        match hash {
            HashAlgorithm::Sha256 => hkdf::<Sha256>(salt, ikm, info, out),
            HashAlgorithm::Sha384 => hkdf::<Sha384>(salt, ikm, info, out),
            HashAlgorithm::Sha512 => hkdf::<Sha512>(salt, ikm, info, out),
        }
    }

    fn fips(&self) -> bool {
        false
    }

    fn module(&self) -> &'static str {
        "rust-crypto"
    }
}

struct Signature;

impl super::Signature for Signature {
    fn generate_signer(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::Signer>, CryptoError> {
        let signer = match alg {
            SignatureAlgorithm::EcdsaP256Sha256 => Signer::P256 {
                key: p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(|_| CryptoError::Failure)?,
                hash: Sha256::new(),
            },
            SignatureAlgorithm::EcdsaP384Sha384 => Signer::P384 {
                key: p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(|_| CryptoError::Failure)?,
                hash: Sha384::new(),
            },
        };
        Ok(Box::new(signer))
    }

    fn verifier(
        &self,
        alg: SignatureAlgorithm,
        public_key: &[u8],
    ) -> Result<Box<dyn super::Verifier>, CryptoError> {
        // SEC1 compressed (0x02/0x03) or uncompressed (0x04) points; the point must be on the
        // curve and not the identity.
        let verifier = match alg {
            SignatureAlgorithm::EcdsaP256Sha256 => Verifier::P256 {
                key: p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| CryptoError::InvalidKey)?,
                hash: Sha256::new(),
            },
            SignatureAlgorithm::EcdsaP384Sha384 => Verifier::P384 {
                key: p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| CryptoError::InvalidKey)?,
                hash: Sha384::new(),
            },
        };
        Ok(Box::new(verifier))
    }

    fn fips(&self) -> bool {
        false
    }

    fn module(&self) -> &'static str {
        "rust-crypto"
    }

    fn signing_key(
        &self,
        alg: SignatureAlgorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn super::SigningKey>, CryptoError> {
        use p384::pkcs8::DecodePrivateKey;
        match alg {
            SignatureAlgorithm::EcdsaP384Sha384 => Ok(Box::new(SigningKeyP384(
                p384::ecdsa::SigningKey::from_pkcs8_der(pkcs8_der)
                    .map_err(|_| CryptoError::InvalidKey)?,
            ))),
            SignatureAlgorithm::EcdsaP256Sha256 => {
                Err(CryptoError::Unsupported("long-term ECDSA P-256 keys"))
            }
        }
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::SigningKey>, CryptoError> {
        match alg {
            SignatureAlgorithm::EcdsaP384Sha384 => Ok(Box::new(SigningKeyP384(
                p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                    .map_err(|_| CryptoError::Failure)?,
            ))),
            SignatureAlgorithm::EcdsaP256Sha256 => {
                Err(CryptoError::Unsupported("long-term ECDSA P-256 keys"))
            }
        }
    }
}

/// A long-term P-384 key; its scalar is zeroized on drop. Signs deterministically
/// (RFC 6979).
struct SigningKeyP384(p384::ecdsa::SigningKey);

impl super::SigningKey for SigningKeyP384 {
    fn public_key(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self
            .0
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use ecdsa::signature::Signer as _;
        let sig: p384::ecdsa::Signature =
            self.0.try_sign(message).map_err(|_| CryptoError::Failure)?;
        Ok(sig.to_der().as_bytes().to_vec())
    }

    fn to_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        use p384::pkcs8::EncodePrivateKey;
        let doc = self.0.to_pkcs8_der().map_err(|_| CryptoError::Failure)?;
        Ok(zeroize::Zeroizing::new(doc.as_bytes().to_vec()))
    }
}

/// The private scalar inside `SigningKey` is zeroized on drop.
enum Signer {
    P256 {
        key: p256::ecdsa::SigningKey,
        hash: Sha256,
    },
    P384 {
        key: p384::ecdsa::SigningKey,
        hash: Sha384,
    },
}

impl super::Signer for Signer {
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(match self {
            Self::P256 { key, .. } => key.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            Self::P384 { key, .. } => key.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::P256 { hash, .. } => hash.update(data),
            Self::P384 { hash, .. } => hash.update(data),
        }
    }

    fn fork(&self) -> Result<Box<dyn super::Signer>, CryptoError> {
        Ok(Box::new(match self {
            Self::P256 { key, .. } => Self::P256 {
                key: key.clone(),
                hash: Sha256::new(),
            },
            Self::P384 { key, .. } => Self::P384 {
                key: key.clone(),
                hash: Sha384::new(),
            },
        }))
    }

    fn sign(self: Box<Self>) -> Result<Vec<u8>, CryptoError> {
        // Hedged signing: RFC 6979 nonces with fresh OS randomness mixed in.
        match *self {
            Self::P256 { key, hash } => {
                let sig: p256::ecdsa::DerSignature = key
                    .sign_prehash_with_rng(&mut SysRng, &hash.finalize())
                    .map_err(|_| CryptoError::Failure)?;
                Ok(sig.as_bytes().to_vec())
            }
            Self::P384 { key, hash } => {
                let sig: p384::ecdsa::DerSignature = key
                    .sign_prehash_with_rng(&mut SysRng, &hash.finalize())
                    .map_err(|_| CryptoError::Failure)?;
                Ok(sig.as_bytes().to_vec())
            }
        }
    }
}

enum Verifier {
    P256 {
        key: p256::ecdsa::VerifyingKey,
        hash: Sha256,
    },
    P384 {
        key: p384::ecdsa::VerifyingKey,
        hash: Sha384,
    },
}

impl super::Verifier for Verifier {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::P256 { hash, .. } => hash.update(data),
            Self::P384 { hash, .. } => hash.update(data),
        }
    }

    fn verify(self: Box<Self>, signature: &[u8]) -> Result<(), CryptoError> {
        // Strict DER: `ecdsa::der::Signature` rejects BER encodings and trailing bytes.
        match *self {
            Self::P256 { key, hash } => {
                let sig = p256::ecdsa::DerSignature::from_bytes(signature)
                    .map_err(|_| CryptoError::Verification)?;
                key.verify_prehash(&hash.finalize(), &sig)
            }
            Self::P384 { key, hash } => {
                let sig = p384::ecdsa::DerSignature::from_bytes(signature)
                    .map_err(|_| CryptoError::Verification)?;
                key.verify_prehash(&hash.finalize(), &sig)
            }
        }
        .map_err(|_| CryptoError::Verification)
    }
}

struct Random;

impl super::SecureRandom for Random {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(out).map_err(|_| CryptoError::Failure)
    }

    fn fips(&self) -> bool {
        false
    }

    fn module(&self) -> &'static str {
        "rust-crypto"
    }
}

struct Digests;

impl super::Digest for Digests {
    fn start(&self, alg: HashAlgorithm) -> Box<dyn super::HashContext> {
        match alg {
            HashAlgorithm::Sha256 => Box::new(Sha256::new()),
            HashAlgorithm::Sha384 => Box::new(Sha384::new()),
            HashAlgorithm::Sha512 => Box::new(Sha512::new()),
        }
    }

    fn fips(&self) -> bool {
        false
    }

    fn module(&self) -> &'static str {
        "rust-crypto"
    }
}

impl<D: Digest + Send + 'static> super::HashContext for D {
    fn update(&mut self, data: &[u8]) {
        <D as Digest>::update(self, data);
    }

    fn finish(self: Box<Self>) -> Vec<u8> {
        self.finalize().to_vec()
    }
}
