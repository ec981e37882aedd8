//! The parallel frame pipeline: same bytes as the sequential paths, same errors, the
//! release rule under threads, any thread count.

use envcrypt::format::{parse_header, HeaderLimits};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{
    AlgorithmSuite, AuthenticationError, Client, DecryptOptions, EncryptionContext, Error,
    FormatError,
};

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
];

fn client(suite: AlgorithmSuite, frame: u32) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("pipeline", "key", &[0x11; 32]).unwrap())
        .suite(suite)
        .frame_length(frame)
        .build()
        .unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn opts(threads: usize) -> PipelineOptions {
    // Small frames too go to the workers, so these tests cover the threaded paths.
    PipelineOptions::default()
        .with_threads(threads)
        .with_parallel_min_frame(1)
}

#[test]
fn round_trips_for_every_thread_count_and_shape() {
    let ctx = EncryptionContext::from_pairs([("k", "v")]);
    for suite in SUITES {
        for frame in [1u32, 17, 4096, 65536] {
            let c = client(suite, frame);
            for len in [
                0,
                1,
                frame as usize,
                3 * frame as usize,
                5 * frame as usize + 3,
            ] {
                let plaintext = data(len.min(400_000));
                for threads in [0, 1, 2, 3, 8] {
                    let mut message = Vec::new();
                    let stats = c
                        .encrypt_stream(&plaintext[..], &mut message, &ctx, &opts(threads))
                        .unwrap();
                    assert_eq!(stats.bytes_in, plaintext.len() as u64);
                    assert_eq!(stats.bytes_out, message.len() as u64);
                    // The sequential one-shot reader agrees.
                    let one_shot = c.decrypt(&message, &DecryptOptions::default()).unwrap();
                    assert_eq!(one_shot.plaintext, plaintext);
                    for read_threads in [1, 2, 5] {
                        let mut out = Vec::new();
                        let (header, stats) = c
                            .decrypt_stream(
                                &message[..],
                                &mut out,
                                &DecryptOptions::default(),
                                &opts(read_threads),
                            )
                            .unwrap();
                        assert_eq!(
                            out, plaintext,
                            "{suite:?} {frame} {len} {threads}/{read_threads}"
                        );
                        assert_eq!(header.suite, suite);
                        assert_eq!(stats.bytes_in, message.len() as u64);
                        assert_eq!(stats.bytes_out, plaintext.len() as u64);
                    }
                }
            }
        }
    }
}

/// Frames move between the pipelines' threads in batches (16 of these small frames at
/// once); streams of many batches, a last batch that is not full, and every number of
/// frames in flight (fewer than a batch, not a multiple of one) give a message the
/// sequential reader accepts (frames out of order would fail their tags: the sequence
/// number is in each frame's nonce and AAD), and the decrypting pipeline gives the
/// plaintext back.
#[test]
fn frames_in_batches_round_trip_for_any_frames_in_flight() {
    let ctx = EncryptionContext::new();
    for suite in SUITES {
        let c = client(suite, 512);
        for len in [16 * 512, 16 * 512 + 1, 100 * 512 + 7, 333 * 512] {
            let plaintext = data(len);
            for threads in [0, 2, 3, 8] {
                for in_flight in [0, 1, 2, 3, 7, 40] {
                    let options = opts(threads).with_frames_in_flight(in_flight);
                    let mut message = Vec::new();
                    let stats = c
                        .encrypt_stream(&plaintext[..], &mut message, &ctx, &options)
                        .unwrap();
                    assert_eq!(stats.bytes_out, message.len() as u64);
                    let back = c.decrypt(&message, &DecryptOptions::default()).unwrap();
                    let what = format!("{suite:?} {len} {threads} {in_flight}");
                    assert!(back.plaintext == plaintext, "{what}");
                    let mut out = Vec::new();
                    c.decrypt_stream(&message[..], &mut out, &DecryptOptions::default(), &options)
                        .unwrap();
                    assert!(out == plaintext, "{what}");
                }
            }
        }
    }
}

