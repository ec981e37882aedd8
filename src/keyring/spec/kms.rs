//! `aws-kms:KEY[?profile=NAME]` and
//! `aws-kms-discovery:ACCOUNT[,ACCOUNT...][?partition=P&region=R&profile=NAME]` (cargo
//! feature `aws-kms`).
//!
//! Region, credentials and endpoint come from the usual AWS environment and config files
//! (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL_KMS`, ...); `profile` picks the config
//! profile of that keyring's client, `region` its region. A key given as an ARN is used in
//! the ARN's region. Discovery considers only EDKs of `partition` (default `aws`): others are
//! skipped without a call. One client serves every keyring of the same region and profile
//! in a process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::Region;

use super::error::SpecError;
use super::{options, Purpose};
use crate::keyring::{AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, Keyring, KmsClient};

const KEY_FORM: &str = "aws-kms:KEY[?profile=NAME] (a key ARN, alias ARN or key id)";
const DISCOVERY_FORM: &str =
    "aws-kms-discovery:ACCOUNT[,ACCOUNT...][?partition=P&region=R&profile=NAME] \
     (account ids are 12 digits)";

/// A parsed KMS spec.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KmsSpec {
    /// `aws-kms:KEY[?profile=NAME]`: a key ARN, alias ARN, `alias/NAME` or key id.
    Key {
        /// The key as given.
        key: String,
        /// The AWS config profile of its client.
        profile: Option<String>,
    },
    /// `aws-kms-discovery:ACCOUNT[,...][?partition=P&region=R&profile=NAME]`.
    Discovery {
        /// Accounts whose keys may decrypt.
        accounts: Vec<String>,
        /// The ARN partition (default `aws`).
        partition: String,
        /// The region of its client (default: the environment's or the profile's).
        region: Option<String>,
        /// The AWS config profile of its client.
        profile: Option<String>,
    },
}

fn profile_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '@')
}

fn name_ok(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

impl KmsSpec {
    /// Parses what follows `aws-kms:`.
    pub(super) fn parse_key(rest: &str) -> Result<Self, SpecError> {
        let kind = "aws-kms";
        let (key, tail) = match rest.split_once('?') {
            Some((k, t)) => (k, Some(t)),
            None => (rest, None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(SpecError::Malformed {
                kind,
                form: KEY_FORM,
            });
        }
        let opts = match tail {
            Some(t) => options::parse(kind, t, &["profile"], "profile")?,
            None => Vec::new(),
        };
        let profile = options::get(&opts, "profile");
        if let Some(p) = profile {
            options::check(kind, "profile", p, "a profile name", profile_ok)?;
        }
        Ok(Self::Key {
            key: key.to_owned(),
            profile: profile.map(str::to_owned),
        })
    }

    /// Parses what follows `aws-kms-discovery:`.
    pub(super) fn parse_discovery(rest: &str) -> Result<Self, SpecError> {
        let kind = "aws-kms-discovery";
        let (list, tail) = match rest.split_once('?') {
            Some((l, t)) => (l, Some(t)),
            None => (rest, None),
        };
        let accounts: Vec<String> = list.split(',').map(str::to_owned).collect();
        if accounts
            .iter()
            .any(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(SpecError::Malformed {
                kind,
                form: DISCOVERY_FORM,
            });
        }
        let expected = "partition, region, profile";
        let opts = match tail {
            Some(t) => options::parse(kind, t, &["partition", "region", "profile"], expected)?,
            None => Vec::new(),
        };
        let partition = options::get(&opts, "partition").unwrap_or("aws");
        options::check(
            kind,
            "partition",
            partition,
            "a partition such as aws-us-gov",
            name_ok,
        )?;
        let region = options::get(&opts, "region");
        if let Some(r) = region {
            options::check(kind, "region", r, "a region such as us-gov-west-1", name_ok)?;
        }
        let profile = options::get(&opts, "profile");
        if let Some(p) = profile {
            options::check(kind, "profile", p, "a profile name", profile_ok)?;
        }
        Ok(Self::Discovery {
            accounts,
            partition: partition.to_owned(),
            region: region.map(str::to_owned),
            profile: profile.map(str::to_owned),
        })
    }

    /// Builds the keyring (a discovery keyring only decrypts).
    pub(super) fn build(&self, purpose: Purpose) -> Result<Arc<dyn Keyring>, SpecError> {
        match self {
            Self::Key { key, profile } => {
                // arn:PARTITION:kms:REGION:ACCOUNT:...
                let region = key
                    .strip_prefix("arn:")
                    .and_then(|r| r.split(':').nth(2))
                    .filter(|r| !r.is_empty());
                let client = client(region, profile.as_deref())?;
                let keyring = AwsKmsKeyring::new(client, key.as_str()).map_err(|source| {
                    SpecError::Keyring {
                        what: "aws-kms".into(),
                        source,
                    }
                })?;
                Ok(Arc::new(keyring))
            }
            Self::Discovery { .. } if purpose == Purpose::Encrypt => {
                Err(SpecError::DecryptOnly("aws-kms-discovery"))
            }
            Self::Discovery {
                accounts,
                partition,
                region,
                profile,
            } => Ok(Arc::new(
                AwsKmsDiscoveryKeyring::new(client(region.as_deref(), profile.as_deref())?)
                    .with_filter(DiscoveryFilter::new(
                        partition.as_str(),
                        accounts.iter().cloned(),
                    )),
            )),
        }
    }
}

/// The client for `region` and `profile` (None: the environment's), made once per process.
fn client(region: Option<&str>, profile: Option<&str>) -> Result<KmsClient, SpecError> {
    type Clients = HashMap<(Option<String>, Option<String>), KmsClient>;
    static CLIENTS: Mutex<Option<Clients>> = Mutex::new(None);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let clients = clients.get_or_insert_with(HashMap::new);
    let id = (region.map(str::to_owned), profile.map(str::to_owned));
    if let Some(c) = clients.get(&id) {
        return Ok(c.clone());
    }
    let (r, p) = id.clone();
    let made = KmsClient::from_env_with(move |mut loader| {
        if let Some(p) = p {
            loader = loader.profile_name(p);
        }
        if let Some(r) = r {
            loader = loader.region(Region::new(r));
        }
        loader
    })
    .map_err(|source| SpecError::Keyring {
        what: "aws-kms client".into(),
        source,
    })?;
    clients.insert(id, made.clone());
    Ok(made)
}
