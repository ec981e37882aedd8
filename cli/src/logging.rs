//! `-v`/`-vv`: log events (the library's and the tool's) to stderr through `tracing`.
//!
//! `-v` shows envcrypt's info events (per operation: message id, suite, keys), `-vv` its
//! debug events (keyring calls, files, threads) and other crates' warnings; the default is
//! envcrypt's warnings only. `RUST_LOG`, when set, replaces the level (e.g.
//! `RUST_LOG=envcrypt=trace`). Events carry no secrets: the library logs ids, names, sizes
//! and context keys, never key bytes, PINs, context values or data.
//! A progress bar on screen is lifted while a line is written, then drawn again.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber for `verbose` (the count of `-v`).
pub fn init(verbose: u8) {
    // Other crates stay silent unless asked: the AWS SDK warns about missing config files,
    // which would break the one-line error and quiet-pipe rules of CLI.md. At -vv their
    // warnings help find why a KMS key cannot be reached.
    let level = match verbose {
        0 => "envcrypt=warn",
        1 => "envcrypt=info",
        _ => "warn,envcrypt=debug",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new(level))
        }
        _ => EnvFilter::new(level),
    };
    // Fails only if a subscriber is already set, which `main` never does twice.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(false)
        .with_target(true)
        .try_init();
}

/// Stderr, with the progress bar (if one is drawn) lifted while a log line is written.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::progress::suspend(|| io::stderr().write_all(buf)).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
