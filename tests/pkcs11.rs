//! The PKCS#11 keyring against a real SoftHSM2 token.
//!
//! One token directory serves the whole test binary (SoftHSM reads `SOFTHSM2_CONF` once, at
//! `C_Initialize`, and the variable is process-global): the first test to need it creates
//! the directory, writes `softhsm2.conf`, sets `SOFTHSM2_CONF`, creates two tokens with
//! `softhsm2-util` and their keys with `pkcs11-tool` (imported AES keys of known bytes,
//! AES and RSA keys generated in the token, an RSA key pair made here and imported), all
//! before the module is first loaded in this process. Every key is sensitive and
//! non-extractable.
//!
//! Covered: AES (imported 128/256-bit, generated) and RSA (generated, imported) round trips
//! through `Client`, one-shot and streaming; the exact EDK formats; wrong PIN, no PIN, wrong
//! token, missing and ambiguous keys, a module that does not load; "not mine" without
//! touching the token; a wrong context or tampered EDK as `UnwrapFailed`; a non-extractable
//! key used without leaving the token (reading `CKA_VALUE` fails); many threads on one
//! keyring and several keyrings on one token; the RSA EDK checked against the crypto
//! provider's OAEP-SHA1 both ways; and an imported AES key interoperating both ways with
//! envcrypt's `RawAesKeyring` and with the Python ESDK's raw AES keyring holding the same
//! bytes (`tests/peer/esdk_raw_aes_peer.py`; Python from `ENVCRYPT_PYTHON`, else
//! `target/esdk-venv/bin/python`, else `/tmp/esdkvenv/bin/python`).
//!
//! Needs SoftHSM2 and OpenSC (`apt-get install -y softhsm2 opensc`; module path from
//! `ENVCRYPT_SOFTHSM_MODULE`) and fails, never skips, without them.
#![cfg(feature = "pkcs11")]

#[path = "common/softhsm.rs"]
mod softhsm;

#[path = "common/python.rs"]
mod python;

use python::Esdk;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use envcrypt::crypto::RsaPadding;
use envcrypt::format::EncryptedDataKey;
use envcrypt::keyring::{
    Keyring, KeyringError, Pkcs11Config, Pkcs11KeyKind, Pkcs11Keyring, RawAesKeyring,
};
use envcrypt::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext, Error};
use serde_json::{json, Value};
use softhsm::SoftHsm;

const TOKEN: &str = "envcrypt-main";
const PIN: &str = "4711-main";
const PIN_TOKEN: &str = "envcrypt-pin";
/// A PIN with characters that must be percent-encoded in a URI.
const PIN_TOKEN_PIN: &str = "p&n;9%/ x";
const SO_PIN: &str = "so-pin-12345";

const AES256_IMPORTED: &str = "aes256-imported";
const AES128_IMPORTED: &str = "aes128-imported";
const AES_GENERATED: &str = "aes256-generated";
const RSA_GENERATED: &str = "rsa-generated";
const RSA_IMPORTED: &str = "rsa-imported";
const DUPLICATE: &str = "duplicate";

fn key256() -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(29).wrapping_add(7))
        .collect()
}

fn key128() -> Vec<u8> {
    (0..16u8)
        .map(|i| i.wrapping_mul(53).wrapping_add(3))
        .collect()
}

struct Hsm {
    hsm: SoftHsm,
    /// PKCS#8 and SPKI DER of the imported RSA key pair (None without an RSA provider).
    rsa_imported: Option<(Vec<u8>, Vec<u8>)>,
}

/// The shared SoftHSM2 directory, tokens and keys, made once per test binary.
fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::create("pkcs11-test");
        // Before any module load in this process; every test passes through here first.
        std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
        hsm.init_token(TOKEN, PIN, SO_PIN);
        hsm.init_token(PIN_TOKEN, PIN_TOKEN_PIN, SO_PIN);
        hsm.import_aes(TOKEN, PIN, AES256_IMPORTED, "01", &key256());
        hsm.import_aes(TOKEN, PIN, AES128_IMPORTED, "02", &key128());
        hsm.generate_aes(TOKEN, PIN, AES_GENERATED, "03");
        hsm.generate_rsa(TOKEN, PIN, RSA_GENERATED, "04", 2048);
        let rsa_imported = envcrypt::crypto::providers()
            .iter()
            .find_map(|p| p.rsa.generate(2048).ok())
            .map(|(pkcs8, spki)| (pkcs8.to_vec(), spki));
        if let Some((pkcs8, spki)) = &rsa_imported {
            hsm.import_rsa(TOKEN, PIN, RSA_IMPORTED, "05", pkcs8, spki);
        }
        hsm.generate_aes(TOKEN, PIN, DUPLICATE, "06");
        hsm.generate_aes(TOKEN, PIN, DUPLICATE, "07");
        hsm.generate_aes(PIN_TOKEN, PIN_TOKEN_PIN, "aes-pin", "01");
        Hsm { hsm, rsa_imported }
    })
}

