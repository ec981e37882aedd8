//! S3 objects as INPUT and `-o OUT` (`s3://BUCKET/KEY`) for `encrypt`, `decrypt`, `rewrap`
//! and `inspect`; runs over many objects are in `runs`.
//!
//! The library moves the bytes (`envcrypt::s3`): a streaming `GetObject` feeds the same
//! pipeline as files, and an upload appears only once the whole message is in it (any
//! failure aborts it). This module holds the tool's rules:
//! - an existing object is kept unless `--force` (`If-None-Match: *` on the write);
//! - `decrypt` writes plaintext to S3 only with `--allow-plaintext-upload`;
//! - an S3 output's metadata holds one pair, `envcrypt-source-etag` (the ETag of what it was
//!   made from, for idempotent reruns), never a context value or key material.
//!
//! Region, credentials and endpoint (`AWS_ENDPOINT_URL_S3`) come from the standard AWS
//! chain.

pub mod folder;
pub mod runs;

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use envcrypt::file::{write_atomically, FileOptions};
use envcrypt::s3::{S3Client, S3Error, S3Object, S3Options, UploadOptions, WriteCondition};

use crate::crypt::{lib_error, Counted, Done, Op, Settings};
use crate::error::AppError;
use crate::output::{binary_stdout, check_output_file, is_std, open_input};
use crate::progress::Progress;

/// The metadata key (`x-amz-meta-…`) naming the ETag of an output's source.
pub const SOURCE_ETAG: &str = "envcrypt-source-etag";

/// The S3 client of this run, made on first use from the standard AWS chain.
pub fn client() -> Result<&'static S3Client, AppError> {
    static CLIENT: OnceLock<Result<S3Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| S3Client::from_env().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| AppError::with_code(crate::error::EXIT_UNAVAILABLE, format!("S3: {e}")))
}

/// `path` as an S3 object, if it is an `s3://` URI.
pub fn object_of(path: Option<&Path>) -> Result<Option<S3Object>, AppError> {
    match path.and_then(Path::to_str).filter(|p| S3Object::is_uri(p)) {
        Some(uri) => S3Object::parse(uri)
            .map(Some)
            .map_err(|e| AppError::usage(e.to_string())),
        None => Ok(None),
    }
}

/// The S3 error inside a library error, if an S3 call failed.
pub fn s3_error(e: &envcrypt::Error) -> Option<&S3Error> {
    match e {
        envcrypt::Error::S3(s3) => Some(s3),
        envcrypt::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<S3Error>()),
        _ => None,
    }
}

/// Upload options for an output made from a source with `source_etag`.
pub fn upload_options(
    size_hint: Option<u64>,
    condition: WriteCondition,
    source_etag: Option<&str>,
) -> UploadOptions {
    let mut options = UploadOptions::default().with_condition(condition);
    if let Some(size) = size_hint {
        // The message is a little larger than its plaintext (frame tags, header, footer).
        options = options.with_size_hint(size + size / 64 + (1 << 20));
    }
    if let Some(etag) = source_etag {
        options = options.with_metadata(SOURCE_ETAG, etag);
    }
    options
}

/// Runs `op` from `input` into the new object `to`: frames go to the upload as they are
/// made; the object appears only when the whole message is in it.
pub fn op_to_s3(
    s3: &S3Client,
    op: Op<'_>,
    input: impl Read,
    to: &S3Object,
    upload: &UploadOptions,
    pipeline: &envcrypt::pipeline::PipelineOptions,
) -> Result<(Done, envcrypt::s3::Written), envcrypt::Error> {
    if let Op::Decrypt { client, options } = op {
        let s3_options = S3Options::default()
            .with_pipeline(pipeline.clone())
            .with_upload(upload.clone());
        let (header, to_s3) = client.decrypt_to_s3(s3, input, to, options, &s3_options)?;
        let done = Done {
            stats: to_s3.stats,
            header: Some(header),
            source: None,
        };
        return Ok((done, to_s3.written));
    }
    s3.write_object(to, upload, |upload| {
        let mut capture = crate::metadata::Capture {
            inner: upload,
            head: Vec::new(),
        };
        let mut done = op.stream(input, &mut capture, pipeline)?;
        if done.header.is_none() && (crate::metadata::enabled() || crate::audit::enabled()) {
            done.header = crate::metadata::header_of(&capture.head);
        }
        Ok(done)
    })
}

/// One input to one output where either is an S3 object, and its metadata line and audit
/// event.
pub fn single(
    op: Op<'_>,
    input: Option<&Path>,
    output: Option<&Path>,
    settings: &Settings,
) -> Result<Done, AppError> {
    named(op, input, &crate::metadata::name(input), output, settings)
}

/// [`single`], with the input shown as `in_name` (a file opened by a folder walk is read
/// through its descriptor's path).
fn named(
    op: Op<'_>,
    input: Option<&Path>,
    in_name: &str,
    output: Option<&Path>,
    settings: &Settings,
) -> Result<Done, AppError> {
    let source = object_of(input)?;
    let target = object_of(output)?;
    let out_name = crate::metadata::name(output);
    let local_out = output.filter(|_| target.is_none() && !is_std(output));
    let done = single_inner(
        op,
        (input, in_name),
        source.as_ref(),
        output,
        target.as_ref(),
        settings,
    );
    crate::metadata::record_done(op.verb(), in_name, &out_name, None, &done)?;
    let recorded = crate::audit::record_done(
        op.verb(),
        in_name,
        None,
        local_out,
        done.as_ref().map(Done::finished),
    );
    if let (Err(_), Some(target), Ok(_)) = (&recorded, &target, &done) {
        // Nothing unrecorded is left behind.
        delete(target);
    }
    recorded?;
    done
}

