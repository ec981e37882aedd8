//! The audit trail: what a log records, what it never records, and that `verify_log` finds
//! every single-line edit, deletion and swap, a cut, and a log re-chained without the key.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use envcrypt::audit::{
    verify_log, AuditEvent, AuditSigningKey, AuditedKeyring, Auditor, JsonLinesOptions,
    JsonLinesSink, LogSummary, Operation, VerifyError,
};
use envcrypt::crypto::{default_provider, CryptoProvider, HashAlgorithm};
use envcrypt::keyring::{KeyringError, MultiKeyring, RawAesKeyring};
use envcrypt::{Client, DecryptOptions, EncryptionContext, Error, ErrorKind};

fn provider() -> &'static CryptoProvider {
    default_provider()
}

const KEY: [u8; 32] = [0x5a; 32];
const PLAINTEXT: &[u8] = b"PATIENT-NAME^DOE^JANE pixel data";
const SECRET_VALUE: &str = "mrn-000-123-4567";

fn sink(path: &Path, every: u64, key: Option<AuditSigningKey>) -> Auditor {
    let mut options = JsonLinesOptions::default().with_checkpoint_every(every);
    if let Some(key) = key {
        options = options.with_signing_key(key);
    }
    Auditor::new(Arc::new(
        JsonLinesSink::open(path, provider(), options).expect("open the log"),
    ))
}

/// A log of real operations: `rounds` encrypt + decrypt pairs through audited keyrings
/// (two keys per message), operation events from the caller, checkpoints every 4 events.
fn generate_log(path: &Path, rounds: usize) -> AuditSigningKey {
    let key = AuditSigningKey::generate(provider()).unwrap();
    let pem = key.to_pem().unwrap();
    let auditor = sink(
        path,
        4,
        Some(AuditSigningKey::from_pem(&pem, provider()).unwrap()),
    );
    let audited = |name: &str, bytes: &[u8; 32]| {
        Arc::new(AuditedKeyring::new(
            RawAesKeyring::new("hosp", name, bytes).unwrap(),
            auditor.clone(),
        )) as Arc<dyn envcrypt::keyring::Keyring>
    };
    let keyring = MultiKeyring::from_arcs(
        Some(audited("key-a", &KEY)),
        vec![audited("escrow", &[0x11; 32])],
    );
    let client = Client::new(keyring);
    let context = EncryptionContext::from_pairs([("mrn", SECRET_VALUE), ("purpose", "archive")]);
    for i in 0..rounds {
        let message = client.encrypt(PLAINTEXT, &context).unwrap();
        let decrypted = client
            .decrypt(&message, &DecryptOptions::default())
            .unwrap();
        auditor
            .record(
                &AuditEvent::new(Operation::Decrypt)
                    .message(&decrypted.header)
                    .bytes(PLAINTEXT.len() as u64)
                    .path(format!("study/{i}.dcm.enc")),
            )
            .unwrap();
    }
    auditor.finish().unwrap();
    key
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn verify(text: &str, key: Option<&AuditSigningKey>) -> Result<LogSummary, VerifyError> {
    verify_log(text.as_bytes(), key.map(|k| k.verifying_key()), provider())
}

fn broken_at(result: Result<LogSummary, VerifyError>) -> (u64, String) {
    match result {
        Err(VerifyError::Broken { line, reason }) => (line, reason),
        other => panic!("expected a broken log, got {other:?}"),
    }
}

#[test]
fn an_intact_log_verifies_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = generate_log(&log, 5);
    let text = fs::read_to_string(&log).unwrap();
    let summary = verify(&text, Some(&key)).unwrap();
    // Per round: generate + wrap (encrypt), unwrap (decrypt; the escrow keyring is not
    // called once key-a unwrapped), and the caller's decrypt event.
    assert_eq!(summary.events, 5 * 4);
    assert_eq!(summary.operations["generate"], 5);
    assert_eq!(summary.operations["wrap"], 5);
    assert_eq!(summary.operations["unwrap"], 5);
    assert_eq!(summary.operations["decrypt"], 5);
    assert_eq!(summary.checkpoints, 5);
    assert_eq!(summary.lines, 25);
    assert!(summary.key_pinned);
    assert_eq!(
        summary.signed_by.as_deref(),
        Some(key.verifying_key().fingerprint().as_str())
    );
    // Without a pinned key the checkpoints still verify under the key they carry.
    let unpinned = verify(&text, None).unwrap();
    assert!(!unpinned.key_pinned);
    assert_eq!(unpinned.signed_by, summary.signed_by);

    // The fields of CLI.md's "audit" section.
    let first: serde_json::Value = serde_json::from_str(&lines(&log)[0]).unwrap();
    for field in [
        "seq",
        "time",
        "op",
        "outcome",
        "keys",
        "context_keys",
        "user",
        "host",
        "version",
        "prev",
        "hash",
    ] {
        assert!(first.get(field).is_some(), "no {field} in {first}");
    }
    assert_eq!(first["op"], "generate");
    assert_eq!(first["keys"][0]["provider_id"], "hosp");
    assert_eq!(first["keys"][0]["key"], "key-a");
    // The full context's keys, the SDK's own signing-key pair included; never values.
    assert_eq!(
        first["context_keys"],
        serde_json::json!(["aws-crypto-public-key", "mrn", "purpose"])
    );
    let decrypt: serde_json::Value = serde_json::from_str(&lines(&log)[3]).unwrap();
    assert_eq!(decrypt["op"], "decrypt");
    assert_eq!(decrypt["suite"], "0x0578");
    assert_eq!(decrypt["message_id"].as_str().unwrap().len(), 64);
    assert_eq!(decrypt["path"], "study/0.dcm.enc");
}