fn config(key_label: &str) -> Pkcs11Config {
    let hsm = hsm();
    Pkcs11Config::new(&hsm.hsm.module, TOKEN)
        .with_key_label(key_label)
        .with_pin(PIN)
}

fn keyring(key_label: &str) -> Pkcs11Keyring {
    Pkcs11Keyring::new(config(key_label)).unwrap_or_else(|e| panic!("keyring {key_label}: {e}"))
}

fn client(keyring: impl Keyring + 'static, suite: AlgorithmSuite) -> Client {
    Client::builder()
        .keyring(keyring)
        .suite(suite)
        .frame_length(1024)
        .build()
        .unwrap()
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn contexts() -> Vec<EncryptionContext> {
    vec![
        EncryptionContext::new(),
        EncryptionContext::from_pairs([("study", "ct-abdomen"), ("site", "hospital-a")]),
        EncryptionContext::from_pairs([("patient", "Zoë Ångström"), ("部门", "放射科")]),
    ]
}

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
];

/// One-shot, `encrypt_stream`/`decrypt_stream` and writer/reader round trips.
fn round_trips(make: impl Fn() -> Pkcs11Keyring) {
    for suite in SUITES {
        let client = client(make(), suite);
        for ctx in contexts() {
            for len in [0, 1, 1024, 5000] {
                let data = payload(len);
                let msg = client.encrypt(&data, &ctx).unwrap();
                let out = client.decrypt(&msg, &DecryptOptions::default()).unwrap();
                assert_eq!(out.plaintext, data);
                assert_eq!(out.header.encryption_context.get("study"), ctx.get("study"));

                let mut streamed = Vec::new();
                let opts = PipelineOptions::default().with_threads(2);
                client
                    .encrypt_stream(&data[..], &mut streamed, &ctx, &opts)
                    .unwrap();
                let mut back = Vec::new();
                client
                    .decrypt_stream(&streamed[..], &mut back, &DecryptOptions::default(), &opts)
                    .unwrap();
                assert_eq!(back, data);

                let mut w = client.encrypt_writer(Vec::new(), &ctx).unwrap();
                w.write_all(&data).unwrap();
                let written = w.finish().unwrap();
                let mut r = client
                    .decrypt_reader(&written[..], &DecryptOptions::default())
                    .unwrap();
                let mut read = Vec::new();
                r.read_to_end(&mut read).unwrap();
                assert_eq!(read, data);
                // Streams written here decrypt one-shot and the other way round.
                assert_eq!(
                    client
                        .decrypt(&streamed, &DecryptOptions::default())
                        .unwrap()
                        .plaintext,
                    data
                );
            }
        }
    }
}

fn edks(client: &Client, msg: &[u8]) -> Vec<EncryptedDataKey> {
    client
        .decrypt(msg, &DecryptOptions::default())
        .unwrap()
        .header
        .encrypted_data_keys
}

#[test]
fn aes_round_trips_and_edk_format() {
    for (label, bits) in [
        (AES256_IMPORTED, 256),
        (AES128_IMPORTED, 128),
        (AES_GENERATED, 256),
    ] {
        let k = keyring(label);
        assert_eq!(k.key_kind().unwrap(), Pkcs11KeyKind::Aes { bits });
        round_trips(|| keyring(label));

        // Raw AES EDK: name || 128 || 12 || IV; wrapped key || tag.
        let client = client(keyring(label), SUITES[0]);
        let ctx = EncryptionContext::from_pairs([("a", "b")]);
        let msg = client.encrypt(b"x", &ctx).unwrap();
        let found = edks(&client, &msg);
        assert_eq!(found.len(), 1);
        let edk = &found[0];
        assert_eq!(edk.provider_id, "pkcs11");
        let info = &edk.provider_info;
        assert_eq!(info.len(), label.len() + 8 + 12);
        assert_eq!(&info[..label.len()], label.as_bytes());
        assert_eq!(
            &info[label.len()..label.len() + 8],
            &[0, 0, 0, 128, 0, 0, 0, 12]
        );
        assert_eq!(edk.ciphertext.len(), 32 + 16);
        // Fresh IVs.
        let again = edks(&client, &client.encrypt(b"x", &ctx).unwrap());
        assert_ne!(again[0].provider_info, edk.provider_info);
    }
}

