//! [`Pkcs11Config`]: which module, token, PIN and key a [`super::Pkcs11Keyring`] uses, and
//! its RFC 7512 URI form.

use core::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::keyring::KeyringError;

/// Environment variable read by [`Pkcs11Config::from_uri`] when the URI has no `pin-value`
/// and no `pin-source`.
pub const PIN_ENV: &str = "ENVCRYPT_PKCS11_PIN";

/// Largest PIN file read (`pin-source`).
pub const MAX_PIN_FILE: u64 = 1024;

/// Default EDK namespace (provider id) of PKCS#11 keyrings.
pub const DEFAULT_NAMESPACE: &str = "pkcs11";

/// Which kind of key object the configuration may select (URI attribute `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pkcs11ObjectType {
    /// An AES secret key (`type=secret-key`).
    SecretKey,
    /// An RSA key pair (`type=private` or `type=public`): the public key object encrypts, the
    /// private key object decrypts.
    KeyPair,
}

/// How to reach a key in a PKCS#11 token.
///
/// Built in code ([`Pkcs11Config::new`] and the `with_*` methods) or parsed from the
/// RFC 7512 URI of the tool's `-k pkcs11:...` spec ([`Pkcs11Config::from_uri`]). The PIN is
/// zeroized on drop and never shown by `Debug` or in errors.
///
/// ```
/// use envcrypt::keyring::Pkcs11Config;
/// let config = Pkcs11Config::parse_uri(
///     "pkcs11:token=hsm-a;object=imaging-2026?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
/// )?;
/// assert_eq!(config.token_label(), "hsm-a");
/// assert_eq!(config.key_label(), Some("imaging-2026"));
/// assert_eq!((config.namespace(), config.name().as_str()), ("pkcs11", "imaging-2026"));
/// assert!(!format!("{config:?}").contains("1234"));
/// # Ok::<(), envcrypt::keyring::KeyringError>(())
/// ```
#[derive(Clone)]
pub struct Pkcs11Config {
    module_path: PathBuf,
    token_label: String,
    token_serial: Option<String>,
    key_label: Option<String>,
    key_id: Option<Vec<u8>>,
    object_type: Option<Pkcs11ObjectType>,
    pin: Option<Zeroizing<String>>,
    pin_source: Option<PathBuf>,
    namespace: String,
    name: Option<String>,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module_path", &self.module_path)
            .field("token_label", &self.token_label)
            .field("token_serial", &self.token_serial)
            .field("key_label", &self.key_label)
            .field("key_id", &self.key_id.as_deref().map(hex))
            .field("object_type", &self.object_type)
            .field("pin", &self.pin.as_ref().map(|_| "<redacted>"))
            .field("pin_source", &self.pin_source)
            .field("namespace", &self.namespace)
            .field("name", &self.name())
            .finish()
    }
}

impl Pkcs11Config {
    /// A configuration for the token labelled `token_label` of the PKCS#11 module (shared
    /// library) at `module_path`. Name the key with [`Self::with_key_label`] and/or
    /// [`Self::with_key_id`].
    pub fn new(module_path: impl Into<PathBuf>, token_label: impl Into<String>) -> Self {
        Self {
            module_path: module_path.into(),
            token_label: token_label.into(),
            token_serial: None,
            key_label: None,
            key_id: None,
            object_type: None,
            pin: None,
            pin_source: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            name: None,
        }
    }

    /// Selects the key by its `CKA_LABEL`.
    pub fn with_key_label(mut self, label: impl Into<String>) -> Self {
        self.key_label = Some(label.into());
        self
    }

