//! `keygen`: new keys from the provider's random generator.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use envcrypt::crypto::CryptoProvider;
use zeroize::Zeroizing;

use crate::error::AppError;

/// Writes a new random 32-byte AES key as one base64 line: to `path` (created with mode
/// 0600, never overwriting) or to stdout (`None` or `-`).
pub fn aes256(path: Option<&Path>, provider: &CryptoProvider) -> Result<(), AppError> {
    let mut key = Zeroizing::new([0u8; 32]);
    provider
        .random
        .fill(&mut key[..])
        .map_err(|e| AppError::lib("keygen", e.into()))?;
    let mut line = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&key[..]));
    line.push('\n');
    match path.filter(|p| p.as_os_str() != "-") {
        None => io::stdout()
            .write_all(line.as_bytes())
            .and_then(|()| io::stdout().flush())
            .map_err(|e| AppError::io("cannot write stdout", e)),
        Some(path) => write_new_private(path, line.as_bytes()),
    }
}

/// Creates `path` with mode 0600 (refusing an existing one), writes `bytes` and syncs.
/// A failed write removes the file again.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    let shown = path.display();
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(AppError::usage(format!(
                "{shown} exists; refusing to overwrite a key file"
            )))
        }
        Err(e) => return Err(AppError::io(format!("cannot create {shown}"), e)),
    };
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(AppError::io(format!("cannot write {shown}"), e));
    }
    Ok(())
}
