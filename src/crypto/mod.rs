//! The crypto provider seam.
//!
//! Every primitive envcrypt uses goes through a [`CryptoProvider`]: a struct of small component
//! traits, in the manner of rustls. Nothing outside this module names a backend crate, so a
//! new backend is one file implementing these traits.
//!
//! ```
//! let provider = envcrypt::crypto::default_provider();
//! println!("{} (FIPS: {})", provider.name, provider.fips());
//! assert!(envcrypt::crypto::provider_by_name(provider.name).is_some());
//! ```

use core::fmt;

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
pub mod aws_lc_rs;
#[cfg(feature = "fips")]
mod fips_sign;
#[cfg(all(feature = "aws-lc-rs", feature = "openssl", not(feature = "fips")))]
mod mixed;
#[cfg(feature = "openssl")]
pub mod openssl;
#[cfg(feature = "rust-crypto")]
pub mod rust_crypto;
#[cfg(feature = "fips")]
pub use fips_sign::service_indicator;

/// AES-GCM tag length in bytes (all suites).
pub const TAG_LEN: usize = 16;
/// AES-GCM nonce length in bytes (all suites).
pub const NONCE_LEN: usize = 12;

/// A bundle of primitive implementations: what envcrypt needs from a crypto library.
pub struct CryptoProvider {
    /// Short name, as printed by the tool's `info` (`"aws-lc-rs"`, ...).
    pub name: &'static str,
    /// AES-GCM.
    pub aead: &'static dyn Aead,
    /// HKDF.
    pub hkdf: &'static dyn Hkdf,
    /// ECDSA with streaming hash.
    pub signature: &'static dyn Signature,
    /// Cryptographically secure random bytes.
    pub random: &'static dyn SecureRandom,
    /// RSA encryption (raw RSA keyring); providers without it answer `Unsupported`.
    pub rsa: &'static dyn Rsa,
    /// Message digests (checksums for tools; the signatures hash internally).
    pub digest: &'static dyn Digest,
}

impl CryptoProvider {
    /// Which module serves each component, e.g. `(Component::Signature, "openssl")`: a
    /// provider's own name, or another provider's for a component it takes from there.
    ///
    /// ```
    /// use envcrypt::crypto::{default_provider, Component};
    /// let modules = default_provider().modules();
    /// assert_eq!(modules[0].0, Component::Aead);
    /// assert!(modules.iter().all(|(_, module)| !module.is_empty()));
    /// ```
    pub fn modules(&self) -> [(Component, &'static str); 6] {
        [
            (Component::Aead, self.aead.module()),
            (Component::Hkdf, self.hkdf.module()),
            (Component::Signature, self.signature.module()),
            (Component::Random, self.random.module()),
            (Component::Rsa, self.rsa.module()),
            (Component::Digest, self.digest.module()),
        ]
    }

    /// True when every component runs inside a FIPS-validated module in FIPS mode.
    pub fn fips(&self) -> bool {
        self.aead.fips()
            && self.hkdf.fips()
            && self.signature.fips()
            && self.random.fips()
            && self.rsa.fips()
            && self.digest.fips()
    }
}

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoProvider")
            .field("name", &self.name)
            .field("fips", &self.fips())
            .finish()
    }
}

/// The provider used when none is chosen: aws-lc-rs (its FIPS module in a `fips` build);
/// with feature `openssl` too (not `fips`), `aws-lc-rs+openssl`; else OpenSSL, else
/// RustCrypto.
pub fn default_provider() -> &'static CryptoProvider {
    providers()[0]
}

/// Every provider compiled into this build, the default first.
pub fn providers() -> &'static [&'static CryptoProvider] {
    static PROVIDERS: &[&CryptoProvider] = &[
        // First, so the default where compiled in: faster than aws-lc-rs alone on the
        // signed default suite (BENCHMARKS.md); never in a `fips` build.
        #[cfg(all(feature = "aws-lc-rs", feature = "openssl", not(feature = "fips")))]
        &mixed::AWS_LC_RS_OPENSSL,
        #[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
        &aws_lc_rs::PROVIDER,
        #[cfg(feature = "openssl")]
        &openssl::PROVIDER,
        #[cfg(feature = "rust-crypto")]
        &rust_crypto::PROVIDER,
    ];
    PROVIDERS
}

