//! Encrypt a file to a file and back with a local AES key: atomic outputs (nothing appears
//! unless the whole message verified), all cores, flat memory.
//!
//! `cargo run --release --example file`

use envcrypt::file::FileOptions;
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{Client, DecryptOptions, EncryptionContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (scan, sealed, back) = (
        dir.path().join("scan.dcm"),
        dir.path().join("scan.dcm.enc"),
        dir.path().join("scan.copy.dcm"),
    );
    let image: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&scan, &image)?;

    // In production the key comes from a KMS or an HSM keyring; a raw key is for a demo.
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let client = Client::new(RawAesKeyring::new("hospital-a", "imaging-2026", &key)?);
    // The context is authenticated but stored in clear: labels, never patient identifiers.
    let context = EncryptionContext::from_pairs([("dept", "radiology")]);
    let stats = client.encrypt_file(&scan, &sealed, &context, &FileOptions::default())?;
    println!(
        "encrypted {} bytes into {}",
        stats.bytes_in, stats.bytes_out
    );

    let options = DecryptOptions::default().with_expected_context(context);
    let (header, _) = client.decrypt_file(&sealed, &back, &options, &FileOptions::default())?;
    assert_eq!(std::fs::read(&back)?, image);
    println!(
        "decrypted: suite {:#06x}, {} encrypted data key(s)",
        header.suite.id(),
        header.encrypted_data_keys.len()
    );
    Ok(())
}
