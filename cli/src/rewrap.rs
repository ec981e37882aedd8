//! `envcrypt rewrap`: move messages to new keys (the library's `rewrap`).
//!
//! - One input: to `-o OUT` (atomic), to stdout, or `--in-place` (the new message renamed
//!   over the input once the whole input verified: a crash leaves the old or the new one).
//! - `-r`: every `*.enc` file under the folder INPUT (links and special files skipped, as in
//!   the folder runs), to the same names under `-o OUTDIR` or in place. Per file: skipped if
//!   `--only-wrapped-by` names a key it has no EDK of, or if it is already wrapped for
//!   exactly the `--to` keys **and** its header opens with one of them (an edited EDK list
//!   alone does not pass for rotated); else rewrapped. Failures do not stop the others; they
//!   are listed, then the summary line `rewrapped N, skipped M, failed F` ends stderr.
//!   `--in-place` on one file skips the same way, so re-runs are idempotent.

use std::collections::BTreeSet;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use envcrypt::crypto::CryptoProvider;
use envcrypt::file::FileOptions;
use envcrypt::keyring::MultiKeyring;
use envcrypt::rewrap::{Rewrap, RewrapOptions};
use envcrypt::{Client, CommitmentPolicy, DecryptOptions};

use crate::cli::RewrapArgs;
use crate::crypt::{context_from_pairs, lib_error, single, Op, Settings};
use crate::error::{AppError, EXIT_INTERRUPTED};
use crate::key_id::{self, KeyId};
use crate::keyring_file::{combine, KeyringFile};
use crate::keyring_spec::{build_parsed, KeyringSpec, Purpose};
use crate::out_dir::{check_apart, OutDir};
use crate::output::ReadSeek;
use crate::parallel::{self, Bound};
use crate::progress::Progress;
use crate::walk::{priority, regular_files, Listed};

