//! Reading secret files (raw AES keys, RSA private keys, PKCS#11 PIN files) safely.
//!
//! [`SecretFile::read`] opens the path (symbolic links are followed: Kubernetes mounts
//! secrets through them), refuses anything that is not a regular file, and reads through
//! the same handle it checked (no check-then-open race). Once the caller knows the bytes are
//! a secret, [`SecretFile::enforce`] refuses a file that group or others can write (exit 2)
//! and warns on stderr, even with `-q`, when group or others can read it. Messages name the
//! path, never its bytes.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::AppError;

/// Permission bits that let group or others write.
const OTHERS_WRITE: u32 = 0o022;
/// Permission bits that let group or others read.
const OTHERS_READ: u32 = 0o044;

/// The bytes of a secret file and the mode it had when read.
pub struct SecretFile {
    path: PathBuf,
    mode: u32,
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretFile {
    /// Reads at most `max` bytes of the regular file at `path`; a longer file is a usage
    /// error naming `what` (e.g. "key file").
    pub fn read(path: &Path, max: u64, what: &str) -> Result<Self, AppError> {
        let shown = path.display();
        // Non-blocking, so that a FIFO planted at the path cannot stall the open; no
        // controlling terminal from a device.
        let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
            .map_err(|e| AppError::io(format!("{what} {shown}"), e))?;
        let meta = file
            .metadata()
            .map_err(|e| AppError::io(format!("{what} {shown}"), e))?;
        if !meta.is_file() {
            return Err(AppError::usage(format!(
                "{what} {shown} is not a regular file"
            )));
        }
        let bytes =
            read_limited(file, max).map_err(|e| AppError::io(format!("{what} {shown}"), e))?;
        if bytes.len() as u64 > max {
            return Err(AppError::usage(format!(
                "{what} {shown}: larger than {max} bytes"
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            mode: meta.mode(),
            bytes,
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The rules for a file holding a secret: refused when group or others can write it (a
    /// usage error), a warning on stderr when they can read it.
    pub fn enforce(&self, what: &str) -> Result<(), AppError> {
        let shown = self.path.display();
        let perms = self.mode & 0o777;
        if self.mode & OTHERS_WRITE != 0 {
            return Err(AppError::usage(format!(
                "{what} {shown} is writable by group or others (mode {perms:03o}); \
                 refusing it (chmod 600 {shown})"
            )));
        }
        if self.mode & OTHERS_READ != 0 {
            eprintln!(
                "envcrypt: warning: {what} {shown} is readable by group or others \
                 (mode {perms:03o}); chmod 600 {shown}"
            );
        }
        Ok(())
    }
}

/// Reads up to `max + 1` bytes (one more than allowed, to tell an oversized file).
fn read_limited(file: File, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    // Room for all of it up front: no reallocation leaves a stray copy of the secret.
    let room = usize::try_from(max.min(1 << 20)).unwrap_or(1 << 20) + 1;
    let mut bytes = Zeroizing::new(Vec::with_capacity(room));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok(bytes)
}
