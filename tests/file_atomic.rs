//! What the file API leaves on disk when a run is killed, fails or meets an existing output,
//! and the output's permissions.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use envcrypt::file::FileOptions;
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::{
    AlgorithmSuite, AuthenticationError, Client, DecryptOptions, EncryptionContext, Error,
};

/// Set in the re-executed test binary: the path of the message the child decrypts.
const CHILD_INPUT: &str = "ENVCRYPT_FILE_ATOMIC_CHILD_INPUT";
/// Set in the re-executed test binary: where the child decrypts it to.
const CHILD_OUTPUT: &str = "ENVCRYPT_FILE_ATOMIC_CHILD_OUTPUT";
/// The child prints this line once its decrypt has read [`CHILD_SIGNAL_AT`] bytes.
const CHILD_STARTED: &str = "envcrypt-child: decrypting";
const CHILD_SIGNAL_AT: u64 = 64 << 20;

fn client(frame: u32) -> Client {
    Client::builder()
        .keyring(RawAesKeyring::new("files", "key", &[0x5a; 32]).unwrap())
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
        .frame_length(frame)
        .build()
        .unwrap()
}

/// `len` bytes of a repeating pattern (a stand-in for an image), never held in memory whole.
fn pattern(len: u64) -> impl Read {
    io::repeat(0x42).take(len)
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The message of `len` pattern bytes in `frame`-byte frames, written to `path`.
fn seal_to(c: &Client, len: u64, path: &Path) {
    let out = io::BufWriter::new(std::fs::File::create(path).unwrap());
    c.encrypt_stream(
        pattern(len),
        out,
        &EncryptionContext::new(),
        &PipelineOptions::default(),
    )
    .unwrap();
}

/// The child half of [`kill_9_mid_decrypt_leaves_nothing`]: decrypts one thread at a time and
/// says so on stdout once well under way.
fn child_decrypt(input: &Path, output: &Path) {
    let told = std::sync::atomic::AtomicBool::new(false);
    let progress = |n: u64| {
        if n >= CHILD_SIGNAL_AT && !told.swap(true, std::sync::atomic::Ordering::Relaxed) {
            println!("{CHILD_STARTED}");
        }
    };
    let opts = FileOptions::default()
        .with_pipeline(PipelineOptions::default().with_threads(1))
        .with_progress(&progress);
    client(4096)
        .decrypt_file(input, output, &DecryptOptions::default(), &opts)
        .unwrap();
}

/// A decrypt killed with SIGKILL half-way leaves nothing in the destination directory: no
/// output, no temporary file holding the plaintext written so far.
#[test]
fn kill_9_mid_decrypt_leaves_nothing() {
    if let (Some(input), Some(output)) = (
        std::env::var_os(CHILD_INPUT),
        std::env::var_os(CHILD_OUTPUT),
    ) {
        child_decrypt(Path::new(&input), Path::new(&output));
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let sealed = scratch.path().join("volume.enc");
    seal_to(&client(4096), 512 << 20, &sealed);
    let output: PathBuf = dest.path().join("volume.raw");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_9_mid_decrypt_leaves_nothing",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_INPUT, &sealed)
        .env(CHILD_OUTPUT, &output)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("re-execute the test binary");
    let stdout = io::BufReader::new(child.stdout.take().unwrap());
    let mut started = false;
    for line in stdout.lines() {
        if line.unwrap().contains(CHILD_STARTED) {
            started = true;
            break;
        }
    }
    assert!(started, "the child never reported progress");
    child.kill().unwrap(); // SIGKILL: no handler, no destructor runs
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
    assert_eq!(
        names(dest.path()),
        Vec::<String>::new(),
        "left in the destination directory"
    );
}

/// A message whose byte at `at` (from the end) is flipped: a frame tag fails.
fn tampered(c: &Client, len: usize, from_end: usize) -> Vec<u8> {
    let mut m = c
        .encrypt(&vec![7u8; len], &EncryptionContext::new())
        .unwrap();
    let at = m.len() - from_end;
    m[at] ^= 1;
    m
}

#[test]
fn a_tampered_frame_leaves_no_file() {
    let scratch = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let c = client(4096);
    let sealed = scratch.path().join("x.enc");
    // Early in the message (a middle frame) and in the final frame, on 1 and 2 threads.
    for from_end in [90_000, 100] {
        std::fs::write(&sealed, tampered(&c, 100_000, from_end)).unwrap();
        for threads in [1, 2] {
            let opts = FileOptions::default().with_pipeline(
                PipelineOptions::default()
                    .with_threads(threads)
                    .with_parallel_min_frame(1),
            );
            let out = dest.path().join("x.dcm");
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
            assert_eq!(names(dest.path()), Vec::<String>::new(), "left behind");
            // With overwrite, an existing output is kept as it was.
            std::fs::write(&out, b"keep me").unwrap();
            let opts = opts.with_overwrite(true);
            c.decrypt_file(&sealed, &out, &DecryptOptions::default(), &opts)
                .unwrap_err();
            assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
            assert_eq!(names(dest.path()), ["x.dcm"], "left behind");
            std::fs::remove_file(&out).unwrap();
        }
    }
}

#[test]
fn an_existing_output_is_kept_unless_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let c = client(4096);
    let (plain, sealed, back) = (
        dir.path().join("a.dcm"),
        dir.path().join("a.enc"),
        dir.path().join("b.dcm"),
    );
    std::fs::write(&plain, vec![3u8; 50_000]).unwrap();
    c.encrypt_file(
        &plain,
        &sealed,
        &EncryptionContext::new(),
        &FileOptions::default(),
    )
    .unwrap();
    let no_overwrite = FileOptions::default();
    let overwrite = FileOptions::default().with_overwrite(true);
    // Decrypt, then encrypt, over an existing file.
    std::fs::write(&back, b"older").unwrap();
    let e = c
        .decrypt_file(&sealed, &back, &DecryptOptions::default(), &no_overwrite)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::AlreadyExists),
        "{e:?}"
    );
    assert_eq!(std::fs::read(&back).unwrap(), b"older");
    c.decrypt_file(&sealed, &back, &DecryptOptions::default(), &overwrite)
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), vec![3u8; 50_000]);

    let message = std::fs::read(&sealed).unwrap();
    let e = c
        .encrypt_file(&plain, &sealed, &EncryptionContext::new(), &no_overwrite)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::AlreadyExists),
        "{e:?}"
    );
    assert_eq!(std::fs::read(&sealed).unwrap(), message);
    c.encrypt_file(&plain, &sealed, &EncryptionContext::new(), &overwrite)
        .unwrap();
    assert_ne!(std::fs::read(&sealed).unwrap(), message, "a fresh message");
    c.decrypt_file(&sealed, &back, &DecryptOptions::default(), &overwrite)
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), vec![3u8; 50_000]);
    assert_eq!(
        names(dir.path()),
        ["a.dcm", "a.enc", "b.dcm"],
        "left behind"
    );
}

