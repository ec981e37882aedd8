//! Conformance tests: the official AWS Encryption SDK test vectors, decrypted through the
//! public API (one-shot [`Client::decrypt`] and the streaming [`Client::decrypt_reader`]).
//!
//! The vectors are read in place from the directory named by `ENVCRYPT_ESDK_VECTORS`, else
//! from `<crate>/../shared/vectors/esdk` (see the `README.md` there). When they are missing,
//! every test here fails: conformance is never skipped silently.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use envcrypt::crypto::{CryptoError, HashAlgorithm, RsaPadding};
use envcrypt::format::{parse_header, EncryptedDataKey, HeaderLimits, ParsedHeader};
use envcrypt::keyring::{Keyring, KeyringError, MultiKeyring, RawAesKeyring, RawRsaKeyring};
use envcrypt::materials::{
    DataKey, DecryptionMaterials, DefaultMaterialsManager, EncryptionMaterials,
};
use envcrypt::{
    AuthenticationError, Client, CommitmentPolicy, DecryptOptions, Decrypted, EncryptionContext,
    Error,
};

/// `return Err(format!(..))` unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Locating and reading the vectors
// ---------------------------------------------------------------------------------------------

const KAT_FILE: &str = "commitment_known_answer_tests.json";
const VALID_ZIP: &str = "valid-Net-4.0.0.zip";
const V4_ZIP: &str = "v4-Net-4.0.1.zip";
const INVALID_ZIP: &str = "invalid-Net-4.0.0.zip";

fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("ENVCRYPT_ESDK_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/esdk"));
    assert!(
        dir.is_dir(),
        "ESDK conformance vectors not found at {}; set ENVCRYPT_ESDK_VECTORS to the directory \
         holding {KAT_FILE} and the *-Net-*.zip files",
        dir.display()
    );
    dir
}

fn vector_file(name: &str) -> PathBuf {
    let path = vectors_dir().join(name);
    assert!(
        path.is_file(),
        "ESDK conformance vector file missing: {}",
        path.display()
    );
    path
}

/// Decodes a base64 field (one KAT `header` carries a stray leading space: trimmed).
fn b64(value: &Value) -> Vec<u8> {
    let s = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a base64 string, got {value}"));
    BASE64
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

fn str_field<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field:?} is not a string in {value}"))
}

fn context_from_json(value: &Value) -> EncryptionContext {
    value
        .as_object()
        .unwrap_or_else(|| panic!("encryption context is not an object: {value}"))
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("context value of {k:?} is not a string"));
            (k.as_str(), v)
        })
        .collect()
}

/// One vector zip: `manifest.json`, `keys.json` and the files they point to.
struct VectorZip {
    name: &'static str,
    archive: zip::ZipArchive<File>,
}

impl VectorZip {
    fn open(name: &'static str) -> Self {
        let file = File::open(vector_file(name)).expect("open vector zip");
        let archive = zip::ZipArchive::new(file)
            .unwrap_or_else(|e| panic!("{name} is not a readable zip: {e}"));
        Self { name, archive }
    }

    /// Reads a file named by a `file://` URI relative to the zip root.
    fn read(&mut self, uri: &str) -> Vec<u8> {
        let path = uri
            .strip_prefix("file://")
            .unwrap_or_else(|| panic!("{}: not a file:// URI: {uri}", self.name));
        let mut entry = self
            .archive
            .by_name(path)
            .unwrap_or_else(|e| panic!("{}: no entry {path}: {e}", self.name));
        let mut out = Vec::new();
        entry.read_to_end(&mut out).expect("read zip entry");
        out
    }

    fn json(&mut self, uri: &str) -> Value {
        serde_json::from_slice(&self.read(uri))
            .unwrap_or_else(|e| panic!("{}: {uri} is not JSON: {e}", self.name))
    }
}

// ---------------------------------------------------------------------------------------------
// Test cases and the two read paths
// ---------------------------------------------------------------------------------------------

/// What a vector demands.
#[derive(Debug)]
enum Expected {
    Plaintext(Vec<u8>),
    Failure,
}

/// One message to decrypt, with the client and options that should (or should not) open it.
struct Case {
    name: String,
    client: Client,
    options: DecryptOptions,
    ciphertext: Vec<u8>,
    expected: Expected,
}