/// Across batches, the decrypting pipeline reports the first bad frame in message order,
/// a cut message and a bad signature, and releases nothing past the failure.
#[test]
fn failures_across_batches_are_reported_in_message_order() {
    for suite in SUITES {
        let c = client(suite, 256);
        let plaintext = data(256 * 100 + 9);
        let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
        let header_len = parse_header(&message, &HeaderLimits::new(1, 256))
            .unwrap()
            .unwrap()
            .bytes()
            .len();
        for in_flight in [0, 3, 40] {
            let options = opts(2).with_frames_in_flight(in_flight);
            let decrypt = |m: &[u8]| {
                let mut out = Vec::new();
                let e = c
                    .decrypt_stream(m, &mut out, &DecryptOptions::default(), &options)
                    .unwrap_err();
                (e, out)
            };
            // Frames 40 and 70 (batches 3 and 5) broken: frame 40 is the one reported.
            let mut t = message.clone();
            t[header_len + 39 * 288 + 20] ^= 1;
            t[header_len + 69 * 288 + 20] ^= 1;
            let (e, out) = decrypt(&t);
            assert!(
                matches!(
                    e,
                    Error::Authentication(AuthenticationError::FrameTag { sequence: 40 })
                ),
                "{suite:?} {in_flight}: {e:?}"
            );
            assert!(out.len() <= 39 * 256 && plaintext.starts_with(&out));
            if suite.signature().is_some() {
                // Signed messages release nothing before the signature verified.
                assert!(out.is_empty());
                let mut t = message.clone();
                let last = t.len() - 1;
                t[last] ^= 0x55;
                let (e, out) = decrypt(&t);
                assert!(
                    matches!(e, Error::Authentication(AuthenticationError::Signature)),
                    "{in_flight}: {e:?}"
                );
                assert!(out.is_empty());
            }
            let (e, out) = decrypt(&message[..message.len() - 1]);
            assert!(matches!(e, Error::Format(FormatError::Truncated)), "{e:?}");
            assert!(out.len() <= 100 * 256, "final frame released");
        }
    }
}

#[test]
fn one_shot_messages_decrypt_through_the_pipeline() {
    for suite in SUITES {
        let c = client(suite, 1000);
        let plaintext = data(123_456);
        let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
        let mut out = Vec::new();
        c.decrypt_stream(&message[..], &mut out, &DecryptOptions::default(), &opts(4))
            .unwrap();
        assert_eq!(out, plaintext);
    }
}

/// Decrypts with `threads`; returns the error and what reached the output.
fn broken(c: &Client, message: &[u8], threads: usize) -> (Error, Vec<u8>) {
    let mut out = Vec::new();
    let err = c
        .decrypt_stream(
            message,
            &mut out,
            &DecryptOptions::default(),
            &opts(threads),
        )
        .unwrap_err();
    (err, out)
}

#[test]
fn tampering_truncation_and_trailing_bytes_are_caught_by_every_thread_count() {
    for suite in SUITES {
        let c = client(suite, 256);
        let plaintext = data(256 * 10 + 7);
        let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
        let limits = HeaderLimits::new(1, 256);
        let header_len = parse_header(&message, &limits)
            .unwrap()
            .unwrap()
            .bytes()
            .len();
        for threads in [1, 2, 4] {
            // Flip a ciphertext byte of frame 4: frames 1..3 may be released, nothing after.
            let mut t = message.clone();
            t[header_len + 3 * 288 + 20] ^= 1;
            let (e, out) = broken(&c, &t, threads);
            assert!(
                matches!(
                    e,
                    Error::Authentication(AuthenticationError::FrameTag { sequence: 4 })
                ),
                "{e:?}"
            );
            assert!(
                out.len() <= 3 * 256 && plaintext.starts_with(&out),
                "released {}",
                out.len()
            );

            let (e, out) = broken(&c, &message[..message.len() - 1], threads);
            assert!(matches!(e, Error::Format(FormatError::Truncated)), "{e:?}");
            assert!(out.len() <= 10 * 256, "final frame released");

            let mut long = message.clone();
            long.push(0);
            let (e, out) = broken(&c, &long, threads);
            assert!(
                matches!(e, Error::Format(FormatError::TrailingBytes)),
                "{e:?}"
            );
            assert!(
                out.len() <= 10 * 256,
                "final frame released before the end check"
            );
        }
    }
}

#[test]
fn a_bad_signature_withholds_the_final_frame() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384, 100);
    let plaintext = data(450);
    let mut message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
    let last = message.len() - 1;
    message[last] ^= 0x55; // inside the DER signature
    for threads in [1, 2, 4] {
        let (e, out) = broken(&c, &message, threads);
        assert!(
            matches!(e, Error::Authentication(AuthenticationError::Signature)),
            "{e:?}"
        );
        assert!(out.len() <= 400, "final frame released: {}", out.len());
        assert!(plaintext.starts_with(&out));
    }
}

