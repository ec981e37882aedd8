//! `-r/--recursive`: every file of a folder to the same relative path under `-o OUTDIR`.
//!
//! - One message per file; the suffix (`--suffix`, default `.enc`) is added on encrypt and
//!   removed on decrypt. On decrypt a file whose name does not end in it is skipped (and named on stderr unless `-q`):
//!   a folder of messages made by `encrypt -r` holds nothing else, and stray files (notes,
//!   `.DS_Store`) are not messages.
//! - Symbolic links are skipped unless `--follow-symlinks` (then followed, loops detected);
//!   so are FIFOs, sockets and devices. INPUT itself may be a link to a folder. The listing
//!   and the safe opening of each file are in `tree`.
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
//! - The walk notes each file's device and inode; the file is then opened through checked
//!   folder handles without following a link and processed only if it is still that file
//!   (else it fails: it was swapped).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use envcrypt::file::FileOptions;

use crate::crypt::{lib_error, Op, Settings};
use crate::error::{AppError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_IO, EXIT_UNAVAILABLE, EXIT_USAGE};
use crate::out_dir::{check_apart, fd_path, OutDir};
use crate::parallel::{self, Bound};
use crate::progress::Progress;
use crate::tree::{self, Entry, Found};

/// A file that failed.
struct Failure {
    path: PathBuf,
    error: AppError,
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
    let rename = |name: &OsString| {
        if decrypting {
            strip_suffix(name).ok_or(crate::cli_extra::not_suffixed())
        } else {
            let mut n = name.clone();
            n.push(crate::cli_extra::suffix());
            Ok(n)
        }
    };
    let mut found = tree::walk(input, (meta.dev(), meta.ino()), follow_symlinks, &rename);

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
    let jobs = parallel::count(&settings.pipeline, Bound::Cpu, found.files.len());
    let failures = Mutex::new(Vec::new());
    let written = AtomicUsize::new(0);
    parallel::for_each(&found.files, jobs, |_, entry| {
        match one(op, entry, &out, follow_symlinks, jobs, settings, &bar) {
            Ok(_) => drop(written.fetch_add(1, Ordering::Relaxed)),
            Err(error) => failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Failure {
                    path: entry.src.clone(),
                    error,
                }),
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
    failures.extend(
        found
            .failures
            .drain(..)
            .map(|(path, error)| Failure { path, error }),
    );
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
        let source = entry.open(follow)?;
        target.check(settings.force, entry.id)?;
        // Small files run on one thread each while several files run at once; a large one
        // gets the whole pipeline.
        let pipeline = parallel::pipeline_for(&settings.pipeline, jobs, entry.size);
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
        let written = target.path();
        crate::audit::record_done(
            op.verb(),
            &input,
            Some(&written),
            Some(&written),
            done.as_ref().map(crate::crypt::Done::finished),
        )?;
        done.map(|_| ())
    })();
    tracker.complete(entry.size);
    result
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
        self.0.open(false).map(fs::File::from)
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
    // Links below INPUT are not followed; files of any name are kept.
    let Found {
        files,
        skipped,
        failures,
    } = tree::walk(input, (meta.dev(), meta.ino()), false, &|n| Ok(n.clone()));
    Ok(Listing {
        files: files.into_iter().map(Listed).collect(),
        skipped,
        failures,
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
