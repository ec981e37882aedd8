//! The PKCS#11 keyring: a key that never leaves an HSM (feature `pkcs11`).
//!
//! - **AES key** (`CKO_SECRET_KEY`, `CKK_AES`, 128/192/256-bit): the data key is encrypted
//!   inside the token with `CKM_AES_GCM` through `C_Encrypt`/`C_Decrypt` (12-byte random IV,
//!   128-bit tag, AAD = the serialized encryption context), written in the **raw AES** EDK
//!   format: provider info = key name || `u32` 128 || `u32` 12 || IV, ciphertext = wrapped
//!   key || tag. A key imported into the token can therefore be escrowed: any ESDK raw AES
//!   keyring (or envcrypt's [`RawAesKeyring`](super::RawAesKeyring)) holding the same bytes
//!   under the same namespace and name decrypts these messages, and the other way round.
//! - **RSA key pair** (`CKK_RSA`): `CKM_RSA_PKCS_OAEP` with SHA-1 and MGF1-SHA-1, empty label
//!   (the only OAEP hash SoftHSM 2.6 offers), written in the **raw RSA** EDK format (provider
//!   info = key name, ciphertext = the RSA ciphertext): a raw RSA keyring with padding
//!   [`RsaPadding::OaepSha1`] and the same key pair reads it. The public key object encrypts,
//!   the private key object decrypts.
//!
//! The key may be `CKA_SENSITIVE` and non-extractable: only ciphertext and the data key cross
//! the module boundary. The data key and IVs come from the client's crypto provider.
//!
//! Errors: a wrong or missing PIN is [`KeyringError::AccessDenied`]; a module that does not
//! load, a token that is not present or a token that stops answering is
//! [`KeyringError::Unavailable`] (transient: the next call tries again); a token that has no
//! such key (or several) is [`KeyringError::InvalidKey`] (the configuration is wrong); an EDK
//! of ours that does not decrypt is [`KeyringError::UnwrapFailed`]; no EDK of ours is
//! [`KeyringError::NoMatchingKey`] (and then the token is not touched). The PIN never appears
//! in `Debug` output or errors.
//!
//! Calls into the module are blocking and short (one `C_Encrypt`/`C_Decrypt` of 32 bytes);
//! they run inline in the async methods. Sessions are pooled per token and shared by every
//! keyring of the process on that token (see `token.rs`), so one keyring serves many
//! threads at once.

mod config;
mod token;

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cryptoki::error::Error as CkError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use zeroize::Zeroizing;

pub use config::{Pkcs11Config, Pkcs11ObjectType, DEFAULT_NAMESPACE, PIN_ENV};

use super::{raw_aes_edk, Keyring, KeyringError};
use crate::crypto::{RsaPadding, NONCE_LEN, TAG_LEN};
use crate::format::EncryptedDataKey;
use crate::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};
use token::Token;

/// What kind of key a [`Pkcs11Keyring`] found in its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pkcs11KeyKind {
    /// An AES key; EDKs in the raw AES format.
    Aes {
        /// Key size in bits (128, 192 or 256).
        bits: usize,
    },
    /// An RSA key pair; EDKs in the raw RSA format.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
        /// The padding of the EDKs: always [`RsaPadding::OaepSha1`].
        padding: RsaPadding,
        /// A public key object was found (needed to encrypt).
        can_encrypt: bool,
        /// A private key object was found (needed to decrypt).
        can_decrypt: bool,
    },
}

/// The key objects found in the token.
#[derive(Debug, Clone, Copy)]
enum KeyObjects {
    Aes {
        key: ObjectHandle,
        len: usize,
    },
    Rsa {
        public: Option<ObjectHandle>,
        private: Option<ObjectHandle>,
        bits: usize,
    },
}

struct Connected {
    token: Arc<Token>,
    key: KeyObjects,
}

