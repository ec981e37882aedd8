//! Under `--features fips`: every crypto service a full encrypt and decrypt uses is one the
//! AWS-LC FIPS module's service indicator reports as approved.
//!
//! A recording provider wraps each component of the FIPS provider and reads the indicator
//! around every call, so the check covers exactly what the engine, the materials manager
//! and the raw AES keyring call, nothing sampled by hand.
#![cfg(feature = "fips")]

use std::collections::BTreeMap;
use std::sync::Mutex;

use envcrypt::crypto::{
    self, service_indicator, Aead, AeadAlgorithm, AeadKey, CryptoError, CryptoProvider,
    HashAlgorithm, Hkdf, RsaPadding, SecureRandom, Signature, SignatureAlgorithm, Signer, Verifier,
    NONCE_LEN, TAG_LEN,
};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};

/// (service, approved) for every call, in order.
static LOG: Mutex<Vec<(&'static str, bool)>> = Mutex::new(Vec::new());

fn inner() -> &'static CryptoProvider {
    crypto::default_provider()
}

fn record<T>(service: &'static str, f: impl FnOnce() -> T) -> T {
    let (out, approved) = service_indicator(f);
    LOG.lock().unwrap().push((service, approved));
    out
}

struct RecAead;
struct RecKey(Box<dyn AeadKey>);
struct RecHkdf;
struct RecSignature;
struct RecSigner(Box<dyn Signer>);
struct RecVerifier(Box<dyn Verifier>);
struct RecRandom;

impl Aead for RecAead {
    fn key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError> {
        Ok(Box::new(RecKey(inner().aead.key(alg, key)?)))
    }
    fn fips(&self) -> bool {
        inner().aead.fips()
    }
}

impl AeadKey for RecKey {
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        record("AES-GCM seal (TLS 1.2 record key)", || {
            self.0.seal_in_place(nonce, aad, in_out)
        })
    }
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        record("AES-GCM open", || {
            self.0.open_in_place(nonce, aad, ciphertext_and_tag)
        })
    }
    fn seal_to(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        record("AES-GCM seal (TLS 1.2 record key)", || {
            self.0.seal_to(nonce, aad, plaintext, out)
        })
    }
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        record("AES-GCM open", || {
            self.0.open_to(nonce, aad, ciphertext, tag, out)
        })
    }
    fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        record("AES-GCM seal (randomized nonce)", || {
            self.0.seal_with_random_nonce(aad, in_out)
        })
    }
}

impl Hkdf for RecHkdf {
    fn extract_and_expand(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        record("HKDF", || {
            inner().hkdf.extract_and_expand(hash, salt, ikm, info, out)
        })
    }
    fn fips(&self) -> bool {
        inner().hkdf.fips()
    }
}

impl Signature for RecSignature {
    fn generate_signer(&self, alg: SignatureAlgorithm) -> Result<Box<dyn Signer>, CryptoError> {
        let s = record("ECDSA key generation", || {
            inner().signature.generate_signer(alg)
        })?;
        Ok(Box::new(RecSigner(s)))
    }
    fn verifier(
        &self,
        alg: SignatureAlgorithm,
        public_key: &[u8],
    ) -> Result<Box<dyn Verifier>, CryptoError> {
        Ok(Box::new(RecVerifier(
            inner().signature.verifier(alg, public_key)?,
        )))
    }
    fn fips(&self) -> bool {
        inner().signature.fips()
    }
}

impl Signer for RecSigner {
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        self.0.public_key_compressed()
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    fn sign(self: Box<Self>) -> Result<Vec<u8>, CryptoError> {
        record("ECDSA sign (streaming SHA-384)", || self.0.sign())
    }
    fn fork(&self) -> Result<Box<dyn Signer>, CryptoError> {
        Ok(Box::new(RecSigner(self.0.fork()?)))
    }
}

impl Verifier for RecVerifier {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data)
    }
    fn verify(self: Box<Self>, signature: &[u8]) -> Result<(), CryptoError> {
        record("ECDSA verify (SHA-384)", || self.0.verify(signature))
    }
}

