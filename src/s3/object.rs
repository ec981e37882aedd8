//! [`S3Object`]: a bucket, a key and maybe a version; `s3://` URIs.

use std::fmt;

use crate::error::ConfigError;

/// One S3 object: bucket, key and, optionally, a version.
///
/// ```
/// use envcrypt::s3::S3Object;
/// let object = S3Object::parse("s3://scans/2026/ct-0001.dcm")?;
/// assert_eq!((object.bucket(), object.key()), ("scans", "2026/ct-0001.dcm"));
/// assert_eq!(object.to_string(), "s3://scans/2026/ct-0001.dcm");
/// # Ok::<(), envcrypt::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Object {
    bucket: String,
    key: String,
    version_id: Option<String>,
}

/// The scheme of an S3 URI.
pub const SCHEME: &str = "s3://";

impl S3Object {
    /// The object `key` in `bucket` (its latest version).
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
        }
    }

    /// The same object, pinned to `version_id` (reads only; writes make a new version).
    pub fn with_version(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// Parses `s3://BUCKET/KEY`. The key is taken as written (no percent-decoding) and must
    /// not be empty; a key ending in `/` is a prefix, not an object (see
    /// [`parse_prefix`](Self::parse_prefix)).
    pub fn parse(uri: &str) -> Result<Self, ConfigError> {
        let (bucket, key) = split(uri)?;
        if key.is_empty() || key.ends_with('/') {
            return Err(ConfigError::S3Uri(format!(
                "{uri}: names a prefix, not an object"
            )));
        }
        Ok(Self::new(bucket, key))
    }

    /// Parses `s3://BUCKET/` or `s3://BUCKET/PREFIX/` into the bucket and the prefix (empty,
    /// or ending in `/`).
    pub fn parse_prefix(uri: &str) -> Result<(String, String), ConfigError> {
        let (bucket, prefix) = split(uri)?;
        if !(prefix.is_empty() || prefix.ends_with('/')) {
            return Err(ConfigError::S3Uri(format!("{uri}: a prefix ends with '/'")));
        }
        Ok((bucket.to_owned(), prefix.to_owned()))
    }

    /// Whether `s` is an S3 URI (starts with `s3://`).
    pub fn is_uri(s: &str) -> bool {
        s.starts_with(SCHEME)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The version, if pinned.
    pub fn version_id(&self) -> Option<&str> {
        self.version_id.as_deref()
    }
}

/// `s3://BUCKET/REST` into `BUCKET` and `REST`.
fn split(uri: &str) -> Result<(&str, &str), ConfigError> {
    let rest = uri
        .strip_prefix(SCHEME)
        .ok_or_else(|| ConfigError::S3Uri(format!("{uri}: does not start with {SCHEME}")))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    // S3's rule: 3 to 63 of lowercase letters, digits, '.' and '-'.
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid {
        return Err(ConfigError::S3Uri(format!(
            "{uri}: invalid bucket name {bucket:?}"
        )));
    }
    Ok((bucket, key))
}

impl fmt::Display for S3Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)?;
        if let Some(v) = &self.version_id {
            write!(f, " (version {v})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_prefixes() {
        let o = S3Object::parse("s3://my-bucket.x/a/b c+d%20").unwrap();
        assert_eq!(
            (o.bucket(), o.key(), o.version_id()),
            ("my-bucket.x", "a/b c+d%20", None)
        );
        assert_eq!(
            S3Object::parse_prefix("s3://bkt/").unwrap(),
            ("bkt".to_owned(), String::new())
        );
        assert_eq!(
            S3Object::parse_prefix("s3://bkt").unwrap(),
            ("bkt".to_owned(), String::new())
        );
        assert_eq!(
            S3Object::parse_prefix("s3://bkt/p/q/").unwrap(),
            ("bkt".to_owned(), "p/q/".to_owned())
        );
        let v = S3Object::new("bkt", "k").with_version("3");
        assert_eq!(v.to_string(), "s3://bkt/k (version 3)");
    }

    #[test]
    fn refuses_what_is_not_an_object() {
        for (uri, says) in [
            ("/tmp/x", "does not start with s3://"),
            ("s3://bkt", "names a prefix"),
            ("s3://bkt/", "names a prefix"),
            ("s3://bkt/dir/", "names a prefix"),
            ("s3://Bkt/x", "invalid bucket name"),
            ("s3://b/x", "invalid bucket name"),
            ("s3:///x", "invalid bucket name"),
        ] {
            let e = S3Object::parse(uri).unwrap_err();
            assert!(
                matches!(&e, ConfigError::S3Uri(m) if m.contains(says)),
                "{uri}: {e}"
            );
        }
        let e = S3Object::parse_prefix("s3://bkt/p").unwrap_err();
        assert!(
            matches!(&e, ConfigError::S3Uri(m) if m.contains("ends with '/'")),
            "{e}"
        );
    }
}
