//! In-memory throughput against ceilings measured in the same run.
//!
//! - `raw/seal|open/<frame>-t<n>`: raw aws-lc-rs AES-256-GCM `seal_in_place` /
//!   `open_in_place` over the same frames on `n` threads (the ceiling for suite 0x0478);
//! - `raw/sha384`: aws-lc-rs SHA-384 over the same bytes (the ceiling for signed 0x0578);
//! - `envcrypt-<suite>/encrypt|decrypt/<frame>-t<n>`: `Client::encrypt_parallel` /
//!   `decrypt_parallel` (one-shot, in memory) with `n` threads;
//! - `envcrypt-0478/writer|reader/64KiB-t1`: the `std::io` adapters on one thread;
//! - `by-provider-<suite>/<encrypt|decrypt>-<provider>/64KiB-t<max>`: the same one-shot
//!   calls on each compiled-in provider (`--features openssl` adds `openssl` and
//!   `aws-lc-rs+openssl`); `scripts/bench-openssl.sh` runs these with `openssl speed` as
//!   the SHA-384 ceiling of the same run.
//!
//! `cargo bench --bench throughput`, then `python3 scripts/bench_report.py` for the ratios.
//! `ENVCRYPT_BENCH_MIB` sets the payload (default 1024); `ENVCRYPT_BENCH_QUICK=1` runs
//! 64 KiB frames only.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::digest;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};

fn payload_len() -> usize {
    std::env::var("ENVCRYPT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024)
        << 20
}

fn frames() -> Vec<(&'static str, usize)> {
    if std::env::var_os("ENVCRYPT_BENCH_QUICK").is_some() {
        vec![("64KiB", 64 << 10)]
    } else {
        vec![("4KiB", 4 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)]
    }
}

fn threads() -> Vec<usize> {
    let n = thread::available_parallelism().map_or(1, |n| n.get());
    (1..=n).collect()
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

fn nonce(seq: usize) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(seq as u64).to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Runs `f(first_frame_index, part)` on `n` threads over contiguous parts of `buf`.
fn split_frames(buf: &mut [u8], frame: usize, n: usize, f: impl Fn(usize, &mut [u8]) + Sync) {
    let frames = buf.len().div_ceil(frame);
    let per = frames.div_ceil(n) * frame;
    thread::scope(|s| {
        for (i, part) in buf.chunks_mut(per).enumerate() {
            let f = &f;
            s.spawn(move || f(i * per / frame, part));
        }
    });
}

fn raw(c: &mut Criterion, data: &[u8]) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());
    let aad = [0u8; 80];
    let mut g = c.benchmark_group("raw");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    g.bench_function("sha384", |b| {
        b.iter(|| {
            let mut ctx = digest::Context::new(&digest::SHA384);
            ctx.update(data);
            ctx.finish()
        })
    });
    let mut buf = data.to_vec();
    for (label, frame) in frames() {
        for t in threads() {
            g.bench_function(BenchmarkId::new("seal", format!("{label}-t{t}")), |b| {
                b.iter(|| {
                    split_frames(&mut buf, frame, t, |first, part| {
                        for (i, f) in part.chunks_mut(frame).enumerate() {
                            let nonce = nonce(first + i);
                            let tag = key.seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), f);
                            let _ = std::hint::black_box(tag.unwrap());
                        }
                    })
                })
            });
        }
        // Sealed frames (tags aside) to open; each iteration opens a fresh copy (not timed).
        let mut sealed = data.to_vec();
        let tags: Vec<_> = sealed
            .chunks_mut(frame)
            .enumerate()
            .map(|(i, f)| {
                key.seal_in_place_separate_tag(nonce(i), Aad::from(&aad[..]), f)
                    .unwrap()
            })
            .collect();
        for t in threads() {
            g.bench_function(BenchmarkId::new("open", format!("{label}-t{t}")), |b| {
                b.iter_batched_ref(
                    || sealed.clone(),
                    |copy| {
                        split_frames(copy, frame, t, |first, part| {
                            for (i, f) in part.chunks_mut(frame).enumerate() {
                                let tag = tags[first + i].as_ref();
                                key.open_in_place_separate_tag(
                                    nonce(first + i),
                                    Aad::from(&aad[..]),
                                    tag,
                                    f,
                                )
                                .unwrap();
                            }
                        })
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        sealed.clear();
    }
    g.finish();
}

fn client(suite: AlgorithmSuite, frame: usize) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("bench", "key", &[7; 32]).unwrap())
        .suite(suite)
        .frame_length(frame as u32)
        .build()
        .unwrap()
}

fn envcrypt_in_memory(c: &mut Criterion, data: &[u8]) {
    let ctx = EncryptionContext::from_pairs([("bench", "throughput")]);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
    ] {
        let mut g = c.benchmark_group(format!("envcrypt-{:04x}", suite.id()));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(4));
        let mut out = Vec::new();
        let mut plain = Vec::new();
        for (label, frame) in frames() {
            let client = client(suite, frame);
            for t in threads() {
                let opts = PipelineOptions::default().with_threads(t);
                let id = format!("{label}-t{t}");
                g.bench_function(BenchmarkId::new("encrypt", &id), |b| {
                    b.iter(|| {
                        client
                            .encrypt_parallel(data, &ctx, &mut out, &opts)
                            .unwrap()
                    })
                });
                let message = out.clone();
                g.bench_function(BenchmarkId::new("decrypt", &id), |b| {
                    b.iter(|| {
                        client
                            .decrypt_parallel(
                                &message,
                                &DecryptOptions::default(),
                                &mut plain,
                                &opts,
                            )
                            .unwrap()
                    })
                });
            }
        }
        g.finish();
    }
}

