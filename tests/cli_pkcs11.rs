//! The `envcrypt` tool with `-k pkcs11:...` against a real SoftHSM2 token.
//!
//! The token lives in a temporary directory handed to the tool through `SOFTHSM2_CONF`; the
//! PIN goes through `ENVCRYPT_PKCS11_PIN` (or the URI's `pin-value`) and is checked never to
//! appear on stdout or stderr. Covered: AES and RSA round trips, the EDK as `inspect` shows
//! it, escrow (a message wrapped by the HSM's imported key decrypts with `raw-aes` and the
//! same key bytes, and the other way round), wrong or missing PIN (exit 4), missing token
//! (exit 4) and missing key (exit 2), with no output file left behind.
//!
//! The tool must be built with `--features pkcs11`: the binary of `tests/common/cli.rs`
//! is built with this test's features and checked once to have the keyring. Needs SoftHSM2 and OpenSC (see
//! `tests/common/softhsm.rs`).
#![cfg(feature = "pkcs11")]

#[path = "common/softhsm.rs"]
mod softhsm;
#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;
use softhsm::SoftHsm;
use tool::Out;

const TOKEN: &str = "cli-token";
const PIN: &str = "cli-pin-8642";
const SO_PIN: &str = "cli-so-pin-97531";
const AES_LABEL: &str = "escrowed-aes";
const RSA_LABEL: &str = "hsm-rsa";

fn key_bytes() -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(71).wrapping_add(19))
        .collect()
}

fn hsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::create("cli-pkcs11");
        hsm.init_token(TOKEN, PIN, SO_PIN);
        hsm.import_aes(TOKEN, PIN, AES_LABEL, "01", &key_bytes());
        hsm.generate_rsa(TOKEN, PIN, RSA_LABEL, "02", 2048);
        hsm
    })
}

/// The tool (see `tests/common/cli.rs`), checked once to have the PKCS#11 keyring.
fn bin() -> &'static Path {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    let bin = tool::bin();
    CHECKED.call_once(|| {
        assert!(
            supports_pkcs11(bin),
            "{} has no pkcs11 keyring (built without --features pkcs11?)",
            bin.display()
        );
    });
    bin
}

