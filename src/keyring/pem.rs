//! A small PEM decoder (RFC 7468, "strict" text encoding with the usual leniencies): one
//! block, base64 between `-----BEGIN LABEL-----` and `-----END LABEL-----`.
//!
//! Accepted: explanatory text before the BEGIN line (as OpenSSL writes "Bag Attributes"),
//! `\n` or `\r\n` line ends, blank lines and spaces or tabs inside the base64, whitespace
//! after the END line. Refused, each with its own [`PemError`]: no BEGIN line, a malformed
//! BEGIN line, no END line, an END label that differs from the BEGIN label, RFC 1421 headers
//! (`Proc-Type: 4,ENCRYPTED`: legacy encrypted keys), bad base64 (padding is required), an
//! empty body, and anything but whitespace after the END line (a second block).
//!
//! The decoded bytes and the base64 text collected on the way are zeroized when dropped: the
//! block may hold a private key.

use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";

/// One decoded PEM block.
pub(crate) struct Pem {
    /// The label of the armor lines (`PUBLIC KEY`, `PRIVATE KEY`, ...).
    pub(crate) label: String,
    /// The decoded body (DER for keys).
    pub(crate) der: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pem")
            .field("label", &self.label)
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// Why a text is not one well-formed PEM block. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PemError {
    /// No `-----BEGIN ...-----` line.
    #[error("no -----BEGIN ...----- line")]
    NoBegin,
    /// A line starts with `-----BEGIN` but is not `-----BEGIN LABEL-----`.
    #[error("malformed -----BEGIN ...----- line")]
    MalformedBegin,
    /// No `-----END LABEL-----` line after the BEGIN line.
    #[error("no -----END {label}----- line")]
    NoEnd {
        /// The BEGIN label.
        label: String,
    },
    /// The END label differs from the BEGIN label.
    #[error("-----BEGIN {begin}----- ends with -----END {end}-----")]
    MismatchedEnd {
        /// The BEGIN label.
        begin: String,
        /// The END label.
        end: String,
    },
    /// RFC 1421 header lines (`Proc-Type:`, `DEK-Info:`): a legacy encrypted key.
    #[error(
        "header lines in the PEM body (a legacy encrypted key?); \
         give an unencrypted PKCS#8 or SubjectPublicKeyInfo key"
    )]
    Headers,
    /// The body is not valid padded base64.
    #[error("the PEM body is not valid base64")]
    Base64,
    /// The body is empty.
    #[error("the PEM body is empty")]
    Empty,
    /// Something other than whitespace follows the END line.
    #[error("data after the -----END ...----- line")]
    TrailingData,
}

/// The label of an armor line `{prefix}LABEL-----`, or `None` when the line is not one.
fn armor_label<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let label = line.strip_prefix(prefix)?.strip_suffix(DASHES)?;
    // RFC 7468 labels: printable ASCII except '-', single spaces or hyphens between words.
    let ok = !label.is_empty()
        && label.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !label.starts_with(['-', ' '])
        && !label.ends_with(['-', ' ']);
    ok.then_some(label)
}

/// Decodes the one PEM block in `text`.
pub(crate) fn decode(text: &str) -> Result<Pem, PemError> {
    let mut lines = text.lines().map(|l| l.trim_end_matches([' ', '\t', '\r']));
    let label = loop {
        let Some(line) = lines.next() else {
            return Err(PemError::NoBegin);
        };
        if line.starts_with(BEGIN.trim_end()) {
            break armor_label(line, BEGIN).ok_or(PemError::MalformedBegin)?;
        }
    };

    let mut body = Zeroizing::new(Vec::with_capacity(text.len()));
    let end_label = loop {
        let Some(line) = lines.next() else {
            return Err(PemError::NoEnd {
                label: label.to_owned(),
            });
        };
        if line.starts_with(END.trim_end()) {
            break armor_label(line, END).unwrap_or(line);
        }
        if line.contains(':') {
            return Err(PemError::Headers);
        }
        body.extend(line.bytes().filter(|b| !matches!(b, b' ' | b'\t')));
    };
    if end_label != label {
        return Err(PemError::MismatchedEnd {
            begin: label.to_owned(),
            end: end_label.chars().take(64).collect(),
        });
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(PemError::TrailingData);
    }
    if body.is_empty() {
        return Err(PemError::Empty);
    }
    let mut der = Zeroizing::new(Vec::with_capacity(body.len() / 4 * 3));
    STANDARD
        .decode_vec(&body[..], &mut der)
        .map_err(|_| PemError::Base64)?;
    if der.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(Pem {
        label: label.to_owned(),
        der,
    })
}

