//! `-k pkcs11:token=LABEL;object=LABEL?module-path=PATH[&pin-source=FILE|&pin-value=PIN][&namespace=NS&name=NAME]`
//! (built with `--features pkcs11`).
//!
//! The spec is an RFC 7512 URI; the PIN comes from the file named by `pin-source` (a secret
//! file: see `secret_file`), or `pin-value` (visible to other users in `ps`: a warning on
//! stderr, even with `-q`), or, failing both, `ENVCRYPT_PKCS11_PIN`. Nothing here prints the
//! spec past its type, nor the PIN.
//!
//! The keyring connects when it is built (logs in, finds the key), so a bad spec fails before
//! any output is written: wrong or missing PIN, token not present or module not loadable exit
//! 4; a key that is not in the token (or is ambiguous) exits 2.

use std::sync::Arc;

use envcrypt::keyring::pkcs11::PIN_ENV;
use envcrypt::keyring::{Keyring, Pkcs11Config, Pkcs11Keyring};

use crate::error::AppError;
use crate::secret_file::SecretFile;

/// Largest PIN file read.
const MAX_PIN_FILE: u64 = 1024;

/// A parsed `pkcs11:` spec.
#[derive(Debug)]
pub struct Pkcs11Spec(Pkcs11Config);

impl Pkcs11Spec {
    /// Parses the whole spec (`pkcs11:...`) and resolves the PIN.
    pub fn parse(spec: &str) -> Result<Self, AppError> {
        let usage = |e| AppError::usage(format!("keyring pkcs11: {e}"));
        let config = Pkcs11Config::parse_uri(spec).map_err(usage)?;
        if let Some(path) = config.pin_source().map(|p| p.to_path_buf()) {
            let what = "PKCS#11 PIN file";
            let file = SecretFile::read(&path, MAX_PIN_FILE, what)?;
            file.enforce(what)?;
            return config
                .with_pin_file_contents(file.bytes())
                .map(Self)
                .map_err(usage);
        }
        if config.has_pin() {
            eprintln!(
                "envcrypt: warning: keyring pkcs11: a PIN in pin-value is visible to other \
                 users of this machine (ps, /proc); use pin-source=FILE or {}",
                PIN_ENV
            );
            return Ok(Self(config));
        }
        // Neither in the URI: the environment, as the library resolves it.
        Pkcs11Config::from_uri(spec).map(Self).map_err(usage)
    }

    /// The EDK namespace (provider id; default `pkcs11`).
    pub fn namespace(&self) -> &str {
        self.0.namespace()
    }

    /// The EDK key name: `name=` of the URI, else the object label, else the id in hex.
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// Loads the module, logs in and finds the key.
    pub fn build(&self) -> Result<Arc<dyn Keyring>, AppError> {
        let config = &self.0;
        let what = format!(
            "keyring pkcs11 (token {:?}, {})",
            config.token_label(),
            match (config.key_label(), config.key_id()) {
                (Some(label), _) => format!("object {label:?}"),
                (None, Some(id)) => format!("id {}", hex::encode(id)),
                (None, None) => "no key".to_owned(),
            }
        );
        match Pkcs11Keyring::new(config.clone()) {
            Ok(keyring) => Ok(Arc::new(keyring)),
            Err(e) if e.is_unavailable() => Err(AppError::lib(what, e.into())),
            Err(e) => Err(AppError::usage(format!("{what}: {e}"))),
        }
    }
}
