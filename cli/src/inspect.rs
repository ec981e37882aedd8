//! `inspect` (a message header as JSON) and `info` (version and providers as JSON).

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use envcrypt::crypto::CryptoProvider;
use envcrypt::format::{parse_header, ContentType, Header, HeaderLimits, ParsedHeader};
use envcrypt::{Error, FormatError};

use serde::Serialize;

use crate::error::AppError;
use crate::json;
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
    let content_type = match h.content_type {
        ContentType::Framed => "framed",
        ContentType::NonFramed => "non-framed",
        other => {
            return Err(AppError::data(format!(
                "inspect {name}: content type {other:?} unknown to this tool"
            )))
        }
    };
    Ok(json::to_line(&HeaderJson {
        version: h.version.byte(),
        suite_id: format!("{:#06x}", h.suite.id()),
        suite: h.suite.name(),
        message_id: hex::encode(&h.message_id),
        encryption_context: Context(h),
        encrypted_data_keys: h
            .encrypted_data_keys
            .iter()
            .map(|edk| EdkJson {
                provider_id: &edk.provider_id,
                provider_info: b64.encode(&edk.provider_info),
                ciphertext_length: edk.ciphertext.len(),
            })
            .collect(),
        content_type,
        frame_length: h.frame_length,
        header_length: parsed.bytes().len(),
    }))
}

/// What `inspect` prints (fields in the order of `CLI.md`).
#[derive(Serialize)]
struct HeaderJson<'a> {
    version: u8,
    suite_id: String,
    suite: &'a str,
    message_id: String,
    encryption_context: Context<'a>,
    encrypted_data_keys: Vec<EdkJson<'a>>,
    content_type: &'a str,
    frame_length: u32,
    header_length: usize,
}

/// The stored encryption context, as an object in the header's (sorted) order.
struct Context<'a>(&'a Header);

impl Serialize for Context<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.encryption_context.iter())
    }
}

/// One encrypted data key in `inspect`.
#[derive(Serialize)]
struct EdkJson<'a> {
    provider_id: &'a str,
    provider_info: String,
    ciphertext_length: usize,
}

/// What `info` prints (fields in the order of `CLI.md`).
#[derive(Serialize)]
struct InfoJson<'a> {
    version: &'a str,
    provider: &'a str,
    fips: bool,
    providers: Vec<&'a str>,
    keyrings: Vec<&'a str>,
    /// The module serving each component of the provider in use.
    modules: std::collections::BTreeMap<&'a str, &'a str>,
}

/// `envcrypt info`.
pub fn info(provider: &CryptoProvider) {
    let info = InfoJson {
        version: env!("CARGO_PKG_VERSION"),
        provider: provider.name,
        fips: provider.fips(),
        providers: envcrypt::crypto::providers()
            .iter()
            .map(|p| p.name)
            .collect(),
        keyrings: crate::keyring_spec::supported(),
        modules: provider
            .modules()
            .into_iter()
            .map(|(component, module)| (component.name(), module))
            .collect(),
    };
    println!("{}", json::to_line(&info));
}
