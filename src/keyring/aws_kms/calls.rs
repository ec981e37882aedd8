//! The KMS calls both keyrings share: request arguments, the data key and EDK out of a
//! response, and `Decrypt` over a list of candidate EDKs.

use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use super::arn::is_key_arn;
use super::error::{classify, Failure};
use super::{KeyringError, KmsClient, PROVIDER_ID};
use crate::format::{EncryptedDataKey, EncryptionContext};
use crate::materials::{DataKey, DecryptionMaterials};

/// An encryption context as the SDK takes it.
pub(super) type KmsContext = std::collections::HashMap<String, String>;

pub(super) fn kms_context(context: &EncryptionContext) -> Option<KmsContext> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

pub(super) fn grants(tokens: &[String]) -> Option<Vec<String>> {
    (!tokens.is_empty()).then(|| tokens.to_vec())
}

/// Moves a plaintext data key out of a KMS response into zeroizing storage and checks its
/// length.
///
/// What is wiped: the SDK's buffer of the key (`Blob::into_inner` hands over its `Vec`
/// without copying). It goes under [`Zeroizing`] at once, so it is wiped (its whole capacity)
/// when the length check fails; on success the same allocation moves into the [`DataKey`],
/// which wipes it on drop, and no other copy of the key is made here. `Blob` cannot be
/// zeroized in place, hence the `Vec`.
///
/// What is not: copies made before the `Blob` exists are out of reach: the HTTP response
/// body, the JSON text with the key in base64, and buffers of the TLS and HTTP stack that
/// are freed without wiping. The same holds for the plaintext data key sent to `Encrypt`
/// (the SDK takes the request's `Blob` by value and serializes it into a request body).
pub(super) fn take_data_key(
    plaintext: Option<Blob>,
    expected_len: usize,
    op: &str,
    key: &str,
) -> Result<DataKey, KeyringError> {
    let mut bytes = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    if bytes.len() != expected_len {
        // `bytes` is wiped when it goes out of scope.
        return Err(KeyringError::InvalidKey(format!(
            "KMS {op} with {key} returned a data key of {} bytes, expected {expected_len}",
            bytes.len()
        )));
    }
    // Moves the allocation into the `DataKey` (no copy); `bytes` is left empty.
    Ok(DataKey::new(core::mem::take(&mut *bytes)))
}

/// One `Decrypt` call: the data key, or why not.
pub(super) async fn decrypt_one(
    client: &KmsClient,
    key_id: &str,
    edk: &EncryptedDataKey,
    context: &Option<KmsContext>,
    key_len: usize,
    grant_tokens: &[String],
) -> Result<DataKey, KeyringError> {
    let call = client
        .sdk_client()
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(edk.ciphertext.clone()))
        .set_encryption_context(context.clone())
        .set_grant_tokens(grants(grant_tokens))
        .send();
    let mut out = match client.run(call).await? {
        Ok(out) => out,
        Err(err) => {
            return Err(match classify("Decrypt", key_id, &err) {
                Failure::Unreachable(m) => KeyringError::Unavailable(m),
                Failure::Refused(m) => KeyringError::AccessDenied(m),
                Failure::Invalid(m) => KeyringError::InvalidKey(m),
                Failure::BadCiphertext => KeyringError::UnwrapFailed {
                    provider_id: PROVIDER_ID.into(),
                    key_name: key_id.into(),
                },
            })
        }
    };
    let data_key = take_data_key(out.plaintext.take(), key_len, "Decrypt", key_id)?;
    match out.key_id() {
        Some(answered) if answered == key_id => Ok(data_key),
        answered => Err(KeyringError::InvalidKey(format!(
            "KMS Decrypt answered for key {}, not the requested {key_id}",
            answered.unwrap_or("(none)")
        ))),
    }
}

/// Tries `candidates` (EDK, key id to call with) in order; the first data key wins. When all
/// fail: the first failure about the data or the configuration, else (every one was about
/// reaching KMS) the first of those. Stops at the first unreachable KMS.
pub(super) async fn decrypt_any(
    client: &KmsClient,
    mut materials: DecryptionMaterials,
    candidates: Vec<(&EncryptedDataKey, &str)>,
    grant_tokens: &[String],
    none: KeyringError,
) -> Result<DecryptionMaterials, KeyringError> {
    let context = kms_context(&materials.encryption_context);
    let key_len = materials.suite.data_key_len();
    let mut first_unavailable = None;
    let mut first_other = None;
    for (edk, key_id) in candidates {
        match decrypt_one(client, key_id, edk, &context, key_len, grant_tokens).await {
            Ok(key) => {
                materials.data_key = Some(key);
                return Ok(materials);
            }
            Err(e @ KeyringError::Unavailable(_)) => {
                first_unavailable.get_or_insert(e);
                break;
            }
            Err(e) if e.is_unavailable() => {
                first_unavailable.get_or_insert(e);
            }
            Err(e) => {
                first_other.get_or_insert(e);
            }
        }
    }
    Err(first_other.or(first_unavailable).unwrap_or(none))
}

/// Builds the EDK from a response, checking that KMS named a key ARN.
pub(super) fn edk_from(
    answered: Option<String>,
    blob: Option<Blob>,
    op: &str,
    key_id: &str,
) -> Result<EncryptedDataKey, KeyringError> {
    let arn = answered.unwrap_or_default();
    if !is_key_arn(&arn) {
        return Err(KeyringError::InvalidKey(format!(
            "KMS {op} with {key_id} answered with key id {arn:?}, not a key ARN"
        )));
    }
    let ciphertext = blob.map(Blob::into_inner).unwrap_or_default();
    if ciphertext.is_empty() {
        return Err(KeyringError::InvalidKey(format!(
            "KMS {op} with {key_id} returned no ciphertext"
        )));
    }
    Ok(EncryptedDataKey {
        provider_id: PROVIDER_ID.into(),
        provider_info: arn.into_bytes(),
        ciphertext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_taken_from_the_response() {
        let key = take_data_key(Some(Blob::new(vec![7u8; 32])), 32, "Decrypt", "k").unwrap();
        assert_eq!(key.expose_secret(), &[7u8; 32]);
        let short = take_data_key(Some(Blob::new(vec![7u8; 16])), 32, "Decrypt", "k");
        assert!(matches!(short, Err(KeyringError::InvalidKey(m)) if m.contains("16 bytes")));
        let none = take_data_key(None, 32, "GenerateDataKey", "k");
        assert!(matches!(none, Err(KeyringError::InvalidKey(_))));
    }
}
