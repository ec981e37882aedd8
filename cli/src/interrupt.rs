//! Ctrl-C (or SIGTERM, SIGHUP) during `encrypt` / `decrypt`: the first signal stops the work
//! at its next read, and the library drops the unnamed output it was writing. A second
//! signal exits at once, for a run stuck on a read that does not return (a stalled pipe):
//! the unnamed output vanishes with the process (where `O_TMPFILE` is missing, a hidden
//! `.envcrypt-*.tmp` may stay until a later run sweeps it), never a file at the output's name.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::EXIT_INTERRUPTED;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; later calls do nothing). Should that fail,
/// signals keep their default action.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_INTERRUPTED.into());
        }
    });
}

/// The flag the library's file API watches (`FileOptions::cancel`).
pub fn flag() -> &'static AtomicBool {
    &REQUESTED
}

/// Whether a signal asked the run to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
