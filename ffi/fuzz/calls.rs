//! Safe wrappers over the C API calls of the `c_api` fuzz target, each checking what the
//! header promises of the call itself (documented codes, messages, NULL handling, session
//! progress); every `unsafe` block of the target is here.

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

use envcrypt_ffi::client::*;
use envcrypt_ffi::error::*;
use envcrypt_ffi::inspect::envcrypt_inspect_header;
use envcrypt_ffi::keyring::*;
use envcrypt_ffi::session::*;

pub(crate) const CODES: [u32; 16] = [
    0, 100, 101, 102, 103, 104, 105, 1000, 2000, 3000, 4000, 5000, 5100, 6000, 7000, 9000,
];
pub(crate) const KEY: [u8; 32] = [0x24; 32];

/// NULL for an empty buffer, else its start.
pub(crate) fn at(b: &[u8]) -> *const u8 {
    b.first().map_or(null(), |b| b)
}

pub(crate) fn at_mut(b: &mut [u8]) -> *mut u8 {
    b.first_mut().map_or(null_mut(), |b| b)
}

/// Checks a code: documented, and not a bug's.
pub(crate) fn checked(code: envcrypt_result, cap: usize) -> envcrypt_result {
    let bug = code == ENVCRYPT_PANIC || code == ENVCRYPT_INTERNAL;
    assert!(CODES.contains(&code) && !bug && message(code, cap) != "unknown result code");
    code
}

/// The message of `code`, also read into `cap` bytes: cut to fit and NUL-terminated.
pub(crate) fn message(code: envcrypt_result, cap: usize) -> String {
    let (mut buf, mut whole) = (vec![0x7fu8; cap], [0u8; 256]);
    // SAFETY: `cap` writable bytes at `buf` (NULL when 0), 256 at `whole`.
    let (full, again) = unsafe {
        let full = envcrypt_error_message(code, at_mut(&mut buf).cast::<c_char>(), cap);
        (
            full,
            envcrypt_error_message(code, whole.as_mut_ptr().cast(), 256),
        )
    };
    let text = CStr::from_bytes_until_nul(&whole)
        .expect("NUL")
        .to_str()
        .expect("UTF-8");
    assert!(full == again && full == text.len());
    if let Some(n) = cap.checked_sub(1).map(|c| c.min(full)) {
        assert_eq!((&buf[..n], buf[n]), (&whole[..n], 0));
    }
    text.to_owned()
}

pub(crate) type Handles = (*const envcrypt_client, *const envcrypt_context);

/// A client over the fuzz keyring (freed at once: the client keeps it; suite 0: the
/// default client), and a context `purpose` = `value` (NULL without one, no pair for "").
pub(crate) fn handles(suite: u16, frame_length: u32, value: Option<&CStr>) -> Handles {
    let (mut keyring, mut client, mut ctx) = (null_mut(), null_mut(), null_mut());
    let (ns, name) = (c"fuzz-ns".as_ptr(), c"fuzz-key".as_ptr());
    // SAFETY: NUL-terminated strings, 32 key bytes, live handles, writable out pointers.
    unsafe {
        assert_eq!(
            envcrypt_keyring_raw_aes_new(ns, name, KEY.as_ptr(), 32, &mut keyring),
            0
        );
        let r = match suite {
            0 => envcrypt_client_new(keyring, &mut client),
            _ => envcrypt_client_new_with(keyring, suite, frame_length, &mut client),
        };
        envcrypt_keyring_free(keyring);
        assert_eq!(r, 0);
        if let Some(value) = value {
            assert_eq!(envcrypt_context_new(&mut ctx), 0);
            let key = c"purpose".as_ptr();
            if !value.is_empty() {
                assert_eq!(envcrypt_context_add(ctx, key, value.as_ptr()), 0);
                assert_eq!(envcrypt_context_add(ctx, key, value.as_ptr()), 105);
            }
        }
    }
    (client, ctx)
}

pub(crate) fn free((client, ctx): Handles) {
    // SAFETY: made by `handles` (the context may be NULL), freed once.
    unsafe {
        (
            envcrypt_context_free(ctx.cast_mut()),
            envcrypt_client_free(client.cast_mut()),
        )
    };
}

/// `envcrypt_encrypt` or `envcrypt_decrypt` (same shape).
pub(crate) type OneShot = unsafe extern "C" fn(
    *const envcrypt_client,
    *const envcrypt_context,
    *const u8,
    usize,
    *mut u8,
    usize,
    *mut usize,
) -> envcrypt_result;

