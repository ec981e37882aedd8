//! `encrypt` and `decrypt`: one input to one output, or a folder (`-r`, see `walk`).
//!
//! Files go through the library's file API (`Client::encrypt_file` / `decrypt_file`: a
//! temporary file in the target directory, synced and renamed into place only on success);
//! stdout goes through the parallel frame pipeline (`encrypt_stream` / `decrypt_stream`).
//! Memory stays flat whatever the size: a few frames per worker.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use envcrypt::crypto::CryptoProvider;
use envcrypt::file::FileOptions;
use envcrypt::pipeline::{PipelineOptions, StreamStats};
use envcrypt::rewrap::{Rewrap, Rewrapped};
use envcrypt::{
    Client, CommitmentPolicy, DecryptOptions, EncryptionContext, Header, ReleasePolicy,
    SignaturePolicy,
};

use crate::cli::{CommonArgs, DecryptArgs, EncryptArgs};
use crate::error::{AppError, EXIT_INTERRUPTED};
use crate::keyring_file::{combine, KeyringFile};
use crate::keyring_spec::{build_parsed, Purpose};
use crate::output::{
    binary_stdout, check_input_file, check_output_file, display_name, is_s3, is_std, open_input,
    stdin_file,
};
use crate::progress::{self, Progress, Tracker};

/// Builds a context from `KEY=VALUE` pairs, refusing a key given twice.
pub fn context_from_pairs<'a>(
    pairs: impl IntoIterator<Item = &'a (String, String)>,
    what: &str,
) -> Result<EncryptionContext, AppError> {
    let mut context = EncryptionContext::new();
    for (k, v) in pairs {
        if context.insert(k.clone(), v.clone()).is_some() {
            return Err(AppError::usage(format!(
                "{what} key {k:?} given more than once"
            )));
        }
    }
    Ok(context)
}

/// What to do to each input.
#[derive(Clone, Copy)]
pub enum Op<'a> {
    Encrypt {
        client: &'a Client,
        context: &'a EncryptionContext,
    },
    Decrypt {
        client: &'a Client,
        options: &'a DecryptOptions,
    },
    Rewrap(&'a Rewrap<'a>),
}

/// What one input became.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub stats: StreamStats,
    /// The authenticated header (decrypt), or the new one (rewrap).
    pub header: Option<Header>,
    /// The source message's header (rewrap).
    pub source: Option<Header>,
}

impl Done {
    fn rewrapped(r: Rewrapped) -> Self {
        Self {
            stats: r.stats,
            header: Some(r.header),
            source: Some(r.source),
        }
    }
}

impl Op<'_> {
    /// `encrypt` or `decrypt`.
    pub fn verb(&self) -> &'static str {
        match self {
            Op::Encrypt { .. } => "encrypt",
            Op::Decrypt { .. } => "decrypt",
            Op::Rewrap(_) => "rewrap",
        }
    }

    /// File to file, atomically (the library's file API).
    pub fn file(
        &self,
        input: &Path,
        output: &Path,
        options: &FileOptions<'_>,
    ) -> Result<Done, envcrypt::Error> {
        match *self {
            Op::Encrypt { client, context } => client
                .encrypt_file(input, output, context, options)
                .map(|stats| Done {
                    stats,
                    header: None,
                    source: None,
                }),
            Op::Decrypt { client, options: o } => client
                .decrypt_file(input, output, o, options)
                .map(|(header, stats)| Done {
                    stats,
                    header: Some(header),
                    source: None,
                }),
            Op::Rewrap(rewrap) => rewrap.file(input, output, options).map(Done::rewrapped),
        }
    }

    /// Stream to stream through the frame pipeline.
    pub fn stream<R: Read, W: Write + Send>(
        &self,
        input: R,
        output: W,
        pipeline: &PipelineOptions,
    ) -> Result<Done, envcrypt::Error> {
        match *self {
            Op::Encrypt { client, context } => client
                .encrypt_stream(input, output, context, pipeline)
                .map(|stats| Done {
                    stats,
                    header: None,
                    source: None,
                }),
            Op::Decrypt { client, options } => client
                .decrypt_stream(input, output, options, pipeline)
                .map(|(header, stats)| Done {
                    stats,
                    header: Some(header),
                    source: None,
                }),
            Op::Rewrap(rewrap) => rewrap.stream(input, output, pipeline).map(Done::rewrapped),
        }
    }
}

