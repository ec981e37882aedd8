//! The raw RSA keyring: a local RSA key pair, interoperable with every official SDK.

use core::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::pem;
use super::{Keyring, KeyringError};
use crate::crypto::{CryptoError, CryptoProvider, RsaPadding, RsaPrivateKey, RsaPublicKey};
use crate::format::EncryptedDataKey;
use crate::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};

/// Wraps data keys with a local RSA key: the public key encrypts, the private key decrypts.
///
/// EDK format (shared with the official SDKs): provider id = namespace; provider info = the
/// key name, exactly (no length, no IV); ciphertext = the RSA encryption of the data key with
/// the keyring's padding. Unlike raw AES, the encryption context is not bound to the EDK.
/// Writer and reader must agree on the padding: an EDK made with another padding (or key)
/// fails to unwrap.
///
/// A keyring made from a public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) only
/// encrypts; one made from a private key (`-----BEGIN PRIVATE KEY-----`, unencrypted PKCS#8)
/// decrypts and also encrypts (with its public half).
///
/// Keys are kept as DER (the private one zeroized on drop) and parsed by the provider of each
/// message's materials ([`EncryptionMaterials::provider`]), so one keyring serves clients with
/// different providers; a private key is parsed once per provider and kept (parsing a
/// 4096-bit key costs about an eighth of a decryption). A provider without RSA (RustCrypto) answers
/// `KeyringError::Crypto(CryptoError::Unsupported("RSA"))`.
///
/// On decrypt, only EDKs whose provider id is the namespace and whose provider info is the
/// key name are tried ("mine"). None mine: [`KeyringError::NoMatchingKey`]; mine but none
/// unwraps to a data key of the suite's length: [`KeyringError::UnwrapFailed`]. A public-only
/// keyring asked to decrypt answers [`KeyringError::Unsupported`] whatever the EDKs (as the
/// official SDKs do), so a misconfiguration is not mistaken for "not mine"; in a
/// [`MultiKeyring`](super::MultiKeyring) the other keyrings are still tried.
///
/// ```
/// use envcrypt::crypto::{default_provider, RsaPadding};
/// use envcrypt::keyring::RawRsaKeyring;
/// use envcrypt::{Client, DecryptOptions, EncryptionContext};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use envcrypt::crypto::CryptoError;
/// # if matches!(default_provider().rsa.private_key(&[]), Err(CryptoError::Unsupported(_))) {
/// #     return Ok(()); // a build without an RSA provider
/// # }
/// // PKCS#8 and SubjectPublicKeyInfo DER, as `envcrypt keygen rsa` writes them in PEM.
/// let (pkcs8, spki) = default_provider().rsa.generate(3072)?;
/// let padding = RsaPadding::OaepSha256;
/// let sender = RawRsaKeyring::from_public_der("hospital-a", "rsa-2026", padding, &spki)?;
/// let recipient = RawRsaKeyring::from_private_der("hospital-a", "rsa-2026", padding, &pkcs8)?;
///
/// let context = EncryptionContext::from_pairs([("study", "ct-2026-05")]);
/// let message = Client::builder().keyring(sender).build()?.encrypt(b"DICM", &context)?;
/// let opened = Client::builder()
///     .keyring(recipient)
///     .build()?
///     .decrypt(&message, &DecryptOptions::default())?;
/// assert_eq!(opened.plaintext, b"DICM");
/// # Ok(())
/// # }
/// ```
pub struct RawRsaKeyring {
    namespace: String,
    name: String,
    padding: RsaPadding,
    /// SubjectPublicKeyInfo DER (public-only keyrings).
    public_key: Option<Vec<u8>>,
    /// PKCS#8 DER (decrypting keyrings); zeroized on drop.
    private_key: Option<Zeroizing<Vec<u8>>>,
    /// The private key as parsed by each provider used so far (providers are statics,
    /// told apart by address).
    parsed: Mutex<Vec<(&'static CryptoProvider, Arc<dyn RsaPrivateKey>)>>,
}

impl fmt::Debug for RawRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRsaKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("padding", &self.padding)
            .field("can_decrypt", &self.can_decrypt())
            .finish_non_exhaustive()
    }
}

/// Which key a DER or PEM document holds.
#[derive(Clone, Copy)]
enum KeyKind {
    Public,
    Private,
}