#[test]
fn rsa_round_trips_and_edk_format() {
    let mut labels = vec![RSA_GENERATED];
    if hsm().rsa_imported.is_some() {
        labels.push(RSA_IMPORTED);
    }
    for label in labels {
        let k = keyring(label);
        assert_eq!(
            k.key_kind().unwrap(),
            Pkcs11KeyKind::Rsa {
                bits: 2048,
                padding: RsaPadding::OaepSha1,
                can_encrypt: true,
                can_decrypt: true
            }
        );
        round_trips(|| keyring(label));
        let client = client(
            Pkcs11Keyring::new(
                config(label)
                    .with_namespace("hsm-rsa")
                    .with_name("rsa-2026"),
            )
            .unwrap(),
            SUITES[1],
        );
        let msg = client.encrypt(b"rsa", &EncryptionContext::new()).unwrap();
        let edks = edks(&client, &msg);
        assert_eq!(edks[0].provider_id, "hsm-rsa");
        assert_eq!(edks[0].provider_info, b"rsa-2026");
        assert_eq!(edks[0].ciphertext.len(), 256);
    }
}

fn enc_materials(
    suite: AlgorithmSuite,
    ctx: EncryptionContext,
    key: Option<&[u8]>,
) -> EncryptionMaterials {
    let mut materials = EncryptionMaterials::new(envcrypt::crypto::default_provider(), suite, ctx);
    materials.data_key = key.map(|k| DataKey::new(k.to_vec()));
    materials
}

fn dec_materials(suite: AlgorithmSuite, ctx: EncryptionContext) -> DecryptionMaterials {
    DecryptionMaterials::new(envcrypt::crypto::default_provider(), suite, ctx)
}

/// The RSA EDK is plain OAEP-SHA1 (MGF1-SHA1, empty label): the crypto provider's RSA opens
/// what the token sealed, and the token opens what the provider sealed.
#[test]
fn rsa_edk_is_oaep_sha1_both_ways() {
    let Some((pkcs8, spki)) = &hsm().rsa_imported else {
        // Only a build without an RSA provider (pure RustCrypto) gets here.
        assert!(envcrypt::crypto::providers()
            .iter()
            .all(|p| p.rsa.generate(2048).is_err()));
        return;
    };
    let rsa = envcrypt::crypto::providers()
        .iter()
        .find(|p| p.rsa.private_key(pkcs8).is_ok())
        .unwrap()
        .rsa;
    let k = keyring(RSA_IMPORTED);
    let suite = SUITES[0];
    let data_key = [0x5au8; 32];
    let out = envcrypt::block_on(k.on_encrypt(enc_materials(
        suite,
        EncryptionContext::new(),
        Some(&data_key),
    )))
    .unwrap();
    let edk = &out.encrypted_data_keys[0];
    let opened = rsa
        .private_key(pkcs8)
        .unwrap()
        .decrypt(RsaPadding::OaepSha1, &edk.ciphertext)
        .unwrap();
    assert_eq!(&opened[..], &data_key);

    let sealed = rsa
        .public_key(spki)
        .unwrap()
        .encrypt(RsaPadding::OaepSha1, &data_key)
        .unwrap();
    let theirs = EncryptedDataKey {
        provider_id: "pkcs11".into(),
        provider_info: RSA_IMPORTED.as_bytes().to_vec(),
        ciphertext: sealed,
    };
    let got = envcrypt::block_on(k.on_decrypt(
        dec_materials(suite, EncryptionContext::new()),
        std::slice::from_ref(&theirs),
    ))
    .unwrap();
    assert_eq!(got.data_key.unwrap().expose_secret(), &data_key);

    // Other paddings do not open as OAEP-SHA1: "mine but failed".
    let sha256 = rsa
        .public_key(spki)
        .unwrap()
        .encrypt(RsaPadding::OaepSha256, &data_key)
        .unwrap();
    let e = envcrypt::block_on(k.on_decrypt(
        dec_materials(suite, EncryptionContext::new()),
        &[EncryptedDataKey {
            ciphertext: sha256,
            ..theirs
        }],
    ))
    .unwrap_err();
    assert!(matches!(e, KeyringError::UnwrapFailed { .. }), "{e:?}");
}

