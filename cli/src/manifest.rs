//! `--manifest FILE`: the objects of an S3 run, in the CSV manifest format of S3 Batch
//! Operations (`S3BatchOperations_CSV_20180820`).
//!
//! One object per row, no header row: `bucket,key` or `bucket,key,versionId`.
//!
//! - **CSV**: fields may be quoted with double quotes, `""` inside a quoted field is one
//!   quote (S3 Inventory CSV quotes every field); a quoted field may hold commas and line
//!   breaks. A quote inside an unquoted field, or anything but a comma or the end of the line
//!   after a closing quote, is an error. Rows end with LF, CRLF or a lone CR. Blank rows
//!   (empty, or only spaces and tabs, unquoted) are skipped, so a trailing newline is fine. A
//!   UTF-8 byte order mark before the first row is skipped.
//! - **Keys are URL-encoded**, as S3 writes them and as Batch Operations requires them. The
//!   S3 User Guide says of Batch Operations CSV manifests "Object keys must be URL-encoded"
//!   (its example: `Examplebucket,object%20key%20with%20spaces`), and of S3 Inventory "When
//!   using the CSV file format, the key name is URL-encoded and must be decoded before you
//!   can use it". Inventory encodes in the HTML-form style: a space is written `+`, and a
//!   literal `+` is written `%2B` (reported by users who decode Inventory keys, e.g.
//!   cloud-custodian issue 1997, and the reason the Python Batch Operations examples decode
//!   task keys with `unquote_plus`). So keys are decoded here as
//!   `application/x-www-form-urlencoded` values: `+` is a space and `%XX` is the byte `XX`;
//!   the bytes must then be UTF-8. Both `%20` and `+` decode to a space, so the documentation
//!   examples and Inventory keys read the same. A literal `+` in a key must be written
//!   `%2B` (a hand-made manifest with a raw `+` would name a key with a space). A `%` not
//!   followed by two hex digits is an error (never passed through).
//! - `raw_key` keeps the key field as the manifest wrote it (after CSV unquoting, still
//!   URL-encoded): completion reports name objects with it, as S3 Batch Operations does.
//! - The bucket and the version id are used as written (bucket names and S3 version ids
//!   never need encoding). An empty third field means no version id (the current version).
//!   An "all versions" Inventory writes an empty version id for objects stored before
//!   versioning was enabled; their version id is the string `null`, so write `null` to
//!   address that version rather than the current one.
//!
//! Errors name the 1-based line where the row starts and the reason; parsing stops at the
//! first bad row (a manifest is checked whole before any object is touched).

// Wired into commands by the S3 runs.
#![cfg_attr(not(test), allow(dead_code))]

use core::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// One object of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The bucket name, as written.
    pub bucket: String,
    /// The object key, URL-decoded.
    pub key: String,
    /// The key field exactly as the manifest wrote it (after CSV unquoting): still
    /// URL-encoded, for completion reports.
    pub raw_key: String,
    /// The version id, when the row has a non-empty third field.
    pub version_id: Option<String>,
}

/// Why a manifest could not be read.
#[derive(Debug)]
pub enum ManifestError {
    /// The file could not be read.
    Io {
        /// The manifest's path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A row is malformed.
    Row {
        /// The manifest's path, when read from a file.
        path: Option<PathBuf>,
        /// 1-based line where the row starts.
        line: usize,
        /// What is wrong with it.
        reason: RowError,
    },
}

/// What is wrong with a manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// Not 2 or 3 fields.
    FieldCount(usize),
    /// The bucket field is empty.
    EmptyBucket,
    /// The key field is empty.
    EmptyKey,
    /// A `%` in the key is not followed by two hex digits; holds what follows it (up to two
    /// characters).
    BadPercentEncoding(String),
    /// The key's decoded bytes are not UTF-8.
    KeyNotUtf8,
    /// A quoted field is not closed before the end of the manifest.
    UnterminatedQuote,
    /// A character other than a comma or a line end follows a closing quote.
    TextAfterQuote(char),
    /// A double quote inside a field that does not start with one.
    QuoteInUnquotedField,
    /// The manifest is not UTF-8 text (this line holds the first invalid byte).
    NotUtf8,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldCount(n) => write!(
                f,
                "{n} field{} (a row is bucket,key or bucket,key,versionId)",
                if *n == 1 { "" } else { "s" }
            ),
            Self::EmptyBucket => f.write_str("empty bucket"),
            Self::EmptyKey => f.write_str("empty key"),
            Self::BadPercentEncoding(after) => write!(
                f,
                "bad percent-encoding in the key: \"%{after}\" (% must be followed by two hex digits; write a literal % as %25)"
            ),
            Self::KeyNotUtf8 => f.write_str("the key is not UTF-8 once URL-decoded"),
            Self::UnterminatedQuote => f.write_str("unterminated quote"),
            Self::TextAfterQuote(c) => {
                write!(f, "{c:?} after a closing quote (expected a comma or the end of the line)")
            }
            Self::QuoteInUnquotedField => f.write_str(
                "a double quote inside an unquoted field (quote the field and double the quote)",
            ),
            Self::NotUtf8 => f.write_str("not UTF-8 text"),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => {
                write!(f, "cannot read manifest {}: {source}", path.display())
            }
            Self::Row {
                path: Some(path),
                line,
                reason,
            } => write!(f, "manifest {} line {line}: {reason}", path.display()),
            Self::Row {
                path: None,
                line,
                reason,
            } => write!(f, "manifest line {line}: {reason}"),
        }
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Row { .. } => None,
        }
    }
}

