//! The parser's negative paths, each with its specific error.

use super::*;

fn err(spec: &str) -> SpecError {
    KeyringSpec::parse(spec).expect_err(spec)
}

#[test]
fn missing_and_unknown_types() {
    assert!(matches!(err("raw-aes"), SpecError::MissingType));
    assert!(matches!(err(""), SpecError::MissingType));
    let SpecError::UnknownType(shown) = err(&format!("{}:x", "y".repeat(40))) else {
        panic!("not UnknownType");
    };
    assert_eq!(shown, format!("{}...", "y".repeat(32)));
    assert!(matches!(err("RAW-AES:a:b:c"), SpecError::UnknownType(t) if t == "RAW-AES"));
}

#[test]
fn raw_aes_fields() {
    for bad in [
        "raw-aes:",
        "raw-aes:ns",
        "raw-aes:ns:name",
        "raw-aes::name:/k",
        "raw-aes:ns::/k",
        "raw-aes:ns:name:",
    ] {
        assert!(
            matches!(
                err(bad),
                SpecError::Malformed {
                    kind: "raw-aes",
                    ..
                }
            ),
            "{bad}"
        );
    }
    // The path is the rest of the spec, colons included.
    let KeyringSpec::RawAes(s) = KeyringSpec::parse("raw-aes:ns:n:/a:b").unwrap() else {
        panic!("not raw-aes");
    };
    assert_eq!(s.path, std::path::PathBuf::from("/a:b"));
}

#[test]
fn raw_rsa_fields_and_padding() {
    for bad in [
        "raw-rsa:ns:name:pkcs1",
        "raw-rsa:ns:name::/k",
        "raw-rsa:ns:name:pkcs1:",
    ] {
        assert!(
            matches!(
                err(bad),
                SpecError::Malformed {
                    kind: "raw-rsa",
                    ..
                }
            ),
            "{bad}"
        );
    }
    for bad in ["oaep", "OAEP-SHA256", "pkcs1v15"] {
        let e = err(&format!("raw-rsa:ns:name:{bad}:/k"));
        assert!(
            matches!(&e, SpecError::UnknownPadding { key, padding } if key == "ns:name" && padding == bad),
            "{e:?}"
        );
    }
}

