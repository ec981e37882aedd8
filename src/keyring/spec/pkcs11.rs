//! `pkcs11:token=LABEL;object=LABEL?module-path=PATH[&pin-source=FILE|&pin-value=PIN][&namespace=NS&name=NAME]`
//! (cargo feature `pkcs11`).
//!
//! The spec is an RFC 7512 URI; the PIN comes from the file named by `pin-source` (a secret
//! file), or `pin-value` (on a command line visible to other users: a
//! [`SpecWarning::PinInSpec`]), or, failing both, `ENVCRYPT_PKCS11_PIN`. The keyring
//! connects when it is built (logs in, finds the key).

use std::sync::Arc;

use super::error::{SpecError, SpecWarning};
use super::secret_file::SecretFile;
use crate::keyring::{Keyring, KeyringError, Pkcs11Config, Pkcs11Keyring};

/// Largest PIN file read.
const MAX_PIN_FILE: u64 = 1024;

fn uri_error(source: KeyringError) -> SpecError {
    SpecError::Keyring {
        what: "pkcs11".into(),
        source,
    }
}

/// Parses the whole spec (`pkcs11:...`); the PIN is resolved when the keyring is built.
pub(super) fn parse(spec: &str) -> Result<Pkcs11Config, SpecError> {
    Pkcs11Config::parse_uri(spec).map_err(uri_error)
}

/// Resolves the PIN, loads the module, logs in and finds the key.
pub(super) fn build(
    spec: &str,
    config: &Pkcs11Config,
    warnings: &mut Vec<SpecWarning>,
) -> Result<Arc<dyn Keyring>, SpecError> {
    let config = if let Some(path) = config.pin_source() {
        let file = SecretFile::read(path, MAX_PIN_FILE, "PKCS#11 PIN file")?;
        file.enforce(warnings)?;
        config
            .clone()
            .with_pin_file_contents(file.bytes())
            .map_err(uri_error)?
    } else if config.has_pin() {
        warnings.push(SpecWarning::PinInSpec);
        config.clone()
    } else {
        // Neither in the URI: the environment, as the library resolves it.
        Pkcs11Config::from_uri(spec).map_err(uri_error)?
    };
    let what = format!(
        "pkcs11 (token {:?}, {})",
        config.token_label(),
        match (config.key_label(), config.key_id()) {
            (Some(label), _) => format!("object {label:?}"),
            (None, Some(id)) => format!("id {}", hex(id)),
            (None, None) => "no key".to_owned(),
        }
    );
    Pkcs11Keyring::new(config)
        .map(|k| Arc::new(k) as Arc<dyn Keyring>)
        .map_err(|source| SpecError::Keyring { what, source })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