impl Case {
    fn decrypt(&self) -> Result<Decrypted, Error> {
        self.client.decrypt(&self.ciphertext, &self.options)
    }

    /// Decrypts through [`Client::decrypt_reader`], the input arriving `max_read` bytes per read.
    fn decrypt_streaming(&self, max_read: usize) -> Result<Vec<u8>, Error> {
        let input = Trickle {
            rest: &self.ciphertext,
            max_read,
        };
        let mut reader = self.client.decrypt_reader(input, &self.options)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(from_io)?;
        Ok(out)
    }

    /// The header, parsed on its own (no key needed).
    fn header(&self) -> Result<ParsedHeader, String> {
        let config = self.client.decrypt_config();
        let limits = HeaderLimits::new(config.max_encrypted_data_keys, config.max_frame_length);
        match parse_header(&self.ciphertext, &limits) {
            Ok(Some(header)) => Ok(header),
            Ok(None) => Err("header is truncated".into()),
            Err(e) => Err(format!("header does not parse: {e:?}")),
        }
    }
}

/// A reader that hands out at most `max_read` bytes per call, to exercise incremental parsing.
struct Trickle<'a> {
    rest: &'a [u8],
    max_read: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max_read).min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        buf[..n].copy_from_slice(head);
        self.rest = tail;
        Ok(n)
    }
}

/// Gets the crate error back out of the `io::Error` the streaming reader carries it in.
fn from_io(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked above");
        *inner.downcast::<Error>().expect("checked above")
    } else {
        Error::Io(e)
    }
}

/// Panics listing every problem found, so one run reports all of them.
fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// A short, stable label of an error for reports and comparisons.
fn kind(e: &Error) -> String {
    format!("{e:?}")
}

fn client_with(keyring: impl Keyring + 'static) -> Client {
    Client::builder()
        .keyring(keyring)
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()
        .expect("client configuration")
}

fn client_with_arc(keyring: Arc<dyn Keyring>) -> Client {
    Client::builder()
        .materials_manager(DefaultMaterialsManager::from_arc(keyring))
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()
        .expect("client configuration")
}

// ---------------------------------------------------------------------------------------------
// commitment_known_answer_tests.json
// ---------------------------------------------------------------------------------------------

/// Hands out a known plaintext data key: the known-answer tests give the data key itself, not
/// a wrapping key, so this stands in for a keyring on the real decrypt path.
struct StaticDataKey(Vec<u8>);

#[async_trait]
impl Keyring for StaticDataKey {
    async fn on_encrypt(
        &self,
        _materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        Err(KeyringError::Unsupported("decrypt-only test keyring"))
    }

    async fn on_decrypt(
        &self,
        mut materials: DecryptionMaterials,
        _encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_none() {
            materials.data_key = Some(DataKey::new(self.0.clone()));
        }
        Ok(materials)
    }
}

/// A known-answer test: the case plus its JSON, for the fields checked beyond decryption.
struct KnownAnswer {
    case: Case,
    json: Value,
}

fn known_answer_tests() -> Vec<KnownAnswer> {
    let text = std::fs::read(vector_file(KAT_FILE)).expect("read known-answer tests");
    let doc: Value = serde_json::from_slice(&text).expect("known-answer tests are JSON");
    let tests = doc["tests"].as_array().expect("`tests` is an array");
    tests
        .iter()
        .map(|t| {
            let name = format!("KAT {}", str_field(t, "comment"));
            let expected = match t["status"].as_bool() {
                Some(true) => Expected::Plaintext(plaintext_from_frames(&name, t)),
                Some(false) => Expected::Failure,
                None => panic!("{name}: `status` is not a boolean"),
            };
            let case = Case {
                client: Client::builder()
                    .keyring(StaticDataKey(b64(&t["decrypted-dek"])))
                    .build()
                    .expect("client configuration"),
                options: DecryptOptions::default(),
                ciphertext: b64(&t["ciphertext"]),
                expected,
                name,
            };
            KnownAnswer {
                case,
                json: t.clone(),
            }
        })
        .collect()
}

