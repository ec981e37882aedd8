//! The raw RSA keyring: round trips for every padding, the EDK format, and each way of
//! failing with its own typed error (wrong key, wrong padding, another keyring's EDK, a
//! public-only keyring asked to decrypt, malformed PEM, a provider without RSA).
//!
//! Tests that need RSA keys run where the default provider has RSA (aws-lc-rs, its FIPS
//! module); the RustCrypto checks run whenever that provider is compiled in.

#![cfg_attr(not(any(feature = "aws-lc-rs", feature = "fips")), allow(dead_code))]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use envcrypt::crypto::RsaPadding;
use envcrypt::keyring::{KeyringError, RawRsaKeyring};
use envcrypt::EncryptionContext;

const NAMESPACE: &str = "hospital-a";
const NAME: &str = "rsa-2026";

const PADDINGS: [RsaPadding; 5] = [
    RsaPadding::Pkcs1v15,
    RsaPadding::OaepSha1,
    RsaPadding::OaepSha256,
    RsaPadding::OaepSha384,
    RsaPadding::OaepSha512,
];

/// PEM armor of `der` with 64-character lines.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("study", "ct-2026-05"), ("dept", "radiology")])
}

fn invalid_key(e: &KeyringError, needle: &str) -> bool {
    matches!(e, KeyringError::InvalidKey(m) if m.contains(needle))
}

// ---------------------------------------------------------------------------------------------
// Without keys: PEM and DER refused before any provider sees them

