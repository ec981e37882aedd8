//! Handles: Rust values boxed for C, and the checks on the pointers C hands back.

use std::ffi::{c_char, CStr};

use crate::error::{envcrypt_result, ENVCRYPT_INVALID_UTF8, ENVCRYPT_NULL_PARAMETER};

/// Hands `value` to C through `out`.
pub(crate) unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller checked `out` is not NULL.
    unsafe { *out = Box::into_raw(Box::new(value)) };
}

/// Takes back and drops a handle given by [`give`]; NULL does nothing.
pub(crate) unsafe fn free<T>(handle: *mut T) {
    if !handle.is_null() {
        // SAFETY: a non-NULL handle came from `give` and is freed once (the C contract).
        drop(unsafe { Box::from_raw(handle) });
    }
}

/// A shared reference to a handle's value.
pub(crate) unsafe fn borrow<'a, T>(handle: *const T) -> Result<&'a T, envcrypt_result> {
    // SAFETY: a non-NULL handle points at a live value given by `give`.
    unsafe { handle.as_ref() }.ok_or(ENVCRYPT_NULL_PARAMETER)
}

/// An exclusive reference to a handle's value.
pub(crate) unsafe fn borrow_mut<'a, T>(handle: *mut T) -> Result<&'a mut T, envcrypt_result> {
    // SAFETY: as `borrow`; the C contract gives one thread at a time a session.
    unsafe { handle.as_mut() }.ok_or(ENVCRYPT_NULL_PARAMETER)
}

/// A NUL-terminated UTF-8 string.
pub(crate) unsafe fn text<'a>(s: *const c_char) -> Result<&'a str, envcrypt_result> {
    if s.is_null() {
        return Err(ENVCRYPT_NULL_PARAMETER);
    }
    // SAFETY: a non-NULL string is NUL-terminated (the C contract).
    unsafe { CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| ENVCRYPT_INVALID_UTF8)
}

/// `len` bytes at `ptr` (NULL allowed when `len` is 0).
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], envcrypt_result> {
    match (ptr.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(ENVCRYPT_NULL_PARAMETER),
        // SAFETY: the caller gives `len` readable bytes at `ptr`.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// `len` writable bytes at `ptr` (NULL allowed when `len` is 0).
pub(crate) unsafe fn bytes_mut<'a>(
    ptr: *mut u8,
    len: usize,
) -> Result<&'a mut [u8], envcrypt_result> {
    match (ptr.is_null(), len) {
        (_, 0) => Ok(&mut []),
        (true, _) => Err(ENVCRYPT_NULL_PARAMETER),
        // SAFETY: the caller gives `len` writable bytes at `ptr`.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) }),
    }
}

/// Fails with `ENVCRYPT_NULL_PARAMETER` if any pointer is NULL.
pub(crate) fn non_null(ptrs: &[bool]) -> Result<(), envcrypt_result> {
    match ptrs.iter().any(|&null| null) {
        true => Err(ENVCRYPT_NULL_PARAMETER),
        false => Ok(()),
    }
}

/// Runs `f` behind the panic boundary, turning `Err(code)` into that code.
pub(crate) fn run(f: impl FnOnce() -> Result<(), envcrypt_result>) -> envcrypt_result {
    crate::panic::guard(|| match f() {
        Ok(()) => crate::error::ENVCRYPT_OK,
        Err(code) => code,
    })
}
