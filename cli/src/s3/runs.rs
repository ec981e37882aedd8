//! Runs over many objects: `--manifest FILE` (S3 Batch Operations CSV, sliced by
//! `--shard`) and `-r s3://BUCKET/PREFIX/`, with `--report FILE`.
//!
//! Where each output goes:
//! - `-o s3://DEST/PREFIX/`: under that prefix, by the object's key (below the input
//!   prefix with `-r`; the whole key with a manifest);
//! - `-o DIR`: a local folder, the same names;
//! - with a manifest and no `-o`: beside each object in its bucket; `rewrap --in-place`
//!   replaces each object, only if it is unchanged since it was read (`If-Match`).
//!
//! Encrypt adds the suffix (`.enc`), decrypt requires and removes it, rewrap keeps the name.
//!
//! Reruns are idempotent: an S3 output whose `envcrypt-source-etag` is the source's current
//! ETag was made from these very bytes and is skipped (reported succeeded); `rewrap` skips a
//! message already wrapped for exactly the `--to` keys. Any other existing output is kept
//! unless `--force`. One object's failure does not stop the others; the exit code is 0 when
//! all succeeded and 1 when the run finished with failed objects (listed on stderr and in
//! the report); other codes mean the run itself failed.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use envcrypt::file::{write_atomically, FileOptions};
use envcrypt::pipeline::PipelineOptions;
use envcrypt::s3::{ObjectInfo, S3Object, WriteCondition};

use super::{client, op_to_s3, s3_error, upload_options, SOURCE_ETAG};
use crate::crypt::{lib_error, Counted, Done, Op, Settings};
use crate::error::{AppError, EXIT_DATA, EXIT_INTERRUPTED, EXIT_IO};
use crate::manifest::ManifestEntry;
use crate::output::SkipCheck;
use crate::parallel::{self, Bound};
use crate::progress::{Progress, Tracker};
use crate::report::{kind_code, Outcome as Row, Report};

/// One object to process.
#[derive(Debug, Clone)]
struct Source {
    object: S3Object,
    /// Its manifest row (for the report: the key as written there).
    entry: ManifestEntry,
    /// The name its output gets (before the suffix rule).
    rel: String,
}

impl Source {
    fn new(entry: ManifestEntry, rel: String) -> Self {
        let mut object = S3Object::new(&entry.bucket, &entry.key);
        if let Some(v) = &entry.version_id {
            object = object.with_version(v);
        }
        Self { object, entry, rel }
    }

    /// An object found by listing, or named on the command line: its key is its raw key.
    fn listed(bucket: &str, key: &str, rel: String) -> Self {
        Self::new(
            ManifestEntry {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                raw_key: crate::manifest::encode_key(key),
                version_id: None,
            },
            rel,
        )
    }
}

/// Where the outputs go.
#[derive(Debug, Clone)]
enum Dest {
    /// Beside each object, in its bucket.
    Beside,
    /// Over each object (rewrap).
    InPlace,
    /// Under an S3 prefix.
    S3 { bucket: String, prefix: String },
    /// Under a local folder.
    Local(PathBuf),
}

impl Dest {
    /// `-o OUT` of a run: an S3 prefix or a local folder; none means beside the objects
    /// (or over them with `in_place`).
    fn of(output: Option<&Path>, in_place: bool) -> Result<Self, AppError> {
        match output.map(|p| p.to_string_lossy().into_owned()) {
            None if in_place => Ok(Dest::InPlace),
            None => Ok(Dest::Beside),
            Some(uri) if S3Object::is_uri(&uri) => {
                let (bucket, prefix) =
                    S3Object::parse_prefix(&uri).map_err(|e| AppError::usage(e.to_string()))?;
                Ok(Dest::S3 { bucket, prefix })
            }
            Some(dir) if dir == "-" => Err(AppError::usage(
                "a run over many objects writes objects or a folder, not stdout",
            )),
            Some(dir) => Ok(Dest::Local(PathBuf::from(dir))),
        }
    }

    fn is_s3(&self) -> bool {
        !matches!(self, Dest::Local(_))
    }
}

