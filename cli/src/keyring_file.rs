//! `-K FILE`: keyring specs from a TOML file, so services keep long specs and PINs off
//! command lines (where other users see them in `ps`).
//!
//! ```toml
//! keyrings = ["raw-aes:site:key-2026:/etc/envcrypt/site.key"]
//! to = ["aws-kms:arn:aws:kms:..."]   # rewrap only
//! ```
//!
//! Unknown fields are refused. The file decides where data keys go, so one that group or
//! others can write is refused; one that holds a PKCS#11 `pin-value` is a secret, so it is
//! also refused when group or others can read it (a warning would leave the PIN exposed).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;

use crate::error::AppError;
use crate::keyring_spec::KeyringSpec;

/// Largest keyring file read.
const MAX_FILE: u64 = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    keyrings: Vec<String>,
    #[serde(default)]
    to: Vec<String>,
}

/// The specs of a keyring file.
#[derive(Debug, Default)]
pub struct KeyringFile {
    /// `keyrings`: open (decrypt, rewrap's source) or wrap (encrypt).
    pub keyrings: Vec<KeyringSpec>,
    /// `to`: rewrap's new keys.
    pub to: Vec<KeyringSpec>,
}

impl KeyringFile {
    /// Reads and checks `path`; `to` is allowed only when `rewrap` is set.
    pub fn read(path: &Path, rewrap: bool) -> Result<Self, AppError> {
        use std::io::Read;
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| AppError::io(format!("keyring file {shown}"), e))?;
        let meta = file
            .metadata()
            .map_err(|e| AppError::io(format!("keyring file {shown}"), e))?;
        if !meta.is_file() {
            return Err(AppError::usage(format!(
                "keyring file {shown} is not a regular file"
            )));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(AppError::usage(format!(
                "keyring file {shown} is writable by group or others (mode {mode:03o}); \
                 refusing it (chmod 600 {shown})"
            )));
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        file.take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .map_err(|e| AppError::io(format!("keyring file {shown}"), e))?;
        if text.len() as u64 > MAX_FILE {
            return Err(AppError::usage(format!(
                "keyring file {shown}: larger than {MAX_FILE} bytes"
            )));
        }
        // toml's messages quote the offending line, which may hold a PIN: only the position.
        let raw: Raw = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(" at byte {}", s.start))
                .unwrap_or_default();
            AppError::usage(format!(
                "keyring file {shown}: not a keyring file{at} (expected keyrings = [\"SPEC\", ...]{})",
                if rewrap { " and to = [...]" } else { "" }
            ))
        })?;
        if !rewrap && !raw.to.is_empty() {
            return Err(AppError::usage(format!(
                "keyring file {shown}: `to` is for rewrap only"
            )));
        }
        let parse = |specs: &[String]| {
            specs
                .iter()
                .map(|s| KeyringSpec::parse_from_file(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let out = Self {
            keyrings: parse(&raw.keyrings)?,
            to: parse(&raw.to)?,
        };
        if mode & 0o044 != 0
            && out
                .keyrings
                .iter()
                .chain(&out.to)
                .any(KeyringSpec::holds_pin)
        {
            return Err(AppError::usage(format!(
                "keyring file {shown} holds a PKCS#11 pin-value and is readable by group or \
                 others (mode {mode:03o}); refusing it (chmod 600 {shown})"
            )));
        }
        Ok(out)
    }
}

/// The `-k` specs, then those of the keyring file's `field`.
pub fn combine(
    cli: &[String],
    file: Option<Vec<KeyringSpec>>,
) -> Result<Vec<KeyringSpec>, AppError> {
    let mut specs = cli
        .iter()
        .map(|s| KeyringSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    specs.extend(file.unwrap_or_default());
    Ok(specs)
}