impl ManifestError {
    fn row(line: usize, reason: RowError) -> Self {
        Self::Row {
            path: None,
            line,
            reason,
        }
    }

    /// This error, naming the file it came from.
    fn in_file(self, file: &Path) -> Self {
        match self {
            Self::Row { line, reason, .. } => Self::Row {
                path: Some(file.to_path_buf()),
                line,
                reason,
            },
            io => io,
        }
    }
}

/// Reads and parses the manifest at `path`.
pub fn read(path: &Path) -> Result<Vec<ManifestEntry>, ManifestError> {
    let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            return Err(ManifestError::row(line, RowError::NotUtf8).in_file(path));
        }
    };
    parse(text).map_err(|e| e.in_file(path))
}

/// Parses manifest text (see the module docs).
pub fn parse(text: &str) -> Result<Vec<ManifestEntry>, ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut rows = Rows::new(text);
    while let Some(row) = rows.next_row() {
        let (line, fields) = row?;
        if let Some(entry) = entry(&fields).map_err(|reason| ManifestError::row(line, reason))? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// One field of a row: its text and whether it was quoted.
struct Field {
    text: String,
    quoted: bool,
}

/// The entry of one row's fields; `None` for a blank row.
fn entry(fields: &[Field]) -> Result<Option<ManifestEntry>, RowError> {
    if let [only] = fields {
        if !only.quoted && only.text.chars().all(|c| c == ' ' || c == '\t') {
            return Ok(None);
        }
    }
    let (bucket, raw_key, version) = match fields {
        [b, k] => (b, k, None),
        [b, k, v] => (b, k, Some(v)),
        _ => return Err(RowError::FieldCount(fields.len())),
    };
    if bucket.text.is_empty() {
        return Err(RowError::EmptyBucket);
    }
    if raw_key.text.is_empty() {
        return Err(RowError::EmptyKey);
    }
    Ok(Some(ManifestEntry {
        bucket: bucket.text.clone(),
        key: decode_key(&raw_key.text)?,
        raw_key: raw_key.text.clone(),
        version_id: version
            .filter(|v| !v.text.is_empty())
            .map(|v| v.text.clone()),
    }))
}

/// URL-decodes a key the way S3 encodes it: `+` is a space, `%XX` a byte; the result must
/// be UTF-8.
pub fn decode_key(raw: &str) -> Result<String, RowError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while let Some(pos) = bytes[i..].iter().position(|&b| b == b'%') {
        let at = i + pos;
        let hex = bytes.get(at + 1..at + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            let after: String = raw[at + 1..].chars().take(2).collect();
            return Err(RowError::BadPercentEncoding(after));
        }
        i = at + 3;
    }
    // `+` is replaced before decoding, so an encoded plus (`%2B`) stays a plus.
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| RowError::KeyNotUtf8)
}

