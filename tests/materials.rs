//! The data-key cache and the required-encryption-context manager.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use envcrypt::format::{parse_header, EncryptedDataKey, HeaderLimits};
use envcrypt::keyring::{Keyring, KeyringError, RawAesKeyring};
use envcrypt::materials::{
    CacheLimits, CachingMaterialsManager, DecryptionMaterials, DefaultMaterialsManager,
    EncryptionMaterials, RequiredContextManager,
};
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext, Error, PolicyError};

/// A raw AES keyring that counts how often it is asked (standing in for a KMS call).
struct Counting {
    inner: RawAesKeyring,
    encrypts: Arc<AtomicUsize>,
    decrypts: Arc<AtomicUsize>,
}

#[async_trait]
impl Keyring for Counting {
    async fn on_encrypt(
        &self,
        m: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        self.encrypts.fetch_add(1, Ordering::SeqCst);
        self.inner.on_encrypt(m).await
    }
    async fn on_decrypt(
        &self,
        m: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        self.inner.on_decrypt(m, edks).await
    }
}

fn counting() -> (Counting, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (e, d) = (Arc::default(), Arc::default());
    let k = Counting {
        inner: RawAesKeyring::new("cache", "key", &[0x44; 32]).unwrap(),
        encrypts: Arc::clone(&e),
        decrypts: Arc::clone(&d),
    };
    (k, e, d)
}

fn cached(
    limits: CacheLimits,
    capacity: usize,
    suite: AlgorithmSuite,
) -> (
    Client,
    CachingMaterialsManager,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
) {
    let (k, e, d) = counting();
    let cache = CachingMaterialsManager::new(DefaultMaterialsManager::new(k), capacity, limits);
    let client = Client::builder()
        .materials_manager(cache.clone())
        .suite(suite)
        .build()
        .unwrap();
    (client, cache, e, d)
}

fn data_key_id(message: &[u8]) -> Vec<u8> {
    let limits = HeaderLimits::new(4, 1 << 24);
    let h = parse_header(message, &limits).unwrap().unwrap().header;
    h.encrypted_data_keys[0].ciphertext.clone()
}

#[test]
fn one_data_key_serves_many_messages_within_limits() {
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
    ] {
        let ctx = EncryptionContext::from_pairs([("dept", "radiology")]);
        let (client, cache, encrypts, decrypts) = cached(CacheLimits::default(), 8, suite);
        let mut messages = Vec::new();
        for i in 0..1000u32 {
            messages.push(client.encrypt(&i.to_be_bytes(), &ctx).unwrap());
        }
        assert_eq!(encrypts.load(Ordering::SeqCst), 1, "{suite:?}");
        assert_eq!(cache.stats().encrypt_hits, 999);
        for (i, m) in messages.iter().enumerate() {
            let d = client.decrypt(m, &DecryptOptions::default()).unwrap();
            assert_eq!(d.plaintext, (i as u32).to_be_bytes());
        }
        assert_eq!(decrypts.load(Ordering::SeqCst), 1);
        // Messages are still distinct (fresh message ids, so fresh content keys).
        assert_ne!(messages[0], messages[1]);
        assert_eq!(data_key_id(&messages[0]), data_key_id(&messages[999]));
    }
}

#[test]
fn message_byte_and_age_limits_retire_entries() {
    let ctx = EncryptionContext::new();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
    let limits = CacheLimits::default().with_max_messages(100);
    let (client, _, encrypts, _) = cached(limits, 8, suite);
    for _ in 0..1000 {
        client.encrypt(b"x", &ctx).unwrap();
    }
    assert_eq!(encrypts.load(Ordering::SeqCst), 10);

    let limits = CacheLimits::default().with_max_bytes(1000);
    let (client, _, encrypts, _) = cached(limits, 8, suite);
    for _ in 0..10 {
        client.encrypt(&[0; 300], &ctx).unwrap(); // 3 fit in 1000 bytes
    }
    assert_eq!(encrypts.load(Ordering::SeqCst), 4);
    client.encrypt(&[0; 2000], &ctx).unwrap(); // larger than the limit: never cached
    client.encrypt(&[0; 2000], &ctx).unwrap();
    assert_eq!(encrypts.load(Ordering::SeqCst), 6);

    let limits = CacheLimits::default().with_max_age(Duration::from_millis(50));
    let (client, _, encrypts, _) = cached(limits, 8, suite);
    client.encrypt(b"x", &ctx).unwrap();
    client.encrypt(b"x", &ctx).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    client.encrypt(b"x", &ctx).unwrap();
    assert_eq!(encrypts.load(Ordering::SeqCst), 2);
}

