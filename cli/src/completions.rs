//! `completions SHELL` and `manpage`: the shell completion script and the manual page
//! envcrypt(1), both made from the command-line definitions and printed to stdout.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::AppError;

/// The name the scripts and the page complete and describe.
const BIN: &str = "envcrypt";

/// `envcrypt completions SHELL`.
pub fn completions(shell: Shell) -> Result<(), AppError> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut out);
    write_stdout(&out)
}

/// `envcrypt manpage`: roff for envcrypt(1), its subcommands listed.
pub fn manpage() -> Result<(), AppError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command().name(BIN))
        .render(&mut out)
        .map_err(|e| AppError::io("cannot render the manual page", e))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), AppError> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| AppError::io("cannot write to stdout", e))
}
