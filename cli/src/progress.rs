//! The progress bar on stderr (indicatif): bytes done, rate, ETA (and files, for a folder).
//!
//! Shown only when stderr is a terminal and `-q` was not given, so pipes and logs get
//! nothing but errors. Workers report bytes through [`Progress::add`] (cheap enough to call
//! after every read: indicatif counts atomically and redraws at most ten times a second).
//! Sizes are written as the rest of the tool writes them (`1.5 KiB`, see [`bytes`]).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Redraws per second.
const HZ: u8 = 10;
/// Time between two redraws when nothing moved (the clock and rate still change).
const TICK: Duration = Duration::from_millis(100);

/// The bar on screen, if any, so that log lines ([`suspend`]) do not break through it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `f` (a write to stderr) with the bar on screen, if any, hidden meanwhile.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match shown {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Records the bar on screen (None: none).
fn set_shown(bar: Option<&ProgressBar>) {
    *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = bar.cloned();
}

/// Whether a progress bar should be drawn: stderr is a terminal, `-q` is off and the
/// terminal is not `dumb`.
pub fn wanted(quiet: bool) -> bool {
    !quiet
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// A running progress bar (or nothing, when disabled).
pub struct Progress {
    bar: Option<ProgressBar>,
    files_total: u64,
    files_done: AtomicU64,
}

impl Progress {
    /// A bar that draws nothing.
    pub fn disabled() -> Self {
        Self {
            bar: None,
            files_total: 0,
            files_done: AtomicU64::new(0),
        }
    }

    /// Starts a bar labelled `label` when `enabled`. `total` is the number of bytes expected
    /// (unknown for a pipe); `files` the number of files (0: one input, not shown).
    pub fn start(enabled: bool, label: &str, total: Option<u64>, files: u64) -> Self {
        if !enabled {
            return Self::disabled();
        }
        let target = ProgressDrawTarget::stderr_with_hz(HZ);
        let bar = ProgressBar::with_draw_target(total, target)
            .with_style(style(total.is_some(), false))
            .with_prefix(format!("{label:<7}"));
        let progress = Self {
            bar: Some(bar),
            files_total: files,
            files_done: AtomicU64::new(0),
        };
        progress.show_files();
        if let Some(bar) = &progress.bar {
            set_shown(Some(bar));
            bar.enable_steady_tick(TICK);
        }
        progress
    }

    /// Counts `bytes` more as done.
    pub fn add(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// Counts one more file as done.
    pub fn file_done(&self) {
        if self.bar.is_some() {
            self.files_done.fetch_add(1, Ordering::Relaxed);
            self.show_files();
        }
    }

    /// `  3/12 files` after the bar, for a folder.
    fn show_files(&self) {
        if let (Some(bar), 1..) = (&self.bar, self.files_total) {
            let done = self.files_done.load(Ordering::Relaxed);
            bar.set_message(format!("  {done}/{} files", self.files_total));
        }
    }

    /// A callback for the library's `FileOptions::progress` (which reports the bytes read so
    /// far in one file): adds what is new since the last call.
    pub fn tracker(&self) -> Tracker<'_> {
        Tracker {
            progress: self,
            seen: AtomicU64::new(0),
        }
    }

    /// Stops drawing and leaves the final state (with the time taken) on its own line.
    pub fn finish(mut self) {
        if let Some(bar) = self.bar.take() {
            set_shown(None);
            bar.set_style(style(bar.length().is_some(), true));
            bar.finish();
            eprintln!();
        }
    }
}

impl Drop for Progress {
    /// A bar dropped without [`Progress::finish`] (an error) is erased, so an error message
    /// starts on a clean line.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            set_shown(None);
            bar.finish_and_clear();
        }
    }
}

/// Turns the cumulative byte counts of one file into increments of the bar.
pub struct Tracker<'a> {
    progress: &'a Progress,
    seen: AtomicU64,
}

impl Tracker<'_> {
    /// The input has been read up to `read` bytes.
    pub fn read_so_far(&self, read: u64) {
        let before = self.seen.swap(read, Ordering::Relaxed);
        self.progress.add(read.saturating_sub(before));
    }

    /// The file is done (or failed): counts the rest of its `size` so the bar still reaches
    /// its total.
    pub fn complete(&self, size: u64) {
        let before = self.seen.swap(size, Ordering::Relaxed);
        self.progress.add(size.saturating_sub(before));
        self.progress.file_done();
    }
}

/// The bar's layout, e.g.
/// `encrypt [#########>...........]  42%  215.0 MiB / 512.0 MiB  301.2 MiB/s  ETA 0:01  3/12 files`
/// (`in 0:02` instead of the ETA once `last`); without a total
/// `decrypt 3.0 MiB  3.0 MiB/s  0:01`.
fn style(known_total: bool, last: bool) -> ProgressStyle {
    let template = match (known_total, last) {
        (true, false) => "{prefix} [{bar:24}] {percent:>3}%  {done} / {total}  {rate}  {eta}{msg}",
        (true, true) => {
            "{prefix} [{bar:24}] {percent:>3}%  {done} / {total}  {rate}  in {clock}{msg}"
        }
        (false, _) => "{prefix} {done}  {rate}  {clock}{msg}",
    };
    // The templates above are fixed and valid; the fallback only guards against a typo.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>.")
        .with_key("done", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&bytes(s.pos()));
        })
        .with_key("total", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&bytes(s.len().unwrap_or(0)));
        })
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", bytes(rate(s) as u64));
        })
        .with_key("clock", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&clock(s.elapsed().as_secs_f64()));
        })
        .with_key("eta", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&eta(s.pos(), s.len().unwrap_or(0), rate(s)));
        })
}

/// Average rate since the start, in bytes per second (steadier than a moving estimate for
/// an ETA over a long file).
fn rate(s: &ProgressState) -> f64 {
    let secs = s.elapsed().as_secs_f64();
    if secs > 0.0 {
        s.pos() as f64 / secs
    } else {
        0.0
    }
}

/// `ETA m:ss`, or `finishing` once everything was read (the last frames, the signature and
/// the sync remain), or `ETA -:--` before there is a rate.
fn eta(done: u64, total: u64, rate: f64) -> String {
    if done >= total {
        "finishing".to_owned()
    } else if rate > 0.0 {
        format!("ETA {}", clock((total - done) as f64 / rate))
    } else {
        "ETA -:--".to_owned()
    }
}

/// `1536` as `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Seconds as `m:ss` (or `h:mm:ss`).
fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_times_and_eta() {
        assert_eq!(bytes(512 << 20), "512.0 MiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
        assert_eq!(bytes(1000), "1000 B");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(eta(512 << 20, 1 << 30, (256 << 20) as f64), "ETA 0:02");
        assert_eq!(eta(1 << 30, 1 << 30, 1.0), "finishing");
        assert_eq!(eta(0, 1, 0.0), "ETA -:--");
    }
}