#[test]
fn wrong_context_and_tampered_edks_are_unwrap_failed() {
    for label in [AES256_IMPORTED, RSA_GENERATED] {
        let k = keyring(label);
        let suite = SUITES[0];
        let ctx = EncryptionContext::from_pairs([("k", "v")]);
        let out =
            envcrypt::block_on(k.on_encrypt(enc_materials(suite, ctx.clone(), None))).unwrap();
        let edk = out.encrypted_data_keys[0].clone();
        let good = envcrypt::block_on(k.on_decrypt(
            dec_materials(suite, ctx.clone()),
            std::slice::from_ref(&edk),
        ))
        .unwrap();
        assert_eq!(
            good.data_key.unwrap().expose_secret(),
            out.data_key.as_ref().unwrap().expose_secret()
        );
        let mut tampered = edk.clone();
        *tampered.ciphertext.last_mut().unwrap() ^= 1;
        let mut cases = vec![(ctx.clone(), tampered)];
        if label != RSA_GENERATED {
            // RSA EDKs carry no context binding; AES ones do.
            cases.push((EncryptionContext::from_pairs([("k", "w")]), edk.clone()));
        }
        for (ctx, edk) in cases {
            let e =
                envcrypt::block_on(k.on_decrypt(dec_materials(suite, ctx), &[edk])).unwrap_err();
            assert!(
                matches!(&e, KeyringError::UnwrapFailed { provider_id, key_name } if provider_id == "pkcs11" && key_name == label),
                "{label}: {e:?}"
            );
        }
        // The keyring (and its session pool) still works afterwards.
        envcrypt::block_on(k.on_decrypt(dec_materials(suite, ctx), &[edk])).unwrap();
    }
}

#[test]
fn wrong_or_missing_pin_is_access_denied() {
    let module = &hsm().hsm.module;
    let base = || Pkcs11Config::new(module, PIN_TOKEN).with_key_label("aes-pin");
    let wrong = "wrong-pin-0000";
    // Nothing logged in to this token yet: C_Login itself refuses.
    let e = Pkcs11Keyring::new(base().with_pin(wrong)).unwrap_err();
    assert!(
        matches!(&e, KeyringError::AccessDenied(m) if m.contains("C_Login failed: PinIncorrect")),
        "{e:?}"
    );
    assert!(e.is_unavailable());
    assert!(!format!("{e} {e:?}").contains(wrong));

    // The right PIN, percent-encoded in a URI.
    let uri = format!(
        "pkcs11:token={PIN_TOKEN};object=aes-pin?module-path={}&pin-value=p%26n%3B9%25%2F%20x",
        module.display()
    );
    let config = Pkcs11Config::parse_uri(&uri).unwrap();
    assert!(!format!("{config:?}").contains(PIN_TOKEN_PIN));
    let good = Pkcs11Keyring::new(config).unwrap();
    assert!(!format!("{good:?}").contains(PIN_TOKEN_PIN));
    let client = client(good, SUITES[0]);
    let msg = client.encrypt(b"pin", &EncryptionContext::new()).unwrap();

    // Logged in now: another keyring must still present the right PIN.
    for config in [base().with_pin(wrong), base()] {
        let e = Pkcs11Keyring::new(config).unwrap_err();
        assert!(matches!(e, KeyringError::AccessDenied(_)), "{e:?}");
        assert!(!e.to_string().contains(wrong));
    }
    // A lazy keyring with the wrong PIN fails when it needs the token, as AccessDenied.
    let lazy = client_for_lazy(base().with_pin(wrong));
    match lazy.decrypt(&msg, &DecryptOptions::default()).unwrap_err() {
        Error::Keyring(KeyringError::AccessDenied(_)) => {}
        e => panic!("{e:?}"),
    }
    assert_eq!(
        client
            .decrypt(&msg, &DecryptOptions::default())
            .unwrap()
            .plaintext,
        b"pin"
    );
}

fn client_for_lazy(config: Pkcs11Config) -> Client {
    client(Pkcs11Keyring::new_lazy(config).unwrap(), SUITES[0])
}