/// How inputs are processed (from the common options).
#[derive(Debug, Clone)]
pub struct Settings {
    pub force: bool,
    pub quiet: bool,
    pub pipeline: PipelineOptions,
    /// Draw a progress bar (stderr is a terminal and no `-q`).
    pub progress: bool,
    /// `decrypt --allow-plaintext-upload`: plaintext may be written to S3.
    pub plaintext_upload: bool,
}

impl Settings {
    pub fn new(common: &CommonArgs) -> Self {
        Self::from_flags(common.force, common.quiet, common.threads)
    }

    pub fn from_flags(force: bool, quiet: bool, threads: Option<usize>) -> Self {
        Self {
            force,
            quiet,
            pipeline: pipeline_options(threads),
            progress: progress::wanted(quiet),
            plaintext_upload: false,
        }
    }
}

/// `--threads N` (default: one worker per core).
pub fn pipeline_options(threads: Option<usize>) -> PipelineOptions {
    PipelineOptions::default().with_threads(threads.unwrap_or(0))
}

/// A library error while doing `what`. An output that appeared meanwhile (another process
/// won the race with our existence check) is the usage error of `--force`.
pub fn lib_error(what: &str, e: envcrypt::Error) -> AppError {
    match &e {
        envcrypt::Error::Cancelled => interrupted(what),
        envcrypt::Error::Io(io) if io.kind() == io::ErrorKind::AlreadyExists => {
            AppError::usage(format!("{what}: {io} (use --force to replace it)"))
        }
        _ => AppError::lib(what, e),
    }
}

/// The `-k` keyrings and those of `-K` for `purpose`, behind the data-key cache with
/// `--caching`; sets the suffix and opens the metadata output first.
fn prepare(common: &CommonArgs, purpose: Purpose) -> Result<envcrypt::ClientBuilder, AppError> {
    let extra = &common.extra;
    crate::cli_extra::set_suffix(&extra.suffix);
    let data_to_stdout = !common.recursive && is_std(common.output.as_deref());
    crate::metadata::open(extra.metadata_output.as_deref(), data_to_stdout)?;
    let file = match &extra.keyring_file {
        Some(path) => Some(KeyringFile::read(path, false)?.keyrings),
        None => None,
    };
    let specs = combine(&common.keyrings, file)?;
    let keyring = build_parsed(&specs, purpose)?;
    let many = common.recursive || common.s3.manifest.is_some();
    if extra.caching && !many {
        return Err(AppError::usage(
            "--caching needs -r or --manifest (many messages)",
        ));
    }
    let caching = extra.caching.then_some(extra);
    Ok(crate::cli_extra::with_keyring(
        Client::builder(),
        keyring,
        caching,
    ))
}

/// `envcrypt encrypt`.
pub fn run_encrypt(args: &EncryptArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let common = &args.common;
    let (pairs, bare) = crate::cli_extra::split_context(&common.context);
    if let Some(key) = bare.first() {
        return Err(AppError::usage(format!(
            "-c {key:?} without a value: encrypt stores KEY=VALUE pairs (a bare KEY is for decrypt)"
        )));
    }
    let mut context = context_from_pairs(&pairs, "context")?;
    for (k, v) in &args.required_context {
        if context.insert(k.clone(), v.clone()).is_some() {
            return Err(AppError::usage(format!(
                "context key {k:?} given more than once (-c / --required-context)"
            )));
        }
    }
    let client = prepare(common, Purpose::Encrypt)?
        .provider(provider)
        .suite(args.suite)
        .frame_length(args.frame_length)
        .required_context_keys(args.required_context.iter().map(|(k, _)| k.clone()))
        .build()
        .map_err(|e| AppError::lib("encrypt", e))?;
    let op = Op::Encrypt {
        client: &client,
        context: &context,
    };
    run(common, op, false)
}