impl SecureRandom for RecRandom {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        inner().random.fill(out)
    }
    fn fips(&self) -> bool {
        inner().random.fips()
    }
}

static RECORDING: CryptoProvider = CryptoProvider {
    name: "recording-aws-lc-rs-fips",
    aead: &RecAead,
    hkdf: &RecHkdf,
    signature: &RecSignature,
    random: &RecRandom,
    // The message paths under test use no RSA or standalone digest; RSA-OAEP is checked
    // on its own below.
    rsa: &crypto::NoRsa,
    digest: &RecDigest,
};

struct RecDigest;

impl crypto::Digest for RecDigest {
    fn start(&self, alg: HashAlgorithm) -> Box<dyn crypto::HashContext> {
        inner().digest.start(alg)
    }
    fn fips(&self) -> bool {
        inner().digest.fips()
    }
}

#[test]
fn every_service_of_encrypt_and_decrypt_is_approved() {
    assert_eq!(inner().name, "aws-lc-rs-fips");
    assert!(inner().fips(), "the module is not in FIPS mode");
    let keyring = RawAesKeyring::new("fips-test", "wrapping-key", &[0x5a; 32]).unwrap();
    let client = Client::builder()
        .provider(&RECORDING)
        .keyring(keyring)
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384)
        .frame_length(4096)
        .build()
        .unwrap();
    let plaintext: Vec<u8> = (0..5 * 4096 + 123).map(|i| (i % 251) as u8).collect();
    let context = EncryptionContext::from_pairs([("purpose", "fips-indicator")]);
    LOG.lock().unwrap().clear();
    let message = client.encrypt(&plaintext, &context).unwrap();
    let decrypted = client
        .decrypt(&message, &DecryptOptions::default())
        .unwrap();
    assert_eq!(decrypted.plaintext, plaintext);

    let log = LOG.lock().unwrap().clone();
    let mut by_service: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (service, approved) in &log {
        let e = by_service.entry(service).or_default();
        e.0 += 1;
        e.1 += usize::from(*approved);
    }
    for (service, (calls, approved)) in &by_service {
        println!("{service}: {approved}/{calls} approved");
    }
    let expected = [
        "AES-GCM seal (TLS 1.2 record key)", // header tag + 6 frames
        "AES-GCM seal (randomized nonce)",   // raw AES wrap
        "AES-GCM open",                      // unwrap, header tag, 6 frames
        "HKDF",                              // content key + commitment, both sides
        "ECDSA key generation",
        "ECDSA sign (streaming SHA-384)",
        "ECDSA verify (SHA-384)",
    ];
    for service in expected {
        assert!(by_service.contains_key(service), "{service} never ran");
    }
    assert_eq!(by_service["AES-GCM seal (TLS 1.2 record key)"].0, 7);
    assert_eq!(by_service["AES-GCM open"].0, 8);
    assert_eq!(by_service["HKDF"].0, 4);
    let refused: Vec<_> = log.iter().filter(|(_, ok)| !ok).collect();
    assert!(refused.is_empty(), "non-approved services: {refused:?}");
}

#[test]
fn aes_192_sealing_is_not_offered() {
    let mut key = inner()
        .aead
        .key(AeadAlgorithm::Aes192Gcm, &[1; 24])
        .unwrap();
    assert_eq!(
        key.seal_in_place(&[0; NONCE_LEN], b"", &mut []),
        Err(CryptoError::Unsupported(
            "AES-192-GCM sealing in the FIPS module"
        ))
    );
}

#[test]
fn tls12_key_refuses_a_repeated_nonce() {
    let mut key = inner()
        .aead
        .key(AeadAlgorithm::Aes256Gcm, &[1; 32])
        .unwrap();
    let mut n = [0u8; NONCE_LEN];
    n[11] = 5;
    key.seal_in_place(&n, b"", &mut [0; 4]).unwrap();
    assert_eq!(
        key.seal_in_place(&n, b"", &mut [0; 4]),
        Err(CryptoError::Failure)
    );
}

