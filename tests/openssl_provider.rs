//! The OpenSSL provider's FIPS claim and the module behind each provider's components.
//!
//! This machine's OpenSSL has no `fips` provider module, so the claim must stay off, and it
//! must stay off even when OpenSSL is configured to demand `fips=yes` (then nothing is
//! offered at all). Where the module is installed, a child process configured with it (the
//! way RHEL and Ubuntu Pro ship it) must report FIPS. Each configuration runs in a child
//! process of this test binary, since OpenSSL reads its configuration once per process.
#![cfg(feature = "openssl")]

use std::path::{Path, PathBuf};
use std::process::Command;

use envcrypt::crypto::{self, AeadAlgorithm, Component, CryptoError};

/// OpenSSL's provider module directory, as `openssl version -m` reports it.
fn modules_dir() -> PathBuf {
    let out = Command::new("openssl")
        .args(["version", "-m"])
        .output()
        .expect("the openssl command (package openssl)");
    let text = String::from_utf8(out.stdout).unwrap();
    let dir = text
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected `openssl version -m`: {text}"));
    PathBuf::from(dir)
}

/// Runs the ignored test `child` of this binary with `OPENSSL_CONF=conf` (or none) and
/// `ENVCRYPT_EXPECT_FIPS=expect`; returns its combined output after checking it passed.
fn run_child(conf: Option<&Path>, expect: bool) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("ENVCRYPT_EXPECT_FIPS", if expect { "1" } else { "0" });
    match conf {
        Some(conf) => cmd.env("OPENSSL_CONF", conf),
        None => cmd.env_remove("OPENSSL_CONF"),
    };
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
    text
}

/// The body run in a child process: the FIPS claim is what the parent expects, and without
/// it a `fips=yes` configuration leaves nothing usable (a typed error, no fallback).
#[test]
#[ignore = "run by the other tests of this file in a configured child process"]
fn child() {
    let expect = std::env::var("ENVCRYPT_EXPECT_FIPS").expect("run by run_child") == "1";
    let openssl = crypto::provider_by_name("openssl").unwrap();
    assert_eq!(crypto::openssl::fips_mode(), expect);
    assert_eq!(openssl.fips(), expect);
    if expect {
        let mut key = openssl
            .aead
            .key(AeadAlgorithm::Aes256Gcm, &[7; 32])
            .unwrap();
        let mut buf = *b"frame";
        key.seal_in_place(&[0; 12], b"aad", &mut buf).unwrap();
    }
    if std::env::var_os("OPENSSL_CONF").is_some() && !expect {
        // `fips=yes` demanded but no module: AES-GCM is refused as unavailable.
        let err = openssl
            .aead
            .key(AeadAlgorithm::Aes256Gcm, &[7; 32])
            .err()
            .expect("no AES-GCM without the fips module");
        assert!(matches!(err, CryptoError::Unsupported(_)), "{err:?}");
    }
    // The mix is never FIPS (it is not even compiled into a `fips` build).
    if let Some(mix) = crypto::provider_by_name("aws-lc-rs+openssl") {
        assert!(!mix.fips());
    }
}

/// Without OpenSSL's `fips` module (this machine) the claim is off, whatever the
/// configuration asks; with it, a process configured for it reports FIPS.
#[test]
fn fips_claim_follows_the_fips_module() {
    let fips_module = modules_dir().join("fips.so");
    if fips_module.exists() {
        fips_module_configured(&fips_module);
    } else {
        println!("no {}: checking the refusal", fips_module.display());
        fips_module_missing();
    }
}

fn fips_module_missing() {
    assert!(!crypto::provider_by_name("openssl").unwrap().fips());
    // The system configuration, and one demanding fips=yes without the module.
    run_child(None, false);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("openssl.cnf");
    std::fs::write(
        &conf,
        "openssl_conf = openssl_init\n\
         [openssl_init]\nalg_section = algorithm_sect\n\
         [algorithm_sect]\ndefault_properties = fips=yes\n",
    )
    .unwrap();
    run_child(Some(&conf), false);
}

fn fips_module_configured(fips_module: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let module_conf = dir.path().join("fipsmodule.cnf");
    let status = Command::new("openssl")
        .arg("fipsinstall")
        .arg("-module")
        .arg(fips_module)
        .arg("-out")
        .arg(&module_conf)
        .status()
        .unwrap();
    assert!(status.success(), "openssl fipsinstall");
    let conf = dir.path().join("openssl.cnf");
    std::fs::write(
        &conf,
        format!(
            "config_diagnostics = 1\nopenssl_conf = openssl_init\n.include {}\n\
             [openssl_init]\nproviders = provider_sect\nalg_section = algorithm_sect\n\
             [provider_sect]\nfips = fips_sect\nbase = base_sect\n\
             [base_sect]\nactivate = 1\n\
             [algorithm_sect]\ndefault_properties = fips=yes\n",
            module_conf.display()
        ),
    )
    .unwrap();
    run_child(Some(&conf), true);
}

