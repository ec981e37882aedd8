//! Messages written with each compiled-in crypto provider decrypt with every other one.
//!
//! Run in each feature configuration of the test command, so every pair of providers that
//! can share a build is covered (aws-lc-rs with RustCrypto, the FIPS module with
//! RustCrypto); with one provider compiled in, it checks that one against itself.

use std::io::{Read, Write};

use envcrypt::crypto::{self, CryptoProvider};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};

fn client(provider: &'static CryptoProvider, suite: AlgorithmSuite, frame: u32) -> Client {
    Client::builder()
        .provider(provider)
        .keyring(RawAesKeyring::new("cross", "provider-key", &[0x33; 32]).unwrap())
        .suite(suite)
        .frame_length(frame)
        .build()
        .unwrap()
}

#[test]
fn every_provider_reads_every_other() {
    let providers = crypto::providers();
    assert!(!providers.is_empty());
    let context = EncryptionContext::from_pairs([("study", "cross-provider"), ("Größe", "患者")]);
    let mut cases = 0;
    for writer in providers {
        for reader in providers {
            for suite in [
                AlgorithmSuite::Aes256GcmHkdfSha512Commit,
                AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
            ] {
                for (frame, len) in [
                    (16u32, 0usize),
                    (16, 1),
                    (128, 1000),
                    (4096, 3 * 4096),
                    (65536, 200_000),
                ] {
                    let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
                    let w = client(writer, suite, frame);
                    let r = client(reader, suite, frame);
                    let message = w.encrypt(&plaintext, &context).unwrap();
                    let got = r.decrypt(&message, &DecryptOptions::default()).unwrap();
                    assert_eq!(
                        got.plaintext, plaintext,
                        "{} -> {}",
                        writer.name, reader.name
                    );
                    assert_eq!(got.header.suite, suite);

                    // And through the streaming adapters.
                    let mut sink = w.encrypt_writer(Vec::new(), &context).unwrap();
                    sink.write_all(&plaintext).unwrap();
                    let message = sink.finish().unwrap();
                    let mut out = Vec::new();
                    r.decrypt_reader(&message[..], &DecryptOptions::default())
                        .unwrap()
                        .read_to_end(&mut out)
                        .unwrap();
                    assert_eq!(
                        out, plaintext,
                        "{} -> {} (stream)",
                        writer.name, reader.name
                    );
                    cases += 1;
                }
            }
        }
    }
    let names: Vec<_> = providers.iter().map(|p| p.name).collect();
    println!("{cases} cases over providers {names:?}");
    assert_eq!(cases, providers.len() * providers.len() * 2 * 5);
}

#[test]
fn provider_names_are_unique_and_findable() {
    for p in crypto::providers() {
        assert!(std::ptr::eq(crypto::provider_by_name(p.name).unwrap(), *p));
    }
    assert!(crypto::provider_by_name("no-such-provider").is_none());
    assert!(std::ptr::eq(
        crypto::default_provider(),
        crypto::providers()[0]
    ));
}
