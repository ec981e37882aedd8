//! `envcrypt`: encrypt and decrypt files in the AWS Encryption SDK message format.
//!
//! The interface (commands, keyring specs, outputs, exit codes) is the contract in
//! `CLI.md`. Run `envcrypt demo` for a round trip on a synthetic image with a local key.

#[cfg(not(unix))]
compile_error!("the envcrypt tool supports Unix systems only (it opens files relative to directory handles, with Unix modes)");

mod audit;
mod cli;
mod cli_extra;
mod completions;
mod crypt;
mod demo;
mod error;
mod inspect;
mod interrupt;
mod inventory;
mod json;
mod key_id;
mod keygen;
mod keyring_file;
mod keyring_spec;
mod logging;
mod manifest;
mod metadata;
mod out_dir;
mod output;
mod parallel;
mod progress;
mod report;
mod rewrap;
#[cfg(feature = "aws-s3")]
mod s3;
#[cfg(not(feature = "aws-s3"))]
#[path = "s3/off.rs"]
mod s3;
mod sha256;
mod shard;
mod tree;
mod walk;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use envcrypt::crypto::CryptoProvider;

use crate::cli::{AuditCommand, Cli, Command, KeygenCommand};
use crate::error::{AppError, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is_reported() {
                eprintln!("envcrypt: {e}");
            }
            ExitCode::from(e.code())
        }
    }
}

fn run(cli: Cli) -> Result<(), AppError> {
    logging::init(cli.verbose);
    let provider = provider(cli.provider.as_deref())?;
    // Commands that use keys record them; the others write no events.
    let audited = match &cli.command {
        Command::Encrypt(_) | Command::Decrypt(_) | Command::Rewrap(_) => true,
        Command::Inspect(args) => args.require_key.is_some(),
        _ => false,
    };
    if audited {
        audit::install(&cli.audit, provider)?;
    } else if cli.audit.audit_signing_key.is_some() && cli.audit.audit_log.is_none() {
        return Err(AppError::usage(
            "--audit-signing-key needs --audit-log (or ENVCRYPT_AUDIT_LOG)",
        ));
    }
    let result = command(&cli, provider);
    // The closing checkpoint, after failures too: they are recorded.
    let finished = audit::finish();
    result.and(finished)
}

fn command(cli: &Cli, provider: &'static CryptoProvider) -> Result<(), AppError> {
    match &cli.command {
        Command::Demo(args) => demo::run(args, provider),
        Command::Keygen(KeygenCommand::Aes256 { output }) => {
            keygen::aes256(output.as_deref(), provider)
        }
        Command::Keygen(KeygenCommand::Rsa { bits, output }) => {
            keygen::rsa(*bits, output, provider)
        }
        Command::Keygen(KeygenCommand::Audit { output }) => keygen::audit(output, provider),
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(args, provider),
        Command::Encrypt(args) => crypt::run_encrypt(args, provider),
        Command::Decrypt(args) => crypt::run_decrypt(args, provider),
        Command::Inspect(args) if args.summary => inventory::run(args, provider),
        Command::Inspect(args) => match args.paths.as_slice() {
            [] => inspect::run(None),
            [input] if output::is_s3(Some(input)) => s3::inspect_path(input),
            [input] => inspect::run(Some(input)),
            _ => Err(AppError::usage(
                "inspect reads one INPUT (use --summary for several)",
            )),
        },
        Command::Rewrap(args) => rewrap::run(args, provider),
        Command::Info => {
            inspect::info(provider);
            Ok(())
        }
        Command::Completions { shell } => completions::completions(*shell),
        Command::Manpage => completions::manpage(),
    }
}

/// The provider named by `--provider`, or the build's default.
fn provider(name: Option<&str>) -> Result<&'static CryptoProvider, AppError> {
    let Some(name) = name else {
        return Ok(envcrypt::crypto::default_provider());
    };
    envcrypt::crypto::provider_by_name(name).ok_or_else(|| {
        let names = envcrypt::crypto::providers()
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ");
        AppError::usage(format!(
            "crypto provider {name:?} is not compiled into this build (available: {names})"
        ))
    })
}

/// Help and version go to stdout with exit 0; a usage error is one line on stderr, exit 2
/// (a bare `envcrypt` still prints the full help).
fn clap_exit(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            // The first paragraph of clap's message, on one line.
            let text = e.to_string();
            let first = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("envcrypt: {first} (see --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