/// Concatenates `plaintext-frames`, a non-empty list of UTF-8 strings. (They are not always
/// one per body frame: the JS "1byte frame" vectors list the whole plaintext as one.)
fn plaintext_from_frames(name: &str, test: &Value) -> Vec<u8> {
    let frames = test["plaintext-frames"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: `plaintext-frames` is not an array"));
    assert!(!frames.is_empty(), "{name}: no plaintext frames");
    frames
        .iter()
        .flat_map(|f| {
            f.as_str()
                .unwrap_or_else(|| panic!("{name}: a plaintext frame is not a string"))
                .bytes()
        })
        .collect()
}

/// The key commitment of a committing suite, derived per the spec:
/// `HKDF-Expand(HKDF-Extract(SHA-512, salt = message id, ikm = data key), "COMMITKEY", 32)`.
fn spec_commitment(data_key: &[u8], message_id: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    envcrypt::crypto::default_provider()
        .hkdf
        .extract_and_expand(
            HashAlgorithm::Sha512,
            message_id,
            data_key,
            b"COMMITKEY",
            &mut out,
        )
        .expect("HKDF-SHA512");
    out
}

/// Runs one known-answer test; returns whether it decrypted.
fn check_known_answer(KnownAnswer { case, json }: &KnownAnswer) -> Result<bool, String> {
    // The vector's own breakdown of the message must agree with our header parser.
    let parsed = case.header()?;
    let header = &parsed.header;
    ensure!(
        parsed.bytes() == b64(&json["header"]),
        "header bytes differ"
    );
    ensure!(
        header.message_id == b64(&json["message-id"]),
        "message id differs"
    );
    ensure!(
        header.encryption_context == context_from_json(&json["encryption-context"]),
        "stored encryption context differs"
    );
    let stored = header.commitment.ok_or("no commitment in a v2 header")?;
    let derived = spec_commitment(&b64(&json["decrypted-dek"]), &header.message_id);

    match &case.expected {
        Expected::Plaintext(plaintext) => {
            ensure!(stored[..] == b64(&json["commitment"]), "commitment differs");
            ensure!(
                stored[..] == derived,
                "data key does not match the commitment"
            );
            let decrypted = case
                .decrypt()
                .map_err(|e| format!("must decrypt, failed: {e:?}"))?;
            ensure!(decrypted.plaintext == *plaintext, "plaintext differs");
            ensure!(decrypted.header == *header, "returned header differs");
            Ok(true)
        }
        Expected::Failure => {
            // The expected exception, confirmed by recomputing the commitment.
            let exception = json["exception"].as_str().unwrap_or_default();
            ensure!(
                exception.contains("Invalid commitment"),
                "unknown expected exception {exception:?}"
            );
            ensure!(stored[..] != derived, "data key matches the commitment");
            let want = Error::Authentication(AuthenticationError::Commitment);
            match case.decrypt() {
                Err(e) if kind(&e) == kind(&want) => Ok(false),
                Err(e) => Err(format!("must fail with {want:?}, failed with {e:?}")),
                Ok(_) => Err(format!("must fail with {want:?}, decrypted")),
            }
        }
    }
}

#[test]
fn commitment_known_answer_tests() {
    let tests = known_answer_tests();
    assert_eq!(tests.len(), 46, "number of known-answer tests");
    let (mut decrypted, mut rejected) = (0, 0);
    let mut problems = Vec::new();
    for test in &tests {
        match check_known_answer(test) {
            Ok(true) => decrypted += 1,
            Ok(false) => rejected += 1,
            Err(p) => problems.push(format!("{}: {p}", test.case.name)),
        }
    }
    assert_no_problems(KAT_FILE, &problems);
    assert_eq!((decrypted, rejected), (41, 5), "(decrypted, rejected)");
}

// ---------------------------------------------------------------------------------------------
// The awses-decrypt manifests (valid, v4, invalid)
// ---------------------------------------------------------------------------------------------

/// Which kind of keyring a manifest's master key needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MasterKeyKind {
    RawAes,
    RawRsa,
    AwsKms,
}

fn master_key_kind(master_key: &Value) -> MasterKeyKind {
    match (
        master_key["type"].as_str(),
        master_key["encryption-algorithm"].as_str(),
    ) {
        (Some("raw"), Some("aes")) => MasterKeyKind::RawAes,
        (Some("raw"), Some("rsa")) => MasterKeyKind::RawRsa,
        (Some("aws-kms"), _) => MasterKeyKind::AwsKms,
        _ => panic!("unknown master key {master_key}"),
    }
}

