//! S3 objects as inputs and outputs (feature `aws-s3`).
//!
//! Everything here drives the same engine and pipeline as files and streams; S3 only moves
//! the bytes:
//! - [`S3Upload`] is a `Write` into a new object that appears only when
//!   [`finish`](S3Upload::finish)ed: parts sized from the input (at least 8 MiB) upload
//!   concurrently while the pipeline fills the next, memory stays at a few parts, and any
//!   failure aborts the multipart upload. [`S3Client::write_object`] wraps that around a
//!   closure.
//! - [`S3Reader`] streams one `GetObject` into the pipeline; [`S3RangeReader`] fetches only
//!   the ranges [`Client::decrypt_range`](crate::Client::decrypt_range) reads.
//! - [`Client::encrypt_to_s3`](crate::Client::encrypt_to_s3) and
//!   [`Client::decrypt_from_s3`](crate::Client::decrypt_from_s3) are the async calls for
//!   services, with progress and cancellation.
//!
//! Object metadata is never derived from the message: no context value and no key
//! material is ever written to it.
//!
//! ```no_run
//! use envcrypt::s3::{S3Client, S3Object, S3Options};
//! use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
//! let s3 = S3Client::from_env()?;
//! let object = S3Object::parse("s3://scans/ct-0001.dcm.enc")?;
//! let image = std::fs::File::open("ct-0001.dcm")?;
//! client.encrypt_to_s3(&s3, image, &object, &EncryptionContext::new(), S3Options::default()).await?;
//! let back = client
//!     .decrypt_from_s3(&s3, &object, Vec::new(), &DecryptOptions::default(), S3Options::default())
//!     .await?;
//! # Ok(())
//! # }
//! ```

mod client;
mod download;
mod error;
mod object;
mod ops;
mod upload;

pub use client::{
    default_timeouts, S3Client, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, MAX_ATTEMPTS, OPERATION_TIMEOUT,
};
pub(crate) use download::head;
pub use download::{ObjectInfo, S3RangeReader, S3Reader};
pub use error::S3Error;
pub use object::{S3Object, SCHEME};
pub use ops::{FromS3, S3Options, ToS3};
pub use upload::{S3Upload, UploadOptions, WriteCondition, Written, MIN_PART_SIZE};
