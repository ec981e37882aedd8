//! The file API (atomic, synced output; the input untouched) and random-access decryption.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use envcrypt::file::FileOptions;
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{
    AlgorithmSuite, AuthenticationError, Client, ConfigError, DecryptOptions, EncryptionContext,
    Error, FormatError,
};

fn client(suite: AlgorithmSuite, frame: u32) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("files", "key", &[0x21; 32]).unwrap())
        .suite(suite)
        .frame_length(frame)
        .build()
        .unwrap()
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 991) as u8).collect()
}

/// A scratch directory holding an image of `len` bytes at `study.dcm`; the paths of the
/// image, its message (`study.dcm.enc`) and its decryption (`study.out.dcm`), and the image.
fn study(len: usize) -> (tempfile::TempDir, [PathBuf; 3], Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = ["study.dcm", "study.dcm.enc", "study.out.dcm"].map(|n| dir.path().join(n));
    let data = image(len);
    std::fs::write(&paths[0], &data).unwrap();
    (dir, paths, data)
}

#[test]
fn files_round_trip_atomically() {
    let (_dir, [plain, sealed, back], data) = study(3 << 20);
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384, 65536);
    let seen = AtomicU64::new(0);
    let progress = |n: u64| seen.store(n, Ordering::Relaxed);
    let opts = FileOptions::default().with_progress(&progress);
    let stats = c
        .encrypt_file(&plain, &sealed, &EncryptionContext::new(), &opts)
        .unwrap();
    assert_eq!(stats.bytes_in, data.len() as u64);
    assert_eq!(seen.load(Ordering::Relaxed), data.len() as u64);
    assert_eq!(std::fs::metadata(&sealed).unwrap().len(), stats.bytes_out);
    let (header, _) = c
        .decrypt_file(&sealed, &back, &DecryptOptions::default(), &opts)
        .unwrap();
    assert_eq!(header.frame_length, 65536);
    assert_eq!(std::fs::read(&back).unwrap(), data);

    // An existing output is kept unless overwriting is asked for.
    let e = c
        .encrypt_file(&plain, &sealed, &EncryptionContext::new(), &opts)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::AlreadyExists),
        "{e:?}"
    );
    let overwrite = FileOptions::default().with_overwrite(true);
    c.encrypt_file(&plain, &sealed, &EncryptionContext::new(), &overwrite)
        .unwrap();
    // The output may never be the input.
    let e = c
        .encrypt_file(&plain, &plain, &EncryptionContext::new(), &overwrite)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput),
        "{e:?}"
    );
    assert_eq!(std::fs::read(&plain).unwrap(), data);
}

/// Names in `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_cancelled_operation_creates_no_output() {
    let (dir, [plain, sealed, back], data) = study(2 << 20);
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 65536);
    c.encrypt_file(
        &plain,
        &sealed,
        &EncryptionContext::new(),
        &FileOptions::default(),
    )
    .unwrap();
    let message = std::fs::read(&sealed).unwrap();
    std::fs::remove_file(&sealed).unwrap();
    for threads in [1, 2] {
        // Cancelled before it starts, and after the first read (from the progress callback).
        for after in [0u64, 1] {
            let cancel = AtomicBool::new(after == 0);
            let most = AtomicU64::new(0);
            let progress = |n: u64| {
                most.fetch_max(n, Ordering::Relaxed);
                if n >= after {
                    cancel.store(true, Ordering::Relaxed);
                }
            };
            let opts = FileOptions::default()
                .with_pipeline(PipelineOptions::default().with_threads(threads))
                .with_progress(&progress)
                .with_cancel(&cancel);
            let e = c
                .encrypt_file(&plain, &sealed, &EncryptionContext::new(), &opts)
                .unwrap_err();
            assert!(matches!(e, Error::Cancelled), "encrypt: {e:?}");
            let read = most.swap(0, Ordering::Relaxed);
            assert!(read < 1 << 20, "encrypt stopped early: {read} bytes read");
            std::fs::write(&sealed, &message).unwrap();
            let e = c
                .decrypt_file(&sealed, &back, &DecryptOptions::default(), &opts)
                .unwrap_err();
            assert!(matches!(e, Error::Cancelled), "decrypt: {e:?}");
            let read = most.load(Ordering::Relaxed);
            assert!(read < 1 << 20, "decrypt stopped early: {read} bytes read");
            assert_eq!(
                names(dir.path()),
                ["study.dcm", "study.dcm.enc"],
                "nothing else left"
            );
            assert_eq!(std::fs::read(&plain).unwrap(), data, "input untouched");
            std::fs::remove_file(&sealed).unwrap();
        }
    }
}

#[test]
fn a_failed_decrypt_leaves_nothing_and_keeps_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let (sealed, out) = (dir.path().join("x.enc"), dir.path().join("x.dcm"));
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 4096);
    let mut message = c
        .encrypt(&image(100_000), &EncryptionContext::new())
        .unwrap();
    let at = message.len() - 100;
    message[at] ^= 1; // inside the final frame
    std::fs::write(&sealed, &message).unwrap();
    for threads in [1, 2] {
        // The threaded path too, with these 4 KiB frames.
        let opts = FileOptions::default().with_pipeline(
            PipelineOptions::default()
                .with_threads(threads)
                .with_parallel_min_frame(1),
        );
        let e = c
            .decrypt_file(&sealed, &out, &DecryptOptions::default(), &opts)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Authentication(AuthenticationError::FrameTag { .. })
            ),
            "{e:?}"
        );
        assert_eq!(std::fs::read(&sealed).unwrap(), message);
        assert_eq!(names(dir.path()), ["x.enc"], "temporary files left");
    }
}

