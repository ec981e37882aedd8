//! The output while it is written, and how it is put into place: an unnamed file linked in
//! on Linux ([`super::unnamed`]), a named temporary file renamed elsewhere or where the
//! filesystem has no unnamed files ([`super::named`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

use super::named::Named;
#[cfg(target_os = "linux")]
use super::unnamed::Unnamed;

/// Which kind of output file to try first (tests force the named one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// An unnamed file where the system and filesystem have them, else a named one.
    Auto,
    /// A named temporary file.
    #[cfg_attr(not(test), allow(dead_code))]
    Named,
}

/// An output being written, not yet visible under its name; dropped, it leaves nothing.
pub(super) enum Pending {
    /// Linux `O_TMPFILE`.
    #[cfg(target_os = "linux")]
    Unnamed(Unnamed),
    /// `.envcrypt-*.tmp`.
    Named(Named),
}

impl Pending {
    /// Creates the output file in `dir`, mode 0600 (Unix).
    pub(super) fn create(dir: &Path, placement: Placement) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        if placement == Placement::Auto {
            if let Some(unnamed) = Unnamed::create(dir)? {
                return Ok(Self::Unnamed(unnamed));
            }
        }
        let _ = placement; // Only Linux has a choice.
        Named::create(dir).map(Self::Named)
    }

    /// The file being written.
    pub(super) fn file(&mut self) -> &mut File {
        match self {
            #[cfg(target_os = "linux")]
            Self::Unnamed(u) => u.file(),
            Self::Named(n) => n.file(),
        }
    }

    /// Puts the synced file into place as `output` (named `name` in its directory),
    /// refusing an existing file unless `overwrite`, and syncs the directory; the
    /// directory sync's error is returned (the output is then in place but may not survive
    /// a power loss).
    pub(super) fn place(self, output: &Path, name: &OsStr, overwrite: bool) -> io::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Self::Unnamed(u) => u.place(name, overwrite),
            Self::Named(n) => {
                let _ = name;
                n.place(output, overwrite)
            }
        }
    }
}
