//! Providers assembled from components of others, where that is measured faster.
//!
//! `aws-lc-rs+openssl`: AWS-LC for AES-GCM, HKDF, random bytes, RSA and ECDSA keys and
//! signing; OpenSSL for the digests, including the signature's streaming SHA-384, which
//! bounds the signed suite 0578. The ECDSA keys stay AWS-LC's because OpenSSL 3.0 makes
//! and signs with a P-384 key several times slower (one key per message: it would make
//! small signed messages slower than either provider alone); AWS-LC signs the digest
//! OpenSSL computed.
//! OpenSSL 3's SHA-384 runs faster than AWS-LC's on this project's x86 machines, and a
//! signed message is bound by one serial SHA-384 over every byte (BENCHMARKS.md, "OpenSSL
//! provider"). A build with features `aws-lc-rs` and `openssl` (not `fips`) makes this mix
//! its default; it is never compiled into a `fips` build, and a provider chosen by name
//! (`aws-lc-rs`, `openssl`) uses its own module for everything.

use aws_lc_rs::{digest, signature};

use super::{CryptoError, CryptoProvider, SignatureAlgorithm};

/// aws-lc-rs with OpenSSL's digests (also under its signatures).
pub static AWS_LC_RS_OPENSSL: CryptoProvider = CryptoProvider {
    name: "aws-lc-rs+openssl",
    aead: super::aws_lc_rs::PROVIDER.aead,
    hkdf: super::aws_lc_rs::PROVIDER.hkdf,
    signature: &HybridSignature,
    random: super::aws_lc_rs::PROVIDER.random,
    rsa: super::aws_lc_rs::PROVIDER.rsa,
    digest: super::openssl::DIGEST,
};

/// The mix's name, as its hybrid component reports it.
const NAME: &str = "aws-lc-rs+openssl";

/// ECDSA with AWS-LC's keys over OpenSSL's streaming digest.
struct HybridSignature;

/// OpenSSL's running digest of `alg`'s hash.
fn hasher(alg: SignatureAlgorithm) -> Box<dyn super::HashContext> {
    let hash = match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => super::HashAlgorithm::Sha256,
        SignatureAlgorithm::EcdsaP384Sha384 => super::HashAlgorithm::Sha384,
    };
    super::openssl::DIGEST.start(hash)
}

impl super::Signature for HybridSignature {
    fn generate_signer(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::Signer>, CryptoError> {
        let (signing, _, _) = super::aws_lc_rs::algorithms(alg);
        let key = signature::EcdsaKeyPair::generate(signing).map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(Signer {
            alg,
            key,
            hash: hasher(alg),
        }))
    }

    fn verifier(
        &self,
        alg: SignatureAlgorithm,
        public_key: &[u8],
    ) -> Result<Box<dyn super::Verifier>, CryptoError> {
        let (_, verification, _) = super::aws_lc_rs::algorithms(alg);
        let key = signature::ParsedPublicKey::new(verification, public_key)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(Verifier {
            alg,
            key,
            hash: hasher(alg),
        }))
    }

    fn fips(&self) -> bool {
        false
    }

    fn module(&self) -> &'static str {
        NAME
    }

    fn signing_key(
        &self,
        alg: SignatureAlgorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn super::SigningKey>, CryptoError> {
        super::aws_lc_rs::PROVIDER
            .signature
            .signing_key(alg, pkcs8_der)
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::SigningKey>, CryptoError> {
        super::aws_lc_rs::PROVIDER
            .signature
            .generate_signing_key(alg)
    }
}

/// The digest OpenSSL computed, as AWS-LC takes it.
fn imported(alg: SignatureAlgorithm, bytes: &[u8]) -> Result<digest::Digest, CryptoError> {
    let (_, _, digest_alg) = super::aws_lc_rs::algorithms(alg);
    digest::Digest::import_less_safe(bytes, digest_alg).map_err(|_| CryptoError::Failure)
}

/// An AWS-LC key pair (freed and wiped by AWS-LC) and OpenSSL's running digest.
struct Signer {
    alg: SignatureAlgorithm,
    key: signature::EcdsaKeyPair,
    hash: Box<dyn super::HashContext>,
}

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

    fn sign(self: Box<Self>) -> Result<Vec<u8>, CryptoError> {
        let digest = imported(self.alg, &self.hash.finish())?;
        let sig = self
            .key
            .sign_digest(&digest)
            .map_err(|_| CryptoError::Failure)?;
        Ok(sig.as_ref().to_vec())
    }

    fn fork(&self) -> Result<Box<dyn super::Signer>, CryptoError> {
        let (signing, _, _) = super::aws_lc_rs::algorithms(self.alg);
        let pkcs8 = self.key.to_pkcs8v1().map_err(|_| CryptoError::Failure)?;
        let key = signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref())
            .map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(Signer {
            alg: self.alg,
            key,
            hash: hasher(self.alg),
        }))
    }
}

/// An AWS-LC public key and OpenSSL's running digest.
struct Verifier {
    alg: SignatureAlgorithm,
    key: signature::ParsedPublicKey,
    hash: Box<dyn super::HashContext>,
}

impl super::Verifier for Verifier {
    fn update(&mut self, data: &[u8]) {
        self.hash.update(data);
    }

    fn verify(self: Box<Self>, sig: &[u8]) -> Result<(), CryptoError> {
        let digest = imported(self.alg, &self.hash.finish())?;
        self.key
            .verify_digest_sig(&digest, sig)
            .map_err(|_| CryptoError::Verification)
    }
}