/// `envcrypt decrypt`.
pub fn run_decrypt(args: &DecryptArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    let common = &args.common;
    let (pairs, bare) = crate::cli_extra::split_context(&common.context);
    let options = DecryptOptions::default()
        .with_expected_context(context_from_pairs(&pairs, "context")?)
        .with_expected_keys(bare)
        .with_required_context(context_from_pairs(
            &args.required_context,
            "required context",
        )?)
        .with_release(match args.unverified_stream {
            true => ReleasePolicy::UnverifiedStream,
            false => ReleasePolicy::Verified,
        });
    let mut builder = prepare(common, Purpose::Decrypt)?
        .provider(provider)
        .commitment_policy(if args.allow_v1 {
            CommitmentPolicy::RequireEncryptAllowDecrypt
        } else {
            CommitmentPolicy::RequireEncryptRequireDecrypt
        })
        .signature_policy(if args.unsigned_only {
            SignaturePolicy::UnsignedOnly
        } else {
            SignaturePolicy::AllowSigned
        });
    if let Some(max) = args.max_edks {
        builder = builder.max_encrypted_data_keys(max);
    }
    if let Some(max) = args.max_frame_length {
        builder = builder.max_frame_length(max);
    }
    let client = builder.build().map_err(|e| AppError::lib("decrypt", e))?;
    let op = Op::Decrypt {
        client: &client,
        options: &options,
    };
    run(common, op, args.allow_plaintext_upload)
}

fn run(common: &CommonArgs, op: Op<'_>, plaintext_upload: bool) -> Result<(), AppError> {
    crate::interrupt::install();
    let mut settings = Settings::new(common);
    settings.plaintext_upload = plaintext_upload;
    let (input, output) = (common.input.as_deref(), common.output.as_deref());
    let s3 = &common.s3;
    let prefix_run = common.recursive && is_s3(input);
    if s3.manifest.is_some() || prefix_run {
        return crate::s3::runs::run(crate::s3::runs::Request {
            op,
            manifest: s3.manifest.as_deref(),
            object: None,
            shard: s3.shard.as_deref(),
            prefix: input.filter(|_| prefix_run),
            output,
            in_place: false,
            settings: &settings,
            report: s3.report.as_deref(),
            skip: None,
        });
    }
    if s3.report.is_some() {
        return Err(AppError::usage(
            "--report needs --manifest or -r s3://BUCKET/PREFIX/",
        ));
    }
    if let (true, Some(input), Some(output)) = (common.recursive && is_s3(output), input, output) {
        if common.follow_symlinks {
            return Err(AppError::usage(
                "--follow-symlinks is for folder outputs; a folder to S3 skips links",
            ));
        }
        return crate::s3::folder::run(op, input, output, &settings);
    }
    if common.recursive {
        let (Some(input), Some(outdir)) = (common.input.as_deref(), common.output.as_deref())
        else {
            return Err(AppError::usage(
                "-r/--recursive needs a directory INPUT and -o OUTDIR",
            ));
        };
        return crate::walk::run(op, input, outdir, common.follow_symlinks, &settings);
    }
    single(
        op,
        common.input.as_deref(),
        common.output.as_deref(),
        &settings,
    )
    .map(|_| ())
}