#[test]
fn ranges_decrypt_only_their_frames() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 1000);
    for len in [0usize, 1, 999, 1000, 1001, 5000, 12_345] {
        let data = image(len);
        let message = c.encrypt(&data, &EncryptionContext::new()).unwrap();
        let ranges = [
            (0u64, 0u64),
            (0, 1),
            (0, len as u64),
            (998, 1003),
            (1000, 2000),
            (len as u64 / 2, len as u64 / 2 + 1500),
            (len as u64 - len.min(1) as u64, len as u64 + 10),
            (len as u64 + 5, len as u64 + 50),
        ];
        for (a, b) in ranges {
            let got = c
                .decrypt_range(Cursor::new(&message), a..b, &DecryptOptions::default())
                .unwrap();
            let (a, b) = ((a as usize).min(len), (b as usize).min(len));
            assert_eq!(got, &data[a..b.max(a)], "len {len} range {a}..{b}");
        }
    }
}

#[test]
fn ranges_are_authenticated() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 1000);
    let data = image(10_000);
    let message = c.encrypt(&data, &EncryptionContext::new()).unwrap();
    // Ten full frames, then an empty final frame.
    let header_len = message.len() - (10 * 1032 + 24 + 16);
    let mut tampered = message.clone();
    tampered[header_len + 5 * 1032 + 100] ^= 1; // frame 6 = bytes 5000..6000
    let read = |m: &[u8], a: u64, b: u64| {
        c.decrypt_range(Cursor::new(m), a..b, &DecryptOptions::default())
    };
    let e = read(&tampered, 5500, 5600).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Authentication(AuthenticationError::FrameTag { sequence: 6 })
        ),
        "{e:?}"
    );
    // Frames outside the range are not read.
    assert_eq!(read(&tampered, 100, 4900).unwrap(), &data[100..4900]);
    // A frame moved to another position fails: its sequence number is authenticated.
    let mut swapped = message.clone();
    let (f2, f3) = (header_len + 1032, header_len + 2 * 1032);
    let frame2 = message[f2..f2 + 1032].to_vec();
    swapped[f2..f2 + 1032].copy_from_slice(&message[f3..f3 + 1032]);
    swapped[f3..f3 + 1032].copy_from_slice(&frame2);
    let e = read(&swapped, 1500, 1600).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Format(FormatError::UnexpectedSequenceNumber { .. })
        ),
        "{e:?}"
    );
    // Truncation shows.
    let e = read(&message[..message.len() - 1], 9500, 9600).unwrap_err();
    assert!(matches!(e, Error::Format(FormatError::Truncated)), "{e:?}");
    // Signed messages cannot be read out of order.
    let signed = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384, 1000);
    let m = signed.encrypt(&data, &EncryptionContext::new()).unwrap();
    let e = signed
        .decrypt_range(Cursor::new(&m), 0..10, &DecryptOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ConfigError::RandomAccessUnsupported)),
        "{e:?}"
    );
}

/// A message cut right after a regular frame is truncated for `decrypt_range` too: the
/// final frame is authenticated (sequence and length) before any range is served.
#[test]
fn ranges_refuse_a_message_cut_at_a_frame_boundary() {
    let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, 1000);
    let data = image(10_500); // ten full frames and a final one of 500 bytes
    let message = c.encrypt(&data, &EncryptionContext::new()).unwrap();
    let header_len = message.len() - (10 * 1032 + 24 + 500 + 16);
    for frames in [1, 5, 10] {
        let cut = &message[..header_len + frames * 1032];
        for (a, b) in [(0, 100), (0, 20_000), (4_000, 4_100)] {
            let e = c
                .decrypt_range(Cursor::new(cut), a..b, &DecryptOptions::default())
                .unwrap_err();
            assert!(
                matches!(e, Error::Format(FormatError::Truncated)),
                "cut after {frames} frames, range {a}..{b}: {e:?}"
            );
        }
    }
    // Control: the whole message serves every range, the final frame included.
    let all = c
        .decrypt_range(
            Cursor::new(&message),
            0..u64::MAX,
            &DecryptOptions::default(),
        )
        .unwrap();
    assert_eq!(all, data);
    let tail = c
        .decrypt_range(
            Cursor::new(&message),
            10_200..10_300,
            &DecryptOptions::default(),
        )
        .unwrap();
    assert_eq!(tail, &data[10_200..10_300]);
}

/// A message followed by a 1 TiB hole (a sparse file) is refused with a typed error before
/// any allocation is sized from the file's length.
#[test]
fn ranges_refuse_a_message_padded_with_a_huge_hole() {
    let dir = tempfile::tempdir().unwrap();
    for frame in [1000, 1 << 20] {
        let c = client(AlgorithmSuite::Aes256GcmHkdfSha512Commit, frame);
        let data = image(5_000);
        let message = c.encrypt(&data, &EncryptionContext::new()).unwrap();
        let path = dir.path().join(format!("padded-{frame}"));
        std::fs::write(&path, &message).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(message.len() as u64 + (1 << 40)).unwrap();
        let e = c
            .decrypt_range(
                std::fs::File::open(&path).unwrap(),
                0..u64::MAX,
                &DecryptOptions::default(),
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Format(FormatError::Truncated)
                    | Error::Format(FormatError::UnexpectedSequenceNumber { .. })
            ),
            "frame length {frame}: {e:?}"
        );
    }
}
