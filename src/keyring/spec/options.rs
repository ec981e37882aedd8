//! The `?name=value&name=value` tail of a KMS spec.

use super::error::SpecError;

/// The options of one spec, in order; each name at most once, none empty.
pub(super) fn parse<'a>(
    kind: &'static str,
    tail: &'a str,
    allowed: &[&'static str],
    expected: &'static str,
) -> Result<Vec<(&'static str, &'a str)>, SpecError> {
    let mut out: Vec<(&'static str, &'a str)> = Vec::new();
    for pair in tail.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = || SpecError::BadOption {
            kind,
            option: name.chars().take(32).collect(),
            expected,
        };
        let Some(&known) = allowed.iter().find(|a| **a == name) else {
            return Err(bad());
        };
        if value.is_empty() || out.iter().any(|(n, _)| *n == known) {
            return Err(bad());
        }
        out.push((known, value));
    }
    Ok(out)
}

/// The value of `name`, if given.
pub(super) fn get<'a>(options: &[(&'static str, &'a str)], name: &str) -> Option<&'a str> {
    options.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Checks a value against a character set: 1 to 64 characters, each allowed by `ok`.
pub(super) fn check(
    kind: &'static str,
    option: &'static str,
    value: &str,
    form: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), SpecError> {
    if value.is_empty() || value.len() > 64 || !value.chars().all(ok) {
        return Err(SpecError::BadOptionValue { kind, option, form });
    }
    Ok(())
}