/// The rows of CSV text, with the line each starts on.
struct Rows<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl<'a> Rows<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().peekable(),
            line: 1,
        }
    }

    /// Consumes a line break whose first character `c` was just read; true if it was one.
    fn line_break(&mut self, c: char) -> bool {
        match c {
            '\n' => {}
            '\r' => {
                self.chars.next_if_eq(&'\n');
            }
            _ => return false,
        }
        self.line += 1;
        true
    }

    /// The next row's starting line and fields; `None` at the end of the text.
    fn next_row(&mut self) -> Option<Result<(usize, Vec<Field>), ManifestError>> {
        self.chars.peek()?;
        let start = self.line;
        let mut fields = Vec::new();
        loop {
            let field = match self.field() {
                Ok(field) => field,
                Err(reason) => return Some(Err(ManifestError::row(start, reason))),
            };
            fields.push(field);
            match self.chars.next() {
                Some(',') => continue,
                Some(c) if self.line_break(c) => break,
                None => break,
                Some(c) => {
                    return Some(Err(ManifestError::row(start, RowError::TextAfterQuote(c))))
                }
            }
        }
        Some(Ok((start, fields)))
    }

    /// One field, up to (not including) the comma or line break that ends it.
    fn field(&mut self) -> Result<Field, RowError> {
        let mut text = String::new();
        if self.chars.next_if_eq(&'"').is_none() {
            while let Some(&c) = self.chars.peek() {
                match c {
                    ',' | '\n' | '\r' => break,
                    '"' => return Err(RowError::QuoteInUnquotedField),
                    _ => text.push(c),
                }
                self.chars.next();
            }
            return Ok(Field {
                text,
                quoted: false,
            });
        }
        loop {
            match self.chars.next() {
                None => return Err(RowError::UnterminatedQuote),
                Some('"') => {
                    if self.chars.next_if_eq(&'"').is_some() {
                        text.push('"');
                    } else {
                        // What follows must end the field: checked by the caller.
                        return Ok(Field { text, quoted: true });
                    }
                }
                Some(c) => {
                    if c == '\n' || (c == '\r' && self.chars.peek() != Some(&'\n')) {
                        self.line += 1;
                    }
                    text.push(c);
                }
            }
        }
    }
}

/// What [`encode_key`] leaves as it is besides letters and digits.
const KEY_KEEPS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/')
    .remove(b' ');