/// Wraps data keys with a key held in a PKCS#11 token (HSM, smart card, SoftHSM2).
///
/// ```no_run
/// use envcrypt::keyring::{Pkcs11Config, Pkcs11Keyring};
/// let config = Pkcs11Config::new("/usr/lib/softhsm/libsofthsm2.so", "hsm-a")
///     .with_key_label("imaging-2026")
///     .with_pin(std::env::var("ENVCRYPT_PKCS11_PIN").unwrap_or_default());
/// let keyring = Pkcs11Keyring::new(config)?; // logs in and finds the key
/// let client = envcrypt::Client::new(keyring);
/// # Ok::<(), envcrypt::keyring::KeyringError>(())
/// ```
pub struct Pkcs11Keyring {
    config: Pkcs11Config,
    namespace: String,
    name: String,
    state: Mutex<Option<Arc<Connected>>>,
}

impl core::fmt::Debug for Pkcs11Keyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let key = lock(&self.state).as_ref().map(|c| c.key);
        f.debug_struct("Pkcs11Keyring")
            .field("config", &self.config)
            .field("key", &key)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pkcs11Keyring {
    /// Validates `config`, loads the module, logs in to the token and finds the key, so that
    /// every configuration error surfaces here.
    pub fn new(config: Pkcs11Config) -> Result<Self, KeyringError> {
        let keyring = Self::new_lazy(config)?;
        keyring.connected()?;
        Ok(keyring)
    }

    /// Validates `config` only; the token is first reached when a key is wrapped or one of
    /// our EDKs is unwrapped (so a decrypting multi-keyring that never needs the HSM never
    /// touches it). A failed connection is retried on the next call.
    pub fn new_lazy(config: Pkcs11Config) -> Result<Self, KeyringError> {
        config.validate()?;
        Ok(Self {
            namespace: config.namespace().to_owned(),
            name: config.name(),
            config,
            state: Mutex::new(None),
        })
    }

    /// The configuration (the PIN stays hidden).
    pub fn config(&self) -> &Pkcs11Config {
        &self.config
    }

    /// EDK namespace (provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// EDK key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of key in the token (connects if not yet connected).
    pub fn key_kind(&self) -> Result<Pkcs11KeyKind, KeyringError> {
        Ok(match self.connected()?.key {
            KeyObjects::Aes { len, .. } => Pkcs11KeyKind::Aes { bits: len * 8 },
            KeyObjects::Rsa {
                public,
                private,
                bits,
            } => Pkcs11KeyKind::Rsa {
                bits,
                padding: RsaPadding::OaepSha1,
                can_encrypt: public.is_some(),
                can_decrypt: private.is_some(),
            },
        })
    }

    /// The live connection, made (again) if there is none or the token broke.
    fn connected(&self) -> Result<Arc<Connected>, KeyringError> {
        let mut state = lock(&self.state);
        if let Some(c) = state.as_ref() {
            if !c.token.is_broken() {
                return Ok(Arc::clone(c));
            }
        }
        *state = None;
        let c = Arc::new(self.connect()?);
        *state = Some(Arc::clone(&c));
        Ok(c)
    }

    fn connect(&self) -> Result<Connected, KeyringError> {
        let cfg = &self.config;
        let ctx = token::module(cfg.module_path())?;
        let slot = token::find_slot(&ctx, cfg.token_label(), cfg.token_serial())?;
        let token = Token::open(cfg.module_path(), &ctx, slot, cfg.token_label(), cfg.pin())?;
        let what = format!("finding the key ({})", cfg.describe_key());
        let key = token
            .with_session(|s| self.find_key(s))
            .map_err(|e| token::op_error(&what, &e))??;
        Ok(Connected { token, key })
    }

    /// Finds the key objects named by the configuration. The outer error is the module's
    /// (the session pool sees it); the inner one says the token holds no usable key.
    fn find_key(&self, s: &Session) -> Result<Result<KeyObjects, KeyringError>, CkError> {
        let cfg = &self.config;
        let what = cfg.describe_key();
        let find = |class: ObjectClass| -> Result<Vec<ObjectHandle>, CkError> {
            let mut template = vec![Attribute::Class(class)];
            if let Some(label) = cfg.key_label() {
                template.push(Attribute::Label(label.as_bytes().to_vec()));
            }
            if let Some(id) = cfg.key_id() {
                template.push(Attribute::Id(id.to_vec()));
            }
            s.find_objects(&template)
        };
        let want = cfg.object_type();
        let secret = if want != Some(Pkcs11ObjectType::KeyPair) {
            find(ObjectClass::SECRET_KEY)?
        } else {
            Vec::new()
        };
        let (private, public) = if want != Some(Pkcs11ObjectType::SecretKey) {
            (
                find(ObjectClass::PRIVATE_KEY)?,
                find(ObjectClass::PUBLIC_KEY)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let invalid = |why: String| {
            Ok(Err(KeyringError::InvalidKey(format!(
                "PKCS#11 {what}: {why}"
            ))))
        };
        if secret.len() > 1 || private.len() > 1 || public.len() > 1 {
            return invalid("several key objects match; give both object and id".into());
        }
        let pair_found = !private.is_empty() || !public.is_empty();
        if !secret.is_empty() && pair_found {
            return invalid(
                "both a secret key and a key pair match; add type=secret-key or type=private"
                    .into(),
            );
        }
        if let Some(&key) = secret.first() {
            let mut key_type = None;
            let mut len = None;
            for a in s.get_attributes(key, &[AttributeType::KeyType, AttributeType::ValueLen])? {
                match a {
                    Attribute::KeyType(t) => key_type = Some(t),
                    Attribute::ValueLen(l) => len = Some(usize::from(l)),
                    _ => {}
                }
            }
            if key_type != Some(KeyType::AES) {
                return invalid("the secret key is not an AES key".into());
            }
            return match len {
                Some(len @ (16 | 24 | 32)) => Ok(Ok(KeyObjects::Aes { key, len })),
                _ => invalid("the AES key is not 128, 192 or 256 bits".into()),
            };
        }
        let (public, private) = (public.first().copied(), private.first().copied());
        let Some(any) = public.or(private) else {
            return invalid("no such key in the token".into());
        };
        let mut key_type = None;
        let mut bits = 0;
        for a in s.get_attributes(any, &[AttributeType::KeyType, AttributeType::Modulus])? {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::Modulus(m) => {
                    let m = m.iter().skip_while(|b| **b == 0).count();
                    bits = m * 8;
                }
                _ => {}
            }
        }
        if key_type != Some(KeyType::RSA) {
            return invalid("the key pair is not an RSA key pair".into());
        }
        Ok(Ok(KeyObjects::Rsa {
            public,
            private,
            bits,
        }))
    }

    /// Runs `f` on a session of the connected token; maps a failure with [`token::op_error`]
    /// unless `f` itself classified it.
    fn run<T>(
        conn: &Connected,
        what: &str,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<T, KeyringError> {
        conn.token
            .with_session(f)
            .map_err(|e| token::op_error(what, &e))
    }

    fn unwrap_failed(&self) -> KeyringError {
        KeyringError::UnwrapFailed {
            provider_id: self.namespace.clone(),
            key_name: self.name.clone(),
        }
    }
}

#[async_trait]
impl Keyring for Pkcs11Keyring {
    async fn on_encrypt(
        &self,
        mut materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let conn = self.connected()?;
        let provider = materials.provider;
        if materials.data_key.is_none() {
            let mut fresh = Zeroizing::new(vec![0u8; materials.suite.data_key_len()]);
            provider.random.fill(&mut fresh)?;
            materials.data_key = Some(DataKey::new(core::mem::take(&mut *fresh)));
        }
        let data_key = materials
            .data_key
            .as_ref()
            .map(DataKey::expose_secret)
            .unwrap_or_default();
        let what = format!("wrapping the data key with {}", self.config.describe_key());
        let edk = match conn.key {
            KeyObjects::Aes { key, .. } => {
                let aad = materials
                    .encryption_context
                    .to_bytes()
                    .map_err(|e| KeyringError::InvalidKey(format!("encryption context: {e}")))?;
                let mut iv = [0u8; NONCE_LEN];
                provider.random.fill(&mut iv)?;
                let ciphertext = Self::run(&conn, &what, |s| {
                    let params = GcmParams::new(&mut iv, &aad, Ulong::try_from(TAG_LEN * 8)?)?;
                    s.encrypt(&Mechanism::AesGcm(params), key, data_key)
                })?;
                let Some((wrapped, tag)) =
                    raw_aes_edk::split_tag(&ciphertext).filter(|(w, _)| w.len() == data_key.len())
                else {
                    return Err(KeyringError::Unavailable(format!(
                        "{what}: the token returned {} bytes, expected {}",
                        ciphertext.len(),
                        data_key.len() + TAG_LEN
                    )));
                };
                // `iv` is read back after the call: a token that generates the IV itself
                // writes it into the parameters.
                raw_aes_edk::encode(&self.namespace, &self.name, &iv, wrapped.to_vec(), tag)
            }
            KeyObjects::Rsa { public, .. } => {
                let public = public.ok_or(KeyringError::Unsupported(
                    "encrypting with a PKCS#11 RSA key pair that has no public key object",
                ))?;
                let ciphertext =
                    Self::run(&conn, &what, |s| s.encrypt(&oaep_sha1(), public, data_key))?;
                EncryptedDataKey {
                    provider_id: self.namespace.clone(),
                    provider_info: self.name.as_bytes().to_vec(),
                    ciphertext,
                }
            }
        };
        materials.encrypted_data_keys.push(edk);
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        mut materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            return Ok(materials);
        }
        // Not ours (cheap check, no token access): no EDK with our namespace and name prefix.
        if !encrypted_data_keys.iter().any(|edk| {
            edk.provider_id == self.namespace && edk.provider_info.starts_with(self.name.as_bytes())
        }) {
            return Err(KeyringError::NoMatchingKey);
        }
        let conn = self.connected()?;
        let key_len = materials.suite.data_key_len();
        let what = format!("unwrapping a data key with {}", self.config.describe_key());
        let mut failure = KeyringError::NoMatchingKey;
        match conn.key {
            KeyObjects::Aes { key, .. } => {
                let aad = materials
                    .encryption_context
                    .to_bytes()
                    .map_err(|e| KeyringError::InvalidKey(format!("encryption context: {e}")))?;
                for edk in encrypted_data_keys {
                    let Some(ours) = raw_aes_edk::decode(edk, &self.namespace, &self.name) else {
                        continue;
                    };
                    failure = self.unwrap_failed();
                    if ours.split().is_none_or(|(w, _)| w.len() != key_len) {
                        continue;
                    }
                    // The token takes the EDK's ciphertext as stored (wrapped key || tag).
                    let mut iv = ours.iv;
                    let result = conn.token.with_session(|s| {
                        let params = GcmParams::new(&mut iv, &aad, Ulong::try_from(TAG_LEN * 8)?)?;
                        s.decrypt(&Mechanism::AesGcm(params), key, ours.ciphertext)
                            .map(Zeroizing::new)
                    });
                    match result {
                        Ok(plain) if plain.len() == key_len => {
                            let mut plain = plain;
                            materials.data_key = Some(DataKey::new(core::mem::take(&mut *plain)));
                            return Ok(materials);
                        }
                        Ok(_) => {}
                        Err(e) if token::is_unwrap_refusal(&e) => {}
                        Err(e) => return Err(token::op_error(&what, &e)),
                    }
                }
            }
            KeyObjects::Rsa { private, .. } => {
                for edk in encrypted_data_keys {
                    if edk.provider_id != self.namespace
                        || edk.provider_info != self.name.as_bytes()
                    {
                        continue;
                    }
                    let private = private.ok_or(KeyringError::Unsupported(
                        "decrypting with a PKCS#11 RSA key pair that has no private key object",
                    ))?;
                    failure = self.unwrap_failed();
                    let result = conn.token.with_session(|s| {
                        s.decrypt(&oaep_sha1(), private, &edk.ciphertext)
                            .map(Zeroizing::new)
                    });
                    match result {
                        Ok(plain) if plain.len() == key_len => {
                            let mut plain = plain;
                            materials.data_key = Some(DataKey::new(core::mem::take(&mut *plain)));
                            return Ok(materials);
                        }
                        Ok(_) => {}
                        Err(e) if token::is_unwrap_refusal(&e) => {}
                        Err(e) => return Err(token::op_error(&what, &e)),
                    }
                }
            }
        }
        Err(failure)
    }
}

/// `CKM_RSA_PKCS_OAEP` with SHA-1, MGF1-SHA-1 and an empty label.
fn oaep_sha1() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ))
}