    /// Selects the key by its `CKA_ID`.
    pub fn with_key_id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.key_id = Some(id.into());
        self
    }

    /// Restricts the key to one kind of object.
    pub fn with_object_type(mut self, object_type: Pkcs11ObjectType) -> Self {
        self.object_type = Some(object_type);
        self
    }

    /// Also requires the token's serial number to match.
    pub fn with_token_serial(mut self, serial: impl Into<String>) -> Self {
        self.token_serial = Some(serial.into());
        self
    }

    /// The user PIN (taken by value; zeroized on drop).
    pub fn with_pin(mut self, pin: impl Into<String>) -> Self {
        self.pin = Some(Zeroizing::new(pin.into()));
        self
    }

    /// The user PIN from the contents of a PIN file: one trailing newline (`\n` or `\r\n`)
    /// is stripped; the rest must be non-empty UTF-8. The bytes are not kept.
    pub fn with_pin_file_contents(mut self, bytes: &[u8]) -> Result<Self, KeyringError> {
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let pin = core::str::from_utf8(bytes)
            .map_err(|_| KeyringError::InvalidKey("PKCS#11 PIN file is not valid UTF-8".into()))?;
        if pin.is_empty() {
            return Err(KeyringError::InvalidKey("PKCS#11 PIN file is empty".into()));
        }
        self.pin = Some(Zeroizing::new(pin.to_owned()));
        Ok(self)
    }

    /// The EDK namespace (provider id); default `pkcs11`.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The EDK key name; default the key label (else the key id in lowercase hex).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Path of the PKCS#11 module.
    pub fn module_path(&self) -> &Path {
        &self.module_path
    }

    /// Label of the token.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// Serial number the token must have, if set.
    pub fn token_serial(&self) -> Option<&str> {
        self.token_serial.as_deref()
    }

    /// `CKA_LABEL` of the key, if set.
    pub fn key_label(&self) -> Option<&str> {
        self.key_label.as_deref()
    }

    /// `CKA_ID` of the key, if set.
    pub fn key_id(&self) -> Option<&[u8]> {
        self.key_id.as_deref()
    }

    /// The kind of object the key must be, if restricted.
    pub fn object_type(&self) -> Option<Pkcs11ObjectType> {
        self.object_type
    }

    /// True when a PIN is configured.
    pub fn has_pin(&self) -> bool {
        self.pin.is_some()
    }

    /// The PIN file named by the URI's `pin-source`, if any ([`Self::from_uri`] reads it;
    /// [`Self::parse_uri`] only records it).
    pub fn pin_source(&self) -> Option<&Path> {
        self.pin_source.as_deref()
    }

    pub(super) fn pin(&self) -> Option<&str> {
        self.pin.as_deref().map(String::as_str)
    }

    /// The EDK namespace (provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The EDK key name: the configured one, else the key label, else the key id in hex.
    pub fn name(&self) -> String {
        match (&self.name, &self.key_label, &self.key_id) {
            (Some(n), _, _) => n.clone(),
            (None, Some(label), _) => label.clone(),
            (None, None, Some(id)) => hex(id),
            (None, None, None) => String::new(),
        }
    }

    /// A short description of the key for errors: token and label/id, never the PIN.
    pub(super) fn describe_key(&self) -> String {
        let mut s = format!("token {:?}", self.token_label);
        if let Some(label) = &self.key_label {
            s.push_str(&format!(" object {label:?}"));
        }
        if let Some(id) = &self.key_id {
            s.push_str(&format!(" id {}", hex(id)));
        }
        s
    }

    /// Checks that the configuration names a key and a usable namespace and name.
    pub fn validate(&self) -> Result<(), KeyringError> {
        let bad = |what: &str| Err(KeyringError::InvalidKey(format!("PKCS#11 keyring: {what}")));
        if self.module_path.as_os_str().is_empty() {
            return bad("no module path");
        }
        if self.token_label.is_empty() {
            return bad("no token label");
        }
        if self.key_label.as_deref().is_none_or(str::is_empty)
            && self.key_id.as_deref().is_none_or(<[u8]>::is_empty)
        {
            return bad("no key label (object) or id");
        }
        if self.namespace.is_empty() {
            return bad("empty namespace");
        }
        if self.namespace.starts_with("aws-kms") {
            return bad("namespace may not begin with aws-kms");
        }
        if self.name().is_empty() {
            return bad("empty key name");
        }
        Ok(())
    }

    /// Parses a `pkcs11:` URI (RFC 7512) and resolves the PIN: `pin-value`, else the file
    /// named by `pin-source` (a regular file that group and others cannot write; see
    /// [`Self::with_pin_file_contents`]), else the environment variable
    /// `ENVCRYPT_PKCS11_PIN` if set.
    ///
    /// See [`Self::parse_uri`] for the accepted attributes.
    pub fn from_uri(uri: &str) -> Result<Self, KeyringError> {
        let mut config = Self::parse_uri(uri)?;
        if let Some(path) = config.pin_source.clone() {
            let bytes = read_pin_file(&path)?;
            return config.with_pin_file_contents(&bytes);
        }
        if config.pin.is_none() {
            if let Some(pin) = std::env::var_os(PIN_ENV) {
                let pin = pin.into_string().map_err(|_| {
                    KeyringError::InvalidKey(format!("{PIN_ENV} is not valid UTF-8"))
                })?;
                config.pin = Some(Zeroizing::new(pin));
            }
        }
        Ok(config)
    }

    /// Parses a `pkcs11:` URI (RFC 7512) without looking at the environment.
    ///
    /// Form: `pkcs11:token=LABEL;object=LABEL?module-path=PATH[&pin-value=PIN|&pin-source=FILE][&namespace=NS&name=NAME]`.
    /// Values are percent-decoded (`%2F`, `%3B`, ...; `+` is a plus sign).
    ///
    /// - path attributes (separated by `;`): `token` (required), `object` and/or `id` (at least
    ///   one; `id` is raw bytes, usually written `%01%02`), `serial` (token serial number),
    ///   `type` (`secret-key` for an AES key, `private` or `public` for an RSA key pair);
    /// - query attributes (separated by `&`): `module-path` (required), `pin-value` or
    ///   `pin-source` (a file holding the PIN: a path or a `file:` URI; not read here),
    ///   `namespace` and `name` (envcrypt's EDK namespace and key name).
    ///
    /// Vendor attributes (`x-...`) are ignored; any other attribute, a repeated attribute or a
    /// malformed escape is an error. Errors name the attribute, never a value.
    pub fn parse_uri(uri: &str) -> Result<Self, KeyringError> {
        let err = |what: String| KeyringError::InvalidKey(format!("pkcs11 URI: {what}"));
        let (scheme, rest) = uri
            .split_once(':')
            .ok_or_else(|| err("must begin with pkcs11:".into()))?;
        if !scheme.eq_ignore_ascii_case("pkcs11") {
            return Err(err("must begin with pkcs11:".into()));
        }
        if rest.contains('#') {
            return Err(err("a fragment (#) is not allowed".into()));
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));

        let mut token = None;
        let mut object = None;
        let mut id = None;
        let mut serial = None;
        let mut object_type = None;
        let mut module_path = None;
        let mut pin = None;
        let mut pin_source = None;
        let mut namespace = None;
        let mut name = None;

        fn set<T>(slot: &mut Option<T>, attr: &str, value: T) -> Result<(), KeyringError> {
            if slot.replace(value).is_some() {
                return Err(KeyringError::InvalidKey(format!(
                    "pkcs11 URI: attribute {attr} given twice"
                )));
            }
            Ok(())
        }

        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (attr, raw) = part
                .split_once('=')
                .ok_or_else(|| err(format!("path attribute {:?} has no value", shorten(part))))?;
            match attr {
                "token" => set(&mut token, attr, decode_utf8(attr, raw)?)?,
                "object" => set(&mut object, attr, decode_utf8(attr, raw)?)?,
                "id" => set(&mut id, attr, decode(attr, raw)?)?,
                "serial" => set(&mut serial, attr, decode_utf8(attr, raw)?)?,
                "type" => {
                    let t = match decode_utf8(attr, raw)?.as_str() {
                        "secret-key" => Pkcs11ObjectType::SecretKey,
                        "private" | "public" => Pkcs11ObjectType::KeyPair,
                        _ => return Err(err("type must be secret-key, private or public".into())),
                    };
                    set(&mut object_type, attr, t)?
                }
                a if a.starts_with("x-") => {}
                a => {
                    return Err(err(format!(
                    "unsupported path attribute {:?} (supported: token, object, id, serial, type)",
                    shorten(a)
                )))
                }
            }
        }
        // A PIN with an unencoded `&` splits into parts that look like attributes: when the
        // query holds a PIN, no unknown part is echoed.
        let holds_pin = query.contains("pin-value=");
        let shown = |text: &str| match holds_pin {
            true => "(not shown: the query holds a PIN)".to_owned(),
            false => format!("{:?}", shorten(text)),
        };
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (attr, raw) = part
                .split_once('=')
                .ok_or_else(|| err(format!("query attribute {} has no value", shown(part))))?;
            match attr {
                "module-path" => set(&mut module_path, attr, decode_utf8(attr, raw)?)?,
                "pin-value" => {
                    let bytes = Zeroizing::new(decode(attr, raw)?);
                    let pin_str = core::str::from_utf8(&bytes)
                        .map_err(|_| err("pin-value is not valid UTF-8".into()))?;
                    set(&mut pin, attr, Zeroizing::new(pin_str.to_owned()))?
                }
                "pin-source" => {
                    let path = file_path(&decode_utf8(attr, raw)?)
                        .ok_or_else(|| err("pin-source must be a path or a file: URI".into()))?;
                    set(&mut pin_source, attr, path)?
                }
                "namespace" => set(&mut namespace, attr, decode_utf8(attr, raw)?)?,
                "name" => set(&mut name, attr, decode_utf8(attr, raw)?)?,
                "module-name" => {
                    return Err(err(format!(
                        "{attr} is not supported (use module-path, and pin-source, pin-value or {PIN_ENV})"
                    )))
                }
                a if a.starts_with("x-") => {}
                a => {
                    return Err(err(format!(
                        "unsupported query attribute {} (supported: module-path, pin-value, pin-source, namespace, name)",
                        shown(a)
                    )))
                }
            }
        }

        let token = token.ok_or_else(|| err("token=LABEL is required".into()))?;
        let module_path = module_path.ok_or_else(|| err("module-path=PATH is required".into()))?;
        if object.is_none() && id.is_none() {
            return Err(err("object=LABEL or id=ID is required".into()));
        }
        if pin.is_some() && pin_source.is_some() {
            return Err(err("give pin-value or pin-source, not both".into()));
        }
        let config = Self {
            module_path: PathBuf::from(module_path),
            token_label: token,
            token_serial: serial,
            key_label: object,
            key_id: id,
            object_type,
            pin,
            pin_source,
            namespace: namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name,
        };
        config.validate()?;
        Ok(config)
    }
}