/// A key as S3 Inventory writes it (the inverse of [`decode_key`]): letters, digits,
/// `-_.~/` as they are, a space as `+`, every other byte `%XX`. Reports of objects found
/// by listing name them this way, so a report's rows can be fed back as a manifest.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_KEEPS)
        .to_string()
        .replace(' ', "+")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(bucket: &str, key: &str, raw: &str, version: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            bucket: bucket.into(),
            key: key.into(),
            raw_key: raw.into(),
            version_id: version.map(Into::into),
        }
    }

    fn row_err(text: &str) -> (usize, RowError) {
        match parse(text).unwrap_err() {
            ManifestError::Row {
                path: None,
                line,
                reason,
            } => (line, reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn two_and_three_fields() {
        let got = parse("b,k1\nb,photos/a.jpg,v1\n").unwrap();
        assert_eq!(
            got,
            [
                e("b", "k1", "k1", None),
                e("b", "photos/a.jpg", "photos/a.jpg", Some("v1"))
            ]
        );
    }

    #[test]
    fn keys_are_url_decoded_as_s3_writes_them() {
        let got = parse(concat!(
            "b,object%20key%20with%20spaces\n",
            "b,inventory+style+space\n",
            "b,a%2Bb\n",
            "b,caf%C3%A9/%E2%82%AC.txt\n",
            "b,comma%2Cand%22quote\n",
            "b,100%25\n",
        ))
        .unwrap();
        let keys: Vec<_> = got.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "object key with spaces",
                "inventory style space",
                "a+b",
                "café/€.txt",
                "comma,and\"quote",
                "100%",
            ]
        );
        assert_eq!(got[1].raw_key, "inventory+style+space");
        assert_eq!(got[3].raw_key, "caf%C3%A9/%E2%82%AC.txt");
    }

    #[test]
    fn quoted_fields_as_inventory_writes_them() {
        let got = parse(concat!(
            "\"b\",\"a+b%2Bc\",\"v.1_x\"\r\n",
            "\"b\",\"say \"\"hi\"\"\"\r\n",
            "\"b\",\"x,y\"\n",
            "\"b\",\"two\nlines\"\n",
            "b,k,\"\"\n",
        ))
        .unwrap();
        assert_eq!(
            got,
            [
                e("b", "a b+c", "a+b%2Bc", Some("v.1_x")),
                e("b", "say \"hi\"", "say \"hi\"", None),
                e("b", "x,y", "x,y", None),
                e("b", "two\nlines", "two\nlines", None),
                e("b", "k", "k", None),
            ]
        );
    }

    #[test]
    fn blank_lines_crlf_bom_and_no_final_newline() {
        let got = parse("\u{feff}\r\nb,k1\r\n\r\n  \r\nb,k2\n\n\t\nb,k3").unwrap();
        assert_eq!(
            got,
            [
                e("b", "k1", "k1", None),
                e("b", "k2", "k2", None),
                e("b", "k3", "k3", None)
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n\r\n\r").unwrap().is_empty());
    }

    #[test]
    fn empty_version_is_none() {
        assert_eq!(parse("b,k,\n").unwrap(), [e("b", "k", "k", None)]);
    }

    #[test]
    fn errors_name_the_line_and_reason() {
        assert_eq!(row_err("b,k\nb\n"), (2, RowError::FieldCount(1)));
        assert_eq!(row_err("b,k\n\nb,k,v,x\n"), (3, RowError::FieldCount(4)));
        assert_eq!(row_err("\"\"\n"), (1, RowError::FieldCount(1)));
        assert_eq!(row_err("b,k\n,k\n"), (2, RowError::EmptyBucket));
        assert_eq!(row_err("b,\n"), (1, RowError::EmptyKey));
        assert_eq!(row_err("b,\"\",v\n"), (1, RowError::EmptyKey));
        assert_eq!(
            row_err("b,k\nb,50%\n"),
            (2, RowError::BadPercentEncoding(String::new()))
        );
        assert_eq!(
            row_err("b,a%zz\n"),
            (1, RowError::BadPercentEncoding("zz".into()))
        );
        assert_eq!(
            row_err("b,a%4\n"),
            (1, RowError::BadPercentEncoding("4".into()))
        );
        assert_eq!(
            row_err("b,a%2é\n"),
            (1, RowError::BadPercentEncoding("2é".into()))
        );
        assert_eq!(row_err("b,%FF%FE\n"), (1, RowError::KeyNotUtf8));
        assert_eq!(row_err("b,k\n\"b,k\n\n"), (2, RowError::UnterminatedQuote));
        assert_eq!(row_err("\"b\"x,k\n"), (1, RowError::TextAfterQuote('x')));
        assert_eq!(row_err("b,a\"b\n"), (1, RowError::QuoteInUnquotedField));
        // A row after a quoted line break is numbered from its own first line.
        assert_eq!(row_err("b,\"a\nb\"\nb\n"), (3, RowError::FieldCount(1)));
        assert_eq!(row_err("b,k\r\rb\r\n"), (3, RowError::FieldCount(1)));
    }

    #[test]
    fn error_messages() {
        let err = parse("b,k\nb,50%\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest line 2: bad percent-encoding in the key: \"%\" (% must be followed by two hex digits; write a literal % as %25)"
        );
        let err = parse("b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest line 1: 1 field (a row is bucket,key or bucket,key,versionId)"
        );
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "b,k\nb,\n").unwrap();
        let err = read(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("manifest {} line 2: empty key", path.display())
        );
        std::fs::write(&path, b"b,k\nb,\xff\n").unwrap();
        match read(&path).unwrap_err() {
            ManifestError::Row { line, reason, .. } => {
                assert_eq!((line, reason), (2, RowError::NotUtf8))
            }
            other => panic!("unexpected {other:?}"),
        }
        std::fs::write(&path, "\"b\",\"k%20x\"\n").unwrap();
        assert_eq!(read(&path).unwrap(), [e("b", "k x", "k%20x", None)]);
        let missing = dir.path().join("missing.csv");
        let err = read(&missing).unwrap_err();
        assert!(matches!(err, ManifestError::Io { .. }));
        assert!(err.to_string().starts_with("cannot read manifest "));
    }

    #[test]
    fn encoded_keys_decode_to_themselves() {
        for key in [
            "p/x y+z%.txt",
            "a,b\"c\n",
            "scans/é €/ct-1.dcm",
            "plain/key_1-2.~",
        ] {
            let encoded = encode_key(key);
            assert!(!encoded.contains([' ', ',', '"', '\n']), "{encoded}");
            assert_eq!(decode_key(&encoded).unwrap(), key);
        }
        assert_eq!(encode_key("p/x y+z%.txt"), "p/x+y%2Bz%25.txt");
    }
}
