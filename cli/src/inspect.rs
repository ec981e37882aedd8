//! `inspect` (a message header as JSON) and `info` (version and providers as JSON).
//!
//! serde_json here does not preserve key order, so objects are written in the order of
//! `CLI.md` by hand; serde_json only escapes strings.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use envcrypt::crypto::CryptoProvider;
use envcrypt::format::{parse_header, ContentType, HeaderLimits, ParsedHeader};
use envcrypt::{Error, FormatError};

use crate::error::AppError;
use crate::output::{display_name, open_input};

/// Largest header `inspect` reads (a header can reach a few MB with many large EDKs).
const MAX_HEADER: usize = 64 << 20;

/// `envcrypt inspect`.
pub fn run(input: Option<&Path>) -> Result<(), AppError> {
    let name = display_name(input, "stdin");
    let mut file = open_input(input)?;
    let parsed = read_header(&mut file, &name)?;
    println!("{}", header_json(&parsed, &name)?);
    Ok(())
}

/// Reads just enough of `r` to parse the header. No limits apply besides the size cap:
/// inspecting reports what is there.
pub fn read_header(r: &mut impl Read, name: &str) -> Result<ParsedHeader, AppError> {
    let limits = HeaderLimits::new(u16::MAX, u32::MAX);
    let what = format!("inspect {name}");
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        match parse_header(&buf[..len], &limits) {
            Ok(Some(parsed)) => return Ok(parsed),
            Ok(None) => {}
            Err(e) => return Err(AppError::lib(&what, Error::Format(e))),
        }
        if len == buf.len() {
            if buf.len() >= MAX_HEADER {
                return Err(AppError::data(format!(
                    "{what}: header larger than {} MiB",
                    MAX_HEADER >> 20
                )));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = loop {
            match r.read(&mut buf[len..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(AppError::io(format!("cannot read {name}"), e)),
                Ok(n) => break n,
            }
        };
        if n == 0 {
            return Err(AppError::lib(&what, Error::Format(FormatError::Truncated)));
        }
        len += n;
    }
}

/// The header as one JSON object, fields in the order of `CLI.md`; `name` is the input's
/// name for errors.
pub fn header_json(parsed: &ParsedHeader, name: &str) -> Result<String, AppError> {
    let h = &parsed.header;
    let b64 = base64::engine::general_purpose::STANDARD;
    let context = h
        .encryption_context
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect::<Vec<_>>()
        .join(", ");
    let edks = h
        .encrypted_data_keys
        .iter()
        .map(|edk| {
            format!(
                "{{\"provider_id\": {}, \"provider_info\": {}, \"ciphertext_length\": {}}}",
                json_str(&edk.provider_id),
                json_str(&b64.encode(&edk.provider_info)),
                edk.ciphertext.len()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let content_type = match h.content_type {
        ContentType::Framed => "framed",
        ContentType::NonFramed => "non-framed",
        other => {
            return Err(AppError::data(format!(
                "inspect {name}: content type {other:?} unknown to this tool"
            )))
        }
    };
    Ok(format!(
        "{{\"version\": {}, \"suite_id\": \"{:#06x}\", \"suite\": {}, \"message_id\": \"{}\", \
         \"encryption_context\": {{{}}}, \"encrypted_data_keys\": [{}], \
         \"content_type\": \"{}\", \"frame_length\": {}, \"header_length\": {}}}",
        h.version.byte(),
        h.suite.id(),
        json_str(h.suite.name()),
        hex(&h.message_id),
        context,
        edks,
        content_type,
        h.frame_length,
        parsed.bytes().len(),
    ))
}

/// `envcrypt info`.
pub fn info(provider: &CryptoProvider) {
    let list =
        |names: &mut dyn Iterator<Item = &str>| names.map(json_str).collect::<Vec<_>>().join(", ");
    let providers = list(&mut envcrypt::crypto::providers().iter().map(|p| p.name));
    let keyrings = list(&mut crate::keyring_spec::supported().into_iter());
    println!(
        "{{\"version\": {}, \"provider\": {}, \"fips\": {}, \"providers\": [{}], \"keyrings\": [{}]}}",
        json_str(env!("CARGO_PKG_VERSION")),
        json_str(provider.name),
        provider.fips(),
        providers,
        keyrings
    );
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
