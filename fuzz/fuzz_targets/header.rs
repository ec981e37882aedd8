//! `parse_header` on arbitrary bytes: never panics; whatever parses is a prefix of the input,
//! needs all of its bytes, re-parses identically and (version 2, framed) re-serializes to
//! exactly the bytes it came from.

#![no_main]

use envcrypt::format::{
    parse_header, write_header_v2, ContentType, HeaderLimits, HeaderV2Fields, MessageVersion,
};
use envcrypt::{ContextError, FormatError};
use libfuzzer_sys::fuzz_target;

const LENIENT: HeaderLimits = HeaderLimits::new(u16::MAX, u32::MAX);
const STRICT: HeaderLimits = HeaderLimits::new(2, 4096);

fuzz_target!(|data: &[u8]| {
    let lenient = parse_header(data, &LENIENT);
    let strict = parse_header(data, &STRICT);

    let Ok(Some(parsed)) = lenient else {
        // Limits only ever turn a success into a limit error, never the reverse.
        if let Ok(Some(_)) = strict {
            panic!("strict limits accepted what lenient ones did not: {lenient:?}");
        }
        return;
    };
    match &strict {
        Ok(Some(s)) => assert_eq!(s.header, parsed.header),
        Err(
            FormatError::TooManyEncryptedDataKeys { .. } | FormatError::FrameLengthOverLimit { .. },
        ) => {}
        other => panic!("strict limits gave {other:?} for a header that parses"),
    }

    let n = parsed.bytes().len();
    assert_eq!(parsed.bytes(), &data[..n]);
    assert!(parsed.authenticated_bytes().len() <= n);

    // Every proper prefix asks for more bytes (sampled for long headers).
    let step = (n / 64).max(1);
    for cut in (0..n).step_by(step).chain([n - 1]) {
        match parse_header(&data[..cut], &LENIENT) {
            Ok(None) => {}
            other => panic!("prefix {cut} of a {n}-byte header gave {other:?}"),
        }
    }

    // Re-parsing the exact bytes gives the same header.
    let again = parse_header(parsed.bytes(), &LENIENT)
        .expect("re-parse")
        .expect("complete");
    assert_eq!(again.header, parsed.header);
    assert_eq!(again.bytes(), parsed.bytes());

    let h = &parsed.header;
    if h.version != MessageVersion::V2 || h.content_type != ContentType::Framed {
        return;
    }
    let id: [u8; 32] = h.message_id[..]
        .try_into()
        .expect("v2 message id is 32 bytes");
    let fields = HeaderV2Fields {
        suite: h.suite,
        message_id: &id,
        stored_context: &h.encryption_context,
        encrypted_data_keys: &h.encrypted_data_keys,
        frame_length: h.frame_length,
        commitment: h.commitment.as_ref().expect("v2 has a commitment"),
    };
    // Version 2 layout: version, suite, message id, then the u16-prefixed context section.
    let section = 37..37 + usize::from(u16::from_be_bytes([data[35], data[36]]));
    let canonical = h.encryption_context.to_bytes().ok();
    match write_header_v2(&fields) {
        Ok(mut bytes) => {
            assert_eq!(bytes.len(), parsed.authenticated_bytes().len());
            bytes.extend_from_slice(&h.header_tag);
            if canonical.as_deref() == Some(&data[section.clone()]) {
                assert_eq!(&bytes[..], parsed.bytes());
            } else {
                // Readers accept contexts in any order (official SDKs wrote unsorted ones);
                // the writer sorts, so only the context section may differ.
                assert_eq!(bytes[..section.start], data[..section.start]);
                assert_eq!(bytes[section.end..], data[section.end..n]);
            }
        }
        // Known asymmetry: the parser accepts an empty context key, the writer refuses it.
        Err(FormatError::Context(ContextError::EmptyKey)) => {
            assert!(h.encryption_context.contains_key(""));
        }
        Err(e) => panic!("a parsed v2 header does not re-serialize: {e:?}"),
    }
});
