//! Writing on a thread of its own, so the pipeline's I/O thread only reads.
//!
//! Into a file, a write costs the kernel more than a read (pages to allocate, extents to
//! reserve, dirty accounting): on the I/O thread it holds up the reads that feed the
//! workers. [`write_behind`] gives the writes their own thread; the pipeline hands sealed
//! or opened frames over in their buffers (no copy), gets written buffers back to reuse,
//! and a bounded queue keeps memory flat when the output is slower than the pipeline.

use std::io;
use std::ops::Range;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::thread;

use super::Output;
use crate::error::Error;

/// Batches queued for the writer before the pipeline waits for it.
const DEPTH: usize = 2;

/// Frame buffers the writer may hold before the pipeline waits for some back: the
/// pipeline replaces a buffer it does not get back with a new one, so this bounds the
/// memory the writer adds to the pipeline's own (`MAX_HELD x frame length`).
const MAX_HELD: usize = 16;

enum Msg {
    Bytes(Vec<u8>),
    Buffers(Vec<(Vec<u8>, Range<usize>)>),
    Flush(SyncSender<()>),
}

/// The pipeline's side of a writer thread (see [`write_behind`]).
pub(crate) struct WriteBehind<'a> {
    to_writer: Option<SyncSender<Msg>>,
    written: Receiver<Vec<u8>>,
    /// Buffers handed to the writer and not taken back yet.
    held: usize,
    /// The writer's first error; the writer stops at it.
    failed: &'a Mutex<Option<io::Error>>,
}

/// Runs `work` with an [`Output`] whose writes to `out` happen on a thread of their own.
/// Once the writer failed, the next put or flush that finds it stopped fails too (a put may
/// still queue behind the failed write), and this function returns the writer's own error
/// whenever `work` failed on I/O or did not see it.
pub(crate) fn write_behind<O: Output + Send, T>(
    out: &mut O,
    work: impl FnOnce(&mut WriteBehind<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let failed = Mutex::new(None);
    let (to_writer, queued) = sync_channel::<Msg>(DEPTH);
    let (give_back, written) = channel::<Vec<u8>>();
    let result = thread::scope(|s| {
        let failed = &failed;
        s.spawn(move || writer(out, &queued, &give_back, failed));
        let mut side = WriteBehind {
            to_writer: Some(to_writer),
            written,
            held: 0,
            failed,
        };
        work(&mut side)
        // `side` (the only sender) is dropped here: the writer finishes the queue and stops.
    });
    match (
        result,
        failed.into_inner().unwrap_or_else(|p| p.into_inner()),
    ) {
        (Ok(_) | Err(Error::Io(_)), Some(e)) => Err(e.into()),
        (result, _) => result,
    }
}

/// The writer thread: writes what comes, in order, and hands buffers back. At the first
/// error it records it and stops (before dropping anything the pipeline may wait on, so
/// the pipeline finds the error when it looks).
fn writer<O: Output>(
    out: &mut O,
    queued: &Receiver<Msg>,
    give_back: &Sender<Vec<u8>>,
    failed: &Mutex<Option<io::Error>>,
) {
    for msg in queued {
        let (written, flushed) = match msg {
            Msg::Bytes(bytes) => (out.put(&bytes), None),
            Msg::Buffers(bufs) => match out.put_buffers(bufs) {
                Ok(back) => {
                    for buf in back.into_iter().flatten() {
                        let _ = give_back.send(buf);
                    }
                    (Ok(()), None)
                }
                Err(e) => (Err(e), None),
            },
            Msg::Flush(done) => (out.flush_output(), Some(done)),
        };
        match written {
            Ok(()) => {
                if let Some(done) = flushed {
                    let _ = done.send(());
                }
            }
            Err(e) => {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                return; // `flushed` goes after the error is in place.
            }
        }
    }
}

impl WriteBehind<'_> {
    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let sent = match &self.to_writer {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            self.to_writer = None;
            Err(self.failure())
        }
    }

    /// A copy of the writer's error (it stopped; the queue is closed). The original stays
    /// for [`write_behind`] to return.
    fn failure(&self) -> io::Error {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match &*failed {
            Some(e) => match e.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(e.kind(), e.to_string()),
            },
            None => io::Error::other("the writer thread stopped"),
        }
    }

    /// Up to `n` buffers the writer is done with; waits for them while it holds more
    /// than [`MAX_HELD`].
    fn take_back(&mut self, n: usize) -> io::Result<Vec<Option<Vec<u8>>>> {
        let mut back = Vec::with_capacity(n);
        while back.len() < n {
            let buf = if self.held > MAX_HELD {
                match self.written.recv() {
                    Ok(buf) => Some(buf),
                    Err(_) => return Err(self.failure()),
                }
            } else {
                self.written.try_recv().ok()
            };
            let Some(buf) = buf else { break };
            self.held -= 1;
            back.push(Some(buf));
        }
        back.resize_with(n, || None);
        Ok(back)
    }
}

