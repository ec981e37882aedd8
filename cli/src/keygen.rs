//! `keygen`: new keys from the provider's random generator.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// RSA modulus sizes `keygen rsa` makes.
const RSA_BITS: [u32; 3] = [2048, 3072, 4096];

/// Writes a new RSA key pair: `PREFIX.pem` (unencrypted PKCS#8, mode 0600) and
/// `PREFIX.pub.pem` (SubjectPublicKeyInfo, mode 0644). Refuses to overwrite either; a failed
/// run leaves neither behind.
pub fn rsa(bits: u32, prefix: &Path, provider: &CryptoProvider) -> Result<(), AppError> {
    if !RSA_BITS.contains(&bits) {
        return Err(AppError::usage(format!(
            "RSA keys of {bits} bits are not offered (use 2048, 3072 or 4096)"
        )));
    }
    let (private_path, public_path) = pair_paths(prefix)?;
    let (pkcs8, spki) = provider.rsa.generate(bits as usize).map_err(|e| match e {
        envcrypt::crypto::CryptoError::Unsupported(_) => AppError::usage(format!(
            "crypto provider {} has no RSA ({e}); choose another with --provider",
            provider.name
        )),
        e => AppError::lib("keygen rsa", e.into()),
    })?;
    let private_pem = pem("PRIVATE KEY", &pkcs8);
    let public_pem = pem("PUBLIC KEY", &spki);
    write_pair(&private_path, &private_pem, &public_path, &public_pem)
}

/// Writes a new ECDSA P-384 key pair for signing audit checkpoints: `PREFIX.pem` (PKCS#8,
/// mode 0600, for `--audit-signing-key`) and `PREFIX.pub.pem` (for `audit verify
/// --public-key`). Made by the crypto provider (the FIPS module in a FIPS build).
pub fn audit(prefix: &Path, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let (private_path, public_path) = pair_paths(prefix)?;
    let key = envcrypt::audit::AuditSigningKey::generate(provider)
        .map_err(|e| AppError::lib("keygen audit", e.into()))?;
    let private_pem = key
        .to_pem()
        .map_err(|e| AppError::lib("keygen audit", e.into()))?;
    let public_pem = key.verifying_key().to_pem();
    write_pair(&private_path, &private_pem, &public_path, &public_pem)
}

/// `PREFIX.pem` and `PREFIX.pub.pem`, neither of which may exist yet.
fn pair_paths(prefix: &Path) -> Result<(PathBuf, PathBuf), AppError> {
    let with_suffix = |suffix: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (private_path, public_path) = (with_suffix(".pem"), with_suffix(".pub.pem"));
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(AppError::usage(format!(
                "{} exists; refusing to overwrite a key file",
                path.display()
            )));
        }
    }
    Ok((private_path, public_path))
}

/// Writes the private key (mode 0600) and then the public key (mode 0644); a failure
/// leaves neither behind.
fn write_pair(
    private_path: &Path,
    private_pem: &str,
    public_path: &Path,
    public_pem: &str,
) -> Result<(), AppError> {
    write_new_private(private_path, private_pem.as_bytes())?;
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(public_path)
        .and_then(|mut f| {
            f.write_all(public_pem.as_bytes())
                .and_then(|()| f.sync_all())
        });
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(public_path);
        }
        let _ = std::fs::remove_file(private_path);
        return Err(AppError::io(
            format!("cannot write {}", public_path.display()),
            e,
        ));
    }
    Ok(())
}

/// PEM armor (RFC 7468) of `der`, 64 base64 characters a line; zeroized on drop.
fn pem(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() * 65 / 64 + 64));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
