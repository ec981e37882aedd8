//! Keyrings: raw AES, raw RSA (PEM), and several combined. Shareable across threads.

use std::ffi::c_char;
use std::sync::Arc;

use envcrypt::crypto::RsaPadding;
use envcrypt::keyring::{Keyring, MultiKeyring, RawAesKeyring, RawRsaKeyring};

use crate::error::{code, envcrypt_result, ENVCRYPT_INVALID_ARGUMENT, ENVCRYPT_NULL_PARAMETER};
use crate::handle::{borrow, bytes, free, give, non_null, run, text};

/// A keyring. Thread-safe: one keyring may serve several clients on several threads.
pub struct envcrypt_keyring {
    pub(crate) inner: Arc<dyn Keyring>,
}

/// RSA padding for `envcrypt_keyring_raw_rsa_new`.
pub type envcrypt_rsa_padding = u32;
/// OAEP with SHA-1.
pub const ENVCRYPT_RSA_OAEP_SHA1: envcrypt_rsa_padding = 1;
/// OAEP with SHA-256 (recommended).
pub const ENVCRYPT_RSA_OAEP_SHA256: envcrypt_rsa_padding = 2;
/// OAEP with SHA-384.
pub const ENVCRYPT_RSA_OAEP_SHA384: envcrypt_rsa_padding = 3;
/// OAEP with SHA-512.
pub const ENVCRYPT_RSA_OAEP_SHA512: envcrypt_rsa_padding = 4;
/// PKCS#1 v1.5 (legacy: decryption is exposed to padding-oracle attacks).
pub const ENVCRYPT_RSA_PKCS1: envcrypt_rsa_padding = 5;

/// A raw AES keyring: `wrapping_key` holds 16, 24 or 32 bytes (copied; the copy is wiped
/// when the keyring is freed). EDKs carry `key_namespace` / `key_name`.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_keyring_raw_aes_new(
    key_namespace: *const c_char,
    key_name: *const c_char,
    wrapping_key: *const u8,
    wrapping_key_len: usize,
    out: *mut *mut envcrypt_keyring,
) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null(), wrapping_key.is_null()])?;
        let (ns, name) = unsafe { (text(key_namespace)?, text(key_name)?) };
        let key = unsafe { bytes(wrapping_key, wrapping_key_len)? };
        let keyring = RawAesKeyring::new(ns, name, key).map_err(|_| ENVCRYPT_INVALID_ARGUMENT)?;
        unsafe {
            give(
                out,
                envcrypt_keyring {
                    inner: Arc::new(keyring),
                },
            )
        };
        Ok(())
    })
}

/// A raw RSA keyring from a PEM key: a public key (SPKI) wraps only, a private key (PKCS#8)
/// wraps and unwraps.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_keyring_raw_rsa_new(
    key_namespace: *const c_char,
    key_name: *const c_char,
    padding: envcrypt_rsa_padding,
    pem: *const c_char,
    out: *mut *mut envcrypt_keyring,
) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null()])?;
        let (ns, name, pem) = unsafe { (text(key_namespace)?, text(key_name)?, text(pem)?) };
        let padding = match padding {
            ENVCRYPT_RSA_OAEP_SHA1 => RsaPadding::OaepSha1,
            ENVCRYPT_RSA_OAEP_SHA256 => RsaPadding::OaepSha256,
            ENVCRYPT_RSA_OAEP_SHA384 => RsaPadding::OaepSha384,
            ENVCRYPT_RSA_OAEP_SHA512 => RsaPadding::OaepSha512,
            ENVCRYPT_RSA_PKCS1 => RsaPadding::Pkcs1v15,
            _ => return Err(ENVCRYPT_INVALID_ARGUMENT),
        };
        let keyring = RawRsaKeyring::from_pem(ns, name, padding, pem)
            .map_err(|e| code(&envcrypt::Error::Keyring(e)))?;
        unsafe {
            give(
                out,
                envcrypt_keyring {
                    inner: Arc::new(keyring),
                },
            )
        };
        Ok(())
    })
}

/// Several keyrings as one: on encrypt `generator` makes the data key and each of the
/// `children_len` keyrings at `children` also wraps it; on decrypt each is tried in turn.
/// The keyrings are shared, not consumed: free them as usual.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_keyring_multi_new(
    generator: *const envcrypt_keyring,
    children: *const *const envcrypt_keyring,
    children_len: usize,
    out: *mut *mut envcrypt_keyring,
) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null()])?;
        let generator = Arc::clone(&unsafe { borrow(generator)? }.inner);
        let mut others = Vec::with_capacity(children_len);
        if children_len > 0 {
            non_null(&[children.is_null()])?;
            // SAFETY: the caller gives `children_len` pointers at `children`.
            let list = unsafe { std::slice::from_raw_parts(children, children_len) };
            for &child in list {
                let child = unsafe { borrow(child) }.map_err(|_| ENVCRYPT_NULL_PARAMETER)?;
                others.push(Arc::clone(&child.inner));
            }
        }
        let multi = MultiKeyring::from_arcs(Some(generator), others);
        unsafe {
            give(
                out,
                envcrypt_keyring {
                    inner: Arc::new(multi),
                },
            )
        };
        Ok(())
    })
}

/// Frees a keyring (NULL: nothing). Clients built over it keep their own reference.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_keyring_free(keyring: *mut envcrypt_keyring) {
    crate::panic::guard(|| {
        unsafe { free(keyring) };
        crate::error::ENVCRYPT_OK
    });
}
