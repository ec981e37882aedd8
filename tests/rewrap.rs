//! Rewrap: a fresh data key and message id, the same plaintext, and nothing laundered.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use envcrypt::file::FileOptions;
use envcrypt::format::EncryptedDataKey;
use envcrypt::keyring::{Keyring, KeyringError, RawAesKeyring};
use envcrypt::materials::{DecryptionMaterials, EncryptionMaterials};
use envcrypt::pipeline::PipelineOptions;
use envcrypt::rewrap::{Rewrap, RewrapOptions};
use envcrypt::{
    AlgorithmSuite, AuthenticationError, Client, ConfigError, DecryptOptions, EncryptionContext,
    Error, ErrorKind, FormatError,
};

const FL: usize = 4096;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384;
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;

/// A raw AES keyring that remembers every data key it generated or unwrapped.
struct Recording {
    inner: RawAesKeyring,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[async_trait]
impl Keyring for Recording {
    async fn on_encrypt(
        &self,
        m: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let m = self.inner.on_encrypt(m).await?;
        let key = m.data_key.as_ref().map(|k| k.expose_secret().to_vec());
        self.seen.lock().unwrap().extend(key);
        Ok(m)
    }

    async fn on_decrypt(
        &self,
        m: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        let m = self.inner.on_decrypt(m, edks).await?;
        let key = m.data_key.as_ref().map(|k| k.expose_secret().to_vec());
        self.seen.lock().unwrap().extend(key);
        Ok(m)
    }
}

fn client(name: &str, key: u8, suite: AlgorithmSuite) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("site", name, &[key; 32]).unwrap())
        .suite(suite)
        .frame_length(FL as u32)
        .build()
        .unwrap()
}

fn recording(name: &str, key: u8) -> (Client, Arc<Mutex<Vec<Vec<u8>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keyring = Recording {
        inner: RawAesKeyring::new("site", name, &[key; 32]).unwrap(),
        seen: Arc::clone(&seen),
    };
    // The new client's own frame length (1 MiB) must not win over the source's.
    let client = Client::builder()
        .keyring(keyring)
        .frame_length(1 << 20)
        .build()
        .unwrap();
    (client, seen)
}

fn pipelines() -> [PipelineOptions; 2] {
    [
        PipelineOptions::single_threaded(),
        PipelineOptions::default()
            .with_threads(2)
            .with_parallel_min_frame(1),
    ]
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("study", "ct-42"), ("site", "north")])
}

#[test]
fn a_rewrap_has_a_fresh_data_key_and_message_id_and_the_same_plaintext() {
    for suite in [SIGNED, UNSIGNED] {
        for len in [0, 1, 2 * FL, 37 * FL + 123] {
            for pipeline in pipelines() {
                let old = client("key-2025", 1, suite);
                let (new, seen) = recording("key-2026", 2);
                let pt = bytes(len);
                let message = old.encrypt(&pt, &context()).unwrap();
                let mut out = Vec::new();
                let done = Rewrap::new(&old, &new)
                    .stream(&message[..], &mut out, &pipeline)
                    .unwrap();
                assert_eq!(done.stats.bytes_in, message.len() as u64);
                assert_eq!(done.stats.bytes_out, out.len() as u64);
                let back = new.decrypt(&out, &DecryptOptions::default()).unwrap();
                assert_eq!(back.plaintext, pt, "suite {suite:?}, {len} bytes");
                assert_eq!(back.header, done.header);
                assert_ne!(done.header.message_id, done.source.message_id);
                assert_eq!(done.header.suite, suite);
                assert_eq!(done.header.frame_length, FL as u32);
                assert_eq!(done.header.encryption_context.get("study"), Some("ct-42"));
                assert_eq!(done.header.encrypted_data_keys.len(), 1);
                assert_eq!(done.header.encrypted_data_keys[0].provider_id, "site");
                // One data key generated for the new message, the one that opens it.
                let seen = seen.lock().unwrap();
                assert_eq!(seen.len(), 2, "generated, then unwrapped by decrypt");
                assert_eq!(seen[0], seen[1]);
                let e = old.decrypt(&out, &DecryptOptions::default()).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Authentication, "{e}");
                if suite == SIGNED {
                    assert_ne!(
                        done.header.encryption_context.get("aws-crypto-public-key"),
                        done.source.encryption_context.get("aws-crypto-public-key"),
                        "a fresh signing key"
                    );
                }
            }
        }
    }
}

