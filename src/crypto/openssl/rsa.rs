//! RSA encryption (the raw RSA keyring) with OpenSSL's EVP public-key operations.
//!
//! In a FIPS configuration PKCS#1 v1.5 encryption is refused (`Unsupported`): SP 800-131A
//! Rev. 2 no longer approves it for key transport. OAEP (SHA-1/256/384/512 with MGF1 of the
//! same hash, empty label) and key generation stay.

use ::openssl::md::{Md, MdRef};
use ::openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use ::openssl::pkey_ctx::PkeyCtx;
use ::openssl::rsa::Padding;
use zeroize::Zeroizing;

use super::super::{CryptoError, RsaPadding};

pub(super) struct Rsa;

impl super::super::Rsa for Rsa {
    fn public_key(
        &self,
        spki_der: &[u8],
    ) -> Result<Box<dyn super::super::RsaPublicKey>, CryptoError> {
        let key = PKey::public_key_from_der(spki_der).map_err(|_| CryptoError::InvalidKey)?;
        if key.id() != Id::RSA || !acceptable_size(key.bits()) {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Box::new(RsaPublicKey(key)))
    }

    fn private_key(
        &self,
        pkcs8_der: &[u8],
    ) -> Result<Box<dyn super::super::RsaPrivateKey>, CryptoError> {
        let key = PKey::private_key_from_pkcs8(pkcs8_der).map_err(|_| CryptoError::InvalidKey)?;
        if key.id() != Id::RSA || !acceptable_size(key.bits()) {
            return Err(CryptoError::InvalidKey);
        }
        let rsa = key.rsa().map_err(|_| CryptoError::InvalidKey)?;
        if !rsa.check_key().unwrap_or(false) {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Box::new(RsaPrivateKey(key)))
    }

    fn generate(&self, bits: usize) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), CryptoError> {
        if !matches!(bits, 2048 | 3072 | 4096) {
            return Err(CryptoError::Unsupported(
                "RSA key size other than 2048/3072/4096",
            ));
        }
        let mut ctx = PkeyCtx::new_id(Id::RSA).map_err(|_| CryptoError::Failure)?;
        ctx.keygen_init().map_err(|_| CryptoError::Failure)?;
        ctx.set_rsa_keygen_bits(bits as u32)
            .map_err(|_| CryptoError::Failure)?;
        let key = ctx.keygen().map_err(|_| CryptoError::Failure)?;
        let private = Zeroizing::new(
            key.private_key_to_pkcs8()
                .map_err(|_| CryptoError::Failure)?,
        );
        let public = key.public_key_to_der().map_err(|_| CryptoError::Failure)?;
        Ok((private, public))
    }

    fn fips(&self) -> bool {
        super::fips_mode()
    }

    fn module(&self) -> &'static str {
        super::NAME
    }
}

/// Keys of 2048 to 8192 bits, as the other providers take (smaller ones are too weak).
fn acceptable_size(bits: u32) -> bool {
    (2048..=8192).contains(&bits)
}

/// Sets `padding` on a context initialized for encryption or decryption.
fn configure<T>(ctx: &mut PkeyCtx<T>, padding: RsaPadding) -> Result<(), CryptoError> {
    let md: &MdRef = match padding {
        RsaPadding::Pkcs1v15 => {
            if super::fips_mode() {
                return Err(CryptoError::Unsupported(
                    "RSA PKCS#1 v1.5 encryption in FIPS mode",
                ));
            }
            return ctx
                .set_rsa_padding(Padding::PKCS1)
                .map_err(|_| CryptoError::Failure);
        }
        RsaPadding::OaepSha1 => Md::sha1(),
        RsaPadding::OaepSha256 => Md::sha256(),
        RsaPadding::OaepSha384 => Md::sha384(),
        RsaPadding::OaepSha512 => Md::sha512(),
    };
    ctx.set_rsa_padding(Padding::PKCS1_OAEP)
        .and_then(|()| ctx.set_rsa_oaep_md(md))
        .and_then(|()| ctx.set_rsa_mgf1_md(md))
        .map_err(|_| CryptoError::Failure)
}

fn encrypt<T: HasPublic>(
    key: &PKeyRef<T>,
    padding: RsaPadding,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut ctx = PkeyCtx::new(key).map_err(|_| CryptoError::Failure)?;
    ctx.encrypt_init().map_err(|_| CryptoError::Failure)?;
    configure(&mut ctx, padding)?;
    let mut out = vec![0u8; key.size()];
    // Too long a plaintext for the key and padding fails here.
    let n = ctx
        .encrypt(plaintext, Some(&mut out))
        .map_err(|_| CryptoError::Failure)?;
    out.truncate(n);
    Ok(out)
}

struct RsaPublicKey(PKey<Public>);

impl super::super::RsaPublicKey for RsaPublicKey {
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        encrypt(&self.0, padding, plaintext)
    }

    fn bits(&self) -> usize {
        self.0.bits() as usize
    }
}

/// The private key lives in OpenSSL, which clears it when freed; no `Clone`, no `Debug`.
struct RsaPrivateKey(PKey<Private>);

impl super::super::RsaPrivateKey for RsaPrivateKey {
    fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut ctx = PkeyCtx::new(&self.0).map_err(|_| CryptoError::Failure)?;
        ctx.decrypt_init().map_err(|_| CryptoError::Failure)?;
        configure(&mut ctx, padding)?;
        let mut out = Zeroizing::new(vec![0u8; self.0.size()]);
        let n = ctx
            .decrypt(ciphertext, Some(&mut out))
            .map_err(|_| CryptoError::Verification)?;
        out.truncate(n);
        Ok(out)
    }

    fn public_key(&self) -> Result<Box<dyn super::super::RsaPublicKey>, CryptoError> {
        let der = self
            .0
            .public_key_to_der()
            .map_err(|_| CryptoError::Failure)?;
        let key = PKey::public_key_from_der(&der).map_err(|_| CryptoError::Failure)?;
        Ok(Box::new(RsaPublicKey(key)))
    }
}
