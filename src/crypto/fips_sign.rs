//! Streaming ECDSA signing inside the AWS-LC FIPS module, and its service indicator.
//!
//! A signed message is too large to hold in one slice, and aws-lc-rs's `sign_digest` is not
//! an approved service, so the FIPS build signs with the module's own streaming API
//! (`EVP_DigestSignInit` / `Update` / `Final`), which the module reports as approved. This is
//! the only file of the crate with `unsafe`; every block says why it is sound.
#![allow(unsafe_code)]

use core::ptr;

use aws_lc_fips_sys as sys;

use super::{CryptoError, SignatureAlgorithm};

/// An ECDSA key pair generated in the module plus a running digest-sign context.
pub(super) struct FipsSigner {
    pkey: *mut sys::EVP_PKEY,
    ctx: *mut sys::EVP_MD_CTX,
    md: *const sys::EVP_MD,
    failed: bool,
}

// SAFETY: the signer owns its key and context exclusively (never shared or aliased), and
// AWS-LC objects may move between threads when not used concurrently.
unsafe impl Send for FipsSigner {}

impl FipsSigner {
    /// Generates a key pair on the suite's curve (FIPS key generation with pairwise check)
    /// and starts a digest-sign context with the suite's hash.
    pub(super) fn generate(alg: SignatureAlgorithm) -> Result<Self, CryptoError> {
        let (nid, md) = match alg {
            // SAFETY: EVP_sha256/384 return pointers to static, immutable method tables.
            SignatureAlgorithm::EcdsaP256Sha256 => {
                (sys::NID_X9_62_prime256v1, unsafe { sys::EVP_sha256() })
            }
            SignatureAlgorithm::EcdsaP384Sha384 => {
                (sys::NID_secp384r1, unsafe { sys::EVP_sha384() })
            }
        };
        // SAFETY: each pointer is checked for null before use; ownership moves into
        // `signer` as soon as each object exists, so `Drop` frees it on every error path.
        unsafe {
            let mut signer = Self {
                pkey: sys::EVP_PKEY_new(),
                ctx: sys::EVP_MD_CTX_new(),
                md,
                failed: false,
            };
            if signer.pkey.is_null() || signer.ctx.is_null() {
                return Err(CryptoError::Failure);
            }
            let ec = sys::EC_KEY_new_by_curve_name(nid);
            if ec.is_null() {
                return Err(CryptoError::Failure);
            }
            if sys::EC_KEY_generate_key_fips(ec) != 1
                || sys::EVP_PKEY_assign_EC_KEY(signer.pkey, ec) != 1
            {
                // Not assigned: still ours to free.
                sys::EC_KEY_free(ec);
                return Err(CryptoError::Failure);
            }
            if sys::EVP_DigestSignInit(
                signer.ctx,
                ptr::null_mut(),
                md,
                ptr::null_mut(),
                signer.pkey,
            ) != 1
            {
                signer.failed = true;
                return Err(CryptoError::Failure);
            }
            Ok(signer)
        }
    }

    /// A signer over the same key (reference counted by the module) with a fresh context.
    pub(super) fn fork(&self) -> Result<Self, CryptoError> {
        // SAFETY: `pkey` is a valid key owned by `self`; EVP_PKEY_up_ref gives the new signer
        // its own reference, released in its `Drop`. The new context is checked for null and
        // owned by the new signer from then on.
        unsafe {
            if sys::EVP_PKEY_up_ref(self.pkey) != 1 {
                return Err(CryptoError::Failure);
            }
            let mut signer = Self {
                pkey: self.pkey,
                ctx: sys::EVP_MD_CTX_new(),
                md: self.md,
                failed: false,
            };
            if signer.ctx.is_null()
                || sys::EVP_DigestSignInit(
                    signer.ctx,
                    ptr::null_mut(),
                    self.md,
                    ptr::null_mut(),
                    signer.pkey,
                ) != 1
            {
                signer.failed = true;
                return Err(CryptoError::Failure);
            }
            Ok(signer)
        }
    }

    /// The public key as a compressed SEC1 point.
    pub(super) fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        let form = sys::point_conversion_form_t::POINT_CONVERSION_COMPRESSED;
        // SAFETY: `pkey` holds an EC key (assigned in `generate`); the group and point
        // pointers borrow from it and live as long as `self`. The first call asks for the
        // length; the second writes at most that many bytes into a buffer of that size.
        unsafe {
            let ec = sys::EVP_PKEY_get0_EC_KEY(self.pkey);
            if ec.is_null() {
                return Err(CryptoError::Failure);
            }
            let group = sys::EC_KEY_get0_group(ec);
            let point = sys::EC_KEY_get0_public_key(ec);
            let len =
                sys::EC_POINT_point2oct(group, point, form, ptr::null_mut(), 0, ptr::null_mut());
            if len == 0 {
                return Err(CryptoError::Failure);
            }
            let mut out = vec![0u8; len];
            let written =
                sys::EC_POINT_point2oct(group, point, form, out.as_mut_ptr(), len, ptr::null_mut());
            if written != len {
                return Err(CryptoError::Failure);
            }
            Ok(out)
        }
    }

    /// Absorbs message bytes.
    pub(super) fn update(&mut self, data: &[u8]) {
        // SAFETY: `ctx` was initialised by EVP_DigestSignInit; `data` is a valid slice for
        // the duration of the call.
        let ok = unsafe { sys::EVP_DigestSignUpdate(self.ctx, data.as_ptr().cast(), data.len()) };
        self.failed |= ok != 1;
    }

    /// Signs everything absorbed; returns a DER signature.
    pub(super) fn sign(self) -> Result<Vec<u8>, CryptoError> {
        if self.failed {
            return Err(CryptoError::Failure);
        }
        let mut len = 0usize;
        // SAFETY: the first call with a null buffer writes the maximum signature length to
        // `len`; the second writes at most `len` bytes into a buffer of that size and sets
        // `len` to the actual length.
        unsafe {
            if sys::EVP_DigestSignFinal(self.ctx, ptr::null_mut(), &mut len) != 1 {
                return Err(CryptoError::Failure);
            }
            let mut sig = vec![0u8; len];
            if sys::EVP_DigestSignFinal(self.ctx, sig.as_mut_ptr(), &mut len) != 1 {
                return Err(CryptoError::Failure);
            }
            sig.truncate(len);
            Ok(sig)
        }
    }
}

impl Drop for FipsSigner {
    fn drop(&mut self) {
        // SAFETY: both pointers are owned by `self` and freed exactly once here; the free
        // functions accept null. EVP_PKEY_free clears the private key.
        unsafe {
            sys::EVP_MD_CTX_free(self.ctx);
            sys::EVP_PKEY_free(self.pkey);
        }
    }
}

/// Runs `f` and reports whether the module's service indicator counted an approved service
/// during it (on this thread).
///
/// ```
/// # #[cfg(feature = "fips")] {
/// let (_, approved) = envcrypt::crypto::service_indicator(|| ());
/// assert!(!approved); // nothing ran
/// # }
/// ```
pub fn service_indicator<T>(f: impl FnOnce() -> T) -> (T, bool) {
    // SAFETY: the indicator functions read a thread-local counter; no arguments.
    let before = unsafe { sys::FIPS_service_indicator_before_call() };
    let out = f();
    // SAFETY: as above.
    let after = unsafe { sys::FIPS_service_indicator_after_call() };
    (out, before != after)
}
