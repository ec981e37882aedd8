//! `keyring::spec::from_spec`: services build keyrings from the tool's spec grammar. Round
//! trips through keyrings built from specs, and each refusal with its typed error. The
//! parser's other negative paths are unit tests in `src/keyring/spec/tests.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use envcrypt::keyring::spec::{
    from_spec, FileProblem, KeyringSpec, Purpose, SpecError, SpecWarning,
};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{Client, DecryptOptions, EncryptionContext, ErrorKind};

fn write(path: &Path, bytes: &[u8], mode: u32) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn raw_aes_spec_is_the_key_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = [0xa5u8; 32];
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    write(&dir.path().join("raw.key"), &key, 0o600);
    write(
        &dir.path().join("b64.key"),
        format!("{b64}\n").as_bytes(),
        0o600,
    );
    let ctx = EncryptionContext::from_pairs([("dept", "radiology")]);

    let spec = format!(
        "raw-aes:hosp:key-1:{}",
        dir.path().join("b64.key").display()
    );
    let built = from_spec(&spec, Purpose::Encrypt).unwrap();
    assert!(built.warnings.is_empty());
    let message = Client::new(built.keyring).encrypt(b"scan", &ctx).unwrap();

    // The raw-bytes file, and the keyring made by hand from the same key, both open it.
    let spec = format!(
        "raw-aes:hosp:key-1:{}",
        dir.path().join("raw.key").display()
    );
    let from_file = Client::new(from_spec(&spec, Purpose::Decrypt).unwrap().keyring);
    assert_eq!(
        from_file
            .decrypt(&message, &DecryptOptions::default())
            .unwrap()
            .plaintext,
        b"scan"
    );
    let by_hand = Client::new(RawAesKeyring::new("hosp", "key-1", &key).unwrap());
    assert_eq!(
        by_hand
            .decrypt(&message, &DecryptOptions::default())
            .unwrap()
            .plaintext,
        b"scan"
    );
    // Another name is another key.
    let spec = format!(
        "raw-aes:hosp:key-2:{}",
        dir.path().join("raw.key").display()
    );
    let other = Client::new(from_spec(&spec, Purpose::Decrypt).unwrap().keyring);
    let e = other
        .decrypt(&message, &DecryptOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Authentication);
}

#[test]
fn secret_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    let spec = format!("raw-aes:hosp:key-1:{}", path.display());
    write(&path, &[1u8; 16], 0o644);
    let built = from_spec(&spec, Purpose::Encrypt).unwrap();
    assert_eq!(
        built.warnings,
        [SpecWarning::ReadableByOthers {
            what: "key file",
            path: path.clone(),
            mode: 0o644
        }]
    );
    write(&path, &[1u8; 16], 0o666);
    let e = from_spec(&spec, Purpose::Encrypt).unwrap_err();
    assert!(
        matches!(
            e,
            SpecError::File {
                problem: FileProblem::WritableByOthers(0o666),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Usage);
    // Errors name the file, never its bytes.
    write(&path, b"0123456789abcdefXYZ", 0o600);
    let e = from_spec(&spec, Purpose::Encrypt).unwrap_err();
    assert!(
        matches!(
            e,
            SpecError::File {
                problem: FileProblem::NotAnAesKey,
                ..
            }
        ),
        "{e:?}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains("k.key") && !shown.contains("0123456789"),
        "{shown}"
    );
}

#[test]
fn parse_reads_no_file() {
    // Parsing a spec whose file does not exist succeeds; building it is an I/O error.
    let spec = KeyringSpec::parse("raw-aes:hosp:key-1:/nonexistent/k.key").unwrap();
    assert_eq!(spec.kind(), "raw-aes");
    let e = spec.build(Purpose::Decrypt).unwrap_err();
    assert!(
        matches!(
            e,
            SpecError::File {
                problem: FileProblem::Io(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Io);
}

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
#[test]
fn a_public_rsa_key_only_encrypts() {
    use envcrypt::crypto::default_provider;
    let dir = tempfile::tempdir().unwrap();
    let (pkcs8, spki) = default_provider().rsa.generate(2048).unwrap();
    let pem = |label: &str, der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    };
    write(
        &dir.path().join("pub.pem"),
        pem("PUBLIC KEY", &spki).as_bytes(),
        0o644,
    );
    write(
        &dir.path().join("priv.pem"),
        pem("PRIVATE KEY", &pkcs8).as_bytes(),
        0o600,
    );
    let public = format!(
        "raw-rsa:escrow:e-1:oaep-sha256:{}",
        dir.path().join("pub.pem").display()
    );
    let private = format!(
        "raw-rsa:escrow:e-1:oaep-sha256:{}",
        dir.path().join("priv.pem").display()
    );
    // A public key may be world-readable: no warning.
    let built = from_spec(&public, Purpose::Encrypt).unwrap();
    assert!(built.warnings.is_empty());
    let message = Client::new(built.keyring)
        .encrypt(b"x", &EncryptionContext::new())
        .unwrap();
    let e = from_spec(&public, Purpose::Decrypt).unwrap_err();
    assert!(
        matches!(&e, SpecError::PublicKeyOnly { key, .. } if key == "escrow:e-1"),
        "{e:?}"
    );
    let opened = Client::new(from_spec(&private, Purpose::Decrypt).unwrap().keyring)
        .decrypt(&message, &DecryptOptions::default())
        .unwrap();
    assert_eq!(opened.plaintext, b"x");
}

#[cfg(feature = "aws-kms")]
#[test]
fn discovery_only_decrypts() {
    let e = from_spec(
        "aws-kms-discovery:111122223333?partition=aws-us-gov",
        Purpose::Encrypt,
    )
    .unwrap_err();
    assert!(
        matches!(e, SpecError::DecryptOnly("aws-kms-discovery")),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Usage);
}

#[cfg(feature = "pkcs11")]
#[test]
fn a_pin_never_shows() {
    let spec = "pkcs11:token=t;object=k?module-path=/nonexistent/m.so&pin-value=hunter2";
    let parsed = KeyringSpec::parse(spec).unwrap();
    assert!(!format!("{parsed:?}").contains("hunter2"));
    let e = parsed.build(Purpose::Decrypt).unwrap_err();
    assert!(matches!(e, SpecError::Keyring { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::KeyringUnavailable);
    assert!(!e.to_string().contains("hunter2") && !format!("{e:?}").contains("hunter2"));
}
