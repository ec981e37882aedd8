//! `-k/--keyring` specs: the library's [`envcrypt::keyring::spec`] grammar, with the tool's
//! exit codes and its warnings on stderr (even with `-q`).
//!
//! Errors echo a spec only up to its type (a PKCS#11 URI may carry a PIN) and never show
//! key bytes.

use std::sync::Arc;

use envcrypt::keyring::spec::{self as lib, SpecError, SpecWarning};
use envcrypt::keyring::{Keyring, MultiKeyring};
use envcrypt::ErrorKind;

use crate::error::{AppError, EXIT_IO, EXIT_UNAVAILABLE, EXIT_USAGE};

pub use envcrypt::keyring::spec::Purpose;

/// The keyring types this build offers (`info`'s `keyrings`).
pub fn supported() -> Vec<&'static str> {
    lib::supported_kinds()
}

impl From<SpecError> for AppError {
    fn from(e: SpecError) -> Self {
        let code = match e.kind() {
            ErrorKind::Io => EXIT_IO,
            ErrorKind::KeyringUnavailable | ErrorKind::KeyringRefused => EXIT_UNAVAILABLE,
            _ => EXIT_USAGE,
        };
        AppError::with_code(code, e.to_string()).of_kind(e.kind())
    }
}

/// One parsed spec.
#[derive(Debug, Clone)]
pub struct KeyringSpec {
    inner: lib::KeyringSpec,
}

impl KeyringSpec {
    /// Parses one spec given on the command line; a PIN in it is warned about at once
    /// (whether or not the keyring then connects).
    pub fn parse(spec: &str) -> Result<Self, AppError> {
        let parsed = Self::parse_from_file(spec)?;
        if parsed.holds_pin() {
            eprintln!("envcrypt: warning: {}", SpecWarning::PinInSpec);
        }
        Ok(parsed)
    }

    /// Whether the spec carries its PIN (`pin-value`).
    pub fn holds_pin(&self) -> bool {
        match &self.inner {
            #[cfg(feature = "pkcs11")]
            lib::KeyringSpec::Pkcs11(p) => {
                p.config().has_pin() && p.config().pin_source().is_none()
            }
            _ => false,
        }
    }

    /// Parses one spec read from a `-K` file (not a command line: a PIN in it is not
    /// visible in `ps`, so no warning).
    pub fn parse_from_file(spec: &str) -> Result<Self, AppError> {
        Ok(Self {
            inner: lib::KeyringSpec::parse(spec)?,
        })
    }

    /// The library's parsed spec.
    pub fn inner(&self) -> &lib::KeyringSpec {
        &self.inner
    }

    /// Loads the key and builds the keyring; warnings go to stderr.
    pub fn build(&self, purpose: Purpose) -> Result<Arc<dyn Keyring>, AppError> {
        let built = self.inner.build(purpose)?;
        for warning in &built.warnings {
            // Warned about when parsed (command line), or not at all (-K file).
            if *warning != SpecWarning::PinInSpec {
                eprintln!("envcrypt: warning: {warning}");
            }
        }
        Ok(built.keyring)
    }
}

/// Parses every spec, then builds them in order: the first generates the data key, every
/// one wraps it (encrypt); each is tried in turn (decrypt).
pub fn build_keyring(specs: &[String], purpose: Purpose) -> Result<MultiKeyring, AppError> {
    let parsed = specs
        .iter()
        .map(|s| KeyringSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    build_parsed(&parsed, purpose)
}

/// Builds parsed specs as [`build_keyring`] does.
pub fn build_parsed(parsed: &[KeyringSpec], purpose: Purpose) -> Result<MultiKeyring, AppError> {
    let mut keyrings = parsed
        .iter()
        .map(|s| {
            let keyring = s
                .build(purpose)
                .map_err(|e| crate::audit::keyring_failed(purpose, s, e))?;
            Ok(crate::metadata::Recording::wrap(
                crate::audit::keyring(keyring),
                crate::key_id::of_spec(s),
            ))
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    if keyrings.is_empty() {
        return Err(AppError::usage("at least one -k/--keyring is required"));
    }
    let generator = keyrings.remove(0);
    Ok(MultiKeyring::from_arcs(Some(generator), keyrings))
}
