//! `-r/--recursive`: every file of a folder to the same relative path under `-o OUTDIR`.
//!
//! - One message per file; the suffix (`--suffix`, default `.enc`) is added on encrypt and
//!   removed on decrypt. On decrypt a file whose name does not end in it is skipped (and named on stderr unless `-q`):
//!   a folder of messages made by `encrypt -r` holds nothing else, and stray files (notes,
//!   `.DS_Store`) are not messages.
//! - Symbolic links are skipped unless `--follow-symlinks` (then followed, loops detected);
//!   so are FIFOs, sockets and devices. INPUT itself may be a link to a folder.
//! - Each file is written atomically by the library's file API, so a failed file leaves
//!   nothing at its output path; folders this run created that stayed empty because their
//!   files failed are removed (OUTDIR included). An empty INPUT gives an empty OUTDIR.
//! - A failing file does not stop the others. Failures are listed at the end, one line each,
//!   then a summary line; the exit code is the highest-priority code among them:
//!   1 (authentication/policy) > 4 (keyring unavailable) > 3 (I/O) > 2 (usage, e.g. an
//!   existing output without `--force`).
//! - OUTDIR may not be INPUT, lie inside it or contain it (the outputs would mix with the
//!   inputs); outputs are written without following links planted under OUTDIR (see
//!   `out_dir`).
//! - The walk notes each file's device and inode; the file is then opened without following
//!   a link and processed only if it is still that file (else it fails: it was swapped).

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use envcrypt::file::FileOptions;
use envcrypt::pipeline::PipelineOptions;

use crate::crypt::{lib_error, Op, Settings};
use crate::error::{AppError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_IO, EXIT_UNAVAILABLE, EXIT_USAGE};
use crate::out_dir::{check_apart, fd_path, OutDir};
use crate::progress::Progress;

/// Files up to this size are processed on one thread each (several files run at once).
const SMALL_FILE: u64 = 4 << 20;
/// Most files processed at once.
const MAX_FILE_JOBS: usize = 8;

/// One file to process.
struct Entry {
    src: PathBuf,
    /// Output path relative to OUTDIR.
    out_rel: PathBuf,
    size: u64,
    /// Device and inode the walk saw.
    id: (u64, u64),
}

/// A file that failed.
struct Failure {
    path: PathBuf,
    error: AppError,
}

