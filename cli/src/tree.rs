//! Which files a folder run reads, and opening them safely.
//!
//! The folder is listed with `walkdir` (sorted by name, depth first):
//!
//! - Symbolic links below INPUT are skipped (and named) unless `--follow-symlinks`; then
//!   they are followed, and a folder reached a second time (a link loop, or two links to one
//!   folder) is skipped and named. INPUT itself may be a link to a folder.
//! - FIFOs, sockets and devices are skipped; a folder or entry that cannot be read is a
//!   failure of its own (the other files are still listed).
//! - Each file's device and inode are noted, and those of INPUT and of every folder on the
//!   way down to it.
//!
//! `walkdir` lists a folder by its path, so a folder swapped for a link between the moment
//! it was classified and the moment it was listed would be listed through that link. That
//! part stays by hand, at the point where it matters: a listed file is never opened by its
//! path. [`Entry::open`] opens INPUT, then each folder below it relative to the handle of
//! its parent without following a link (unless `--follow-symlinks`), checks each is the
//! folder the walk saw (device, inode), and opens the file in the last one the same way,
//! checking it is still the regular file the walk saw. A swapped file or folder fails
//! (I/O, exit 3); nothing outside INPUT is read.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use walkdir::WalkDir;

use crate::error::AppError;

/// Device and inode.
pub type FileId = (u64, u64);

/// Why a symbolic link was skipped.
const LINK_SKIPPED: &str = "symbolic link (use --follow-symlinks to follow links)";
/// Why a folder reached twice was skipped.
const LOOP_SKIPPED: &str = "directory already visited (a symbolic link loop)";

/// One file to process.
pub struct Entry {
    /// INPUT joined with the path below it.
    pub src: PathBuf,
    /// Output path relative to OUTDIR (`rename` decides the name).
    pub out_rel: PathBuf,
    /// Its size when the walk saw it.
    pub size: u64,
    /// Its device and inode when the walk saw it.
    pub id: FileId,
    /// INPUT as given.
    root: Arc<Path>,
    /// Its path below INPUT.
    rel: PathBuf,
    /// Device and inode of INPUT and of each folder below it down to the file's own.
    dirs: Arc<[FileId]>,
}

/// What a walk found.
#[derive(Default)]
pub struct Found {
    /// The regular files, in walk order.
    pub files: Vec<Entry>,
    /// Links, special files, link loops and (on decrypt) files not named `*.enc`, with why.
    pub skipped: Vec<(PathBuf, &'static str)>,
    /// Folders and entries that could not be read.
    pub failures: Vec<(PathBuf, AppError)>,
}

/// Lists the folder `input` (device and inode `root_id`, as the caller classified it).
/// `rename` gives the output name of a file from its name, or why it is skipped.
pub fn walk(
    input: &Path,
    root_id: FileId,
    follow: bool,
    rename: &dyn Fn(&OsString) -> Result<OsString, &'static str>,
) -> Found {
    let root: Arc<Path> = Arc::from(input);
    let mut found = Found::default();
    let mut visited = HashSet::from([root_id]);
    // The folders from INPUT down to the one being listed (index: depth).
    let mut chain: Vec<FileId> = vec![root_id];
    let mut dirs: Arc<[FileId]> = Arc::from(chain.as_slice());
    let mut entries = WalkDir::new(input)
        .follow_links(follow)
        .follow_root_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(next) = entries.next() {
        let entry = match next {
            Ok(entry) => entry,
            Err(e) => {
                let path = e.path().unwrap_or(input).to_path_buf();
                if e.loop_ancestor().is_some() {
                    found.skipped.push((path, LOOP_SKIPPED));
                } else {
                    let error = read_error(&path, e);
                    found.failures.push((path, error));
                }
                continue;
            }
        };
        let depth = entry.depth();
        if depth == 0 {
            continue; // INPUT itself: classified by the caller.
        }
        let path = entry.path().to_path_buf();
        let kind = entry.file_type();
        if kind.is_symlink() {
            found.skipped.push((path, LINK_SKIPPED));
            continue;
        }
        // The entry itself, or with --follow-symlinks what it points to.
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                let error = read_error(&path, e);
                found.failures.push((path, error));
                continue;
            }
        };
        let id = (meta.dev(), meta.ino());
        if kind.is_dir() {
            if !visited.insert(id) {
                entries.skip_current_dir();
                found.skipped.push((path, LOOP_SKIPPED));
                continue;
            }
            chain.truncate(depth);
            chain.push(id);
        } else if kind.is_file() {
            if dirs.len() != depth || dirs[..] != chain[..depth] {
                dirs = Arc::from(&chain[..depth]);
            }
            let Ok(rel) = path.strip_prefix(input).map(Path::to_path_buf) else {
                continue; // walkdir joins every path onto INPUT
            };
            let out_name = match rename(&entry.file_name().to_os_string()) {
                Ok(name) => name,
                Err(why) => {
                    found.skipped.push((path, why));
                    continue;
                }
            };
            found.files.push(Entry {
                src: path,
                out_rel: rel.with_file_name(out_name),
                size: meta.len(),
                id,
                root: Arc::clone(&root),
                rel,
                dirs: Arc::clone(&dirs),
            });
        } else {
            found
                .skipped
                .push((path, "not a regular file or directory"));
        }
    }
    found
}