/// `envcrypt rewrap`.
pub fn run(args: &RewrapArgs, provider: &'static CryptoProvider) -> Result<(), AppError> {
    crate::interrupt::install();
    let extra = &args.extra;
    crate::cli_extra::set_suffix(&extra.suffix);
    let data_to_stdout =
        !args.recursive && !args.in_place && crate::output::is_std(args.output.as_deref());
    crate::metadata::open(extra.metadata_output.as_deref(), data_to_stdout)?;
    let (pairs, bare) = crate::cli_extra::split_context(&args.context);
    let decrypt = DecryptOptions::default()
        .with_expected_context(context_from_pairs(&pairs, "context")?)
        .with_expected_keys(bare)
        .with_required_context(context_from_pairs(
            &args.required_context,
            "required context",
        )?);
    let mut options = RewrapOptions::default()
        .with_decrypt(decrypt.clone())
        .with_added_context(context_from_pairs(&args.add_context, "added context")?)
        .with_removed_context(args.remove_context.iter().cloned());
    if let Some(suite) = args.suite {
        options = options.with_suite(suite);
    }
    let file = match &extra.keyring_file {
        Some(path) => Some(KeyringFile::read(path, true)?),
        None => None,
    };
    let (file_from, file_to) = file.map(|f| (f.keyrings, f.to)).unzip();
    let from_specs = combine(&args.keyrings, file_from)?;
    let to_specs = combine(&args.to, file_to)?;
    if to_specs.is_empty() {
        return Err(AppError::usage("at least one --to keyring is required"));
    }
    let s3 = &args.s3;
    let many = args.recursive || s3.manifest.is_some();
    if extra.caching && !many {
        return Err(AppError::usage(
            "--caching needs -r or --manifest (many messages)",
        ));
    }
    let caching = extra.caching;
    let from = crate::cli_extra::with_keyring(
        Client::builder(),
        build_parsed(&from_specs, Purpose::Decrypt)?,
        caching.then_some(extra),
    )
    .provider(provider)
    .commitment_policy(match args.allow_v1 {
        true => CommitmentPolicy::RequireEncryptAllowDecrypt,
        false => CommitmentPolicy::RequireEncryptRequireDecrypt,
    })
    .build()
    .map_err(|e| AppError::lib("rewrap", e))?;
    let to = crate::cli_extra::with_keyring(
        Client::builder(),
        build_parsed(&to_specs, Purpose::Encrypt)?,
        caching.then_some(extra),
    )
    .provider(provider)
    .build()
    .map_err(|e| AppError::lib("rewrap", e))?;
    let rewrap = Rewrap::new(&from, &to).with_options(options);
    let settings = Settings::from_flags(args.force, args.quiet, args.threads);

    let input = args.input.as_deref();
    let prefix_run = args.recursive && crate::output::is_s3(input);
    let object_in_place = args.in_place && !args.recursive && crate::output::is_s3(input);
    if s3.manifest.is_some() || prefix_run || object_in_place {
        let skip = Skip::new(args, &to_specs, provider, decrypt)?;
        let check = |r: &mut dyn ReadSeek, name: &str| skip.reason_of(r, name);
        // One object in place is a run of one (its skip rule and report included).
        return crate::s3::runs::run(crate::s3::runs::Request {
            op: Op::Rewrap(&rewrap),
            manifest: s3.manifest.as_deref(),
            object: input.filter(|_| object_in_place),
            shard: s3.shard.as_deref(),
            prefix: input.filter(|_| prefix_run),
            output: args.output.as_deref(),
            in_place: args.in_place,
            settings: &settings,
            report: s3.report.as_deref(),
            skip: Some(&check),
        });
    }
    if s3.report.is_some() {
        return Err(AppError::usage(
            "--report needs --manifest or -r s3://BUCKET/PREFIX/",
        ));
    }
    if let (true, Some(input), Some(output)) = (
        args.recursive && crate::output::is_s3(args.output.as_deref()),
        input,
        args.output.as_deref(),
    ) {
        return crate::s3::folder::run(Op::Rewrap(&rewrap), input, output, &settings);
    }
    if !args.recursive && !args.in_place {
        if args.only_wrapped_by.is_some() {
            return Err(AppError::usage(
                "--only-wrapped-by selects files of a folder (-r) or an --in-place run",
            ));
        }
        return single(
            Op::Rewrap(&rewrap),
            input,
            args.output.as_deref(),
            &settings,
        )
        .map(drop);
    }
    let Some(input) = input.filter(|p| p.as_os_str() != "-") else {
        return Err(AppError::usage(
            "-r and --in-place need a file or folder INPUT, not stdin",
        ));
    };
    let skip = Skip::new(args, &to_specs, provider, decrypt)?;
    let run = Run {
        rewrap: &rewrap,
        skip: &skip,
        settings: &settings,
    };
    let (files, outdir) = match (args.recursive, args.output.as_deref()) {
        (true, Some(outdir)) => {
            check_apart(input, outdir)?;
            (list(input)?, Some(outdir))
        }
        (true, None) if args.in_place => (list(input)?, None),
        (true, None) => return Err(AppError::usage("-r needs -o OUTDIR or --in-place")),
        (false, _) => {
            let meta = std::fs::metadata(input)
                .map_err(|e| AppError::io(format!("cannot open {}", input.display()), e))?;
            if !meta.is_file() {
                return Err(AppError::usage(format!(
                    "{} is not a file (for folders use -r)",
                    input.display()
                )));
            }
            (vec![File::Named(input.to_path_buf(), meta.len())], None)
        }
    };
    run.all(input, files, outdir, args.recursive)
}

/// A file to rewrap: found by the folder walk, or named on the command line.
enum File {
    Listed(Listed),
    Named(PathBuf, u64),
}

impl File {
    fn path(&self) -> &Path {
        match self {
            File::Listed(l) => l.path(),
            File::Named(p, _) => p,
        }
    }

    fn size(&self) -> u64 {
        match self {
            File::Listed(l) => l.size(),
            File::Named(_, size) => *size,
        }
    }

    fn open(&self) -> Result<std::fs::File, AppError> {
        match self {
            File::Listed(l) => l.open(),
            File::Named(p, _) => std::fs::File::open(p)
                .map_err(|e| AppError::io(format!("cannot open {}", p.display()), e)),
        }
    }
}

/// The files under `input` whose names end in the suffix (`--suffix`, default `.enc`) (links and special files are skipped by the walk).
fn list(input: &Path) -> Result<Vec<File>, AppError> {
    let listing = regular_files(input)?;
    if let Some((_, e)) = listing.failures.into_iter().next() {
        return Err(e);
    }
    Ok(listing
        .files
        .into_iter()
        .filter(|f| {
            let suffix = crate::cli_extra::suffix().as_bytes();
            f.path()
                .file_name()
                .is_some_and(|n| n.len() > suffix.len() && n.as_encoded_bytes().ends_with(suffix))
        })
        .map(File::Listed)
        .collect())
}

