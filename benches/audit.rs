//! What the audit trail costs: 1,000 small messages (1 KiB, both suites) encrypted in
//! memory with a plain raw AES keyring, and the same through an `AuditedKeyring` writing a
//! chained, signed log (a `generate` event per message, plus the caller's `encrypt` event,
//! checkpoint every 1000 events, fsync at checkpoints) to a file in `target/`.
//!
//! `cargo bench --bench audit`; the ratio audited / plain is in BENCHMARKS.md ("Audit").

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use envcrypt::audit::{
    AuditEvent, AuditSigningKey, AuditedKeyring, Auditor, JsonLinesOptions, JsonLinesSink,
    Operation,
};
use envcrypt::crypto::default_provider;
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, EncryptionContext};

const MESSAGES: usize = 1000;

fn benches(c: &mut Criterion) {
    let provider = default_provider();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let log = dir.path().join("audit.jsonl");
    let options =
        JsonLinesOptions::default().with_signing_key(AuditSigningKey::generate(provider).unwrap());
    let auditor = Auditor::new(Arc::new(
        JsonLinesSink::open(&log, provider, options).unwrap(),
    ));
    let key = || RawAesKeyring::new("hosp", "key-a", &[7; 32]).unwrap();
    let context = EncryptionContext::from_pairs([("purpose", "bench")]);
    let plaintext = vec![0x42u8; 1024];

    let mut g = c.benchmark_group("audit-small-messages");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    for (label, suite) in [
        ("0478", AlgorithmSuite::Aes256GcmHkdfSha512Commit),
        ("0578", AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384),
    ] {
        let plain = Client::builder()
            .keyring(key())
            .suite(suite)
            .build()
            .unwrap();
        let audited = Client::builder()
            .keyring(AuditedKeyring::new(key(), auditor.clone()))
            .suite(suite)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("plain", label), |b| {
            b.iter(|| {
                for _ in 0..MESSAGES {
                    plain.encrypt(&plaintext, &context).unwrap();
                }
            })
        });
        g.bench_function(BenchmarkId::new("audited", label), |b| {
            b.iter(|| {
                for i in 0..MESSAGES {
                    let message = audited.encrypt(&plaintext, &context).unwrap();
                    let header = envcrypt::format::parse_header(
                        &message,
                        &envcrypt::format::HeaderLimits::default(),
                    )
                    .unwrap()
                    .unwrap();
                    auditor
                        .record(
                            &AuditEvent::new(Operation::Encrypt)
                                .message(&header.header)
                                .bytes(plaintext.len() as u64)
                                .path(format!("batch/{i}")),
                        )
                        .unwrap();
                }
            })
        });
    }
    g.finish();
    auditor.finish().unwrap();
}

criterion_group!(audit, benches);
criterion_main!(audit);
