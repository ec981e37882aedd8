//! The library's atomic file API: a temporary file beside the output, synced and renamed
//! into place only on success; an existing output is refused.

use std::ffi::c_char;
use std::path::Path;

use envcrypt::file::FileOptions;

use crate::client::{context_or_empty, decrypt_options, envcrypt_client, envcrypt_context};
use crate::error::{code, envcrypt_result};
use crate::handle::{borrow, run, text};

/// Encrypts the file `in_path` into the new file `out_path` (`ctx` NULL: empty context).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_encrypt_file(
    client: *const envcrypt_client,
    ctx: *const envcrypt_context,
    in_path: *const c_char,
    out_path: *const c_char,
) -> envcrypt_result {
    run(|| {
        let client = &unsafe { borrow(client)? }.client;
        let (input, output) = unsafe { (text(in_path)?, text(out_path)?) };
        let context = unsafe { context_or_empty(ctx) };
        client
            .encrypt_file(
                Path::new(input),
                Path::new(output),
                &context,
                &FileOptions::default(),
            )
            .map(drop)
            .map_err(|e| code(&e))
    })
}

/// Decrypts the file `in_path` into the new file `out_path`, which appears only if the
/// whole message verified (signature included). `expected` NULL: no context check.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_decrypt_file(
    client: *const envcrypt_client,
    expected: *const envcrypt_context,
    in_path: *const c_char,
    out_path: *const c_char,
) -> envcrypt_result {
    run(|| {
        let client = &unsafe { borrow(client)? }.client;
        let (input, output) = unsafe { (text(in_path)?, text(out_path)?) };
        let options = unsafe { decrypt_options(expected) };
        client
            .decrypt_file(
                Path::new(input),
                Path::new(output),
                &options,
                &FileOptions::default(),
            )
            .map(drop)
            .map_err(|e| code(&e))
    })
}
