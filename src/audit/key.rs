//! The checkpoint keys: an ECDSA P-384 key pair in PEM (PKCS#8 private, SubjectPublicKeyInfo
//! public), used through the crypto provider.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::auditor::AuditError;
use crate::crypto::{CryptoProvider, SignatureAlgorithm, SigningKey};
use crate::keyring::pem;

/// SubjectPublicKeyInfo DER of a P-384 key up to its 97-byte uncompressed point:
/// `SEQUENCE { SEQUENCE { id-ecPublicKey, secp384r1 }, BIT STRING (0 unused bits) }`.
const SPKI_P384_PREFIX: [u8; 23] = [
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];
/// An uncompressed P-384 point: `04 || x || y`.
const P384_POINT_LEN: usize = 97;

/// The private key that signs checkpoints. Holds a secret: no `Clone`, no `Debug`; wiped
/// when dropped.
pub struct AuditSigningKey {
    key: Box<dyn SigningKey>,
    public: AuditVerifyingKey,
}

impl AuditSigningKey {
    /// A new random key, made by `provider`.
    pub fn generate(provider: &'static CryptoProvider) -> Result<Self, AuditError> {
        let key = provider
            .signature
            .generate_signing_key(SignatureAlgorithm::EcdsaP384Sha384)?;
        Self::from_key(key, provider)
    }

    /// The key in a PEM `PRIVATE KEY` (unencrypted PKCS#8) text.
    pub fn from_pem(pem_text: &str, provider: &'static CryptoProvider) -> Result<Self, AuditError> {
        let block =
            pem::decode(pem_text).map_err(|e| AuditError::Key(format!("signing key: {e}")))?;
        if block.label != "PRIVATE KEY" {
            return Err(AuditError::Key(format!(
                "signing key: expected a PKCS#8 \"PRIVATE KEY\" PEM block, found {:?}",
                block.label
            )));
        }
        let key = provider
            .signature
            .signing_key(SignatureAlgorithm::EcdsaP384Sha384, &block.der)
            .map_err(|_| AuditError::Key("signing key: not an ECDSA P-384 PKCS#8 key".into()))?;
        Self::from_key(key, provider)
    }

    /// The key in the PEM file at `path`, read with the rules of key files: a regular file
    /// of at most 64 KiB, refused when group or others can write it; the warnings say when
    /// they can read it.
    pub fn from_pem_file(
        path: &std::path::Path,
        provider: &'static CryptoProvider,
    ) -> Result<(Self, Vec<crate::keyring::spec::SpecWarning>), AuditError> {
        use crate::keyring::spec::secret_file::SecretFile;
        let file = SecretFile::read(path, 64 * 1024, "audit signing key")
            .map_err(|e| AuditError::Key(e.to_string()))?;
        let mut warnings = Vec::new();
        file.enforce(&mut warnings)
            .map_err(|e| AuditError::Key(e.to_string()))?;
        let text = std::str::from_utf8(file.bytes()).map_err(|_| {
            AuditError::Key(format!(
                "audit signing key {}: not PEM text",
                path.display()
            ))
        })?;
        let key = Self::from_pem(text, provider)
            .map_err(|e| AuditError::Key(format!("{} ({})", e, path.display())))?;
        Ok((key, warnings))
    }

    fn from_key(
        key: Box<dyn SigningKey>,
        provider: &'static CryptoProvider,
    ) -> Result<Self, AuditError> {
        let point = key.public_key()?;
        let public = AuditVerifyingKey::from_point(&point, provider)?;
        Ok(Self { key, public })
    }

    /// The private key as PEM (`PRIVATE KEY`, PKCS#8), to store with mode 0600.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, AuditError> {
        let der = self.key.to_pkcs8()?;
        Ok(pem::encode("PRIVATE KEY", &der))
    }

    /// The public half, which verifies checkpoints.
    pub fn verifying_key(&self) -> &AuditVerifyingKey {
        &self.public
    }

    /// A DER signature over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        Ok(self.key.sign(message)?)
    }
}

/// The public key that verifies checkpoints. Two are equal when their keys are.
#[derive(Clone)]
pub struct AuditVerifyingKey {
    spki: Vec<u8>,
    provider: &'static CryptoProvider,
}

impl PartialEq for AuditVerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for AuditVerifyingKey {}

impl core::fmt::Debug for AuditVerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("AuditVerifyingKey")
            .field(&self.fingerprint())
            .finish()
    }
}

impl AuditVerifyingKey {
    /// The key in a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) text.
    pub fn from_pem(pem_text: &str, provider: &'static CryptoProvider) -> Result<Self, AuditError> {
        let block =
            pem::decode(pem_text).map_err(|e| AuditError::Key(format!("public key: {e}")))?;
        if block.label != "PUBLIC KEY" {
            return Err(AuditError::Key(format!(
                "public key: expected a \"PUBLIC KEY\" PEM block, found {:?}",
                block.label
            )));
        }
        Self::from_spki(&block.der, provider)
    }

    /// The key from SubjectPublicKeyInfo DER (ECDSA P-384, uncompressed point).
    pub fn from_spki(spki: &[u8], provider: &'static CryptoProvider) -> Result<Self, AuditError> {
        match spki.strip_prefix(&SPKI_P384_PREFIX[..]) {
            Some(point) if point.len() == P384_POINT_LEN => Self::from_point(point, provider),
            _ => Err(AuditError::Key(
                "public key: not an ECDSA P-384 SubjectPublicKeyInfo".into(),
            )),
        }
    }

    fn from_point(point: &[u8], provider: &'static CryptoProvider) -> Result<Self, AuditError> {
        // Checks the point is on the curve.
        provider
            .signature
            .verifier(SignatureAlgorithm::EcdsaP384Sha384, point)
            .map_err(|_| AuditError::Key("public key: not a P-384 point".into()))?;
        let mut spki = SPKI_P384_PREFIX.to_vec();
        spki.extend_from_slice(point);
        Ok(Self { spki, provider })
    }

    /// The key as PEM (`PUBLIC KEY`).
    pub fn to_pem(&self) -> String {
        pem::encode("PUBLIC KEY", &self.spki).to_string()
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `sha256:` and the hex SHA-256 of the SubjectPublicKeyInfo: how reports name the key.
    pub fn fingerprint(&self) -> String {
        let mut h = self
            .provider
            .digest
            .start(crate::crypto::HashAlgorithm::Sha256);
        h.update(&self.spki);
        format!("sha256:{}", super::event::hex(&h.finish()))
    }

    /// Whether `signature` (DER) signs `message` under this key.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let point = &self.spki[SPKI_P384_PREFIX.len()..];
        let Ok(mut v) = self
            .provider
            .signature
            .verifier(SignatureAlgorithm::EcdsaP384Sha384, point)
        else {
            return false;
        };
        v.update(message);
        v.verify(signature).is_ok()
    }

    /// The SubjectPublicKeyInfo as base64 (checkpoints carry it).
    pub(crate) fn spki_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.spki)
    }
}
