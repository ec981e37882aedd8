//! Streams of unknown length: an encrypting `Write` (whose `finish` is mandatory) and a
//! decrypting `Read`. A signed message's plaintext is released only after its signature
//! verified.
//!
//! `cargo run --release --example stream`

use std::io::{Read, Write};

use envcrypt::keyring::RawAesKeyring;
use envcrypt::{Client, DecryptOptions, EncryptionContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
    let client = Client::new(RawAesKeyring::new("hospital-a", "ehr-export", &key)?);

    let mut writer = client.encrypt_writer(Vec::new(), &EncryptionContext::new())?;
    for record in 0..10_000 {
        writeln!(writer, "record {record}: ...")?;
    }
    let message = writer.finish()?; // writes the final frame and the signature

    let mut reader = client.decrypt_reader(&message[..], &DecryptOptions::default())?;
    let mut export = String::new();
    reader.read_to_string(&mut export)?;
    assert_eq!(export.lines().count(), 10_000);
    println!(
        "{} bytes of records, {} bytes sealed",
        export.len(),
        message.len()
    );
    Ok(())
}