/// What a manifest's tests need, sorted by the keyrings they use.
#[derive(Default)]
struct Manifest {
    /// Tests whose master keys are all raw (AES or RSA): runnable here.
    cases: Vec<Case>,
    /// Ids of the tests with a raw RSA master key (in `cases`, or in `without_rsa`).
    rsa: Vec<String>,
    /// Raw RSA tests when the provider has no RSA (the pure-Rust build): they must fail with
    /// `Crypto(Unsupported("RSA"))`.
    without_rsa: Vec<Case>,
    /// Test ids that need AWS KMS (not run: they need the real AWS account).
    kms: Vec<String>,
}

/// Loads an `awses-decrypt` version 4 manifest.
///
/// Each test's `encryption-context` is the caller's reproduced context and goes into
/// [`DecryptOptions::required_context`]: pairs stored in the header are checked against it,
/// pairs left out of the header (cmm `RequiredEncryptionContext`) are authenticated as
/// required context.
fn load_manifest(zip_name: &'static str, must_fail: bool) -> Manifest {
    let mut zip = VectorZip::open(zip_name);
    let manifest = zip.json("file://manifest.json");
    assert_eq!(manifest["manifest"]["type"], "awses-decrypt", "{zip_name}");
    assert_eq!(manifest["manifest"]["version"], 4, "{zip_name}");
    let keys = zip.json(str_field(&manifest, "keys"));
    let keys = &keys["keys"];

    let mut out = Manifest::default();
    let tests = manifest["tests"].as_object().expect("`tests` is an object");
    for (id, test) in tests {
        let master_keys = test["master-keys"].as_array().expect("master-keys array");
        assert!(!master_keys.is_empty(), "{id}: no master keys");
        let kinds: Vec<_> = master_keys.iter().map(master_key_kind).collect();
        if kinds.contains(&MasterKeyKind::AwsKms) {
            out.kms.push(id.clone());
            continue;
        }
        if kinds.contains(&MasterKeyKind::RawRsa) {
            out.rsa.push(id.clone());
        }
        // One keyring per master key, tried in the manifest's order.
        let mut keyrings: Vec<Arc<dyn Keyring>> = master_keys
            .iter()
            .map(|mk| match master_key_kind(mk) {
                MasterKeyKind::RawAes => {
                    Arc::new(raw_aes_keyring(id, mk, keys)) as Arc<dyn Keyring>
                }
                _ => Arc::new(raw_rsa_keyring(id, mk, keys)),
            })
            .collect();
        let client = if keyrings.len() == 1 {
            client_with_arc(keyrings.pop().expect("one keyring"))
        } else {
            client_with(MultiKeyring::from_arcs(None, keyrings))
        };

        let context = context_from_json(&test["encryption-context"]);
        let expected = if must_fail {
            Expected::Failure
        } else {
            Expected::Plaintext(zip.read(str_field(&test["result"]["output"], "plaintext")))
        };
        let case = Case {
            name: format!("{zip_name}: {id}"),
            client,
            options: DecryptOptions::default().with_required_context(context.clone()),
            ciphertext: zip.read(str_field(test, "ciphertext")),
            expected,
        };
        check_required_context_layout(&case, str_field(test, "cmm"), &context);
        if kinds.contains(&MasterKeyKind::RawRsa) && !rsa_offered() {
            out.without_rsa.push(case);
        } else {
            out.cases.push(case);
        }
    }
    out
}

fn raw_aes_keyring(id: &str, master_key: &Value, keys: &Value) -> RawAesKeyring {
    let key_name = str_field(master_key, "key");
    let key = &keys[key_name];
    assert_eq!(key["algorithm"], "aes", "{id}: key {key_name}");
    assert_eq!(key["encoding"], "base64", "{id}: key {key_name}");
    let material = b64(&key["material"]);
    assert_eq!(
        Some(material.len() as u64 * 8),
        key["bits"].as_u64(),
        "{id}: key {key_name} length"
    );
    RawAesKeyring::new(
        str_field(master_key, "provider-id"),
        str_field(key, "key-id"),
        &material,
    )
    .unwrap_or_else(|e| panic!("{id}: raw AES keyring: {e}"))
}