#[test]
fn modules_name_the_module_of_each_component() {
    let all = |name: &str| {
        let p = crypto::provider_by_name(name).unwrap();
        p.modules().map(|(c, m)| (c.name(), m))
    };
    // A provider named on its own serves every component itself.
    for (c, m) in all("openssl") {
        assert_eq!(m, "openssl", "{c}");
    }
    #[cfg(all(feature = "aws-lc-rs", not(feature = "fips")))]
    {
        for (c, m) in all("aws-lc-rs") {
            assert_eq!(m, "aws-lc-rs", "{c}");
        }
        // The mix: OpenSSL hashes (for the signatures too), AWS-LC does the rest.
        assert_eq!(
            all("aws-lc-rs+openssl"),
            [
                ("aead", "aws-lc-rs"),
                ("hkdf", "aws-lc-rs"),
                ("signature", "aws-lc-rs+openssl"),
                ("random", "aws-lc-rs"),
                ("rsa", "aws-lc-rs"),
                ("digest", "openssl"),
            ]
        );
    }
    #[cfg(feature = "fips")]
    {
        assert!(crypto::provider_by_name("aws-lc-rs+openssl").is_none());
        assert_eq!(crypto::default_provider().name, "aws-lc-rs-fips");
    }
    let components: Vec<Component> = crypto::default_provider()
        .modules()
        .iter()
        .map(|(c, _)| *c)
        .collect();
    assert_eq!(
        components,
        [
            Component::Aead,
            Component::Hkdf,
            Component::Signature,
            Component::Random,
            Component::Rsa,
            Component::Digest
        ]
    );
}

/// A failed open leaves no unauthenticated plaintext behind (OpenSSL decrypts before the
/// tag is checked): the buffer is zeroed and the error is `Verification`.
#[test]
fn failed_open_zeroes_the_buffer() {
    let openssl = crypto::provider_by_name("openssl").unwrap();
    let mut key = openssl
        .aead
        .key(AeadAlgorithm::Aes256Gcm, &[5; 32])
        .unwrap();
    let plaintext = [0x42u8; 100];
    let mut buf = plaintext.to_vec();
    let tag = key.seal_in_place(&[1; 12], b"aad", &mut buf).unwrap();
    buf.extend_from_slice(&tag);
    let mut bad = buf.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        key.open_in_place(&[1; 12], b"aad", &mut bad),
        Err(CryptoError::Verification)
    );
    assert!(bad[..100].iter().all(|&b| b == 0), "plaintext left behind");
    let mut out = [0xffu8; 100];
    assert_eq!(
        key.open_to(&[1; 12], b"other aad", &buf[..100], &tag, &mut out),
        Err(CryptoError::Verification)
    );
    assert_eq!(out, [0u8; 100]);
    // A short buffer (no room for a tag) and mismatched lengths are refused, not a panic.
    assert_eq!(
        key.open_in_place(&[1; 12], b"aad", &mut [0u8; 15]),
        Err(CryptoError::Verification)
    );
    assert_eq!(
        key.seal_to(&[2; 12], b"", &plaintext, &mut [0u8; 99]),
        Err(CryptoError::Failure)
    );
    // The key still works after failures.
    assert_eq!(key.open_in_place(&[1; 12], b"aad", &mut buf), Ok(()));
    assert_eq!(&buf[..100], &plaintext);
}

/// One key object opened from several threads at once (the lock taken, the others work on
/// copies of the keyed context): every open succeeds and gives the plaintext.
#[test]
fn one_key_opens_from_many_threads() {
    let openssl = crypto::provider_by_name("openssl").unwrap();
    let mut key = openssl
        .aead
        .key(AeadAlgorithm::Aes128Gcm, &[6; 16])
        .unwrap();
    let frames: Vec<(Vec<u8>, [u8; 12])> = (0..64u8)
        .map(|i| {
            let nonce = [i; 12];
            let mut f = vec![i; 1000 + usize::from(i)];
            let tag = key.seal_in_place(&nonce, &[i], &mut f).unwrap();
            f.extend_from_slice(&tag);
            (f, nonce)
        })
        .collect();
    let key = &*key;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    for (i, (frame, nonce)) in frames.iter().enumerate() {
                        let mut copy = frame.clone();
                        key.open_in_place(nonce, &[i as u8], &mut copy).unwrap();
                        let len = copy.len() - 16;
                        assert!(copy[..len].iter().all(|&b| b == i as u8));
                    }
                }
            });
        }
    });
}
