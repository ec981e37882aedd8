//! [`AwsKmsKeyring`]: the strict keyring (named keys).

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;

use super::arn::{is_key_arn, valid_identifier};
use super::calls::{decrypt_any, edk_from, grants, kms_context, take_data_key, KmsContext};
use super::error::encrypt_error;
use super::{KeyringError, KmsClient, PROVIDER_ID};
use crate::format::EncryptedDataKey;
use crate::keyring::Keyring;
use crate::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};

/// Wraps data keys with named KMS keys and unwraps only EDKs of those keys.
///
/// The first key (the generator) makes the data key with `GenerateDataKey` (or wraps one
/// made by an earlier keyring with `Encrypt`); every additional key wraps it with `Encrypt`.
/// On decrypt, each EDK whose provider info is one of the configured key ARNs is sent to
/// `Decrypt` with that key id, and the answer must name the same key.
///
/// The generator may be a key ARN, an alias ARN, `alias/NAME` or a key id (encryption
/// resolves it); additional keys must be key ARNs. Decryption matches key ARNs only, so a
/// keyring whose generator is an alias decrypts only with its additional keys.
///
/// ```no_run
/// use envcrypt::keyring::{AwsKmsKeyring, KmsClient};
/// use envcrypt::{Client, DecryptOptions, EncryptionContext};
///
/// let kms = KmsClient::from_env()?;
/// let keyring = AwsKmsKeyring::new(
///     kms,
///     "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
/// )?
/// .with_additional_keys([
///     "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321",
/// ])?;
/// let client = Client::new(keyring);
/// let context = EncryptionContext::from_pairs([("study", "ct-abdomen")]);
/// let message = client.encrypt(b"pixel data", &context)?;
/// let decrypted = client.decrypt(&message, &DecryptOptions::default())?;
/// assert_eq!(decrypted.plaintext, b"pixel data");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AwsKmsKeyring {
    client: KmsClient,
    generator: String,
    additional: Vec<String>,
    grant_tokens: Vec<String>,
}

impl AwsKmsKeyring {
    /// A keyring whose generator is `key_id` (key ARN, alias ARN, `alias/NAME` or key id).
    pub fn new(client: KmsClient, key_id: impl Into<String>) -> Result<Self, KeyringError> {
        let generator = key_id.into();
        if !valid_identifier(&generator) {
            return Err(KeyringError::InvalidKey(format!(
                "not a KMS key identifier: {generator:?}"
            )));
        }
        Ok(Self {
            client,
            generator,
            additional: Vec::new(),
            grant_tokens: Vec::new(),
        })
    }

    /// Adds keys (key ARNs) that also wrap every data key and may unwrap.
    pub fn with_additional_keys<S: Into<String>>(
        mut self,
        key_arns: impl IntoIterator<Item = S>,
    ) -> Result<Self, KeyringError> {
        for arn in key_arns {
            let arn = arn.into();
            if !is_key_arn(&arn) {
                return Err(KeyringError::InvalidKey(format!(
                    "additional KMS keys must be key ARNs (arn:PARTITION:kms:REGION:ACCOUNT:key/ID), got {arn:?}"
                )));
            }
            self.additional.push(arn);
        }
        Ok(self)
    }

    /// Grant tokens sent with every call.
    pub fn with_grant_tokens<S: Into<String>>(
        mut self,
        tokens: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// The generator key id as configured.
    pub fn generator(&self) -> &str {
        &self.generator
    }

    fn configured(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.generator.as_str()).chain(self.additional.iter().map(String::as_str))
    }

    async fn encrypt_with(
        &self,
        key_id: &str,
        context: &Option<KmsContext>,
        data_key: &DataKey,
    ) -> Result<EncryptedDataKey, KeyringError> {
        let call = self
            .client
            .sdk_client()
            .encrypt()
            .key_id(key_id)
            // This copy of the data key belongs to the SDK from here on and is not wiped
            // (it is serialized into the request body): see `take_data_key`.
            .plaintext(Blob::new(data_key.expose_secret().to_vec()))
            .set_encryption_context(context.clone())
            .set_grant_tokens(grants(&self.grant_tokens))
            .send();
        let out = self
            .client
            .run(call)
            .await?
            .map_err(|e| encrypt_error("Encrypt", key_id, e))?;
        edk_from(out.key_id, out.ciphertext_blob, "Encrypt", key_id)
    }
}

#[async_trait]
impl Keyring for AwsKmsKeyring {
    async fn on_encrypt(
        &self,
        mut materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        // With a data key from an earlier keyring every configured key wraps it (`Encrypt`);
        // else the generator makes it and the additional keys wrap it.
        let context = kms_context(&materials.encryption_context);
        let (data_key, wrap): (DataKey, Vec<&str>) = match materials.data_key.take() {
            Some(k) => (k, self.configured().collect()),
            None => {
                let key_len = materials.suite.data_key_len();
                let call = self
                    .client
                    .sdk_client()
                    .generate_data_key()
                    .key_id(&self.generator)
                    .number_of_bytes(key_len as i32)
                    .set_encryption_context(context.clone())
                    .set_grant_tokens(grants(&self.grant_tokens))
                    .send();
                let mut out = self
                    .client
                    .run(call)
                    .await?
                    .map_err(|e| encrypt_error("GenerateDataKey", &self.generator, e))?;
                let key = take_data_key(
                    out.plaintext.take(),
                    key_len,
                    "GenerateDataKey",
                    &self.generator,
                )?;
                let edk = edk_from(
                    out.key_id.take(),
                    out.ciphertext_blob.take(),
                    "GenerateDataKey",
                    &self.generator,
                )?;
                materials.encrypted_data_keys.push(edk);
                (key, self.additional.iter().map(String::as_str).collect())
            }
        };
        for key_id in wrap {
            let edk = self.encrypt_with(key_id, &context, &data_key).await?;
            materials.encrypted_data_keys.push(edk);
        }
        materials.data_key = Some(data_key);
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            return Ok(materials);
        }
        let candidates: Vec<(&EncryptedDataKey, &str)> = encrypted_data_keys
            .iter()
            .filter(|edk| edk.provider_id == PROVIDER_ID)
            .filter_map(|edk| {
                let info = core::str::from_utf8(&edk.provider_info).ok()?;
                if !is_key_arn(info) {
                    return None;
                }
                self.configured().find(|k| *k == info).map(|k| (edk, k))
            })
            .collect();
        let none = KeyringError::NoMatchingKey;
        decrypt_any(
            &self.client,
            materials,
            candidates,
            &self.grant_tokens,
            none,
        )
        .await
    }
}
