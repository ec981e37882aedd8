//! `Pkcs11Config::from_uri` with `pin-source=FILE`: the PIN is read from a regular file that
//! group and others cannot write (trailing newline stripped); anything else is an
//! `InvalidKey` error that names the file, never the PIN. No token is needed.
#![cfg(feature = "pkcs11")]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use envcrypt::keyring::{KeyringError, Pkcs11Config};

const PIN: &str = "file-pin-2468";

fn uri(pin_source: &Path) -> String {
    format!(
        "pkcs11:token=t;object=o?module-path=/m.so&pin-source={}",
        pin_source.display()
    )
}

#[test]
fn from_uri_reads_a_private_pin_file_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pin");
    fs::write(&file, format!("{PIN}\n")).unwrap();
    let chmod = |mode| fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();

    chmod(0o600);
    let config = Pkcs11Config::from_uri(&uri(&file)).unwrap();
    assert!(config.has_pin());
    assert_eq!(config.pin_source(), Some(file.as_path()));
    // pin-source wins over the environment; parse_uri only records the file.
    assert!(!Pkcs11Config::parse_uri(&uri(&file)).unwrap().has_pin());

    chmod(0o640);
    assert!(Pkcs11Config::from_uri(&uri(&file)).unwrap().has_pin());

    for mode in [0o620, 0o602, 0o666] {
        chmod(mode);
        let e = Pkcs11Config::from_uri(&uri(&file)).unwrap_err();
        assert!(matches!(e, KeyringError::InvalidKey(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("writable by group or others"), "{text}");
        assert!(text.contains("pin") && !text.contains(PIN), "{text}");
    }

    let e = Pkcs11Config::from_uri(&uri(dir.path())).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let e = Pkcs11Config::from_uri(&uri(&dir.path().join("missing"))).unwrap_err();
    assert!(matches!(e, KeyringError::InvalidKey(_)), "{e:?}");

    fs::write(dir.path().join("empty"), "\n").unwrap();
    fs::set_permissions(dir.path().join("empty"), fs::Permissions::from_mode(0o600)).unwrap();
    let e = Pkcs11Config::from_uri(&uri(&dir.path().join("empty"))).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}