fn envcrypt_stream_adapters(c: &mut Criterion, data: &[u8]) {
    let ctx = EncryptionContext::new();
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 64 << 10);
    let mut g = c.benchmark_group("envcrypt-0478");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    g.bench_function(BenchmarkId::new("writer", "64KiB-t1"), |b| {
        b.iter(|| {
            let mut w = client.encrypt_writer(std::io::sink(), &ctx).unwrap();
            for chunk in data.chunks(1 << 20) {
                w.write_all(chunk).unwrap();
            }
            w.finish().unwrap();
        })
    });
    let message = client.encrypt(data, &ctx).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    g.bench_function(BenchmarkId::new("reader", "64KiB-t1"), |b| {
        b.iter(|| {
            let mut r = client
                .decrypt_reader(&message[..], &DecryptOptions::default())
                .unwrap();
            while r.read(&mut chunk).unwrap() > 0 {}
        })
    });
    g.finish();
}

fn by_provider(c: &mut Criterion, data: &[u8]) {
    let ctx = EncryptionContext::from_pairs([("bench", "throughput")]);
    let t = threads().last().copied().unwrap_or(1);
    let opts = PipelineOptions::default().with_threads(t);
    let id = format!("64KiB-t{t}");
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    ] {
        let mut g = c.benchmark_group(format!("by-provider-{:04x}", suite.id()));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(4));
        let mut out = Vec::new();
        let mut plain = Vec::new();
        for p in envcrypt::crypto::providers() {
            let client = Client::builder()
                .provider(p)
                .keyring(RawAesKeyring::new("bench", "key", &[7; 32]).unwrap())
                .suite(suite)
                .frame_length(64 << 10)
                .build()
                .unwrap();
            g.bench_function(BenchmarkId::new(format!("encrypt-{}", p.name), &id), |b| {
                b.iter(|| {
                    client
                        .encrypt_parallel(data, &ctx, &mut out, &opts)
                        .unwrap()
                })
            });
            let message = out.clone();
            g.bench_function(BenchmarkId::new(format!("decrypt-{}", p.name), &id), |b| {
                b.iter(|| {
                    client
                        .decrypt_parallel(&message, &DecryptOptions::default(), &mut plain, &opts)
                        .unwrap()
                })
            });
        }
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let data = payload(payload_len());
    raw(c, &data);
    envcrypt_in_memory(c, &data);
    envcrypt_stream_adapters(c, &data);
    by_provider(c, &data);
}

criterion_group!(throughput, benches);
criterion_main!(throughput);