impl RawRsaKeyring {
    /// A keyring from one PEM key: `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo;
    /// encrypt only) or `-----BEGIN PRIVATE KEY-----` (unencrypted PKCS#8; decrypt and
    /// encrypt).
    ///
    /// Malformed PEM, another label (PKCS#1 `RSA PRIVATE KEY`, an encrypted or non-RSA key)
    /// and a body that is not an RSA key of that kind are refused with
    /// [`KeyringError::InvalidKey`] saying which. The key's numbers are checked by the
    /// provider at first use.
    ///
    /// ```
    /// use envcrypt::crypto::RsaPadding;
    /// use envcrypt::keyring::RawRsaKeyring;
    /// // The recipient's public key: this keyring can encrypt, not decrypt.
    /// let pem = "-----BEGIN PUBLIC KEY-----
    /// MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9sgu70LihpBZqbzCj8Jd
    /// 38k6WAstz+kvKfSXhjH/tVnsTS64mWfzUqtS8XJ/XCn+N4z1/HaTR0Qd7LEPVE6g
    /// UfjcD3T17ufzTFSicol2N/i9INoqHKm+GYgVGn2euRQKCF7QtSXv8U7Rqlw8SGGK
    /// IInpp0AqQYkiD4xjZtR6e92PdAm2CKicnojtrNa9BnpiQKYFCd5QVFgmhMX6zjIQ
    /// DqOatBYB5bka4vaQQrvGnuUnSF1fgomFtW0RkVPashWKsL41+iJBSFgDH5NHr6J+
    /// yKqf3NCJ4AZnAnB8SjXsj2SO9m9OrIYfrjTLFTRQ+n6ut+A9AlD5n7FuQV1lpeIs
    /// IQIDAQAB
    /// -----END PUBLIC KEY-----
    /// ";
    /// let keyring = RawRsaKeyring::from_pem("hospital-a", "rsa-2026", RsaPadding::OaepSha256, pem)?;
    /// assert!(!keyring.can_decrypt());
    /// # Ok::<(), envcrypt::keyring::KeyringError>(())
    /// ```
    pub fn from_pem(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        pem: &str,
    ) -> Result<Self, KeyringError> {
        let block =
            pem::decode(pem).map_err(|e| KeyringError::InvalidKey(format!("RSA key PEM: {e}")))?;
        let kind = match block.label.as_str() {
            "PUBLIC KEY" => KeyKind::Public,
            "PRIVATE KEY" => KeyKind::Private,
            "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => {
                return Err(KeyringError::InvalidKey(format!(
                    "RSA key PEM: {} (PKCS#1) is not supported; convert it to PKCS#8 / \
                     SubjectPublicKeyInfo (`openssl pkey -in KEY -out KEY.pem`, add `-pubout` \
                     for a public key)",
                    block.label
                )))
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyringError::InvalidKey(
                    "RSA key PEM: encrypted private keys are not supported; decrypt it to an \
                     unencrypted PKCS#8 key (`openssl pkey -in KEY -out KEY.pem`)"
                        .into(),
                ))
            }
            other => {
                return Err(KeyringError::InvalidKey(format!(
                    "RSA key PEM: label {:?} is neither PUBLIC KEY nor PRIVATE KEY",
                    other.chars().take(64).collect::<String>()
                )))
            }
        };
        Self::from_der(namespace, name, padding, kind, &block.der)
    }

    /// An encrypt-only keyring from a DER SubjectPublicKeyInfo RSA public key (example on
    /// [`RawRsaKeyring`]).
    pub fn from_public_der(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        spki: &[u8],
    ) -> Result<Self, KeyringError> {
        Self::from_der(namespace, name, padding, KeyKind::Public, spki)
    }

    /// A keyring that decrypts (and encrypts) from a DER unencrypted PKCS#8 RSA private key
    /// (example on [`RawRsaKeyring`]).
    pub fn from_private_der(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        pkcs8: &[u8],
    ) -> Result<Self, KeyringError> {
        Self::from_der(namespace, name, padding, KeyKind::Private, pkcs8)
    }

    fn from_der(
        namespace: &str,
        name: &str,
        padding: RsaPadding,
        kind: KeyKind,
        der: &[u8],
    ) -> Result<Self, KeyringError> {
        if namespace.starts_with("aws-kms") {
            return Err(KeyringError::InvalidKey(
                "namespace may not begin with aws-kms".into(),
            ));
        }
        let (public_key, private_key) = match kind {
            KeyKind::Public => {
                der::check_spki(der).map_err(|why| {
                    KeyringError::InvalidKey(format!(
                        "not an RSA SubjectPublicKeyInfo public key: {why}"
                    ))
                })?;
                (Some(der.to_vec()), None)
            }
            KeyKind::Private => {
                der::check_pkcs8(der).map_err(|why| {
                    KeyringError::InvalidKey(format!("not an RSA PKCS#8 private key: {why}"))
                })?;
                (None, Some(Zeroizing::new(der.to_vec())))
            }
        };
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            padding,
            public_key,
            private_key,
            parsed: Mutex::new(Vec::new()),
        })
    }

    /// The namespace (the EDKs' provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name (the EDKs' provider info).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The padding used to wrap and unwrap.
    pub fn padding(&self) -> RsaPadding {
        self.padding
    }

    /// True when the keyring holds a private key (it can decrypt).
    pub fn can_decrypt(&self) -> bool {
        self.private_key.is_some()
    }

    /// The public key, parsed by `provider` (from the private key when that is what we hold).
    fn public(
        &self,
        provider: &'static CryptoProvider,
    ) -> Result<Box<dyn RsaPublicKey>, KeyringError> {
        match (&self.public_key, &self.private_key) {
            (Some(spki), _) => provider
                .rsa
                .public_key(spki)
                .map_err(|e| key_error(e, "public", provider)),
            (None, Some(_)) => Ok(self.private(provider)?.public_key()?),
            (None, None) => Err(KeyringError::Unsupported("raw RSA keyring without a key")),
        }
    }

    /// The private key, parsed by `provider` (once: kept for the next messages).
    fn private(
        &self,
        provider: &'static CryptoProvider,
    ) -> Result<Arc<dyn RsaPrivateKey>, KeyringError> {
        let pkcs8 = self.private_key.as_ref().ok_or(KeyringError::Unsupported(
            "a raw RSA keyring with only a public key cannot decrypt",
        ))?;
        let mut parsed = self.parsed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, key)) = parsed.iter().find(|(p, _)| core::ptr::eq(*p, provider)) {
            return Ok(Arc::clone(key));
        }
        let key: Arc<dyn RsaPrivateKey> = provider
            .rsa
            .private_key(pkcs8)
            .map_err(|e| key_error(e, "private", provider))?
            .into();
        parsed.push((provider, Arc::clone(&key)));
        Ok(key)
    }

    fn is_mine(&self, edk: &EncryptedDataKey) -> bool {
        edk.provider_id == self.namespace && edk.provider_info == self.name.as_bytes()
    }
}