#[test]
fn entries_are_kept_apart_and_bounded() {
    let (client, _, encrypts, _) = cached(
        CacheLimits::default(),
        2,
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    );
    let a = EncryptionContext::from_pairs([("study", "a")]);
    let b = EncryptionContext::from_pairs([("study", "b")]);
    let c = EncryptionContext::from_pairs([("study", "c")]);
    let ma = client.encrypt(b"1", &a).unwrap();
    let mb = client.encrypt(b"1", &b).unwrap();
    assert_ne!(data_key_id(&ma), data_key_id(&mb));
    client.encrypt(b"1", &a).unwrap();
    client.encrypt(b"1", &b).unwrap();
    assert_eq!(encrypts.load(Ordering::SeqCst), 2);
    client.encrypt(b"1", &c).unwrap(); // evicts the least recently used (a)
    client.encrypt(b"1", &b).unwrap();
    client.encrypt(b"1", &a).unwrap();
    assert_eq!(encrypts.load(Ordering::SeqCst), 4);
}

#[test]
fn the_cache_is_shared_by_threads() {
    let (client, _, encrypts, _) = cached(
        CacheLimits::default(),
        4,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
    );
    let ctx = EncryptionContext::from_pairs([("k", "v")]);
    client.encrypt(b"warm", &ctx).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (client, ctx) = (&client, &ctx);
            s.spawn(move || {
                for i in 0..50 {
                    let m = client.encrypt(format!("{t}-{i}").as_bytes(), ctx).unwrap();
                    let d = client.decrypt(&m, &DecryptOptions::default()).unwrap();
                    assert_eq!(d.plaintext, format!("{t}-{i}").as_bytes());
                }
            });
        }
    });
    assert_eq!(encrypts.load(Ordering::SeqCst), 1);
}

#[test]
fn required_context_is_demanded_and_kept_out_of_the_header() {
    let inner = DefaultMaterialsManager::new(RawAesKeyring::new("req", "key", &[9; 32]).unwrap());
    let client = Client::builder()
        .materials_manager(RequiredContextManager::new(inner, ["tenant"]))
        .build()
        .unwrap();
    let e = client
        .encrypt(b"x", &EncryptionContext::from_pairs([("other", "1")]))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::MissingRequiredContext(k)) if k == "tenant"),
        "{e:?}"
    );

    let ctx = EncryptionContext::from_pairs([("tenant", "hospital-a"), ("kind", "ct")]);
    let message = client.encrypt(b"pixels", &ctx).unwrap();
    let limits = HeaderLimits::new(1, 1 << 20);
    let stored = parse_header(&message, &limits)
        .unwrap()
        .unwrap()
        .header
        .encryption_context;
    assert!(!stored.contains_key("tenant"));
    assert_eq!(stored.get("kind"), Some("ct"));

    let e = client
        .decrypt(&message, &DecryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Policy(PolicyError::MissingRequiredContext(k)) if k == "tenant"),
        "{e:?}"
    );
    let ok = DecryptOptions::default()
        .with_required_context(EncryptionContext::from_pairs([("tenant", "hospital-a")]));
    assert_eq!(client.decrypt(&message, &ok).unwrap().plaintext, b"pixels");
    let wrong = DecryptOptions::default()
        .with_required_context(EncryptionContext::from_pairs([("tenant", "hospital-b")]));
    let e = client.decrypt(&message, &wrong).unwrap_err();
    assert!(
        matches!(e, Error::Keyring(KeyringError::UnwrapFailed { .. })),
        "{e:?}"
    );
}

#[test]
fn shared_keyring_serves_two_clients() {
    let keyring = Arc::new(RawAesKeyring::new("ns", "shared", &[9; 32]).unwrap());
    let first = Client::new(Arc::clone(&keyring));
    let second = Client::new(Arc::clone(&keyring));
    assert_eq!(Arc::strong_count(&keyring), 3);
    let context = EncryptionContext::from_pairs([("study", "ct")]);
    let message = first
        .encrypt(b"one keyring, two clients", &context)
        .unwrap();
    let out = second
        .decrypt(&message, &DecryptOptions::default())
        .unwrap();
    assert_eq!(out.plaintext, b"one keyring, two clients");
    // Shared as a trait object, and boxed, too.
    let dynamic: Arc<dyn Keyring> = keyring.clone();
    let out = Client::new(Box::new(dynamic) as Box<dyn Keyring>)
        .decrypt(&message, &DecryptOptions::default())
        .unwrap();
    assert_eq!(out.plaintext, b"one keyring, two clients");
    drop((first, second));
    assert_eq!(
        Arc::strong_count(&keyring),
        1,
        "the clients let go of the keyring"
    );
}
