//! Per-provider throughput through the crypto seam: AES-256-GCM seal and open at 4 KiB,
//! 64 KiB and 1 MiB frames, and end-to-end one-shot encrypt/decrypt (suite 0x0478, 64 KiB
//! frames) on the same provider, so each end-to-end figure has its own raw ceiling; and
//! SHA-384 (the signed suites' hash) per provider.
//!
//! `scripts/bench-providers.sh` runs it in the default and the FIPS build, then reports.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use envcrypt::crypto::{self, AeadAlgorithm, CryptoProvider, HashAlgorithm, NONCE_LEN, TAG_LEN};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};

const PAYLOAD: usize = 64 << 20;

fn nonce(counter: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn primitives(c: &mut Criterion, p: &'static CryptoProvider, data: &[u8]) {
    let mut g = c.benchmark_group(format!("provider-{}", p.name));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    let aad = [0u8; 80];
    for (label, frame) in [("4KiB", 4096), ("64KiB", 65536), ("1MiB", 1 << 20)] {
        // One key object with nonces rising across all iterations (the FIPS module's TLS 1.2
        // record key requires it).
        let mut key = p.aead.key(AeadAlgorithm::Aes256Gcm, &[9; 32]).unwrap();
        let mut counter = 0u64;
        let mut buf = data.to_vec();
        g.bench_function(BenchmarkId::new("seal", label), |b| {
            b.iter(|| {
                for f in buf.chunks_mut(frame) {
                    counter += 1;
                    key.seal_in_place(&nonce(counter), &aad, f).unwrap();
                }
            })
        });
        let sealed: Vec<u8> = data
            .chunks(frame)
            .enumerate()
            .flat_map(|(i, f)| {
                let mut v = f.to_vec();
                let tag = key
                    .seal_in_place(&nonce(u64::MAX / 2 + i as u64), &aad, &mut v)
                    .unwrap();
                v.extend_from_slice(&tag);
                v
            })
            .collect();
        g.bench_function(BenchmarkId::new("open", label), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |s| {
                    for (i, f) in s.chunks_mut(frame + TAG_LEN).enumerate() {
                        key.open_in_place(&nonce(u64::MAX / 2 + i as u64), &aad, f)
                            .unwrap();
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function(BenchmarkId::new("sha384", "stream"), |b| {
        b.iter(|| {
            let mut h = p.digest.start(HashAlgorithm::Sha384);
            for chunk in data.chunks(64 << 10) {
                h.update(chunk);
            }
            h.finish()
        })
    });
    let client = Client::builder()
        .provider(p)
        .keyring(RawAesKeyring::new("bench", "key", &[7; 32]).unwrap())
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
        .build()
        .unwrap();
    let ctx = EncryptionContext::new();
    let mut out = Vec::new();
    g.bench_function(BenchmarkId::new("encrypt_into", "64KiB"), |b| {
        b.iter(|| client.encrypt_into(data, &ctx, &mut out).unwrap())
    });
    let message = client.encrypt(data, &ctx).unwrap();
    let mut plain = Vec::new();
    g.bench_function(BenchmarkId::new("decrypt_into", "64KiB"), |b| {
        b.iter(|| {
            client
                .decrypt_into(&message, &DecryptOptions::default(), &mut plain)
                .unwrap()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let data: Vec<u8> = (0..PAYLOAD).map(|i| (i * 7 % 251) as u8).collect();
    for p in crypto::providers() {
        primitives(c, p, &data);
    }
}

criterion_group!(providers, benches);
criterion_main!(providers);
