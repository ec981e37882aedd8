//! # envcrypt
//!
//! Client-side envelope encryption in the **AWS Encryption SDK message format**.
//!
//! Each message gets a fresh data key; the payload is sealed with AES-256-GCM in frames; the
//! data key is wrapped by one or more keyrings. Messages written here are version 2
//! (key-committing) messages that the official AWS Encryption SDKs and the AWS Encryption
//! CLI decrypt; messages they write (versions 1 and 2, every AES-GCM suite) decrypt here.
//!
//! ```
//! use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
//!
//! let keyring = RawAesKeyring::new("hospital-a", "imaging-2026", &[0x42; 32])?;
//! let client = Client::new(keyring);
//! let context = EncryptionContext::from_pairs([("study", "ct-abdomen")]);
//! let message = client.encrypt(b"pixel data", &context)?;
//! let decrypted = client.decrypt(&message, &DecryptOptions::default())?;
//! assert_eq!(decrypted.plaintext, b"pixel data");
//! # Ok::<(), envcrypt::Error>(())
//! ```
//!
//! Layers, from the wire up: [`format`](mod@format) (bytes only), [`crypto`] (the provider seam),
//! [`keyring`] and [`materials`] (data keys), [`engine`] (sans-I/O state machines), and the
//! adapters: [`Client`]'s one-shot calls and the [`stream`] readers and writers.

#![cfg_attr(not(feature = "fips"), forbid(unsafe_code))]
#![cfg_attr(feature = "fips", deny(unsafe_code))]
#![deny(missing_docs)]
// docs.rs (nightly) labels items with the features they need.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(
    feature = "aws-lc-rs",
    feature = "fips",
    feature = "openssl",
    feature = "rust-crypto"
)))]
compile_error!(
    "enable a crypto provider: `aws-lc-rs` (default), `fips`, `openssl` or `rust-crypto`"
);

pub mod audit;
#[cfg(any(feature = "aws-kms", feature = "aws-s3"))]
mod aws_runtime;
mod blocking;
mod client;
#[cfg(feature = "tokio")]
mod client_async;
pub mod crypto;
pub mod engine;
mod error;
pub mod file;
pub mod format;
pub mod keyring;
pub mod materials;
pub mod pipeline;
mod policy;
mod range;
pub mod rewrap;
#[cfg(feature = "aws-s3")]
pub mod s3;
pub mod stream;

pub use blocking::block_on;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use client::{Client, ClientBuilder, DecryptOptions, Decrypted, OpenedMessage};
pub use error::{
    AuthenticationError, ConfigError, ContextError, Error, ErrorKind, FormatError, PolicyError,
};
pub use format::{AlgorithmSuite, EncryptionContext, Header};
pub use policy::{CommitmentPolicy, ReleasePolicy, SignaturePolicy};
