//! Reading secret files (raw AES keys, RSA private keys, PKCS#11 PIN files) safely.
//!
//! [`SecretFile::read`] opens the path (symbolic links are followed: Kubernetes mounts
//! secrets through them), refuses anything that is not a regular file, and reads through the
//! same handle it checked (no check-then-open race). Once the caller knows the bytes are a
//! secret, [`SecretFile::enforce`] refuses a file that group or others can write and warns
//! when they can read it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{FileProblem, SpecError, SpecWarning};

/// Permission bits that let group or others write.
const OTHERS_WRITE: u32 = 0o022;
/// Permission bits that let group or others read.
const OTHERS_READ: u32 = 0o044;

/// The bytes of a secret file and the mode it had when read.
pub(crate) struct SecretFile {
    what: &'static str,
    path: PathBuf,
    mode: u32,
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretFile {
    /// Reads at most `max` bytes of the regular file at `path`; `what` names it in errors
    /// (e.g. "key file").
    pub(crate) fn read(path: &Path, max: u64, what: &'static str) -> Result<Self, SpecError> {
        let fail = |problem| SpecError::File {
            what,
            path: path.to_path_buf(),
            problem,
        };
        let file = open(path).map_err(|e| fail(FileProblem::Io(e)))?;
        let meta = file.metadata().map_err(|e| fail(FileProblem::Io(e)))?;
        if !meta.is_file() {
            return Err(fail(FileProblem::NotRegularFile));
        }
        let bytes = read_limited(file, max).map_err(|e| fail(FileProblem::Io(e)))?;
        if bytes.len() as u64 > max {
            return Err(fail(FileProblem::TooLarge(max)));
        }
        Ok(Self {
            what,
            path: path.to_path_buf(),
            mode: mode(&meta),
            bytes,
        })
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The rules for a file holding a secret: refused when group or others can write it; a
    /// warning when they can read it.
    pub(crate) fn enforce(&self, warnings: &mut Vec<SpecWarning>) -> Result<(), SpecError> {
        let perms = self.mode & 0o777;
        if self.mode & OTHERS_WRITE != 0 {
            return Err(SpecError::File {
                what: self.what,
                path: self.path.clone(),
                problem: FileProblem::WritableByOthers(perms),
            });
        }
        if self.mode & OTHERS_READ != 0 {
            warnings.push(SpecWarning::ReadableByOthers {
                what: self.what,
                path: self.path.clone(),
                mode: perms,
            });
        }
        Ok(())
    }
}

/// Opens for reading; on Linux non-blocking (a FIFO planted at the path cannot stall the
/// open) and without taking a controlling terminal.
fn open(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
        options.custom_flags(flags.bits() as i32);
    }
    options.open(path)
}

#[cfg(unix)]
fn mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::MetadataExt;
    meta.mode()
}

#[cfg(not(unix))]
fn mode(_meta: &std::fs::Metadata) -> u32 {
    0o600
}

/// Reads up to `max + 1` bytes (one more than allowed, to tell an oversized file).
fn read_limited(file: File, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    // Room for all of it up front: no reallocation leaves a stray copy of the secret.
    let room = usize::try_from(max.min(1 << 20)).unwrap_or(1 << 20) + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(room));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}