#[test]
fn a_rewrap_to_the_same_key_still_changes_the_data_key() {
    let (c, seen) = recording("key", 3);
    let message = c.encrypt(&bytes(3 * FL), &context()).unwrap();
    seen.lock().unwrap().clear();
    let mut out = Vec::new();
    Rewrap::new(&c, &c)
        .stream(&message[..], &mut out, &PipelineOptions::default())
        .unwrap();
    let seen = seen.lock().unwrap();
    // Unwrapped from the source, then generated for the new message.
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], seen[1], "the old data key was reused");
    assert_ne!(out[..100], message[..100]);
}

/// A message whose every frame verifies but whose signature does not: what a holder of
/// the data key who re-sealed a frame produces.
fn bad_signature(c: &Client) -> Vec<u8> {
    let mut m = c.encrypt(&bytes(20 * FL + 5), &context()).unwrap();
    let last = m.len() - 1;
    m[last] ^= 1;
    m
}

fn rewrap_error(
    old: &Client,
    new: &Client,
    message: &[u8],
    pipeline: &PipelineOptions,
) -> (Error, Vec<u8>) {
    let mut out = Vec::new();
    let e = Rewrap::new(old, new)
        .stream(message, &mut out, pipeline)
        .unwrap_err();
    (e, out)
}

/// Whether an error is the one expected.
type ErrorCheck = fn(&Error) -> bool;

#[test]
fn nothing_is_laundered_through_a_rewrap() {
    let old = client("key-2025", 1, SIGNED);
    let new = client("key-2026", 2, SIGNED);
    let good = old.encrypt(&bytes(20 * FL + 5), &context()).unwrap();
    let mut tampered = good.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    let truncated = good[..good.len() - 200].to_vec();
    let mut appended = good.clone();
    appended.push(0);
    let cases: [(&str, Vec<u8>, ErrorCheck); 4] = [
        ("tampered", tampered, |e| {
            matches!(
                e,
                Error::Authentication(AuthenticationError::FrameTag { .. })
            )
        }),
        ("truncated", truncated, |e| {
            matches!(e, Error::Format(FormatError::Truncated))
        }),
        ("appended", appended, |e| {
            matches!(e, Error::Format(FormatError::TrailingBytes))
        }),
        ("bad signature", bad_signature(&old), |e| {
            matches!(e, Error::Authentication(AuthenticationError::Signature))
        }),
    ];
    for (what, message, expected) in cases {
        for pipeline in pipelines() {
            let (e, out) = rewrap_error(&old, &new, &message, &pipeline);
            assert!(expected(&e), "{what}: {e:?}");
            // Whatever reached the output is not a message that opens.
            assert!(
                new.decrypt(&out, &DecryptOptions::default()).is_err(),
                "{what}: a complete new message was written"
            );
        }
    }
}

