//! Holding back the plaintext of a signed message until its signature verified.
//!
//! A frame's tag proves only that someone with the data key sealed it; the footer
//! signature, checked at the very end, proves who wrote the message. A stream that must not
//! release unverified plaintext writes it to an unnamed temporary file (`O_TMPFILE` on
//! Linux, created and unlinked at once elsewhere; mode 0600, in `TMPDIR`) and copies it to
//! the real output only after the whole message verified. Memory stays flat; on failure
//! or a crash the file vanishes with its descriptor.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom};

use super::Output;

/// Buffer of the writes into the spill file.
const CHUNK: usize = 1 << 20;

/// An unnamed temporary file the pipeline writes plaintext to.
pub(crate) struct Spill {
    file: BufWriter<File>,
}

impl Spill {
    /// A new, empty spill file.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            file: BufWriter::with_capacity(CHUNK, tempfile::tempfile()?),
        })
    }

    /// Where the pipeline writes.
    pub(crate) fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.file
    }

    /// The file with everything written, positioned at its start, to read from.
    pub(crate) fn into_reader(self) -> io::Result<File> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(file)
    }

    /// Copies everything written to `output` (see [`Output::put_file`]).
    pub(crate) fn release_to<O: Output>(self, output: &mut O) -> io::Result<()> {
        output.put_file(self.into_reader()?)
    }
}