#[test]
fn every_single_line_edit_is_found_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = generate_log(&log, 4);
    let lines = lines(&log);
    for (i, line) in lines.iter().enumerate() {
        // Edit one character of the time, keep the JSON valid.
        let at = line.find("\"time\":\"").unwrap() + 9;
        let mut edited = lines.clone();
        let mut bytes = line.clone().into_bytes();
        bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
        edited[i] = String::from_utf8(bytes).unwrap();
        let (at_line, reason) = broken_at(verify(&edited.concat(), Some(&key)));
        assert_eq!(at_line, i as u64 + 1, "edit of line {}: {reason}", i + 1);
        assert!(reason.contains("edited"), "{reason}");

        // The same edit with that line's hash recomputed: a checkpoint's own signature
        // breaks; any other line breaks the next one, which no longer follows.
        edited[i] = reseal(&edited[i], None);
        let (at_line, reason) = broken_at(verify(&edited.concat(), Some(&key)));
        if line.contains("\"op\":\"checkpoint\"") {
            assert_eq!(
                at_line,
                i as u64 + 1,
                "resealed checkpoint {}: {reason}",
                i + 1
            );
            assert!(reason.contains("signature"), "{reason}");
        } else {
            assert_eq!(
                at_line,
                i as u64 + 2,
                "resealed edit of line {}: {reason}",
                i + 1
            );
        }
    }
}

#[test]
fn every_deletion_and_swap_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = generate_log(&log, 4);
    let lines = lines(&log);
    let n = lines.len();
    for i in 0..n {
        let mut deleted = lines.clone();
        deleted.remove(i);
        let (at_line, reason) = broken_at(verify(&deleted.concat(), Some(&key)));
        // The line that took its place no longer follows; deleting the closing checkpoint
        // leaves unsigned lines at the end.
        let expected = if i + 1 < n { i + 1 } else { n - 1 };
        assert_eq!(
            at_line,
            expected as u64,
            "deleting line {}: {reason}",
            i + 1
        );
    }
    for i in 0..n - 1 {
        let mut swapped = lines.clone();
        swapped.swap(i, i + 1);
        let (at_line, reason) = broken_at(verify(&swapped.concat(), Some(&key)));
        assert_eq!(
            at_line,
            i as u64 + 1,
            "swapping lines {} and {}: {reason}",
            i + 1,
            i + 2
        );
    }
}

#[test]
fn a_cut_after_a_checkpoint_leaves_unsigned_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = generate_log(&log, 4);
    let lines = lines(&log);
    let checkpoints: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("\"op\":\"checkpoint\""))
        .collect();
    // Cut back past the last checkpoint, into the events before it.
    let cut = checkpoints[checkpoints.len() - 2] + 2;
    let (at_line, reason) = broken_at(verify(&lines[..cut].concat(), Some(&key)));
    assert_eq!(at_line, cut as u64);
    assert!(reason.contains("after its last checkpoint"), "{reason}");
    // Cut mid-line.
    let text = lines.concat();
    let (_, reason) = broken_at(verify(&text[..text.len() - 10], Some(&key)));
    assert!(reason.contains("partial line"), "{reason}");
}