/// Deletes an object this run wrote (best effort).
fn delete(object: &S3Object) {
    if let Ok(s3) = client() {
        let _ = s3.delete(object);
    }
}

fn single_inner(
    op: Op<'_>,
    (input, shown_in): (Option<&Path>, &str),
    source: Option<&S3Object>,
    output: Option<&Path>,
    target: Option<&S3Object>,
    settings: &Settings,
) -> Result<Done, AppError> {
    let verb = op.verb();
    let what = format!("{verb} {shown_in}");
    if let (Some(_), Op::Decrypt { .. }, false) = (target, op, settings.plaintext_upload) {
        return Err(AppError::usage(format!(
            "{what}: refusing to write plaintext to S3 (add --allow-plaintext-upload if that is meant)"
        )));
    }
    if let (Some(s), Some(t)) = (source, target) {
        if s == t {
            return Err(AppError::usage(format!(
                "{what}: the output is the input (rewrap has --in-place)"
            )));
        }
    }
    let local_out = output.filter(|_| target.is_none() && !is_std(output));
    if let Some(out) = local_out {
        check_output_file(out, settings.force, None)?;
    }
    if let (Some(target), false) = (target, settings.force) {
        // Refused before any byte moves; the write's own condition covers a race.
        let existing = client()?.head(target).map_err(|e| lib_error(&what, e))?;
        if existing.is_some() {
            return Err(AppError::usage(format!(
                "{what}: {target} exists (use --force to replace it)"
            )));
        }
    }
    // The input: a streaming GET, or a file or stdin.
    let (reader, size, etag): (Box<dyn Read + Send>, Option<u64>, Option<String>) = match source {
        Some(object) => {
            let s3 = client()?;
            let r = s3.get(object, None).map_err(|e| lib_error(&what, e))?;
            let (size, etag) = (r.info().size, r.info().etag.clone());
            (Box::new(r), Some(size), etag)
        }
        None => {
            let f = open_input(input)?;
            let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            (
                Box::new(io::BufReader::with_capacity(1 << 20, f)),
                size,
                None,
            )
        }
    };
    let bar = Progress::start(settings.progress, verb, size, 0);
    let tracker = bar.tracker();
    let refused = AtomicBool::new(false);
    let reader = Counted::new(reader, &tracker, &refused);
    let done = match (target, local_out) {
        (Some(target), _) => {
            let condition = match settings.force {
                true => WriteCondition::Overwrite,
                false => WriteCondition::IfAbsent,
            };
            let upload = upload_options(size, condition, etag.as_deref());
            op_to_s3(client()?, op, reader, target, &upload, &settings.pipeline)
                .map(|(done, _)| done)
                .map_err(|e| s3_lib_error(&what, e))?
        }
        (None, Some(out)) => {
            let options = FileOptions::default()
                .with_overwrite(settings.force)
                .with_cancel(crate::interrupt::flag());
            write_atomically(out, &options, |w| op.stream(reader, w, &settings.pipeline))
                .map_err(|e| s3_lib_error(&what, e))?
        }
        (None, None) => {
            let mut stdout = binary_stdout()?;
            let mut capture = crate::metadata::Capture {
                inner: &mut stdout,
                head: Vec::new(),
            };
            let mut done = op
                .stream(reader, &mut capture, &settings.pipeline)
                .map_err(|e| s3_lib_error(&what, e))?;
            if done.header.is_none() && (crate::metadata::enabled() || crate::audit::enabled()) {
                done.header = crate::metadata::header_of(&capture.head);
            }
            stdout
                .flush()
                .map_err(|e| AppError::io(format!("{what}: stdout"), e))?;
            done
        }
    };
    bar.finish();
    Ok(done)
}

/// A library error of an S3 run; an existing object is the usage error of `--force`.
pub fn s3_lib_error(what: &str, e: envcrypt::Error) -> AppError {
    if s3_error(&e).is_some_and(|s| s.is_precondition_failed()) {
        return AppError::usage(format!(
            "{what}: {e} (the output exists, or changed since it was read; --force replaces an existing output)"
        ));
    }
    if crate::interrupt::requested() {
        return lib_error(what, envcrypt::Error::Cancelled);
    }
    lib_error(what, e)
}

/// `inspect s3://…`: reads the header from the start of the object and stops.
pub fn inspect_path(path: &Path) -> Result<(), AppError> {
    let object = object_of(Some(path))?.expect("an s3:// path");
    let name = object.to_string();
    let mut reader = client()?
        .get(&object, None)
        .map_err(|e| lib_error(&format!("inspect {name}"), e))?;
    let parsed = crate::inspect::read_header(&mut reader, &name)?;
    println!("{}", crate::inspect::header_json(&parsed, &name)?);
    Ok(())
}
