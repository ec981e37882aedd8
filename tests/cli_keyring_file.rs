//! `-K FILE`: keyring specs from a TOML file, combined with `-k`, and its refusals (unknown
//! fields, `to` outside rewrap, a file others can write, a PIN in a file others can read).

#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;
use tool::Scratch as Env;

const KA: &str = "raw-aes:site:key-a:a.key";
const KB: &str = "raw-aes:site:key-b:b.key";

impl Env {
    /// A scratch directory with two AES keys and a plaintext.
    fn new() -> Self {
        let env = Self::empty();
        env.run(&["keygen", "aes256", "-o", "a.key"]).ok();
        env.run(&["keygen", "aes256", "-o", "b.key"]).ok();
        env.write("scan.dcm", b"DICM pixel data");
        env
    }

    /// `inspect` of a message file.
    fn inspect(&self, name: &str) -> Value {
        let out = self.run(&["inspect", name]).ok();
        serde_json::from_slice(&out.stdout).expect("inspect JSON")
    }

    fn chmod(&self, name: &str, mode: u32) {
        fs::set_permissions(self.path(name), fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn keyring_files_add_to_the_command_line() {
    let env = Env::new();
    env.write("k.toml", format!("keyrings = [\"{KB}\"]\n").as_bytes());
    env.chmod("k.toml", 0o600);
    // -k first, then the file's.
    env.run(&[
        "encrypt", "-k", KA, "-K", "k.toml", "-o", "scan.enc", "scan.dcm",
    ])
    .ok();
    let edks = env.inspect("scan.enc")["encrypted_data_keys"].clone();
    let names: Vec<Vec<u8>> = edks
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            use base64::Engine as _;
            let info = e["provider_info"].as_str().unwrap();
            let mut bytes = base64::engine::general_purpose::STANDARD
                .decode(info)
                .unwrap();
            bytes.truncate(bytes.len() - 20); // tag length, IV length, IV
            bytes
        })
        .collect();
    assert_eq!(names, [b"key-a".to_vec(), b"key-b".to_vec()]);
    // The file alone decrypts.
    env.run(&["decrypt", "-K", "k.toml", "-o", "back", "scan.enc"])
        .ok();
    assert_eq!(env.read("back"), b"DICM pixel data");
    // rewrap reads `to` too.
    env.write(
        "r.toml",
        format!("keyrings = [\"{KB}\"]\nto = [\"{KA}\"]\n").as_bytes(),
    );
    env.chmod("r.toml", 0o600);
    env.run(&["rewrap", "-K", "r.toml", "-o", "r.enc", "scan.enc"])
        .ok();
    env.run(&["decrypt", "-k", KA, "-o", "r.out", "r.enc"]).ok();
    env.run(&["decrypt", "-k", KB, "-o", "r.none", "r.enc"])
        .fails(1);

    // Refusals (exit 2, nothing written): unknown field, `to` outside rewrap, bad TOML that
    // must not be echoed, a group-writable file, no keyring at all, a bad spec in the file.
    let refuse = |name: &str, text: &str, mode: u32, needle: &str| {
        env.write(name, text.as_bytes());
        env.chmod(name, mode);
        let out = env
            .run(&["encrypt", "-K", name, "-o", "never.enc", "scan.dcm"])
            .fails(2);
        assert!(out.stderr.contains(needle), "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
        assert!(!env.exists("never.enc"));
    };
    refuse(
        "u.toml",
        &format!("keyrings = [\"{KA}\"]\nextra = 1\n"),
        0o600,
        "not a keyring file",
    );
    refuse(
        "t.toml",
        &format!("keyrings = [\"{KA}\"]\nto = [\"{KB}\"]\n"),
        0o600,
        "rewrap only",
    );
    refuse(
        "b.toml",
        "keyrings = [\"pkcs11:x?pin-value=hunter2\"\n",
        0o600,
        "not a keyring file",
    );
    refuse(
        "w.toml",
        &format!("keyrings = [\"{KA}\"]\n"),
        0o620,
        "writable by group or others",
    );
    refuse("e.toml", "keyrings = []\n", 0o600, "at least one");
    refuse(
        "s.toml",
        "keyrings = [\"raw-aes:only-two\"]\n",
        0o600,
        "raw-aes keyring spec must be",
    );
    let out = env
        .run(&["decrypt", "-K", "missing.toml", "-o", "m", "scan.enc"])
        .fails(3);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
    // Neither -k nor -K: clap's usage error.
    env.run(&["encrypt", "-o", "n.enc", "scan.dcm"]).fails(2);
    // A readable file without a PIN is fine.
    env.chmod("k.toml", 0o644);
    env.run(&["decrypt", "-K", "k.toml", "-o", "back2", "scan.enc"])
        .ok();
}

#[cfg(feature = "pkcs11")]
#[test]
fn keyring_file_holding_a_pin_must_be_private() {
    let env = Env::new();
    let spec = "pkcs11:token=t;object=k?module-path=/nonexistent/module.so&pin-value=hunter2";
    env.write("p.toml", format!("keyrings = [\"{spec}\"]\n").as_bytes());
    env.chmod("p.toml", 0o640);
    let out = env
        .run(&["encrypt", "-K", "p.toml", "-o", "x.enc", "scan.dcm"])
        .fails(2);
    assert!(
        out.stderr.contains("pin-value") && out.stderr.contains("readable by group or others"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"));
    // Private: accepted (then the module is missing: a keyring failure, not the file's), and
    // no warning about a PIN visible in `ps`.
    env.chmod("p.toml", 0o600);
    let out = env.run(&["encrypt", "-K", "p.toml", "-o", "x.enc", "scan.dcm"]);
    assert_ne!(out.code, 0);
    assert!(!out.stderr.contains("readable by group"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("visible to other users"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"));
    // The same spec on the command line still warns.
    let out = env.run(&["encrypt", "-k", spec, "-o", "x.enc", "scan.dcm"]);
    assert!(
        out.stderr.contains("visible to other users"),
        "{}",
        out.stderr
    );
}