#[test]
fn the_first_error_of_a_failing_output_is_reported() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 1024);
    for threads in [1, 3] {
        let e = c
            .encrypt_stream(
                &data(100_000)[..],
                Full,
                &EncryptionContext::new(),
                &opts(threads),
            )
            .unwrap_err();
        assert!(
            matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull),
            "{e:?}"
        );
    }
}

#[test]
fn in_memory_parallel_paths_match_the_single_threaded_ones() {
    let ctx = EncryptionContext::from_pairs([("k", "v")]);
    for suite in SUITES {
        for frame in [1u32, 100, 4096] {
            let c = client(suite, frame);
            for len in [0usize, 1, 100 * 17, 4096 * 40 + 5, 300_000] {
                let plaintext = data(len);
                // 0: one per core, and for signed suites one core left to the hash.
                for threads in [0, 1, 2, 4] {
                    let mut message = Vec::new();
                    c.encrypt_parallel(&plaintext, &ctx, &mut message, &opts(threads))
                        .unwrap();
                    let sequential = c.decrypt(&message, &DecryptOptions::default()).unwrap();
                    assert_eq!(sequential.plaintext, plaintext);
                    let mut out = vec![0xAA; 7];
                    c.decrypt_parallel(
                        &message,
                        &DecryptOptions::default(),
                        &mut out,
                        &opts(threads),
                    )
                    .unwrap();
                    assert_eq!(out, plaintext, "{suite:?} {frame} {len} {threads}");
                }
            }
        }
    }
}

#[test]
fn in_memory_parallel_decrypt_reports_the_first_bad_frame_and_releases_nothing() {
    for suite in SUITES {
        let c = client(suite, 64);
        let plaintext = data(64 * 100 + 3);
        let message = c.encrypt(&plaintext, &EncryptionContext::new()).unwrap();
        let limits = HeaderLimits::new(1, 64);
        let header_len = parse_header(&message, &limits)
            .unwrap()
            .unwrap()
            .bytes()
            .len();
        let mut t = message.clone();
        // Frames 40 and 90 are both damaged: 40 is reported.
        t[header_len + 39 * 96 + 30] ^= 1;
        t[header_len + 89 * 96 + 30] ^= 1;
        for threads in [1, 2, 4] {
            let mut out = Vec::new();
            let e = c
                .decrypt_parallel(&t, &DecryptOptions::default(), &mut out, &opts(threads))
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Authentication(AuthenticationError::FrameTag { sequence: 40 })
                ),
                "{e:?}"
            );
            assert!(out.is_empty());
            let mut long = message.clone();
            long.push(1);
            let e = c
                .decrypt_parallel(&long, &DecryptOptions::default(), &mut out, &opts(threads))
                .unwrap_err();
            assert!(
                matches!(e, Error::Format(FormatError::TrailingBytes)),
                "{e:?}"
            );
            let e = c
                .decrypt_parallel(
                    &message[..message.len() - 1],
                    &DecryptOptions::default(),
                    &mut out,
                    &opts(threads),
                )
                .unwrap_err();
            assert!(matches!(e, Error::Format(FormatError::Truncated)), "{e:?}");
            assert!(out.is_empty());
        }
    }
}

/// Counts the `read` calls a stream makes on its source.
struct CountingReads<'a> {
    inner: &'a [u8],
    calls: usize,
}

impl std::io::Read for CountingReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        self.inner.read(buf)
    }
}

#[test]
fn a_regular_frame_takes_one_read_of_the_source() {
    // Each extra regular frame costs exactly one read call (one syscall on a file), for
    // every suite and thread count.
    let ctx = EncryptionContext::new();
    for suite in SUITES {
        let c = client(suite, 4096);
        for threads in [1, 2] {
            let mut calls = Vec::new();
            for frames in [100usize, 300] {
                let message = c.encrypt(&data(frames * 4096 + 7), &ctx).unwrap();
                let mut source = CountingReads {
                    inner: &message,
                    calls: 0,
                };
                let mut out = Vec::new();
                c.decrypt_stream(
                    &mut source,
                    &mut out,
                    &DecryptOptions::default(),
                    &opts(threads),
                )
                .unwrap();
                calls.push(source.calls);
            }
            assert_eq!(
                calls[1] - calls[0],
                200,
                "{suite:?} threads {threads}: {calls:?}"
            );
        }
    }
}