#[test]
fn a_failed_file_rewrap_creates_nothing_and_an_in_place_one_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = client("key-2025", 1, SIGNED);
    let new = client("key-2026", 2, UNSIGNED);
    let bad = dir.path().join("bad.enc");
    let forged = bad_signature(&old);
    std::fs::write(&bad, &forged).unwrap();
    let out = dir.path().join("out.enc");
    let rewrap = Rewrap::new(&old, &new);
    let e = rewrap
        .file(&bad, &out, &FileOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, Error::Authentication(AuthenticationError::Signature)),
        "{e:?}"
    );
    let e = rewrap
        .file_in_place(&bad, &FileOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, Error::Authentication(AuthenticationError::Signature)),
        "{e:?}"
    );
    assert_eq!(
        std::fs::read(&bad).unwrap(),
        forged,
        "the input was changed"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["bad.enc"], "something was left behind");

    // In place, a good one: the new message replaces the old.
    let good = dir.path().join("good.enc");
    let pt = bytes(9 * FL);
    std::fs::write(&good, old.encrypt(&pt, &context()).unwrap()).unwrap();
    let done = rewrap
        .file_in_place(&good, &FileOptions::default())
        .unwrap();
    let message = std::fs::read(&good).unwrap();
    assert_eq!(done.stats.bytes_out, message.len() as u64);
    assert_eq!(
        new.decrypt(&message, &DecryptOptions::default())
            .unwrap()
            .plaintext,
        pt
    );
    // The source's suite is kept (not the new client's 0x0478); an explicit one wins.
    assert_eq!((done.source.suite, done.header.suite), (SIGNED, SIGNED));
    let moved = RewrapOptions::default().with_suite(UNSIGNED);
    let back = Rewrap::new(&new, &old).with_options(moved);
    let done = back.file(&good, &out, &FileOptions::default()).unwrap();
    assert_eq!((done.source.suite, done.header.suite), (SIGNED, UNSIGNED));
    // A new file is refused over an existing one.
    let e = back.file(&good, &out, &FileOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
}

#[test]
fn context_pairs_are_kept_added_and_removed_on_request() {
    let old = client("key-2025", 1, UNSIGNED);
    let new = client("key-2026", 2, UNSIGNED);
    let message = old.encrypt(b"x", &context()).unwrap();
    let options = RewrapOptions::default()
        .with_added_context(EncryptionContext::from_pairs([("rotated", "2026")]))
        .with_removed_context(["site"]);
    let mut out = Vec::new();
    let done = Rewrap::new(&old, &new)
        .with_options(options)
        .stream(&message[..], &mut out, &PipelineOptions::default())
        .unwrap();
    let stored: Vec<_> = done.header.encryption_context.iter().collect();
    assert_eq!(stored, [("rotated", "2026"), ("study", "ct-42")]);

    let run = |options: RewrapOptions| {
        Rewrap::new(&old, &new)
            .with_options(options)
            .stream(&message[..], io::sink(), &PipelineOptions::default())
            .unwrap_err()
    };
    let e = run(RewrapOptions::default().with_removed_context(["nope"]));
    assert!(
        matches!(e, Error::Config(ConfigError::ContextKeyAbsent(ref k)) if k == "nope"),
        "{e:?}"
    );
    let e = run(RewrapOptions::default()
        .with_added_context(EncryptionContext::from_pairs([("study", "other")])));
    assert!(
        matches!(e, Error::Config(ConfigError::ContextKeyPresent(ref k)) if k == "study"),
        "{e:?}"
    );
    // Changing a value: remove and add in one rewrap.
    let e = Rewrap::new(&old, &new)
        .with_options(
            RewrapOptions::default()
                .with_removed_context(["study"])
                .with_added_context(EncryptionContext::from_pairs([("study", "ct-43")])),
        )
        .stream(&message[..], io::sink(), &PipelineOptions::default());
    assert_eq!(
        e.unwrap().header.encryption_context.get("study"),
        Some("ct-43")
    );
    // The source must carry what the caller expects.
    let expect = DecryptOptions::default()
        .with_expected_context(EncryptionContext::from_pairs([("study", "ct-99")]));
    let e = run(RewrapOptions::default().with_decrypt(expect));
    assert_eq!(e.kind(), ErrorKind::Policy, "{e:?}");
}

