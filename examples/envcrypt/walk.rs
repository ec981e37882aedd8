//! `-r/--recursive`: every file of a folder to the same relative path under `-o OUTDIR`.
//!
//! - One message per file; `.enc` is added on encrypt and removed on decrypt. On decrypt a
//!   file whose name does not end in `.enc` is skipped (and named on stderr unless `-q`):
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
//! - OUTDIR may not be INPUT or lie inside it (the outputs would mix with the inputs).

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use envcrypt::file::FileOptions;
use envcrypt::pipeline::PipelineOptions;

use crate::crypt::{lib_error, Op, Settings};
use crate::error::{AppError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_IO, EXIT_UNAVAILABLE, EXIT_USAGE};
use crate::output::check_output_file;
use crate::progress::Progress;

/// The suffix of messages.
const SUFFIX: &str = ".enc";
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
    let canon_in = input
        .canonicalize()
        .map_err(|e| AppError::io(format!("cannot open {shown_in}"), e))?;
    let canon_out =
        resolve(outdir).map_err(|e| AppError::io(format!("OUTDIR {}", outdir.display()), e))?;
    if canon_out.starts_with(&canon_in) {
        return Err(AppError::usage(format!(
            "OUTDIR {} is INPUT {shown_in} or inside it; choose an output folder outside it",
            outdir.display()
        )));
    }

    let decrypting = matches!(op, Op::Decrypt { .. });
    let mut found = Found::default();
    let mut visited = HashSet::from([(meta.dev(), meta.ino())]);
    walk(
        input,
        Path::new(""),
        follow_symlinks,
        decrypting,
        &mut visited,
        &mut found,
    );

    // Folders first, so workers only write files; remember which ones are new.
    let mut created = Vec::new();
    let mut parents = BTreeSet::new();
    parents.insert(outdir.to_path_buf());
    for f in &found.files {
        if let Some(p) = outdir.join(&f.out_rel).parent() {
            parents.insert(p.to_path_buf());
        }
    }
    for dir in &parents {
        if let Err(e) = create_dirs(dir, &mut created) {
            remove_empty(&created);
            return Err(AppError::io(format!("cannot create {}", dir.display()), e));
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
                let done = one(op, entry, outdir, jobs, settings, &bar);
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
        remove_empty(&created);
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
fn priority(code: u8) -> u8 {
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
    outdir: &Path,
    jobs: usize,
    settings: &Settings,
    bar: &Progress,
) -> Result<(), AppError> {
    let dest = outdir.join(&entry.out_rel);
    let tracker = bar.tracker();
    let result = (|| {
        check_output_file(&dest, settings.force, Some(&entry.src))?;
        // Small files run on one thread each while several files run at once; a large one
        // gets the whole pipeline.
        let pipeline = if jobs > 1 && entry.size <= SMALL_FILE {
            PipelineOptions::single_threaded()
        } else {
            settings.pipeline.clone()
        };
        let report = |n: u64| tracker.read_so_far(n);
        let options = FileOptions {
            pipeline,
            overwrite: settings.force,
            progress: Some(&report),
            cancel: Some(crate::interrupt::flag()),
        };
        let what = format!("{} {}", op.verb(), entry.src.display());
        op.file(&entry.src, &dest, &options)
            .map(|_| ())
            .map_err(|e| lib_error(&what, e))
    })();
    tracker.complete(entry.size);
    result
}

/// Collects the files under `dir` (whose path relative to INPUT is `rel`), sorted by name.
fn walk(
    dir: &Path,
    rel: &Path,
    follow: bool,
    decrypting: bool,
    visited: &mut HashSet<(u64, u64)>,
    found: &mut Found,
) {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<Vec<_>, _>>(),
        Err(e) => Err(e),
    };
    let mut entries = match entries {
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
        let path = entry.path();
        let name = entry.file_name();
        let meta = match entry.file_type() {
            Ok(t) if t.is_symlink() && !follow => {
                found.skipped.push((
                    path,
                    "symbolic link (use --follow-symlinks to follow links)",
                ));
                continue;
            }
            Ok(_) => fs::metadata(&path),
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
                walk(&path, &rel.join(&name), follow, decrypting, visited, found);
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
                        found
                            .skipped
                            .push((path, "name does not end in .enc (not decrypted)"));
                        continue;
                    }
                }
            } else {
                let mut n = name.clone();
                n.push(SUFFIX);
                n
            };
            found.files.push(Entry {
                src: path,
                out_rel: rel.join(out_name),
                size: meta.len(),
            });
        } else {
            found
                .skipped
                .push((path, "not a regular file or directory"));
        }
    }
}

/// `name` without `.enc`, if it ends in it and something is left.
fn strip_suffix(name: &OsString) -> Option<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    let stem = bytes.strip_suffix(SUFFIX.as_bytes())?;
    (!stem.is_empty()).then(|| std::ffi::OsStr::from_bytes(stem).to_owned())
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

/// Removes the folders we created that stayed empty (their files all failed), deepest first.
fn remove_empty(created: &[PathBuf]) {
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