#[test]
fn malformed_pem_is_a_typed_error() {
    let body = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA";
    let cases: [(String, &str); 9] = [
        (String::new(), "no -----BEGIN"),
        ("not a key at all".into(), "no -----BEGIN"),
        (
            format!("-----BEGIN PUBLIC KEY-----\n{body}\n"),
            "no -----END PUBLIC KEY-----",
        ),
        (
            format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
            "ends with -----END PRIVATE KEY-----",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n".into(),
            "not valid base64",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n".into(),
            "empty",
        ),
        (
            format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n"),
            "PKCS#1",
        ),
        (
            format!(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            "encrypted private keys are not supported",
        ),
        (
            format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"),
            "neither PUBLIC KEY nor PRIVATE KEY",
        ),
    ];
    for (text, needle) in cases {
        let e = RawRsaKeyring::from_pem(NAMESPACE, NAME, RsaPadding::OaepSha256, &text)
            .expect_err(&text);
        assert!(invalid_key(&e, needle), "{text:?}: {e:?}");
        assert!(e.to_string().starts_with("invalid key: "), "{e}");
    }
}

#[test]
fn non_rsa_or_truncated_der_is_refused_up_front() {
    // A P-256 public key (id-ecPublicKey) in a well-formed PEM.
    let ec = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYP7UuiVanTHJYet0xjVtaMBJuJI7
Yfps5mliLmDyn7Z5A/4QCLi8maQa6elWKLxk8vGyDC1+n1F3o8KU1EYimQ==
-----END PUBLIC KEY-----
";
    let e = RawRsaKeyring::from_pem(NAMESPACE, NAME, RsaPadding::OaepSha256, ec).unwrap_err();
    assert!(invalid_key(&e, "not rsaEncryption"), "{e:?}");
    // The same bytes through the DER constructors.
    let der = BASE64
        .decode(
            ec.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let e =
        RawRsaKeyring::from_public_der(NAMESPACE, NAME, RsaPadding::Pkcs1v15, &der).unwrap_err();
    assert!(invalid_key(&e, "not rsaEncryption"), "{e:?}");
    let e =
        RawRsaKeyring::from_private_der(NAMESPACE, NAME, RsaPadding::Pkcs1v15, &der).unwrap_err();
    assert!(invalid_key(&e, "not an RSA PKCS#8 private key"), "{e:?}");
    let e = RawRsaKeyring::from_public_der(NAMESPACE, NAME, RsaPadding::Pkcs1v15, &der[..40])
        .unwrap_err();
    assert!(invalid_key(&e, "truncated"), "{e:?}");
    let e = RawRsaKeyring::from_public_der(NAMESPACE, NAME, RsaPadding::Pkcs1v15, &[]).unwrap_err();
    assert!(invalid_key(&e, "truncated"), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// With keys from the default provider

#[cfg(any(feature = "aws-lc-rs", feature = "fips"))]
mod with_rsa {
    use std::sync::{Arc, OnceLock};

    use envcrypt::crypto::{default_provider, RsaPadding};
    use envcrypt::format::EncryptedDataKey;
    use envcrypt::keyring::{Keyring, KeyringError, MultiKeyring, RawAesKeyring, RawRsaKeyring};
    use envcrypt::materials::{DecryptionMaterials, EncryptionMaterials};
    use envcrypt::{block_on, AlgorithmSuite, Client, DecryptOptions, Error};
    use zeroize::Zeroizing;

    use super::{context, invalid_key, pem, NAME, NAMESPACE, PADDINGS};

    const SUITES: [AlgorithmSuite; 2] = [
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
    ];

    /// A key pair: (PKCS#8, SPKI) DER.
    type Pair = (Zeroizing<Vec<u8>>, Vec<u8>);

    /// Two 2048-bit key pairs, made once for the whole file.
    fn pairs() -> &'static [Pair; 2] {
        static PAIRS: OnceLock<[Pair; 2]> = OnceLock::new();
        PAIRS.get_or_init(|| {
            let generate = || default_provider().rsa.generate(2048).expect("RSA-2048");
            [generate(), generate()]
        })
    }

    fn public(padding: RsaPadding, pair: &Pair) -> RawRsaKeyring {
        RawRsaKeyring::from_pem(NAMESPACE, NAME, padding, &pem("PUBLIC KEY", &pair.1)).unwrap()
    }

    fn private(padding: RsaPadding, pair: &Pair) -> RawRsaKeyring {
        RawRsaKeyring::from_pem(NAMESPACE, NAME, padding, &pem("PRIVATE KEY", &pair.0)).unwrap()
    }

    fn client(keyring: impl Keyring + 'static, suite: AlgorithmSuite) -> Client {
        Client::builder()
            .keyring(keyring)
            .suite(suite)
            .frame_length(1024)
            .build()
            .unwrap()
    }

    fn decrypt(keyring: impl Keyring + 'static, message: &[u8]) -> Result<Vec<u8>, Error> {
        client(keyring, SUITES[0])
            .decrypt(message, &DecryptOptions::default())
            .map(|d| d.plaintext)
    }

    fn keyring_error(result: Result<Vec<u8>, Error>) -> KeyringError {
        match result {
            Err(Error::Keyring(e)) => e,
            other => panic!("expected a keyring error, got {:?}", other.map(|p| p.len())),
        }
    }

    fn plaintext() -> Vec<u8> {
        (0..5000u32).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trip_every_padding_and_suite_edk_format() {
        let pair = &pairs()[0];
        let plain = plaintext();
        for padding in PADDINGS {
            for suite in SUITES {
                let id = format!("{padding:?} {:04x}", suite.id());
                // Public-only keyrings encrypt; so do private ones (with their public half).
                for sender in [public(padding, pair), private(padding, pair)] {
                    let message = client(sender, suite).encrypt(&plain, &context()).unwrap();
                    let opened = client(private(padding, pair), suite)
                        .decrypt(&message, &DecryptOptions::default())
                        .unwrap_or_else(|e| panic!("{id}: {e:?}"));
                    assert_eq!(opened.plaintext, plain, "{id}");
                    let edks = &opened.header.encrypted_data_keys;
                    assert_eq!(edks.len(), 1, "{id}");
                    assert_eq!(edks[0].provider_id, NAMESPACE, "{id}");
                    assert_eq!(edks[0].provider_info, NAME.as_bytes(), "{id}");
                    assert_eq!(edks[0].ciphertext.len(), 256, "{id}: RSA-2048 ciphertext");
                }
            }
        }
    }

    /// A 4096-bit key through the keyring API directly (no client), with CRLF PEM.
    #[test]
    fn keyring_api_directly_rsa_4096_crlf_pem() {
        let (pkcs8, spki) = default_provider().rsa.generate(4096).unwrap();
        let crlf = |label, der: &[u8]| pem(label, der).replace('\n', "\r\n");
        let padding = RsaPadding::OaepSha512;
        let sender =
            RawRsaKeyring::from_pem(NAMESPACE, NAME, padding, &crlf("PUBLIC KEY", &spki)).unwrap();
        let recipient =
            RawRsaKeyring::from_pem(NAMESPACE, NAME, padding, &crlf("PRIVATE KEY", &pkcs8))
                .unwrap();
        let suite = SUITES[0];
        let enc = block_on(sender.on_encrypt(EncryptionMaterials::new(
            default_provider(),
            suite,
            context(),
        )))
        .unwrap();
        let data_key = enc.data_key.as_ref().unwrap().expose_secret().to_vec();
        assert_eq!(data_key.len(), 32);
        assert_eq!(enc.encrypted_data_keys[0].ciphertext.len(), 512);
        let materials = || DecryptionMaterials::new(default_provider(), suite, context());
        // Another keyring's EDK first, then ours: ours is found.
        let other = EncryptedDataKey {
            provider_id: "other".into(),
            provider_info: NAME.into(),
            ciphertext: vec![1; 512],
        };
        let edks = [other, enc.encrypted_data_keys[0].clone()];
        let dec = block_on(recipient.on_decrypt(materials(), &edks)).unwrap();
        assert_eq!(dec.data_key.unwrap().expose_secret(), data_key.as_slice());
        // Twice more with the parsed key kept.
        for _ in 0..2 {
            let dec = block_on(recipient.on_decrypt(materials(), &edks)).unwrap();
            assert_eq!(dec.data_key.unwrap().expose_secret(), data_key.as_slice());
        }
        // An EDK of ours that decrypts to a key of the wrong length is not a data key.
        let short = default_provider()
            .rsa
            .public_key(&spki)
            .unwrap()
            .encrypt(padding, &[7; 16])
            .unwrap();
        let edk = EncryptedDataKey {
            provider_id: NAMESPACE.into(),
            provider_info: NAME.into(),
            ciphertext: short,
        };
        let e = block_on(recipient.on_decrypt(materials(), &[edk])).unwrap_err();
        assert!(matches!(e, KeyringError::UnwrapFailed { .. }), "{e:?}");
        // Materials that already hold a data key are passed through (even a public-only
        // keyring then has nothing to do).
        let mut done = materials();
        done.data_key = enc.data_key;
        let done = block_on(sender.on_decrypt(done, &[])).unwrap();
        assert!(done.data_key.is_some());
    }

    #[test]
    fn wrong_key_is_unwrap_failed() {
        let [mine, other] = pairs();
        let message = client(public(RsaPadding::OaepSha256, mine), SUITES[1])
            .encrypt(b"secret", &context())
            .unwrap();
        let e = keyring_error(decrypt(private(RsaPadding::OaepSha256, other), &message));
        assert_eq!(
            e,
            KeyringError::UnwrapFailed {
                provider_id: NAMESPACE.into(),
                key_name: NAME.into()
            }
        );
        assert!(!e.to_string().is_empty());
    }

    #[test]
    fn wrong_padding_is_unwrap_failed() {
        let pair = &pairs()[0];
        for (wrote, reads) in [
            (RsaPadding::OaepSha256, RsaPadding::OaepSha1),
            (RsaPadding::OaepSha1, RsaPadding::OaepSha256),
            (RsaPadding::OaepSha384, RsaPadding::OaepSha512),
            (RsaPadding::OaepSha512, RsaPadding::Pkcs1v15),
            (RsaPadding::Pkcs1v15, RsaPadding::OaepSha256),
        ] {
            let message = client(public(wrote, pair), SUITES[0])
                .encrypt(b"secret", &context())
                .unwrap();
            let e = keyring_error(decrypt(private(reads, pair), &message));
            assert!(
                matches!(e, KeyringError::UnwrapFailed { .. }),
                "{wrote:?} read as {reads:?}: {e:?}"
            );
            assert_eq!(decrypt(private(wrote, pair), &message).unwrap(), b"secret");
        }
    }

    #[test]
    fn another_name_or_namespace_is_not_mine() {
        let pair = &pairs()[0];
        let padding = RsaPadding::OaepSha256;
        let message = client(public(padding, pair), SUITES[0])
            .encrypt(b"secret", &context())
            .unwrap();
        let der = &pair.0;
        for (namespace, name) in [
            (NAMESPACE, "rsa-2025"),
            (NAMESPACE, "rsa-2026 "),
            ("hospital-b", NAME),
            ("", NAME),
        ] {
            let keyring = RawRsaKeyring::from_private_der(namespace, name, padding, der).unwrap();
            let e = keyring_error(decrypt(keyring, &message));
            assert_eq!(e, KeyringError::NoMatchingKey, "{namespace:?}/{name:?}");
        }
    }

    #[test]
    fn public_only_keyring_cannot_decrypt() {
        let pair = &pairs()[0];
        let padding = RsaPadding::OaepSha256;
        let message = client(public(padding, pair), SUITES[0])
            .encrypt(b"secret", &context())
            .unwrap();
        let e = keyring_error(decrypt(public(padding, pair), &message));
        assert!(matches!(e, KeyringError::Unsupported(_)), "{e:?}");
        assert!(e.to_string().contains("public key"), "{e}");
        // In a multi-keyring the next keyring is still tried.
        let multi = MultiKeyring::new(
            None::<RawRsaKeyring>,
            [public(padding, pair), private(padding, pair)],
        );
        assert_eq!(decrypt(multi, &message).unwrap(), b"secret");
    }

    #[test]
    fn unusable_key_bytes_are_invalid_key_at_first_use() {
        // Structurally a PKCS#8 RSA key (the check at construction passes), numerically not:
        // the private key's body cut short.
        let (pkcs8, spki) = &pairs()[0];
        let mut bad = pkcs8.to_vec();
        bad.truncate(200);
        // Patch the outer and OCTET STRING lengths so only the provider can tell.
        let outer = u16::try_from(bad.len() - 4).unwrap().to_be_bytes();
        bad[2..4].copy_from_slice(&outer);
        let octets = u16::try_from(bad.len() - 26).unwrap().to_be_bytes();
        assert_eq!(
            &bad[22..24],
            &[0x04, 0x82],
            "OCTET STRING of a 2048-bit key"
        );
        bad[24..26].copy_from_slice(&octets);
        let keyring =
            RawRsaKeyring::from_private_der(NAMESPACE, NAME, RsaPadding::OaepSha256, &bad)
                .expect("structure is fine");
        let e = client(keyring, SUITES[0])
            .encrypt(b"x", &context())
            .unwrap_err();
        assert!(
            matches!(&e, Error::Keyring(k) if invalid_key(k, "refused by provider")),
            "{e:?}"
        );
        // A valid public key still encrypts.
        let ok = RawRsaKeyring::from_public_der(NAMESPACE, NAME, RsaPadding::OaepSha256, spki);
        client(ok.unwrap(), SUITES[0])
            .encrypt(b"x", &context())
            .unwrap();
    }

    #[test]
    fn reserved_namespace_and_debug_output() {
        let (pkcs8, _) = &pairs()[0];
        let e = RawRsaKeyring::from_private_der("aws-kms", NAME, RsaPadding::OaepSha1, pkcs8)
            .unwrap_err();
        assert!(invalid_key(&e, "aws-kms"), "{e:?}");
        let keyring = private(RsaPadding::OaepSha384, &pairs()[0]);
        assert_eq!(keyring.namespace(), NAMESPACE);
        assert_eq!(keyring.name(), NAME);
        assert_eq!(keyring.padding(), RsaPadding::OaepSha384);
        assert!(keyring.can_decrypt());
        let debug = format!("{keyring:?}");
        assert!(debug.contains("OaepSha384") && debug.contains("can_decrypt: true"));
        // No key bytes, in any encoding, in the debug output.
        let b64 = base64::Engine::encode(&super::BASE64, &pkcs8[..]);
        assert!(!debug.contains(&b64[..16]), "{debug}");
        assert!(!debug.contains(&hex::encode(&pkcs8[..8])), "{debug}");
        assert!(!debug.contains(&format!("{:?}", &pkcs8[..8])), "{debug}");
    }

    /// Raw AES generates the data key, raw RSA wraps it too: either keyring alone decrypts.
    #[test]
    fn multi_keyring_aes_generator_rsa_child() {
        let pair = &pairs()[0];
        let padding = RsaPadding::OaepSha256;
        let aes = || RawAesKeyring::new(NAMESPACE, "aes-2026", &[9; 32]).unwrap();
        let multi = MultiKeyring::from_arcs(
            Some(Arc::new(aes())),
            vec![Arc::new(public(padding, pair)) as Arc<dyn Keyring>],
        );
        let plain = plaintext();
        for suite in SUITES {
            let message = client(
                MultiKeyring::from_arcs(
                    Some(Arc::new(aes())),
                    vec![Arc::new(public(padding, pair)) as Arc<dyn Keyring>],
                ),
                suite,
            )
            .encrypt(&plain, &context())
            .unwrap();
            let opened = client(private(padding, pair), suite)
                .decrypt(&message, &DecryptOptions::default())
                .unwrap();
            assert_eq!(opened.plaintext, plain);
            let ids: Vec<_> = opened
                .header
                .encrypted_data_keys
                .iter()
                .map(|e| String::from_utf8_lossy(&e.provider_info[..8]).into_owned())
                .collect();
            assert_eq!(ids, ["aes-2026", "rsa-2026"], "generator first");
            assert_eq!(decrypt(aes(), &message).unwrap(), plain);
            // Another RSA key: the RSA child fails, the AES one is not there.
            let e = keyring_error(decrypt(private(padding, &pairs()[1]), &message));
            assert!(matches!(e, KeyringError::UnwrapFailed { .. }), "{e:?}");
        }
        // A message wrapped for RSA only: the multi-keyring's AES generator finds no EDK of its
        // own, its public-only RSA child cannot decrypt.
        let message = client(public(padding, pair), SUITES[0])
            .encrypt(b"only RSA", &context())
            .unwrap();
        let e = keyring_error(decrypt(multi, &message));
        assert!(
            matches!(&e, KeyringError::AllFailed(all) if all.len() == 2
                && all[0] == KeyringError::NoMatchingKey
                && matches!(all[1], KeyringError::Unsupported(_))),
            "{e:?}"
        );
    }

    /// In builds with RustCrypto beside aws-lc-rs: the same keyring refuses RustCrypto clients
    /// with the provider's error, and keeps working for aws-lc-rs ones.
    #[cfg(feature = "rust-crypto")]
    #[test]
    fn rust_crypto_client_gets_unsupported_rsa() {
        let rust_crypto = envcrypt::crypto::provider_by_name("rust-crypto").unwrap();
        let pair = &pairs()[0];
        let padding = RsaPadding::OaepSha256;
        let message = client(public(padding, pair), SUITES[0])
            .encrypt(b"secret", &context())
            .unwrap();
        let unsupported = KeyringError::Crypto(envcrypt::crypto::CryptoError::Unsupported("RSA"));
        for keyring in [public(padding, pair), private(padding, pair)] {
            let e = Client::builder()
                .keyring(keyring)
                .provider(rust_crypto)
                .build()
                .unwrap()
                .encrypt(b"x", &context())
                .unwrap_err();
            assert!(
                matches!(&e, Error::Keyring(k) if *k == unsupported),
                "{e:?}"
            );
        }
        let shared = Arc::new(private(padding, pair));
        let with = |provider| {
            Client::builder()
                .materials_manager(envcrypt::materials::DefaultMaterialsManager::from_arc(
                    shared.clone(),
                ))
                .provider(provider)
                .build()
                .unwrap()
                .decrypt(&message, &DecryptOptions::default())
        };
        let e = with(rust_crypto).unwrap_err();
        assert!(
            matches!(&e, Error::Keyring(k) if *k == unsupported),
            "{e:?}"
        );
        assert_eq!(with(default_provider()).unwrap().plaintext, b"secret");
        assert!(with(rust_crypto).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Without an RSA provider at all

/// The pure-Rust build: RSA keyrings build (PEM and DER are checked without a provider) and
/// refuse to work with the provider's typed error.
#[cfg(all(
    feature = "rust-crypto",
    not(any(feature = "aws-lc-rs", feature = "fips"))
))]
#[test]
fn no_rsa_provider_is_crypto_unsupported() {
    use envcrypt::crypto::CryptoError;
    use envcrypt::keyring::Keyring;
    use envcrypt::{Client, Error};
    let public = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9sgu70LihpBZqbzCj8Jd
38k6WAstz+kvKfSXhjH/tVnsTS64mWfzUqtS8XJ/XCn+N4z1/HaTR0Qd7LEPVE6g
UfjcD3T17ufzTFSicol2N/i9INoqHKm+GYgVGn2euRQKCF7QtSXv8U7Rqlw8SGGK
IInpp0AqQYkiD4xjZtR6e92PdAm2CKicnojtrNa9BnpiQKYFCd5QVFgmhMX6zjIQ
DqOatBYB5bka4vaQQrvGnuUnSF1fgomFtW0RkVPashWKsL41+iJBSFgDH5NHr6J+
yKqf3NCJ4AZnAnB8SjXsj2SO9m9OrIYfrjTLFTRQ+n6ut+A9AlD5n7FuQV1lpeIs
IQIDAQAB
-----END PUBLIC KEY-----
";
    let keyring = RawRsaKeyring::from_pem(NAMESPACE, NAME, RsaPadding::OaepSha256, public).unwrap();
    fn client(keyring: impl Keyring + 'static) -> Client {
        Client::builder().keyring(keyring).build().unwrap()
    }
    let e = client(keyring).encrypt(b"x", &context()).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Keyring(KeyringError::Crypto(CryptoError::Unsupported("RSA")))
        ),
        "{e:?}"
    );
}