/// `der` as one PEM block labelled `label` (64-character lines, as OpenSSL writes them).
pub(crate) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let body = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(body.len() + body.len() / 64 + 64));
    out.push_str(&format!("{BEGIN}{label}{DASHES}\n"));
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(core::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("{END}{label}{DASHES}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "MIIBCgKCAQEAq83l\nAAEC";

    fn block(label: &str, body: &str) -> String {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }

    #[test]
    fn decodes_a_block() {
        let pem = decode(&block("PUBLIC KEY", BODY)).unwrap();
        assert_eq!(pem.label, "PUBLIC KEY");
        assert_eq!(
            &pem.der[..],
            &STANDARD.decode("MIIBCgKCAQEAq83lAAEC").unwrap()[..]
        );
        assert!(!format!("{pem:?}").contains("MII"));
    }

    #[test]
    fn leniencies() {
        let want = decode(&block("PRIVATE KEY", BODY)).unwrap().der;
        let texts = [
            // CRLF, no final newline, blank lines and indentation inside the body.
            "-----BEGIN PRIVATE KEY-----\r\nMIIBCgKCAQEAq83l\r\n\r\n  AAEC\r\n-----END PRIVATE KEY-----",
            // Explanatory text before, whitespace after.
            "Bag Attributes\n    localKeyID: 01\n-----BEGIN PRIVATE KEY-----\nMIIBCgKCAQEAq83lAAEC\n-----END PRIVATE KEY-----\n\n  \n",
            // Trailing spaces on the armor lines.
            "-----BEGIN PRIVATE KEY----- \nMIIBCgKCAQEAq83l\tAAEC\n-----END PRIVATE KEY-----\t\n",
        ];
        for text in texts {
            let pem = decode(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(pem.label, "PRIVATE KEY");
            assert_eq!(pem.der, want, "{text:?}");
        }
    }

    #[test]
    fn typed_errors() {
        let cases: [(String, PemError); 12] = [
            (String::new(), PemError::NoBegin),
            (BODY.to_owned(), PemError::NoBegin),
            (
                "-----BEGIN PUBLIC KEY\nAAEC\n-----END PUBLIC KEY-----".to_owned(),
                PemError::MalformedBegin,
            ),
            (
                "-----BEGIN -----\nAAEC\n-----END -----".to_owned(),
                PemError::MalformedBegin,
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAEC\n".to_owned(),
                PemError::NoEnd {
                    label: "PUBLIC KEY".into(),
                },
            ),
            (
                "-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PRIVATE KEY-----".to_owned(),
                PemError::MismatchedEnd {
                    begin: "PUBLIC KEY".into(),
                    end: "PRIVATE KEY".into(),
                },
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----".to_owned(),
                PemError::Headers,
            ),
            (block("PUBLIC KEY", "AAE"), PemError::Base64),
            (block("PUBLIC KEY", "AA*C"), PemError::Base64),
            (block("PUBLIC KEY", ""), PemError::Empty),
            (
                format!("{}{}", block("PUBLIC KEY", BODY), block("PUBLIC KEY", BODY)),
                PemError::TrailingData,
            ),
            (
                format!("{}junk\n", block("PUBLIC KEY", BODY)),
                PemError::TrailingData,
            ),
        ];
        for (text, want) in cases {
            let got = decode(&text).map(|p| p.label);
            assert_eq!(got, Err(want.clone()), "{text:?}");
            assert!(!want.to_string().is_empty());
        }
    }

    #[test]
    fn error_texts() {
        let cases = [
            (PemError::NoBegin, "no -----BEGIN ...----- line"),
            (
                PemError::MalformedBegin,
                "malformed -----BEGIN ...----- line",
            ),
            (
                PemError::NoEnd {
                    label: "PUBLIC KEY".into(),
                },
                "no -----END PUBLIC KEY----- line",
            ),
            (
                PemError::MismatchedEnd {
                    begin: "A".into(),
                    end: "B".into(),
                },
                "-----BEGIN A----- ends with -----END B-----",
            ),
            (
                PemError::Headers,
                "header lines in the PEM body (a legacy encrypted key?); \
                 give an unencrypted PKCS#8 or SubjectPublicKeyInfo key",
            ),
            (PemError::Base64, "the PEM body is not valid base64"),
            (PemError::Empty, "the PEM body is empty"),
            (
                PemError::TrailingData,
                "data after the -----END ...----- line",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }
}
