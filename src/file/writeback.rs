//! Early writeback: the disk starts taking the output every 2 MiB while the pipeline runs,
//! so the sync that must precede putting the output into place has little left to do.

use std::fs::File;
use std::io;

use crate::error::Error;

/// Output bytes between two early writebacks (see [`EarlyWriteback`]).
const WRITEBACK_EVERY: u64 = 2 << 20;

/// Early writeback stops at a multiple of this: the page the writer is still filling is
/// left alone (written back and dropped, it would have to be read again from disk before
/// the next write could complete it).
const WRITEBACK_ALIGN: u64 = 64 << 10;

/// Writes to the output file and, every [`WRITEBACK_EVERY`] bytes, asks a helper thread
/// to start writing what is written so far to disk. The disk then takes the data while the
/// pipeline works, so the final sync finds little left to write; the writer never waits
/// for the helper.
pub(crate) struct EarlyWriteback<'a> {
    file: &'a mut File,
    written: u64,
    since_writeback: u64,
    /// Wakes the helper with how far to write back; a full slot means a writeback is
    /// already pending, and the next one will cover this one's bytes.
    wake: std::sync::mpsc::SyncSender<u64>,
}

impl EarlyWriteback<'_> {
    fn count(&mut self, written: usize) {
        self.written += written as u64;
        self.since_writeback += written as u64;
        if self.since_writeback >= WRITEBACK_EVERY {
            self.since_writeback = 0;
            let _ = self
                .wake
                .try_send(self.written / WRITEBACK_ALIGN * WRITEBACK_ALIGN);
        }
    }
}

impl io::Write for EarlyWriteback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.count(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.file.write_vectored(bufs)?;
        self.count(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts writing `file`'s first `len` bytes to disk without waiting for them or for the
/// journal commit an `fdatasync` forces on every call (`posix_fadvise(DONTNEED)`, which also
/// drops the pages already on disk: a multi-gigabyte output does not push other files out
/// of the page cache; only advice, so its outcome is not an error). The final sync waits
/// for what is left.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, len: u64) -> io::Result<()> {
    if let Some(len) = std::num::NonZeroU64::new(len) {
        let _ = rustix::fs::fadvise(file, 0, Some(len), rustix::fs::Advice::DontNeed);
    }
    Ok(())
}

/// Elsewhere than Linux: `sync_data`, whose error counts (a later sync need not report it
/// again).
#[cfg(not(target_os = "linux"))]
fn start_writeback(file: &File, _len: u64) -> io::Result<()> {
    file.sync_data()
}

/// Runs `work` writing into `file`, with early writeback on a helper thread (see
/// [`EarlyWriteback`]). The first failed early writeback fails the operation.
pub(super) fn with_early_writeback<T>(
    file: &mut File,
    work: impl FnOnce(&mut EarlyWriteback<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let syncer = file.try_clone()?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<u64>(1);
    let result = std::thread::scope(|s| {
        let helper = s.spawn(move || {
            while let Ok(len) = woken.recv() {
                start_writeback(&syncer, len)?;
            }
            Ok::<(), io::Error>(())
        });
        let mut out = EarlyWriteback {
            file,
            written: 0,
            since_writeback: 0,
            wake,
        };
        let result = work(&mut out);
        drop(out); // The only sender: the helper stops.
        let early = helper
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("writeback")));
        (result, early)
    });
    match result {
        (Ok(value), Ok(())) => Ok(value),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
    }
}
