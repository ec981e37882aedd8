//! The tool's error: one line for stderr and the exit code of `CLI.md`.
//!
//! | code | meaning |
//! |---|---|
//! | 1 | the data failed authentication or a policy check (tampered, truncated, wrong key, ...) |
//! | 2 | usage error |
//! | 3 | I/O error |
//! | 4 | a keyring could not be reached or refused (KMS/HSM unavailable, access denied) |
//!
//! Messages name files, keyrings and what went wrong; never key material (the library's
//! errors carry none, and keyring specs are echoed only up to their type).

use core::fmt;
use std::io;

/// Authentication or policy failure.
pub const EXIT_DATA: u8 = 1;
/// Usage error.
pub const EXIT_USAGE: u8 = 2;
/// I/O error.
pub const EXIT_IO: u8 = 3;
/// A keyring could not be reached or refused.
pub const EXIT_UNAVAILABLE: u8 = 4;
/// Interrupted by a signal (128 + SIGINT, as shells report it); no output file was left.
pub const EXIT_INTERRUPTED: u8 = 130;

/// A failure of one command: what to print and how to exit.
#[derive(Debug)]
pub struct AppError {
    code: u8,
    message: String,
    /// The library error's kind, when one caused this.
    kind: Option<envcrypt::ErrorKind>,
}

impl AppError {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
            kind: None,
        }
    }

    /// Bad data (exit 1).
    pub fn data(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_DATA,
            message: message.into(),
            kind: None,
        }
    }

    /// An error with a given exit code (a summary of several failures).
    pub fn with_code(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            kind: None,
        }
    }

    /// An exit code whose failures were already printed (nothing more to say).
    pub fn reported(code: u8) -> Self {
        Self {
            code,
            message: String::new(),
            kind: None,
        }
    }

    /// Whether the failures were already printed.
    pub fn is_reported(&self) -> bool {
        self.message.is_empty()
    }

    /// An I/O error while doing `what` (exit 3).
    pub fn io(what: impl fmt::Display, e: io::Error) -> Self {
        Self {
            code: EXIT_IO,
            message: format!("{what}: {e}"),
            kind: None,
        }
    }

    /// A library error while doing `what`; the exit code follows the error's variant.
    pub fn lib(what: impl fmt::Display, e: envcrypt::Error) -> Self {
        Self {
            code: exit_code(&e),
            message: format!("{what}: {e}"),
            kind: Some(e.kind()),
        }
    }

    /// This error, known to be of the library's `kind`.
    pub fn of_kind(mut self, kind: envcrypt::ErrorKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The library's kind of the error, or the nearest kind for the tool's own errors.
    pub fn kind(&self) -> envcrypt::ErrorKind {
        use envcrypt::ErrorKind;
        self.kind.unwrap_or(match self.code {
            EXIT_USAGE => ErrorKind::Usage,
            EXIT_IO => ErrorKind::Io,
            EXIT_UNAVAILABLE => ErrorKind::KeyringUnavailable,
            EXIT_INTERRUPTED => ErrorKind::Cancelled,
            _ => ErrorKind::Policy,
        })
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the parts contained.
        for (i, line) in self.message.lines().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(line.trim())?;
        }
        Ok(())
    }
}

/// The name of an exit code's kind, for metadata lines.
pub fn kind_name(code: u8) -> &'static str {
    match code {
        EXIT_DATA => "data",
        EXIT_USAGE => "usage",
        EXIT_IO => "io",
        EXIT_UNAVAILABLE => "keyring",
        EXIT_INTERRUPTED => "interrupted",
        _ => "other",
    }
}

/// Exit code for a library error, from its stable kind.
pub fn exit_code(e: &envcrypt::Error) -> u8 {
    use envcrypt::ErrorKind;
    match e.kind() {
        ErrorKind::Usage => EXIT_USAGE,
        ErrorKind::Io => EXIT_IO,
        ErrorKind::KeyringUnavailable | ErrorKind::KeyringRefused => EXIT_UNAVAILABLE,
        ErrorKind::Cancelled => EXIT_INTERRUPTED,
        // Bad data, a refused message, and envcrypt's own bugs (nothing was released).
        _ => EXIT_DATA,
    }
}