#[test]
fn a_log_rechained_without_the_key_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key = generate_log(&log, 4);
    let mut lines = lines(&log);
    // Rewrite which file line 4's decrypt read, and re-chain every line after it.
    lines[3] = lines[3].replace("study/0.dcm.enc", "study/x.dcm.enc");
    let rechained = rechain(&lines, None);
    let first_checkpoint = lines
        .iter()
        .skip(3)
        .position(|l| l.contains("\"op\":\"checkpoint\""))
        .unwrap()
        + 4;
    let (at_line, reason) = broken_at(verify(&rechained.concat(), Some(&key)));
    assert_eq!(at_line, first_checkpoint as u64, "{reason}");
    assert!(reason.contains("signature does not verify"), "{reason}");
    let (at_line, _) = broken_at(verify(&rechained.concat(), None));
    assert_eq!(at_line, first_checkpoint as u64);

    // Re-signed with another key: the pinned key finds it; unpinned, the checkpoints carry
    // the new key consistently, and the summary names it.
    let forger = AuditSigningKey::generate(provider()).unwrap();
    let forged = rechain(&lines, Some(&forger));
    let (at_line, reason) = broken_at(verify(&forged.concat(), Some(&key)));
    assert!(reason.contains("another key"), "{reason}");
    assert!(at_line as usize >= 4);
    let summary = verify(&forged.concat(), None).unwrap();
    assert_ne!(summary.signed_by, Some(key.verifying_key().fingerprint()));
}

#[test]
fn the_log_holds_no_key_plaintext_or_context_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    generate_log(&log, 3);
    let bytes = fs::read(&log).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    for needle in [
        KEY.to_vec(),
        hex::encode(KEY).into_bytes(),
        b64(&KEY).into_bytes(),
        PLAINTEXT.to_vec(),
        b64(PLAINTEXT).into_bytes(),
        SECRET_VALUE.as_bytes().to_vec(),
        b64(SECRET_VALUE.as_bytes()).into_bytes(),
        b"archive".to_vec(),
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
            "the log contains {:?}",
            String::from_utf8_lossy(&needle)
        );
    }
    assert!(text.contains("\"mrn\""), "context keys are recorded");
}

#[test]
fn a_failed_decrypt_is_recorded_with_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let auditor = sink(&log, 1000, None);
    let writer = Client::new(RawAesKeyring::new("hosp", "key-a", &KEY).unwrap());
    let message = writer
        .encrypt(PLAINTEXT, &EncryptionContext::new())
        .unwrap();
    // The wrong key of the right name, then another key entirely ("not mine").
    for (name, expected) in [
        ("key-a", "could not unwrap"),
        ("key-b", "no encrypted data key"),
    ] {
        let reader = Client::new(AuditedKeyring::new(
            RawAesKeyring::new("hosp", name, &[0x77; 32]).unwrap(),
            auditor.clone(),
        ));
        let err = reader
            .decrypt(&message, &DecryptOptions::default())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
        let last: serde_json::Value = serde_json::from_str(lines(&log).last().unwrap()).unwrap();
        assert_eq!(last["op"], "unwrap");
        assert_eq!(last["outcome"], "failed");
        assert_eq!(last["error_kind"], "authentication");
        assert!(last["error"].as_str().unwrap().contains(expected), "{last}");
        assert_eq!(last["keys"][0]["key"], "key-a");
    }
    auditor.finish().unwrap();
    let summary = verify(&fs::read_to_string(&log).unwrap(), None).unwrap();
    assert_eq!((summary.events, summary.failed), (2, 2));
}

#[test]
fn an_unwritable_log_fails_closed_and_releases_nothing() {
    // /dev/full opens, locks and reads as empty, and refuses every write (ENOSPC).
    let auditor = sink(Path::new("/dev/full"), 1000, None);
    let client = Client::new(AuditedKeyring::new(
        RawAesKeyring::new("hosp", "key-a", &KEY).unwrap(),
        auditor.clone(),
    ));
    let err = client
        .encrypt(PLAINTEXT, &EncryptionContext::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::Keyring(KeyringError::AuditFailed(_))),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Io);

    // A file operation makes no output either.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.dcm");
    let output = dir.path().join("scan.dcm.enc");
    fs::write(&input, PLAINTEXT).unwrap();
    let err = client
        .encrypt_file(
            &input,
            &output,
            &EncryptionContext::new(),
            &Default::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(!output.exists());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing left beside the input"
    );

    // Failing open, the operation goes on and the failure is counted.
    let open = sink(Path::new("/dev/full"), 1000, None).fail_open();
    let client = Client::new(AuditedKeyring::new(
        RawAesKeyring::new("hosp", "key-a", &KEY).unwrap(),
        open.clone(),
    ));
    client
        .encrypt(PLAINTEXT, &EncryptionContext::new())
        .unwrap();
    assert_eq!(open.failures(), 1);
}

#[test]
fn a_damaged_end_is_not_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    generate_log(&log, 1);
    let mut text = fs::read_to_string(&log).unwrap();
    text.push_str("{\"seq\":99"); // a partial line
    fs::write(&log, &text).unwrap();
    let err = JsonLinesSink::open(&log, provider(), JsonLinesOptions::default())
        .err()
        .expect("a damaged log must not open for appending");
    assert!(err.to_string().contains("partial line"), "{err}");
}

