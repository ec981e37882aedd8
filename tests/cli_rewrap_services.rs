//! `envcrypt rewrap` between keys of real services: raw AES → AWS KMS and KMS key 1 → KMS
//! key 2 (moto's KMS server, `common/moto.rs`), KMS → PKCS#11 (a SoftHSM2 token,
//! `common/softhsm.rs`). The services are configured for the child process only, through the
//! environment (as in `tests/cli_kms.rs` and `tests/cli_pkcs11.rs`).
//!
//! The tool must be built with `--features aws-kms` (and `pkcs11` for the HSM test): the
//! binary of `tests/common/cli.rs` is built with this test binary's features.

#![cfg(feature = "aws-kms")]

#[path = "common/moto.rs"]
mod moto;
#[cfg(feature = "pkcs11")]
#[path = "common/softhsm.rs"]
mod softhsm;
#[path = "common/cli.rs"]
mod tool;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use moto::{Moto, REGION};
use serde_json::Value;
use tool::Out;

const AES: &str = "raw-aes:hosp:key-a:ka.key";

/// A scratch directory with an AES key, and the environment of the child processes: moto's
/// KMS endpoint, and the SoftHSM token with its PIN when there is one.
struct Env {
    dir: tempfile::TempDir,
    endpoint: String,
    hsm: Option<(PathBuf, &'static str)>,
}

impl Env {
    fn new(moto: &Moto) -> Self {
        Self::with_endpoint(&moto.endpoint)
    }

    /// The same with KMS at `endpoint` (for tests that start no moto: an unused address).
    fn with_endpoint(endpoint: &str) -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
            endpoint: endpoint.to_owned(),
            hsm: None,
        };
        fs::write(env.path("ka.key"), [0x5a; 32]).unwrap();
        fs::set_permissions(env.path("ka.key"), fs::Permissions::from_mode(0o600)).unwrap();
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut cmd = tool::command(self.dir.path(), args);
        cmd.env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_ENDPOINT_URL_KMS", &self.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_CONFIG_FILE", self.path("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.path("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("ENVCRYPT_PKCS11_PIN");
        if let Some((conf, pin)) = &self.hsm {
            cmd.env("SOFTHSM2_CONF", conf)
                .env("ENVCRYPT_PKCS11_PIN", pin);
        }
        let out = tool::run(cmd, None);
        if let Some((_, pin)) = &self.hsm {
            assert!(!out.stderr.contains(pin), "PIN on stderr");
        }
        out
    }

    /// Encrypts `plain` into `name` under `key`.
    fn encrypt(&self, name: &str, plain: &[u8], key: &str, extra: &[&str]) {
        fs::write(self.path("plain.tmp"), plain).unwrap();
        if let Some(dir) = self.path(name).parent() {
            fs::create_dir_all(dir).unwrap();
        }
        let mut args = vec!["encrypt", "-q", "-k", key];
        args.extend(extra);
        args.extend(["-o", name, "plain.tmp"]);
        self.run(&args).ok();
        fs::remove_file(self.path("plain.tmp")).unwrap();
    }

    /// `name` decrypts with `key` to `plain`, and not with `wrong` (exit 1, no output).
    #[track_caller]
    fn opens_only_with(&self, name: &str, key: &str, wrong: &str, plain: &[u8]) {
        let _ = fs::remove_file(self.path("check.out"));
        self.run(&["decrypt", "-q", "-k", key, "-o", "check.out", name])
            .ok();
        assert!(self.read("check.out") == plain, "{name} with {key}");
        fs::remove_file(self.path("check.out")).unwrap();
        self.run(&["decrypt", "-q", "-k", wrong, "-o", "check.out", name])
            .fails(1);
        assert!(!self.path("check.out").exists());
    }

    fn inspect(&self, name: &str) -> Value {
        serde_json::from_slice(&self.run(&["inspect", name]).ok().stdout).unwrap()
    }