/// A provider's refusal of a key: `Unsupported` stays a crypto error (the provider has no
/// RSA); anything else means the key is unusable.
fn key_error(e: CryptoError, which: &str, provider: &CryptoProvider) -> KeyringError {
    match e {
        CryptoError::Unsupported(_) => KeyringError::Crypto(e),
        _ => KeyringError::InvalidKey(format!(
            "RSA {which} key refused by provider {} ({e}; RSA keys of 2048 to 8192 bits)",
            provider.name
        )),
    }
}

#[async_trait]
impl Keyring for RawRsaKeyring {
    async fn on_encrypt(
        &self,
        mut materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let provider = materials.provider;
        // Parse the key before making a data key: a provider without RSA fails up front.
        let public = self.public(provider)?;
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
        let ciphertext = public.encrypt(self.padding, data_key)?;
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: self.namespace.clone(),
            provider_info: self.name.as_bytes().to_vec(),
            ciphertext,
        });
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
        if self.private_key.is_none() {
            return Err(KeyringError::Unsupported(
                "a raw RSA keyring with only a public key cannot decrypt",
            ));
        }
        let key_len = materials.suite.data_key_len();
        let mut private = None;
        let mut failure = KeyringError::NoMatchingKey;
        for edk in encrypted_data_keys.iter().filter(|edk| self.is_mine(edk)) {
            failure = KeyringError::UnwrapFailed {
                provider_id: edk.provider_id.clone(),
                key_name: self.name.clone(),
            };
            // Parsed once, at the first EDK of ours.
            let key = match &private {
                Some(key) => key,
                None => private.insert(self.private(materials.provider)?),
            };
            match key.decrypt(self.padding, &edk.ciphertext) {
                Ok(mut plain) if plain.len() == key_len => {
                    materials.data_key = Some(DataKey::new(core::mem::take(&mut *plain)));
                    return Ok(materials);
                }
                // Wrong key or padding, or not a data key of this suite: try the next one.
                _ => {}
            }
        }
        Err(failure)
    }
}

