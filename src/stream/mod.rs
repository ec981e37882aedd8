//! `std::io` adapters over the engine, and (feature `tokio`) tokio `AsyncWrite` /
//! `AsyncRead` adapters over the parallel frame pipeline.

#[cfg(feature = "tokio")]
pub(crate) mod async_pipe;
#[cfg(feature = "tokio")]
mod async_reader;
#[cfg(feature = "tokio")]
mod async_writer;
mod decrypt_push;
mod encrypt_push;
mod header;
mod reader;
mod writer;

pub use decrypt_push::DecryptingPush;
pub use encrypt_push::{EncryptingPush, Pushed};
#[cfg(feature = "tokio")]
pub(crate) use header::read_header_async;
pub(crate) use header::{read_header, HeaderRead};
pub use reader::DecryptingReader;
pub use writer::EncryptingWriter;

#[cfg(feature = "tokio")]
pub use async_reader::AsyncDecryptingReader;
#[cfg(feature = "tokio")]
pub use async_writer::AsyncEncryptingWriter;