    /// The (provider id, provider info as text) of each EDK of `name`.
    fn edks(&self, name: &str) -> Vec<(String, String)> {
        use base64::Engine as _;
        self.inspect(name)["encrypted_data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let info = base64::engine::general_purpose::STANDARD
                    .decode(e["provider_info"].as_str().unwrap())
                    .unwrap();
                (
                    e["provider_id"].as_str().unwrap().to_owned(),
                    String::from_utf8_lossy(&info).into_owned(),
                )
            })
            .collect()
    }

    /// Every regular file under `name` (relative path → bytes).
    fn tree(&self, name: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let root = self.path(name);
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(&root).unwrap().display().to_string();
                    out.insert(rel, fs::read(e.path()).unwrap());
                }
            }
        }
        out
    }
}

/// CreateKey against moto: the key ARN.
fn create_key(moto: &Moto) -> String {
    moto::create_key(moto).1
}

fn payload(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

/// The last stderr line of a folder run.
#[track_caller]
fn summary(out: &Out) -> &str {
    out.stderr.lines().last().unwrap_or_default()
}

#[test]
fn raw_aes_to_kms_then_kms_key_to_kms_key() {
    let mut moto = Moto::start();
    let (k1, k2) = (create_key(&moto), create_key(&moto));
    let (kms1, kms2) = (format!("aws-kms:{k1}"), format!("aws-kms:{k2}"));
    let env = Env::new(&moto);
    let plains: Vec<(String, Vec<u8>)> = [
        ("store/a.enc", 100_000, "0578"),
        ("store/b.enc", 0, "0478"),
        ("store/sub/c.enc", 9_000, "0478"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, len, suite))| {
        let plain = payload(len, i);
        env.encrypt(
            name,
            &plain,
            AES,
            &["--suite", suite, "-c", "dept=radiology"],
        );
        (name.to_owned(), plain)
    })
    .collect();

    // One file, raw AES → KMS key 1.
    let out = env
        .run(&[
            "rewrap",
            "-q",
            "-k",
            AES,
            "--to",
            &kms1,
            "-o",
            "one.enc",
            "store/a.enc",
        ])
        .ok();
    eprintln!("raw AES → KMS, one file: {:?}", out.took);
    assert_eq!(env.edks("one.enc"), [("aws-kms".to_owned(), k1.clone())]);
    env.opens_only_with("one.enc", &kms1, AES, &plains[0].1);

    // The folder in place: raw AES → KMS key 1, then KMS key 1 → KMS key 2.
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        AES,
        "--to",
        &kms1,
        "-r",
        "--in-place",
        "store",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 3, skipped 0, failed 0");
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        &kms1,
        "--to",
        &kms2,
        "-r",
        "--in-place",
        "store",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 3, skipped 0, failed 0");
    eprintln!("KMS → KMS, 3 files in place: {:?}", out.took);
    for (name, plain) in &plains {
        assert_eq!(env.edks(name), [("aws-kms".to_owned(), k2.clone())]);
        env.opens_only_with(name, &kms2, &kms1, plain);
    }
    let done = env.tree("store");
    // Re-run: every header opens with key 2 (asked of KMS), so all are skipped.
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        &kms1,
        "--to",
        &kms2,
        "-r",
        "--in-place",
        "store",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 0, skipped 3, failed 0");
    assert_eq!(env.tree("store"), done);
    // --only-wrapped-by the old KMS key: none left.
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        &kms1,
        "--to",
        AES,
        "--only-wrapped-by",
        &kms1,
        "-r",
        "--in-place",
        "store",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 0, skipped 3, failed 0");
    assert_eq!(env.tree("store"), done);

    // KMS unreachable: exit 4, nothing written, the input kept.
    moto.stop();
    let out = env
        .run(&[
            "rewrap",
            "-q",
            "-k",
            &kms2,
            "--to",
            AES,
            "-o",
            "x.enc",
            "store/a.enc",
        ])
        .fails(4);
    assert!(!env.path("x.enc").exists(), "{}", out.stderr);
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        &kms2,
        "--to",
        AES,
        "-r",
        "--in-place",
        "store",
    ]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 0, skipped 0, failed 3");
    assert_eq!(env.tree("store"), done);
}