#[test]
fn pairs_kept_out_of_the_source_header_stay_out_of_the_new_one() {
    let old = Client::builder()
        .keyring(RawAesKeyring::new("site", "key-2025", &[1; 32]).unwrap())
        .required_context_keys(["patient-class"])
        .build()
        .unwrap();
    let new = client("key-2026", 2, SIGNED);
    let mut full = context();
    full.insert("patient-class", "inpatient");
    let message = old.encrypt(b"report", &full).unwrap();
    let required = EncryptionContext::from_pairs([("patient-class", "inpatient")]);
    let decrypt = DecryptOptions::default().with_required_context(required.clone());
    let mut out = Vec::new();
    let done = Rewrap::new(&old, &new)
        .with_options(RewrapOptions::default().with_decrypt(decrypt.clone()))
        .stream(&message[..], &mut out, &PipelineOptions::default())
        .unwrap();
    assert_eq!(done.header.encryption_context.get("patient-class"), None);
    assert!(new.decrypt(&out, &DecryptOptions::default()).is_err());
    assert_eq!(new.decrypt(&out, &decrypt).unwrap().plaintext, b"report");
}

/// Fails every write after `budget` bytes.
struct FailingWriter {
    budget: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget < buf.len() {
            return Err(io::Error::other("disk full (test)"));
        }
        self.budget -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_output_failure_is_reported_as_itself_not_as_a_broken_link() {
    let old = client("key-2025", 1, SIGNED);
    let new = client("key-2026", 2, SIGNED);
    let message = old.encrypt(&bytes(200 * FL), &context()).unwrap();
    for pipeline in pipelines() {
        let e = Rewrap::new(&old, &new)
            .stream(&message[..], FailingWriter { budget: 50 * FL }, &pipeline)
            .unwrap_err();
        match e {
            Error::Io(e) => assert_eq!(e.to_string(), "disk full (test)"),
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_file_forms_rewrap_on_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let old = client("key-2025", 1, SIGNED);
    let new = client("key-2026", 2, SIGNED);
    let (a, b) = (dir.path().join("a.enc"), dir.path().join("b.enc"));
    let pt = bytes(30 * FL);
    std::fs::write(&a, old.encrypt(&pt, &context()).unwrap()).unwrap();
    let rewrap = Rewrap::new(&old, &new);
    rewrap
        .file_async(&a, &b, &PipelineOptions::default())
        .await
        .unwrap();
    let message = std::fs::read(&b).unwrap();
    assert_eq!(
        new.decrypt(&message, &DecryptOptions::default())
            .unwrap()
            .plaintext,
        pt
    );
    let e = rewrap
        .file_in_place_async(&b, &PipelineOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication, "{e:?}");
    Rewrap::new(&new, &old)
        .file_in_place_async(&b, &PipelineOptions::default())
        .await
        .unwrap();
    let message = std::fs::read(&b).unwrap();
    assert_eq!(
        old.decrypt(&message, &DecryptOptions::default())
            .unwrap()
            .plaintext,
        pt
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_stream_form_rewraps_and_refuses_a_forged_source() {
    for suite in [SIGNED, UNSIGNED] {
        let old = client("key-2025", 1, suite);
        let new = client("key-2026", 2, UNSIGNED);
        let pt = bytes(300 * FL + 11);
        let message = old.encrypt(&pt, &context()).unwrap();
        for pipeline in pipelines() {
            let mut out = Vec::new();
            let done = Rewrap::new(&old, &new)
                .stream_async(&message[..], &mut out, &pipeline)
                .await
                .unwrap();
            assert_eq!(done.header.suite, suite, "the source's suite is kept");
            assert_eq!(done.stats.bytes_out, out.len() as u64);
            let back = new.decrypt(&out, &DecryptOptions::default()).unwrap();
            assert_eq!(back.plaintext, pt);
        }
    }
    let old = client("key-2025", 1, SIGNED);
    let new = client("key-2026", 2, SIGNED);
    let forged = bad_signature(&old);
    let mut out = Vec::new();
    let e = Rewrap::new(&old, &new)
        .stream_async(&forged[..], &mut out, &PipelineOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Authentication(AuthenticationError::Signature)),
        "{e:?}"
    );
    assert!(new.decrypt(&out, &DecryptOptions::default()).is_err());
}