/// `f` of `input` into `cap` bytes: the code, the length and the output.
pub(crate) fn one_shot(
    f: OneShot,
    (client, ctx): Handles,
    input: &[u8],
    cap: usize,
) -> (u32, usize, Vec<u8>) {
    let (mut out, mut len) = (vec![0xa5u8; cap], usize::MAX);
    // SAFETY: live handles (the context may be NULL), `input.len()` readable bytes, `cap`
    // writable ones (NULL when 0).
    let r = unsafe {
        f(
            client,
            ctx,
            at(input),
            input.len(),
            at_mut(&mut out),
            cap,
            &mut len,
        )
    };
    (checked(r, cap % 7), len, out)
}

/// The session over `input` in chunks of `sizes` into `cap` bytes at a time: its last
/// code, the plaintext it released, and whether it is done.
pub(crate) fn session(
    (client, ctx): Handles,
    input: &[u8],
    sizes: [usize; 3],
    cap: usize,
) -> (u32, Vec<u8>, bool) {
    let (mut s, mut out, mut plain, mut rest) = (null_mut(), vec![0u8; cap], vec![], input);
    let (mut code, mut calls, mut done) = (ENVCRYPT_OK, 0, false);
    // SAFETY: live handles (the context may be NULL), a writable out pointer.
    let r = unsafe { envcrypt_session_new_decrypt(client, ctx, &mut s) };
    assert_eq!(r, ENVCRYPT_OK);
    while code == ENVCRYPT_OK && !done {
        let (n, mut written, mut read) = (sizes[calls % 3].min(rest.len()), 0, 0);
        let (o, i) = (out.as_mut_ptr(), rest.as_ptr());
        // SAFETY: a live session; `cap` writable bytes at `o`, `n` readable at `i`.
        let r = unsafe {
            match n {
                0 => envcrypt_session_finish(s, o, cap, &mut written),
                _ => envcrypt_session_process(s, o, cap, &mut written, i, n, &mut read),
            }
        };
        code = checked(r, 0);
        calls += 1;
        assert!(
            written <= cap && read <= n && calls <= 2 * input.len() + 2,
            "no progress"
        );
        plain.extend_from_slice(&out[..written]);
        rest = &rest[read..];
        // SAFETY: a live session.
        done = unsafe { envcrypt_session_is_done(s) };
        assert!(!done || n == 0, "done before the input ended");
    }
    let (mut w, mut r) = (0, 0);
    // SAFETY: a live session, empty input (NULL, 0) and output.
    let again = unsafe { envcrypt_session_process(s, null_mut(), 0, &mut w, null(), 0, &mut r) };
    // SAFETY: the live session, freed once.
    unsafe { envcrypt_session_free(s) };
    assert!(
        code == 0 && !done || again == ENVCRYPT_SESSION_FINISHED,
        "a finished session took input"
    );
    (code, plain, done)
}

/// NULL pointers and zero lengths.
pub(crate) fn nulls(code: u32) {
    let (mut len, mut k) = (0, null_mut());
    let known = CODES.contains(&code);
    assert!(known || message(code, code as usize % 300) == "unknown result code");
    // SAFETY: every pointer is NULL or a writable local; lengths of NULL buffers are 0.
    let codes = unsafe {
        [
            envcrypt_decrypt(null(), null(), null(), 0, null_mut(), 0, &mut len),
            envcrypt_decrypt(null(), null(), null(), 0, null_mut(), 0, null_mut()),
            envcrypt_inspect_header(null(), 0, null_mut(), 0, null_mut()),
            envcrypt_inspect_header(null(), 0, null_mut(), 0, &mut len),
            envcrypt_session_new_decrypt(null(), null(), null_mut()),
            envcrypt_session_process(null_mut(), null_mut(), 0, &mut len, null(), 0, &mut len),
            envcrypt_session_finish(null_mut(), null_mut(), 0, &mut len),
            envcrypt_keyring_raw_aes_new(null(), null(), KEY.as_ptr(), 32, &mut k),
            envcrypt_keyring_raw_aes_new(c"n".as_ptr(), c"k".as_ptr(), KEY.as_ptr(), 7, &mut k),
            envcrypt_client_new(null(), null_mut()),
            envcrypt_context_add(null_mut(), null(), null()),
        ]
    };
    assert_eq!(
        codes,
        [100, 100, 100, 2000, 100, 100, 100, 100, 105, 100, 100]
    );
    // SAFETY: NULL is allowed.
    assert!(!unsafe { envcrypt_session_is_done(null()) });
    assert!(k.is_null() && len == 0);
}

/// `envcrypt_inspect_header` into `cap` bytes (filled with 0x55 first): the code, the
/// length and the output.
pub(crate) fn inspect_header(input: &[u8], cap: usize) -> (u32, usize, Vec<u8>) {
    let (mut out, mut len) = (vec![0x55u8; cap], usize::MAX);
    let out_ptr = at_mut(&mut out).cast();
    // SAFETY: `input.len()` readable bytes, `cap` writable bytes (NULL when 0).
    let r = unsafe { envcrypt_inspect_header(at(input), input.len(), out_ptr, cap, &mut len) };
    (r, len, out)
}