impl Output for &mut WriteBehind<'_> {
    const HANDS_OVER: bool = true;

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.send(Msg::Bytes(bytes.to_vec()))
    }

    fn put_buffer(&mut self, buf: Vec<u8>, range: Range<usize>) -> io::Result<Option<Vec<u8>>> {
        let mut back = self.put_buffers(vec![(buf, range)])?;
        Ok(back.pop().flatten())
    }

    fn put_buffers(
        &mut self,
        bufs: Vec<(Vec<u8>, Range<usize>)>,
    ) -> io::Result<Vec<Option<Vec<u8>>>> {
        let n = bufs.len();
        if n > 0 {
            self.send(Msg::Buffers(bufs))?;
            self.held += n;
        }
        self.take_back(n)
    }

    /// Waits until everything put so far is written and flushed.
    fn flush_output(&mut self) -> io::Result<()> {
        let (done, flushed) = sync_channel(1);
        self.send(Msg::Flush(done))?;
        flushed.recv().map_err(|_| self.failure())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Accepts `budget` bytes, then fails every write.
    struct FailsAfter {
        got: Vec<u8>,
        budget: usize,
    }

    impl Write for FailsAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got.len() + buf.len() > self.budget {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_in_order_and_hands_buffers_back() {
        let mut out = Vec::new();
        let mut back = 0;
        write_behind(&mut out, |mut w| {
            w.put(b"head ")?;
            for i in 0..50u8 {
                let buf = vec![b'a' + i % 26; 8];
                let bufs = vec![(buf.clone(), 2..5), (buf, 0..0)];
                back += w.put_buffers(bufs)?.into_iter().flatten().count();
            }
            w.put(b" foot")?;
            w.flush_output()?;
            back += w.take_back(100)?.into_iter().flatten().count();
            assert_eq!(w.held, 0);
            Ok(())
        })
        .unwrap();
        let mut want = b"head ".to_vec();
        for i in 0..50u8 {
            want.extend_from_slice(&[b'a' + i % 26; 3]);
        }
        want.extend_from_slice(b" foot");
        assert_eq!(out, want);
        assert_eq!(back, 100, "every buffer comes back once written");
    }

    /// Takes one write and then blocks until the test lets it go on.
    struct Gate {
        got: usize,
        open: Receiver<()>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.got > 0 {
                self.open
                    .recv()
                    .map_err(|_| io::Error::other("gate dropped"))?;
            }
            self.got += buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_writer_holds_a_bounded_number_of_buffers() {
        const BATCHES: usize = 50;
        const PER_BATCH: usize = 8;
        let (let_go, open) = sync_channel(0);
        let mut out = Gate { got: 0, open };
        let mut most_held = 0;
        thread::scope(|s| {
            // Lets every write after the first through, slower than the puts come; gives
            // up after a while (the writer then fails) rather than hang the test.
            s.spawn(move || {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                for _ in 1..BATCHES * PER_BATCH {
                    thread::sleep(std::time::Duration::from_micros(200));
                    while let Err(std::sync::mpsc::TrySendError::Full(())) = let_go.try_send(()) {
                        if std::time::Instant::now() > deadline {
                            return;
                        }
                        thread::yield_now();
                    }
                }
            });
            write_behind(&mut out, |mut w| {
                for _ in 0..BATCHES {
                    let batch = (0..PER_BATCH).map(|_| (vec![0u8; 16], 0..16)).collect();
                    w.put_buffers(batch)?;
                    most_held = most_held.max(w.held);
                }
                Ok(())
            })
            .unwrap();
        });
        assert!(most_held <= MAX_HELD, "the writer held {most_held} buffers");
        assert_eq!(out.got, BATCHES * PER_BATCH * 16);
    }

    /// Writes everything; its flush fails.
    struct FlushFails;

    impl Write for FlushFails {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(28)) // ENOSPC
        }
    }

    #[test]
    fn a_failed_flush_reports_the_writers_own_error() {
        let mut out = FlushFails;
        let mut seen = None;
        let err = write_behind(&mut out, |mut w| {
            w.put(b"bytes")?;
            let e = w.flush_output().unwrap_err();
            seen = e.raw_os_error();
            Err::<(), Error>(e.into())
        })
        .unwrap_err();
        assert_eq!(seen, Some(28), "the pipeline sees the flush's error");
        assert!(
            matches!(&err, Error::Io(e) if e.raw_os_error() == Some(28)),
            "{err:?}"
        );
    }

    #[test]
    fn a_write_error_reaches_the_pipeline() {
        let mut out = FailsAfter {
            got: Vec::new(),
            budget: 64,
        };
        let err = write_behind(&mut out, |mut w| {
            loop {
                w.put_buffers(vec![(vec![1u8; 32], 0..32)])?;
            }
            #[allow(unreachable_code)]
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::StorageFull),
            "{err:?}"
        );
        assert_eq!(out.got.len(), 64);
    }

    #[test]
    fn a_write_error_after_the_last_put_is_not_lost() {
        let mut out = FailsAfter {
            got: Vec::new(),
            budget: 4,
        };
        let err = write_behind(&mut out, |mut w| {
            w.put(b"more than four")?;
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.kind() == io::ErrorKind::StorageFull),
            "{err:?}"
        );
    }
}
