//! Peer benchmark binary: encrypts or decrypts one file with the official Rust AWS Encryption
//! SDK (`aws-esdk`) and a raw AES keyring from its Material Providers Library, so that
//! scripts/bench-peers.sh can time it against envcrypt on the same file.
//!
//! Usage: aws-esdk-peer encrypt|decrypt INPUT OUTPUT KEYFILE [FRAME_LENGTH]
//!
//! - KEYFILE: a 256-bit AES key as envcrypt's `keygen aes256` writes it (base64 on one line),
//!   or 64 hex digits, or 32 raw bytes.
//! - The keyring is namespace "bench", name "bench-key", AES-256-GCM wrapping: the same key
//!   as envcrypt's `-k raw-aes:bench:bench-key:KEYFILE`, so each decrypts the other's output.
//! - encrypt: suite 0x0478 (ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY, committing, unsigned),
//!   frame length FRAME_LENGTH (default 65536), empty encryption context.
//! - decrypt: the crate's default commitment policy (REQUIRE_ENCRYPT_REQUIRE_DECRYPT).
//!
//! The crate has no streaming API (its encrypt/decrypt take and return one whole `Blob`), so
//! the whole input is read into memory first. Prints one JSON line on stdout:
//! `{"op":"encrypt","bytes":N,"seconds":S}`, where S is the wall time of the encrypt/decrypt
//! call alone (no file I/O, no keyring setup) and N is the plaintext length.

use std::error::Error;
use std::time::Instant;

use aws_esdk::client as esdk_client;
use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::AesWrappingAlg;
use aws_esdk::material_providers::types::EsdkAlgorithmSuiteId;
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;
use base64::Engine as _;

type BoxError = Box<dyn Error>;

const KEY_NAMESPACE: &str = "bench";
const KEY_NAME: &str = "bench-key";
const DEFAULT_FRAME_LENGTH: i64 = 65536;

/// Reads a 32-byte key: base64 on one line, 64 hex digits, or 32 raw bytes.
fn read_key(path: &str) -> Result<Vec<u8>, BoxError> {
    let bytes = std::fs::read(path)?;
    let text = bytes.trim_ascii();
    if text.len() == 64 && text.iter().all(u8::is_ascii_hexdigit) {
        let hex = std::str::from_utf8(text)?;
        return (0..32)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(Into::into))
            .collect();
    }
    if let Ok(key) = base64::engine::general_purpose::STANDARD.decode(text) {
        if key.len() == 32 {
            return Ok(key);
        }
    }
    if bytes.len() == 32 {
        return Ok(bytes);
    }
    Err(format!("{path}: expected a 256-bit key (base64, hex or 32 raw bytes)").into())
}

async fn run(args: &[String]) -> Result<(), BoxError> {
    let (op, input, output, key_path) = match args {
        [op, input, output, key] | [op, input, output, key, _] => (op, input, output, key),
        _ => {
            return Err(
                "usage: aws-esdk-peer encrypt|decrypt INPUT OUTPUT KEYFILE [FRAME_LENGTH]".into(),
            )
        }
    };
    let frame_length: i64 = match args.get(4) {
        Some(n) => n.parse()?,
        None => DEFAULT_FRAME_LENGTH,
    };
    let key = read_key(key_path)?;

    let mpl = mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build()?)?;
    let keyring = mpl
        .create_raw_aes_keyring()
        .key_namespace(KEY_NAMESPACE)
        .key_name(KEY_NAME)
        .wrapping_key(key)
        .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
        .send()
        .await?;
    // Default config: commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT.
    let esdk = esdk_client::Client::from_conf(AwsEncryptionSdkConfig::builder().build()?)?;

    let data = std::fs::read(input)?;
    let (out, plaintext_len, seconds) = match op.as_str() {
        "encrypt" => {
            let len = data.len();
            let start = Instant::now();
            let response = esdk
                .encrypt()
                .plaintext(data)
                .keyring(keyring)
                .algorithm_suite_id(EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKey)
                .frame_length(frame_length)
                .send()
                .await?;
            let seconds = start.elapsed().as_secs_f64();
            let ct = response
                .ciphertext
                .ok_or("encrypt returned no ciphertext")?;
            (ct.into_inner(), len, seconds)
        }
        "decrypt" => {
            let start = Instant::now();
            let response = esdk
                .decrypt()
                .ciphertext(data)
                .keyring(keyring)
                .send()
                .await?;
            let seconds = start.elapsed().as_secs_f64();
            let pt = response
                .plaintext
                .ok_or("decrypt returned no plaintext")?
                .into_inner();
            let len = pt.len();
            (pt, len, seconds)
        }
        other => return Err(format!("unknown op {other:?} (encrypt or decrypt)").into()),
    };
    std::fs::write(output, &out)?;
    println!("{{\"op\":\"{op}\",\"bytes\":{plaintext_len},\"seconds\":{seconds:.6}}}");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(&args)) {
        eprintln!("aws-esdk-peer: {e}");
        std::process::exit(1);
    }
}
