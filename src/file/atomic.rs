//! The output while it is written, and how it is put into place: a named temporary file,
//! renamed ([`super::named`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

use super::named::Named;

/// Which kind of output file to try first (tests force the named one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// The best the system offers.
    Auto,
    /// A named temporary file.
    #[cfg_attr(not(test), allow(dead_code))]
    Named,
}

/// An output being written, not yet visible under its name; dropped, it leaves nothing.
pub(super) enum Pending {
    /// `.envcrypt-*.tmp`.
    Named(Named),
}

impl Pending {
    /// Creates the output file in `dir`, mode 0600 (Unix).
    pub(super) fn create(dir: &Path, placement: Placement) -> io::Result<Self> {
        let _ = placement; // One choice so far.
        Named::create(dir).map(Self::Named)
    }

    /// The file being written.
    pub(super) fn file(&mut self) -> &mut File {
        match self {
            Self::Named(n) => n.file(),
        }
    }

    /// Puts the synced file into place as `output` (named `name` in its directory),
    /// refusing an existing file unless `overwrite`, and syncs the directory; the
    /// directory sync's error is returned (the output is then in place but may not survive
    /// a power loss).
    pub(super) fn place(self, output: &Path, name: &OsStr, overwrite: bool) -> io::Result<()> {
        match self {
            Self::Named(n) => {
                let _ = name;
                n.place(output, overwrite)
            }
        }
    }
}
