//! Key rotation: the library's `Rewrap` on files (a fresh data key, one verified pass).

use std::ffi::c_char;
use std::path::Path;

use envcrypt::file::FileOptions;
use envcrypt::rewrap::Rewrap;

use crate::client::envcrypt_client;
use crate::error::{code, envcrypt_result};
use crate::handle::{borrow, run, text};

/// Rewraps the message file `in_path` into the new file `out_path`: `from` opens it, `to`
/// wraps a fresh data key under which every frame is sealed again (new message id; the
/// stored context, frame length and suite are kept). The output appears only if the whole
/// input verified; an existing output is refused.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_rewrap_file(
    from: *const envcrypt_client,
    to: *const envcrypt_client,
    in_path: *const c_char,
    out_path: *const c_char,
) -> envcrypt_result {
    run(|| {
        let (from, to) = unsafe { (&borrow(from)?.client, &borrow(to)?.client) };
        let (input, output) = unsafe { (text(in_path)?, text(out_path)?) };
        Rewrap::new(from, to)
            .file(Path::new(input), Path::new(output), &FileOptions::default())
            .map(drop)
            .map_err(|e| code(&e))
    })
}

/// Rewraps the message file at `path` in place: the new message replaces it atomically
/// once the whole input verified (a crash leaves the old or the new message, whole).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_rewrap_file_in_place(
    from: *const envcrypt_client,
    to: *const envcrypt_client,
    path: *const c_char,
) -> envcrypt_result {
    run(|| {
        let (from, to) = unsafe { (&borrow(from)?.client, &borrow(to)?.client) };
        let path = unsafe { text(path)? };
        Rewrap::new(from, to)
            .file_in_place(Path::new(path), &FileOptions::default())
            .map(drop)
            .map_err(|e| code(&e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ENVCRYPT_AUTHENTICATION, ENVCRYPT_NULL_PARAMETER, ENVCRYPT_OK};
    use envcrypt::keyring::RawAesKeyring;
    use envcrypt::{Client, DecryptOptions, EncryptionContext};
    use std::ffi::CString;

    fn client(name: &str, key: u8) -> envcrypt_client {
        envcrypt_client {
            client: Client::new(RawAesKeyring::new("site", name, &[key; 32]).unwrap()),
        }
    }

    #[test]
    fn files_move_to_the_new_key_and_a_forged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (client("k2025", 1), client("k2026", 2));
        let path = dir.path().join("a.enc");
        let m = old
            .client
            .encrypt(b"scan", &EncryptionContext::new())
            .unwrap();
        std::fs::write(&path, &m).unwrap();
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        let c_out = CString::new(dir.path().join("b.enc").to_str().unwrap()).unwrap();
        let r = unsafe { envcrypt_rewrap_file(&old, &new, c_path.as_ptr(), c_out.as_ptr()) };
        assert_eq!(r, ENVCRYPT_OK);
        let b = std::fs::read(dir.path().join("b.enc")).unwrap();
        assert_eq!(
            new.client
                .decrypt(&b, &DecryptOptions::default())
                .unwrap()
                .plaintext,
            b"scan"
        );
        // In place; then the old key no longer opens it, and a second rewrap from it fails.
        let r = unsafe { envcrypt_rewrap_file_in_place(&old, &new, c_path.as_ptr()) };
        assert_eq!(r, ENVCRYPT_OK);
        let r = unsafe { envcrypt_rewrap_file_in_place(&old, &new, c_path.as_ptr()) };
        assert_eq!(r, ENVCRYPT_AUTHENTICATION);
        let r = unsafe { envcrypt_rewrap_file_in_place(std::ptr::null(), &new, c_path.as_ptr()) };
        assert_eq!(r, ENVCRYPT_NULL_PARAMETER);
    }
}
