//! Result codes: stable, never reused, in ranges by the library's [`ErrorKind`].
//!
//! `ENVCRYPT_OK` is 0. Codes of the C API's own checks are 1xx; a library error is
//! `kind base + 0` (its [`ErrorKind`], from `Error::kind()`), so a new error variant of the
//! library maps to an existing code.

use std::ffi::c_char;

use envcrypt::{Error, ErrorKind};

/// A result code (see `envcrypt_error_message`).
pub type envcrypt_result = u32;

/// Success.
pub const ENVCRYPT_OK: envcrypt_result = 0;
/// A required pointer argument was NULL.
pub const ENVCRYPT_NULL_PARAMETER: envcrypt_result = 100;
/// The output buffer is too small; the needed size was written to the length out parameter.
pub const ENVCRYPT_BUFFER_TOO_SMALL: envcrypt_result = 101;
/// A string argument is not valid UTF-8.
pub const ENVCRYPT_INVALID_UTF8: envcrypt_result = 102;
/// A Rust panic was caught at the API boundary (a bug; the process is unharmed).
pub const ENVCRYPT_PANIC: envcrypt_result = 103;
/// The session already finished or failed: only `envcrypt_session_free` remains.
pub const ENVCRYPT_SESSION_FINISHED: envcrypt_result = 104;
/// An argument is out of range (a key of the wrong length, a context key given twice).
pub const ENVCRYPT_INVALID_ARGUMENT: envcrypt_result = 105;
/// The caller asked for something invalid (library: `ErrorKind::Usage`).
pub const ENVCRYPT_USAGE: envcrypt_result = 1000;
/// The input is not a well-formed message or breaks a limit (truncated, trailing bytes).
pub const ENVCRYPT_FORMAT: envcrypt_result = 2000;
/// A tag, the key commitment or the signature did not verify, or no key opens the message.
pub const ENVCRYPT_AUTHENTICATION: envcrypt_result = 3000;
/// A policy refused an authentic message or the request (context mismatch, v1 refused).
pub const ENVCRYPT_POLICY: envcrypt_result = 4000;
/// A key service or HSM could not be reached.
pub const ENVCRYPT_KEYRING_UNAVAILABLE: envcrypt_result = 5000;
/// A key service or HSM refused (access denied).
pub const ENVCRYPT_KEYRING_REFUSED: envcrypt_result = 5100;
/// Reading or writing failed.
pub const ENVCRYPT_IO: envcrypt_result = 6000;
/// The operation was cancelled.
pub const ENVCRYPT_CANCELLED: envcrypt_result = 7000;
/// A bug in envcrypt.
pub const ENVCRYPT_INTERNAL: envcrypt_result = 9000;

/// The code of a library error: its kind's.
pub(crate) fn code(e: &Error) -> envcrypt_result {
    match e.kind() {
        ErrorKind::Usage => ENVCRYPT_USAGE,
        ErrorKind::Format => ENVCRYPT_FORMAT,
        ErrorKind::Authentication => ENVCRYPT_AUTHENTICATION,
        ErrorKind::Policy => ENVCRYPT_POLICY,
        ErrorKind::KeyringUnavailable => ENVCRYPT_KEYRING_UNAVAILABLE,
        ErrorKind::KeyringRefused => ENVCRYPT_KEYRING_REFUSED,
        ErrorKind::Io => ENVCRYPT_IO,
        ErrorKind::Cancelled => ENVCRYPT_CANCELLED,
        // `ErrorKind` may grow; a kind this build does not know is a bug to report.
        _ => ENVCRYPT_INTERNAL,
    }
}

/// What a code means.
fn message(code: envcrypt_result) -> &'static str {
    match code {
        ENVCRYPT_OK => "success",
        ENVCRYPT_NULL_PARAMETER => "a required pointer argument was NULL",
        ENVCRYPT_BUFFER_TOO_SMALL => "the output buffer is too small",
        ENVCRYPT_INVALID_UTF8 => "a string argument is not valid UTF-8",
        ENVCRYPT_PANIC => "internal panic caught at the API boundary (please report)",
        ENVCRYPT_SESSION_FINISHED => "the session already finished or failed",
        ENVCRYPT_INVALID_ARGUMENT => "an argument is out of range",
        ENVCRYPT_USAGE => "invalid request (argument, configuration or API misuse)",
        ENVCRYPT_FORMAT => "malformed message (truncated, trailing bytes, or over a limit)",
        ENVCRYPT_AUTHENTICATION => "authentication failed (tampered, wrong key, or bad signature)",
        ENVCRYPT_POLICY => "refused by policy (context mismatch, version or suite not allowed)",
        ENVCRYPT_KEYRING_UNAVAILABLE => "a key service or HSM could not be reached",
        ENVCRYPT_KEYRING_REFUSED => "a key service or HSM refused the request",
        ENVCRYPT_IO => "I/O error",
        ENVCRYPT_CANCELLED => "cancelled",
        ENVCRYPT_INTERNAL => "internal error (please report)",
        _ => "unknown result code",
    }
}

/// Writes the NUL-terminated message of `code` into `buf` (truncated to fit `buf_len`,
/// always terminated when `buf_len > 0`) and returns its full length without the NUL.
/// `buf` may be NULL when `buf_len` is 0 (to ask for the length).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_error_message(
    code: envcrypt_result,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    let text = message(code).as_bytes();
    if !buf.is_null() && buf_len > 0 {
        let n = text.len().min(buf_len - 1);
        // SAFETY: the caller gives `buf_len` writable bytes at `buf`; n + 1 <= buf_len.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_and_message() {
        use envcrypt::{AuthenticationError, FormatError};
        assert_eq!(code(&FormatError::Truncated.into()), ENVCRYPT_FORMAT);
        assert_eq!(
            code(&AuthenticationError::Signature.into()),
            ENVCRYPT_AUTHENTICATION
        );
        assert_eq!(code(&Error::Cancelled), ENVCRYPT_CANCELLED);
        for c in [ENVCRYPT_FORMAT, ENVCRYPT_PANIC, ENVCRYPT_IO] {
            assert_ne!(message(c), "unknown result code");
        }
    }

    #[test]
    fn messages_are_truncated_and_terminated() {
        let mut buf = [0x7f as c_char; 8];
        let full = unsafe { envcrypt_error_message(ENVCRYPT_IO, buf.as_mut_ptr(), 4) };
        assert_eq!(full, "I/O error".len());
        assert_eq!(
            &buf[..4],
            &[b'I' as c_char, b'/' as c_char, b'O' as c_char, 0]
        );
        assert_eq!(
            unsafe { envcrypt_error_message(ENVCRYPT_IO, std::ptr::null_mut(), 0) },
            9
        );
    }
}
