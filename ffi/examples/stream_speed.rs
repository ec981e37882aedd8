//! The Rust streaming API on the work of `ffi/bench/session_speed.c`: 1 GiB
//! (`ENVCRYPT_BENCH_MIB`) of plaintext through an `EncryptingWriter` in 1 MiB writes (the
//! message kept in memory), then a `DecryptingReader` in 1 MiB reads; prints GiB/s of each.
//! `cargo run --release -p envcrypt-ffi --example stream_speed -- 0478|0578`

use std::io::{Read, Write};
use std::time::Instant;

use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext, ReleasePolicy};

const BUF: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let suite = match std::env::args().nth(1).as_deref() {
        Some("0578") => AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        _ => AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    };
    let mib: usize = std::env::var("ENVCRYPT_BENCH_MIB").map_or(Ok(1024), |v| v.parse())?;
    let len = mib << 20;
    let plain: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
    let mut key = [0u8; 32];
    key[0] = 7;
    let client = Client::builder()
        .keyring(RawAesKeyring::new("bench", "key", &key)?)
        .suite(suite)
        .build()?;

    let start = Instant::now();
    let mut w = client.encrypt_writer(
        Vec::with_capacity(len + (64 << 20)),
        &EncryptionContext::new(),
    )?;
    for piece in plain.chunks(BUF) {
        w.write_all(piece)?;
    }
    let message = w.finish()?;
    let enc = start.elapsed().as_secs_f64();

    // As the C session releases frames (before the signature, for signed suites).
    let options = DecryptOptions::default().with_release(ReleasePolicy::UnverifiedStream);
    let start = Instant::now();
    let mut r = client.decrypt_reader(&message[..], &options)?;
    let mut buf = vec![0u8; BUF];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    let dec = start.elapsed().as_secs_f64();
    assert_eq!(total, len);
    let gib = len as f64 / (1u64 << 30) as f64;
    println!(
        "rust-stream {:04x} encrypt {:.3} GiB/s decrypt {:.3} GiB/s",
        suite.id(),
        gib / enc,
        gib / dec
    );
    Ok(())
}
