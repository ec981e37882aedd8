//! The encryption context: non-secret key-value pairs bound to a message.

use std::collections::BTreeMap;

use super::cursor::Cursor;
use crate::error::ContextError;

/// Key-value pairs authenticated with the message and stored **unencrypted** in its header.
///
/// Iteration and serialization order is the order of the keys' UTF-8 bytes, as the format
/// requires. Never put secrets or patient identifiers in a context.
///
/// ```
/// use envcrypt::EncryptionContext;
/// let ctx = EncryptionContext::from_pairs([("purpose", "backup"), ("dept", "radiology")]);
/// assert_eq!(ctx.to_bytes().unwrap()[..2], [0, 2]); // two pairs
/// assert!(EncryptionContext::new().to_bytes().unwrap().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context from pairs; a later duplicate key replaces an earlier one.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Adds or replaces a pair; returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// Removes a pair.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Pairs in serialization order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Serialized form: nothing for an empty context, else `u16 count` then
    /// `u16 len, key, u16 len, value` per pair, sorted by key.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ContextError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Appends the serialized form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), ContextError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let start = out.len();
        let count = u16::try_from(self.0.len()).map_err(|_| ContextError::TooLarge)?;
        out.extend_from_slice(&count.to_be_bytes());
        for (k, v) in &self.0 {
            if k.is_empty() {
                return Err(ContextError::EmptyKey);
            }
            for field in [k.as_bytes(), v.as_bytes()] {
                let len = u16::try_from(field.len()).map_err(|_| ContextError::TooLarge)?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(field);
            }
        }
        if out.len() - start > usize::from(u16::MAX) {
            return Err(ContextError::TooLarge);
        }
        Ok(())
    }

    /// Parses a serialized context (the bytes inside the header's length prefix).
    ///
    /// Rejects a non-empty section with zero pairs, empty or duplicate keys, invalid UTF-8 and any
    /// length that does not fill the section exactly. Order is a rule for writers only:
    /// official SDKs have written unsorted contexts (the header tag covers the raw bytes),
    /// so readers accept any order, as the official readers do.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContextError> {
        if bytes.is_empty() {
            return Ok(Self::new());
        }
        let mut c = Cursor::new(bytes);
        let count = c.u16().map_err(|_| ContextError::LengthMismatch)?;
        if count == 0 {
            return Err(ContextError::EmptyWithCount);
        }
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let k = c.u16_prefixed().map_err(|_| ContextError::LengthMismatch)?;
            let v = c.u16_prefixed().map_err(|_| ContextError::LengthMismatch)?;
            let key = core::str::from_utf8(k).map_err(|_| ContextError::InvalidUtf8)?;
            let value = core::str::from_utf8(v).map_err(|_| ContextError::InvalidUtf8)?;
            if key.is_empty() {
                return Err(ContextError::EmptyKey);
            }
            if map.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(ContextError::DuplicateKey(key.to_owned()));
            }
        }
        if c.position() != bytes.len() {
            return Err(ContextError::LengthMismatch);
        }
        Ok(Self(map))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes() {
        let ctx = EncryptionContext::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(
            ctx.to_bytes().unwrap(),
            [0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2']
        );
        assert_eq!(
            EncryptionContext::from_bytes(&ctx.to_bytes().unwrap()).unwrap(),
            ctx
        );
    }

    #[test]
    fn sorted_by_utf8_bytes() {
        // 'Z' (0x5a) < 'a' (0x61) < 'é' (0xc3 0xa9)
        let ctx = EncryptionContext::from_pairs([("é", "x"), ("a", "y"), ("Z", "z")]);
        let keys: Vec<_> = ctx.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["Z", "a", "é"]);
    }

    #[test]
    fn rejects() {
        let dup = [0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0];
        assert_eq!(
            EncryptionContext::from_bytes(&dup),
            Err(ContextError::DuplicateKey("a".into()))
        );
        let unsorted = [0, 2, 0, 1, b'b', 0, 0, 0, 1, b'a', 0, 0];
        assert_eq!(
            EncryptionContext::from_bytes(&unsorted).unwrap(),
            EncryptionContext::from_pairs([("a", ""), ("b", "")])
        );
        let dup_apart = [0, 3, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0, 0, 1, b'a', 0, 0];
        assert_eq!(
            EncryptionContext::from_bytes(&dup_apart),
            Err(ContextError::DuplicateKey("a".into()))
        );
        assert_eq!(
            EncryptionContext::from_bytes(&[0, 0]),
            Err(ContextError::EmptyWithCount)
        );
        let bad_utf8 = [0, 1, 0, 1, 0xff, 0, 0];
        assert_eq!(
            EncryptionContext::from_bytes(&bad_utf8),
            Err(ContextError::InvalidUtf8)
        );
        let short = [0, 1, 0, 1, b'a', 0, 3, b'x'];
        assert_eq!(
            EncryptionContext::from_bytes(&short),
            Err(ContextError::LengthMismatch)
        );
        let long = [0, 1, 0, 1, b'a', 0, 0, 9];
        assert_eq!(
            EncryptionContext::from_bytes(&long),
            Err(ContextError::LengthMismatch)
        );
        let big = EncryptionContext::from_pairs([("k", "v".repeat(70_000))]);
        assert_eq!(big.to_bytes(), Err(ContextError::TooLarge));
        assert_eq!(
            EncryptionContext::from_pairs([("", "v")]).to_bytes(),
            Err(ContextError::EmptyKey)
        );
    }
}
