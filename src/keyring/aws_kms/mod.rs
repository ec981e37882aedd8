//! AWS KMS keyrings (cargo feature `aws-kms`): [`AwsKmsKeyring`] (strict: named keys) and
//! [`AwsKmsDiscoveryKeyring`] (decrypt with any key that passes a [`DiscoveryFilter`]).
//!
//! EDK format (shared with every official SDK): provider id `aws-kms`; provider info = the key
//! ARN as KMS returned it; ciphertext = the KMS ciphertext blob. The full encryption context
//! of the message (including `aws-crypto-public-key` on signed suites) goes to every KMS call,
//! so KMS binds each wrapped key to it.
//!
//! # Runtimes
//!
//! The AWS SDK runs on tokio. A [`KmsClient`] owns a small tokio runtime (one worker thread,
//! started on first use) and runs every SDK call there, so the keyrings work both from any
//! async executor and through the blocking path ([`crate::block_on`], which has no reactor):
//! the caller only awaits the result. [`KmsClient::with_runtime`] runs the calls on a runtime
//! of the caller's instead (any flavor, but a current-thread runtime must not be blocked by
//! [`crate::block_on`] on its own thread while a call is running).
//!
//! # Failures
//!
//! Every call is bounded: connect timeout 2 s, read timeout 5 s, 5 s a try, 10 s in all, at
//! most 2 tries (unless the caller's SDK configuration sets its own). Errors are typed:
//!
//! | KMS answer | [`KeyringError`] |
//! |---|---|
//! | connection refused or reset, timeout, throttling, KMS internal error, HTTP 5xx | [`Unavailable`](KeyringError::Unavailable) |
//! | `AccessDeniedException`, bad credentials, invalid grant token, `DisabledException`, `KMSInvalidStateException` | [`AccessDenied`](KeyringError::AccessDenied) (the message names the reason) |
//! | `InvalidCiphertextException`, `IncorrectKeyException` (wrong key or context) | [`UnwrapFailed`](KeyringError::UnwrapFailed) |
//! | `NotFoundException`, `InvalidKeyUsageException`, a response naming another key, a data key of the wrong length | [`InvalidKey`](KeyringError::InvalidKey) |
//! | no `aws-kms` EDK for a configured key | [`NoMatchingKey`](KeyringError::NoMatchingKey) |
//! | `aws-kms` EDKs, but the discovery filter or the client's region excluded every one | [`Excluded`](KeyringError::Excluded) (one reason per EDK) |

mod arn;
mod calls;
mod client;
mod discovery;
mod error;
mod strict;

pub use client::{
    default_retry, default_timeouts, KmsClient, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, MAX_ATTEMPTS,
    OPERATION_TIMEOUT, READ_TIMEOUT,
};
pub use discovery::{AwsKmsDiscoveryKeyring, DiscoveryFilter};
pub use strict::AwsKmsKeyring;

use super::KeyringError;

/// Provider id of every KMS EDK.
pub const PROVIDER_ID: &str = "aws-kms";
