//! `aws-kms:KEY` and `aws-kms-discovery:ACCOUNT[,ACCOUNT...]` keyring specs (built with
//! `--features aws-kms`).
//!
//! Region, credentials and endpoint come from the usual AWS environment and config files
//! (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL_KMS`, ...). A key given as an ARN is used
//! in the ARN's region. One client (and its runtime) serves every keyring of a region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::Region;
use envcrypt::keyring::{
    AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, Keyring, KeyringError, KmsClient,
};

use crate::error::AppError;
use crate::keyring_spec::Purpose;

/// One parsed KMS spec.
#[derive(Debug)]
pub enum KmsSpec {
    /// `aws-kms:KEY`: a key ARN, alias ARN, `alias/NAME` or key id.
    Key(String),
    /// `aws-kms-discovery:ACCOUNT[,ACCOUNT...]` in partition `aws`.
    Discovery(Vec<String>),
}

impl KmsSpec {
    /// Parses the part after `aws-kms:` / `aws-kms-discovery:`.
    pub fn parse(kind: &str, rest: &str) -> Result<Self, AppError> {
        if kind == "aws-kms-discovery" {
            let accounts: Vec<String> = rest.split(',').map(str::to_owned).collect();
            if accounts
                .iter()
                .any(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(AppError::usage(
                    "aws-kms-discovery keyring spec must be aws-kms-discovery:ACCOUNT[,ACCOUNT...] \
                     (account ids are digits)",
                ));
            }
            return Ok(Self::Discovery(accounts));
        }
        if rest.is_empty() || rest.chars().any(char::is_whitespace) {
            return Err(AppError::usage(
                "aws-kms keyring spec must be aws-kms:KEY (a key ARN, alias ARN or key id)",
            ));
        }
        Ok(Self::Key(rest.to_owned()))
    }

    /// Builds the keyring.
    pub fn build(&self, purpose: Purpose) -> Result<Arc<dyn Keyring>, AppError> {
        match self {
            Self::Key(key) => {
                // arn:PARTITION:kms:REGION:ACCOUNT:...
                let region = key
                    .strip_prefix("arn:")
                    .and_then(|r| r.split(':').nth(2))
                    .filter(|r| !r.is_empty());
                let keyring = AwsKmsKeyring::new(client(region)?, key.as_str())
                    .map_err(|e| AppError::usage(format!("keyring aws-kms: {e}")))?;
                Ok(Arc::new(keyring))
            }
            Self::Discovery(_) if purpose == Purpose::Encrypt => Err(AppError::usage(
                "keyring type aws-kms-discovery can only decrypt; give a key to encrypt with",
            )),
            Self::Discovery(accounts) => Ok(Arc::new(
                AwsKmsDiscoveryKeyring::new(client(None)?)
                    .with_filter(DiscoveryFilter::new("aws", accounts.iter().cloned())),
            )),
        }
    }
}

/// The client for `region` (None: the environment's), made once per run.
fn client(region: Option<&str>) -> Result<KmsClient, AppError> {
    static CLIENTS: Mutex<Option<HashMap<Option<String>, KmsClient>>> = Mutex::new(None);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let clients = clients.get_or_insert_with(HashMap::new);
    let id = region.map(str::to_owned);
    if let Some(c) = clients.get(&id) {
        return Ok(c.clone());
    }
    let made = match region {
        Some(r) => {
            let r = Region::new(r.to_owned());
            KmsClient::from_env_with(move |loader| loader.region(r))
        }
        None => KmsClient::from_env(),
    }
    .map_err(|e| match e {
        // No region and the like: a usage problem. Unreachable: exit 4.
        KeyringError::InvalidKey(m) => AppError::usage(format!("KMS: {m}")),
        e => AppError::lib("KMS", envcrypt::Error::Keyring(e)),
    })?;
    clients.insert(id, made.clone());
    Ok(made)
}