/// What the walk found.
#[derive(Default)]
struct Found {
    files: Vec<Entry>,
    skipped: Vec<(PathBuf, &'static str)>,
    failures: Vec<Failure>,
}

/// Runs `op` on every file under `input`, writing under `outdir`.
pub fn run(
    op: Op<'_>,
    input: &Path,
    outdir: &Path,
    follow_symlinks: bool,
    settings: &Settings,
) -> Result<(), AppError> {
    if input.as_os_str() == "-" || outdir.as_os_str() == "-" {
        return Err(AppError::usage(
            "-r/--recursive reads a directory and writes a directory, not stdin/stdout",
        ));
    }
    let shown_in = input.display();
    let meta =
        fs::metadata(input).map_err(|e| AppError::io(format!("cannot open {shown_in}"), e))?;
    if !meta.is_dir() {
        return Err(AppError::usage(format!(
            "-r/--recursive needs a directory INPUT; {shown_in} is not one"
        )));
    }
    match fs::metadata(outdir) {
        Ok(m) if !m.is_dir() => {
            return Err(AppError::usage(format!(
                "OUTDIR {} exists and is not a directory",
                outdir.display()
            )))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(AppError::io(format!("OUTDIR {}", outdir.display()), e)),
    }
    check_apart(input, outdir)?;

    let decrypting = matches!(op, Op::Decrypt { .. });
    let mut found = Found::default();
    let mut visited = HashSet::from([(meta.dev(), meta.ino())]);
    walk(
        input,
        Path::new(""),
        (meta.dev(), meta.ino()),
        follow_symlinks,
        decrypting,
        &mut visited,
        &mut found,
    );

    // Folders first, so workers only write files; remember which ones are new.
    let mut out = OutDir::create(outdir)?;
    let parents: BTreeSet<&Path> = found
        .files
        .iter()
        .filter_map(|f| f.out_rel.parent())
        .collect();
    for dir in parents {
        if let Err(e) = out.prepare(dir) {
            out.remove_empty();
            return Err(e);
        }
    }

    let total: u64 = found.files.iter().map(|f| f.size).sum();
    let bar = Progress::start(
        settings.progress,
        op.verb(),
        Some(total),
        found.files.len() as u64,
    );
    let jobs = file_jobs(settings, found.files.len());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let written = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if crate::interrupt::requested() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = found.files.get(i) else {
                    return;
                };
                let done = one(op, entry, &out, follow_symlinks, jobs, settings, &bar);
                if done.is_ok() {
                    written.fetch_add(1, Ordering::Relaxed);
                }
                if let Err(error) = done {
                    failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Failure {
                            path: entry.src.clone(),
                            error,
                        });
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let interrupted = crate::interrupt::requested();
    // The files the signal stopped are not failures of their own.
    failures.retain(|f| f.error.code() != EXIT_INTERRUPTED);
    if failures.is_empty() && !interrupted {
        bar.finish();
    } else {
        drop(bar);
        out.remove_empty();
    }

    if !settings.quiet {
        for (path, why) in &found.skipped {
            eprintln!("envcrypt: skipped {}: {why}", path.display());
        }
    }
    let processed = found.files.len() + found.failures.len();
    failures.append(&mut found.failures);
    if failures.is_empty() && !interrupted {
        return Ok(());
    }
    failures.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &failures {
        eprintln!("envcrypt: {}", f.error);
    }
    if interrupted {
        return Err(AppError::with_code(
            EXIT_INTERRUPTED,
            format!(
                "interrupted; {} of {} files written under {}",
                written.into_inner(),
                found.files.len(),
                outdir.display()
            ),
        ));
    }
    let code = failures
        .iter()
        .map(|f| f.error.code())
        .max_by_key(|c| priority(*c))
        .unwrap_or(EXIT_IO);
    let ok = processed - failures.len();
    Err(AppError::with_code(
        code,
        format!(
            "{} of {processed} files failed; {ok} written under {}",
            failures.len(),
            outdir.display()
        ),
    ))
}

/// Order of exit codes when files failed in different ways: tampering or a policy refusal
/// matters most, then an unreachable keyring (retry later), then I/O, then usage.
pub fn priority(code: u8) -> u8 {
    match code {
        EXIT_DATA => 4,
        EXIT_UNAVAILABLE => 3,
        EXIT_IO => 2,
        EXIT_USAGE => 1,
        _ => 0,
    }
}

/// Files processed at once: one per core (at least two, since syncing waits on the disk),
/// one with `--threads 1`.
fn file_jobs(settings: &Settings, files: usize) -> usize {
    let jobs = match settings.pipeline.threads {
        1 => 1,
        0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
        n => n,
    };
    jobs.min(MAX_FILE_JOBS).min(files.max(1))
}

/// Processes one file.
fn one(
    op: Op<'_>,
    entry: &Entry,
    out: &OutDir,
    follow: bool,
    jobs: usize,
    settings: &Settings,
    bar: &Progress,
) -> Result<(), AppError> {
    let tracker = bar.tracker();
    let result = (|| {
        let target = out.target(&entry.out_rel)?;
        let source = open_same(entry, follow)?;
        target.check(settings.force, entry.id)?;
        // Small files run on one thread each while several files run at once; a large one
        // gets the whole pipeline.
        let pipeline = if jobs > 1 && entry.size <= SMALL_FILE {
            PipelineOptions::single_threaded()
        } else {
            settings.pipeline.clone()
        };
        let report = |n: u64| tracker.read_so_far(n);
        let options = FileOptions::default()
            .with_pipeline(pipeline)
            .with_overwrite(settings.force)
            .with_progress(&report)
            .with_cancel(crate::interrupt::flag());
        let what = format!("{} {}", op.verb(), entry.src.display());
        // The library reopens the input through our descriptor: the file checked above.
        let done = op
            .file(&fd_path(&source), &target.path(), &options)
            .map_err(|e| lib_error(&what, e));
        let input = entry.src.display().to_string();
        let output = target.shown().display().to_string();
        crate::metadata::record_done(op.verb(), &input, &output, Some(&target.path()), &done)?;
        done.map(|_| ())
    })();
    tracker.complete(entry.size);
    result
}

/// Opens the input of `entry` without following a link (unless `--follow-symlinks`) and
/// checks it is still the regular file the walk saw; a swapped file fails (I/O, exit 3).
fn open_same(entry: &Entry, follow: bool) -> Result<OwnedFd, AppError> {
    let shown = entry.src.display();
    let changed = |now: &str| {
        AppError::io(
            format!("cannot read {shown}"),
            io::Error::other(format!(
                "changed since the folder was read ({now}); not processed"
            )),
        )
    };
    // Non-blocking: a FIFO swapped in cannot stall the open.
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = match rustix::fs::open(&entry.src, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP) if !follow => return Err(changed("now a symbolic link")),
        Err(e) => return Err(AppError::io(format!("cannot open {shown}"), e.into())),
    };
    let stat = rustix::fs::fstat(&fd)
        .map_err(|e| AppError::io(format!("cannot read {shown}"), e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(changed("no longer a regular file"));
    }
    if (stat.st_dev, stat.st_ino) != entry.id {
        return Err(changed("another file is at its path"));
    }
    Ok(fd)
}

/// Collects the files under `dir` (whose path relative to INPUT is `rel`), sorted by name.
///
/// `id` is the device and inode the folder had when it was classified; the listing is read
/// through a handle checked to be that folder (opened without following a link below INPUT
/// unless `--follow-symlinks`), so a folder swapped for a link meanwhile is not entered.
fn walk(
    dir: &Path,
    rel: &Path,
    id: (u64, u64),
    follow: bool,
    decrypting: bool,
    visited: &mut HashSet<(u64, u64)>,
    found: &mut Found,
) {
    let nofollow = !follow && !rel.as_os_str().is_empty();
    let mut entries = match list(dir, id, nofollow) {
        Ok(v) => v,
        Err(e) => {
            found.failures.push(Failure {
                path: dir.to_path_buf(),
                error: AppError::io(format!("cannot read directory {}", dir.display()), e),
            });
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let path = dir.join(&name);
        let meta = match entry.file_type() {
            Ok(t) if t.is_symlink() && !follow => {
                found.skipped.push((
                    path,
                    "symbolic link (use --follow-symlinks to follow links)",
                ));
                continue;
            }
            // The entry itself unless links are followed (then what it points to).
            Ok(_) if follow => fs::metadata(&path),
            Ok(_) => fs::symlink_metadata(&path),
            Err(e) => Err(e),
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                let error = AppError::io(format!("cannot read {}", path.display()), e);
                found.failures.push(Failure { path, error });
                continue;
            }
        };
        if meta.is_dir() {
            if visited.insert((meta.dev(), meta.ino())) {
                let id = (meta.dev(), meta.ino());
                let rel = rel.join(&name);
                walk(&path, &rel, id, follow, decrypting, visited, found);
            } else {
                found
                    .skipped
                    .push((path, "directory already visited (a symbolic link loop)"));
            }
        } else if meta.is_file() {
            let out_name = if decrypting {
                match strip_suffix(&name) {
                    Some(n) => n,
                    None => {
                        found.skipped.push((path, crate::cli_extra::not_suffixed()));
                        continue;
                    }
                }
            } else {
                let mut n = name.clone();
                n.push(crate::cli_extra::suffix());
                n
            };
            found.files.push(Entry {
                src: path,
                out_rel: rel.join(out_name),
                size: meta.len(),
                id: (meta.dev(), meta.ino()),
            });
        } else {
            found
                .skipped
                .push((path, "not a regular file or directory"));
        }
    }
}

/// The entries of the folder `dir` if it is still the folder `id` (see [`walk`]).
fn list(dir: &Path, id: (u64, u64), nofollow: bool) -> io::Result<Vec<fs::DirEntry>> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if nofollow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(dir, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => {
            io::Error::other("changed since its folder was read (now a link or a file)")
        }
        e => e.into(),
    })?;
    let stat = rustix::fs::fstat(&fd)?;
    if (stat.st_dev, stat.st_ino) != id {
        return Err(io::Error::other(
            "changed since its folder was read (another folder is at its path)",
        ));
    }
    // Through the checked handle when /proc resolves it, else by path.
    fs::read_dir(fd_path(&fd))
        .or_else(|_| fs::read_dir(dir))?
        .collect()
}

