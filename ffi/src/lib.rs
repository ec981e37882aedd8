//! The C API of envcrypt: `libenvcrypt.so` / `libenvcrypt.a` and `include/envcrypt.h`.
//!
//! One file per concern: [`error`] (stable result codes from `Error::kind()`), [`panic`]
//! (the boundary every export stands behind), [`handle`] (owned and borrowed pointers),
//! [`keyring`], [`client`] (clients, contexts, one-shot calls), [`session`] (streaming),
//! [`file`] (the atomic file API), [`rewrap`] (key rotation), [`inspect`] (a header as
//! JSON). The sessions drive the library's adapters; nothing here
//! frames bytes.
//!
//! Rules every export keeps: it runs behind the panic boundary (a panic is
//! `ENVCRYPT_PANIC`, never an unwind into C); every pointer is checked for NULL; out
//! parameters are written only on success (and the needed size on
//! `ENVCRYPT_BUFFER_TOO_SMALL`); `_free(NULL)` does nothing; no global mutable state.
//! Keyrings, clients and contexts may be shared between threads once built; a session is
//! used by one thread at a time. Secrets are wiped when their handles are freed.

#![allow(non_camel_case_types)]
// The exports take raw pointers from C; each checks them before use.
#![allow(clippy::missing_safety_doc)]

pub mod client;
pub mod error;
pub mod file;
mod handle;
pub mod inspect;
pub mod keyring;
pub mod panic;
pub mod rewrap;
pub mod session;

use std::ffi::c_char;

/// The library's version, a NUL-terminated static string (e.g. "0.1.0").
#[no_mangle]
pub extern "C" fn envcrypt_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
