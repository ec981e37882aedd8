//! How envcrypt lays out the frames it writes, on every encrypt path, and the frame-ticket
//! rules that keep a GCM nonce from being used twice.
//!
//! A plaintext that is a non-zero multiple of the frame length ends with full regular frames
//! and an empty final frame, as the official encryptors write it: the AWS Encryption CLI
//! (Python ESDK 3.x) refuses a final frame as long as the frame length.

use std::io::Write;

use envcrypt::format::{parse_frame_header, parse_header, BodyKind, HeaderLimits};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{AlgorithmSuite, Client, ConfigError, DecryptOptions, EncryptionContext, Error};

const FL: u32 = 4096;

fn client(suite: AlgorithmSuite) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("ns", "key", &[7; 32]).unwrap())
        .suite(suite)
        .frame_length(FL)
        .build()
        .unwrap()
}

/// The content lengths of a message's frames, in order (the last is the final frame).
fn frame_lengths(message: &[u8]) -> Vec<u64> {
    let limits = HeaderLimits::new(8, FL);
    let parsed = parse_header(message, &limits).unwrap().unwrap();
    let h = &parsed.header;
    let mut pos = parsed.bytes().len();
    let mut lengths = Vec::new();
    loop {
        let fh = parse_frame_header(&message[pos..], h.content_type, h.frame_length)
            .unwrap()
            .unwrap();
        assert_eq!(fh.sequence as usize, lengths.len() + 1);
        lengths.push(fh.content_len);
        pos += fh.prefix_len + fh.content_len as usize + 16;
        if fh.kind == BodyKind::Final {
            return lengths;
        }
    }
}

/// Every way to encrypt, each giving the whole message.
fn encrypt_every_way(c: &Client, pt: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let ctx = EncryptionContext::new();
    let mut out = vec![("encrypt", c.encrypt(pt, &ctx).unwrap())];
    let mut m = Vec::new();
    let parallel = PipelineOptions::default()
        .with_threads(2)
        .with_parallel_min_frame(1);
    c.encrypt_parallel(pt, &ctx, &mut m, &parallel).unwrap();
    out.push(("encrypt_parallel", m));
    for (name, opts) in [
        (
            "encrypt_stream (one thread)",
            PipelineOptions::single_threaded(),
        ),
        ("encrypt_stream (workers)", parallel.clone()),
    ] {
        let mut m = Vec::new();
        c.encrypt_stream(pt, &mut m, &ctx, &opts).unwrap();
        out.push((name, m));
    }
    for chunk in [1, 1000, FL as usize, pt.len().max(1)] {
        let mut w = c.encrypt_writer(Vec::new(), &ctx).unwrap();
        for piece in pt.chunks(chunk) {
            w.write_all(piece).unwrap();
        }
        out.push(("encrypt_writer", w.finish().unwrap()));
    }
    out
}

#[test]
fn a_frame_aligned_plaintext_ends_with_an_empty_final_frame_on_every_path() {
    let fl = FL as usize;
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512Commit,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
    ] {
        let c = client(suite);
        for len in [
            0,
            1,
            fl - 1,
            fl,
            fl + 1,
            2 * fl,
            3 * fl,
            40 * fl,
            40 * fl + 5,
        ] {
            let pt: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut expected = vec![FL as u64; len / fl];
            expected.push((len % fl) as u64);
            for (path, message) in encrypt_every_way(&c, &pt) {
                assert_eq!(
                    frame_lengths(&message),
                    expected,
                    "{path}, {len} bytes, suite {:#06x}",
                    suite.id()
                );
                let back = c.decrypt(&message, &DecryptOptions::default()).unwrap();
                assert_eq!(back.plaintext, pt, "{path}, {len} bytes");
            }
        }
    }
}

