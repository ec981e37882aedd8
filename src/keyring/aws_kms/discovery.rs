//! [`AwsKmsDiscoveryKeyring`] and its [`DiscoveryFilter`].

use async_trait::async_trait;

use super::arn::{partition_of, KmsArn};
use super::calls::decrypt_any;
use super::{KeyringError, KmsClient, PROVIDER_ID};
use crate::format::EncryptedDataKey;
use crate::keyring::Keyring;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// Which KMS keys a discovery keyring may use: those of `partition` in `account_ids`. Built
/// with [`DiscoveryFilter::new`]; the fields are public to read.
///
/// ```
/// use envcrypt::keyring::DiscoveryFilter;
/// let filter = DiscoveryFilter::new("aws", ["111122223333", "444455556666"]);
/// assert_eq!(filter.account_ids.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryFilter {
    /// The ARN partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// Account ids whose keys may decrypt.
    pub account_ids: Vec<String>,
}

impl DiscoveryFilter {
    /// A filter for `partition` and `account_ids`.
    pub fn new<S: Into<String>>(
        partition: impl Into<String>,
        account_ids: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            partition: partition.into(),
            account_ids: account_ids.into_iter().map(Into::into).collect(),
        }
    }

    /// `None` when `arn` passes; else why not.
    fn reject(&self, arn: &KmsArn<'_>) -> Option<String> {
        if arn.partition != self.partition {
            return Some(format!(
                "partition {} is not {}",
                arn.partition, self.partition
            ));
        }
        if !self.account_ids.iter().any(|a| a == arn.account) {
            return Some(format!(
                "account {} is not in the filter [{}]",
                arn.account,
                self.account_ids.join(", ")
            ));
        }
        None
    }
}

/// Decrypts with whichever KMS key wrapped the data key, if it passes the filter. Cannot
/// encrypt.
///
/// Each `aws-kms` EDK whose provider info is a key ARN passing the [`DiscoveryFilter`] (any
/// key without a filter) is sent to `Decrypt` with that ARN as key id; the answer must name
/// the same key.
///
/// Calls go to the client's region only: an EDK whose ARN names another region (or, for a
/// region whose partition is known, another partition) is skipped without a call, with a
/// reason in [`KeyringError::Excluded`] like the filter's. To decrypt EDKs of several
/// regions, put one discovery keyring per region in a [`MultiKeyring`](crate::keyring::MultiKeyring).
///
/// ```no_run
/// use envcrypt::keyring::{AwsKmsDiscoveryKeyring, DiscoveryFilter, KmsClient};
/// use envcrypt::{Client, DecryptOptions};
///
/// let keyring = AwsKmsDiscoveryKeyring::new(KmsClient::from_env()?)
///     .with_filter(DiscoveryFilter::new("aws", ["111122223333"]));
/// let client = Client::new(keyring);
/// # let message: Vec<u8> = Vec::new();
/// let decrypted = client.decrypt(&message, &DecryptOptions::default())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AwsKmsDiscoveryKeyring {
    client: KmsClient,
    filter: Option<DiscoveryFilter>,
    grant_tokens: Vec<String>,
}

impl AwsKmsDiscoveryKeyring {
    /// A discovery keyring without filter: any KMS key the credentials may use.
    pub fn new(client: KmsClient) -> Self {
        Self {
            client,
            filter: None,
            grant_tokens: Vec::new(),
        }
    }

    /// Limits decryption to keys that pass `filter`.
    pub fn with_filter(mut self, filter: DiscoveryFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Grant tokens sent with every call.
    pub fn with_grant_tokens<S: Into<String>>(
        mut self,
        tokens: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }
}

#[async_trait]
impl Keyring for AwsKmsDiscoveryKeyring {
    async fn on_encrypt(
        &self,
        _materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        Err(KeyringError::Unsupported(
            "a KMS discovery keyring can only decrypt",
        ))
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            return Ok(materials);
        }
        // The region every call goes to. Without one (a client built from an SDK
        // configuration that has none) there is nothing to compare and the SDK refuses the call.
        let config = self.client.sdk_client().config();
        let region = config.region().map(|r| r.as_ref());
        let mut excluded = Vec::new();
        let mut candidates = Vec::new();
        for edk in encrypted_data_keys {
            if edk.provider_id != PROVIDER_ID {
                continue;
            }
            let Some(info) = core::str::from_utf8(&edk.provider_info).ok() else {
                excluded.push("aws-kms EDK whose provider info is not UTF-8".to_owned());
                continue;
            };
            let arn = match KmsArn::parse(info) {
                Some(a) if a.is_key() => a,
                _ => {
                    excluded.push(format!("{info:?} is not a KMS key ARN"));
                    continue;
                }
            };
            if let Some(why) = self.filter.as_ref().and_then(|f| f.reject(&arn)) {
                excluded.push(format!("{info}: {why}"));
                continue;
            }
            if let Some(why) = region.and_then(|r| other_region(&arn, r)) {
                excluded.push(format!("{info}: {why}"));
                continue;
            }
            candidates.push((edk, info));
        }
        let none = if excluded.is_empty() {
            KeyringError::NoMatchingKey
        } else {
            KeyringError::Excluded(excluded)
        };
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

/// `None` when `arn` is a key of `region` (the client's); else why it is out of reach.
fn other_region(arn: &KmsArn<'_>, region: &str) -> Option<String> {
    if arn.region != region {
        return Some(format!(
            "region {} is not the client's region {region}",
            arn.region
        ));
    }
    match partition_of(region) {
        Some(p) if p != arn.partition => Some(format!(
            "partition {} is not {p}, the partition of the client's region {region}",
            arn.partition
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn filter() {
        let f = DiscoveryFilter::new("aws", ["123456789012"]);
        assert_eq!(f.reject(&KmsArn::parse(KEY).unwrap()), None);
        let other = KmsArn::parse("arn:aws:kms:us-east-1:111122223333:key/x").unwrap();
        assert!(f.reject(&other).unwrap().contains("account 111122223333"));
        let cn = KmsArn::parse("arn:aws-cn:kms:cn-north-1:123456789012:key/x").unwrap();
        assert!(f.reject(&cn).unwrap().contains("partition aws-cn"));
    }

    #[test]
    fn region() {
        let arn = KmsArn::parse(KEY).unwrap();
        assert_eq!(other_region(&arn, "us-east-1"), None);
        let why = other_region(&arn, "eu-west-1").unwrap();
        assert!(why.contains("region us-east-1 is not the client's region eu-west-1"));
        let cn = KmsArn::parse("arn:aws-cn:kms:us-east-1:123456789012:key/x").unwrap();
        assert!(other_region(&cn, "us-east-1")
            .unwrap()
            .contains("partition aws-cn is not aws"));
        let odd = KmsArn::parse("arn:aws-x:kms:mars-north-1:123456789012:key/x").unwrap();
        assert_eq!(other_region(&odd, "mars-north-1"), None);
    }
}