/// True when the binary tries to load the module of a `pkcs11:` spec (a build without the
/// feature answers "not yet supported in this build" instead).
fn supports_pkcs11(bin: &Path) -> bool {
    let out = Command::new(bin)
        .args([
            "encrypt",
            "-q",
            "-k",
            "pkcs11:token=t;object=o?module-path=/nonexistent/libpkcs11.so",
            "-o",
            "/nonexistent-dir/out",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run envcrypt");
    String::from_utf8_lossy(&out.stderr).contains("cannot load the PKCS#11 module")
}

/// Runs the tool in `dir` with the token's `SOFTHSM2_CONF` and `pin` (if any) in
/// `ENVCRYPT_PKCS11_PIN`; checks the PIN appears in no output.
fn run(dir: &Path, pin: Option<&str>, args: &[&str]) -> Out {
    let hsm = hsm();
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(dir)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env_remove("ENVCRYPT_PKCS11_PIN");
    if let Some(pin) = pin {
        cmd.env("ENVCRYPT_PKCS11_PIN", pin);
    }
    let out = tool::run(cmd, None);
    for secret in [PIN, "wrong-pin-1111"] {
        assert!(
            !out.stderr.contains(secret),
            "PIN on stderr: {}",
            out.stderr
        );
        assert!(
            !out.stdout
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "PIN on stdout"
        );
    }
    out
}

fn spec(object: &str) -> String {
    format!(
        "pkcs11:token={TOKEN};object={object}?module-path={}",
        hsm().module.display()
    )
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

#[test]
fn round_trips_with_the_tool() {
    let _serial = softhsm::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = payload(200_000);
    fs::write(d.join("plain"), &data).unwrap();
    for object in [AES_LABEL, RSA_LABEL] {
        let k = spec(object);
        let enc = format!("{object}.enc");
        let dec = format!("{object}.dec");
        run(
            d,
            Some(PIN),
            &[
                "encrypt",
                "-q",
                "-k",
                &k,
                "-c",
                "study=ct",
                "--frame-length",
                "4096",
                "-o",
                &enc,
                "plain",
            ],
        )
        .ok();
        run(
            d,
            Some(PIN),
            &[
                "decrypt", "-q", "-k", &k, "-c", "study=ct", "-o", &dec, &enc,
            ],
        )
        .ok();
        assert_eq!(fs::read(d.join(&dec)).unwrap(), data, "{object}");

        let inspect = run(d, None, &["inspect", &enc]).ok();
        let header: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        let edk = &header["encrypted_data_keys"][0];
        assert_eq!(edk["provider_id"], "pkcs11");
        let info = base64::engine::general_purpose::STANDARD
            .decode(edk["provider_info"].as_str().unwrap())
            .unwrap();
        assert!(info.starts_with(object.as_bytes()), "{object}");
        if object == AES_LABEL {
            assert_eq!(info.len(), object.len() + 8 + 12);
            assert_eq!(edk["ciphertext_length"], 48);
        } else {
            assert_eq!(info, object.as_bytes());
            assert_eq!(edk["ciphertext_length"], 256);
        }
    }

    // The PIN in the URI instead of the environment, with a custom namespace and name.
    let k = format!(
        "{}&pin-value={PIN}&namespace=hsm&name=escrow-2026",
        spec(AES_LABEL)
    );
    run(
        d,
        None,
        &["encrypt", "-q", "-k", &k, "-o", "uri.enc", "plain"],
    )
    .ok();
    run(
        d,
        None,
        &["decrypt", "-q", "-k", &k, "-o", "uri.dec", "uri.enc"],
    )
    .ok();
    assert_eq!(fs::read(d.join("uri.dec")).unwrap(), data);

    // Escrow: the same key bytes as a raw-aes keyring read and write the HSM's messages.
    fs::write(
        d.join("escrow.key"),
        base64::engine::general_purpose::STANDARD.encode(key_bytes()),
    )
    .unwrap();
    let raw = "raw-aes:hsm:escrow-2026:escrow.key";
    run(
        d,
        None,
        &["decrypt", "-q", "-k", raw, "-o", "raw.dec", "uri.enc"],
    )
    .ok();
    assert_eq!(fs::read(d.join("raw.dec")).unwrap(), data);
    run(
        d,
        None,
        &["encrypt", "-q", "-k", raw, "-o", "raw.enc", "plain"],
    )
    .ok();
    run(
        d,
        None,
        &["decrypt", "-q", "-k", &k, "-o", "raw-hsm.dec", "raw.enc"],
    )
    .ok();
    assert_eq!(fs::read(d.join("raw-hsm.dec")).unwrap(), data);
}

#[test]
fn refusals_have_exit_codes_and_hide_the_pin() {
    let _serial = softhsm::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), b"data").unwrap();
    let k = spec(AES_LABEL);
    run(
        d,
        Some(PIN),
        &["encrypt", "-q", "-k", &k, "-o", "m.enc", "plain"],
    )
    .ok();

    // Wrong PIN, from the environment or the URI; no PIN at all: access denied, exit 4.
    let uri_wrong = format!("{k}&pin-value=wrong-pin-1111");
    for (pin, spec) in [
        (Some("wrong-pin-1111"), k.as_str()),
        (None, uri_wrong.as_str()),
        (None, k.as_str()),
    ] {
        // (A PIN in pin-value adds a warning line.)
        let out = run(
            d,
            pin,
            &["decrypt", "-q", "-k", spec, "-o", "m.dec", "m.enc"],
        )
        .fails_each(4);
        assert!(
            out.stderr.contains("PIN") || out.stderr.contains("access denied"),
            "{}",
            out.stderr
        );
        assert!(!d.join("m.dec").exists());
        run(
            d,
            pin,
            &["encrypt", "-q", "-k", spec, "-o", "n.enc", "plain"],
        )
        .fails_each(4);
        assert!(!d.join("n.enc").exists());
    }
    // No such token: unavailable, exit 4. No such key: usage, exit 2.
    let no_token = k.replace(TOKEN, "no-such-token");
    run(
        d,
        Some(PIN),
        &["encrypt", "-q", "-k", &no_token, "-o", "n.enc", "plain"],
    )
    .fails(4);
    let out = run(
        d,
        Some(PIN),
        &[
            "encrypt",
            "-q",
            "-k",
            &spec("no-such-key"),
            "-o",
            "n.enc",
            "plain",
        ],
    )
    .fails(2);
    assert!(out.stderr.contains("no such key"), "{}", out.stderr);
    // A malformed URI: usage, exit 2, the PIN not echoed.
    let bad = format!("{k}&pin-value=wrong-pin-1111&bogus=1");
    run(
        d,
        None,
        &["encrypt", "-q", "-k", &bad, "-o", "n.enc", "plain"],
    )
    .fails(2);
    assert!(!d.join("n.enc").exists());
    // The right PIN still decrypts.
    run(
        d,
        Some(PIN),
        &["decrypt", "-q", "-k", &k, "-o", "m.dec", "m.enc"],
    )
    .ok();
    assert_eq!(fs::read(d.join("m.dec")).unwrap(), b"data");
}
