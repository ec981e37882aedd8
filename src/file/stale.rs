//! Names of temporary outputs, and the removal of those a crashed run left behind.
//!
//! A named temporary output (`.envcrypt-*.tmp`, see [`super::named`]) outlives a run that
//! is killed or loses power. The next run in the same directory removes such a file when
//! all of these hold:
//! - its name is `.envcrypt-*.tmp` and it is a regular file (not a link);
//! - it belongs to the user of this run (Unix);
//! - it was last written more than [`STALE_AFTER`] ago: a live run writes its output all
//!   the time, and this also covers the moment between a run creating its file and locking it;
//! - nobody holds a lock on it: every run holds an exclusive advisory lock (`flock`) on its
//!   output until it is in place, so a live run that has stalled for hours (on a slow
//!   input) keeps its file. Where the filesystem has no locks the age alone decides, and a
//!   run stalled that long then fails when it tries to put its output into place.
//!
//! Each directory is swept once per process (a folder of thousands of files is not read
//! thousands of times); a crash ends the process, so the next process sweeps again. The
//! sweep is housekeeping: what it cannot read or remove is left, without an error.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Start of every temporary output's name.
pub(super) const PREFIX: &str = ".envcrypt-";
/// End of every temporary output's name.
pub(super) const SUFFIX: &str = ".tmp";
/// A temporary output unwritten for this long, and unlocked, is a crashed run's.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(60 * 60);

/// Whether `name` is one of our temporary outputs' names.
pub(super) fn is_temp_name(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        n.len() > PREFIX.len() + SUFFIX.len() && n.starts_with(PREFIX) && n.ends_with(SUFFIX)
    })
}

/// A fresh temporary name (unique enough: whoever creates it still refuses an existing
/// name and tries another).
pub(super) fn random_name() -> String {
    use std::hash::BuildHasher;
    // Randomly keyed per process and per call.
    let r = std::collections::hash_map::RandomState::new()
        .hash_one((std::process::id(), SystemTime::now()));
    format!("{PREFIX}{r:016x}{SUFFIX}")
}

/// Sweeps `dir` (see [`remove_stale`]) unless this process already did; `ours` is this
/// run's own output, which tells who "we" are.
pub(super) fn sweep_once(dir: &Path, ours: &File) {
    static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let first = SWEPT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key);
    if first {
        if let Ok(me) = ours.metadata() {
            remove_stale(dir, &me, SystemTime::now());
        }
    }
}

/// Removes the stale temporary outputs in `dir` (see the module's rules), as of `now`;
/// `ours` is the metadata of a file this run created. Returns how many it removed.
pub(super) fn remove_stale(dir: &Path, ours: &Metadata, now: SystemTime) -> usize {
    let (Some(cutoff), Ok(entries)) = (now.checked_sub(STALE_AFTER), std::fs::read_dir(dir)) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| is_temp_name(&e.file_name()) && remove_if_stale(&e.path(), ours, cutoff))
        .count()
}

/// Removes `path` if it is stale: see the module's rules.
fn remove_if_stale(path: &Path, ours: &Metadata, cutoff: SystemTime) -> bool {
    let Ok(seen) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let old = seen.modified().is_ok_and(|m| m < cutoff);
    if !seen.is_file() || !same_owner(&seen, ours) || !old {
        return false;
    }
    let Ok(file) = open_no_follow(path) else {
        return false;
    };
    // Still the file looked at (not swapped for a link or another file since).
    if !file.metadata().is_ok_and(|m| same_inode(&seen, &m)) {
        return false;
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return false, // a live run's
        Err(std::fs::TryLockError::Error(_)) => {}              // no locks here: age decides
    }
    // Removed while locked: no run can take it over meanwhile.
    std::fs::remove_file(path).is_ok()
}

/// Opens `path` for reading, refusing a symbolic link and never waiting (a FIFO).
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits();
        options.custom_flags(i32::try_from(flags).unwrap_or(0));
    }
    options.open(path)
}

#[cfg(unix)]
fn same_owner(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.uid() == b.uid()
}

#[cfg(not(unix))]
fn same_owner(_: &Metadata, _: &Metadata) -> bool {
    true
}

#[cfg(unix)]
fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_inode(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}
