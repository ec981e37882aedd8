//! Clients, encryption contexts and the one-shot calls.

use std::ffi::c_char;

use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};
use zeroize::Zeroizing;

use crate::error::{code, envcrypt_result, ENVCRYPT_BUFFER_TOO_SMALL, ENVCRYPT_INVALID_ARGUMENT};
use crate::handle::{borrow, borrow_mut, bytes, bytes_mut, free, give, non_null, run, text};
use crate::keyring::envcrypt_keyring;

/// Longest DER ECDSA P-384 signature: what a signed message may need beyond a first try.
const MAX_SIGNATURE_GROWTH: usize = 104;

/// A client: a keyring plus settings. Thread-safe: share it between threads.
pub struct envcrypt_client {
    pub(crate) client: Client,
}

/// An encryption context (string pairs, stored unencrypted in the header: never PHI).
/// Thread-safe once built (adding pairs needs exclusive use).
pub struct envcrypt_context {
    pub(crate) context: EncryptionContext,
}

/// A client with default settings over `keyring`: suite 0x0578 (signed), 64 KiB frames,
/// committed messages only on decrypt.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_client_new(
    keyring: *const envcrypt_keyring,
    out: *mut *mut envcrypt_client,
) -> envcrypt_result {
    unsafe { envcrypt_client_new_with(keyring, 0, 0, out) }
}

/// A client with a suite (`0x0578`, `0x0478`; 0 = default) and a frame length (bytes;
/// 0 = 65536) for encryption.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_client_new_with(
    keyring: *const envcrypt_keyring,
    suite_id: u16,
    frame_length: u32,
    out: *mut *mut envcrypt_client,
) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null()])?;
        let keyring = unsafe { borrow(keyring)? };
        let mut builder = Client::builder().keyring(keyring.inner.clone());
        if suite_id != 0 {
            let suite = AlgorithmSuite::from_id(suite_id).ok_or(ENVCRYPT_INVALID_ARGUMENT)?;
            builder = builder.suite(suite);
        }
        if frame_length != 0 {
            builder = builder.frame_length(frame_length);
        }
        let client = builder.build().map_err(|e| code(&e))?;
        unsafe { give(out, envcrypt_client { client }) };
        Ok(())
    })
}

/// Frees a client (NULL: nothing).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_client_free(client: *mut envcrypt_client) {
    crate::panic::guard(|| {
        unsafe { free(client) };
        crate::error::ENVCRYPT_OK
    });
}

/// An empty encryption context.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_context_new(out: *mut *mut envcrypt_context) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null()])?;
        let context = EncryptionContext::new();
        unsafe { give(out, envcrypt_context { context }) };
        Ok(())
    })
}

/// Adds a pair; a key given twice is `ENVCRYPT_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_context_add(
    ctx: *mut envcrypt_context,
    key: *const c_char,
    value: *const c_char,
) -> envcrypt_result {
    run(|| {
        let ctx = unsafe { borrow_mut(ctx)? };
        let (key, value) = unsafe { (text(key)?, text(value)?) };
        if key.is_empty() || ctx.context.contains_key(key) {
            return Err(ENVCRYPT_INVALID_ARGUMENT);
        }
        ctx.context.insert(key, value);
        Ok(())
    })
}

/// Frees a context (NULL: nothing).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_context_free(ctx: *mut envcrypt_context) {
    crate::panic::guard(|| {
        unsafe { free(ctx) };
        crate::error::ENVCRYPT_OK
    });
}

/// The context of `ctx`, or an empty one for NULL.
pub(crate) unsafe fn context_or_empty(ctx: *const envcrypt_context) -> EncryptionContext {
    // SAFETY: a non-NULL context is a live handle.
    unsafe { ctx.as_ref() }.map_or_else(EncryptionContext::new, |c| c.context.clone())
}

/// Decrypt options that require the pairs of `expected` (NULL: no check).
pub(crate) unsafe fn decrypt_options(expected: *const envcrypt_context) -> DecryptOptions {
    DecryptOptions::default().with_expected_context(unsafe { context_or_empty(expected) })
}

/// Encrypts `in_len` bytes at `in` into one message at `out` (capacity `out_cap`). On
/// success `*out_len` = the message's length. If `out` is too small:
/// `ENVCRYPT_BUFFER_TOO_SMALL`, nothing written to `out`, and `*out_len` = a size that
/// always suffices for this input with this client (signed suites count the longest
/// signature). `ctx` may be NULL (empty context).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_encrypt(
    client: *const envcrypt_client,
    ctx: *const envcrypt_context,
    r#in: *const u8,
    in_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> envcrypt_result {
    run(|| {
        non_null(&[out_len.is_null()])?;
        let client = unsafe { borrow(client)? };
        let input = unsafe { bytes(r#in, in_len)? };
        let out = unsafe { bytes_mut(out, out_cap)? };
        let context = unsafe { context_or_empty(ctx) };
        let message = client
            .client
            .encrypt(input, &context)
            .map_err(|e| code(&e))?;
        if message.len() > out.len() {
            let signed = client.client.suite().signature().is_some();
            let bound = message.len() + if signed { MAX_SIGNATURE_GROWTH } else { 0 };
            unsafe { *out_len = bound };
            return Err(ENVCRYPT_BUFFER_TOO_SMALL);
        }
        out[..message.len()].copy_from_slice(&message);
        unsafe { *out_len = message.len() };
        Ok(())
    })
}

/// Decrypts the whole message at `in` into `out`: written only if every byte verified.
/// `*out_len` = the plaintext's length on success, and on `ENVCRYPT_BUFFER_TOO_SMALL`
/// (then nothing is written to `out`). `expected` may be NULL (no context check); its pairs
/// must be in the message with those values.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_decrypt(
    client: *const envcrypt_client,
    expected: *const envcrypt_context,
    r#in: *const u8,
    in_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> envcrypt_result {
    run(|| {
        non_null(&[out_len.is_null()])?;
        let client = unsafe { borrow(client)? };
        let input = unsafe { bytes(r#in, in_len)? };
        let out = unsafe { bytes_mut(out, out_cap)? };
        let options = unsafe { decrypt_options(expected) };
        let decrypted = client
            .client
            .decrypt(input, &options)
            .map_err(|e| code(&e))?;
        let plaintext = Zeroizing::new(decrypted.plaintext);
        unsafe { *out_len = plaintext.len() };
        if plaintext.len() > out.len() {
            return Err(ENVCRYPT_BUFFER_TOO_SMALL);
        }
        out[..plaintext.len()].copy_from_slice(&plaintext);
        Ok(())
    })
}
