//! The C API (`envcrypt-ffi`) on arbitrary or edited messages: `envcrypt_decrypt`, the
//! decrypting session, `envcrypt_inspect_header`, `envcrypt_error_message`; NULL pointers,
//! zero lengths, output buffers too small. A target of the fuzz crate (`fuzz/Cargo.toml`),
//! kept here because `unsafe` code lives only under `ffi/` (all of it in `calls.rs`).
//!
//! Input: a selector (mode: low two bits; sample: the rest), an options byte (expected
//! context, buffer sizes), a byte of session chunk sizes, then by mode: 0 the message as
//! is; 1 a sample's valid header, then the input; 2 a sample edited by the input (4-byte
//! `op, pos_hi, pos_lo, value`: xor, set, truncate, insert); 3 an unchanged sample.
//! Inputs under 3 bytes call with NULL pointers and zero lengths.
//!
//! Checked: no panic (none caught either: never `ENVCRYPT_PANIC`); codes documented, never
//! `ENVCRYPT_INTERNAL`, each with a NUL-terminated message truncated to fit; success only
//! for a sample (its context expected or none) with its plaintext, one-shot and session
//! agreeing; an error writes neither output nor length; `ENVCRYPT_BUFFER_TOO_SMALL`
//! reports the needed size and a retry with it succeeds; a session releases at most a
//! prefix of the sample's plaintext before failing, always makes progress, and refuses
//! input once failed or done; a header that parses is reported as JSON with its length.

#![no_main]

mod calls;

use std::ffi::CStr;
use std::sync::OnceLock;

use calls::*;
use envcrypt::format::{parse_header, HeaderLimits};
use envcrypt_ffi::client::{envcrypt_decrypt, envcrypt_encrypt};
use envcrypt_ffi::error::*;
use libfuzzer_sys::fuzz_target;

struct Sample {
    message: Vec<u8>,
    plaintext: Vec<u8>,
    header_len: usize,
}

fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut samples = Vec::new();
        for suite in [0x0478u16, 0x0578] {
            for (frame_length, len) in [(16u32, 40usize), (1, 3), (100, 0), (7, 7)] {
                let plaintext: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
                let h = handles(suite, frame_length, Some(c"fuzz"));
                let (r, need, _) = one_shot(envcrypt_encrypt, h, &plaintext, 0);
                assert_eq!(r, ENVCRYPT_BUFFER_TOO_SMALL);
                let (r, len, mut message) = one_shot(envcrypt_encrypt, h, &plaintext, need);
                assert_eq!(r, ENVCRYPT_OK);
                message.truncate(len);
                free(h);
                let parsed = parse_header(&message, &HeaderLimits::new(1, u32::MAX));
                let header_len = parsed.expect("header").expect("complete").bytes().len();
                let sample = Sample {
                    message,
                    plaintext,
                    header_len,
                };
                samples.push(sample);
            }
        }
        samples
    })
}

fn edit(message: &[u8], instructions: &[u8]) -> Vec<u8> {
    let mut m = message.to_vec();
    for ins in instructions.chunks_exact(4) {
        let pos = usize::from(u16::from_be_bytes([ins[1], ins[2]]));
        match ins[0] % 4 {
            0 if !m.is_empty() => {
                let at = pos % m.len();
                m[at] ^= ins[3];
            }
            1 if !m.is_empty() => {
                let at = pos % m.len();
                m[at] = ins[3];
            }
            2 => m.truncate(pos % (m.len() + 1)),
            3 => m.insert(pos % (m.len() + 1), ins[3]),
            _ => {}
        }
    }
    m
}

/// `envcrypt_inspect_header` into `cap` bytes, then (if too small) into the size reported.
fn inspect(input: &[u8], cap: usize, retry: bool) {
    let (r, len, out) = inspect_header(input, cap);
    let untouched = out.iter().all(|&b| b == 0x55);
    let Ok(Some(parsed)) = parse_header(input, &HeaderLimits::new(u16::MAX, u32::MAX)) else {
        return assert!(
            checked(r, cap) > ENVCRYPT_BUFFER_TOO_SMALL && len == usize::MAX && untouched
        );
    };
    if checked(r, cap) == ENVCRYPT_BUFFER_TOO_SMALL && !retry {
        assert!(
            len >= cap && untouched,
            "BUFFER_TOO_SMALL wrote or misreported"
        );
        return inspect(input, len + 1, true);
    }
    assert_eq!(r, ENVCRYPT_OK);
    let text = CStr::from_bytes_until_nul(&out)
        .expect("NUL")
        .to_str()
        .expect("UTF-8");
    let json: serde_json::Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(text.len(), len);
    assert_eq!(
        json["header_length"].as_u64(),
        Some(parsed.bytes().len() as u64)
    );
}

fuzz_target!(|data: &[u8]| {
    let [selector, options, chunks, rest @ ..] = data else {
        return nulls(u32::from(data.first().copied().unwrap_or(0)) * 100);
    };
    let samples = samples();
    let sample = &samples[usize::from(selector >> 2) % samples.len()];
    let input = match selector & 3 {
        0 => rest.to_vec(),
        1 => [&sample.message[..sample.header_len], rest].concat(),
        2 => edit(&sample.message, rest),
        _ => sample.message.clone(),
    };
    let cap = [0, 1, 5, 4096][usize::from(options >> 2 & 3)];
    let sizes = [
        1 + usize::from(chunks & 15),
        1 + usize::from(chunks >> 4) * 37,
        4096,
    ];
    let value = [None, Some(c"fuzz"), Some(c"other"), Some(c"")][usize::from(options & 3)];
    let handles = handles(0, 0, value);
    let context_ok = options & 3 != 2;
    let original = samples.iter().find(|s| s.message == input && context_ok);
    let (r, len, out) = one_shot(envcrypt_decrypt, handles, &input, cap);
    let opened = r == ENVCRYPT_OK || r == ENVCRYPT_BUFFER_TOO_SMALL;
    if let Some(original) = original.filter(|_| opened) {
        assert_eq!(len, original.plaintext.len());
        if r == ENVCRYPT_OK {
            assert_eq!(out[..len], original.plaintext[..]);
        } else {
            assert!(
                len > cap && out.iter().all(|&b| b == 0xa5),
                "BUFFER_TOO_SMALL misreported"
            );
            let (r, _, out) = one_shot(envcrypt_decrypt, handles, &input, len);
            assert_eq!(
                (r, &out[..]),
                (0, &original.plaintext[..]),
                "the retry failed"
            );
        }
    } else {
        assert!(!opened, "a message that is no sample decrypted");
        assert!(
            len == usize::MAX && out.iter().all(|&b| b == 0xa5),
            "an error wrote output"
        );
    }
    let (code, plain, done) = session(handles, &input, sizes, cap.max(1));
    assert_eq!(
        done, opened,
        "the session ({code}) and the one-shot call ({r}) disagree"
    );
    let truth: &[u8] = if selector & 3 >= 2 && context_ok {
        &sample.plaintext
    } else {
        &[]
    };
    match original {
        Some(original) if done => assert_eq!(plain, original.plaintext),
        _ => assert!(truth.starts_with(&plain), "unverified plaintext released"),
    }
    inspect(
        &input,
        [0, 1, 64, 4096][usize::from(options >> 4 & 3)],
        false,
    );
    free(handles);
});
