//! The OpenSSL backend: the system's OpenSSL 3 through the `openssl` crate (feature
//! `openssl`; an application that also depends on `openssl` with its `vendored` feature gets
//! OpenSSL built from source instead).
//!
//! Every primitive goes through OpenSSL's EVP layer, so it is served by whichever OpenSSL
//! provider the process configured: the `default` provider, or the `fips` provider when
//! OpenSSL runs with `fips=yes` as its default properties (RHEL, Ubuntu Pro and others ship
//! their FIPS 140-3 module that way). [`fips_mode`] tells which; only then does the provider
//! report [`fips`](super::CryptoProvider::fips), and it then offers only approved algorithms:
//! RSA PKCS#1 v1.5 encryption is refused (see SECURITY.md).
//!
//! ```
//! let provider = envcrypt::crypto::provider_by_name("openssl").unwrap();
//! assert_eq!(provider.fips(), envcrypt::crypto::openssl::fips_mode());
//! ```

use std::sync::OnceLock;

use ::openssl::md::{Md, MdRef};
use ::openssl::md_ctx::MdCtx;
use ::openssl::pkey::Id;
use ::openssl::pkey_ctx::PkeyCtx;

use super::{CryptoError, CryptoProvider, HashAlgorithm};

mod aead;
mod ecdsa;
mod rsa;

/// The module name of this backend's components (see [`CryptoProvider::modules`]).
pub(super) const NAME: &str = "openssl";

/// OpenSSL 3 (the system library, or a vendored build).
pub static PROVIDER: CryptoProvider = CryptoProvider {
    name: NAME,
    aead: &aead::Aead,
    hkdf: &Hkdf,
    signature: &ecdsa::Signature,
    random: &Random,
    rsa: &rsa::Rsa,
    digest: &Digest,
};

/// The digest component, for providers that take their hashing from OpenSSL.
#[cfg(all(feature = "aws-lc-rs", not(feature = "fips")))]
pub(super) static DIGEST: &dyn super::Digest = &Digest;

/// True when OpenSSL serves every EVP fetch of this process from its `fips` provider.
///
/// That holds when the default properties demand `fips=yes` (or when the `fips` provider is
/// the only one with algorithms): then an algorithm the `fips` provider lacks (MD5) cannot be
/// fetched, while SHA-384 with `fips=yes` can (the module is loaded and passed its
/// self-tests). Read once per process; a program that loads providers must do so before
/// its first use of envcrypt.
pub fn fips_mode() -> bool {
    static FIPS: OnceLock<bool> = OnceLock::new();
    *FIPS.get_or_init(|| {
        Md::fetch(None, "SHA2-384", Some("fips=yes")).is_ok()
            && Md::fetch(None, "MD5", None).is_err()
    })
}

/// Fills `out` from OpenSSL's private DRBG.
fn random_bytes(out: &mut [u8]) -> Result<(), CryptoError> {
    // `RAND_priv_bytes` takes a C `int` length.
    for chunk in out.chunks_mut(1 << 30) {
        ::openssl::rand::rand_priv_bytes(chunk).map_err(|_| CryptoError::Failure)?;
    }
    Ok(())
}

fn md(alg: HashAlgorithm) -> &'static MdRef {
    match alg {
        HashAlgorithm::Sha256 => Md::sha256(),
        HashAlgorithm::Sha384 => Md::sha384(),
        HashAlgorithm::Sha512 => Md::sha512(),
    }
}

struct Random;

impl super::SecureRandom for Random {
    fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        random_bytes(out)
    }

    fn fips(&self) -> bool {
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
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
        // RFC 5869: an absent salt is HashLen zero bytes, which is also what an empty salt
        // gives as an HMAC key; passing the zeros keeps the salt non-empty for the module.
        let zeros = [0u8; 64];
        let salt = if salt.is_empty() {
            &zeros[..hash.output_len()]
        } else {
            salt
        };
        // OpenSSL refuses an empty output; HKDF of zero bytes is the empty string.
        if out.is_empty() {
            return Ok(());
        }
        let mut ctx = PkeyCtx::new_id(Id::HKDF).map_err(|_| CryptoError::Failure)?;
        ctx.derive_init().map_err(|_| CryptoError::Failure)?;
        ctx.set_hkdf_md(md(hash))
            .map_err(|_| CryptoError::Failure)?;
        ctx.set_hkdf_key(ikm).map_err(|_| CryptoError::Failure)?;
        ctx.set_hkdf_salt(salt).map_err(|_| CryptoError::Failure)?;
        ctx.add_hkdf_info(info).map_err(|_| CryptoError::Failure)?;
        // More than 255 hash lengths is refused here.
        let n = ctx.derive(Some(out)).map_err(|_| CryptoError::Failure)?;
        if n != out.len() {
            out.fill(0);
            return Err(CryptoError::Failure);
        }
        Ok(())
    }

    fn fips(&self) -> bool {
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

struct Digest;

impl super::Digest for Digest {
    fn start(&self, alg: HashAlgorithm) -> Box<dyn super::HashContext> {
        let ctx = MdCtx::new().and_then(|mut ctx| ctx.digest_init(md(alg)).map(|()| ctx));
        Box::new(HashContext { ctx: ctx.ok(), alg })
    }

    fn fips(&self) -> bool {
        fips_mode()
    }

    fn module(&self) -> &'static str {
        NAME
    }
}

/// A running EVP digest; `None` once OpenSSL failed (an allocation or provider error).
struct HashContext {
    ctx: Option<MdCtx>,
    alg: HashAlgorithm,
}

impl super::HashContext for HashContext {
    fn update(&mut self, data: &[u8]) {
        if let Some(ctx) = &mut self.ctx {
            if ctx.digest_update(data).is_err() {
                self.ctx = None;
            }
        }
    }

    /// The digest; empty (matching no digest) if OpenSSL failed on the way.
    fn finish(self: Box<Self>) -> Vec<u8> {
        let mut out = vec![0u8; self.alg.output_len()];
        match self.ctx.map(|mut ctx| ctx.digest_final(&mut out)) {
            Some(Ok(n)) if n == out.len() => out,
            _ => Vec::new(),
        }
    }
}
