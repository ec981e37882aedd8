//! Where the `envcrypt` tool takes a PKCS#11 PIN from, against a real SoftHSM2 token:
//! `pin-source=FILE` in the `-k pkcs11:` URI (a path or a `file:` URI; trailing newline
//! stripped) works and is checked like a key file (refused when group or others can write
//! it, or when it is not a regular file: exit 2, nothing written); `pin-value` still works
//! but warns on stderr, even with `-q`, that the PIN is visible in `ps`; both at once are a
//! usage error. The PIN never appears on stdout or stderr.
//!
//! Needs SoftHSM2 and OpenSC (see `tests/common/softhsm.rs`) and the tool built with
//! `--features pkcs11` (the binary of `tests/common/cli.rs` has this test's features).
#![cfg(feature = "pkcs11")]

#[path = "common/softhsm.rs"]
mod softhsm;
#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use softhsm::SoftHsm;
use tool::Out;

const TOKEN: &str = "pin-source-token";
const PIN: &str = "pin-file-4711";
const SO_PIN: &str = "pin-file-so-0815";
const LABEL: &str = "pin-file-aes";

fn hsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::create("cli-pkcs11-pin");
        hsm.init_token(TOKEN, PIN, SO_PIN);
        hsm.generate_aes(TOKEN, PIN, LABEL, "07");
        hsm
    })
}

/// The key's URI with `query` appended (`&...`).
fn spec(query: &str) -> String {
    format!(
        "pkcs11:token={TOKEN};object={LABEL}?module-path={}{query}",
        hsm().module.display()
    )
}

/// Runs the tool in `dir` against the token, without `ENVCRYPT_PKCS11_PIN`; checks the PIN
/// appears in no output.
fn run(dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(tool::bin());
    cmd.args(args)
        .current_dir(dir)
        .env("SOFTHSM2_CONF", &hsm().conf)
        .env_remove("ENVCRYPT_PKCS11_PIN");
    let out = tool::run(cmd, None);
    assert!(!out.stderr.contains(PIN), "PIN on stderr: {}", out.stderr);
    assert!(
        !out.stdout.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
        "PIN on stdout"
    );
    out
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn pin_source_file_round_trip() {
    let _serial = softhsm::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), b"scan").unwrap();
    let pin_file = d.join("pin");
    fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    chmod(&pin_file, 0o600);

    let k = spec(&format!("&pin-source={}", pin_file.display()));
    let out = run(d, &["encrypt", "-q", "-k", &k, "-o", "m.enc", "plain"]).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    // The file: URI form, and a relative path.
    let k_uri = spec(&format!("&pin-source=file:{}", pin_file.display()));
    let out = run(d, &["decrypt", "-q", "-k", &k_uri, "-o", "m.dec", "m.enc"]).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(fs::read(d.join("m.dec")).unwrap(), b"scan");
    run(
        d,
        &[
            "decrypt",
            "-q",
            "-k",
            &spec("&pin-source=pin"),
            "-o",
            "r.dec",
            "m.enc",
        ],
    )
    .ok();

    // Readable by others: works, with a warning even under -q.
    chmod(&pin_file, 0o644);
    let out = run(d, &["decrypt", "-q", "-k", &k, "-o", "w.dec", "m.enc"]).ok();
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("readable by group or others"),
        "{}",
        out.stderr
    );

    // A wrong PIN in the file: refused by the token, exit 4.
    fs::write(d.join("wrong"), "0000-wrong\n").unwrap();
    chmod(&d.join("wrong"), 0o600);
    run(
        d,
        &[
            "decrypt",
            "-q",
            "-k",
            &spec("&pin-source=wrong"),
            "-o",
            "x.dec",
            "m.enc",
        ],
    )
    .fails(4);
    assert!(!d.join("x.dec").exists());
}

#[test]
fn writable_or_odd_pin_files_are_refused() {
    let _serial = softhsm::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), b"scan").unwrap();
    let pin_file = d.join("pin");
    fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let k = spec(&format!("&pin-source={}", pin_file.display()));

    for mode in [0o666, 0o620, 0o602] {
        chmod(&pin_file, mode);
        let out = run(d, &["encrypt", "-q", "-k", &k, "-o", "m.enc", "plain"]).fails(2);
        assert!(
            out.stderr.contains("writable by group or others") && out.stderr.contains("pin"),
            "{mode:o}: {}",
            out.stderr
        );
        assert!(!d.join("m.enc").exists());
    }
    // Not a regular file; no such file; pin-value and pin-source together.
    fs::create_dir(d.join("pin-dir")).unwrap();
    let out = run(
        d,
        &[
            "encrypt",
            "-q",
            "-k",
            &spec("&pin-source=pin-dir"),
            "-o",
            "m.enc",
            "plain",
        ],
    )
    .fails(2);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    run(
        d,
        &[
            "encrypt",
            "-q",
            "-k",
            &spec("&pin-source=nope"),
            "-o",
            "m.enc",
            "plain",
        ],
    )
    .fails(3);
    chmod(&pin_file, 0o600);
    let both = spec(&format!("&pin-source=pin&pin-value={PIN}"));
    let out = run(d, &["encrypt", "-q", "-k", &both, "-o", "m.enc", "plain"]).fails(2);
    assert!(out.stderr.contains("not both"), "{}", out.stderr);
    assert!(!d.join("m.enc").exists());
}

#[test]
fn pin_value_warns_even_when_quiet() {
    let _serial = softhsm::serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), b"scan").unwrap();
    let k = spec(&format!("&pin-value={PIN}"));
    let out = run(d, &["encrypt", "-q", "-k", &k, "-o", "m.enc", "plain"]).ok();
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("envcrypt: warning: ")
            && lines[0].contains("pin-value")
            && lines[0].contains("pin-source"),
        "{}",
        out.stderr
    );
    // The environment variable: no warning.
    let mut cmd = Command::new(tool::bin());
    cmd.args(["decrypt", "-q", "-k", &spec(""), "-o", "m.dec", "m.enc"])
        .current_dir(d)
        .env("SOFTHSM2_CONF", &hsm().conf)
        .env("ENVCRYPT_PKCS11_PIN", PIN);
    let out = tool::run(cmd, None).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(fs::read(d.join("m.dec")).unwrap(), b"scan");
}