/// True when the provider clients use here offers RSA. The pure-Rust build has none: its
/// raw RSA vectors are then checked to fail with `Crypto(Unsupported("RSA"))`.
fn rsa_offered() -> bool {
    !matches!(
        envcrypt::crypto::default_provider().rsa.public_key(&[]),
        Err(CryptoError::Unsupported(_))
    )
}

/// The RSA padding a raw RSA master key names.
fn rsa_padding(id: &str, master_key: &Value) -> RsaPadding {
    match (
        str_field(master_key, "padding-algorithm"),
        master_key["padding-hash"].as_str(),
    ) {
        ("pkcs1", _) => RsaPadding::Pkcs1v15,
        ("oaep-mgf1", Some("sha1")) => RsaPadding::OaepSha1,
        ("oaep-mgf1", Some("sha256")) => RsaPadding::OaepSha256,
        ("oaep-mgf1", Some("sha384")) => RsaPadding::OaepSha384,
        ("oaep-mgf1", Some("sha512")) => RsaPadding::OaepSha512,
        other => panic!("{id}: unknown RSA padding {other:?}"),
    }
}

/// A raw RSA keyring from `keys.json`: PEM, a private key (decrypts) or a public one
/// (encrypt only: in a multi-keyring it answers `Unsupported` and the others are tried).
fn raw_rsa_keyring(id: &str, master_key: &Value, keys: &Value) -> RawRsaKeyring {
    let key_name = str_field(master_key, "key");
    let key = &keys[key_name];
    assert_eq!(key["algorithm"], "rsa", "{id}: key {key_name}");
    assert_eq!(key["encoding"], "pem", "{id}: key {key_name}");
    let keyring = RawRsaKeyring::from_pem(
        str_field(master_key, "provider-id"),
        str_field(key, "key-id"),
        rsa_padding(id, master_key),
        str_field(key, "material"),
    )
    .unwrap_or_else(|e| panic!("{id}: raw RSA keyring: {e}"));
    let private = key["type"] == "private";
    assert_eq!(keyring.can_decrypt(), private, "{id}: key {key_name} type");
    keyring
}

/// Confirms the reading of `cmm`: "RequiredEncryptionContext" messages store none of the
/// manifest's pairs; "Default" ones store all of them.
fn check_required_context_layout(case: &Case, cmm: &str, context: &EncryptionContext) {
    let header = case
        .header()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let stored = &header.header.encryption_context;
    let stored_pairs = context
        .iter()
        .filter(|(k, v)| stored.get(k) == Some(*v))
        .count();
    match cmm {
        "RequiredEncryptionContext" => assert_eq!(stored_pairs, 0, "{}: pairs stored", case.name),
        "Default" => assert_eq!(stored_pairs, context.len(), "{}: pairs missing", case.name),
        other => panic!("{}: unknown cmm {other:?}", case.name),
    }
}

/// Decrypts every case, each of which must decrypt to its plaintext; returns how many did.
fn run_passing(what: &str, cases: &[Case]) -> usize {
    let mut problems = Vec::new();
    for case in cases {
        let Expected::Plaintext(plaintext) = &case.expected else {
            panic!("{}: not a passing case", case.name);
        };
        match case.decrypt() {
            Ok(d) if d.plaintext == *plaintext => {}
            Ok(d) => problems.push(format!(
                "{}: plaintext differs ({} bytes, expected {})",
                case.name,
                d.plaintext.len(),
                plaintext.len()
            )),
            Err(e) => problems.push(format!("{}: must decrypt, failed: {e:?}", case.name)),
        }
    }
    assert_no_problems(what, &problems);
    cases.len()
}

/// Decrypts every case, each of which must fail because the provider has no RSA (the error of
/// the RSA keyring, alone or as a multi-keyring's child); returns how many did.
fn run_rsa_unsupported(what: &str, cases: &[Case]) -> usize {
    let unsupported = KeyringError::Crypto(CryptoError::Unsupported("RSA"));
    let mut problems = Vec::new();
    for case in cases {
        match case.decrypt() {
            Err(Error::Keyring(KeyringError::AllFailed(all))) if all.contains(&unsupported) => {}
            Err(Error::Keyring(e)) if e == unsupported => {}
            other => problems.push(format!(
                "{}: must fail with {unsupported:?}, got {:?}",
                case.name,
                other.map(|d| d.plaintext.len())
            )),
        }
    }
    assert_no_problems(what, &problems);
    cases.len()
}