/// The compiled-in provider called `name` (`"aws-lc-rs"`, `"aws-lc-rs-fips"`, `"openssl"`,
/// `"aws-lc-rs+openssl"`, `"rust-crypto"`).
pub fn provider_by_name(name: &str) -> Option<&'static CryptoProvider> {
    providers().iter().copied().find(|p| p.name == name)
}

/// The components of a [`CryptoProvider`], as [`CryptoProvider::modules`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Component {
    /// AES-GCM ([`CryptoProvider::aead`]).
    Aead,
    /// HKDF ([`CryptoProvider::hkdf`]).
    Hkdf,
    /// ECDSA with its streaming hash ([`CryptoProvider::signature`]).
    Signature,
    /// Random bytes ([`CryptoProvider::random`]).
    Random,
    /// RSA encryption ([`CryptoProvider::rsa`]).
    Rsa,
    /// Message digests ([`CryptoProvider::digest`]).
    Digest,
}

impl Component {
    /// Lower-case name: `"aead"`, `"hkdf"`, `"signature"`, `"random"`, `"rsa"`, `"digest"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aead => "aead",
            Self::Hkdf => "hkdf",
            Self::Signature => "signature",
            Self::Random => "random",
            Self::Rsa => "rsa",
            Self::Digest => "digest",
        }
    }
}

/// AES-GCM key sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-192-GCM.
    Aes192Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
}

impl AeadAlgorithm {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes192Gcm => 24,
            Self::Aes256Gcm => 32,
        }
    }

    /// The algorithm for a key of `len` bytes.
    pub const fn for_key_len(len: usize) -> Option<Self> {
        match len {
            16 => Some(Self::Aes128Gcm),
            24 => Some(Self::Aes192Gcm),
            32 => Some(Self::Aes256Gcm),
            _ => None,
        }
    }
}

/// SHA-2 hash functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// ECDSA curves with their hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256, DER signatures.
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384, DER signatures.
    EcdsaP384Sha384,
}

/// AES-GCM seal and open.
pub trait Aead: Send + Sync {
    /// Makes a key object. `key.len()` must equal `alg.key_len()`.
    fn key(&self, alg: AeadAlgorithm, key: &[u8]) -> Result<Box<dyn AeadKey>, CryptoError>;
    /// True when this component is a FIPS-validated module in FIPS mode.
    fn fips(&self) -> bool;
    /// The module serving this component: a provider name (`"aws-lc-rs"`, `"openssl"`, ...);
    /// `"custom"` for a component defined outside envcrypt that does not say.
    fn module(&self) -> &'static str {
        "custom"
    }
}

/// One AES-GCM key. Owned by one thread at a time (`&mut` for sealing lets FIPS backends
/// enforce rising nonces per key object).
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place with a caller-chosen nonce and returns the tag.
    ///
    /// The caller guarantees a nonce is never repeated under this key.
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError>;

    /// Decrypts `ciphertext_and_tag` in place; on success the first `len - 16` bytes hold the
    /// plaintext. On failure the buffer content is unspecified and must not be used.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Encrypts `plaintext` into `out` (same length) with a caller-chosen nonce and returns
    /// the tag: the copy-free path when the plaintext lives in the caller's buffer.
    fn seal_to(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError>;

    /// Decrypts `ciphertext` into `out` (same length) after checking `tag`. On failure the
    /// content of `out` is unspecified and must not be used.
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// Encrypts `in_out` in place under a fresh random nonce; returns the nonce and the tag.
    fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError>;
}

