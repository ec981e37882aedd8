//! ECDSA P-256/P-384 with OpenSSL's streaming digest-sign and digest-verify.
//!
//! The message is hashed as it streams past (`EVP_DigestSignUpdate` /
//! `EVP_DigestVerifyUpdate`) and signed or checked at the end, so the whole operation is the
//! provider's own signature service (in a FIPS configuration, the `fips` provider's).
//! Signatures are DER `ECDSA-Sig-Value`s, as the message format's footer holds them.

use ::openssl::bn::BigNumContext;
use ::openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use ::openssl::md::MdRef;
use ::openssl::md_ctx::MdCtx;
use ::openssl::nid::Nid;
use ::openssl::pkey::{PKey, Private};

use super::super::{CryptoError, HashAlgorithm, SignatureAlgorithm};

/// (curve name for `EVP_EC_gen`, curve id, hash, field length in bytes).
fn params(alg: SignatureAlgorithm) -> (&'static str, Nid, HashAlgorithm, usize) {
    match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => {
            ("P-256", Nid::X9_62_PRIME256V1, HashAlgorithm::Sha256, 32)
        }
        SignatureAlgorithm::EcdsaP384Sha384 => ("P-384", Nid::SECP384R1, HashAlgorithm::Sha384, 48),
    }
}

fn md(alg: SignatureAlgorithm) -> &'static MdRef {
    super::md(params(alg).2)
}

pub(super) struct Signature;

impl super::super::Signature for Signature {
    fn generate_signer(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::super::Signer>, CryptoError> {
        let key = PKey::ec_gen(params(alg).0).map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(Signer::new(alg, key)?))
    }

    fn verifier(
        &self,
        alg: SignatureAlgorithm,
        public_key: &[u8],
    ) -> Result<Box<dyn super::super::Verifier>, CryptoError> {
        let (_, nid, _, field) = params(alg);
        // SEC1 compressed (02/03 || x) or uncompressed (04 || x || y); OpenSSL would also
        // take the hybrid form and the point at infinity, which no other provider does.
        let well_formed = match public_key.first() {
            Some(2 | 3) => public_key.len() == 1 + field,
            Some(4) => public_key.len() == 1 + 2 * field,
            _ => false,
        };
        if !well_formed {
            return Err(CryptoError::InvalidKey);
        }
        let key = (|| {
            let group = EcGroup::from_curve_name(nid)?;
            let mut bn = BigNumContext::new()?;
            let point = EcPoint::from_bytes(&group, public_key, &mut bn)?;
            let key = EcKey::from_public_key(&group, &point)?;
            key.check_key()?;
            PKey::from_ec_key(key)
        })()
        .map_err(|_| CryptoError::InvalidKey)?;
        let mut ctx = MdCtx::new().map_err(|_| CryptoError::Failure)?;
        ctx.digest_verify_init(Some(md(alg)), &key)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(Box::new(Verifier { ctx, ok: true }))
    }

    fn fips(&self) -> bool {
        super::fips_mode()
    }

    fn module(&self) -> &'static str {
        super::NAME
    }

    fn signing_key(
        &self,
        alg: SignatureAlgorithm,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn super::super::SigningKey>, CryptoError> {
        let key = PKey::private_key_from_pkcs8(pkcs8_der).map_err(|_| CryptoError::InvalidKey)?;
        // The key must be on the algorithm's curve.
        let on_curve =
            key.ec_key().ok().and_then(|ec| ec.group().curve_name()) == Some(params(alg).1);
        if !on_curve {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Box::new(SigningKey { alg, key }))
    }

    fn generate_signing_key(
        &self,
        alg: SignatureAlgorithm,
    ) -> Result<Box<dyn super::super::SigningKey>, CryptoError> {
        let key = PKey::ec_gen(params(alg).0).map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(SigningKey { alg, key }))
    }
}

