//! A service's upload path: a DICOM study encrypted straight into a bucket and read back,
//! with progress; the object appears only once the whole message is in it.
//!
//! `ENVCRYPT_S3_BUCKET=scans cargo run --release --features aws-s3 --example s3`
//! (the standard AWS configuration chain: region, credentials, `AWS_ENDPOINT_URL_S3`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use envcrypt::keyring::RawAesKeyring;
use envcrypt::s3::{S3Client, S3Object, S3Options};
use envcrypt::{Client, DecryptOptions, EncryptionContext};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(bucket) = std::env::var("ENVCRYPT_S3_BUCKET") else {
        eprintln!("set ENVCRYPT_S3_BUCKET to a bucket (and AWS credentials and region)");
        std::process::exit(2);
    };
    // A local key for the example; a service would use AwsKmsKeyring.
    let client = Client::new(RawAesKeyring::new("example", "key-2026", &[7; 32])?);
    let s3 = S3Client::from_env()?;
    let object = S3Object::new(&bucket, "studies/ct-0001.dcm.enc");
    let study: Vec<u8> = (0..24u32 << 20).map(|i| (i % 251) as u8).collect();

    let read = Arc::new(AtomicU64::new(0));
    let seen = read.clone();
    let options =
        S3Options::default().with_progress(Arc::new(move |n| seen.store(n, Ordering::Relaxed)));
    let context = EncryptionContext::from_pairs([("purpose", "archive")]);
    let up = client
        .encrypt_to_s3(
            &s3,
            std::io::Cursor::new(study.clone()),
            &object,
            &context,
            options,
        )
        .await?;
    println!(
        "{object}: {} bytes in {} parts ({} read)",
        up.written.bytes,
        up.written.parts,
        read.load(Ordering::Relaxed)
    );

    let decrypt = DecryptOptions::default().with_expected_context(context);
    let back = client
        .decrypt_from_s3(&s3, &object, Vec::new(), &decrypt, S3Options::default())
        .await?;
    assert_eq!(back.output, study);
    s3.delete(&object)?;
    println!("read back and verified; deleted");
    Ok(())
}
