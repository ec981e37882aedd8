//! The `envcrypt` tool and the permissions of secret key files (raw AES keys, RSA private
//! keys): refused when group or others can write them or when they are not regular files
//! (exit 2, the path named, never the key), a warning on stderr (even with `-q`) when group
//! or others can read them, symbolic links to good files accepted, public keys unchecked,
//! and `keygen` writing private keys with mode 0600.

#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::process::Command;

use tool::{Out, Scratch as Env};

/// A scratch directory with a plaintext `p`.
impl Env {
    fn new() -> Self {
        let env = Self::empty();
        fs::write(env.path("p"), b"patient scan bytes").unwrap();
        env
    }

    fn chmod(&self, name: &str, mode: u32) {
        fs::set_permissions(self.path(name), fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mode(&self, name: &str) -> u32 {
        fs::metadata(self.path(name)).unwrap().permissions().mode() & 0o777
    }
}

/// `stderr` names `name` and is free of every line of the key file `key`.
#[track_caller]
fn names_path_not_key(out: &Out, name: &str, key: &[u8]) {
    assert!(out.stderr.contains(name), "{}", out.stderr);
    for line in String::from_utf8_lossy(key).lines() {
        let line = line.trim();
        if line.len() > 8 && !line.starts_with("-----") {
            assert!(!out.stderr.contains(line), "key material on stderr");
        }
    }
}

#[test]
fn aes_key_files_writable_by_others_are_refused() {
    let env = Env::new();
    env.run(&["keygen", "aes256", "-o", "site.key"]).ok();
    assert_eq!(env.mode("site.key"), 0o600, "keygen writes 0600");
    let key = fs::read(env.path("site.key")).unwrap();
    let spec = "raw-aes:ns:k:site.key";

    for mode in [0o666, 0o620, 0o602, 0o622] {
        env.chmod("site.key", mode);
        let out = env
            .run(&["encrypt", "-q", "-k", spec, "-o", "p.enc", "p"])
            .fails(2);
        assert!(
            out.stderr.contains("writable by group or others"),
            "{mode:o}: {}",
            out.stderr
        );
        names_path_not_key(&out, "site.key", &key);
        assert!(!env.exists("p.enc"), "{mode:o}: no output");
    }

    // 0600: silent; 0640 / 0604: works, with a warning even under -q.
    env.chmod("site.key", 0o600);
    let out = env
        .run(&["encrypt", "-q", "-k", spec, "-o", "p.enc", "p"])
        .ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    for mode in [0o640, 0o604] {
        env.chmod("site.key", mode);
        let out = env
            .run(&[
                "decrypt", "-q", "-k", spec, "-o", "p.out", "--force", "p.enc",
            ])
            .ok();
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.starts_with("envcrypt: warning: ")
                && out.stderr.contains("readable by group or others"),
            "{mode:o}: {}",
            out.stderr
        );
        names_path_not_key(&out, "site.key", &key);
        assert_eq!(fs::read(env.path("p.out")).unwrap(), b"patient scan bytes");
    }
}

#[test]
fn aes_key_files_must_be_regular_files_links_are_followed() {
    let env = Env::new();
    env.run(&["keygen", "aes256", "-o", "site.key"]).ok();
    let key = fs::read(env.path("site.key")).unwrap();

    // A link to a 0600 regular file (as Kubernetes mounts secrets: ..data/key): fine.
    fs::create_dir(env.path("..data")).unwrap();
    fs::rename(env.path("site.key"), env.path("..data/site.key")).unwrap();
    symlink("..data/site.key", env.path("link.key")).unwrap();
    let out = env
        .run(&[
            "encrypt",
            "-q",
            "-k",
            "raw-aes:ns:k:link.key",
            "-o",
            "p.enc",
            "p",
        ])
        .ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    // ... but the file it points to is what is checked.
    fs::set_permissions(
        env.path("..data/site.key"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let out = env
        .run(&[
            "encrypt",
            "-q",
            "-k",
            "raw-aes:ns:k:link.key",
            "-o",
            "q.enc",
            "p",
        ])
        .fails(2);
    assert!(out.stderr.contains("link.key"), "{}", out.stderr);
    names_path_not_key(&out, "writable by group or others", &key);

    // A directory and a FIFO (which must not block the open) are not key files.
    fs::create_dir(env.path("dir.key")).unwrap();
    let status = Command::new("mkfifo")
        .arg(env.path("fifo.key"))
        .status()
        .expect("mkfifo");
    assert!(status.success());
    for name in ["dir.key", "fifo.key", "/dev/null"] {
        let spec = format!("raw-aes:ns:k:{name}");
        let out = env
            .run(&["encrypt", "-q", "-k", &spec, "-o", "q.enc", "p"])
            .fails(2);
        assert!(
            out.stderr.contains(name) && out.stderr.contains("not a regular file"),
            "{name}: {}",
            out.stderr
        );
        assert!(out.took.as_secs() < 20, "{name}: took {:?}", out.took);
    }
    assert!(!env.exists("q.enc"));
}

// RSA needs a provider that has it (RustCrypto alone has none).
#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn rsa_private_keys_are_checked_public_keys_are_not() {
    let env = Env::new();
    env.run(&["keygen", "rsa", "--bits", "2048", "-o", "escrow"])
        .ok();
    assert_eq!(
        env.mode("escrow.pem"),
        0o600,
        "keygen writes the private key 0600"
    );
    let private = fs::read(env.path("escrow.pem")).unwrap();
    let public = "raw-rsa:ns:escrow:oaep-sha256:escrow.pub.pem";
    let private_spec = "raw-rsa:ns:escrow:oaep-sha256:escrow.pem";

    // A public key may be world-writable as far as this check goes: no warning, no refusal.
    env.chmod("escrow.pub.pem", 0o666);
    let out = env
        .run(&["encrypt", "-q", "-k", public, "-o", "p.enc", "p"])
        .ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // The private key: refused when group-writable, for decrypt and for encrypt.
    env.chmod("escrow.pem", 0o660);
    for args in [
        &["decrypt", "-q", "-k", private_spec, "-o", "p.out", "p.enc"][..],
        &["encrypt", "-q", "-k", private_spec, "-o", "q.enc", "p"],
    ] {
        let out = env.run(args).fails(2);
        assert!(
            out.stderr.contains("writable by group or others"),
            "{}",
            out.stderr
        );
        names_path_not_key(&out, "escrow.pem", &private);
    }
    assert!(!env.exists("p.out") && !env.exists("q.enc"));

    // Readable by the group: a warning (even with -q), and it works.
    env.chmod("escrow.pem", 0o640);
    let out = env
        .run(&["decrypt", "-q", "-k", private_spec, "-o", "p.out", "p.enc"])
        .ok();
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("escrow.pem"),
        "{}",
        out.stderr
    );
    names_path_not_key(&out, "readable by group or others", &private);
    assert_eq!(fs::read(env.path("p.out")).unwrap(), b"patient scan bytes");
}
