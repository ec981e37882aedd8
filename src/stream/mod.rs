//! `std::io` adapters over the engine, and (feature `tokio`) tokio `AsyncWrite` /
//! `AsyncRead` adapters over the parallel frame pipeline.

#[cfg(feature = "tokio")]
mod async_pipe;
#[cfg(feature = "tokio")]
mod async_reader;
#[cfg(feature = "tokio")]
mod async_writer;
mod header;
mod push;
mod reader;
mod writer;

#[cfg(feature = "tokio")]
pub(crate) use header::read_header_async;
pub(crate) use header::{read_header, HeaderRead};
pub use push::DecryptingPush;
pub use reader::DecryptingReader;
pub use writer::EncryptingWriter;

#[cfg(feature = "tokio")]
pub use async_reader::AsyncDecryptingReader;
#[cfg(feature = "tokio")]
pub use async_writer::AsyncEncryptingWriter;