/// The objects of `--manifest FILE` that `--shard` gives this process.
fn from_manifest(path: &Path, shard: Option<&str>) -> Result<Vec<Source>, AppError> {
    let entries = crate::manifest::read(path).map_err(|e| AppError::usage(e.to_string()))?;
    let shard = match shard {
        Some(s) => crate::shard::Shard::parse(s, |v| std::env::var(v).ok())
            .map_err(|e| AppError::usage(format!("--shard: {e}")))?,
        None => crate::shard::Shard::all(),
    };
    Ok(entries
        .into_iter()
        .filter(|e| shard.owns(&e.bucket, &e.key))
        .map(|e| {
            let rel = e.key.clone();
            Source::new(e, rel)
        })
        .collect())
}

/// Every object under `s3://BUCKET/PREFIX/` (folder markers, keys ending in `/`, left out).
fn from_prefix(uri: &str) -> Result<Vec<Source>, AppError> {
    let (bucket, prefix) =
        S3Object::parse_prefix(uri).map_err(|e| AppError::usage(e.to_string()))?;
    let listed = client()?
        .list(&bucket, &prefix)
        .map_err(|e| lib_error(&format!("list {uri}"), e))?;
    Ok(listed
        .into_iter()
        .filter(|o| !o.key.ends_with('/'))
        .map(|o| Source::listed(&bucket, &o.key, o.key[prefix.len()..].to_owned()))
        .collect())
}

/// What a run over many objects was asked to do.
pub struct Request<'a> {
    pub op: Op<'a>,
    /// `--manifest FILE`.
    pub manifest: Option<&'a Path>,
    /// One `s3://BUCKET/KEY` (`rewrap --in-place` of an object).
    pub object: Option<&'a Path>,
    /// `--shard`.
    pub shard: Option<&'a str>,
    /// INPUT of `-r s3://BUCKET/PREFIX/`.
    pub prefix: Option<&'a Path>,
    /// `-o OUT`.
    pub output: Option<&'a Path>,
    /// `rewrap --in-place`.
    pub in_place: bool,
    pub settings: &'a Settings,
    /// `--report FILE`.
    pub report: Option<&'a Path>,
    pub skip: Option<SkipCheck<'a>>,
}

/// Runs `request` over its objects.
pub fn run(request: Request<'_>) -> Result<(), AppError> {
    let sources = match (request.manifest, request.prefix, request.object) {
        (Some(manifest), _, _) => from_manifest(manifest, request.shard)?,
        (None, Some(prefix), _) => from_prefix(&prefix.to_string_lossy())?,
        (None, None, Some(object)) => {
            let object = super::object_of(Some(object))?.expect("an s3:// path");
            let key = object.key().to_owned();
            vec![Source::listed(object.bucket(), &key, key.clone())]
        }
        (None, None, None) => {
            return Err(AppError::usage(
                "no objects: give --manifest or -r s3://BUCKET/PREFIX/",
            ))
        }
    };
    // A prefix holds other objects too: decrypt and rewrap take the messages (the suffix),
    // like folder runs.
    let mut sources = sources;
    if request.prefix.is_some() && !matches!(request.op, Op::Encrypt { .. }) {
        let suffix = crate::cli_extra::suffix();
        sources.retain(|s| {
            let keep = s.rel.ends_with(suffix);
            if !keep && !request.settings.quiet {
                eprintln!(
                    "envcrypt: skipped {}: {}",
                    s.object,
                    crate::cli_extra::not_suffixed()
                );
            }
            keep
        });
    }
    if matches!(request.op, Op::Rewrap(_)) && !request.in_place && request.output.is_none() {
        return Err(AppError::usage(
            "rewrap over objects needs --in-place or -o s3://DEST/PREFIX/ (or a folder)",
        ));
    }
    if request.in_place && request.output.is_some() {
        return Err(AppError::usage("--in-place and -o exclude each other"));
    }
    Run {
        op: request.op,
        dest: Dest::of(request.output, request.in_place)?,
        settings: request.settings,
        report: request.report,
        skip: request.skip,
    }
    .all(sources)
}

