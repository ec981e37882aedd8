//! Envelope encryption under an AES key that never leaves an HSM (PKCS#11): the token wraps
//! each message's data key with `CKM_AES_GCM`; the payload is sealed on the host.
//!
//! ```sh
//! ENVCRYPT_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so ENVCRYPT_PKCS11_TOKEN=imaging \
//! ENVCRYPT_PKCS11_KEY=kek-2026 ENVCRYPT_PKCS11_PIN=... \
//!     cargo run --release --features pkcs11 --example hsm
//! ```
//!
//! The PIN comes from the environment (`ENVCRYPT_PKCS11_PIN`), never from a command line.

use envcrypt::keyring::{Pkcs11Config, Pkcs11Keyring};
use envcrypt::{Client, DecryptOptions, EncryptionContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            eprintln!("set {name} (see the top of examples/hsm.rs)");
            std::process::exit(2)
        })
    };
    let config = Pkcs11Config::new(var("ENVCRYPT_PKCS11_MODULE"), var("ENVCRYPT_PKCS11_TOKEN"))
        .with_key_label(var("ENVCRYPT_PKCS11_KEY"))
        .with_pin(var("ENVCRYPT_PKCS11_PIN"));
    let client = Client::new(Pkcs11Keyring::new(config)?);
    let context = EncryptionContext::from_pairs([("modality", "MR")]);
    let message = client.encrypt(b"k-space data", &context)?;
    let options = DecryptOptions::default().with_expected_context(context);
    let decrypted = client.decrypt(&message, &options)?;
    assert_eq!(decrypted.plaintext, b"k-space data");
    let edk = &decrypted.header.encrypted_data_keys[0];
    println!(
        "sealed {} bytes; data key wrapped in the token (EDK provider id {:?})",
        message.len(),
        edk.provider_id
    );
    Ok(())
}