/// One input (file or stdin) to one output (file or stdout), and its metadata line.
pub fn single(
    op: Op<'_>,
    input: Option<&Path>,
    output: Option<&Path>,
    settings: &Settings,
) -> Result<Done, AppError> {
    if is_s3(input) || is_s3(output) {
        return crate::s3::single(op, input, output, settings);
    }
    let done = single_inner(op, input, output, settings);
    let written = output.filter(|_| !is_std(output));
    crate::metadata::record_done(
        op.verb(),
        &crate::metadata::name(input),
        &crate::metadata::name(output),
        written,
        &done,
    )?;
    crate::audit::record_done(
        op.verb(),
        &crate::metadata::name(input),
        written,
        written,
        done.as_ref().map(Done::finished),
    )?;
    done
}

fn single_inner(
    op: Op<'_>,
    input: Option<&Path>,
    output: Option<&Path>,
    settings: &Settings,
) -> Result<Done, AppError> {
    let verb = op.verb();
    let what = format!("{verb} {}", display_name(input, "stdin"));
    let (in_std, out_std) = (is_std(input), is_std(output));
    match input {
        Some(path) if !in_std => check_input_file(path)?,
        _ => {}
    }
    if let (Some(out), false) = (output, out_std) {
        check_output_file(out, settings.force, input)?;
    }
    let mut stdout = if out_std {
        Some(binary_stdout()?)
    } else {
        None
    };
    let total = match input {
        Some(p) if !in_std => std::fs::metadata(p).ok().map(|m| m.len()),
        _ => stdin_size(),
    };
    let bar = Progress::start(settings.progress, verb, total, 0);
    let tracker = bar.tracker();
    let done = match (output, stdout.as_mut()) {
        (Some(out), None) => {
            // File output: the library's atomic file API. Stdin is read through its path.
            let source = if in_std {
                stdin_file(input.is_some())?;
                Path::new("/dev/stdin")
            } else {
                input.expect("a file input")
            };
            let report = |n: u64| tracker.read_so_far(n);
            let options = FileOptions::default()
                .with_pipeline(settings.pipeline.clone())
                .with_overwrite(settings.force)
                .with_progress(&report)
                .with_cancel(crate::interrupt::flag());
            op.file(source, out, &options)
                .map_err(|e| lib_error(&what, e))?
        }
        (_, Some(stdout)) => {
            let refused = AtomicBool::new(false);
            let reader = Counted::new(open_input(input)?, &tracker, &refused);
            let mut capture = crate::metadata::Capture {
                inner: stdout,
                head: Vec::new(),
            };
            let mut done = op
                .stream(reader, &mut capture, &settings.pipeline)
                .map_err(|e| match refused.load(Ordering::Relaxed) {
                    true => interrupted(&what),
                    false => lib_error(&what, e),
                })?;
            if done.header.is_none() && (crate::metadata::enabled() || crate::audit::enabled()) {
                done.header = crate::metadata::header_of(&capture.head);
            }
            done
        }
        (None, None) => unreachable!("no output and no stdout"),
    };
    bar.finish();
    Ok(done)
}

/// The size of stdin when it is a regular file (`< file`), for the progress bar.
fn stdin_size() -> Option<u64> {
    use std::os::fd::AsFd;
    let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    meta.is_file().then_some(meta.len())
}

/// The error of a run a signal stopped.
fn interrupted(what: &str) -> AppError {
    AppError::with_code(EXIT_INTERRUPTED, format!("{what}: interrupted"))
}

/// Reports the bytes read through it to a progress bar; refuses to read once a signal
/// asked the run to stop (and sets `refused`).
pub struct Counted<'a, R> {
    inner: R,
    tracker: &'a Tracker<'a>,
    read: u64,
    refused: &'a AtomicBool,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, tracker: &'a Tracker<'a>, refused: &'a AtomicBool) -> Self {
        Self {
            inner,
            tracker,
            read: 0,
            refused,
        }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::interrupt::requested() {
            self.refused.store(true, Ordering::Relaxed);
            return Err(io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        self.tracker.read_so_far(self.read);
        Ok(n)
    }
}
