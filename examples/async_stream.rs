//! tokio adapters: an encrypting `AsyncWrite` and a decrypting `AsyncRead`; the crypto runs
//! on the pipeline's own threads, off the runtime's.
//!
//! `cargo run --release --features tokio --example async_stream`

use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{Client, DecryptOptions, EncryptionContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key: [u8; 32] = std::array::from_fn(|i| (i * 3) as u8);
    let client = Client::new(RawAesKeyring::new("pacs", "archive", &key)?);
    let study = vec![0x5Au8; 4 << 20];
    let options = PipelineOptions::default();

    let mut writer = client
        .encrypt_async_writer(Vec::new(), &EncryptionContext::new(), &options)
        .await?;
    writer.write_all(&study).await?;
    let message = writer.finish().await?;

    let mut reader = client
        .decrypt_async_reader(&message[..], &DecryptOptions::default(), &options)
        .await?;
    let mut back = Vec::new();
    reader.read_to_end(&mut back).await?;
    assert_eq!(back, study);
    println!(
        "{} bytes round-tripped through the async adapters",
        back.len()
    );
    Ok(())
}
