//! The output side of folder mode (`-r`): OUTDIR kept apart from INPUT, and every folder and
//! file under OUTDIR reached from a handle on OUTDIR, one name at a time, never through a
//! symbolic link.
//!
//! - OUTDIR may not be INPUT, lie inside it, or contain it (compared on canonical paths and
//!   on the device and inode of every ancestor, so bind mounts and links do not hide it).
//! - Subfolders are made with `mkdirat` and opened with `O_NOFOLLOW | O_DIRECTORY` relative
//!   to their parent's handle. One that is a symbolic link (planted, e.g. `OUTDIR/sub ->
//!   /elsewhere`) is not followed: the files below it fail, the others go on.
//! - An output name that is a symbolic link is refused, with or without `--force`.
//! - The library's file API takes paths: each output is handed to it as
//!   `/proc/self/fd/DIRFD/NAME`, which the kernel resolves to the very folder this module
//!   opened and checked, whatever happens to the names above it meanwhile. Without `/proc`
//!   the checked path itself is used (the check and the write are then not atomic).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::AppError;

/// A folder under OUTDIR, by its path relative to OUTDIR.
enum Dir {
    /// Opened (and created if it was missing) without following links.
    Open(OwnedFd),
    /// Not usable for the reason given (a symbolic link, or below one).
    Blocked(String),
}

/// OUTDIR and the folders under it that this run writes into.
pub struct OutDir {
    path: PathBuf,
    /// Relative path -> folder; `""` is OUTDIR itself.
    dirs: BTreeMap<PathBuf, Dir>,
    /// Folders this run created below OUTDIR: (parent's relative path, name).
    created: Vec<(PathBuf, OsString)>,
    /// OUTDIR and its parents that this run created (by path).
    created_top: Vec<PathBuf>,
    /// `/proc/self/fd` resolves our descriptors.
    proc_fd: bool,
}

/// Where one output file goes: a name in a folder handle.
pub struct Target<'a> {
    dir: &'a OwnedFd,
    name: &'a OsStr,
    shown: PathBuf,
    proc_fd: bool,
}

/// Refuses OUTDIR equal to INPUT, inside it, or containing it (a usage error).
pub fn check_apart(input: &Path, outdir: &Path) -> Result<(), AppError> {
    let (shown_in, shown_out) = (input.display(), outdir.display());
    let canon_in = input
        .canonicalize()
        .map_err(|e| AppError::io(format!("cannot open {shown_in}"), e))?;
    let canon_out = resolve(outdir).map_err(|e| AppError::io(format!("OUTDIR {shown_out}"), e))?;
    let in_id = id(&canon_in).map_err(|e| AppError::io(format!("cannot open {shown_in}"), e))?;
    if canon_out.starts_with(&canon_in) || has_ancestor(&canon_out, in_id) {
        return Err(AppError::usage(format!(
            "OUTDIR {shown_out} is INPUT {shown_in} or inside it; choose an output folder outside it"
        )));
    }
    if let Ok(out_id) = id(&canon_out) {
        if canon_in.starts_with(&canon_out) || has_ancestor(&canon_in, out_id) {
            return Err(AppError::usage(format!(
                "INPUT {shown_in} is inside OUTDIR {shown_out}; choose an output folder \
                 that does not contain the input"
            )));
        }
    }
    Ok(())
}

impl OutDir {
    /// Creates OUTDIR (and missing parents: the path the user gave, links included) and
    /// opens it.
    pub fn create(path: &Path) -> Result<Self, AppError> {
        let mut created_top = Vec::new();
        let cannot = |e| AppError::io(format!("cannot create {}", path.display()), e);
        if let Err(e) = create_dirs(path, &mut created_top) {
            remove_dirs(&created_top);
            return Err(cannot(e));
        }
        let root = match rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                remove_dirs(&created_top);
                return Err(cannot(e.into()));
            }
        };
        let proc_fd = proc_resolves(&root);
        Ok(Self {
            path: path.to_path_buf(),
            dirs: BTreeMap::from([(PathBuf::new(), Dir::Open(root))]),
            created: Vec::new(),
            created_top,
            proc_fd,
        })
    }

    /// Makes and opens the folder `rel` (relative to OUTDIR) and those above it. A folder
    /// that is a symbolic link is recorded as blocked (its files fail); other errors stop
    /// the run.
    pub fn prepare(&mut self, rel: &Path) -> Result<(), AppError> {
        let mut cur = PathBuf::new();
        for c in rel.components() {
            let Component::Normal(name) = c else {
                continue;
            };
            let parent = cur.clone();
            cur.push(name);
            if self.dirs.contains_key(&cur) {
                continue;
            }
            let dir = match &self.dirs[&parent] {
                Dir::Blocked(why) => Dir::Blocked(why.clone()),
                Dir::Open(fd) => match open_subdir(fd, name) {
                    Ok((sub, made)) => {
                        if made {
                            self.created.push((parent, name.to_owned()));
                        }
                        Dir::Open(sub)
                    }
                    Err(OpenError::Link) => Dir::Blocked(format!(
                        "output folder {} is a symbolic link (not followed)",
                        self.path.join(&cur).display()
                    )),
                    Err(OpenError::Io(e)) => {
                        return Err(AppError::io(
                            format!("cannot create {}", self.path.join(&cur).display()),
                            e,
                        ))
                    }
                },
            };
            self.dirs.insert(cur.clone(), dir);
        }
        Ok(())
    }

    /// The target of the output `rel` (relative to OUTDIR; its folder was prepared).
    pub fn target<'a>(&'a self, rel: &'a Path) -> Result<Target<'a>, AppError> {
        let shown = self.path.join(rel);
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(AppError::usage(format!(
                "output {} has no file name",
                shown.display()
            )));
        };
        match self.dirs.get(parent) {
            Some(Dir::Open(dir)) => Ok(Target {
                dir,
                name,
                shown,
                proc_fd: self.proc_fd,
            }),
            Some(Dir::Blocked(why)) => Err(AppError::usage(format!(
                "cannot write {}: {why}",
                shown.display()
            ))),
            None => Err(AppError::io(
                format!("cannot write {}", shown.display()),
                io::Error::new(io::ErrorKind::NotFound, "folder not prepared"),
            )),
        }
    }

    /// Removes the folders this run created that stayed empty, deepest first.
    pub fn remove_empty(&self) {
        let mut below: Vec<&(PathBuf, OsString)> = self.created.iter().collect();
        below.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (parent, name) in below {
            if let Some(Dir::Open(fd)) = self.dirs.get(parent) {
                let _ = rustix::fs::unlinkat(fd, name.as_os_str(), AtFlags::REMOVEDIR);
            }
        }
        remove_dirs(&self.created_top);
    }
}

