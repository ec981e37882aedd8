//! The AWS KMS keyrings against a real KMS implementation: moto's server, started by each
//! test on 127.0.0.1 and a free port (see `common/moto.rs`), plus a scripted fake KMS for
//! the answers moto cannot give (a response naming another key, disabled keys, a stalled
//! server).
//!
//! Run: `cargo test --release --features aws-kms --test aws_kms`, with `ENVCRYPT_MOTO_SERVER`
//! (default `target/esdk-venv/bin/moto_server`) and, for the interoperability test,
//! `ENVCRYPT_PYTHON` (default `target/esdk-venv/bin/python`, with
//! `aws-encryption-sdk[MPL]>=4,<5`). Missing components fail the tests; nothing is skipped.
//!
//! Every SDK call is counted by an interceptor, so the tests also pin down how many KMS calls
//! each operation makes (one `GenerateDataKey` per message, one `Encrypt` per extra key, one
//! `Decrypt` per decryption) and print the measured latencies.

#![cfg(feature = "aws-kms")]

#[path = "common/moto.rs"]
mod moto;

#[path = "common/python.rs"]
mod python;

use python::Esdk;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_kms::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_kms::error::BoxError;
use base64::Engine as _;
use envcrypt::engine::Decryptor;
use envcrypt::format::EncryptedDataKey;
use envcrypt::keyring::{
    AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, Keyring, KeyringError, KmsClient,
    MultiKeyring, RawAesKeyring,
};
use envcrypt::materials::{DecryptionMaterials, EncryptionMaterials};
use envcrypt::pipeline::PipelineOptions;
use envcrypt::stream::EncryptingWriter;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext, Error};
use moto::{Moto, ACCOUNT, REGION};
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
];
const PUBLIC_KEY: &str = "aws-crypto-public-key";

// ---------------------------------------------------------------------------------------------
// Helpers: SDK configuration, call counting, key administration

/// Counts the KMS calls (each try) by operation and records their latency.
#[derive(Debug, Default)]
struct Calls {
    by_op: Mutex<BTreeMap<String, u32>>,
    started: Mutex<Option<Instant>>,
    latencies: Mutex<Vec<Duration>>,
}

impl Calls {
    fn count(&self, op: &str) -> u32 {
        self.by_op.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    fn total(&self) -> u32 {
        self.by_op.lock().unwrap().values().sum()
    }

    fn reset(&self) {
        self.by_op.lock().unwrap().clear();
    }

    /// "N calls, median X ms, max Y ms".
    fn latency_summary(&self) -> String {
        let mut l = self.latencies.lock().unwrap().clone();
        if l.is_empty() {
            return "no calls".into();
        }
        l.sort();
        format!(
            "{} calls, median {:.2} ms, max {:.2} ms",
            l.len(),
            l[l.len() / 2].as_secs_f64() * 1e3,
            l[l.len() - 1].as_secs_f64() * 1e3
        )
    }
}

#[derive(Debug, Clone)]
struct Counter(Arc<Calls>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "envcrypt-test-call-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        let op = target.trim_start_matches("TrentService.").to_owned();
        *self.0.by_op.lock().unwrap().entry(op).or_default() += 1;
        *self.0.started.lock().unwrap() = Some(Instant::now());
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(t) = self.0.started.lock().unwrap().take() {
            self.0.latencies.lock().unwrap().push(t.elapsed());
        }
        Ok(())
    }
}

/// SDK configuration for `endpoint`: region us-east-1, dummy credentials, no environment.
fn sdk_config(endpoint: &str, calls: Option<&Arc<Calls>>) -> aws_sdk_kms::Config {
    sdk_config_in(endpoint, REGION, calls)
}

/// [`sdk_config`] for another region (moto keeps each region's keys apart).
fn sdk_config_in(
    endpoint: &str,
    region: &'static str,
    calls: Option<&Arc<Calls>>,
) -> aws_sdk_kms::Config {
    let mut builder = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "envcrypt-tests",
        ))
        .endpoint_url(endpoint);
    if let Some(calls) = calls {
        builder = builder.interceptor(Counter(calls.clone()));
    }
    builder.build()
}

/// A keyring client for `endpoint` (the module's default timeouts and retries) and its
/// call counter.
fn kms(endpoint: &str) -> (KmsClient, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let client = KmsClient::from_sdk_client(aws_sdk_kms::Client::from_conf(sdk_config(
        endpoint,
        Some(&calls),
    )));
    (client, calls)
}

/// Key administration (CreateKey, CreateAlias) on a runtime of its own.
struct Admin {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_kms::Client,
}

impl Admin {
    fn new(moto: &Moto) -> Self {
        Self::in_region(moto, REGION)
    }

    fn in_region(moto: &Moto, region: &'static str) -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            client: aws_sdk_kms::Client::from_conf(sdk_config_in(&moto.endpoint, region, None)),
        }
    }

    /// A new symmetric key: (ARN, bare key id).
    fn create_key(&self) -> (String, String) {
        let out = self
            .rt
            .block_on(self.client.create_key().send())
            .expect("CreateKey");
        let meta = out.key_metadata().expect("key metadata");
        (
            meta.arn().expect("arn").to_owned(),
            meta.key_id().to_owned(),
        )
    }

    fn create_alias(&self, alias: &str, key_id: &str) {
        self.rt
            .block_on(
                self.client
                    .create_alias()
                    .alias_name(alias)
                    .target_key_id(key_id)
                    .send(),
            )
            .expect("CreateAlias");
    }
}

fn client_with(keyring: impl Keyring + 'static, suite: AlgorithmSuite) -> Client {
    Client::builder()
        .keyring(keyring)
        .suite(suite)
        .frame_length(4096)
        .build()
        .expect("client")
}

