//! `std::io` adapters over the engine.

mod reader;
mod writer;

pub use reader::DecryptingReader;
pub use writer::EncryptingWriter;