#[test]
fn processes_sharing_a_log_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let key_pem = AuditSigningKey::generate(provider())
        .unwrap()
        .to_pem()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            let pem = key_pem.to_string();
            std::thread::spawn(move || {
                // Each its own sink and file handle, as separate processes would have.
                let key = AuditSigningKey::from_pem(&pem, provider()).unwrap();
                let auditor = sink(&log, 7, Some(key));
                for i in 0..50 {
                    auditor
                        .record(&AuditEvent::new(Operation::Encrypt).path(format!("{t}/{i}")))
                        .unwrap();
                }
                auditor.finish().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = fs::read_to_string(&log).unwrap();
    let key = AuditSigningKey::from_pem(&key_pem, provider()).unwrap();
    let summary = verify(&text, Some(&key)).unwrap();
    assert_eq!(summary.events, 200);
    // Each process: one after every 7 of its events (7), and one at its end.
    assert_eq!(summary.checkpoints, 4 * 8);
}

#[test]
fn keys_round_trip_through_pem_and_reject_others() {
    let key = AuditSigningKey::generate(provider()).unwrap();
    let again = AuditSigningKey::from_pem(&key.to_pem().unwrap(), provider()).unwrap();
    assert_eq!(again.verifying_key(), key.verifying_key());
    let public =
        envcrypt::audit::AuditVerifyingKey::from_pem(&key.verifying_key().to_pem(), provider())
            .unwrap();
    assert_eq!(&public, key.verifying_key());
    let err = AuditSigningKey::from_pem(&key.verifying_key().to_pem(), provider())
        .err()
        .unwrap();
    assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    let err = envcrypt::audit::AuditVerifyingKey::from_pem("not pem", provider()).unwrap_err();
    assert!(err.to_string().contains("BEGIN"), "{err}");
}

/// `line` with its hash recomputed (and `prev` replaced when given), as a forger without
/// the signing key would; a checkpoint is re-signed with `signer` when one is given.
fn reseal(line: &str, prev: Option<&str>) -> String {
    reseal_with(line, prev, None)
}

fn reseal_with(line: &str, prev: Option<&str>, signer: Option<&AuditSigningKey>) -> String {
    let line = line.trim_end_matches('\n');
    let at = line.rfind(",\"hash\":\"").unwrap();
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{}}}", &line[..at])).unwrap();
    if let Some(prev) = prev {
        body.insert("prev".into(), prev.into());
    }
    let signer = signer.filter(|_| body["op"] == "checkpoint");
    if let Some(key) = signer {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        body.remove("signature");
        body.insert(
            "public_key".into(),
            b64.encode(key.verifying_key().spki()).into(),
        );
    }
    // seq first, prev last, as the writer does (the verifier only needs the bytes to match
    // the hash and the signature).
    let seq = body.remove("seq").unwrap();
    let prev = body.remove("prev").unwrap();
    let mut text = format!("{{\"seq\":{seq}");
    for (k, v) in &body {
        text.push_str(&format!(",{}:{}", serde_json::to_string(k).unwrap(), v));
    }
    if let Some(key) = signer {
        // Sign the line as it is without its signature, then put the signature in.
        let unsigned = format!("{text},\"prev\":{prev}}}");
        text.push_str(&format!(",\"signature\":\"{}\"", sign(key, &unsigned)));
    }
    text.push_str(&format!(",\"prev\":{prev}}}"));
    let mut h = provider().digest.start(HashAlgorithm::Sha256);
    h.update(text.as_bytes());
    let hash = hex::encode(h.finish());
    text.pop();
    format!("{text},\"hash\":\"{hash}\"}}\n")
}

/// A signature over `text` by `key`, made through the provider as any holder of the key
/// could.
fn sign(key: &AuditSigningKey, text: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = key.to_pem().unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let signing = provider()
        .signature
        .signing_key(
            envcrypt::crypto::SignatureAlgorithm::EcdsaP384Sha384,
            &b64.decode(body).unwrap(),
        )
        .unwrap();
    b64.encode(signing.sign(text.as_bytes()).unwrap())
}

/// Every line re-chained from the first: each hash recomputed over the new `prev`.
fn rechain(lines: &[String], signer: Option<&AuditSigningKey>) -> Vec<String> {
    let mut prev = "0".repeat(64);
    lines
        .iter()
        .map(|line| {
            let sealed = reseal_with(line, Some(&prev), signer);
            let at = sealed.rfind(",\"hash\":\"").unwrap();
            prev = sealed[at + 9..at + 9 + 64].to_owned();
            sealed
        })
        .collect()
}
