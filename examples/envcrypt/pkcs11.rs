//! `-k pkcs11:token=LABEL;object=LABEL?module-path=PATH[&pin-value=PIN][&namespace=NS&name=NAME]`
//! (built with `--features pkcs11`).
//!
//! The spec is an RFC 7512 URI; the PIN comes from `pin-value` or, failing that, from
//! `ENVCRYPT_PKCS11_PIN`. Nothing here prints the spec past its type, nor the PIN.
//!
//! The keyring connects when it is built (logs in, finds the key), so a bad spec fails before
//! any output is written: wrong or missing PIN, token not present or module not loadable exit
//! 4; a key that is not in the token (or is ambiguous) exits 2.

use std::sync::Arc;

use envcrypt::keyring::{Keyring, Pkcs11Config, Pkcs11Keyring};

use crate::error::AppError;

/// A parsed `pkcs11:` spec.
#[derive(Debug)]
pub struct Pkcs11Spec(Pkcs11Config);

impl Pkcs11Spec {
    /// Parses the whole spec (`pkcs11:...`).
    pub fn parse(spec: &str) -> Result<Self, AppError> {
        Pkcs11Config::from_uri(spec)
            .map(Self)
            .map_err(|e| AppError::usage(format!("keyring pkcs11: {e}")))
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