/// Which files a run leaves alone.
struct Skip {
    /// `--only-wrapped-by`.
    only: Option<KeyId>,
    /// The keys of `--to`, as their EDKs name them.
    to: BTreeSet<KeyId>,
    /// A client over the `--to` keyrings that can decrypt (public RSA keys cannot).
    verifier: Option<Client>,
    decrypt: DecryptOptions,
}

impl Skip {
    fn new(
        args: &RewrapArgs,
        to_specs: &[KeyringSpec],
        provider: &'static CryptoProvider,
        decrypt: DecryptOptions,
    ) -> Result<Self, AppError> {
        let only = match &args.only_wrapped_by {
            Some(spec) => Some(key_id::of_spec(&KeyringSpec::parse(spec)?).ok_or_else(|| {
                AppError::usage("--only-wrapped-by needs a spec that names one key")
            })?),
            None => None,
        };
        let mut to = BTreeSet::new();
        // The `--to` keyrings that can open a header (a public RSA key cannot), built once.
        let mut openers = Vec::new();
        for parsed in to_specs {
            to.extend(key_id::of_spec(parsed));
            if let Ok(keyring) = parsed.build(Purpose::Decrypt) {
                openers.push(keyring);
            }
        }
        let verifier = match openers.is_empty() {
            true => None,
            false => {
                let first = openers.remove(0);
                Some(
                    Client::builder()
                        .keyring(MultiKeyring::from_arcs(Some(first), openers))
                        .provider(provider)
                        .build()
                        .map_err(|e| AppError::lib("rewrap", e))?,
                )
            }
        };
        Ok(Self {
            only,
            to,
            verifier,
            decrypt,
        })
    }

    /// Why `file` is left alone, if it is.
    fn reason(&self, file: &File) -> Result<Option<&'static str>, AppError> {
        let mut f = file.open()?;
        self.reason_of(&mut f, &file.path().display().to_string())
    }

    /// Why the message in `f` (named `name`) is left alone, if it is. A message whose header
    /// does not parse is not skipped: its rewrap fails and says why.
    fn reason_of(
        &self,
        mut f: &mut dyn ReadSeek,
        name: &str,
    ) -> Result<Option<&'static str>, AppError> {
        let Ok(parsed) = crate::inspect::read_header(&mut f, name) else {
            return Ok(None);
        };
        let edks = &parsed.header.encrypted_data_keys;
        if let Some(only) = &self.only {
            if !edks.iter().any(|e| key_id::matches(only, e)) {
                return Ok(Some("not wrapped by the --only-wrapped-by key"));
            }
        }
        let ids: BTreeSet<KeyId> = edks.iter().map(key_id::of_edk).collect();
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        if ids != self.to {
            return Ok(None);
        }
        f.seek(SeekFrom::Start(0))
            .map_err(|e| AppError::io(format!("cannot read {name}"), e))?;
        match verifier.open(&mut f, &self.decrypt) {
            Ok(_) => Ok(Some("already wrapped for the --to keys")),
            Err(_) => Ok(None),
        }
    }
}

/// One rewrap run over several files.
struct Run<'a> {
    rewrap: &'a Rewrap<'a>,
    skip: &'a Skip,
    settings: &'a Settings,
}

/// What happened to one file.
enum Outcome {
    Rewrapped,
    Skipped(&'static str),
}

impl Run<'_> {
    fn all(
        &self,
        input: &Path,
        files: Vec<File>,
        outdir: Option<&Path>,
        summary: bool,
    ) -> Result<(), AppError> {
        let mut out = match outdir {
            Some(dir) => Some(OutDir::create(dir)?),
            None => None,
        };
        if let Some(out) = out.as_mut() {
            let parents: BTreeSet<PathBuf> = files
                .iter()
                .filter_map(|f| Some(rel(input, f.path()).parent()?.to_path_buf()))
                .collect();
            for dir in parents {
                out.prepare(&dir)?;
            }
        }
        let total = files.iter().map(File::size).sum();
        let bar = Progress::start(
            self.settings.progress,
            "rewrap",
            Some(total),
            files.len() as u64,
        );
        let jobs = parallel::count(&self.settings.pipeline, Bound::Cpu, files.len());
        let outcomes = Mutex::new(Vec::new());
        parallel::for_each(&files, jobs, |_, file| {
            let tracker = bar.tracker();
            let report = |n: u64| tracker.read_so_far(n);
            let options = FileOptions::default()
                .with_pipeline(parallel::pipeline_for(
                    &self.settings.pipeline,
                    jobs,
                    file.size(),
                ))
                .with_overwrite(self.settings.force)
                .with_progress(&report)
                .with_cancel(crate::interrupt::flag());
            let target = out.as_ref().map(|o| (o, rel(input, file.path())));
            let outcome = self.one(file, target, &options);
            tracker.complete(file.size());
            let mut all = outcomes.lock().unwrap_or_else(|e| e.into_inner());
            all.push((file.path().to_path_buf(), outcome));
        });
        let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
        outcomes.sort_by(|a, b| a.0.cmp(&b.0));
        self.report(outcomes, bar, out.as_ref(), summary)
    }