#[test]
fn key_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let e = from_spec(
        &format!("raw-aes:ns:n:{}", missing.display()),
        Purpose::Encrypt,
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            SpecError::File {
                problem: FileProblem::Io(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), crate::ErrorKind::Io);

    let e = from_spec(
        &format!("raw-aes:ns:n:{}", dir.path().display()),
        Purpose::Encrypt,
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            SpecError::File {
                problem: FileProblem::NotRegularFile,
                ..
            }
        ),
        "{e:?}"
    );

    let big = dir.path().join("big.key");
    std::fs::write(&big, vec![b'A'; MAX_AES_KEY_FILE as usize + 1]).unwrap();
    set_mode(&big, 0o600);
    let e = from_spec(&format!("raw-aes:ns:n:{}", big.display()), Purpose::Encrypt).unwrap_err();
    assert!(
        matches!(
            &e,
            SpecError::File {
                problem: FileProblem::TooLarge(MAX_AES_KEY_FILE),
                ..
            }
        ),
        "{e:?}"
    );

    let short = dir.path().join("short.key");
    std::fs::write(&short, [7u8; 15]).unwrap();
    set_mode(&short, 0o600);
    let e = from_spec(
        &format!("raw-aes:ns:n:{}", short.display()),
        Purpose::Encrypt,
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            SpecError::File {
                problem: FileProblem::NotAnAesKey,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), crate::ErrorKind::Usage);
    assert!(!e.to_string().contains("\u{7}"));

    let good = dir.path().join("good.key");
    std::fs::write(&good, [7u8; 32]).unwrap();
    set_mode(&good, 0o640);
    let built = from_spec(
        &format!("raw-aes:ns:n:{}", good.display()),
        Purpose::Decrypt,
    )
    .unwrap();
    assert!(matches!(
        &built.warnings[..],
        [SpecWarning::ReadableByOthers { mode: 0o640, .. }]
    ));
    set_mode(&good, 0o620);
    let e = from_spec(
        &format!("raw-aes:ns:n:{}", good.display()),
        Purpose::Decrypt,
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            SpecError::File {
                problem: FileProblem::WritableByOthers(0o620),
                ..
            }
        ),
        "{e:?}"
    );

    let not_pem = dir.path().join("bin.pem");
    std::fs::write(&not_pem, [0xffu8; 40]).unwrap();
    set_mode(&not_pem, 0o600);
    let e = from_spec(
        &format!("raw-rsa:ns:n:pkcs1:{}", not_pem.display()),
        Purpose::Encrypt,
    )
    .unwrap_err();
    assert!(
        matches!(
            &e,
            SpecError::File {
                problem: FileProblem::NotText,
                ..
            }
        ),
        "{e:?}"
    );
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(feature = "aws-kms")]
#[test]
fn kms_forms() {
    assert!(matches!(
        err("aws-kms:"),
        SpecError::Malformed {
            kind: "aws-kms",
            ..
        }
    ));
    assert!(matches!(
        err("aws-kms:a b"),
        SpecError::Malformed {
            kind: "aws-kms",
            ..
        }
    ));
    assert!(matches!(
        err("aws-kms-discovery:"),
        SpecError::Malformed {
            kind: "aws-kms-discovery",
            ..
        }
    ));
    assert!(matches!(
        err("aws-kms-discovery:12x"),
        SpecError::Malformed {
            kind: "aws-kms-discovery",
            ..
        }
    ));
    assert!(matches!(
        err("aws-kms-discovery:1,,2"),
        SpecError::Malformed {
            kind: "aws-kms-discovery",
            ..
        }
    ));
    // Options: unknown, repeated, empty, and values outside their grammar.
    let bad_option = |spec: &str, name: &str| {
        let e = err(spec);
        assert!(
            matches!(&e, SpecError::BadOption { option, .. } if option == name),
            "{spec}: {e:?}"
        );
    };
    bad_option("aws-kms:alias/x?region=us-east-1", "region");
    bad_option("aws-kms:alias/x?profile=a&profile=b", "profile");
    bad_option("aws-kms:alias/x?profile=", "profile");
    bad_option("aws-kms:alias/x?profile", "profile");
    bad_option("aws-kms-discovery:1?partition=aws&secret=hunter2", "secret");
    bad_option("aws-kms-discovery:1?", "");
    let bad_value = |spec: &str, name: &str| {
        let e = err(spec);
        assert!(
            matches!(&e, SpecError::BadOptionValue { option, .. } if *option == name),
            "{spec}: {e:?}"
        );
        assert!(!e.to_string().contains("BAD"), "{e}");
    };
    bad_value("aws-kms:alias/x?profile=BAD/../x", "profile");
    bad_value("aws-kms-discovery:1?partition=BAD_P", "partition");
    bad_value("aws-kms-discovery:1?region=BAD", "region");
    // The forms that parse.
    let Ok(KeyringSpec::Kms(KmsSpec::Discovery {
        accounts,
        partition,
        region,
        profile,
    })) = KeyringSpec::parse(
        "aws-kms-discovery:1,2?partition=aws-us-gov&region=us-gov-west-1&profile=gov",
    )
    else {
        panic!("discovery with options");
    };
    assert_eq!((accounts.len(), partition.as_str()), (2, "aws-us-gov"));
    assert_eq!(
        (region.as_deref(), profile.as_deref()),
        (Some("us-gov-west-1"), Some("gov"))
    );
    let Ok(KeyringSpec::Kms(KmsSpec::Discovery { partition, .. })) =
        KeyringSpec::parse("aws-kms-discovery:1")
    else {
        panic!("discovery");
    };
    assert_eq!(partition, "aws");
    let spec =
        KeyringSpec::parse("aws-kms:arn:aws-us-gov:kms:us-gov-west-1:1:key/k?profile=gov").unwrap();
    assert!(
        matches!(spec, KeyringSpec::Kms(KmsSpec::Key { ref key, ref profile })
        if key == "arn:aws-us-gov:kms:us-gov-west-1:1:key/k" && profile.as_deref() == Some("gov"))
    );
    // Discovery never encrypts (refused before any client is made).
    let e = from_spec("aws-kms-discovery:1", Purpose::Encrypt).unwrap_err();
    assert!(matches!(e, SpecError::DecryptOnly("aws-kms-discovery")));
}

#[cfg(not(feature = "aws-kms"))]
#[test]
fn kms_needs_its_feature() {
    assert!(matches!(
        err("aws-kms:alias/x"),
        SpecError::NotInBuild("aws-kms")
    ));
    assert!(matches!(
        err("aws-kms-discovery:1"),
        SpecError::NotInBuild("aws-kms-discovery")
    ));
}

#[cfg(feature = "pkcs11")]
#[test]
fn pkcs11_errors_hide_the_pin() {
    let spec = "pkcs11:token=t;object=k?module-path=/nonexistent.so&pin-value=SECRETPIN&bogus=1";
    let e = err(spec);
    assert!(matches!(e, SpecError::Keyring { .. }), "{e:?}");
    assert!(!e.to_string().contains("SECRETPIN"), "{e}");
    assert!(!format!("{e:?}").contains("SECRETPIN"));
    let ok = KeyringSpec::parse("pkcs11:token=t;object=k?module-path=/x.so&pin-value=SECRETPIN")
        .unwrap();
    assert!(!format!("{ok:?}").contains("SECRETPIN"));
}

#[cfg(not(feature = "pkcs11"))]
#[test]
fn pkcs11_needs_its_feature() {
    assert!(matches!(
        err("pkcs11:token=t"),
        SpecError::NotInBuild("pkcs11")
    ));
}

#[test]
fn supported_kinds_follow_features() {
    let kinds = supported_kinds();
    assert_eq!(kinds.contains(&"aws-kms"), cfg!(feature = "aws-kms"));
    assert_eq!(kinds.contains(&"pkcs11"), cfg!(feature = "pkcs11"));
    assert!(kinds.starts_with(&["raw-aes", "raw-rsa"]));
}
