//! Envelope encryption under an AWS KMS key: one `GenerateDataKey` per message (or per many
//! messages behind the data-key cache), the encryption context passed on every call.
//!
//! `ENVCRYPT_KMS_KEY_ARN=arn:aws:kms:... cargo run --release --features aws-kms --example kms`
//! (the standard AWS configuration chain: region, credentials, `AWS_ENDPOINT_URL_KMS`).

use envcrypt::keyring::{AwsKmsKeyring, KmsClient};
use envcrypt::{Client, DecryptOptions, EncryptionContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(arn) = std::env::var("ENVCRYPT_KMS_KEY_ARN") else {
        eprintln!("set ENVCRYPT_KMS_KEY_ARN to a KMS key ARN (and AWS credentials and region)");
        std::process::exit(2);
    };
    let kms = KmsClient::from_env()?;
    let client = Client::new(AwsKmsKeyring::new(kms, &arn)?);
    let context = EncryptionContext::from_pairs([("dept", "cardiology")]);
    let message = client.encrypt(b"ECG waveform", &context)?;
    let options = DecryptOptions::default().with_expected_context(context);
    let decrypted = client.decrypt(&message, &options)?;
    assert_eq!(decrypted.plaintext, b"ECG waveform");
    println!("sealed under {arn}: {} bytes", message.len());
    Ok(())
}
