//! Linux: the output as an unnamed file (`O_TMPFILE`) in the destination directory, given
//! its name only once complete and synced. Until then no name refers to it, so a crash (even
//! `kill -9`) leaves nothing behind: the kernel frees the file with its last descriptor (after
//! a power loss, the filesystem's orphan recovery does).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

use super::stale::random_name;

/// An unnamed output file and its directory.
pub(super) struct Unnamed {
    dir: OwnedFd,
    file: File,
}

impl Unnamed {
    /// Creates the unnamed file in `dir` (mode 0600, less what the umask removes), or
    /// returns `None` when the filesystem has no unnamed files.
    pub(super) fn create(dir: &Path) -> io::Result<Option<Self>> {
        let dir = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let file = match rustix::fs::openat(
            &dir,
            ".",
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        ) {
            Ok(fd) => File::from(fd),
            // Refused by this filesystem (or kernel): the caller falls back to a named file.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // While it has a temporary name (see `place`), a sweep in another process must
        // leave it (see [`super::stale`]).
        let _ = file.try_lock();
        Ok(Some(Self { dir, file }))
    }

    /// The file being written.
    pub(super) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Gives the (synced) file the name `name` in its directory, then syncs the directory
    /// so that the name survives a power loss. Without `overwrite`, an existing `name`
    /// fails with [`io::ErrorKind::AlreadyExists`] and is left alone. With it, the file is
    /// linked under a temporary name and renamed over `name` (a crash between the two
    /// leaves the complete file under the temporary name, for a later sweep). An error
    /// from the directory sync means the output is in place but may not last.
    pub(super) fn place(self, name: &OsStr, overwrite: bool) -> io::Result<()> {
        if overwrite {
            let temp = self.link_temporary()?;
            if let Err(e) = rustix::fs::renameat(&self.dir, temp.as_str(), &self.dir, name) {
                let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
                return Err(e.into());
            }
        } else {
            self.link(name)?;
        }
        rustix::fs::fsync(&self.dir)?;
        Ok(())
    }

    /// Links the file under a fresh temporary name; returns that name.
    fn link_temporary(&self) -> io::Result<String> {
        for _ in 0..16 {
            let name = random_name();
            match self.link(OsStr::new(&name)) {
                Err(Errno::EXIST) => continue,
                linked => return linked.map(|()| name).map_err(Into::into),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary name in the output directory",
        ))
    }

    /// Links the file as `name` in its directory (fails with `EEXIST` if `name` exists).
    /// Through `/proc/self/fd`, which needs no privilege; without `/proc`, through
    /// `AT_EMPTY_PATH` (which kernels before 6.10 allow only with `CAP_DAC_READ_SEARCH`).
    fn link(&self, name: &OsStr) -> Result<(), Errno> {
        self.link_via(PROC_FDS, name)
    }

    /// [`Self::link`], with `/proc/self/fd` at `fds`.
    fn link_via(&self, fds: &str, name: &OsStr) -> Result<(), Errno> {
        let by_proc = format!("{fds}/{}", self.file.as_raw_fd());
        match rustix::fs::linkat(
            CWD,
            by_proc.as_str(),
            &self.dir,
            name,
            AtFlags::SYMLINK_FOLLOW,
        ) {
            Err(Errno::NOENT) => {
                rustix::fs::linkat(&self.file, "", &self.dir, name, AtFlags::EMPTY_PATH)
            }
            linked => linked,
        }
    }
}

/// Where Linux lists this process's open files.
const PROC_FDS: &str = "/proc/self/fd";

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Linked through `/proc` and, as without `/proc`, through `AT_EMPTY_PATH`; an existing
    /// name is refused either way.
    #[test]
    fn links_with_and_without_proc() {
        let dir = tempfile::tempdir().unwrap();
        for (fds, name) in [(PROC_FDS, "a"), ("/no-proc-here/fd", "b")] {
            let mut u = Unnamed::create(dir.path()).unwrap().expect("O_TMPFILE");
            u.file().write_all(name.as_bytes()).unwrap();
            match u.link_via(fds, OsStr::new(name)) {
                Ok(()) => assert_eq!(
                    std::fs::read(dir.path().join(name)).unwrap(),
                    name.as_bytes()
                ),
                // Kernels before 6.10, unprivileged: only /proc works.
                Err(Errno::NOENT) if fds != PROC_FDS => continue,
                Err(e) => panic!("{fds}: {e}"),
            }
            assert_eq!(u.link_via(fds, OsStr::new(name)), Err(Errno::EXIST));
        }
    }
}
