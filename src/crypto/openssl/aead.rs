//! AES-GCM on OpenSSL's EVP cipher contexts.
//!
//! A key object keeps two contexts that hold the expanded key (one sealing, one opening);
//! each call only sets the nonce, so the key schedule runs once per key. OpenSSL cleanses the
//! key material when a context is freed; envcrypt keeps no copy of the key bytes.

use std::sync::Mutex;

use ::openssl::cipher::{Cipher, CipherRef};
use ::openssl::cipher_ctx::{CipherCtx, CipherCtxRef};

use super::super::{AeadAlgorithm, CryptoError, NONCE_LEN, TAG_LEN};

/// Largest slice handed to one `EVP_CipherUpdate` call (its lengths are C `int`s).
const CHUNK: usize = 1 << 30;

pub(super) struct Aead;

impl super::super::Aead for Aead {
    fn key(
        &self,
        alg: AeadAlgorithm,
        key: &[u8],
    ) -> Result<Box<dyn super::super::AeadKey>, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::InvalidKey);
        }
        let cipher: &CipherRef = match alg {
            AeadAlgorithm::Aes128Gcm => Cipher::aes_128_gcm(),
            AeadAlgorithm::Aes192Gcm => Cipher::aes_192_gcm(),
            AeadAlgorithm::Aes256Gcm => Cipher::aes_256_gcm(),
        };
        // The key length is right, so a failed init means the configured OpenSSL providers
        // have no such cipher (e.g. `fips=yes` without the `fips` module).
        let unavailable =
            |_| CryptoError::Unsupported("AES-GCM from OpenSSL's configured providers");
        let mut seal = CipherCtx::new().map_err(|_| CryptoError::Failure)?;
        seal.encrypt_init(Some(cipher), Some(key), None)
            .map_err(unavailable)?;
        let mut open = CipherCtx::new().map_err(|_| CryptoError::Failure)?;
        open.decrypt_init(Some(cipher), Some(key), None)
            .map_err(unavailable)?;
        Ok(Box::new(AeadKey {
            seal,
            open: Mutex::new(open),
        }))
    }

    fn fips(&self) -> bool {
        super::fips_mode()
    }

    fn module(&self) -> &'static str {
        super::NAME
    }
}

/// One AES-GCM key: no `Clone`, no `Debug`.
struct AeadKey {
    /// Keyed for encryption; `&mut self` calls use it directly.
    seal: CipherCtx,
    /// Keyed for decryption. Opening takes `&self`, so the context sits behind a lock; a
    /// caller that finds it taken works on a copy.
    open: Mutex<CipherCtx>,
}

/// Feeds `aad` to a context initialized with a nonce.
fn absorb_aad(ctx: &mut CipherCtxRef, aad: &[u8]) -> Result<(), CryptoError> {
    for chunk in aad.chunks(CHUNK) {
        ctx.cipher_update(chunk, None)
            .map_err(|_| CryptoError::Failure)?;
    }
    Ok(())
}

/// Encrypts or decrypts `in_out` in place (GCM is a stream mode: output length = input).
fn update_in_place(ctx: &mut CipherCtxRef, in_out: &mut [u8]) -> Result<(), CryptoError> {
    for chunk in in_out.chunks_mut(CHUNK) {
        let len = chunk.len();
        let written = ctx
            .cipher_update_inplace(chunk, len)
            .map_err(|_| CryptoError::Failure)?;
        if written != len {
            return Err(CryptoError::Failure);
        }
    }
    Ok(())
}

/// Runs the cipher from `input` into `out` (equal lengths checked by the caller).
fn update_to(ctx: &mut CipherCtxRef, input: &[u8], out: &mut [u8]) -> Result<(), CryptoError> {
    for (i, o) in input.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
        let written = ctx
            .cipher_update(i, Some(o))
            .map_err(|_| CryptoError::Failure)?;
        if written != i.len() {
            return Err(CryptoError::Failure);
        }
    }
    Ok(())
}