#[cfg(feature = "tokio")]
#[test]
fn the_async_writer_ends_a_frame_aligned_plaintext_with_an_empty_final_frame() {
    use tokio::io::AsyncWriteExt;
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384);
    let pt = vec![3u8; 8 * FL as usize];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let message = rt.block_on(async {
        let mut w = c
            .encrypt_async_writer(
                Vec::new(),
                &EncryptionContext::new(),
                &PipelineOptions::default(),
            )
            .await
            .unwrap();
        w.write_all(&pt).await.unwrap();
        w.finish().await.unwrap()
    });
    let mut expected = vec![FL as u64; 8];
    expected.push(0);
    assert_eq!(frame_lengths(&message), expected);
}

/// The engine refuses to seal a final frame as long as the frame length.
#[test]
fn the_engine_refuses_a_full_length_final_frame() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit);
    let mut enc = c.encryptor(&EncryptionContext::new(), None).unwrap();
    let mut frame = vec![0u8; 24 + FL as usize + 16];
    let e = enc.seal_final_frame(&mut frame).unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::FrameBufferSize(n)) if n == frame.len()),
        "{e:?}"
    );
    // The refusal spent no sequence number: a right-sized retry ends a valid message.
    let mut regular = vec![7u8; enc.regular_frame_len()];
    let e = enc.seal_frame(&mut regular[1..]).unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::FrameBufferSize(_))),
        "{e:?}"
    );
    enc.seal_frame(&mut regular).unwrap();
    let mut last = vec![0u8; 24 + 5 + 16];
    let footer = enc.seal_final_frame(&mut last).unwrap();
    let message = [enc.header(), &regular[..], &last[..], &footer[..]].concat();
    let back = c.decrypt(&message, &DecryptOptions::default()).unwrap();
    assert_eq!(back.plaintext.len(), FL as usize + 5);
}

#[test]
fn a_sealer_refuses_a_sequence_at_or_below_its_last() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit);
    let mut enc = c.encryptor(&EncryptionContext::new(), None).unwrap();
    let (t1, t2) = (enc.reserve_frame().unwrap(), enc.reserve_frame().unwrap());
    assert_eq!((t1.sequence(), t2.sequence()), (1, 2));
    let mut sealer = enc.frame_sealer().unwrap();
    let mut frame = vec![0u8; enc.regular_frame_len()];
    sealer.seal(t2, &mut frame).unwrap();
    let e = sealer.seal(t1, &mut frame).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Config(ConfigError::FrameOutOfOrder {
                sequence: 1,
                last: 2
            })
        ),
        "{e:?}"
    );
    // Another sealer (its own key object) takes the ticket it was not given yet.
    let mut other = enc.frame_sealer().unwrap();
    let t3 = enc.reserve_frame().unwrap();
    other.seal(t3, &mut frame).unwrap();
}

#[test]
fn a_sealer_refuses_a_ticket_of_another_message() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit);
    let mut a = c.encryptor(&EncryptionContext::new(), None).unwrap();
    let mut b = c.encryptor(&EncryptionContext::new(), None).unwrap();
    let ticket_of_a = a.reserve_frame().unwrap();
    let _ = b.reserve_frame().unwrap();
    let mut frame = vec![0u8; b.regular_frame_len()];
    let e = b
        .frame_sealer()
        .unwrap()
        .seal(ticket_of_a, &mut frame)
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::ForeignFrameTicket)),
        "{e:?}"
    );
}

#[test]
fn tickets_are_handed_out_once_and_none_after_the_final_one() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit);
    let mut enc = c.encryptor(&EncryptionContext::new(), None).unwrap();
    let mut run = enc.reserve_frames(5).unwrap();
    let front = run.split_front(2);
    let seqs: Vec<u32> = front.chain(run).map(|t| t.sequence()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(enc.reserve_frame().unwrap().sequence(), 6);
    assert_eq!(enc.reserve_final_frame().unwrap().sequence(), 7);
    for e in [
        enc.reserve_frame().unwrap_err(),
        enc.reserve_final_frame().unwrap_err(),
        enc.reserve_frames(1).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::Config(ConfigError::MessageFinished)),
            "{e:?}"
        );
    }
    let mut enc = c.encryptor(&EncryptionContext::new(), None).unwrap();
    let e = enc.reserve_frames(u32::MAX as usize).unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::TooManyFrames)),
        "{e:?}"
    );
}