#[test]
fn valid_net_4_0_0() {
    let manifest = load_manifest(VALID_ZIP, false);
    assert_eq!(manifest.cases.len(), 5, "raw AES tests in {VALID_ZIP}");
    assert_eq!((manifest.rsa.len(), manifest.kms.len()), (0, 0));
    assert_eq!(run_passing(VALID_ZIP, &manifest.cases), 5);
}

#[test]
fn v4_net_4_0_1() {
    let manifest = load_manifest(V4_ZIP, false);
    let runnable = if rsa_offered() { 99 } else { 33 };
    assert_eq!(
        manifest.cases.len(),
        runnable,
        "runnable raw tests in {V4_ZIP}"
    );
    assert_eq!(manifest.rsa.len(), 66, "raw RSA tests in {V4_ZIP}");
    assert_eq!(manifest.without_rsa.len(), 99 - runnable, "{V4_ZIP}");
    assert_eq!(manifest.kms.len(), 33, "AWS KMS tests in {V4_ZIP}");
    println!(
        "{V4_ZIP}: running {} raw tests (33 AES, {} RSA); {} RSA tests refused by a provider \
         without RSA; not run here: {} AWS KMS tests (need the real AWS account)",
        manifest.cases.len(),
        runnable - 33,
        manifest.without_rsa.len(),
        manifest.kms.len()
    );
    assert_eq!(run_passing(V4_ZIP, &manifest.cases), runnable);
    assert_eq!(
        run_rsa_unsupported(V4_ZIP, &manifest.without_rsa),
        99 - runnable
    );
}

/// Half of the v4 RSA messages carry a second EDK, for key name `rsa-4096-public` with
/// OAEP-SHA-256 (the first is OAEP-SHA-512). `keys.json`'s public key is the public half of
/// its private key, so that EDK opens here too: a keyring of that name and padding with the
/// private key decrypts those 33 messages alone, and so does a multi-keyring whose first
/// child is public-only (it answers `Unsupported`; the next one is tried).
#[test]
fn v4_net_4_0_1_rsa_sha256_edks() {
    let mut zip = VectorZip::open(V4_ZIP);
    let manifest = zip.json("file://manifest.json");
    let keys = zip.json(str_field(&manifest, "keys"));
    let private_pem = str_field(&keys["keys"]["rsa-4096-private"], "material");
    let public_pem = str_field(&keys["keys"]["rsa-4096-public"], "material");
    let public_name = str_field(&keys["keys"]["rsa-4096-public"], "key-id");
    let mut cases = Vec::new();
    for (id, test) in manifest["tests"].as_object().expect("`tests` is an object") {
        let master_keys = test["master-keys"].as_array().expect("master-keys array");
        let Some(second) = master_keys.get(1) else {
            continue;
        };
        if second["key"] != "rsa-4096-public" {
            continue;
        }
        assert_eq!(rsa_padding(id, second), RsaPadding::OaepSha256, "{id}");
        let namespace = str_field(second, "provider-id");
        let keyring = |pem| {
            RawRsaKeyring::from_pem(namespace, public_name, RsaPadding::OaepSha256, pem)
                .unwrap_or_else(|e| panic!("{id}: {e}"))
        };
        let options = DecryptOptions::default()
            .with_required_context(context_from_json(&test["encryption-context"]));
        let ciphertext = zip.read(str_field(test, "ciphertext"));
        let plaintext = zip.read(str_field(&test["result"]["output"], "plaintext"));
        cases.push(Case {
            name: format!("{V4_ZIP}: {id} (SHA-256 EDK, private key alone)"),
            client: client_with(keyring(private_pem)),
            options: options.clone(),
            ciphertext: ciphertext.clone(),
            expected: Expected::Plaintext(plaintext.clone()),
        });
        cases.push(Case {
            name: format!("{V4_ZIP}: {id} (SHA-256 EDK, public-only child first)"),
            client: client_with(MultiKeyring::new(
                None::<RawRsaKeyring>,
                [keyring(public_pem), keyring(private_pem)],
            )),
            options,
            ciphertext,
            expected: Expected::Plaintext(plaintext),
        });
    }
    if rsa_offered() {
        assert_eq!(run_passing(V4_ZIP, &cases), 66, "2 x 33 messages");
    } else {
        assert_eq!(run_rsa_unsupported(V4_ZIP, &cases), 66, "2 x 33 messages");
    }
}

