//! The engine's typed errors for steps taken out of order: each misuse names itself, a
//! failed decryptor says so, and bad arguments are their own error.

use envcrypt::engine::{DecryptConfig, Decryptor, Next};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{
    AlgorithmSuite, Client, ConfigError, DecryptOptions, EncryptionContext, Error, FormatError,
};

fn message(suite: AlgorithmSuite) -> (Client, Vec<u8>) {
    let client = Client::builder()
        .keyring(RawAesKeyring::new("ns", "key", &[5; 32]).unwrap())
        .suite(suite)
        .build()
        .unwrap();
    let m = client
        .encrypt(b"pixel data", &EncryptionContext::new())
        .unwrap();
    (client, m)
}

fn out_of_order(e: Error, expected: &str) {
    match e {
        Error::Config(ConfigError::OutOfOrder { step }) => assert_eq!(step, expected),
        other => panic!("expected {expected} out of order, got {other:?}"),
    }
}

#[test]
fn steps_out_of_order_name_themselves() {
    let (client, m) = message(AlgorithmSuite::Aes256GcmHkdfSha512Commit);
    let mut dec = Decryptor::new(DecryptConfig::default());
    out_of_order(dec.frame_opener().err().unwrap(), "frame_opener");
    out_of_order(dec.seek_frame(1).unwrap_err(), "seek_frame");
    let len = dec.parse_header(&m).unwrap().unwrap();
    out_of_order(dec.parse_header(&m).unwrap_err(), "parse_header");
    // parse_header out of order is final: the decryptor failed.
    let e = dec.next_frame(&m[len..]).unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::AfterFailure)),
        "{e:?}"
    );

    let mut dec = Decryptor::new(DecryptConfig::default());
    let len = dec.parse_header(&m).unwrap().unwrap();
    out_of_order(
        dec.final_frame_position(100).unwrap_err(),
        "final_frame_position",
    );
    client.unlock(&mut dec, &DecryptOptions::default()).unwrap();
    let e = dec.seek_frame(0).unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::InvalidSequence(0))),
        "{e:?}"
    );
    let Next::Unit(layout) = dec.next_frame(&m[len..]).unwrap() else {
        panic!("the whole message is there")
    };
    let mut unit = m[len..len + layout.total_len()].to_vec();
    dec.open_frame_in_place(&layout, &mut unit).unwrap();
    assert!(dec.is_done());
    out_of_order(dec.next_frame(&m[len..]).unwrap_err(), "next_frame");
}

#[test]
fn next_frame_asks_for_exactly_what_the_unit_needs() {
    let (client, m) = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
    let mut dec = Decryptor::new(DecryptConfig::default());
    let len = dec.parse_header(&m).unwrap().unwrap();
    client.unlock(&mut dec, &DecryptOptions::default()).unwrap();
    let body = &m[len..];
    // Nothing yet: the marker's 4 bytes; then the final frame's 24-byte prefix; then the
    // whole frame (10 bytes + tag); then the footer's length field; then the footer.
    assert_eq!(dec.next_frame(&body[..0]).unwrap(), Next::NeedBytes(4));
    assert_eq!(dec.next_frame(&body[..4]).unwrap(), Next::NeedBytes(24));
    assert_eq!(
        dec.next_frame(&body[..24]).unwrap(),
        Next::NeedBytes(24 + 10 + 16)
    );
    assert_eq!(dec.next_frame(&body[..50]).unwrap(), Next::NeedBytes(52));
    let sig = u16::from_be_bytes([body[50], body[51]]) as usize;
    assert_eq!(
        dec.next_frame(&body[..52]).unwrap(),
        Next::NeedBytes(52 + sig)
    );
    assert_eq!(body.len(), 52 + sig);
    let Next::Unit(layout) = dec.next_frame(body).unwrap() else {
        panic!("whole")
    };
    assert_eq!(layout.total_len(), body.len());
    // A message whose frame length is over the reader's limit is refused at its header
    // (no frame of it is read); one under the limit decrypts.
    let strict = Client::builder()
        .keyring(RawAesKeyring::new("ns", "key", &[5; 32]).unwrap())
        .max_frame_length(1024)
        .build()
        .unwrap();
    let big = Client::builder()
        .keyring(RawAesKeyring::new("ns", "key", &[5; 32]).unwrap())
        .frame_length(512)
        .build()
        .unwrap()
        .encrypt(&[1; 700], &EncryptionContext::new())
        .unwrap();
    let e = strict.decrypt(&big, &DecryptOptions::default());
    assert!(e.is_ok(), "{e:?}");
    let huge_frames = Client::builder()
        .keyring(RawAesKeyring::new("ns", "key", &[5; 32]).unwrap())
        .frame_length(4096)
        .build()
        .unwrap()
        .encrypt(&[1; 5000], &EncryptionContext::new())
        .unwrap();
    let e = strict
        .decrypt(&huge_frames, &DecryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, Error::Format(FormatError::FrameLengthOverLimit { .. })),
        "{e:?}"
    );
}