/// HKDF (RFC 5869).
pub trait Hkdf: Send + Sync {
    /// `out = HKDF-Expand(HKDF-Extract(salt, ikm), info, out.len())`.
    fn extract_and_expand(
        &self,
        hash: HashAlgorithm,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// True when this component is a FIPS-validated module in FIPS mode.
    fn fips(&self) -> bool;
    /// The module serving this component: a provider name (`"aws-lc-rs"`, `"openssl"`, ...);
    /// `"custom"` for a component defined outside envcrypt that does not say.
    fn module(&self) -> &'static str {
        "custom"
    }
}

/// ECDSA over a streamed message.
pub trait Signature: Send + Sync {
    /// Generates a fresh key pair and returns a signer ready to absorb the message.
    fn generate_signer(&self, alg: SignatureAlgorithm) -> Result<Box<dyn Signer>, CryptoError>;
    /// A verifier for `public_key` (SEC1 point, compressed or not).
    fn verifier(
        &self,
        alg: SignatureAlgorithm,
        public_key: &[u8],
    ) -> Result<Box<dyn Verifier>, CryptoError>;
    /// True when this component is a FIPS-validated module in FIPS mode.
    fn fips(&self) -> bool;
    /// The module serving this component: a provider name (`"aws-lc-rs"`, `"openssl"`, ...);
    /// `"custom"` for a component defined outside envcrypt that does not say.
    fn module(&self) -> &'static str {
        "custom"
    }

    /// A long-term private key from its PKCS#8 DER encoding (the audit log's checkpoint
    /// key). Providers without long-term keys answer `Unsupported`.
    fn signing_key(
        &self,
        alg: SignatureAlgorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn SigningKey>, CryptoError> {
        let _ = (alg, pkcs8_der);
        Err(CryptoError::Unsupported("long-term ECDSA keys"))
    }

    /// A new long-term private key (see [`signing_key`](Self::signing_key)).
    fn generate_signing_key(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn SigningKey>, CryptoError> {
        let _ = alg;
        Err(CryptoError::Unsupported("long-term ECDSA keys"))
    }
}

/// A long-term ECDSA private key that signs short messages (audit checkpoints). Holds a
/// secret: no `Clone`, no `Debug`; the key is wiped when dropped.
pub trait SigningKey: Send + Sync {
    /// The public key as an uncompressed SEC1 point.
    fn public_key(&self) -> Result<Vec<u8>, CryptoError>;
    /// Signs `message` (hashed with the algorithm's hash); returns a DER signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The private key as PKCS#8 DER, to store it.
    fn to_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
}

/// Hashes a message as it streams past and signs it at the end. Holds a private key.
pub trait Signer: Send {
    /// The public key as a compressed SEC1 point.
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError>;
    /// Absorbs the next bytes of the message.
    fn update(&mut self, data: &[u8]);
    /// Signs everything absorbed; returns a DER signature.
    fn sign(self: Box<Self>) -> Result<Vec<u8>, CryptoError>;
    /// A signer with the same key and nothing absorbed: for cached materials, whose
    /// messages share one key pair (its public key is in their encryption context).
    fn fork(&self) -> Result<Box<dyn Signer>, CryptoError>;
}

/// Hashes a message as it streams past and checks its signature at the end.
pub trait Verifier: Send {
    /// Absorbs the next bytes of the message.
    fn update(&mut self, data: &[u8]);
    /// Checks a DER signature over everything absorbed.
    fn verify(self: Box<Self>, signature: &[u8]) -> Result<(), CryptoError>;
}

/// A cryptographically secure random number generator.
pub trait SecureRandom: Send + Sync {
    /// Fills `out` with random bytes.
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError>;
    /// True when this component is a FIPS-validated module in FIPS mode.
    fn fips(&self) -> bool;
    /// The module serving this component: a provider name (`"aws-lc-rs"`, `"openssl"`, ...);
    /// `"custom"` for a component defined outside envcrypt that does not say.
    fn module(&self) -> &'static str {
        "custom"
    }
}