/// One run over `sources`.
struct Run<'a> {
    pub op: Op<'a>,
    pub dest: Dest,
    pub settings: &'a Settings,
    pub report: Option<&'a Path>,
    pub skip: Option<SkipCheck<'a>>,
}

/// What happened to one object.
enum Outcome {
    /// Written to this output.
    Done(String),
    Skipped(String),
}

/// A failed object: the tool's error and what the report says.
struct Failure {
    error: AppError,
    code: String,
    status: u16,
}

impl Failure {
    fn tool(error: AppError) -> Self {
        let (code, status) = kind_code(error.kind());
        Self {
            error,
            code: code.to_owned(),
            status,
        }
    }

    fn lib(what: &str, e: envcrypt::Error) -> Self {
        let s3 = s3_error(&e).map(|s| (s.code().map(str::to_owned), s.http_status()));
        let mut failure = Self::tool(super::s3_lib_error(what, e));
        if let Some((code, status)) = s3 {
            failure.code = code.unwrap_or(failure.code);
            failure.status = status.unwrap_or(failure.status);
        }
        failure
    }
}

impl Run<'_> {
    /// Processes every source; per-object failures are listed, reported and make the exit
    /// code, after all the others ran.
    fn all(&self, sources: Vec<Source>) -> Result<(), AppError> {
        if let (Op::Decrypt { .. }, true, false) =
            (self.op, self.dest.is_s3(), self.settings.plaintext_upload)
        {
            return Err(AppError::usage(
                "decrypt: refusing to write plaintext to S3 (add --allow-plaintext-upload if that is meant)",
            ));
        }
        let report = match self.report {
            Some(path) => Some(
                Report::create(path)
                    .map_err(|e| AppError::io(format!("--report {}", path.display()), e))?,
            ),
            None => None,
        };
        let verb = self.op.verb();
        let bar = Progress::start(self.settings.progress, verb, None, sources.len() as u64);
        let jobs = parallel::count(&self.settings.pipeline, Bound::Network, sources.len());
        let results = Mutex::new(Vec::new());
        parallel::for_each(&sources, jobs, |i, source| {
            let tracker = bar.tracker();
            let result = self.one(source, jobs, &tracker);
            tracker.complete(0);
            if let Some(report) = &report {
                let row = match &result {
                    Ok(Outcome::Done(to)) => Row::succeeded(format!("{verb} to {to}")),
                    Ok(Outcome::Skipped(why)) => Row::succeeded(format!("skipped: {why}")),
                    Err(f) => Row::failed(&f.code, f.status, f.error.to_string()),
                };
                // A row that cannot be written fails the report at its end.
                let _ = report.record(&source.entry, &row);
            }
            results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((i, result));
        });
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|(i, _)| *i);
        let interrupted = crate::interrupt::requested();
        if interrupted {
            drop(bar);
        } else {
            bar.finish();
        }
        if let Some(report) = report {
            report.finish().map_err(|e| AppError::io("--report", e))?;
        }
        let (mut done, mut skipped, mut failed) = (0, 0, Vec::new());
        for (i, result) in results {
            match result {
                Ok(Outcome::Done(_)) => done += 1,
                Ok(Outcome::Skipped(why)) => {
                    skipped += 1;
                    if !self.settings.quiet {
                        eprintln!("envcrypt: skipped {}: {why}", sources[i].object);
                    }
                }
                Err(f) => failed.push(f.error),
            }
        }
        for e in &failed {
            eprintln!("envcrypt: {e}");
        }
        let line = format!(
            "{} {done}, skipped {skipped}, failed {}",
            past(self.op),
            failed.len()
        );
        if interrupted {
            return Err(AppError::with_code(
                EXIT_INTERRUPTED,
                format!("interrupted; {line}"),
            ));
        }
        eprintln!("{line}");
        // Engines read the exit code: 1 says "the run finished; the report lists the objects
        // that failed" (retry those rows), anything else that the run itself failed.
        match failed.is_empty() {
            true => Ok(()),
            false => Err(AppError::reported(EXIT_DATA)),
        }
    }

    /// Processes one object.
    fn one(&self, source: &Source, jobs: usize, tracker: &Tracker<'_>) -> Result<Outcome, Failure> {
        let verb = self.op.verb();
        let what = format!("{verb} {}", source.object);
        let s3 = client().map_err(Failure::tool)?;
        let info = s3
            .head(&source.object)
            .map_err(|e| Failure::lib(&what, e))?
            .ok_or_else(|| Failure {
                error: AppError::with_code(EXIT_IO, format!("{what}: no such object")),
                code: "NoSuchKey".into(),
                status: 404,
            })?;
        let name = self
            .output_name(&source.rel)
            .map_err(|why| Failure::tool(AppError::usage(format!("{what}: {why}"))))?;
        let pipeline = parallel::pipeline_for(&self.settings.pipeline, jobs, info.size);
        let (result, shown, written) = match &self.dest {
            Dest::Local(dir) => {
                let path = dir.join(&name);
                let shown = path.display().to_string();
                (
                    self.to_local(source, &info, &path, &pipeline, tracker, &what),
                    shown,
                    None,
                )
            }
            dest => {
                let target = match dest {
                    Dest::InPlace => S3Object::new(source.object.bucket(), source.object.key()),
                    Dest::S3 { bucket, prefix } => S3Object::new(bucket, format!("{prefix}{name}")),
                    _ => S3Object::new(source.object.bucket(), name.clone()),
                };
                let shown = target.to_string();
                let result = self.to_s3(source, &info, &target, &pipeline, tracker, &what);
                (result, shown, Some(target))
            }
        };
        let input = source.object.to_string();
        let done = match result {
            Step::Ran(done) => *done,
            Step::Skipped(why) => return Ok(Outcome::Skipped(why)),
        };
        let as_app =
            match &done {
                Ok(d) => Ok(d.clone()),
                Err(f) => Err(AppError::with_code(f.error.code(), f.error.to_string())
                    .of_kind(f.error.kind())),
            };
        crate::metadata::record_done(verb, &input, &shown, None, &as_app).map_err(Failure::tool)?;
        let recorded = crate::audit::record_done(
            verb,
            &input,
            None,
            None,
            as_app.as_ref().map(Done::finished),
        );
        if let (Err(_), Some(target), Ok(_), false) = (
            &recorded,
            &written,
            &done,
            matches!(self.dest, Dest::InPlace),
        ) {
            super::delete(target);
        }
        recorded.map_err(Failure::tool)?;
        done.map(|_| Outcome::Done(shown))
    }

    /// The output's name for an object named `rel`.
    fn output_name(&self, rel: &str) -> Result<String, String> {
        let suffix = crate::cli_extra::suffix();
        match self.op {
            Op::Encrypt { .. } => Ok(format!("{rel}{suffix}")),
            Op::Decrypt { .. } => rel
                .strip_suffix(suffix)
                .filter(|n| !n.is_empty() && !n.ends_with('/'))
                .map(str::to_owned)
                .ok_or_else(|| crate::cli_extra::not_suffixed().to_owned()),
            Op::Rewrap(_) => Ok(rel.to_owned()),
        }
    }

    fn to_s3(
        &self,
        source: &Source,
        info: &ObjectInfo,
        target: &S3Object,
        pipeline: &PipelineOptions,
        tracker: &Tracker<'_>,
        what: &str,
    ) -> Step {
        let s3 = match client() {
            Ok(s3) => s3,
            Err(e) => return Step::ran(Err(Failure::tool(e))),
        };
        let condition = if matches!(self.dest, Dest::InPlace) {
            if let Some(skip) = self.skip {
                let name = source.object.to_string();
                let checked = s3
                    .ranged(&source.object)
                    .map_err(|e| Failure::lib(what, e))
                    .and_then(|mut r| skip(&mut r, &name).map_err(Failure::tool));
                match checked {
                    Ok(Some(why)) => return Step::Skipped(why.to_owned()),
                    Ok(None) => {}
                    Err(f) => return Step::ran(Err(f)),
                }
            }
            match &info.etag {
                Some(etag) => WriteCondition::IfMatch(etag.clone()),
                None => WriteCondition::Overwrite,
            }
        } else {
            match s3.head(target) {
                Err(e) => return Step::ran(Err(Failure::lib(what, e))),
                Ok(None) => WriteCondition::IfAbsent,
                Ok(Some(existing)) => {
                    let made_from = existing.metadata.get(SOURCE_ETAG);
                    if made_from.is_some() && made_from == info.etag.as_ref() {
                        return Step::Skipped(format!(
                            "{target} was made from this version already"
                        ));
                    }
                    if !self.settings.force {
                        return Step::ran(Err(Failure {
                            error: AppError::usage(format!(
                                "{what}: {target} exists (use --force to replace it)"
                            )),
                            code: "PreconditionFailed".into(),
                            status: 412,
                        }));
                    }
                    WriteCondition::Overwrite
                }
            }
        };
        let reader = match s3.get(&source.object, info.etag.as_deref()) {
            Ok(r) => r,
            Err(e) => return Step::ran(Err(Failure::lib(what, e))),
        };
        let refused = AtomicBool::new(false);
        let reader = Counted::new(reader, tracker, &refused);
        // In place, the new message keeps the ETag of what the old one was made from, so a
        // rerun of the run that made it still finds it done.
        let made_from = match self.dest {
            Dest::InPlace => info.metadata.get(SOURCE_ETAG),
            _ => info.etag.as_ref(),
        };
        let upload = upload_options(Some(info.size), condition, made_from.map(String::as_str));
        Step::ran(
            op_to_s3(s3, self.op, reader, target, &upload, pipeline)
                .map(|(done, _)| done)
                .map_err(|e| Failure::lib(what, e)),
        )
    }

    fn to_local(
        &self,
        source: &Source,
        info: &ObjectInfo,
        path: &Path,
        pipeline: &PipelineOptions,
        tracker: &Tracker<'_>,
        what: &str,
    ) -> Step {
        let name = path.strip_prefix(match &self.dest {
            Dest::Local(dir) => dir.as_path(),
            _ => Path::new(""),
        });
        let safe = name.is_ok_and(|n| n.components().all(|c| matches!(c, Component::Normal(_))));
        if !safe {
            return Step::ran(Err(Failure::tool(AppError::usage(format!(
                "{what}: the key does not make a safe local path"
            )))));
        }
        let run = || -> Result<Done, Failure> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Failure::tool(AppError::io(format!("{what}: {}", parent.display()), e))
                })?;
            }
            if !self.settings.force && path.exists() {
                return Err(Failure {
                    error: AppError::usage(format!(
                        "{what}: {} exists (use --force to replace it)",
                        path.display()
                    )),
                    code: "PreconditionFailed".into(),
                    status: 412,
                });
            }
            let s3 = client().map_err(Failure::tool)?;
            let reader = s3
                .get(&source.object, info.etag.as_deref())
                .map_err(|e| Failure::lib(what, e))?;
            let refused = AtomicBool::new(false);
            let reader = Counted::new(reader, tracker, &refused);
            let options = FileOptions::default()
                .with_overwrite(self.settings.force)
                .with_cancel(crate::interrupt::flag());
            write_atomically(path, &options, |w| self.op.stream(reader, w, pipeline))
                .map_err(|e| Failure::lib(what, e))
        };
        Step::ran(run())
    }
}

/// What became of one object's work.
enum Step {
    Ran(Box<Result<Done, Failure>>),
    Skipped(String),
}

impl Step {
    fn ran(result: Result<Done, Failure>) -> Self {
        Step::Ran(Box::new(result))
    }
}

/// The summary line's verb.
fn past(op: Op<'_>) -> &'static str {
    match op {
        Op::Encrypt { .. } => "encrypted",
        Op::Decrypt { .. } => "decrypted",
        Op::Rewrap(_) => "rewrapped",
    }
}