#[cfg(feature = "pkcs11")]
#[test]
fn kms_to_pkcs11() {
    use std::sync::OnceLock;

    const TOKEN: &str = "rewrap-token";
    const PIN: &str = "rewrap-pin-2468";
    static HSM: OnceLock<softhsm::SoftHsm> = OnceLock::new();
    let _serial = softhsm::serial();
    let hsm = HSM.get_or_init(|| {
        let hsm = softhsm::SoftHsm::create("cli-rewrap");
        hsm.init_token(TOKEN, PIN, "rewrap-so-pin-1357");
        hsm.generate_aes(TOKEN, PIN, "rotated-aes", "01");
        hsm
    });
    let hsm_spec = format!(
        "pkcs11:token={TOKEN};object=rotated-aes?module-path={}",
        hsm.module.display()
    );

    let moto = Moto::start();
    let k1 = create_key(&moto);
    let kms1 = format!("aws-kms:{k1}");
    let mut env = Env::new(&moto);
    env.hsm = Some((hsm.conf.clone(), PIN));
    let plain = payload(300_000, 9);
    env.encrypt("f/m.enc", &plain, &kms1, &["--frame-length", "8192"]);
    env.encrypt("f/n.enc", b"short", &kms1, &["--suite", "0478"]);

    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        &kms1,
        "--to",
        &hsm_spec,
        "-r",
        "--in-place",
        "f",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 2, skipped 0, failed 0");
    eprintln!("KMS → PKCS#11, 2 files in place: {:?}", out.took);
    for name in ["f/m.enc", "f/n.enc"] {
        let edks = env.edks(name);
        assert_eq!(edks.len(), 1);
        assert_eq!(edks[0].0, "pkcs11");
        assert!(edks[0].1.starts_with("rotated-aes"), "{edks:?}");
    }
    env.opens_only_with("f/m.enc", &hsm_spec, &kms1, &plain);
    env.opens_only_with("f/n.enc", &hsm_spec, &kms1, b"short");
    // Re-run: the headers open with the token's key, so both are skipped.
    let done = env.tree("f");
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        &kms1,
        "--to",
        &hsm_spec,
        "-r",
        "--in-place",
        "f",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 0, skipped 2, failed 0");
    assert_eq!(env.tree("f"), done);
    // And back to KMS.
    env.run(&[
        "rewrap", "-q", "-k", &hsm_spec, "--to", &kms1, "-o", "back.enc", "f/m.enc",
    ])
    .ok();
    env.opens_only_with("back.enc", &kms1, &hsm_spec, &plain);
}