#[test]
fn missing_token_key_or_module_are_typed_errors() {
    let module = &hsm().hsm.module;
    // No such key in the token: the configuration is wrong.
    let e = Pkcs11Keyring::new(config("no-such-key")).unwrap_err();
    assert!(
        matches!(&e, KeyringError::InvalidKey(m) if m.contains("no such key")),
        "{e:?}"
    );
    let e = Pkcs11Keyring::new(
        Pkcs11Config::new(module, TOKEN)
            .with_key_id(vec![0x7f, 0x7f])
            .with_pin(PIN),
    )
    .unwrap_err();
    assert!(matches!(e, KeyringError::InvalidKey(_)), "{e:?}");
    // Two keys with one label: ambiguous, until the id picks one.
    let e = Pkcs11Keyring::new(config(DUPLICATE)).unwrap_err();
    assert!(
        matches!(&e, KeyringError::InvalidKey(m) if m.contains("several")),
        "{e:?}"
    );
    Pkcs11Keyring::new(config(DUPLICATE).with_key_id(vec![0x06])).unwrap();
    // The label selects a secret key but type=private asks for a key pair.
    let e = Pkcs11Keyring::new(
        config(AES256_IMPORTED)
            .with_object_type(envcrypt::keyring::pkcs11::Pkcs11ObjectType::KeyPair),
    )
    .unwrap_err();
    assert!(matches!(e, KeyringError::InvalidKey(_)), "{e:?}");

    // No such token, or a module that does not load: the HSM is unavailable.
    let e = Pkcs11Keyring::new(
        Pkcs11Config::new(module, "no-such-token")
            .with_key_label(AES256_IMPORTED)
            .with_pin(PIN),
    )
    .unwrap_err();
    assert!(matches!(e, KeyringError::Unavailable(_)), "{e:?}");
    assert!(e.is_unavailable());
    let e = Pkcs11Keyring::new(
        Pkcs11Config::new("/nonexistent/libpkcs11.so", TOKEN)
            .with_key_label(AES256_IMPORTED)
            .with_pin(PIN),
    )
    .unwrap_err();
    assert!(matches!(e, KeyringError::Unavailable(_)), "{e:?}");

    // A lazy keyring for a missing token: "not mine" without touching it, Unavailable when
    // it has to wrap.
    let other = client(
        RawAesKeyring::new("elsewhere", "k", &[7; 32]).unwrap(),
        SUITES[0],
    );
    let msg = other
        .encrypt(b"not yours", &EncryptionContext::new())
        .unwrap();
    let lazy = client_for_lazy(
        Pkcs11Config::new(module, "no-such-token")
            .with_key_label(AES256_IMPORTED)
            .with_pin(PIN),
    );
    match lazy.decrypt(&msg, &DecryptOptions::default()).unwrap_err() {
        Error::Keyring(KeyringError::NoMatchingKey) => {}
        e => panic!("{e:?}"),
    }
    match lazy.encrypt(b"x", &EncryptionContext::new()).unwrap_err() {
        Error::Keyring(KeyringError::Unavailable(_)) => {}
        e => panic!("{e:?}"),
    }
    // And a connected keyring also answers "not mine" for another keyring's message.
    let ours = client(keyring(AES256_IMPORTED), SUITES[0]);
    match ours.decrypt(&msg, &DecryptOptions::default()).unwrap_err() {
        Error::Keyring(KeyringError::NoMatchingKey) => {}
        e => panic!("{e:?}"),
    }
}

/// Opens this process's own session on the token (the module is already initialised by the
/// keyrings, and the token logged in by them) and reads a key's attributes.
fn key_attributes(label: &str) -> Vec<Attribute> {
    let ctx = Pkcs11::new(&hsm().hsm.module).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "{label}: the keyring's login makes the key visible"
    );
    session
        .get_attributes(
            found[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Value,
            ],
        )
        .unwrap()
}

