//! What streaming decryption releases before a signed message's signature verified.
//!
//! A frame's tag proves only that someone holding the data key sealed it, and every
//! authorised decryptor can unwrap the data key. Here every frame verifies and only the
//! signature fails (its last byte flipped): by default no adapter may release any plaintext
//! of such a message; the opt-in [`ReleasePolicy::UnverifiedStream`] releases the frames.

use std::io::Read;

use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{
    AlgorithmSuite, AuthenticationError, Client, DecryptOptions, EncryptionContext, Error,
    ReleasePolicy,
};

const FL: usize = 4096;

fn client(suite: AlgorithmSuite) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("ns", "key", &[9; 32]).unwrap())
        .suite(suite)
        .frame_length(FL as u32)
        .build()
        .unwrap()
}

fn plaintext() -> Vec<u8> {
    (0..64 * FL + 100).map(|i| (i % 253) as u8).collect()
}

/// A signed message whose frames all verify but whose signature does not.
fn bad_signature() -> (Client, Vec<u8>, Vec<u8>) {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
    let pt = plaintext();
    let mut m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
    let last = m.len() - 1;
    m[last] ^= 0x01;
    (c, pt, m)
}

fn options(release: ReleasePolicy) -> DecryptOptions {
    DecryptOptions::default().with_release(release)
}

fn pipelines() -> [PipelineOptions; 2] {
    [
        PipelineOptions::single_threaded(),
        PipelineOptions::default()
            .with_threads(2)
            .with_parallel_min_frame(1),
    ]
}

fn is_signature_error(e: &Error) -> bool {
    matches!(e, Error::Authentication(AuthenticationError::Signature))
}

fn reader_error(e: std::io::Error) -> Error {
    *e.into_inner().unwrap().downcast::<Error>().unwrap()
}

#[test]
fn decrypt_stream_writes_nothing_of_a_signed_message_whose_signature_fails() {
    let (c, pt, m) = bad_signature();
    for pipeline in pipelines() {
        let mut out = Vec::new();
        let opts = options(ReleasePolicy::Verified);
        let e = c
            .decrypt_stream(&m[..], &mut out, &opts, &pipeline)
            .unwrap_err();
        assert!(is_signature_error(&e), "{e:?}");
        assert!(out.is_empty(), "{} bytes released", out.len());

        // Opt-in: the frames before the last are released, then the error.
        let mut out = Vec::new();
        let opts = options(ReleasePolicy::UnverifiedStream);
        let e = c
            .decrypt_stream(&m[..], &mut out, &opts, &pipeline)
            .unwrap_err();
        assert!(is_signature_error(&e), "{e:?}");
        assert_eq!(out, &pt[..64 * FL]);
    }
}

#[test]
fn decrypt_reader_returns_nothing_of_a_signed_message_whose_signature_fails() {
    let (c, pt, m) = bad_signature();
    let mut r = c
        .decrypt_reader(&m[..], &options(ReleasePolicy::Verified))
        .unwrap();
    let mut buf = vec![0u8; 100];
    let e = reader_error(r.read(&mut buf).unwrap_err());
    assert!(is_signature_error(&e), "{e:?}");

    let mut r = c
        .decrypt_reader(&m[..], &options(ReleasePolicy::UnverifiedStream))
        .unwrap();
    let mut out = Vec::new();
    let e = reader_error(r.read_to_end(&mut out).unwrap_err());
    assert!(is_signature_error(&e), "{e:?}");
    assert_eq!(out, &pt[..64 * FL]);
}

#[cfg(feature = "tokio")]
#[test]
fn the_async_reader_returns_nothing_of_a_signed_message_whose_signature_fails() {
    use tokio::io::AsyncReadExt;
    let (c, _, m) = bad_signature();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = options(ReleasePolicy::Verified);
        let mut r = c
            .decrypt_async_reader(&m[..], &opts, &PipelineOptions::default())
            .await
            .unwrap();
        let mut buf = vec![0u8; 100];
        let e = reader_error(r.read(&mut buf).await.unwrap_err());
        assert!(is_signature_error(&e), "{e:?}");
    });
}

/// The held-back paths give the same plaintext as the early ones when all verifies.
#[test]
fn verified_release_round_trips_signed_and_unsigned_messages() {
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
    ] {
        let c = client(suite);
        let pt = plaintext();
        let m = c.encrypt(&pt, &EncryptionContext::new()).unwrap();
        for pipeline in pipelines() {
            let mut out = Vec::new();
            c.decrypt_stream(&m[..], &mut out, &DecryptOptions::default(), &pipeline)
                .unwrap();
            assert_eq!(out, pt);
        }
        let mut r = c
            .decrypt_reader(&m[..], &DecryptOptions::default())
            .unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 777];
        loop {
            match r.read(&mut buf).unwrap() {
                0 => break,
                n => out.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(out, pt);
    }
}