/// A long-term key (audit checkpoints): OpenSSL clears it when freed; no `Clone`, no
/// `Debug`.
struct SigningKey {
    alg: SignatureAlgorithm,
    key: PKey<Private>,
}

impl super::super::SigningKey for SigningKey {
    fn public_key(&self) -> Result<Vec<u8>, CryptoError> {
        let ec = self.key.ec_key().map_err(|_| CryptoError::Failure)?;
        let mut bn = BigNumContext::new().map_err(|_| CryptoError::Failure)?;
        ec.public_key()
            .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut bn)
            .map_err(|_| CryptoError::Failure)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut ctx = MdCtx::new().map_err(|_| CryptoError::Failure)?;
        ctx.digest_sign_init(Some(md(self.alg)), &self.key)
            .map_err(|_| CryptoError::Failure)?;
        let mut sig = Vec::new();
        ctx.digest_sign_to_vec(message, &mut sig)
            .map_err(|_| CryptoError::Failure)?;
        Ok(sig)
    }

    fn to_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
        self.key
            .private_key_to_pkcs8()
            .map(zeroize::Zeroizing::new)
            .map_err(|_| CryptoError::Failure)
    }
}

/// A key pair and a digest-sign context absorbing the message. The private key lives in
/// OpenSSL (cleared when freed); no `Clone`, no `Debug`.
struct Signer {
    alg: SignatureAlgorithm,
    key: PKey<Private>,
    ctx: MdCtx,
    /// False once an update failed: `sign` then refuses.
    ok: bool,
}

impl Signer {
    fn new(alg: SignatureAlgorithm, key: PKey<Private>) -> Result<Self, CryptoError> {
        let mut ctx = MdCtx::new().map_err(|_| CryptoError::Failure)?;
        ctx.digest_sign_init(Some(md(alg)), &key)
            .map_err(|_| CryptoError::Failure)?;
        Ok(Self {
            alg,
            key,
            ctx,
            ok: true,
        })
    }
}

impl super::super::Signer for Signer {
    fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        let ec = self.key.ec_key().map_err(|_| CryptoError::Failure)?;
        let mut bn = BigNumContext::new().map_err(|_| CryptoError::Failure)?;
        ec.public_key()
            .to_bytes(ec.group(), PointConversionForm::COMPRESSED, &mut bn)
            .map_err(|_| CryptoError::Failure)
    }

    fn update(&mut self, data: &[u8]) {
        if self.ok && self.ctx.digest_sign_update(data).is_err() {
            self.ok = false;
        }
    }

    fn sign(mut self: Box<Self>) -> Result<Vec<u8>, CryptoError> {
        if !self.ok {
            return Err(CryptoError::Failure);
        }
        let mut sig = Vec::new();
        self.ctx
            .digest_sign_final_to_vec(&mut sig)
            .map_err(|_| CryptoError::Failure)?;
        Ok(sig)
    }

    fn fork(&self) -> Result<Box<dyn super::super::Signer>, CryptoError> {
        // `PKey` clones share the one key object (a reference count).
        Ok(Box::new(Signer::new(self.alg, self.key.clone())?))
    }
}

/// A digest-verify context absorbing the message.
struct Verifier {
    ctx: MdCtx,
    /// False once an update failed: `verify` then refuses.
    ok: bool,
}

impl super::super::Verifier for Verifier {
    fn update(&mut self, data: &[u8]) {
        if self.ok && self.ctx.digest_verify_update(data).is_err() {
            self.ok = false;
        }
    }

    fn verify(mut self: Box<Self>, signature: &[u8]) -> Result<(), CryptoError> {
        // OpenSSL parses the signature as strict DER (it re-encodes and compares, so BER
        // forms and trailing bytes fail) and checks 0 < r, s < n.
        if self.ok && matches!(self.ctx.digest_verify_final(signature), Ok(true)) {
            Ok(())
        } else {
            Err(CryptoError::Verification)
        }
    }
}