#[test]
fn non_extractable_key_never_leaves_the_token() {
    for label in [AES_GENERATED, AES256_IMPORTED] {
        let k = keyring(label);
        let attrs = key_attributes(label);
        assert!(
            attrs.contains(&Attribute::Sensitive(true)),
            "{label}: {attrs:?}"
        );
        assert!(
            attrs.contains(&Attribute::Extractable(false)),
            "{label}: {attrs:?}"
        );
        // C_GetAttributeValue(CKA_VALUE) answers CKR_ATTRIBUTE_SENSITIVE: no value comes back.
        assert!(
            !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
            "{label}: the key value was readable"
        );
        // The same from another process (OpenSC's pkcs11-tool, logged in).
        let hsm = &hsm().hsm;
        let out = hsm.pkcs11_tool(
            TOKEN,
            PIN,
            &[
                "--read-object".as_ref(),
                "--type".as_ref(),
                "secrkey".as_ref(),
                "--label".as_ref(),
                label.as_ref(),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("CKA_VALUE"),
            "{label}: pkcs11-tool read the key: {text}"
        );
        assert!(out.stdout.is_empty() || !out.stdout.windows(32).any(|w| w == key256()));
        // And yet it wraps and unwraps.
        let client = client(k, SUITES[1]);
        let msg = client
            .encrypt(b"never leaves", &EncryptionContext::new())
            .unwrap();
        assert_eq!(
            client
                .decrypt(&msg, &DecryptOptions::default())
                .unwrap()
                .plaintext,
            b"never leaves"
        );
    }
}

#[test]
fn many_threads_share_the_session_pool() {
    let aes = client(keyring(AES_GENERATED), SUITES[0]);
    let rsa = client(keyring(RSA_GENERATED), SUITES[0]);
    std::thread::scope(|s| {
        for t in 0..8usize {
            let (aes, rsa) = (&aes, &rsa);
            s.spawn(move || {
                for i in 0..25usize {
                    let data = payload(t * 100 + i);
                    let ctx = EncryptionContext::from_pairs([("thread", t.to_string())]);
                    let c = if i % 5 == 0 { rsa } else { aes };
                    let msg = c.encrypt(&data, &ctx).unwrap();
                    assert_eq!(
                        c.decrypt(&msg, &DecryptOptions::default())
                            .unwrap()
                            .plaintext,
                        data
                    );
                }
            });
        }
        // Meanwhile, new keyrings on the same token join the existing login.
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    let c = client(keyring(AES256_IMPORTED), SUITES[0]);
                    let msg = c.encrypt(b"join", &EncryptionContext::new()).unwrap();
                    assert_eq!(
                        c.decrypt(&msg, &DecryptOptions::default())
                            .unwrap()
                            .plaintext,
                        b"join"
                    );
                }
            });
        }
    });
}

#[test]
fn imported_key_interoperates_with_raw_aes_keyring() {
    for (label, bytes) in [(AES256_IMPORTED, key256()), (AES128_IMPORTED, key128())] {
        for suite in SUITES {
            let hsm = client(keyring(label), suite);
            let raw = client(RawAesKeyring::new("pkcs11", label, &bytes).unwrap(), suite);
            for ctx in contexts() {
                for len in [0, 1, 3000] {
                    let data = payload(len);
                    let from_hsm = hsm.encrypt(&data, &ctx).unwrap();
                    assert_eq!(
                        raw.decrypt(&from_hsm, &DecryptOptions::default())
                            .unwrap()
                            .plaintext,
                        data
                    );
                    let from_raw = raw.encrypt(&data, &ctx).unwrap();
                    assert_eq!(
                        hsm.decrypt(&from_raw, &DecryptOptions::default())
                            .unwrap()
                            .plaintext,
                        data
                    );
                }
            }
        }
        // Different bytes under the same name: "mine but failed" both ways.
        let mut wrong = bytes.clone();
        wrong[0] ^= 1;
        let hsm = client(keyring(label), SUITES[0]);
        let raw = client(
            RawAesKeyring::new("pkcs11", label, &wrong).unwrap(),
            SUITES[0],
        );
        let ctx = EncryptionContext::new();
        for (enc, dec) in [(&hsm, &raw), (&raw, &hsm)] {
            let msg = enc.encrypt(b"x", &ctx).unwrap();
            match dec.decrypt(&msg, &DecryptOptions::default()).unwrap_err() {
                Error::Keyring(KeyringError::UnwrapFailed { .. }) => {}
                e => panic!("{e:?}"),
            }
        }
    }
}