impl Target<'_> {
    /// Checks the output name before anything is written: not a symbolic link (whatever
    /// `force` says), not a folder, not the input (`input`: its device and inode), not
    /// existing unless `force`.
    pub fn check(&self, force: bool, input: (u64, u64)) -> Result<(), AppError> {
        let shown = self.shown.display();
        let stat = match rustix::fs::statat(self.dir, self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(AppError::io(format!("output {shown}"), e.into())),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => Err(AppError::usage(format!(
                "output {shown} is a symbolic link; refusing to write through it (remove it)"
            ))),
            FileType::Directory => Err(AppError::usage(format!(
                "output {shown} is a directory (for folders use -r/--recursive)"
            ))),
            _ if (stat.st_dev, stat.st_ino) == input => {
                Err(AppError::usage(format!("output {shown} is the input file")))
            }
            _ if !force => Err(AppError::usage(format!(
                "output {shown} exists (use --force to replace it)"
            ))),
            _ => Ok(()),
        }
    }

    /// The path to hand to the library's file API: through `/proc/self/fd` when it works
    /// (pinned to the checked folder), else the checked path.
    /// The output's path as the user named it (OUTDIR joined with the relative path).
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    pub fn path(&self) -> PathBuf {
        if self.proc_fd {
            fd_path(self.dir).join(self.name)
        } else {
            self.shown.clone()
        }
    }
}

/// `/proc/self/fd/N` for a descriptor.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// True when `/proc/self/fd/N` names the folder `fd` is open on.
fn proc_resolves(fd: &OwnedFd) -> bool {
    let (Ok(stat), Ok(meta)) = (rustix::fs::fstat(fd), fs::metadata(fd_path(fd))) else {
        return false;
    };
    (stat.st_dev, stat.st_ino) == (meta.dev(), meta.ino())
}

/// Why a subfolder could not be opened.
enum OpenError {
    /// It is a symbolic link.
    Link,
    Io(io::Error),
}

/// Creates (if missing) and opens the folder `name` in `parent` without following a link;
/// also says whether this call created it.
fn open_subdir(parent: &OwnedFd, name: &OsStr) -> Result<(OwnedFd, bool), OpenError> {
    let made = match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o777)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(OpenError::Io(e.into())),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok((fd, made)),
        // A link is refused with ELOOP, or ENOTDIR (O_DIRECTORY is checked first): tell a
        // link from a file.
        Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
            match rustix::fs::statat(parent.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Symlink => {
                    Err(OpenError::Link)
                }
                _ => Err(OpenError::Io(e.into())),
            }
        }
        Err(e) => Err(OpenError::Io(e.into())),
    }
}

/// Device and inode of a path (links followed).
fn id(path: &Path) -> io::Result<(u64, u64)> {
    fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

/// True when `path` or one of its ancestors that exists is the folder `target`.
fn has_ancestor(path: &Path, target: (u64, u64)) -> bool {
    path.ancestors()
        .any(|a| !a.as_os_str().is_empty() && id(a).is_ok_and(|i| i == target))
}

/// Creates `dir` and its missing parents, recording each one created.
fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
        match fs::metadata(d) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", d.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(d.to_path_buf()),
            Err(e) => return Err(e),
        }
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the given folders if empty, deepest first.
fn remove_dirs(created: &[PathBuf]) {
    let mut dirs: Vec<&PathBuf> = created.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let _ = fs::remove_dir(d);
    }
}

/// An absolute path with symbolic links resolved as far as the path exists; the rest is
/// normalised lexically (it does not exist yet, so it holds no links).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let comps: Vec<Component<'_>> = abs.components().collect();
    for k in (1..=comps.len()).rev() {
        let prefix: PathBuf = comps[..k].iter().collect();
        let Ok(mut resolved) = prefix.canonicalize() else {
            continue;
        };
        for c in &comps[k..] {
            match c {
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::CurDir => {}
                other => resolved.push(other),
            }
        }
        return Ok(resolved);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("cannot resolve {}", path.display()),
    ))
}