fn arc(k: impl Keyring + 'static) -> Arc<dyn Keyring> {
    Arc::new(k)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

fn contexts() -> Vec<EncryptionContext> {
    vec![
        EncryptionContext::new(),
        EncryptionContext::from_pairs([("study", "ct-abdomen"), ("site", "hospital-a")]),
        EncryptionContext::from_pairs([("patient name", "Zoë Çelik"), ("部门", "放射科 ✓")]),
    ]
}

/// The EDKs of a message.
fn edks_of(message: &[u8]) -> Vec<EncryptedDataKey> {
    let config =
        Client::new(RawAesKeyring::new("unused", "unused", &[0; 32]).unwrap()).decrypt_config();
    let mut dec = Decryptor::new(config);
    dec.parse_header(message)
        .expect("header parses")
        .expect("whole header");
    dec.header()
        .expect("header")
        .header
        .encrypted_data_keys
        .clone()
}

fn kms_edks(message: &[u8]) -> Vec<String> {
    edks_of(message)
        .into_iter()
        .filter(|e| e.provider_id == "aws-kms")
        .map(|e| String::from_utf8(e.provider_info).expect("UTF-8 ARN"))
        .collect()
}

#[track_caller]
fn keyring_error(result: Result<impl std::fmt::Debug, Error>) -> KeyringError {
    match result {
        Err(Error::Keyring(e)) => e,
        other => panic!("expected a keyring error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips (blocking path)

#[test]
fn round_trip_one_shot_and_streaming() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (arn, _) = admin.create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let started = Instant::now();
    let mut messages = 0;
    for suite in SUITES {
        let client = client_with(AwsKmsKeyring::new(kms.clone(), &arn).unwrap(), suite);
        for context in contexts() {
            for len in [0usize, 1, 4096, 10_000] {
                calls.reset();
                let data = payload(len);
                let message = client.encrypt(&data, &context).expect("encrypt");
                assert_eq!(calls.count("GenerateDataKey"), 1);
                assert_eq!(calls.total(), 1, "one KMS call per encryption");
                let edks = edks_of(&message);
                assert_eq!(edks.len(), 1);
                assert_eq!(edks[0].provider_id, "aws-kms");
                assert_eq!(
                    edks[0].provider_info,
                    arn.as_bytes(),
                    "provider info = key ARN"
                );
                let out = client
                    .decrypt(&message, &DecryptOptions::default())
                    .expect("decrypt");
                assert_eq!(calls.count("Decrypt"), 1);
                assert_eq!(calls.total(), 2);
                assert_eq!(out.plaintext, data);
                for (k, v) in context.iter() {
                    assert_eq!(out.header.encryption_context.get(k), Some(v));
                }
                messages += 1;
            }
        }
        // Streaming: the parallel pipeline and the std::io adapters.
        let data = payload(3 * 1024 * 1024 + 17);
        let context = &contexts()[2];
        let mut message = Vec::new();
        client
            .encrypt_stream(
                &data[..],
                &mut message,
                context,
                &PipelineOptions::default(),
            )
            .expect("encrypt_stream");
        let mut plain = Vec::new();
        let (header, _) = client
            .decrypt_stream(
                &message[..],
                &mut plain,
                &DecryptOptions::default(),
                &PipelineOptions::default(),
            )
            .expect("decrypt_stream");
        assert_eq!(plain, data);
        assert_eq!(header.encrypted_data_keys[0].provider_info, arn.as_bytes());
        let mut writer = client.encrypt_writer(Vec::new(), context).expect("writer");
        writer.write_all(&data).unwrap();
        let message = writer.finish().expect("finish");
        let mut reader = client
            .decrypt_reader(&message[..], &DecryptOptions::default())
            .expect("reader");
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain).expect("read");
        assert_eq!(plain, data);
        messages += 2;
    }
    eprintln!(
        "round trips: {messages} messages in {:.2} s; KMS {}; moto started in {:.2} s",
        started.elapsed().as_secs_f64(),
        calls.latency_summary(),
        moto.startup.as_secs_f64()
    );
}

#[test]
fn other_key_is_not_mine() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (a, _) = admin.create_key();
    let (b, _) = admin.create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let message = Client::new(AwsKmsKeyring::new(kms.clone(), &a).unwrap())
        .encrypt(b"data", &EncryptionContext::new())
        .unwrap();
    calls.reset();
    let e = keyring_error(
        Client::new(AwsKmsKeyring::new(kms.clone(), &b).unwrap())
            .decrypt(&message, &DecryptOptions::default()),
    );
    assert_eq!(e, KeyringError::NoMatchingKey);
    assert_eq!(calls.total(), 0, "an EDK of another key is not sent to KMS");
    // A raw AES EDK is not ours either.
    let raw = Client::new(RawAesKeyring::new("ns", "k", &[7; 32]).unwrap())
        .encrypt(b"data", &EncryptionContext::new())
        .unwrap();
    let e = keyring_error(
        Client::new(AwsKmsKeyring::new(kms.clone(), &a).unwrap())
            .decrypt(&raw, &DecryptOptions::default()),
    );
    assert_eq!(e, KeyringError::NoMatchingKey);
    // Configuration errors.
    assert!(matches!(
        AwsKmsKeyring::new(kms.clone(), ""),
        Err(KeyringError::InvalidKey(_))
    ));
    assert!(matches!(
        AwsKmsKeyring::new(kms.clone(), "arn:aws:kms:broken"),
        Err(KeyringError::InvalidKey(_))
    ));
    assert!(matches!(
        AwsKmsKeyring::new(kms, &a)
            .unwrap()
            .with_additional_keys(["alias/only-generators-may-be-aliases"]),
        Err(KeyringError::InvalidKey(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Multi-keyrings

#[test]
fn multi_keyring_two_kms_keys_and_raw_aes() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (a, _) = admin.create_key();
    let (b, _) = admin.create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let aes = [0x5a; 32];
    let context = EncryptionContext::from_pairs([("purpose", "escrow")]);
    let data = payload(20_000);
    for suite in SUITES {
        // KMS generator, KMS and raw AES children.
        let multi = MultiKeyring::from_arcs(
            Some(arc(AwsKmsKeyring::new(kms.clone(), &a).unwrap())),
            vec![
                arc(AwsKmsKeyring::new(kms.clone(), &b).unwrap()),
                arc(RawAesKeyring::new("escrow", "aes-1", &aes).unwrap()),
            ],
        );
        calls.reset();
        let message = client_with(multi, suite).encrypt(&data, &context).unwrap();
        assert_eq!(calls.count("GenerateDataKey"), 1);
        assert_eq!(calls.count("Encrypt"), 1);
        assert_eq!(calls.total(), 2);
        let edks = edks_of(&message);
        assert_eq!(edks.len(), 3);
        assert_eq!(kms_edks(&message), [a.clone(), b.clone()]);
        assert_eq!(edks[2].provider_id, "escrow");
        // Each keyring alone decrypts.
        let alone: [Arc<dyn Keyring>; 3] = [
            arc(AwsKmsKeyring::new(kms.clone(), &a).unwrap()),
            arc(AwsKmsKeyring::new(kms.clone(), &b).unwrap()),
            arc(RawAesKeyring::new("escrow", "aes-1", &aes).unwrap()),
        ];
        for (i, keyring) in alone.into_iter().enumerate() {
            calls.reset();
            let client = Client::builder()
                .materials_manager(envcrypt::materials::DefaultMaterialsManager::from_arc(
                    keyring,
                ))
                .build()
                .unwrap();
            let out = client
                .decrypt(&message, &DecryptOptions::default())
                .unwrap_or_else(|e| panic!("keyring {i} alone: {e}"));
            assert_eq!(out.plaintext, data);
            assert_eq!(calls.total(), if i < 2 { 1 } else { 0 });
        }

        // Raw AES generator, KMS children: each KMS key wraps the data key with Encrypt.
        let multi = MultiKeyring::from_arcs(
            Some(arc(RawAesKeyring::new("escrow", "aes-1", &aes).unwrap())),
            vec![arc(AwsKmsKeyring::new(kms.clone(), &a)
                .unwrap()
                .with_additional_keys([b.as_str()])
                .unwrap())],
        );
        calls.reset();
        let message = client_with(multi, suite).encrypt(&data, &context).unwrap();
        assert_eq!(calls.count("Encrypt"), 2);
        assert_eq!(calls.total(), 2);
        assert_eq!(kms_edks(&message), [a.clone(), b.clone()]);
        let out = Client::new(AwsKmsKeyring::new(kms.clone(), &b).unwrap())
            .decrypt(&message, &DecryptOptions::default())
            .unwrap();
        assert_eq!(out.plaintext, data);

        // One KMS keyring with an additional key: GenerateDataKey + Encrypt.
        calls.reset();
        let keyring = AwsKmsKeyring::new(kms.clone(), &a)
            .unwrap()
            .with_additional_keys([b.as_str()])
            .unwrap();
        let message = client_with(keyring.clone(), suite)
            .encrypt(&data, &context)
            .unwrap();
        assert_eq!(calls.count("GenerateDataKey"), 1);
        assert_eq!(calls.count("Encrypt"), 1);
        assert_eq!(kms_edks(&message), [a.clone(), b.clone()]);
        for key in [&a, &b] {
            let out = Client::new(AwsKmsKeyring::new(kms.clone(), key).unwrap())
                .decrypt(&message, &DecryptOptions::default())
                .unwrap();
            assert_eq!(out.plaintext, data);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[test]
fn discovery_with_and_without_filter() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (a, _) = admin.create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let data = payload(5000);
    let context = EncryptionContext::from_pairs([("k", "v")]);
    let message = Client::new(AwsKmsKeyring::new(kms.clone(), &a).unwrap())
        .encrypt(&data, &context)
        .unwrap();

    for keyring in [
        AwsKmsDiscoveryKeyring::new(kms.clone()),
        AwsKmsDiscoveryKeyring::new(kms.clone())
            .with_filter(DiscoveryFilter::new("aws", [ACCOUNT])),
        AwsKmsDiscoveryKeyring::new(kms.clone())
            .with_filter(DiscoveryFilter::new("aws", ["111122223333", ACCOUNT])),
    ] {
        calls.reset();
        let out = Client::new(keyring)
            .decrypt(&message, &DecryptOptions::default())
            .expect("discovery decrypts");
        assert_eq!(out.plaintext, data);
        assert_eq!(calls.count("Decrypt"), 1);
    }

    // Another account: excluded, with the reason, and no call.
    calls.reset();
    let e = keyring_error(
        Client::new(
            AwsKmsDiscoveryKeyring::new(kms.clone())
                .with_filter(DiscoveryFilter::new("aws", ["111122223333"])),
        )
        .decrypt(&message, &DecryptOptions::default()),
    );
    match &e {
        KeyringError::Excluded(why) => {
            assert_eq!(why.len(), 1);
            assert!(why[0].contains(&a), "{why:?}");
            assert!(
                why[0].contains("account 123456789012 is not in the filter [111122223333]"),
                "{why:?}"
            );
        }
        other => panic!("expected Excluded, got {other:?}"),
    }
    assert!(!e.is_unavailable());
    assert!(e.to_string().contains("111122223333"), "{e}");
    assert_eq!(calls.total(), 0);
    // Another partition.
    let e = keyring_error(
        Client::new(
            AwsKmsDiscoveryKeyring::new(kms.clone())
                .with_filter(DiscoveryFilter::new("aws-cn", [ACCOUNT])),
        )
        .decrypt(&message, &DecryptOptions::default()),
    );
    assert!(
        matches!(&e, KeyringError::Excluded(w) if w[0].contains("partition aws is not aws-cn")),
        "{e:?}"
    );
    // No KMS EDK at all: plain "not mine".
    let raw = Client::new(RawAesKeyring::new("ns", "k", &[7; 32]).unwrap())
        .encrypt(b"x", &EncryptionContext::new())
        .unwrap();
    let e = keyring_error(
        Client::new(AwsKmsDiscoveryKeyring::new(kms.clone()))
            .decrypt(&raw, &DecryptOptions::default()),
    );
    assert_eq!(e, KeyringError::NoMatchingKey);
    // Discovery cannot encrypt.
    let e = keyring_error(
        Client::new(AwsKmsDiscoveryKeyring::new(kms)).encrypt(b"x", &EncryptionContext::new()),
    );
    assert!(matches!(e, KeyringError::Unsupported(_)), "{e:?}");
}

#[test]
fn discovery_skips_edks_of_other_regions() {
    const OTHER: &str = "eu-west-1";
    let moto = Moto::start();
    let (home_key, _) = Admin::new(&moto).create_key();
    let away = Admin::in_region(&moto, OTHER);
    let (away_key, _) = away.create_key();
    assert!(away_key.contains(":eu-west-1:"), "{away_key}");
    let (kms, calls) = kms(&moto.endpoint);
    let away_kms = KmsClient::from_sdk_client(aws_sdk_kms::Client::from_conf(sdk_config_in(
        &moto.endpoint,
        OTHER,
        None,
    )));
    let data = payload(3000);
    let context = EncryptionContext::from_pairs([("k", "v")]);
    let away_message = Client::new(AwsKmsKeyring::new(away_kms.clone(), &away_key).unwrap())
        .encrypt(&data, &context)
        .unwrap();

    // A us-east-1 discovery keyring (with and without a filter that admits the account):
    // the eu-west-1 EDK is not sent to us-east-1.
    for keyring in [
        AwsKmsDiscoveryKeyring::new(kms.clone()),
        AwsKmsDiscoveryKeyring::new(kms.clone())
            .with_filter(DiscoveryFilter::new("aws", [ACCOUNT])),
    ] {
        calls.reset();
        let e =
            keyring_error(Client::new(keyring).decrypt(&away_message, &DecryptOptions::default()));
        match &e {
            KeyringError::Excluded(why) => {
                assert_eq!(why.len(), 1, "{why:?}");
                assert!(why[0].contains(&away_key), "{why:?}");
                assert!(
                    why[0].contains("region eu-west-1 is not the client's region us-east-1"),
                    "{why:?}"
                );
            }
            other => panic!("expected Excluded, got {other:?}"),
        }
        assert!(!e.is_unavailable());
        assert_eq!(calls.total(), 0, "no call to the wrong region");
    }

    // The same EDK with its region's client decrypts.
    let out = Client::new(AwsKmsDiscoveryKeyring::new(away_kms.clone()))
        .decrypt(&away_message, &DecryptOptions::default())
        .expect("discovery in the EDK's region");
    assert_eq!(out.plaintext, data);

    // A message with EDKs of both regions, the other region's first: one Decrypt call, in
    // us-east-1, for the us-east-1 EDK.
    let both = Client::new(MultiKeyring::new(
        Some(AwsKmsKeyring::new(away_kms, &away_key).unwrap()),
        [AwsKmsKeyring::new(kms.clone(), &home_key).unwrap()],
    ));
    let message = both.encrypt(&data, &context).unwrap();
    let edks = kms_edks(&message);
    assert_eq!(edks, vec![away_key.clone(), home_key.clone()]);
    calls.reset();
    let out = Client::new(AwsKmsDiscoveryKeyring::new(kms))
        .decrypt(&message, &DecryptOptions::default())
        .expect("the us-east-1 EDK decrypts");
    assert_eq!(out.plaintext, data);
    assert_eq!(calls.count("Decrypt"), 1);
    assert_eq!(calls.total(), 1);
}

// ---------------------------------------------------------------------------------------------
// Encryption context

#[test]
fn context_mismatch_is_unwrap_failed() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (a, _) = admin.create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let keyring = AwsKmsKeyring::new(kms.clone(), &a).unwrap();

    // Required context kept out of the header: a wrong value reaches KMS, which refuses.
    let client = Client::builder()
        .keyring(keyring.clone())
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
        .required_context_keys(["tenant"])
        .build()
        .unwrap();
    let context = EncryptionContext::from_pairs([("tenant", "clinic-7"), ("kind", "mri")]);
    let message = client.encrypt(b"scan", &context).unwrap();
    let right = DecryptOptions::default()
        .with_required_context(EncryptionContext::from_pairs([("tenant", "clinic-7")]));
    assert_eq!(client.decrypt(&message, &right).unwrap().plaintext, b"scan");
    calls.reset();
    let wrong = DecryptOptions::default()
        .with_required_context(EncryptionContext::from_pairs([("tenant", "clinic-8")]));
    let e = keyring_error(client.decrypt(&message, &wrong));
    assert_eq!(
        e,
        KeyringError::UnwrapFailed {
            provider_id: "aws-kms".into(),
            key_name: a.clone(),
        }
    );
    assert!(!e.is_unavailable());
    assert_eq!(calls.count("Decrypt"), 1, "KMS was asked and refused");

    // At the keyring: a context that differs from the one the EDK was made under.
    let provider = envcrypt::crypto::default_provider();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
    let materials =
        EncryptionMaterials::new(provider, suite, EncryptionContext::from_pairs([("a", "1")]));
    let done = envcrypt::block_on(keyring.on_encrypt(materials)).unwrap();
    for (context, ok) in [
        (EncryptionContext::from_pairs([("a", "1")]), true),
        (EncryptionContext::from_pairs([("a", "2")]), false),
        (EncryptionContext::new(), false),
        (
            EncryptionContext::from_pairs([("a", "1"), ("b", "2")]),
            false,
        ),
    ] {
        let materials = DecryptionMaterials::new(provider, suite, context.clone());
        let result = envcrypt::block_on(keyring.on_decrypt(materials, &done.encrypted_data_keys));
        match result {
            Ok(m) => {
                assert!(ok, "{context:?} must be refused");
                assert_eq!(
                    m.data_key.unwrap().expose_secret(),
                    done.data_key.as_ref().unwrap().expose_secret()
                );
            }
            Err(e) => {
                assert!(!ok, "{context:?}: {e}");
                assert!(matches!(e, KeyringError::UnwrapFailed { .. }), "{e:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Aliases

#[test]
fn alias_as_generator() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (a, a_id) = admin.create_key();
    admin.create_alias("alias/envcrypt-imaging", &a_id);
    let (kms, calls) = kms(&moto.endpoint);
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/envcrypt-imaging");
    for generator in ["alias/envcrypt-imaging", alias_arn.as_str(), a_id.as_str()] {
        let keyring = AwsKmsKeyring::new(kms.clone(), generator).unwrap();
        let message = Client::new(keyring.clone())
            .encrypt(b"aliased", &EncryptionContext::from_pairs([("x", "y")]))
            .unwrap();
        // KMS answers with the key ARN: that is what the EDK records.
        assert_eq!(
            kms_edks(&message),
            std::slice::from_ref(&a),
            "generator {generator}"
        );
        let out = Client::new(AwsKmsKeyring::new(kms.clone(), &a).unwrap())
            .decrypt(&message, &DecryptOptions::default())
            .unwrap();
        assert_eq!(out.plaintext, b"aliased");
        // The alias keyring matches EDKs by key ARN only.
        calls.reset();
        let e = keyring_error(Client::new(keyring).decrypt(&message, &DecryptOptions::default()));
        assert_eq!(e, KeyringError::NoMatchingKey);
        assert_eq!(calls.total(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Async path

async fn encrypt_async(client: &Client, data: &[u8], context: &EncryptionContext) -> Vec<u8> {
    let encryptor = client
        .encryptor_async(context, Some(data.len() as u64))
        .await
        .expect("encryptor_async");
    let mut writer = EncryptingWriter::new(encryptor, Vec::new()).unwrap();
    writer.write_all(data).unwrap();
    writer.finish().unwrap()
}

async fn decrypt_async(client: &Client, message: &[u8]) -> Result<Vec<u8>, Error> {
    let mut dec = Decryptor::new(client.decrypt_config());
    let mut pos = dec.parse_header(message)?.expect("whole header");
    client
        .unlock_async(&mut dec, &DecryptOptions::default())
        .await?;
    let mut out = Vec::new();
    loop {
        let rest = &message[pos..];
        let envcrypt::engine::Next::Unit(layout) = dec.next_frame(rest)? else {
            panic!("whole frame")
        };
        let p = layout.header.prefix_len;
        let body_end = p + layout.body_len() + envcrypt::crypto::TAG_LEN;
        let mut body = rest[p..body_end].to_vec();
        dec.open_frame(
            &layout,
            &rest[..p],
            &mut body,
            &rest[body_end..layout.total_len()],
        )?;
        out.extend_from_slice(&body[..layout.body_len()]);
        pos += layout.total_len();
        if layout.is_final() {
            assert_eq!(pos, message.len());
            return Ok(out);
        }
    }
}

async fn async_round_trips(kms: KmsClient, arn: String, calls: Arc<Calls>) {
    for suite in SUITES {
        let client = client_with(AwsKmsKeyring::new(kms.clone(), &arn).unwrap(), suite);
        let data = payload(9000);
        let context = contexts()[2].clone();
        calls.reset();
        let message = encrypt_async(&client, &data, &context).await;
        assert_eq!(kms_edks(&message), std::slice::from_ref(&arn));
        assert_eq!(decrypt_async(&client, &message).await.unwrap(), data);
        assert_eq!(
            (calls.count("GenerateDataKey"), calls.count("Decrypt")),
            (1, 1)
        );
        // The blocking path reads what the async path wrote, and the reverse.
        let sync_message = client.encrypt(&data, &context).unwrap();
        assert_eq!(decrypt_async(&client, &sync_message).await.unwrap(), data);
        // Discovery, async.
        let discovery = Client::new(
            AwsKmsDiscoveryKeyring::new(kms.clone())
                .with_filter(DiscoveryFilter::new("aws", [ACCOUNT])),
        );
        assert_eq!(decrypt_async(&discovery, &message).await.unwrap(), data);
    }
}

#[test]
fn async_path_on_current_thread_runtime() {
    let moto = Moto::start();
    let (arn, _) = Admin::new(&moto).create_key();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Made inside the runtime; the client still runs its calls on its own runtime, so a
        // current-thread executor is never blocked by them.
        let (kms, calls) = kms(&moto.endpoint);
        async_round_trips(kms, arn, calls).await;
        // The last client is dropped here, inside the async context: no panic.
    });
}

#[test]
fn async_path_on_callers_multi_thread_runtime() {
    let moto = Moto::start();
    let (arn, _) = Admin::new(&moto).create_key();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (kms, calls) = kms(&moto.endpoint);
        let kms = kms.with_runtime(tokio::runtime::Handle::current());
        async_round_trips(kms.clone(), arn.clone(), calls).await;
        // Many concurrent encryptions on the caller's runtime.
        let client = Arc::new(Client::new(AwsKmsKeyring::new(kms, &arn).unwrap()));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let data = payload(100 + i);
                    let m = encrypt_async(&client, &data, &EncryptionContext::new()).await;
                    assert_eq!(decrypt_async(&client, &m).await.unwrap(), data);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Outages

#[test]
fn server_stopped_mid_run_is_unavailable_quickly() {
    let mut moto = Moto::start();
    let (arn, _) = Admin::new(&moto).create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let client = Client::new(AwsKmsKeyring::new(kms.clone(), &arn).unwrap());
    let message = client
        .encrypt(b"before", &EncryptionContext::new())
        .unwrap();
    moto.stop();
    calls.reset();

    let t = Instant::now();
    let e = keyring_error(client.encrypt(b"after", &EncryptionContext::new()));
    let encrypt_time = t.elapsed();
    assert!(matches!(e, KeyringError::Unavailable(_)), "{e:?}");
    assert!(e.is_unavailable());
    assert!(e.to_string().contains("GenerateDataKey"), "{e}");
    assert!(encrypt_time < Duration::from_secs(15), "{encrypt_time:?}");

    let t = Instant::now();
    let e = keyring_error(client.decrypt(&message, &DecryptOptions::default()));
    let decrypt_time = t.elapsed();
    assert!(matches!(e, KeyringError::Unavailable(_)), "{e:?}");
    assert!(decrypt_time < Duration::from_secs(15), "{decrypt_time:?}");

    // Through a multi-keyring and the discovery keyring too.
    let e = keyring_error(
        Client::new(MultiKeyring::from_arcs(
            None,
            vec![
                arc(AwsKmsKeyring::new(kms.clone(), &arn).unwrap()),
                arc(AwsKmsDiscoveryKeyring::new(kms.clone())),
            ],
        ))
        .decrypt(&message, &DecryptOptions::default()),
    );
    assert!(e.is_unavailable(), "{e:?}");
    eprintln!(
        "server stopped: encrypt failed after {:.3} s, decrypt after {:.3} s ({} tries: {:?}); {e}",
        encrypt_time.as_secs_f64(),
        decrypt_time.as_secs_f64(),
        calls.total(),
        calls.by_op.lock().unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// A scripted fake KMS: answers moto cannot give

/// What the fake answers to one request.
enum Reply {
    /// HTTP status and JSON body.
    Json(u16, Value),
    /// Read the request, never answer (until the test ends).
    Stall,
}

/// A minimal HTTP/1.1 server speaking KMS's JSON protocol; records every request.
struct FakeKms {
    endpoint: String,
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    stop: Arc<AtomicBool>,
}

impl FakeKms {
    fn start(handler: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (reqs, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, reqs, halt) = (handler.clone(), reqs.clone(), halt.clone());
                std::thread::spawn(move || serve(conn, &*handler, &reqs, &halt));
            }
        });
        Self {
            endpoint,
            requests,
            stop,
        }
    }

    fn requests(&self, op: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for FakeKms {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

fn serve(
    conn: TcpStream,
    handler: &(dyn Fn(&str, &Value) -> Reply + Send + Sync),
    requests: &Mutex<Vec<(String, Value)>>,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut target = String::new();
        let mut length = 0usize;
        let mut line = String::new();
        // Request line, then headers.
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "x-amz-target" => {
                        target = value.trim().trim_start_matches("TrentService.").to_owned()
                    }
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        requests
            .lock()
            .unwrap()
            .push((target.clone(), body.clone()));
        match handler(&target, &body) {
            Reply::Stall => {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            Reply::Json(status, value) => {
                let text = value.to_string();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     Content-Length: {}\r\n\r\n",
                    text.len()
                );
                if conn.write_all(head.as_bytes()).is_err()
                    || conn.write_all(text.as_bytes()).is_err()
                {
                    return;
                }
            }
        }
    }
}

fn kms_error(code: &str, message: &str) -> Reply {
    Reply::Json(400, json!({"__type": code, "message": message}))
}

const FAKE_A: &str = "arn:aws:kms:us-east-1:111122223333:key/aaaaaaaa-1111-2222-3333-444444444444";
const FAKE_B: &str = "arn:aws:kms:us-east-1:111122223333:key/bbbbbbbb-1111-2222-3333-444444444444";

fn fake_edk(arn: &str) -> EncryptedDataKey {
    EncryptedDataKey {
        provider_id: "aws-kms".into(),
        provider_info: arn.as_bytes().to_vec(),
        ciphertext: vec![1, 2, 3, 4],
    }
}

fn decryption_materials(context: EncryptionContext) -> DecryptionMaterials {
    DecryptionMaterials::new(
        envcrypt::crypto::default_provider(),
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        context,
    )
}

fn encryption_materials(context: EncryptionContext) -> EncryptionMaterials {
    EncryptionMaterials::new(
        envcrypt::crypto::default_provider(),
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        context,
    )
}

fn fake_client(fake: &FakeKms) -> KmsClient {
    KmsClient::from_sdk_client(aws_sdk_kms::Client::from_conf(sdk_config(
        &fake.endpoint,
        None,
    )))
}

#[test]
fn requests_carry_key_context_length_and_grant_tokens() {
    let fake = FakeKms::start(|op, _| match op {
        "GenerateDataKey" => Reply::Json(
            200,
            json!({"KeyId": FAKE_A, "Plaintext": B64.encode([9u8; 32]), "CiphertextBlob": B64.encode(b"blob-a")}),
        ),
        "Encrypt" => Reply::Json(
            200,
            json!({"KeyId": FAKE_B, "CiphertextBlob": B64.encode(b"blob-b")}),
        ),
        "Decrypt" => Reply::Json(
            200,
            json!({"KeyId": FAKE_B, "Plaintext": B64.encode([9u8; 32])}),
        ),
        _ => kms_error("UnknownOperationException", op),
    });
    let keyring = AwsKmsKeyring::new(fake_client(&fake), FAKE_A)
        .unwrap()
        .with_additional_keys([FAKE_B])
        .unwrap()
        .with_grant_tokens(["grant-1", "grant-2"]);
    let context = EncryptionContext::from_pairs([("k", "v"), ("ü", "∑")]);
    let done =
        envcrypt::block_on(keyring.on_encrypt(encryption_materials(context.clone()))).unwrap();
    let gdk = fake.requests("GenerateDataKey");
    assert_eq!(gdk.len(), 1);
    assert_eq!(gdk[0]["KeyId"], FAKE_A);
    assert_eq!(gdk[0]["NumberOfBytes"], 32);
    assert_eq!(gdk[0]["EncryptionContext"], json!({"k": "v", "ü": "∑"}));
    assert_eq!(gdk[0]["GrantTokens"], json!(["grant-1", "grant-2"]));
    let enc = fake.requests("Encrypt");
    assert_eq!(enc.len(), 1);
    assert_eq!(enc[0]["KeyId"], FAKE_B);
    assert_eq!(enc[0]["Plaintext"], B64.encode([9u8; 32]));
    assert_eq!(enc[0]["EncryptionContext"], json!({"k": "v", "ü": "∑"}));
    let infos: Vec<_> = done
        .encrypted_data_keys
        .iter()
        .map(|e| {
            (
                e.provider_id.as_str(),
                e.provider_info.clone(),
                e.ciphertext.clone(),
            )
        })
        .collect();
    assert_eq!(
        infos,
        [
            ("aws-kms", FAKE_A.as_bytes().to_vec(), b"blob-a".to_vec()),
            ("aws-kms", FAKE_B.as_bytes().to_vec(), b"blob-b".to_vec()),
        ]
    );
    // Decrypt: only the EDK of B... A comes first and is tried first.
    let edks = [fake_edk(FAKE_B)];
    let m = envcrypt::block_on(keyring.on_decrypt(decryption_materials(context), &edks)).unwrap();
    assert_eq!(m.data_key.unwrap().expose_secret(), [9u8; 32]);
    let dec = fake.requests("Decrypt");
    assert_eq!(dec.len(), 1);
    assert_eq!(dec[0]["KeyId"], FAKE_B);
    assert_eq!(dec[0]["CiphertextBlob"], B64.encode([1u8, 2, 3, 4]));
    assert_eq!(dec[0]["GrantTokens"], json!(["grant-1", "grant-2"]));
    // An empty context is left out of the request.
    let _ = envcrypt::block_on(
        keyring.on_decrypt(decryption_materials(EncryptionContext::new()), &edks),
    );
    assert!(fake.requests("Decrypt")[1]
        .get("EncryptionContext")
        .is_none());
}

#[test]
fn response_key_id_is_checked() {
    // Decrypt answers as if another key had decrypted; GenerateDataKey names no key ARN.
    let fake = FakeKms::start(|op, body| match op {
        "Decrypt" if body["KeyId"] == FAKE_A => Reply::Json(
            200,
            json!({"KeyId": FAKE_B, "Plaintext": B64.encode([1u8; 32])}),
        ),
        "Decrypt" => Reply::Json(
            200,
            json!({"KeyId": FAKE_B, "Plaintext": B64.encode([1u8; 16])}),
        ),
        "GenerateDataKey" => Reply::Json(
            200,
            json!({"KeyId": "alias/not-a-key-arn", "Plaintext": B64.encode([1u8; 32]), "CiphertextBlob": "AAAA"}),
        ),
        _ => kms_error("UnknownOperationException", op),
    });
    let kms = fake_client(&fake);
    let strict = AwsKmsKeyring::new(kms.clone(), FAKE_A).unwrap();
    let e = envcrypt::block_on(strict.on_decrypt(
        decryption_materials(EncryptionContext::new()),
        &[fake_edk(FAKE_A)],
    ))
    .unwrap_err();
    assert!(
        matches!(&e, KeyringError::InvalidKey(m) if m.contains(FAKE_B) && m.contains("not the requested")),
        "{e:?}"
    );
    // Discovery checks it too.
    let discovery = AwsKmsDiscoveryKeyring::new(kms.clone());
    let e = envcrypt::block_on(discovery.on_decrypt(
        decryption_materials(EncryptionContext::new()),
        &[fake_edk(FAKE_A)],
    ))
    .unwrap_err();
    assert!(
        matches!(&e, KeyringError::InvalidKey(m) if m.contains(FAKE_B)),
        "{e:?}"
    );
    // A data key of the wrong length is refused.
    let strict_b = AwsKmsKeyring::new(kms.clone(), FAKE_B).unwrap();
    let e = envcrypt::block_on(strict_b.on_decrypt(
        decryption_materials(EncryptionContext::new()),
        &[fake_edk(FAKE_B)],
    ))
    .unwrap_err();
    assert!(
        matches!(&e, KeyringError::InvalidKey(m) if m.contains("16 bytes")),
        "{e:?}"
    );
    // The generator's answer must name a key ARN.
    let e = envcrypt::block_on(strict.on_encrypt(encryption_materials(EncryptionContext::new())))
        .unwrap_err();
    assert!(
        matches!(&e, KeyringError::InvalidKey(m) if m.contains("not a key ARN")),
        "{e:?}"
    );
}

#[test]
fn kms_errors_are_typed() {
    let fake = FakeKms::start(|op, body| {
        let key = body["KeyId"].as_str().unwrap_or("");
        let which = key.rsplit('/').next().unwrap_or("");
        match (op, which) {
            (_, "disabled") => kms_error("DisabledException", "arn is disabled."),
            (_, "pending") => kms_error("KMSInvalidStateException", "pending deletion"),
            (_, "denied") => kms_error("AccessDeniedException", "not authorized"),
            (_, "badgrant") => kms_error("InvalidGrantTokenException", "bad grant"),
            (_, "missing") => kms_error("NotFoundException", "no such key"),
            (_, "cipher") => kms_error("InvalidCiphertextException", ""),
            (_, "incorrect") => kms_error("IncorrectKeyException", "other key"),
            (_, "throttled") => kms_error("ThrottlingException", "slow down"),
            (_, "internal") => Reply::Json(500, json!({"__type": "KMSInternalException"})),
            (_, "teapot") => Reply::Json(503, json!({"__type": "Whatever"})),
            _ => kms_error("UnknownOperationException", op),
        }
    });
    let kms = fake_client(&fake);
    let arn = |w: &str| format!("arn:aws:kms:us-east-1:111122223333:key/{w}");
    type Check = fn(&KeyringError) -> bool;
    let cases: [(&str, Check); 10] = [
        (
            "disabled",
            |e| matches!(e, KeyringError::AccessDenied(m) if m.contains("is disabled")),
        ),
        (
            "pending",
            |e| matches!(e, KeyringError::AccessDenied(m) if m.contains("not in a usable state")),
        ),
        (
            "denied",
            |e| matches!(e, KeyringError::AccessDenied(m) if m.contains("not authorized")),
        ),
        ("badgrant", |e| matches!(e, KeyringError::AccessDenied(_))),
        (
            "missing",
            |e| matches!(e, KeyringError::InvalidKey(m) if m.contains("not found")),
        ),
        ("cipher", |e| matches!(e, KeyringError::UnwrapFailed { .. })),
        ("incorrect", |e| {
            matches!(e, KeyringError::UnwrapFailed { .. })
        }),
        ("throttled", |e| matches!(e, KeyringError::Unavailable(_))),
        ("internal", |e| matches!(e, KeyringError::Unavailable(_))),
        ("teapot", |e| matches!(e, KeyringError::Unavailable(_))),
    ];
    for (which, check) in cases {
        let keyring = AwsKmsKeyring::new(kms.clone(), arn(which)).unwrap();
        let e = envcrypt::block_on(keyring.on_decrypt(
            decryption_materials(EncryptionContext::new()),
            &[fake_edk(&arn(which))],
        ))
        .unwrap_err();
        assert!(check(&e), "Decrypt {which}: {e:?}");
        assert!(e.to_string().contains(which), "{which}: {e}");
        if which != "cipher" && which != "incorrect" {
            let e = envcrypt::block_on(
                keyring.on_encrypt(encryption_materials(EncryptionContext::new())),
            )
            .unwrap_err();
            assert!(check(&e), "GenerateDataKey {which}: {e:?}");
        }
    }
    // Several EDKs: the data error wins over an outage of another key; all unreachable
    // reports the outage.
    let keyring = AwsKmsKeyring::new(kms.clone(), arn("throttled"))
        .unwrap()
        .with_additional_keys([arn("cipher")])
        .unwrap();
    let e = envcrypt::block_on(keyring.on_decrypt(
        decryption_materials(EncryptionContext::new()),
        &[
            fake_edk(&arn("denied")),
            fake_edk(&arn("cipher")),
            fake_edk(&arn("throttled")),
        ],
    ))
    .unwrap_err();
    assert!(matches!(e, KeyringError::UnwrapFailed { .. }), "{e:?}");
}

#[test]
fn stalled_server_times_out() {
    let fake = FakeKms::start(|_, _| Reply::Stall);
    let kms = fake_client(&fake);
    let keyring = AwsKmsKeyring::new(kms, FAKE_A).unwrap();
    let t = Instant::now();
    let e = envcrypt::block_on(keyring.on_encrypt(encryption_materials(EncryptionContext::new())))
        .unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, KeyringError::Unavailable(_)), "{e:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    eprintln!(
        "stalled server: Unavailable after {:.2} s ({} tries): {e}",
        took.as_secs_f64(),
        fake.requests("GenerateDataKey").len()
    );
}

// ---------------------------------------------------------------------------------------------
// Interoperability with the Python ESDK's KMS keyrings, both ways, on the same moto server

/// Runs the peer on `cases`; returns the results by id.
fn run_peer(moto: &Moto, cases: Vec<Value>) -> BTreeMap<String, Value> {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    let results = dir.path().join("results.json");
    std::fs::write(
        &job,
        json!({"endpoint": moto.endpoint, "region": REGION, "cases": cases}).to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/esdk_kms_peer.py");
    let out = std::process::Command::new(python::python(Esdk::V4))
        .arg(&script)
        .arg(&job)
        .arg(&results)
        .output()
        .expect("run the Python peer");
    assert!(
        out.status.success(),
        "esdk_kms_peer.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn context_json(c: &EncryptionContext) -> Value {
    Value::Object(c.iter().map(|(k, v)| (k.to_owned(), json!(v))).collect())
}

#[test]
fn interop_with_python_esdk_kms_keyrings() {
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (a, a_id) = admin.create_key();
    let (b, _) = admin.create_key();
    admin.create_alias("alias/envcrypt-interop", &a_id);
    let (kms, calls) = kms(&moto.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let strict = |k: &str| json!({"type": "strict", "key": k});
    let discovery = json!({"type": "discovery", "partition": "aws", "accounts": [ACCOUNT]});
    let t = Instant::now();

    // Rust encrypts; Python decrypts with its strict keyring (each key) and discovery.
    let mut cases = Vec::new();
    let mut expected = BTreeMap::new();
    for suite in SUITES {
        let client = client_with(
            AwsKmsKeyring::new(kms.clone(), &a)
                .unwrap()
                .with_additional_keys([b.as_str()])
                .unwrap(),
            suite,
        );
        for (ci, context) in contexts().iter().enumerate() {
            for len in [0usize, 1, 9000] {
                let id = format!("rs-{:04x}-c{ci}-{len}", suite.id());
                let data = payload(len);
                std::fs::write(path(&id), client.encrypt(&data, context).unwrap()).unwrap();
                for (name, keyring) in [
                    ("a", strict(&a)),
                    ("b", strict(&b)),
                    ("d", discovery.clone()),
                ] {
                    cases.push(json!({"id": format!("{id}-{name}"), "op": "decrypt",
                        "keyring": keyring, "input": path(&id), "output": path(&format!("{id}-{name}.out"))}));
                    expected.insert(
                        format!("{id}-{name}"),
                        (data.clone(), context.clone(), suite),
                    );
                }
            }
        }
    }
    // Negative: a key that wrapped nothing, and a discovery filter of another account.
    let (c, _) = admin.create_key();
    cases.push(
        json!({"id": "rs-wrong-key", "op": "decrypt", "keyring": strict(&c),
        "input": path("rs-0478-c1-9000"), "output": path("wrong.out")}),
    );
    cases.push(json!({"id": "rs-wrong-account", "op": "decrypt",
        "keyring": {"type": "discovery", "partition": "aws", "accounts": ["111122223333"]},
        "input": path("rs-0478-c1-9000"), "output": path("wrong2.out")}));

    // Python encrypts (strict keyring, key ARN or alias); Rust decrypts below.
    for suite in ["0478", "0578"] {
        for (ci, context) in contexts().iter().enumerate() {
            for len in [0usize, 1, 9000] {
                let id = format!("py-{suite}-c{ci}-{len}");
                std::fs::write(path(&format!("{id}.in")), payload(len)).unwrap();
                cases.push(json!({"id": id, "op": "encrypt", "keyring": strict(&a),
                    "input": path(&format!("{id}.in")), "output": path(&id), "suite": suite,
                    "frame_length": 4096, "context": context_json(context)}));
            }
        }
        cases.push(json!({"id": format!("py-{suite}-alias"), "op": "encrypt",
            "keyring": strict("alias/envcrypt-interop"), "input": path("py-0478-c1-9000.in"),
            "output": path(&format!("py-{suite}-alias")), "suite": suite, "frame_length": 4096,
            "context": {"via": "alias"}}));
    }
    let results = run_peer(&moto, cases);

    for (id, (data, context, suite)) in &expected {
        let r = &results[id];
        assert_eq!(r["ok"], true, "{id}: {r}");
        assert_eq!(r["suite"], format!("{:04x}", suite.id()), "{id}");
        for (k, v) in context.iter() {
            assert_eq!(r["context"][k], v, "{id}");
        }
        assert_eq!(
            &std::fs::read(path(&format!("{id}.out"))).unwrap(),
            data,
            "{id}"
        );
    }
    for id in ["rs-wrong-key", "rs-wrong-account"] {
        assert_eq!(
            results[id]["ok"], false,
            "{id} must fail in Python: {}",
            results[id]
        );
    }

    // Rust decrypts what Python wrote: strict (key ARN), discovery with the filter.
    let strict_a = Client::new(AwsKmsKeyring::new(kms.clone(), &a).unwrap());
    let disc = Client::new(
        AwsKmsDiscoveryKeyring::new(kms.clone())
            .with_filter(DiscoveryFilter::new("aws", [ACCOUNT])),
    );
    let mut python_messages = 0;
    for (id, r) in results.iter().filter(|(id, _)| id.starts_with("py-")) {
        assert_eq!(r["ok"], true, "{id}: {r}");
        let message = std::fs::read(path(id)).unwrap();
        assert_eq!(
            kms_edks(&message),
            std::slice::from_ref(&a),
            "{id}: Python's EDK names the key ARN"
        );
        let input = if id.ends_with("-alias") {
            path("py-0478-c1-9000.in")
        } else {
            path(&format!("{id}.in"))
        };
        let data = std::fs::read(input).unwrap();
        for client in [&strict_a, &disc] {
            let out = client
                .decrypt(&message, &DecryptOptions::default())
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(out.plaintext, data, "{id}");
            assert_eq!(format!("{:04x}", out.header.suite.id()), r["suite"], "{id}");
            let ours: BTreeMap<_, _> = out.header.encryption_context.iter().collect();
            let theirs: BTreeMap<&str, &str> = r["context"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect();
            assert_eq!(ours, theirs, "{id}");
            assert_eq!(
                out.header.encryption_context.contains_key(PUBLIC_KEY),
                id.starts_with("py-0578"),
                "{id}"
            );
        }
        python_messages += 1;
    }
    assert_eq!(python_messages, 2 * 3 * 3 + 2);
    // A Python message under key A is not for a keyring of key B.
    let e = keyring_error(
        Client::new(AwsKmsKeyring::new(kms.clone(), &b).unwrap()).decrypt(
            &std::fs::read(path("py-0578-c2-9000")).unwrap(),
            &DecryptOptions::default(),
        ),
    );
    assert_eq!(e, KeyringError::NoMatchingKey);
    eprintln!(
        "interop: {} Rust->Python decryptions, {python_messages} Python messages read here, \
         in {:.2} s; our KMS {}",
        expected.len(),
        t.elapsed().as_secs_f64(),
        calls.latency_summary()
    );
}

// ---------------------------------------------------------------------------------------------
// The data-key cache in front of KMS: calls counted at the wire (SDK interceptor).

#[test]
fn cached_kms_keyring_cuts_generate_data_key_calls() {
    use envcrypt::materials::{CacheLimits, CachingMaterialsManager, DefaultMaterialsManager};
    let moto = Moto::start();
    let admin = Admin::new(&moto);
    let (arn, _) = admin.create_key();
    let (kms, calls) = kms(&moto.endpoint);
    let context = EncryptionContext::from_pairs([("dept", "radiology")]);
    for (limits, expected) in [
        (CacheLimits::default(), 1),
        (CacheLimits::default().with_max_messages(100), 10),
    ] {
        let keyring = AwsKmsKeyring::new(kms.clone(), &arn).unwrap();
        let cache = CachingMaterialsManager::new(DefaultMaterialsManager::new(keyring), 8, limits);
        let client = Client::builder()
            .materials_manager(cache)
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
            .build()
            .unwrap();
        calls.reset();
        let mut last = Vec::new();
        for i in 0..1000u32 {
            last = client.encrypt(&i.to_be_bytes(), &context).unwrap();
        }
        assert_eq!(calls.count("GenerateDataKey"), expected, "{limits:?}");
        assert_eq!(calls.total(), expected);
        // And the messages still decrypt (one Decrypt call, then the cache).
        calls.reset();
        for _ in 0..10 {
            let out = client.decrypt(&last, &DecryptOptions::default()).unwrap();
            assert_eq!(out.plaintext, 999u32.to_be_bytes());
        }
        assert_eq!(calls.count("Decrypt"), 1);
    }
}