/// Just enough DER to tell an RSA key from something else before any provider sees it. The
/// provider parses the key for real.
mod der {
    /// rsaEncryption, 1.2.840.113549.1.1.1.
    const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    const OID: u8 = 0x06;
    const SEQUENCE: u8 = 0x30;

    /// Splits one element with tag `tag` off `input`: (content, rest).
    fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), &'static str> {
        let (&t, rest) = input.split_first().ok_or("truncated DER")?;
        if t != tag {
            return Err("unexpected DER structure");
        }
        let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81..=0x84 => {
                let n = usize::from(first & 0x7f);
                if rest.len() < n {
                    return Err("truncated DER");
                }
                let (bytes, rest) = rest.split_at(n);
                let len = bytes
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                (len, rest)
            }
            _ => return Err("unsupported DER length"),
        };
        if rest.len() < len {
            return Err("truncated DER");
        }
        Ok(rest.split_at(len))
    }

    /// One whole SEQUENCE and nothing after it: its content.
    fn only_sequence(der: &[u8]) -> Result<&[u8], &'static str> {
        let (content, rest) = element(der, SEQUENCE)?;
        if !rest.is_empty() {
            return Err("data after the key");
        }
        Ok(content)
    }

    /// AlgorithmIdentifier with the rsaEncryption OID; returns what follows it.
    fn rsa_algorithm(input: &[u8]) -> Result<&[u8], &'static str> {
        let (alg, rest) = element(input, SEQUENCE)?;
        let (oid, _params) = element(alg, OID)?;
        if oid != RSA_ENCRYPTION {
            return Err("the key algorithm is not rsaEncryption");
        }
        Ok(rest)
    }

    /// SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }.
    pub(super) fn check_spki(der: &[u8]) -> Result<(), &'static str> {
        let rest = rsa_algorithm(only_sequence(der)?)?;
        let (_key, rest) = element(rest, BIT_STRING)?;
        rest.is_empty()
            .then_some(())
            .ok_or("unexpected DER structure")
    }

    /// PrivateKeyInfo ::= SEQUENCE { INTEGER, AlgorithmIdentifier, OCTET STRING, ... }.
    pub(super) fn check_pkcs8(der: &[u8]) -> Result<(), &'static str> {
        let (_version, rest) = element(only_sequence(der)?, INTEGER)?;
        let rest = rsa_algorithm(rest)?;
        element(rest, OCTET_STRING).map(|_| ())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn structure() {
            // SEQ { SEQ { OID rsaEncryption, NULL }, BIT STRING { 00 } }
            let mut spki = vec![0x30, 0x13, 0x30, 0x0d, 0x06, 0x09];
            spki.extend_from_slice(RSA_ENCRYPTION);
            spki.extend_from_slice(&[0x05, 0x00, 0x03, 0x02, 0x00, 0x00]);
            assert_eq!(check_spki(&spki), Ok(()));
            assert!(check_pkcs8(&spki).is_err());
            assert!(check_spki(&spki[..spki.len() - 1]).is_err());
            let mut trailing = spki.clone();
            trailing.push(0);
            assert!(check_spki(&trailing).is_err());
            let mut ec = spki.clone();
            ec[8..15].copy_from_slice(&[0xce, 0x3d, 0x02, 0x01, 0, 0, 0]);
            assert_eq!(
                check_spki(&ec),
                Err("the key algorithm is not rsaEncryption")
            );
            // SEQ { INTEGER 0, SEQ { OID, NULL }, OCTET STRING { 00 } }
            let mut pkcs8 = vec![0x30, 0x15, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09];
            pkcs8.extend_from_slice(RSA_ENCRYPTION);
            pkcs8.extend_from_slice(&[0x05, 0x00, 0x04, 0x01, 0x00]);
            assert_eq!(check_pkcs8(&pkcs8), Ok(()));
            assert!(check_spki(&pkcs8).is_err());
            assert!(check_pkcs8(&[]).is_err());
            assert!(check_pkcs8(&[0x30, 0x80]).is_err());
            assert!(check_pkcs8(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        }
    }
}