/// An I/O error of the walk at `path`, saying whether a folder or an entry failed.
fn read_error(path: &Path, e: walkdir::Error) -> AppError {
    let what = if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        "cannot read directory"
    } else {
        "cannot read"
    };
    let e = e
        .into_io_error()
        .unwrap_or_else(|| io::Error::other("unreadable entry"));
    AppError::io(format!("{what} {}", path.display()), e)
}

impl Entry {
    /// Opens the file through checked folder handles (see the module docs), without
    /// following links unless `follow`; a file or folder that changed since the walk fails
    /// (I/O, exit 3).
    pub fn open(&self, follow: bool) -> Result<OwnedFd, AppError> {
        let shown = self.src.display();
        let changed = |now: &str| {
            AppError::io(
                format!("cannot read {shown}"),
                io::Error::other(format!(
                    "changed since the folder was read ({now}); not processed"
                )),
            )
        };
        let opened = |e: Errno| AppError::io(format!("cannot open {shown}"), e.into());
        let nofollow = if follow {
            OFlags::empty()
        } else {
            OFlags::NOFOLLOW
        };
        let names: Vec<&std::ffi::OsStr> = self
            .rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        let Some((file, folders)) = names.split_last() else {
            return Err(changed("no longer below its folder"));
        };
        if folders.len() + 1 != self.dirs.len() {
            return Err(changed("no longer below its folder"));
        }
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        // INPUT itself may be a link.
        let mut dir =
            rustix::fs::openat(CWD, &*self.root, dir_flags, Mode::empty()).map_err(opened)?;
        check_id(&dir, self.dirs[0]).map_err(|()| changed("its folder was replaced"))?;
        for (name, id) in folders.iter().zip(&self.dirs[1..]) {
            dir = match rustix::fs::openat(&dir, *name, dir_flags | nofollow, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    return Err(changed("a folder on its path is now a link or a file"))
                }
                Err(e) => return Err(opened(e)),
            };
            check_id(&dir, *id).map_err(|()| changed("a folder on its path was replaced"))?;
        }
        // Non-blocking: a FIFO swapped in cannot stall the open.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&dir, *file, flags | nofollow, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP) if !follow => return Err(changed("now a symbolic link")),
            Err(e) => return Err(opened(e)),
        };
        let stat = rustix::fs::fstat(&fd)
            .map_err(|e| AppError::io(format!("cannot read {shown}"), e.into()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(changed("no longer a regular file"));
        }
        if (stat.st_dev, stat.st_ino) != self.id {
            return Err(changed("another file is at its path"));
        }
        Ok(fd)
    }
}

/// Whether the open `fd` is the file `id`.
fn check_id(fd: &OwnedFd, id: FileId) -> Result<(), ()> {
    match rustix::fs::fstat(fd) {
        Ok(stat) if (stat.st_dev, stat.st_ino) == id => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn keep(name: &OsString) -> Result<OsString, &'static str> {
        Ok(name.clone())
    }

    fn id(path: &Path) -> FileId {
        let m = fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn files_sorted_links_skipped_and_output_names_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in");
        fs::create_dir_all(input.join("b/c")).unwrap();
        fs::write(input.join("b/c/z"), b"z").unwrap();
        fs::write(input.join("a"), b"a").unwrap();
        symlink("a", input.join("link")).unwrap();
        let found = walk(&input, id(&input), false, &keep);
        let rels: Vec<_> = found.files.iter().map(|e| e.out_rel.clone()).collect();
        assert_eq!(rels, [PathBuf::from("a"), PathBuf::from("b/c/z")]);
        assert_eq!(found.skipped.len(), 1);
        assert!(found.skipped[0].0.ends_with("link"));
        for entry in &found.files {
            entry.open(false).unwrap();
        }
    }

    #[test]
    fn a_folder_swapped_for_a_link_after_the_walk_is_not_read_through() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(input.join("sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::create_dir(tmp.path().join("old")).unwrap();
        fs::write(input.join("sub/f"), b"inside").unwrap();
        let found = walk(&input, id(&input), false, &keep);
        assert_eq!(found.files.len(), 1);
        // `sub` becomes a link to a folder outside INPUT holding the same file (moved there,
        // so device and inode match too).
        fs::rename(input.join("sub/f"), outside.join("f")).unwrap();
        fs::rename(input.join("sub"), tmp.path().join("old/sub")).unwrap();
        symlink(&outside, input.join("sub")).unwrap();
        let e = found.files[0].open(false).unwrap_err();
        assert!(e.to_string().contains("now a link"), "{e}");
        // A folder replaced by another one is refused too (the old one kept, so that its
        // inode is not reused).
        fs::remove_file(input.join("sub")).unwrap();
        fs::create_dir(input.join("sub")).unwrap();
        fs::rename(outside.join("f"), input.join("sub/f")).unwrap();
        let e = found.files[0].open(false).unwrap_err();
        assert!(e.to_string().contains("was replaced"), "{e}");
    }
}
