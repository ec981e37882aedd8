//! The async adapters against the sync pipeline they drive, in the same run: a 256 MiB
//! in-memory encrypt and decrypt, suite 0478, 64 KiB frames, default pipeline options.
//!
//! `cargo bench --features tokio --bench async_vs_sync`; `ENVCRYPT_BENCH_MIB` sets the
//! payload size. The bar (issue 6): async within 15% of sync.
//!
//! Both sides write into a reused, pre-sized `Vec` (encrypt: the message; decrypt: the
//! plaintext), so neither pays for growing it. The async side runs on a multi-thread tokio
//! runtime with the caller writing (reading) 1 MiB at a time.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FRAME: u32 = 64 * 1024;
const CALLER_CHUNK: usize = 1 << 20;

fn payload_len() -> usize {
    std::env::var("ENVCRYPT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(256)
        << 20
}

fn payload(len: usize) -> Vec<u8> {
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

struct Setup {
    data: Vec<u8>,
    message: Vec<u8>,
    client: Client,
    ctx: EncryptionContext,
    opts: PipelineOptions,
    dopts: DecryptOptions,
    rt: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    let data = payload(payload_len());
    let client = Client::builder()
        .keyring(RawAesKeyring::new("bench", "key", &[7; 32]).unwrap())
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
        .frame_length(FRAME)
        .build()
        .unwrap();
    let ctx = EncryptionContext::from_pairs([("bench", "async")]);
    let opts = PipelineOptions::default();
    let dopts = DecryptOptions::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let message = client.encrypt(&data, &ctx).unwrap();
    // Check once that both async paths produce the right bytes.
    rt.block_on(async {
        let mut w = client
            .encrypt_async_writer(Vec::new(), &ctx, &opts)
            .await
            .unwrap();
        w.write_all(&data).await.unwrap();
        let m = w.finish().await.unwrap();
        assert!(client.decrypt(&m, &dopts).unwrap().plaintext == data);
        let mut r = client
            .decrypt_async_reader(&message[..], &dopts, &opts)
            .await
            .unwrap();
        let mut p = Vec::new();
        r.read_to_end(&mut p).await.unwrap();
        assert!(p == data);
    });
    Setup {
        data,
        message,
        client,
        ctx,
        opts,
        dopts,
        rt,
    }
}

fn sync_encrypt(s: &Setup, out: &mut Vec<u8>) {
    out.clear();
    s.client
        .encrypt_stream(&s.data[..], &mut *out, &s.ctx, &s.opts)
        .unwrap();
}

fn async_encrypt(s: &Setup, out: Vec<u8>) -> Vec<u8> {
    s.rt.block_on(async {
        let mut out = out;
        out.clear();
        let mut w = s
            .client
            .encrypt_async_writer(out, &s.ctx, &s.opts)
            .await
            .unwrap();
        for chunk in s.data.chunks(CALLER_CHUNK) {
            w.write_all(chunk).await.unwrap();
        }
        w.finish().await.unwrap()
    })
}

fn sync_decrypt(s: &Setup, plain: &mut Vec<u8>) {
    plain.clear();
    s.client
        .decrypt_stream(&s.message[..], &mut *plain, &s.dopts, &s.opts)
        .unwrap();
}

fn async_decrypt(s: &Setup, plain: &mut Vec<u8>) {
    plain.clear();
    s.rt.block_on(async {
        let mut r = s
            .client
            .decrypt_async_reader(&s.message[..], &s.dopts, &s.opts)
            .await
            .unwrap();
        r.read_to_end(plain).await.unwrap();
    });
}

/// CPU time of this process so far (all threads), from /proc (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 (1-based), in clock ticks of 1/100 s.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// Sync and async alternately, `rounds` times each; prints the medians and their ratio.
/// Alternating keeps a busy machine's noise from favouring one side.
fn interleaved(s: &Setup, rounds: usize) {
    let mut out = Vec::with_capacity(s.message.len() + (1 << 20));
    let mut plain = Vec::with_capacity(s.data.len());
    let (mut es, mut ea, mut ds, mut da) = (vec![], vec![], vec![], vec![]);
    let mut cpu = [0.0f64; 4];
    let mut time = |i: usize, f: &mut dyn FnMut()| {
        let (t, c) = (std::time::Instant::now(), cpu_seconds());
        f();
        cpu[i] += cpu_seconds() - c;
        t.elapsed().as_secs_f64()
    };
    for _ in 0..rounds {
        es.push(time(0, &mut || sync_encrypt(s, &mut out)));
        ea.push(time(1, &mut || {
            out = async_encrypt(s, std::mem::take(&mut out))
        }));
        ds.push(time(2, &mut || sync_decrypt(s, &mut plain)));
        da.push(time(3, &mut || async_decrypt(s, &mut plain)));
    }
    let mib = s.data.len() as f64 / (1 << 20) as f64;
    let r = rounds as f64;
    println!(
        "interleaved CPU per run (all threads): encrypt sync {:.0} ms, async {:.0} ms; decrypt sync {:.0} ms, async {:.0} ms",
        cpu[0] / r * 1e3,
        cpu[1] / r * 1e3,
        cpu[2] / r * 1e3,
        cpu[3] / r * 1e3
    );
    for (what, sync, asy) in [("encrypt", &mut es, &mut ea), ("decrypt", &mut ds, &mut da)] {
        sync.sort_by(f64::total_cmp);
        asy.sort_by(f64::total_cmp);
        let (sm, am) = (sync[sync.len() / 2], asy[asy.len() / 2]);
        println!(
            "interleaved {what}: median sync {:.1} ms ({:.0} MiB/s), async {:.1} ms ({:.0} MiB/s), ratio {:.3}; best sync {:.1} ms, async {:.1} ms, ratio {:.3}",
            sm * 1e3,
            mib / sm,
            am * 1e3,
            mib / am,
            sm / am,
            sync[0] * 1e3,
            asy[0] * 1e3,
            sync[0] / asy[0]
        );
    }
}

fn benches(c: &mut Criterion) {
    let s = setup();
    if let Some(rounds) = std::env::var("ENVCRYPT_BENCH_INTERLEAVED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return interleaved(&s, rounds);
    }

    let mut g = c.benchmark_group("async-vs-sync-0478");
    g.throughput(Throughput::Bytes(s.data.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let mut out = Vec::with_capacity(s.message.len() + (1 << 20));
    g.bench_function(BenchmarkId::new("encrypt", "sync"), |b| {
        b.iter(|| sync_encrypt(&s, &mut out))
    });
    let mut slot = Some(out);
    g.bench_function(BenchmarkId::new("encrypt", "async"), |b| {
        b.iter(|| slot = slot.take().map(|out| async_encrypt(&s, out)))
    });
    let mut plain = Vec::with_capacity(s.data.len());
    g.bench_function(BenchmarkId::new("decrypt", "sync"), |b| {
        b.iter(|| sync_decrypt(&s, &mut plain))
    });
    g.bench_function(BenchmarkId::new("decrypt", "async"), |b| {
        b.iter(|| async_decrypt(&s, &mut plain))
    });
    g.finish();
}

criterion_group!(async_vs_sync, benches);
criterion_main!(async_vs_sync);