/// The messages of a crypto-shredding run (README, "Key rotation, escrow and
/// crypto-shredding"), made by `shred_steps_1_2`.
struct Shelf {
    /// `shelf/` file → plaintext: a.enc, b.enc, sub/c.enc under K (b.enc also under the
    /// escrow key), done.enc already under NEW only.
    plains: Vec<(&'static str, Vec<u8>)>,
}

/// Decrypts `name` with `key` into `check.out`: the run, and the plaintext on success (the
/// output is removed again).
fn decrypt(env: &Env, key: &str, name: &str) -> (Out, Option<Vec<u8>>) {
    let _ = fs::remove_file(env.path("check.out"));
    let out = env.run(&["decrypt", "-q", "-k", key, "-o", "check.out", name]);
    let plain = fs::read(env.path("check.out")).ok();
    let _ = fs::remove_file(env.path("check.out"));
    assert_eq!(out.code == 0, plain.is_some(), "{name}: {}", out.stderr);
    (out, plain)
}

/// The (provider id, key, files) of each key of `inspect --summary -r DIR`.
fn summary_keys(env: &Env, dir: &str) -> Vec<(String, String, u64)> {
    let out = env.run(&["inspect", "--summary", "-r", dir]).ok();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["unreadable"], serde_json::json!([]), "{json}");
    json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["provider_id"].as_str().unwrap().to_owned(),
                k["key"].as_str().unwrap().to_owned(),
                k["files"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Steps (1) and (2) of crypto-shredding key `k` (the keyring spec; `k_id` is the (provider
/// id, key) its EDKs name), moving to `new` (`new_id`), with `escrow` as a second key on one
/// message. Also makes `backup/`: copies of a.enc and b.enc from before the rewrap, and
/// checks that the backup of a.enc opens with K.
fn shred_steps_1_2(
    env: &Env,
    k: &str,
    k_id: (&str, &str),
    new: &str,
    new_id: (&str, &str),
    escrow: &str,
) -> Shelf {
    let plains = vec![
        ("a.enc", payload(100_000, 1)),
        ("b.enc", payload(5_000, 2)),
        ("sub/c.enc", Vec::new()),
        ("done.enc", payload(1_000, 3)),
    ];
    env.encrypt("shelf/a.enc", &plains[0].1, k, &[]);
    env.encrypt("shelf/b.enc", &plains[1].1, k, &["-k", escrow]);
    env.encrypt("shelf/sub/c.enc", &plains[2].1, k, &["--suite", "0478"]);
    env.encrypt("shelf/done.enc", &plains[3].1, new, &[]);
    fs::create_dir(env.path("backup")).unwrap();
    for name in ["a.enc", "b.enc"] {
        fs::copy(
            env.path(&format!("shelf/{name}")),
            env.path(&format!("backup/{name}")),
        )
        .unwrap();
    }
    let k_row = |files| (k_id.0.to_owned(), k_id.1.to_owned(), files);
    let new_row = |files| (new_id.0.to_owned(), new_id.1.to_owned(), files);
    let before = summary_keys(env, "shelf");
    assert!(before.contains(&k_row(3)), "{before:?}");
    assert!(before.contains(&new_row(1)), "{before:?}");
    let done = env.read("shelf/done.enc");

    // (1) Rewrap everything away from K. done.enc is not under K: skipped, untouched (without
    // --only-wrapped-by, K could not open it and it would fail).
    let out = env.run(&[
        "rewrap",
        "-q",
        "-k",
        k,
        "--to",
        new,
        "--only-wrapped-by",
        k,
        "-r",
        "--in-place",
        "shelf",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary(&out), "rewrapped 3, skipped 1, failed 0");
    eprintln!("shredding, rewrap of 3 files away from K: {:?}", out.took);
    assert_eq!(env.read("shelf/done.enc"), done);

    // (2) Nothing depends on K: the summary names no message under K (every message, the
    // escrowed b.enc included, is now under NEW alone), and every header opens with NEW.
    let after = summary_keys(env, "shelf");
    assert!(
        !after
            .iter()
            .any(|(p, key, _)| (p.as_str(), key.as_str()) == k_id),
        "{after:?}"
    );
    assert_eq!(after, [new_row(4)]);
    let out = env.run(&["inspect", "--summary", "-r", "--require-key", new, "shelf"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["missing_key"], serde_json::json!([]), "{json}");

    // Before K is destroyed, the old copy still opens with K.
    let (_, plain) = decrypt(env, k, "backup/a.enc");
    assert!(plain.as_deref() == Some(&plains[0].1[..]), "backup with K");
    Shelf { plains }
}

impl Shelf {
    /// After K is destroyed: every message of the shelf still opens with `new`, and the
    /// backup of b.enc with `escrow` (its second key: destroying K does not shred a copy
    /// that another key opens).
    fn still_readable(&self, env: &Env, new: &str, escrow: &str) {
        for (name, plain) in &self.plains {
            let (_, got) = decrypt(env, new, &format!("shelf/{name}"));
            assert!(got.as_ref() == Some(plain), "{name} with NEW");
        }
        let (_, got) = decrypt(env, escrow, "backup/b.enc");
        assert!(
            got.as_ref() == Some(&self.plains[1].1),
            "backup/b.enc with escrow"
        );
    }
}

#[test]
fn crypto_shredding_a_kms_key() {
    let moto = Moto::start();
    let (k, new) = (create_key(&moto), create_key(&moto));
    let (kms_k, kms_new) = (format!("aws-kms:{k}"), format!("aws-kms:{new}"));
    let env = Env::new(&moto);
    let shelf = shred_steps_1_2(
        &env,
        &kms_k,
        ("aws-kms", &k),
        &kms_new,
        ("aws-kms", &new),
        AES,
    );

    // (3) Destroy K: ScheduleKeyDeletion (moto then refuses Decrypt under K). By key id:
    // moto's ScheduleKeyDeletion fails on a key ARN (a KeyError, HTTP 500), which KMS takes.
    let key_id = k.rsplit('/').next().unwrap();
    let (rt, client) = moto::kms_client(&moto);
    let state = rt.block_on(async {
        client
            .schedule_key_deletion()
            .key_id(key_id)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ScheduleKeyDeletion: {e:?}\nmoto log:\n{}", moto.log()));
        // (moto's answer carries no KeyState: DescribeKey tells.)
        client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .expect("DescribeKey")
            .key_metadata
            .and_then(|m| m.key_state)
    });
    assert_eq!(state, Some(aws_sdk_kms::types::KeyState::PendingDeletion));

    // KMS refuses Decrypt under a key pending deletion (KMSInvalidStateException); moto
    // 5.2.6 does not (it decrypts under any key it holds), so the backup's refusal cannot be
    // checked against it.

    shelf.still_readable(&env, &kms_new, AES);
    // A rotated message does not open with K: it names no EDK under K (KMS is not asked).
    let (out, _) = decrypt(&env, &kms_k, "shelf/a.enc");
    eprintln!(
        "KMS, rotated file with the deleted key: {} {}",
        out.code, out.stderr
    );
    out.fails(1);
}

#[cfg(feature = "pkcs11")]
#[test]
fn crypto_shredding_an_hsm_key() {
    const TOKEN: &str = "shred-token";
    const PIN: &str = "shred-pin-9753";
    const NEW: &str = "raw-aes:site:key-2026:knew.key";
    let _serial = softhsm::serial();
    let hsm = softhsm::SoftHsm::create("cli-shred");
    hsm.init_token(TOKEN, PIN, "shred-so-pin-8642");
    hsm.generate_aes(TOKEN, PIN, "key-2025", "25");
    let hsm_k = format!(
        "pkcs11:token={TOKEN};object=key-2025?module-path={}",
        hsm.module.display()
    );

    // No KMS here: an address nothing listens on.
    let mut env = Env::with_endpoint(&format!("http://127.0.0.1:{}", moto::free_port()));
    env.hsm = Some((hsm.conf.clone(), PIN));
    fs::write(env.path("knew.key"), [0x26; 32]).unwrap();
    fs::set_permissions(env.path("knew.key"), fs::Permissions::from_mode(0o600)).unwrap();
    let shelf = shred_steps_1_2(
        &env,
        &hsm_k,
        ("pkcs11", "key-2025"),
        NEW,
        ("site", "key-2026"),
        AES,
    );

    // (3) Destroy K: delete the token's key object.
    let args = [
        "--delete-object",
        "--type",
        "secrkey",
        "--label",
        "key-2025",
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let out = hsm.pkcs11_tool(TOKEN, PIN, &args);
    assert!(
        out.status.success(),
        "pkcs11-tool --delete-object: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    shelf.still_readable(&env, NEW, AES);
    // The backup no longer opens with K, nor does a rotated message: the keyring cannot be
    // made (exit 2, as for any spec naming no key in the token).
    for name in ["backup/a.enc", "shelf/a.enc"] {
        let (out, _) = decrypt(&env, &hsm_k, name);
        eprintln!(
            "PKCS#11, {name} with the deleted key: {} {}",
            out.code, out.stderr
        );
        let out = out.fails(2);
        assert!(
            out.stderr.contains(&format!(
                "PKCS#11 token \"{TOKEN}\" object \"key-2025\": no such key in the token"
            )),
            "{}",
            out.stderr
        );
    }
}