/// SHA-2 message digests.
///
/// ```
/// use envcrypt::crypto::{default_provider, HashAlgorithm};
/// let mut h = default_provider().digest.start(HashAlgorithm::Sha256);
/// h.update(b"abc");
/// assert_eq!(h.finish()[..4], [0xba, 0x78, 0x16, 0xbf]);
/// ```
pub trait Digest: Send + Sync {
    /// A fresh hash computation.
    fn start(&self, alg: HashAlgorithm) -> Box<dyn HashContext>;
    /// True when this component is a FIPS-validated module in FIPS mode.
    fn fips(&self) -> bool;
    /// The module serving this component: a provider name (`"aws-lc-rs"`, `"openssl"`, ...);
    /// `"custom"` for a component defined outside envcrypt that does not say.
    fn module(&self) -> &'static str {
        "custom"
    }
}

/// A running hash computation.
pub trait HashContext: Send {
    /// Absorbs more bytes.
    fn update(&mut self, data: &[u8]);
    /// The digest of everything absorbed.
    fn finish(self: Box<Self>) -> Vec<u8>;
}

/// RSA encryption paddings of the raw RSA keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RsaPadding {
    /// PKCS#1 v1.5 (legacy; decryption is prone to padding-oracle attacks).
    Pkcs1v15,
    /// OAEP with SHA-1 and MGF1-SHA-1, empty label.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA-256, empty label.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1-SHA-384, empty label.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1-SHA-512, empty label.
    OaepSha512,
}

/// RSA key handling and encryption.
pub trait Rsa: Send + Sync {
    /// Parses a public key (DER SubjectPublicKeyInfo).
    fn public_key(&self, spki_der: &[u8]) -> Result<Box<dyn RsaPublicKey>, CryptoError>;
    /// Parses a private key (DER PKCS#8).
    fn private_key(&self, pkcs8_der: &[u8]) -> Result<Box<dyn RsaPrivateKey>, CryptoError>;
    /// Generates a key pair of `bits` (2048, 3072 or 4096); returns (PKCS#8, SPKI) DER.
    fn generate(&self, bits: usize) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError>;
    /// True when this component is a FIPS-validated module in FIPS mode.
    fn fips(&self) -> bool;
    /// The module serving this component: a provider name (`"aws-lc-rs"`, `"openssl"`, ...);
    /// `"custom"` for a component defined outside envcrypt that does not say.
    fn module(&self) -> &'static str {
        "custom"
    }
}

/// An RSA public key.
pub trait RsaPublicKey: Send + Sync {
    /// Encrypts a short message (a data key).
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Modulus size in bits.
    fn bits(&self) -> usize;
}

/// An RSA private key. Implementations zeroize it on drop.
pub trait RsaPrivateKey: Send + Sync {
    /// Decrypts a short message (a data key).
    fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError>;
    /// The matching public key.
    fn public_key(&self) -> Result<Box<dyn RsaPublicKey>, CryptoError>;
}

/// The RSA component of providers that have none.
pub struct NoRsa;

impl Rsa for NoRsa {
    fn public_key(&self, _: &[u8]) -> Result<Box<dyn RsaPublicKey>, CryptoError> {
        Err(CryptoError::Unsupported("RSA"))
    }
    fn private_key(&self, _: &[u8]) -> Result<Box<dyn RsaPrivateKey>, CryptoError> {
        Err(CryptoError::Unsupported("RSA"))
    }
    fn generate(&self, _: usize) -> Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        Err(CryptoError::Unsupported("RSA"))
    }
    fn fips(&self) -> bool {
        false
    }
    fn module(&self) -> &'static str {
        "none"
    }
}

/// A primitive failed or is not offered by the provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication failed (tag or signature).
    #[error("verification failed")]
    Verification,
    /// A key has the wrong length or encoding.
    #[error("invalid key")]
    InvalidKey,
    /// The provider does not offer this primitive.
    #[error("{0} is not supported by this provider")]
    Unsupported(&'static str),
    /// The primitive failed for another reason.
    #[error("primitive failed")]
    Failure,
}
