//! JSON output: serde_json with the spacing of `CLI.md` (`{"a": 1, "b": [2, 3]}`), on one
//! line. Field order is the declaration order of the `Serialize` structs.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// Compact JSON with a space after each `:` and `,`.
struct Spaced;

impl Formatter for Spaced {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.begin_array_value(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// `value` as one line of JSON in the tool's spacing.
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, Spaced);
    // Writing to a Vec fails only if a Serialize impl fails; the tool's types never do
    // (string keys, no non-finite floats).
    if value.serialize(&mut ser).is_err() {
        return String::from("null");
    }
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::to_line;
    use std::collections::BTreeMap;

    #[test]
    fn spacing_matches_the_contract() {
        #[derive(serde::Serialize)]
        struct T<'a> {
            b: u32,
            a: Vec<&'a str>,
            m: BTreeMap<&'a str, &'a str>,
            e: Vec<u8>,
        }
        let t = T {
            b: 1,
            a: vec!["x\"", "y"],
            m: BTreeMap::from([("k", "v"), ("l", "w")]),
            e: vec![],
        };
        assert_eq!(
            to_line(&t),
            r#"{"b": 1, "a": ["x\"", "y"], "m": {"k": "v", "l": "w"}, "e": []}"#
        );
    }
}
