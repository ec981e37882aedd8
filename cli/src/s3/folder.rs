//! `-r FOLDER -o s3://BUCKET/PREFIX/`: every regular file of a local folder to an object
//! under the prefix, by the rules of the folder runs (`walk`): links and special files
//! skipped; each file opened without following a link and processed only if it is still
//! the file the walk listed; the suffix added on encrypt, required and removed on decrypt
//! (other files skipped and named), required on rewrap. Each object is written as by
//! `single`: refused if it exists unless `--force`, appearing only whole. One file's
//! failure does not stop the others; failures are listed, then a summary line, and the exit
//! code is the most serious one (as for folders).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use envcrypt::s3::S3Object;

use crate::crypt::{Op, Settings};
use crate::error::{AppError, EXIT_INTERRUPTED, EXIT_IO};
use crate::out_dir::fd_path;
use crate::parallel::{self, Bound};
use crate::walk::{priority, regular_files, Listed};

/// Runs `op` on every file under `input` into objects under the prefix `output`.
pub fn run(op: Op<'_>, input: &Path, output: &Path, settings: &Settings) -> Result<(), AppError> {
    let (bucket, prefix) = S3Object::parse_prefix(&output.to_string_lossy())
        .map_err(|e| AppError::usage(e.to_string()))?;
    if let (Op::Decrypt { .. }, false) = (op, settings.plaintext_upload) {
        return Err(AppError::usage(
            "decrypt: refusing to write plaintext to S3 (add --allow-plaintext-upload if that is meant)",
        ));
    }
    let mut listing = regular_files(input)?;
    let suffix = crate::cli_extra::suffix();
    let mut work: Vec<(Listed, String)> = Vec::new();
    let mut failures: Vec<AppError> = listing.failures.drain(..).map(|(_, e)| e).collect();
    for file in listing.files {
        let rel = file.path().strip_prefix(input).unwrap_or(file.path());
        let Some(rel) = rel.to_str() else {
            failures.push(AppError::usage(format!(
                "{}: an object key must be UTF-8",
                file.path().display()
            )));
            continue;
        };
        let name = match op {
            Op::Encrypt { .. } => Some(format!("{rel}{suffix}")),
            Op::Decrypt { .. } => rel
                .strip_suffix(suffix)
                .filter(|n| !n.is_empty() && !n.ends_with('/'))
                .map(str::to_owned),
            Op::Rewrap(_) => rel.ends_with(suffix).then(|| rel.to_owned()),
        };
        match name {
            Some(name) => work.push((file, format!("s3://{bucket}/{prefix}{name}"))),
            None => listing
                .skipped
                .push((file.path().to_path_buf(), crate::cli_extra::not_suffixed())),
        }
    }
    if !settings.quiet {
        for (path, why) in &listing.skipped {
            eprintln!("envcrypt: skipped {}: {why}", path.display());
        }
    }
    // One bar would be the folder's; the objects run without one each.
    let quiet = Settings {
        progress: false,
        ..settings.clone()
    };
    let jobs = parallel::count(&settings.pipeline, Bound::Network, work.len());
    let failed = Mutex::new(Vec::new());
    let written = AtomicUsize::new(0);
    parallel::for_each(&work, jobs, |_, (file, uri)| {
        let settings = Settings {
            pipeline: parallel::pipeline_for(&quiet.pipeline, jobs, file.size()),
            ..quiet.clone()
        };
        let done = file.open().and_then(|source| {
            // Read through the descriptor of the file the walk checked.
            let path = fd_path(&source);
            let shown = file.path().display().to_string();
            super::named(op, Some(&path), &shown, Some(Path::new(uri)), &settings)
        });
        match done {
            Ok(_) => drop(written.fetch_add(1, Ordering::Relaxed)),
            Err(e) => failed.lock().unwrap_or_else(|e| e.into_inner()).push(e),
        }
    });
    failures.extend(failed.into_inner().unwrap_or_else(|e| e.into_inner()));
    let written = written.into_inner();
    if crate::interrupt::requested() {
        return Err(AppError::with_code(
            EXIT_INTERRUPTED,
            format!(
                "interrupted; {written} of {} files written under {}",
                work.len(),
                output.display()
            ),
        ));
    }
    failures.retain(|e| e.code() != EXIT_INTERRUPTED);
    if failures.is_empty() {
        return Ok(());
    }
    for e in &failures {
        eprintln!("envcrypt: {e}");
    }
    let code = failures
        .iter()
        .map(AppError::code)
        .max_by_key(|c| priority(*c))
        .unwrap_or(EXIT_IO);
    Err(AppError::with_code(
        code,
        format!(
            "{} of {} files failed; {written} written under {}",
            failures.len(),
            written + failures.len(),
            output.display()
        ),
    ))
}
