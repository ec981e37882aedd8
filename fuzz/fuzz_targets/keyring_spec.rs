//! Keyring spec parsing (`envcrypt::keyring::spec::KeyringSpec::parse`, what the tool's `-k`
//! and `-K` files and services' configurations go through) on arbitrary text.
//!
//! Checked: no panic; parsing reads no file and contacts nothing (it is given paths and
//! module paths that do not exist); a parsed spec's kind is the text before the first `:`;
//! and a PIN given in a `pkcs11:` URI (`pin-value=...`) never appears in an error message
//! or in a parsed spec's `Debug` output.

#![no_main]

use envcrypt::keyring::spec::KeyringSpec;
use libfuzzer_sys::fuzz_target;

/// A PIN the target puts into `pkcs11:` specs; the fuzzer's own text never holds it.
const PIN: &str = "Zq7-pin-never-shown-Xv9";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(first) = text.chars().next() else {
        return;
    };
    let rest = &text[first.len_utf8()..];
    let selector = first as u32;
    // Most inputs get a real type in front, so that the parsers behind it are reached.
    let prefix = [
        "",
        "raw-aes:",
        "raw-rsa:",
        "pkcs11:",
        "aws-kms:",
        "aws-kms-discovery:",
    ][(selector % 6) as usize];
    let mut spec = format!("{prefix}{rest}");
    // Half of the PKCS#11 URIs carry a PIN attribute, in the query (or starting one). In
    // the other types the text after the type is a path or a key name, shown in errors.
    let with_pin = spec.starts_with("pkcs11:") && selector & 0x40 != 0 && !rest.contains(PIN);
    if with_pin {
        spec.push(if spec.contains('?') { '&' } else { '?' });
        spec.push_str("pin-value=");
        spec.push_str(PIN);
    }
    match KeyringSpec::parse(&spec) {
        Ok(parsed) => {
            let kind = spec.split_once(':').map(|(k, _)| k);
            assert_eq!(Some(parsed.kind()), kind, "{spec:?}");
            if with_pin {
                let shown = format!("{parsed:?}");
                assert!(!shown.contains(PIN), "PIN in Debug: {shown}");
            }
        }
        Err(e) => {
            if with_pin {
                let shown = e.to_string();
                assert!(!shown.contains(PIN), "PIN in the error: {shown}");
                assert!(!format!("{e:?}").contains(PIN), "PIN in the error's Debug");
            }
        }
    }
});