/// An AES key imported into the token wraps messages that the Python ESDK decrypts with a
/// raw AES keyring holding the same bytes, and decrypts the messages that keyring writes.
#[test]
fn imported_key_interoperates_with_python_esdk() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let keys = [(AES256_IMPORTED, key256()), (AES128_IMPORTED, key128())];
    let mut cases = Vec::new();
    // id -> (plaintext, context) for each check after the peer ran.
    let mut python_decrypts = BTreeMap::new();
    let mut envcrypt_decrypts = BTreeMap::new();
    for (label, bytes) in &keys {
        let key = json!({"namespace": "pkcs11", "name": label, "hex": hex::encode(bytes)});
        for suite in SUITES {
            let hsm = client(keyring(label), suite);
            for (ci, ctx) in contexts().into_iter().enumerate() {
                for len in [0, 1, 1024, 5000] {
                    let data = payload(len);
                    let ctx_json: BTreeMap<&str, &str> = ctx.iter().collect();
                    let id = format!("{label}-{:04x}-{ci}-{len}", suite.id());
                    // envcrypt (PKCS#11) -> Python (raw AES).
                    let msg = hsm.encrypt(&data, &ctx).unwrap();
                    let input = dir.join(format!("to-py-{id}.msg"));
                    fs::write(&input, &msg).unwrap();
                    cases.push(json!({
                        "id": format!("py-decrypt-{id}"), "op": "decrypt", "key": key,
                        "input": input, "output": dir.join(format!("to-py-{id}.out")),
                    }));
                    python_decrypts.insert(format!("py-decrypt-{id}"), (data.clone(), ctx.clone()));
                    // Python (raw AES) -> envcrypt (PKCS#11).
                    let plain = dir.join(format!("from-py-{id}.plain"));
                    fs::write(&plain, &data).unwrap();
                    cases.push(json!({
                        "id": format!("py-encrypt-{id}"), "op": "encrypt", "key": key,
                        "input": plain, "output": dir.join(format!("from-py-{id}.msg")),
                        "suite": format!("{:04x}", suite.id()), "frame_length": 1024,
                        "context": ctx_json,
                    }));
                    envcrypt_decrypts.insert(id, (label, suite, data, ctx.clone()));
                }
            }
        }
    }
    // Python with different key bytes refuses a PKCS#11 message.
    let mut wrong = key256();
    wrong[31] ^= 1;
    let msg = client(keyring(AES256_IMPORTED), SUITES[0])
        .encrypt(b"wrong key", &EncryptionContext::new())
        .unwrap();
    fs::write(dir.join("wrong.msg"), msg).unwrap();
    cases.push(json!({
        "id": "py-wrong-key", "op": "decrypt",
        "key": {"namespace": "pkcs11", "name": AES256_IMPORTED, "hex": hex::encode(wrong)},
        "input": dir.join("wrong.msg"), "output": dir.join("wrong.out"),
    }));

    let job = dir.join("job.json");
    let results = dir.join("results.json");
    fs::write(&job, serde_json::to_vec(&json!({"cases": cases})).unwrap()).unwrap();
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/esdk_raw_aes_peer.py");
    let out = Command::new(python::python(Esdk::V4))
        .arg(&peer)
        .arg(&job)
        .arg(&results)
        .output()
        .expect("running the Python peer");
    assert!(
        out.status.success(),
        "Python peer failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&fs::read(&results).unwrap()).unwrap();
    let results: BTreeMap<String, &Value> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(results.len(), cases.len());

    assert_eq!(
        results["py-wrong-key"]["ok"], false,
        "{}",
        results["py-wrong-key"]
    );
    for (id, (data, ctx)) in &python_decrypts {
        let r = results[id];
        assert_eq!(r["ok"], true, "{id}: {r}");
        let out = fs::read(dir.join(format!("to-py-{}.out", &id["py-decrypt-".len()..]))).unwrap();
        assert_eq!(&out, data, "{id}");
        for (k, v) in ctx.iter() {
            assert_eq!(r["context"][k], v, "{id}");
        }
    }
    for (id, (label, suite, data, ctx)) in envcrypt_decrypts {
        let r = results[&format!("py-encrypt-{id}")];
        assert_eq!(r["ok"], true, "{id}: {r}");
        let msg = fs::read(dir.join(format!("from-py-{id}.msg"))).unwrap();
        let hsm = client(keyring(label), suite);
        let got = hsm.decrypt(&msg, &DecryptOptions::default()).unwrap();
        assert_eq!(got.plaintext, data, "{id}");
        assert_eq!(got.header.suite, suite, "{id}");
        for (k, v) in ctx.iter() {
            assert_eq!(got.header.encryption_context.get(k), Some(v), "{id}");
        }
    }
}
