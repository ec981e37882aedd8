//! A small progress bar on stderr: bytes done, rate, ETA (and files, for a folder).
//!
//! Shown only when stderr is a terminal and `-q` was not given, so pipes and logs get
//! nothing but errors. Workers report bytes through [`Progress::add`] (an atomic add, cheap
//! enough to call after every read); a thread redraws the line at most ten times a second.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between two redraws.
const TICK: Duration = Duration::from_millis(100);
/// Width of the bar itself, in cells.
const BAR_CELLS: usize = 24;

/// Whether a progress bar should be drawn: stderr is a terminal, `-q` is off and the
/// terminal is not `dumb`.
pub fn wanted(quiet: bool) -> bool {
    !quiet
        && std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Shared between the workers and the drawing thread.
struct State {
    label: String,
    total: Option<u64>,
    files_total: u64,
    done: AtomicU64,
    files_done: AtomicU64,
    start: Instant,
    stop: Mutex<bool>,
    wake: Condvar,
    drawn: AtomicBool,
}

/// A running progress bar (or nothing, when disabled).
pub struct Progress {
    state: Option<Arc<State>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// A bar that draws nothing.
    pub fn disabled() -> Self {
        Self {
            state: None,
            thread: None,
        }
    }

    /// Starts a bar labelled `label` when `enabled`. `total` is the number of bytes expected
    /// (unknown for a pipe); `files` the number of files (0: one input, not shown).
    pub fn start(enabled: bool, label: &str, total: Option<u64>, files: u64) -> Self {
        if !enabled {
            return Self::disabled();
        }
        let state = Arc::new(State {
            label: label.to_owned(),
            total,
            files_total: files,
            done: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            start: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            drawn: AtomicBool::new(false),
        });
        let s = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("progress".to_owned())
            .spawn(move || {
                let mut stopped = s.stop.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let (guard, _) = s
                        .wake
                        .wait_timeout(stopped, TICK)
                        .unwrap_or_else(|e| e.into_inner());
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    s.draw(false);
                }
            })
            .ok();
        Self {
            state: Some(state),
            thread,
        }
    }

    /// Counts `bytes` more as done.
    pub fn add(&self, bytes: u64) {
        if let Some(s) = &self.state {
            s.done.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Counts one more file as done.
    pub fn file_done(&self) {
        if let Some(s) = &self.state {
            s.files_done.fetch_add(1, Ordering::Relaxed);
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

    /// Stops drawing and leaves the final state on its own line.
    pub fn finish(mut self) {
        self.stop(true);
    }

    fn stop(&mut self, keep: bool) {
        let Some(state) = self.state.take() else {
            return;
        };
        *state.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        state.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if keep {
            state.draw(true);
            let _ = std::io::stderr().write_all(b"\n");
        } else if state.drawn.load(Ordering::Relaxed) {
            // Clear the line so an error message starts on a clean one.
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}

impl Drop for Progress {
    /// A bar dropped without [`Progress::finish`] (an error) is erased.
    fn drop(&mut self) {
        self.stop(false);
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

impl State {
    fn draw(&self, last: bool) {
        let line = render(
            &self.label,
            self.done.load(Ordering::Relaxed),
            self.total,
            self.files_done.load(Ordering::Relaxed),
            self.files_total,
            self.start.elapsed(),
            last,
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        self.drawn.store(true, Ordering::Relaxed);
    }
}

/// One line of the bar, e.g.
/// `encrypt [#########>...........]  42%  215.0 MiB / 512.0 MiB  301.2 MiB/s  ETA 0:01  3/12 files`.
pub fn render(
    label: &str,
    done: u64,
    total: Option<u64>,
    files_done: u64,
    files_total: u64,
    elapsed: Duration,
    last: bool,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut line = format!("{label:<7} ");
    match total {
        Some(total) => {
            let done = done.min(total);
            let frac = if total == 0 {
                1.0
            } else {
                done as f64 / total as f64
            };
            let full = ((frac * BAR_CELLS as f64) as usize).min(BAR_CELLS);
            line.push('[');
            line.push_str(&"#".repeat(full));
            if full < BAR_CELLS {
                line.push('>');
                line.push_str(&".".repeat(BAR_CELLS - full - 1));
            }
            line.push(']');
            line.push_str(&format!(
                " {:>3}%  {} / {}  {}/s",
                (frac * 100.0) as u32,
                bytes(done),
                bytes(total),
                bytes(rate as u64)
            ));
            if last {
                line.push_str(&format!("  in {}", clock(secs)));
            } else if done >= total {
                // Everything read; the last frames, the signature and the sync remain.
                line.push_str("  finishing");
            } else if rate > 0.0 {
                let eta = (total - done) as f64 / rate;
                line.push_str(&format!("  ETA {}", clock(eta)));
            } else {
                line.push_str("  ETA -:--");
            }
        }
        None => {
            line.push_str(&format!(
                "{}  {}/s  {}",
                bytes(done),
                bytes(rate as u64),
                clock(secs)
            ));
        }
    }
    if files_total > 0 {
        line.push_str(&format!("  {files_done}/{files_total} files"));
    }
    line
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
    fn renders_known_and_unknown_totals() {
        let l = render(
            "encrypt",
            512 << 20,
            Some(1 << 30),
            3,
            12,
            Duration::from_secs(2),
            false,
        );
        assert!(l.contains(" 50%"), "{l}");
        assert!(l.contains("512.0 MiB / 1.0 GiB"), "{l}");
        assert!(l.contains("256.0 MiB/s"), "{l}");
        assert!(l.contains("ETA 0:02"), "{l}");
        assert!(l.contains("3/12 files"), "{l}");
        let l = render(
            "decrypt",
            3 << 20,
            None,
            0,
            0,
            Duration::from_secs(1),
            false,
        );
        assert_eq!(l, "decrypt 3.0 MiB  3.0 MiB/s  0:01");
    }
}
