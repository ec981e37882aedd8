//! Which key an encrypted data key (EDK) names, and which key a keyring spec would name:
//! the identity `inspect --summary` counts files by, shared with `rewrap`.
//!
//! A key is its provider id and its name as [`EncryptedDataKey::key_name`] reads it from the
//! EDK (a raw key's name, a KMS key ARN): one rule for the library's logs and audit trail
//! and the tool's reports.
//!
//! This is read from the EDK list without any key: it says which keys a message *claims*,
//! not that they open it (see `inventory`'s `--require-key`).

use envcrypt::format::EncryptedDataKey;

use crate::keyring_spec::KeyringSpec;

/// Provider id of the AWS KMS keyrings' EDKs.
pub const KMS_PROVIDER_ID: &str = "aws-kms";

/// The tag length (bits) and IV length fields of the raw AES trailer, as every ESDK writes
/// them.
#[cfg(test)]
const RAW_AES_FIELDS: [u8; 8] = [0, 0, 0, 128, 0, 0, 0, 12];

/// The key an EDK names (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId {
    /// The EDK's provider id: a raw keyring's namespace, or `aws-kms`.
    pub provider_id: String,
    /// The key name (raw AES, raw RSA, PKCS#11) or key ARN (KMS).
    pub key: String,
}

impl KeyId {
    /// A key id from its two parts.
    pub fn new(provider_id: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            provider_id: provider_id.into(),
            key: key.into(),
        }
    }
}

/// The key `edk` names.
pub fn of_edk(edk: &EncryptedDataKey) -> KeyId {
    KeyId {
        provider_id: edk.provider_id.clone(),
        key: edk.key_name(),
    }
}

/// The key the EDKs written by the keyring of `spec` carry; `None` for a spec that names no
/// single key (`aws-kms-discovery`, or a type this build lacks).
///
/// For `aws-kms` this is the key as given: EDKs carry the key ARN, so an alias or a bare
/// key id never matches an EDK.
pub fn of_spec(spec: &KeyringSpec) -> Option<KeyId> {
    use envcrypt::keyring::spec::KeyringSpec as Spec;
    match spec.inner() {
        Spec::RawAes(aes) => Some(KeyId::new(&aes.namespace, &aes.name)),
        Spec::RawRsa(rsa) => Some(KeyId::new(&rsa.namespace, &rsa.name)),
        #[cfg(feature = "aws-kms")]
        Spec::Kms(envcrypt::keyring::spec::KmsSpec::Key { key, .. }) => {
            Some(KeyId::new(KMS_PROVIDER_ID, key))
        }
        #[cfg(feature = "pkcs11")]
        Spec::Pkcs11(p11) => Some(KeyId::new(p11.config().namespace(), p11.config().name())),
        // Discovery names no single key.
        _ => None,
    }
}

/// Whether `edk` names the key `id`.
pub fn matches(id: &KeyId, edk: &EncryptedDataKey) -> bool {
    edk.provider_id == id.provider_id && edk.key_name() == id.key
}

#[cfg(test)]
mod tests {
    use super::*;
    use envcrypt::format::{parse_header, HeaderLimits};
    use envcrypt::keyring::{MultiKeyring, RawAesKeyring};
    use envcrypt::{Client, EncryptionContext};
    use std::sync::Arc;

