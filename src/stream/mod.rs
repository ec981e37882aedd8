//! `std::io` adapters over the engine.

mod reader;
mod writer;

pub(crate) use reader::read_header;
pub use reader::DecryptingReader;
pub use writer::EncryptingWriter;
