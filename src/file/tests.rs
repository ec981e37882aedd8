//! Unit tests of the output's placement: both kinds of output file, and the sweep of stale
//! temporary files.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::atomic::Placement;
use super::stale::{self, STALE_AFTER};
use super::{atomically_with, FileOptions};
use crate::error::Error;

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn temp_names(dir: &Path) -> Vec<String> {
    let mut v = names(dir);
    v.retain(|n| stale::is_temp_name(n.as_ref()));
    v
}

/// Copies `input` to `output` through [`atomically_with`]; `during` sees the directory
/// while the output is written.
fn copy(
    placement: Placement,
    input: &Path,
    output: &Path,
    overwrite: bool,
    during: impl FnOnce(),
) -> Result<u64, Error> {
    let options = FileOptions {
        overwrite,
        ..FileOptions::default()
    };
    atomically_with(placement, input, output, &options, |r, w| {
        let n = io::copy(r, w)?;
        during();
        Ok(n)
    })
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_named_fallback_writes_a_temporary_file_and_renames_it() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    let data = vec![0x33u8; 5 << 20]; // past an early writeback or two
    std::fs::write(&input, &data).unwrap();
    let n = copy(Placement::Named, &input, &output, false, || {
        assert_eq!(temp_names(dir.path()).len(), 1, "a named temporary file");
        assert!(!output.exists());
    })
    .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&output).unwrap(), data);
    assert_eq!(names(dir.path()), ["in", "out"]);
    #[cfg(unix)]
    assert_eq!(mode(&output), 0o600);

    // Refused over an existing file, which stays; replaced with overwrite.
    std::fs::write(&output, b"older").unwrap();
    let e = copy(Placement::Named, &input, &output, false, || {}).unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::AlreadyExists),
        "{e:?}"
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"older");
    copy(Placement::Named, &input, &output, true, || {}).unwrap();
    assert_eq!(std::fs::read(&output).unwrap(), data);
    assert_eq!(names(dir.path()), ["in", "out"]);
}

#[test]
fn a_failed_run_leaves_nothing_on_either_path() {
    for placement in [Placement::Auto, Placement::Named] {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::write(&input, vec![1u8; 100_000]).unwrap();
        let options = FileOptions::default();
        let e = atomically_with(placement, &input, &output, &options, |r, w| {
            io::copy(r, w)?;
            Err::<(), _>(Error::Io(io::Error::other("bad frame")))
        })
        .unwrap_err();
        assert!(matches!(e, Error::Io(_)), "{e:?}");
        assert_eq!(names(dir.path()), ["in"], "{placement:?}");
    }
}

/// On Linux the output has no name at all until it is complete.
#[cfg(target_os = "linux")]
#[test]
fn the_linux_output_has_no_name_until_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    let data = vec![0x77u8; 3 << 20];
    std::fs::write(&input, &data).unwrap();
    for overwrite in [false, true] {
        copy(Placement::Auto, &input, &output, overwrite, || {
            let expected: &[&str] = if overwrite { &["in", "out"] } else { &["in"] };
            assert_eq!(names(dir.path()), expected, "while written");
        })
        .unwrap();
        assert_eq!(std::fs::read(&output).unwrap(), data);
        assert_eq!(names(dir.path()), ["in", "out"]);
        assert_eq!(mode(&output), 0o600);
    }
    let e = copy(Placement::Auto, &input, &output, false, || {}).unwrap_err();
    assert!(
        matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::AlreadyExists),
        "{e:?}"
    );
}

/// Sets `path`'s modification time `age` back.
fn age(path: &Path, age: Duration) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn only_stale_unlocked_temporary_files_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old = STALE_AFTER + Duration::from_secs(60);
    for name in [
        ".envcrypt-crashed.tmp",
        ".envcrypt-fresh.tmp",
        ".envcrypt-held.tmp",
        ".envcrypt-.tmp",
        "other.tmp",
        ".envcrypt-notes.txt",
    ] {
        std::fs::write(d.join(name), b"plaintext").unwrap();
        if name != ".envcrypt-fresh.tmp" {
            age(&d.join(name), old);
        }
    }
    std::fs::create_dir(d.join(".envcrypt-dir.tmp")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.join("other.tmp"), d.join(".envcrypt-link.tmp")).unwrap();
    // A live run (here, this test) holds its file locked.
    let held = File::open(d.join(".envcrypt-held.tmp")).unwrap();
    held.lock().unwrap();
    let ours = std::fs::metadata(d.join("other.tmp")).unwrap();

    assert_eq!(stale::remove_stale(d, &ours, SystemTime::now()), 1);
    let mut kept = vec![
        ".envcrypt-.tmp",
        ".envcrypt-dir.tmp",
        ".envcrypt-fresh.tmp",
        ".envcrypt-held.tmp",
        ".envcrypt-notes.txt",
        "other.tmp",
    ];
    #[cfg(unix)]
    kept.insert(4, ".envcrypt-link.tmp");
    assert_eq!(names(d), kept);

    // Once the live run is gone (unlocked), its old file goes too.
    drop(held);
    assert_eq!(stale::remove_stale(d, &ours, SystemTime::now()), 1);
    assert!(!d.join(".envcrypt-held.tmp").exists());
}

/// A run sweeps its output directory: a crashed run's old temporary file goes, a fresh one
/// (perhaps a live run's) stays.
#[test]
fn a_run_sweeps_its_directory() {
    for placement in [Placement::Auto, Placement::Named] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (input, output) = (d.join("in"), d.join("out"));
        std::fs::write(&input, b"data").unwrap();
        std::fs::write(d.join(".envcrypt-crashed.tmp"), b"plaintext").unwrap();
        age(&d.join(".envcrypt-crashed.tmp"), STALE_AFTER * 2);
        std::fs::write(d.join(".envcrypt-live.tmp"), b"plaintext").unwrap();
        copy(placement, &input, &output, false, || {}).unwrap();
        assert_eq!(
            names(d),
            [".envcrypt-live.tmp", "in", "out"],
            "{placement:?}"
        );
    }
}

#[test]
fn temporary_names() {
    let name = stale::random_name();
    assert!(stale::is_temp_name(name.as_ref()), "{name}");
    assert_ne!(name, stale::random_name());
    for other in [".envcrypt-.tmp", ".envcrypt-x", "envcrypt-x.tmp", "x.tmp"] {
        assert!(!stale::is_temp_name(other.as_ref()), "{other}");
    }
}
