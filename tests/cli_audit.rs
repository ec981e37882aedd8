//! The audit trail through the tool (`CLI.md`, "audit"): `keygen audit`, `--audit-log`
//! (and `ENVCRYPT_AUDIT_LOG`), `--audit-signing-key`, `audit verify`; fail closed; the
//! failures it records with their kind, KMS outages and refusals included (moto).

#[path = "common/moto.rs"]
mod moto;
#[cfg(feature = "pkcs11")]
#[path = "common/softhsm.rs"]
mod softhsm;
#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::process::Command;

use serde_json::Value;
use tool::{Out, Scratch as Env};

const KA: &str = "raw-aes:hosp:key-a:a.key";
const KB: &str = "raw-aes:hosp:key-b:b.key";
const SECRET_VALUE: &str = "MRN-0042-never-logged";
const PLAINTEXT: &[u8] = b"DICM pixel data of DOE^JANE";

impl Env {
    fn new() -> Self {
        let env = Self::empty();
        env.run(&["keygen", "aes256", "-o", "a.key"]).ok();
        env.run(&["keygen", "aes256", "-o", "b.key"]).ok();
        env.run(&["keygen", "audit", "-o", "signer"]).ok();
        env.write("scan.dcm", PLAINTEXT);
        env
    }

    /// The tool with the log and the signing key.
    fn audited(&self, args: &[&str]) -> Out {
        let mut all = vec![
            "--audit-log",
            "audit.jsonl",
            "--audit-signing-key",
            "signer.pem",
        ];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn events(&self) -> Vec<Value> {
        String::from_utf8(self.read("audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    fn verify(&self) -> Out {
        self.run(&[
            "audit",
            "verify",
            "--public-key",
            "signer.pub.pem",
            "audit.jsonl",
        ])
    }
}

fn ops(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["op"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn operations_and_key_use_are_recorded_and_verify() {
    let env = Env::new();
    let ctx = format!("mrn={SECRET_VALUE}");
    env.audited(&[
        "encrypt", "-q", "-k", KA, "-k", KB, "-c", &ctx, "-o", "scan.enc", "scan.dcm",
    ])
    .ok();
    env.audited(&["decrypt", "-q", "-k", KB, "-o", "scan.out", "scan.enc"])
        .ok();
    env.audited(&[
        "rewrap",
        "-q",
        "-k",
        KB,
        "--to",
        KA,
        "-o",
        "scan.v2.enc",
        "scan.enc",
    ])
    .ok();
    env.audited(&["inspect", "--summary", "--require-key", KA, "scan.v2.enc"])
        .ok();
    // Commands that use no key record nothing.
    env.audited(&["inspect", "scan.enc"]).ok();
    env.audited(&["info"]).ok();

    let events = env.events();
    assert_eq!(
        ops(&events),
        [
            "generate:ok",
            "wrap:ok",
            "encrypt:ok",
            "checkpoint:ok",
            "unwrap:ok",
            "decrypt:ok",
            "checkpoint:ok",
            "unwrap:ok",
            "generate:ok",
            "rewrap:ok",
            "checkpoint:ok",
            "unwrap:ok",
            "require-key:ok",
            "checkpoint:ok",
        ]
    );
    let encrypt = &events[2];
    assert_eq!(encrypt["path"], "scan.dcm");
    assert_eq!(encrypt["suite"], "0x0578");
    assert_eq!(encrypt["bytes"], PLAINTEXT.len());
    let keys: Vec<&str> = encrypt["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["key-a", "key-b"]);
    // The message id is the one inspect reports.
    let header: Value =
        serde_json::from_str(&env.run(&["inspect", "scan.enc"]).ok().stdout_str()).unwrap();
    assert_eq!(encrypt["message_id"], header["message_id"]);
    let decrypt = &events[5];
    assert_eq!(decrypt["message_id"], header["message_id"]);
    assert_eq!(decrypt["unwrapped_by"]["key"], "key-b", "{decrypt}");
    assert_eq!(decrypt["bytes"], PLAINTEXT.len());
    let rewrap = &events[9];
    assert_ne!(rewrap["message_id"], header["message_id"]);
    assert_eq!(rewrap["unwrapped_by"]["key"], "key-b");
    for field in [
        "seq", "time", "op", "outcome", "user", "host", "version", "prev", "hash",
    ] {
        assert!(encrypt.get(field).is_some(), "no {field}: {encrypt}");
    }

    let out = env.verify().ok();
    let summary: Value = serde_json::from_str(&out.stdout_str()).unwrap();
    assert_eq!(summary["events"], 10);
    assert_eq!(summary["checkpoints"], 4);
    assert_eq!(summary["key_pinned"], true);

    // Nothing secret in the log: key bytes (as stored), context value, plaintext.
    let log = env.read("audit.jsonl");
    for needle in [
        env.read("a.key").trim_ascii().to_vec(),
        env.read("b.key").trim_ascii().to_vec(),
        SECRET_VALUE.as_bytes().to_vec(),
        PLAINTEXT.to_vec(),
    ] {
        assert!(
            !log.windows(needle.len()).any(|w| w == needle.as_slice()),
            "log holds {:?}",
            String::from_utf8_lossy(&needle)
        );
    }
}

#[test]
fn verify_names_the_first_broken_line() {
    let env = Env::new();
    env.audited(&["encrypt", "-q", "-k", KA, "-o", "scan.enc", "scan.dcm"])
        .ok();
    env.audited(&["decrypt", "-q", "-k", KA, "-o", "scan.out", "scan.enc"])
        .ok();
    let original = fs::read_to_string(env.path("audit.jsonl")).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // An edited path on line 2.
    env.write(
        "audit.jsonl",
        original
            .replacen("\"path\":\"scan.dcm\"", "\"path\":\"other.dcm\"", 1)
            .as_bytes(),
    );
    let out = env.verify().fails(1);
    assert!(out.stderr.contains("line 2: edited"), "{}", out.stderr);

    // Line 4 removed.
    let mut removed = lines.clone();
    removed.remove(3);
    env.write(
        "audit.jsonl",
        format!("{}\n", removed.join("\n")).as_bytes(),
    );
    let out = env.verify().fails(1);
    assert!(
        out.stderr.contains("line 4: does not follow"),
        "{}",
        out.stderr
    );

    // Signed by another key: verify pins ours.
    env.write("audit.jsonl", original.as_bytes());
    env.run(&["keygen", "audit", "-o", "other"]).ok();
    let out = env
        .run(&[
            "audit",
            "verify",
            "--public-key",
            "other.pub.pem",
            "audit.jsonl",
        ])
        .fails(1);
    assert!(out.stderr.contains("another key"), "{}", out.stderr);

    // Intact again.
    env.verify().ok();
    // Not a log at all, a missing one, a bad key file.
    env.write("junk.jsonl", b"hello\n");
    let out = env.run(&["audit", "verify", "junk.jsonl"]).fails(1);
    assert!(
        out.stderr.contains("line 1: not a chained audit line"),
        "{}",
        out.stderr
    );
    env.run(&["audit", "verify", "missing.jsonl"]).fails(3);
    env.run(&["audit", "verify", "--public-key", "a.key", "audit.jsonl"])
        .fails(2);
}

#[test]
fn an_unwritable_log_stops_the_run_with_no_output() {
    let env = Env::new();
    env.write("study/a.dcm", PLAINTEXT);
    env.write("study/b.dcm", PLAINTEXT);
    // /dev/full opens and takes a lock but refuses every write.
    for args in [
        vec![
            "--audit-log",
            "/dev/full",
            "encrypt",
            "-q",
            "-k",
            KA,
            "-o",
            "scan.enc",
            "scan.dcm",
        ],
        vec![
            "--audit-log",
            "/dev/full",
            "encrypt",
            "-q",
            "-k",
            KA,
            "-r",
            "-o",
            "out",
            "study",
        ],
    ] {
        let out = env.run(&args).fails_each(3);
        assert!(out.stderr.contains("audit"), "{}", out.stderr);
    }
    assert!(!env.exists("scan.enc"));
    assert!(
        fs::read_dir(env.path("out"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    // A log in a folder that does not exist: refused before anything is read.
    let out = env
        .run(&[
            "--audit-log",
            "nowhere/audit.jsonl",
            "encrypt",
            "-q",
            "-k",
            KA,
            "-o",
            "scan.enc",
            "scan.dcm",
        ])
        .fails(3);
    assert!(out.stderr.contains("audit log"), "{}", out.stderr);
    assert!(!env.exists("scan.enc"));
    // A damaged log is not appended to.
    env.write("damaged.jsonl", b"{\"seq\":1");
    env.run(&[
        "--audit-log",
        "damaged.jsonl",
        "encrypt",
        "-q",
        "-k",
        KA,
        "-o",
        "scan.enc",
        "scan.dcm",
    ])
    .fails(3);
    assert!(!env.exists("scan.enc"));
    // Failing open on request: the run goes on.
    env.run(&[
        "--audit-log",
        "/dev/full",
        "--audit-fail-open",
        "encrypt",
        "-q",
        "-k",
        KA,
        "-o",
        "scan.enc",
        "scan.dcm",
    ])
    .ok();
    assert!(env.exists("scan.enc"));
}

#[test]
fn a_failed_decrypt_is_recorded_with_its_kind() {
    let env = Env::new();
    // Unsigned, so that the last byte is the last frame's tag.
    env.audited(&[
        "encrypt", "-q", "--suite", "0478", "-k", KA, "-o", "scan.enc", "scan.dcm",
    ])
    .ok();
    // The wrong key, then a tampered message.
    env.audited(&["decrypt", "-q", "-k", KB, "-o", "x", "scan.enc"])
        .fails(1);
    let mut bytes = env.read("scan.enc");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    env.write("bad.enc", &bytes);
    env.audited(&["decrypt", "-q", "-k", KA, "-o", "y", "bad.enc"])
        .fails(1);
    assert!(!env.exists("x") && !env.exists("y"));
    let events = env.events();
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["outcome"] == "failed")
        .map(|e| (e["op"].as_str().unwrap(), e["error_kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            ("unwrap", "authentication"),
            ("decrypt", "authentication"),
            ("decrypt", "authentication")
        ]
    );
    let tampered = events.iter().rfind(|e| e["op"] == "decrypt").unwrap();
    assert_eq!(tampered["path"], "bad.enc");
    env.verify().ok();
}

#[test]
fn environment_variable_and_flag_rules() {
    let env = Env::new();
    let mut cmd = tool::command(
        env.dir.path(),
        &["encrypt", "-q", "-k", KA, "-o", "scan.enc", "scan.dcm"],
    );
    cmd.env("ENVCRYPT_AUDIT_LOG", env.path("env.jsonl"));
    tool::run(cmd, None).ok();
    let text = fs::read_to_string(env.path("env.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    // A signing key needs a log; keygen refuses to overwrite.
    env.run(&[
        "--audit-signing-key",
        "signer.pem",
        "encrypt",
        "-q",
        "-k",
        KA,
        "-o",
        "z",
        "scan.dcm",
    ])
    .fails(2);
    env.run(&["keygen", "audit", "-o", "signer"]).fails(2);
    // A private key file others can write is refused.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(env.path("signer.pem"), fs::Permissions::from_mode(0o666)).unwrap();
    let out = env
        .audited(&["encrypt", "-q", "-k", KA, "-o", "z", "scan.dcm"])
        .fails(2);
    assert!(out.stderr.contains("audit signing key"), "{}", out.stderr);
    assert_eq!(
        fs::metadata(env.path("a.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

/// KMS through moto: an outage (server stopped) is recorded with its kind, and the run
/// exits 4 with no output.
#[cfg(feature = "aws-kms")]
#[test]
fn a_kms_outage_is_recorded() {
    let mut moto = moto::Moto::start();
    let (_, live) = moto::create_key(&moto);
    let env = Env::new();
    let endpoint = moto.endpoint.clone();
    let kms = |args: &[&str]| -> Out {
        let mut all = vec![
            "--audit-log",
            "audit.jsonl",
            "--audit-signing-key",
            "signer.pem",
        ];
        all.extend_from_slice(args);
        let mut cmd = Command::new(tool::bin());
        cmd.args(&all)
            .current_dir(env.dir.path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ENDPOINT_URL_KMS", &endpoint)
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_CONFIG_FILE", env.path("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", env.path("no-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        tool::run(cmd, None)
    };
    let k_live = format!("aws-kms:{live}");
    kms(&["encrypt", "-q", "-k", &k_live, "-o", "ok.enc", "scan.dcm"]).ok();
    moto.stop();
    kms(&["decrypt", "-q", "-k", &k_live, "-o", "down.out", "ok.enc"]).fails(4);
    kms(&["encrypt", "-q", "-k", &k_live, "-o", "down.enc", "scan.dcm"]).fails(4);
    assert!(!env.exists("down.out") && !env.exists("down.enc"));

    let events = env.events();
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["outcome"] == "failed")
        .map(|e| (e["op"].as_str().unwrap(), e["error_kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [
            ("unwrap", "keyring-unavailable"),
            ("decrypt", "keyring-unavailable"),
            ("generate", "keyring-unavailable"),
            ("encrypt", "keyring-unavailable"),
        ]
    );
    let unwrap = events.iter().find(|e| e["op"] == "unwrap").unwrap();
    assert_eq!(unwrap["keys"][0]["key"], live.as_str());
    env.verify().ok();
}

/// An HSM that refuses the PIN: recorded as refused, the PIN nowhere in the log.
#[cfg(feature = "pkcs11")]
#[test]
fn an_hsm_refusal_is_recorded_without_the_pin() {
    const PIN: &str = "4711-right";
    const WRONG: &str = "0815-wrong";
    let hsm = softhsm::SoftHsm::create("cli-audit");
    hsm.init_token("audit", PIN, "so-pin-4711");
    hsm.generate_aes("audit", PIN, "kek", "01");
    let env = Env::new();
    let spec = format!(
        "pkcs11:token=audit;object=kek?module-path={}",
        hsm.module.display()
    );
    let run = |pin: &str, args: &[&str]| -> Out {
        let mut all = vec![
            "--audit-log",
            "audit.jsonl",
            "--audit-signing-key",
            "signer.pem",
        ];
        all.extend_from_slice(args);
        let mut cmd = Command::new(tool::bin());
        cmd.args(&all)
            .current_dir(env.dir.path())
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("ENVCRYPT_PKCS11_PIN", pin);
        tool::run(cmd, None)
    };
    run(
        PIN,
        &["encrypt", "-q", "-k", &spec, "-o", "scan.enc", "scan.dcm"],
    )
    .ok();
    run(
        WRONG,
        &["decrypt", "-q", "-k", &spec, "-o", "scan.out", "scan.enc"],
    )
    .fails(4);
    assert!(!env.exists("scan.out"));
    let events = env.events();
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["outcome"] == "failed")
        .map(|e| (e["op"].as_str().unwrap(), e["error_kind"].as_str().unwrap()))
        .collect();
    // The login is refused when the keyring is set up, before any message is read: the
    // refusal is the one event, naming the key.
    assert_eq!(failed, [("unwrap", "keyring-refused")]);
    let refused = events.iter().find(|e| e["outcome"] == "failed").unwrap();
    assert_eq!(refused["keys"][0]["key"], "kek", "{refused}");
    let log = env.read("audit.jsonl");
    for pin in [PIN, WRONG] {
        assert!(
            !log.windows(pin.len()).any(|w| w == pin.as_bytes()),
            "PIN in the log"
        );
    }
    env.verify().ok();
}