/// The indicator check can fail: HKDF with an empty salt is a non-approved service.
#[test]
fn indicator_reports_a_non_approved_call() {
    let mut out = [0u8; 32];
    let (result, approved) = service_indicator(|| {
        inner()
            .hkdf
            .extract_and_expand(HashAlgorithm::Sha256, &[], &[1; 32], b"info", &mut out)
    });
    result.unwrap();
    assert!(!approved);
    let (_, approved) = service_indicator(|| {
        inner().hkdf.extract_and_expand(
            HashAlgorithm::Sha256,
            &[0; 64],
            &[1; 32],
            b"info",
            &mut out,
        )
    });
    assert!(approved);
}

/// RSA-OAEP (raw RSA keyring) is an approved service: key generation, encrypt, decrypt.
#[test]
fn rsa_oaep_is_approved() {
    let ((private, public), approved) = service_indicator(|| inner().rsa.generate(3072).unwrap());
    assert!(approved, "RSA key generation");
    let public = inner().rsa.public_key(&public).unwrap();
    let private = inner().rsa.private_key(&private).unwrap();
    for padding in [RsaPadding::OaepSha256, RsaPadding::OaepSha512] {
        let (ct, approved) = service_indicator(|| public.encrypt(padding, &[7; 32]).unwrap());
        assert!(approved, "{padding:?} encrypt");
        let (pt, approved) = service_indicator(|| private.decrypt(padding, &ct).unwrap());
        assert!(approved, "{padding:?} decrypt");
        assert_eq!(&pt[..], &[7; 32]);
    }
}

/// A forked signer (cached materials) signs with the same key, through the module.
#[test]
fn forked_signer_signs_with_the_same_key() {
    let mut a = inner()
        .signature
        .generate_signer(SignatureAlgorithm::EcdsaP384Sha384)
        .unwrap();
    let mut b = a.fork().unwrap();
    assert_eq!(a.public_key_compressed(), b.public_key_compressed());
    let public = a.public_key_compressed().unwrap();
    a.update(b"one");
    b.update(b"two");
    for (signer, msg) in [(a, &b"one"[..]), (b, &b"two"[..])] {
        let (sig, approved) = service_indicator(|| signer.sign().unwrap());
        assert!(approved);
        let mut v = inner()
            .signature
            .verifier(SignatureAlgorithm::EcdsaP384Sha384, &public)
            .unwrap();
        v.update(msg);
        v.verify(&sig).unwrap();
    }
}

/// The audit trail's checkpoint key: generated, signed with and verified inside the module
/// as approved services, so a FIPS build signs its audit log with the module.
#[test]
fn audit_checkpoint_signing_is_approved() {
    let signature = &inner().signature;
    let (key, approved) =
        service_indicator(|| signature.generate_signing_key(SignatureAlgorithm::EcdsaP384Sha384));
    let key = key.unwrap();
    assert!(approved, "P-384 key generation");
    let message = b"envcrypt audit checkpoint";
    let (sig, approved) = service_indicator(|| key.sign(message));
    let sig = sig.unwrap();
    assert!(approved, "ECDSA P-384 signing of a checkpoint");
    let public = key.public_key().unwrap();
    let (verified, approved) = service_indicator(|| {
        let mut v = signature
            .verifier(SignatureAlgorithm::EcdsaP384Sha384, &public)
            .unwrap();
        v.update(message);
        v.verify(&sig)
    });
    verified.unwrap();
    assert!(approved, "ECDSA P-384 verification");
    // A key read back from its PKCS#8 form signs the same way.
    let again = signature
        .signing_key(
            SignatureAlgorithm::EcdsaP384Sha384,
            &key.to_pkcs8().unwrap(),
        )
        .unwrap();
    let (sig, approved) = service_indicator(|| again.sign(message));
    sig.unwrap();
    assert!(approved, "signing with a key loaded from PKCS#8");
}