/// A regular file [`regular_files`] found.
pub struct Listed(Entry);

impl Listed {
    /// Its path (INPUT joined with the path below it).
    pub fn path(&self) -> &Path {
        &self.0.src
    }

    /// Its size when the walk saw it.
    pub fn size(&self) -> u64 {
        self.0.size
    }

    /// Its device and inode when the walk saw it.
    pub fn id(&self) -> (u64, u64) {
        self.0.id
    }

    /// Opens it without following a link, if it is still the regular file the walk saw
    /// (else an I/O error, as for encrypt and decrypt).
    pub fn open(&self) -> Result<fs::File, AppError> {
        open_same(&self.0, false).map(fs::File::from)
    }
}

/// What [`regular_files`] found.
pub struct Listing {
    /// The regular files, in walk order.
    pub files: Vec<Listed>,
    /// Links, special files and link loops, with why they were skipped.
    pub skipped: Vec<(PathBuf, &'static str)>,
    /// Entries that could not be read (a folder without permission, ...).
    pub failures: Vec<(PathBuf, AppError)>,
}

/// Every regular file under the folder `input`, by the rules of the folder runs (symbolic
/// links below INPUT skipped, FIFOs, sockets and devices too; INPUT itself may be a link),
/// for commands that read the files in place (`inspect --summary -r`).
pub fn regular_files(input: &Path) -> Result<Listing, AppError> {
    let shown = input.display();
    let meta = fs::metadata(input).map_err(|e| AppError::io(format!("cannot open {shown}"), e))?;
    if !meta.is_dir() {
        return Err(AppError::usage(format!("{shown} is not a directory")));
    }
    let id = (meta.dev(), meta.ino());
    let mut found = Found::default();
    let mut visited = HashSet::from([id]);
    walk(
        input,
        Path::new(""),
        id,
        /* follow links */ false,
        /* decrypting: keep files of any name */ false,
        &mut visited,
        &mut found,
    );
    Ok(Listing {
        files: found.files.into_iter().map(Listed).collect(),
        skipped: found.skipped,
        failures: found
            .failures
            .into_iter()
            .map(|f| (f.path, f.error))
            .collect(),
    })
}

/// `name` without `.enc`, if it ends in it and a file name is left (not `.` or `..`).
fn strip_suffix(name: &OsString) -> Option<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    let stem = bytes.strip_suffix(crate::cli_extra::suffix().as_bytes())?;
    (!matches!(stem, b"" | b"." | b"..")).then(|| std::ffi::OsStr::from_bytes(stem).to_owned())
}

#[cfg(test)]
mod tests {
    use super::strip_suffix;
    use std::ffi::OsString;

    #[test]
    fn the_suffix_comes_off_only_when_a_file_name_is_left() {
        let strip = |n: &str| strip_suffix(&OsString::from(n)).map(|s| s.into_string().unwrap());
        assert_eq!(strip("scan.dcm.enc").as_deref(), Some("scan.dcm"));
        assert_eq!(strip("x..enc").as_deref(), Some("x."));
        for name in [".enc", "..enc", "...enc", "scan.dcm"] {
            assert_eq!(strip(name), None, "{name}");
        }
    }
}
