//! A message header as JSON, read without any key (nothing is decrypted or verified).

use std::ffi::c_char;

use base64::Engine as _;
use envcrypt::format::{parse_header, ContentType, HeaderLimits};
use envcrypt::FormatError;

use crate::error::{code, envcrypt_result, ENVCRYPT_BUFFER_TOO_SMALL};
use crate::handle::{bytes, non_null, run};

/// Writes the header at the start of `in` as one NUL-terminated JSON object into `out`:
/// `version`, `suite_id` ("0x0578"), `message_id` (hex), `encryption_context`,
/// `encrypted_data_keys` (`provider_id`, `provider_info` base64, `ciphertext_length`),
/// `content_type`, `frame_length`, `header_length`. Unauthenticated: anyone can write a
/// header. `*out_len` = the JSON's length without the NUL, on success and on
/// `ENVCRYPT_BUFFER_TOO_SMALL` (then `out` needs one byte more). A header cut short is
/// `ENVCRYPT_FORMAT`.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_inspect_header(
    r#in: *const u8,
    in_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> envcrypt_result {
    run(|| {
        non_null(&[out_len.is_null()])?;
        let input = unsafe { bytes(r#in, in_len)? };
        let limits = HeaderLimits::new(u16::MAX, u32::MAX);
        let parsed = match parse_header(input, &limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Err(code(&FormatError::Truncated.into())),
            Err(e) => return Err(code(&e.into())),
        };
        let h = &parsed.header;
        let b64 = base64::engine::general_purpose::STANDARD;
        let edks: Vec<_> = h
            .encrypted_data_keys
            .iter()
            .map(|e| {
                serde_json::json!({
                    "provider_id": e.provider_id,
                    "provider_info": b64.encode(&e.provider_info),
                    "ciphertext_length": e.ciphertext.len(),
                })
            })
            .collect();
        let context: serde_json::Map<String, serde_json::Value> = h
            .encryption_context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        let json = serde_json::json!({
            "version": h.version as u8,
            "suite_id": format!("{:#06x}", h.suite.id()),
            "message_id": h.message_id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "encryption_context": context,
            "encrypted_data_keys": edks,
            "content_type": match h.content_type {
                ContentType::Framed => "framed",
                ContentType::NonFramed => "non-framed",
                _ => "unknown",
            },
            "frame_length": h.frame_length,
            "header_length": parsed.bytes().len(),
        })
        .to_string();
        unsafe { *out_len = json.len() };
        if out.is_null() || out_cap <= json.len() {
            return Err(ENVCRYPT_BUFFER_TOO_SMALL);
        }
        // SAFETY: `out` has `out_cap` > json.len() writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(json.as_ptr(), out.cast::<u8>(), json.len());
            *out.add(json.len()) = 0;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ENVCRYPT_FORMAT, ENVCRYPT_OK};
    use envcrypt::keyring::RawAesKeyring;
    use envcrypt::{Client, EncryptionContext};

    #[test]
    fn the_header_as_json_and_its_errors() {
        let c = Client::new(RawAesKeyring::new("hosp", "k", &[1; 32]).unwrap());
        let m = c
            .encrypt(b"x", &EncryptionContext::from_pairs([("dept", "ct")]))
            .unwrap();
        let (mut out, mut len) = (vec![0 as c_char; 4096], 0usize);
        let r = unsafe {
            envcrypt_inspect_header(m.as_ptr(), m.len(), out.as_mut_ptr(), 4096, &mut len)
        };
        assert_eq!(r, ENVCRYPT_OK);
        let text: String = out[..len].iter().map(|&b| b as u8 as char).collect();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["suite_id"], "0x0578");
        assert_eq!(v["encryption_context"]["dept"], "ct");
        assert_eq!(v["encrypted_data_keys"][0]["provider_id"], "hosp");
        assert_eq!(out[len], 0);
        // Too small: the length is reported, nothing written.
        let mut small = vec![0x55 as c_char; 10];
        let mut need = 0usize;
        let r = unsafe {
            envcrypt_inspect_header(m.as_ptr(), m.len(), small.as_mut_ptr(), 10, &mut need)
        };
        assert_eq!((r, need), (ENVCRYPT_BUFFER_TOO_SMALL, len));
        assert!(small.iter().all(|&b| b == 0x55));
        // Cut short, or not a message.
        let r =
            unsafe { envcrypt_inspect_header(m.as_ptr(), 20, out.as_mut_ptr(), 4096, &mut len) };
        assert_eq!(r, ENVCRYPT_FORMAT);
        let r = unsafe {
            envcrypt_inspect_header(b"hello".as_ptr(), 5, out.as_mut_ptr(), 4096, &mut len)
        };
        assert_eq!(r, ENVCRYPT_FORMAT);
    }
}