/// Ends an encryption and returns the tag.
fn finish_seal(ctx: &mut CipherCtxRef) -> Result<[u8; TAG_LEN], CryptoError> {
    let written = ctx
        .cipher_final(&mut [])
        .map_err(|_| CryptoError::Failure)?;
    if written != 0 {
        return Err(CryptoError::Failure);
    }
    let mut tag = [0u8; TAG_LEN];
    ctx.tag(&mut tag).map_err(|_| CryptoError::Failure)?;
    Ok(tag)
}

/// Seals `in_out` in place under `nonce` with a context keyed for encryption.
fn seal(
    ctx: &mut CipherCtxRef,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; TAG_LEN], CryptoError> {
    ctx.encrypt_init(None, None, Some(nonce))
        .map_err(|_| CryptoError::Failure)?;
    absorb_aad(ctx, aad)?;
    update_in_place(ctx, in_out)?;
    finish_seal(ctx)
}

impl AeadKey {
    /// Runs `f` on the opening context (or on a copy of it when another thread holds it).
    fn with_open<T>(
        &self,
        f: impl FnOnce(&mut CipherCtxRef) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        match self.open.try_lock() {
            Ok(mut ctx) => f(&mut ctx),
            Err(_) => {
                let mut copy = CipherCtx::new().map_err(|_| CryptoError::Failure)?;
                copy.copy(&self.seal).map_err(|_| CryptoError::Failure)?;
                f(&mut copy)
            }
        }
    }

    /// Decrypts `input` into `data` (or `data` in place when `input` is `None`) and checks
    /// `tag`; on failure `data` is zeroed (GCM decrypts before the tag is known to match, and
    /// unauthenticated plaintext must not be left behind).
    fn open(
        ctx: &mut CipherCtxRef,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        input: Option<&[u8]>,
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let result = (|| {
            ctx.decrypt_init(None, None, Some(nonce))
                .map_err(|_| CryptoError::Failure)?;
            ctx.set_tag(tag).map_err(|_| CryptoError::Failure)?;
            absorb_aad(ctx, aad)?;
            match input {
                Some(input) => update_to(ctx, input, data)?,
                None => update_in_place(ctx, data)?,
            }
            match ctx.cipher_final(&mut []) {
                Ok(0) => Ok(()),
                _ => Err(CryptoError::Verification),
            }
        })();
        if result.is_err() {
            data.fill(0);
        }
        result
    }
}

impl super::super::AeadKey for AeadKey {
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        seal(&mut self.seal, nonce, aad, in_out)
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
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| CryptoError::Failure)?;
        self.with_open(|ctx| {
            // A decrypt context copied from the sealing one is switched to decryption by
            // `decrypt_init` inside `open`.
            Self::open(ctx, nonce, aad, None, ciphertext, &tag)
        })
    }

    fn seal_to(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        if plaintext.len() != out.len() {
            return Err(CryptoError::Failure);
        }
        let ctx = &mut self.seal;
        ctx.encrypt_init(None, None, Some(nonce))
            .map_err(|_| CryptoError::Failure)?;
        absorb_aad(ctx, aad)?;
        update_to(ctx, plaintext, out)?;
        finish_seal(ctx)
    }

    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if ciphertext.len() != out.len() {
            return Err(CryptoError::Verification);
        }
        self.with_open(|ctx| Self::open(ctx, nonce, aad, Some(ciphertext), out, tag))
    }

    fn seal_with_random_nonce(
        &self,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<([u8; NONCE_LEN], [u8; TAG_LEN]), CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        super::random_bytes(&mut nonce)?;
        let mut ctx = CipherCtx::new().map_err(|_| CryptoError::Failure)?;
        ctx.copy(&self.seal).map_err(|_| CryptoError::Failure)?;
        let tag = seal(&mut ctx, &nonce, aad, in_out)?;
        Ok((nonce, tag))
    }
}