/// The path of a `pin-source` value: a plain path, `file:PATH` or `file:///PATH`. Empty, or
/// another authority than the local host, is refused.
fn file_path(value: &str) -> Option<PathBuf> {
    let path = match value.strip_prefix("file:") {
        Some(rest) => match rest.strip_prefix("//") {
            Some(rest) => rest.strip_prefix("localhost").unwrap_or(rest),
            None => rest,
        },
        None => value,
    };
    let local = !value.starts_with("file://") || path.starts_with('/');
    (local && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Reads a PIN file for [`Pkcs11Config::from_uri`]: a regular file (after symbolic links)
/// that group and others cannot write, read through the handle that was checked.
fn read_pin_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    use std::io::Read;
    let shown = path.display();
    let err = |what: String| KeyringError::InvalidKey(format!("PKCS#11 PIN file {shown}: {what}"));
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let meta = file.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o022 != 0 {
            return Err(err("writable by group or others; refusing it".into()));
        }
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_PIN_FILE as usize + 1));
    file.take(MAX_PIN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_PIN_FILE {
        return Err(err(format!("larger than {MAX_PIN_FILE} bytes")));
    }
    Ok(bytes)
}

/// Percent-decodes one URI attribute value (RFC 3986 `%XX`; no `+` for space).
fn decode(attr: &str, raw: &str) -> Result<Vec<u8>, KeyringError> {
    let bad = || {
        KeyringError::InvalidKey(format!(
            "pkcs11 URI: attribute {attr} has a malformed percent escape"
        ))
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(bad());
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_utf8(attr: &str, raw: &str) -> Result<String, KeyringError> {
    String::from_utf8(decode(attr, raw)?).map_err(|_| {
        KeyringError::InvalidKey(format!("pkcs11 URI: attribute {attr} is not valid UTF-8"))
    })
}

/// Lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// At most 32 characters of an unrecognised attribute, for an error message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "module-path=/usr/lib/softhsm/libsofthsm2.so";

    #[test]
    fn a_pin_split_by_an_unencoded_ampersand_is_not_echoed() {
        for uri in [
            format!("pkcs11:token=t;object=o?{M}&pin-value=ab&cd99"),
            format!("pkcs11:token=t;object=o?{M}&pin-value=ab&cd99=x"),
        ] {
            let e = Pkcs11Config::parse_uri(&uri).unwrap_err().to_string();
            assert!(!e.contains("cd99") && !e.contains("ab"), "{e}");
            assert!(e.contains("not shown"), "{e}");
        }
        // Without a PIN the offending part is named.
        let e = Pkcs11Config::parse_uri(&format!("pkcs11:token=t;object=o?{M}&cd99"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cd99"), "{e}");
    }

    #[test]
    fn parses_the_cli_form() {
        let c = Pkcs11Config::parse_uri(&format!(
            "pkcs11:token=hsm;object=key-1?{M}&pin-value=12%2634&namespace=ns&name=n%20m"
        ))
        .unwrap();
        assert_eq!(
            c.module_path(),
            Path::new("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(c.token_label(), "hsm");
        assert_eq!(c.key_label(), Some("key-1"));
        assert_eq!(c.pin(), Some("12&34"));
        assert_eq!(c.namespace(), "ns");
        assert_eq!(c.name(), "n m");
        let shown = format!("{c:?}");
        assert!(!shown.contains("12&34") && shown.contains("<redacted>"));
    }

    #[test]
    fn defaults_and_id() {
        let c = Pkcs11Config::parse_uri(&format!(
            "PKCS11:token=My%20Token;id=%01%ff;type=secret-key;x-vendor=1?{M}"
        ))
        .unwrap();
        assert_eq!(c.token_label(), "My Token");
        assert_eq!(c.key_id(), Some(&[1u8, 255][..]));
        assert_eq!(c.object_type(), Some(Pkcs11ObjectType::SecretKey));
        assert_eq!(c.namespace(), "pkcs11");
        assert_eq!(c.name(), "01ff");
        assert!(!c.has_pin());
    }

    #[test]
    fn pin_source_forms_and_file_contents() {
        for (value, path) in [
            ("/run/secrets/pin", "/run/secrets/pin"),
            ("file:/run/secrets/pin", "/run/secrets/pin"),
            ("file:///run/secrets/pin", "/run/secrets/pin"),
            ("file://localhost/run/pin", "/run/pin"),
            ("pin%20file", "pin file"),
        ] {
            let c =
                Pkcs11Config::parse_uri(&format!("pkcs11:token=t;object=o?{M}&pin-source={value}"))
                    .unwrap();
            assert_eq!(c.pin_source(), Some(Path::new(path)), "{value}");
            assert!(!c.has_pin());
        }

        let c = Pkcs11Config::new("/m", "t")
            .with_pin_file_contents(b"12 34\r\n")
            .unwrap();
        assert_eq!(c.pin(), Some("12 34"));
        let empty = Pkcs11Config::new("/m", "t").with_pin_file_contents(b"\n");
        assert!(empty.is_err());
    }

    #[test]
    fn refuses_bad_uris_without_echoing_secrets() {
        for uri in [
            "pkcs12:token=a;object=b?module-path=/m",
            "pkcs11:object=b?module-path=/m",
            "pkcs11:token=a?module-path=/m",
            "pkcs11:token=a;object=b",
            "pkcs11:token=a;object=b;object=c?module-path=/m",
            "pkcs11:token=a;object=b%2?module-path=/m",
            "pkcs11:token=a;object=b%zz?module-path=/m",
            "pkcs11:token=a;object=b;slot=1?module-path=/m",
            "pkcs11:token=a;object=b?module-path=/m&pin-source=",
            "pkcs11:token=a;object=b?module-path=/m&pin-source=file://host/p",
            "pkcs11:token=a;object=b?module-path=/m&pin-source=/p&pin-value=secret-pin",
            "pkcs11:token=a;object=b?module-path=/m&pin-source=/p&pin-source=/q",
            "pkcs11:token=a;object=b?module-path=/m&namespace=aws-kms-x",
            "pkcs11:token=a;object=b?module-path=/m&pin-value=secret-pin&pin-value=secret-pin",
            "pkcs11:token=a;object=b?module-path=/m&pin-value=%ff%fe",
            "pkcs11:token=a;object=b?module-path=/m#frag",
        ] {
            let e = Pkcs11Config::parse_uri(uri).expect_err(uri);
            assert!(matches!(e, KeyringError::InvalidKey(_)), "{uri}: {e:?}");
            assert!(!e.to_string().contains("secret-pin"), "{e}");
        }
    }
}