#[test]
fn invalid_net_4_0_0() {
    let manifest = load_manifest(INVALID_ZIP, true);
    assert_eq!(manifest.cases.len(), 28, "raw AES tests in {INVALID_ZIP}");
    assert_eq!((manifest.rsa.len(), manifest.kms.len()), (0, 0));
    // The writer's bug is in the header authentication, not the wrapped data key: it appended
    // `00 00` to the header AAD for an empty required context (the 22 "Default" messages) and
    // left the message id out of the v1 HKDF info (every 01xx-03xx suite). The data key
    // unwraps; the header tag must then fail to verify.
    let want = kind(&Error::Authentication(AuthenticationError::HeaderTag));
    let mut kinds: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut problems = Vec::new();
    for case in &manifest.cases {
        match case.decrypt() {
            Ok(d) => problems.push(format!(
                "{}: must fail, decrypted {} bytes",
                case.name,
                d.plaintext.len()
            )),
            Err(e) => {
                if kind(&e) != want {
                    problems.push(format!("{}: must fail with {want}, got {e:?}", case.name));
                }
                kinds.entry(kind(&e)).or_default().push(&case.name);
            }
        }
    }
    for (kind, names) in &kinds {
        println!("{INVALID_ZIP}: {} rejected with {kind}", names.len());
    }
    assert_no_problems(INVALID_ZIP, &problems);
    assert_eq!(kinds.values().map(Vec::len).sum::<usize>(), 28, "rejected");
}

// ---------------------------------------------------------------------------------------------
// Both read paths agree
// ---------------------------------------------------------------------------------------------

/// Decrypts `case` through the streaming reader, reading `max_read` bytes at a time, and
/// compares with the one-shot result and with what the vector demands.
fn check_streaming(
    case: &Case,
    one_shot: &Result<Vec<u8>, Error>,
    max_read: usize,
) -> Result<(), String> {
    let streamed = case.decrypt_streaming(max_read);
    let reads = match max_read {
        usize::MAX => "whole-input reads".to_owned(),
        n => format!("{n}-byte reads"),
    };
    match (&case.expected, one_shot, &streamed) {
        (Expected::Plaintext(want), Ok(a), Ok(b)) if a == want && b == want => Ok(()),
        (Expected::Failure, Err(a), Err(b)) if kind(a) == kind(b) => Ok(()),
        (expected, a, b) => Err(format!(
            "expected {}; one-shot gave {:?}; streaming ({reads}) gave {:?}",
            match expected {
                Expected::Plaintext(p) => format!("{} bytes of plaintext", p.len()),
                Expected::Failure => "a failure".to_owned(),
            },
            a.as_ref().map(Vec::len).map_err(kind),
            b.as_ref().map(Vec::len).map_err(kind),
        )),
    }
}

#[test]
fn streaming_reader_agrees_with_one_shot() {
    let mut cases: Vec<Case> = known_answer_tests().into_iter().map(|k| k.case).collect();
    cases.extend(load_manifest(VALID_ZIP, false).cases);
    cases.extend(load_manifest(V4_ZIP, false).cases);
    cases.extend(load_manifest(INVALID_ZIP, true).cases);

    let (mut passing, mut failing) = (0, 0);
    let mut problems = Vec::new();
    for case in &cases {
        let one_shot = case.decrypt().map(|d| d.plaintext);
        // The whole input per read, then one byte per read (every parse resumes mid-field).
        for max_read in [usize::MAX, 1] {
            if let Err(p) = check_streaming(case, &one_shot, max_read) {
                problems.push(format!("{}: {p}", case.name));
            }
        }
        match case.expected {
            Expected::Plaintext(_) => passing += 1,
            Expected::Failure => failing += 1,
        }
    }
    assert_no_problems("streaming reader", &problems);
    // 41 + 5 + 99 (33 raw AES, 66 raw RSA) must decrypt; 5 + 28 must fail. (Without an RSA
    // provider the 66 RSA ones are checked by `v4_net_4_0_1` instead.)
    let rsa = if rsa_offered() { 66 } else { 0 };
    assert_eq!(
        (passing, failing),
        (79 + rsa, 33),
        "(passing, failing) vectors"
    );
}