    fn edk(provider_id: &str, info: &[u8]) -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: provider_id.to_owned(),
            provider_info: info.to_vec(),
            ciphertext: vec![7; 48],
        }
    }

    fn spec(s: &str) -> KeyringSpec {
        KeyringSpec::parse(s).expect("a valid spec")
    }

    /// The EDKs of a real message wrapped by raw AES keyrings `(namespace, name)`.
    fn raw_aes_edks(keys: &[(&str, &str)]) -> Vec<EncryptedDataKey> {
        let mut rings: Vec<Arc<dyn envcrypt::keyring::Keyring>> = keys
            .iter()
            .map(|(ns, name)| Arc::new(RawAesKeyring::new(ns, name, &[9; 32]).unwrap()) as Arc<_>)
            .collect();
        let first = rings.remove(0);
        let client = Client::new(MultiKeyring::from_arcs(Some(first), rings));
        let message = client.encrypt(b"x", &EncryptionContext::new()).unwrap();
        let limits = HeaderLimits::default();
        let parsed = parse_header(&message, &limits)
            .unwrap()
            .expect("whole header");
        parsed.header.encrypted_data_keys
    }

    #[test]
    fn raw_aes_edks_name_their_key_without_the_iv_trailer() {
        let edks = raw_aes_edks(&[("hosp", "key-2026"), ("lab", "k")]);
        assert_eq!(edks[0].provider_info.len(), "key-2026".len() + 20);
        assert_eq!(of_edk(&edks[0]), KeyId::new("hosp", "key-2026"));
        assert_eq!(of_edk(&edks[1]), KeyId::new("lab", "k"));
        let id = of_spec(&spec("raw-aes:hosp:key-2026:some/path")).unwrap();
        assert!(matches(&id, &edks[0]));
        assert!(!matches(&id, &edks[1]));
        // Same name, other namespace; a name that is a prefix of the EDK's.
        assert!(!matches(&KeyId::new("lab", "key-2026"), &edks[0]));
        assert!(!matches(&KeyId::new("hosp", "key"), &edks[0]));
        assert!(!matches(&KeyId::new("hosp", "key-2026\0"), &edks[0]));
    }

    #[test]
    fn raw_rsa_and_pkcs11_rsa_edks_name_their_key_by_the_whole_info() {
        let e = edk("escrow", b"escrow-2026");
        assert_eq!(of_edk(&e), KeyId::new("escrow", "escrow-2026"));
        let id = of_spec(&spec("raw-rsa:escrow:escrow-2026:oaep-sha256:escrow.pem")).unwrap();
        assert_eq!(id, KeyId::new("escrow", "escrow-2026"));
        assert!(matches(&id, &e));
        assert!(!matches(&id, &edk("escrow", b"escrow-2025")));
    }

    #[test]
    fn kms_edks_name_the_key_arn() {
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let e = edk("aws-kms", arn.as_bytes());
        assert_eq!(of_edk(&e), KeyId::new("aws-kms", arn));
        #[cfg(feature = "aws-kms")]
        {
            let id = of_spec(&spec(&format!("aws-kms:{arn}"))).unwrap();
            assert!(matches(&id, &e));
            assert_eq!(of_spec(&spec("aws-kms-discovery:111122223333")), None);
        }
    }

    #[test]
    fn info_that_is_not_the_raw_aes_format_is_kept_whole() {
        // Shorter than the trailer.
        assert_eq!(of_edk(&edk("ns", b"short")).key, "short");
        // 20 bytes and more, but the fields are not 128 / 12.
        let mut info = b"name".to_vec();
        info.extend_from_slice(&[0, 0, 0, 96, 0, 0, 0, 12]);
        info.extend_from_slice(b"abcdefghijkl");
        assert_eq!(of_edk(&edk("ns", &info)).key.len(), 24);
        // Exactly the trailer: an empty key name.
        let mut bare = RAW_AES_FIELDS.to_vec();
        bare.extend_from_slice(&[1; 12]);
        assert_eq!(of_edk(&edk("ns", &bare)).key, "");
        // KMS info is never cut, whatever it ends with.
        let mut kms = b"arn".to_vec();
        kms.extend_from_slice(&bare);
        assert!(of_edk(&edk("aws-kms", &kms)).key.starts_with("base64:"));
    }

    #[test]
    fn non_utf8_info_is_base64_with_a_prefix() {
        let e = edk("ns", &[0xff, 0xfe, 0x00]);
        let id = of_edk(&e);
        assert_eq!(id.key, "base64://4A");
        assert!(matches(&id, &e));
        // A raw AES name that is not UTF-8: only the name is encoded.
        let mut info = vec![0xff];
        info.extend_from_slice(&RAW_AES_FIELDS);
        info.extend_from_slice(&[3; 12]);
        assert_eq!(of_edk(&edk("ns", &info)).key, "base64:/w==");
    }

    #[cfg(feature = "pkcs11")]
    #[test]
    fn pkcs11_specs_name_their_namespace_and_name() {
        let m = "module-path=/nonexistent/lib.so&pin-value=1234";
        let id = of_spec(&spec(&format!("pkcs11:token=hsm;object=img-2026?{m}"))).unwrap();
        assert_eq!(id, KeyId::new("pkcs11", "img-2026"));
        let named = format!("pkcs11:token=hsm;object=x?{m}&namespace=hosp&name=key-2026");
        let id = of_spec(&spec(&named)).unwrap();
        assert_eq!(id, KeyId::new("hosp", "key-2026"));
        // An AES key in the token writes the raw AES format under that namespace and name.
        assert!(matches(&id, &raw_aes_edks(&[("hosp", "key-2026")])[0]));
    }

    #[test]
    fn key_ids_sort_by_provider_then_key() {
        let mut ids = [
            KeyId::new("hosp", "b"),
            KeyId::new("escrow", "z"),
            KeyId::new("hosp", "a"),
        ];
        ids.sort();
        let keys: Vec<_> = ids.iter().map(|i| (&*i.provider_id, &*i.key)).collect();
        assert_eq!(keys, [("escrow", "z"), ("hosp", "a"), ("hosp", "b")]);
    }
}
