//! The chained line format, shared by the sink that writes lines and the verifier.
//!
//! A line is a JSON object: `{"seq":N, ...the event's fields..., "prev":P, "hash":H}` and a
//! newline, where `P` is the previous line's `H` (64 zeros on the first line) and `H` is the
//! lowercase hex SHA-256 of the line's bytes up to `,"hash":` with a closing `}` added: the
//! exact bytes written, so verifying never re-serializes. `hash` is always the last field;
//! a JSON string value cannot contain `,"hash":"` unescaped, so the last occurrence is it.
//!
//! A checkpoint's `signature` (base64, so free of quotes) signs the line's bytes up to
//! `,"hash":` with its own `,"signature":"..."` taken out and a `}` added: the whole
//! checkpoint, whose `prev` commits to every line before it.

use serde::Serialize;

use super::event::{hex, AuditEvent};
use crate::crypto::{CryptoProvider, HashAlgorithm};

/// `prev` of the first line of a log.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the hash field starts.
const HASH_FIELD: &str = ",\"hash\":\"";

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    #[serde(flatten)]
    event: &'a AuditEvent,
    prev: &'a str,
}

/// The JSON object of line `seq` holding `event` after the line whose hash is `prev`,
/// without its hash: what the hash (and a checkpoint's signature) covers.
pub(crate) fn body(seq: u64, event: &AuditEvent, prev: &str) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Body { seq, event, prev })
}

/// Line `seq` holding `event` after the line whose hash is `prev`: the line (with its
/// newline) and its hash.
pub(crate) fn seal(
    provider: &CryptoProvider,
    seq: u64,
    event: &AuditEvent,
    prev: &str,
) -> Result<(String, String), serde_json::Error> {
    let body = body(seq, event, prev)?;
    let hash = sha256_hex(provider, body.as_bytes());
    let mut line = body;
    line.pop(); // the closing brace
    line.push_str(HASH_FIELD);
    line.push_str(&hash);
    line.push_str("\"}\n");
    Ok((line, hash))
}

/// What a checkpoint's signature covers: its body without the signature field, or `None`
/// when the body has no such field.
pub(crate) fn signed_part(body: &str) -> Option<String> {
    let start = body.find(SIGNATURE_FIELD)?;
    let value = start + SIGNATURE_FIELD.len();
    let end = value + body[value..].find('"')? + 1;
    Some(format!("{}{}", &body[..start], &body[end..]))
}

/// Where a checkpoint's signature field starts.
const SIGNATURE_FIELD: &str = ",\"signature\":\"";

/// A line whose hash matched its content.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The JSON object without the hash field.
    pub(crate) body: String,
    pub(crate) seq: u64,
    pub(crate) prev: String,
    pub(crate) hash: String,
    pub(crate) fields: serde_json::Map<String, serde_json::Value>,
}

/// Why a line does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Not a JSON object ending in a `hash` field, or a field of the wrong type.
    Malformed(&'static str),
    /// The hash does not match the content: the line was edited.
    Edited,
}

/// Checks `line` (without its newline) against its own hash and reads its fields.
pub(crate) fn open(provider: &CryptoProvider, line: &str) -> Result<Opened, LineError> {
    let at = line
        .rfind(HASH_FIELD)
        .ok_or(LineError::Malformed("no hash field"))?;
    let hash = line[at + HASH_FIELD.len()..]
        .strip_suffix("\"}")
        .ok_or(LineError::Malformed("the hash is not the last field"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(LineError::Malformed(
            "the hash is not 64 lowercase hex digits",
        ));
    }
    let mut body = String::with_capacity(at + 1);
    body.push_str(&line[..at]);
    body.push('}');
    if sha256_hex(provider, body.as_bytes()) != hash {
        return Err(LineError::Edited);
    }
    let serde_json::Value::Object(mut fields) = serde_json::from_str::<serde_json::Value>(&body)
        .map_err(|_| LineError::Malformed("not a JSON object"))?
    else {
        return Err(LineError::Malformed("not a JSON object"));
    };
    let seq = fields
        .remove("seq")
        .and_then(|v| v.as_u64())
        .ok_or(LineError::Malformed("no numeric seq field"))?;
    let prev = match fields.remove("prev") {
        Some(serde_json::Value::String(p)) if p.len() == 64 => p,
        _ => return Err(LineError::Malformed("no 64-digit prev field")),
    };
    Ok(Opened {
        body,
        seq,
        prev,
        hash: hash.to_owned(),
        fields,
    })
}

fn sha256_hex(provider: &CryptoProvider, bytes: &[u8]) -> String {
    let mut h = provider.digest.start(HashAlgorithm::Sha256);
    h.update(bytes);
    hex(&h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Operation;

    #[test]
    fn a_sealed_line_opens_and_an_edit_does_not() {
        let p = crate::crypto::default_provider();
        let event = AuditEvent::new(Operation::Encrypt).path("a \"quoted\" ,\"hash\":\"x");
        let (line, hash) = seal(p, 7, &event, GENESIS).unwrap();
        assert!(line.ends_with("\"}\n"));
        let opened = open(p, line.trim_end_matches('\n')).unwrap();
        assert_eq!((opened.seq, opened.prev.as_str()), (7, GENESIS));
        assert_eq!(opened.hash, hash);
        assert_eq!(opened.fields["op"], "encrypt");

        let edited = line.replace("encrypt", "decrypt");
        assert_eq!(open(p, edited.trim_end()).unwrap_err(), LineError::Edited);
        assert!(matches!(open(p, "{}"), Err(LineError::Malformed(_))));
        assert!(matches!(
            open(p, &line[..line.len() - 3]),
            Err(LineError::Malformed(_))
        ));
    }
}
