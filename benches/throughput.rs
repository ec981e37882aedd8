//! Single-thread throughput of the one-shot and streaming paths, against the ceiling of
//! raw aws-lc-rs `seal_in_place` / `open_in_place` over the same frames, in the same run.
//!
//! `cargo bench --bench throughput` then `python3 scripts/bench_report.py` for the ratios.
//! `ENVCRYPT_BENCH_MIB` sets the payload size (default 256).

use std::io::{Read, Write};
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};

const FRAME: usize = 64 * 1024;

fn payload_len() -> usize {
    std::env::var("ENVCRYPT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(256)
        << 20
}

fn payload(len: usize) -> Vec<u8> {
    // Cheap deterministic bytes (content does not matter to AES-GCM speed).
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

fn client(suite: AlgorithmSuite) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("bench", "key", &[7; 32]).unwrap())
        .suite(suite)
        .frame_length(FRAME as u32)
        .build()
        .unwrap()
}

fn nonce(seq: u32) -> Nonce {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The ceiling: raw AES-256-GCM over the same 64 KiB frames, in place, no framing.
fn raw(c: &mut Criterion, data: &[u8]) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());
    let aad = [0u8; 80];
    let mut g = c.benchmark_group("raw-aes-256-gcm");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    let mut buf = data.to_vec();
    g.bench_function("seal_in_place", |b| {
        b.iter(|| {
            for (i, frame) in buf.chunks_mut(FRAME).enumerate() {
                let tag = key
                    .seal_in_place_separate_tag(nonce(i as u32), Aad::from(&aad[..]), frame)
                    .unwrap();
                let _ = black_box(tag);
            }
        })
    });
    g.finish();
}

/// The open ceiling: raw AES-256-GCM open over the same frames.
fn ceiling_open(c: &mut Criterion, data: &[u8]) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());
    let aad = [0u8; 80];
    let mut g = c.benchmark_group("raw-aes-256-gcm");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    let mut buf = data.to_vec();
    let tags: Vec<_> = buf
        .chunks_mut(FRAME)
        .enumerate()
        .map(|(i, f)| {
            key.seal_in_place_separate_tag(nonce(i as u32), Aad::from(&aad[..]), f)
                .unwrap()
        })
        .collect();
    // Each iteration opens a fresh copy of the sealed frames (the copy is not timed).
    g.bench_function("open_in_place", |b| {
        b.iter_batched_ref(
            || buf.clone(),
            |sealed| {
                for (i, (frame, tag)) in sealed.chunks_mut(FRAME).zip(&tags).enumerate() {
                    key.open_in_place_separate_tag(
                        nonce(i as u32),
                        Aad::from(&aad[..]),
                        tag.as_ref(),
                        frame,
                    )
                    .unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn envcrypt_paths(c: &mut Criterion, data: &[u8]) {
    let ctx = EncryptionContext::from_pairs([("bench", "throughput")]);
    {
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
        let client = client(suite);
        let name = format!("envcrypt-{:04x}", suite.id());
        let mut g = c.benchmark_group(&name);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(6));
        let mut out = Vec::with_capacity(data.len() + data.len() / 1000 + 4096);
        g.bench_function(BenchmarkId::new("encrypt_into", "64KiB"), |b| {
            b.iter(|| client.encrypt_into(data, &ctx, &mut out).unwrap())
        });
        let message = client.encrypt(data, &ctx).unwrap();
        let mut plain = Vec::with_capacity(data.len());
        g.bench_function(BenchmarkId::new("decrypt_into", "64KiB"), |b| {
            b.iter(|| {
                client
                    .decrypt_into(&message, &DecryptOptions::default(), &mut plain)
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("writer", "64KiB"), |b| {
            b.iter(|| {
                let mut w = client.encrypt_writer(std::io::sink(), &ctx).unwrap();
                for chunk in data.chunks(1 << 20) {
                    w.write_all(chunk).unwrap();
                }
                w.finish().unwrap();
            })
        });
        let mut chunk = vec![0u8; 1 << 20];
        g.bench_function(BenchmarkId::new("reader", "64KiB"), |b| {
            b.iter(|| {
                let mut r = client
                    .decrypt_reader(&message[..], &DecryptOptions::default())
                    .unwrap();
                while r.read(&mut chunk).unwrap() > 0 {}
            })
        });
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let data = payload(payload_len());
    raw(c, &data);
    ceiling_open(c, &data);
    envcrypt_paths(c, &data);
}

criterion_group!(throughput, benches);
criterion_main!(throughput);