/// Outputs are readable by their owner only: 0600, whatever the umask allows, new or
/// replacing a more open file.
#[cfg(unix)]
#[test]
fn outputs_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let c = client(4096);
    let (plain, sealed, back) = (
        dir.path().join("a.dcm"),
        dir.path().join("a.enc"),
        dir.path().join("b.dcm"),
    );
    std::fs::write(&plain, vec![9u8; 10_000]).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    c.encrypt_file(
        &plain,
        &sealed,
        &EncryptionContext::new(),
        &FileOptions::default(),
    )
    .unwrap();
    assert_eq!(mode(&sealed), 0o600, "encrypted output");
    c.decrypt_file(
        &sealed,
        &back,
        &DecryptOptions::default(),
        &FileOptions::default(),
    )
    .unwrap();
    assert_eq!(mode(&back), 0o600, "decrypted output");
    std::fs::set_permissions(&back, std::fs::Permissions::from_mode(0o644)).unwrap();
    let overwrite = FileOptions::default().with_overwrite(true);
    c.decrypt_file(&sealed, &back, &DecryptOptions::default(), &overwrite)
        .unwrap();
    assert_eq!(mode(&back), 0o600, "decrypted output replacing a 0644 file");
    assert_eq!(std::fs::read(&back).unwrap(), vec![9u8; 10_000]);
}