    /// Rewraps `file` in place, or to `target` (OUTDIR and the path below it).
    fn one(
        &self,
        file: &File,
        target: Option<(&OutDir, &Path)>,
        options: &FileOptions<'_>,
    ) -> Result<Outcome, AppError> {
        if let Some(why) = self.skip.reason(file)? {
            return Ok(Outcome::Skipped(why));
        }
        let what = format!("rewrap {}", file.path().display());
        let mut shown = file.path().to_path_buf();
        let done = match (target, file) {
            (Some((out, rel)), File::Listed(listed)) => {
                let target = out.target(rel)?;
                shown = target.shown().to_path_buf();
                target.check(self.settings.force, listed.id())?;
                let source = listed.open()?;
                let source = crate::out_dir::fd_path(&source);
                self.rewrap.file(&source, &target.path(), options)
            }
            _ => self.rewrap.file_in_place(file.path(), options),
        };
        let done = done.map_err(|e| lib_error(&what, e));
        crate::metadata::record(crate::metadata::Line {
            op: "rewrap",
            input: &file.path().display().to_string(),
            output: &shown.display().to_string(),
            header: done.as_ref().ok().map(|d| &d.header),
            opened: done.as_ref().ok().map(|d| &d.source),
            error: done.as_ref().err(),
        })?;
        let in_place = target.is_none();
        crate::audit::record_done(
            "rewrap",
            &file.path().display().to_string(),
            None,
            (!in_place).then_some(shown.as_path()),
            done.as_ref().map(|r| crate::audit::Finished {
                stats: &r.stats,
                header: Some(&r.header),
                source: Some(&r.source),
            }),
        )?;
        done.map(|_| Outcome::Rewrapped)
    }

    fn report(
        &self,
        outcomes: Vec<(PathBuf, Result<Outcome, AppError>)>,
        bar: Progress,
        out: Option<&OutDir>,
        summary: bool,
    ) -> Result<(), AppError> {
        let (mut rewrapped, mut skipped, mut failed) = (0, 0, Vec::new());
        for (path, outcome) in outcomes {
            match outcome {
                Ok(Outcome::Rewrapped) => rewrapped += 1,
                Ok(Outcome::Skipped(why)) => {
                    skipped += 1;
                    if !self.settings.quiet {
                        eprintln!("envcrypt: skipped {}: {why}", path.display());
                    }
                }
                Err(e) => failed.push(e),
            }
        }
        let interrupted = crate::interrupt::requested();
        if failed.iter().all(|e| e.code() == EXIT_INTERRUPTED) && !interrupted {
            bar.finish();
        } else {
            drop(bar);
            if let Some(out) = out {
                out.remove_empty();
            }
        }
        failed.retain(|e| e.code() != EXIT_INTERRUPTED);
        for e in &failed {
            eprintln!("envcrypt: {e}");
        }
        let line = format!(
            "rewrapped {rewrapped}, skipped {skipped}, failed {}",
            failed.len()
        );
        if interrupted {
            return Err(AppError::with_code(
                EXIT_INTERRUPTED,
                format!("interrupted; {line}"),
            ));
        }
        let code = failed
            .iter()
            .map(AppError::code)
            .max_by_key(|c| priority(*c));
        // One file (--in-place without -r): its error is the one line, no summary.
        if summary {
            eprintln!("{line}");
        }
        match code {
            Some(code) => Err(AppError::reported(code)),
            None => Ok(()),
        }
    }
}

/// `path` relative to the folder `input` (the path itself when it is not below it).
fn rel<'p>(input: &Path, path: &'p Path) -> &'p Path {
    path.strip_prefix(input).unwrap_or(path)
}
