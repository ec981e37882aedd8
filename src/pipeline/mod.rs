//! The parallel frame pipeline for large streams.
//!
//! Frames are independent given the content key, message id and sequence number, so a pool
//! of workers seals or opens them in place while one thread reads and puts the results in
//! order (batched into one vectored write where possible) and, for signed suites on
//! encrypt, one more hashes the sealed frames. Writes run on a thread of their own
//! (`write_behind`): into a file a write costs the kernel more than a read, and on the
//! reading thread it would hold up the reads that feed the workers. Streams of small
//! frames run on the calling thread alone. Frames move between threads in batches (each
//! hand-off can wake a thread, which costs more than sealing a 64 KiB frame): 128 KiB of
//! them, or 512 KiB for a signed stream, whose hash thread then has a core to itself.
//! Buffers come from a fixed pool, so memory is about `frames_in_flight x frame length`
//! whatever the stream's size. The release rule
//! holds: plaintext is written only after its frame's tag verified, the final frame's only
//! after the signature verified and the input ended, and a signed message's only after its
//! signature verified unless the caller chose [`crate::ReleasePolicy::UnverifiedStream`].
//!
//! ```
//! use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
//! use envcrypt::pipeline::PipelineOptions;
//!
//! let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
//! let image = vec![7u8; 1 << 20];
//! let mut message = Vec::new();
//! let opts = PipelineOptions::default();
//! client.encrypt_stream(&image[..], &mut message, &EncryptionContext::new(), &opts)?;
//! let mut out = Vec::new();
//! client.decrypt_stream(&message[..], &mut out, &DecryptOptions::default(), &opts)?;
//! assert_eq!(out, image);
//! # Ok::<(), envcrypt::Error>(())
//! ```

pub(crate) mod decrypt;
pub(crate) mod encrypt;
pub(crate) mod slice;
pub(crate) mod spill;
pub(crate) mod write_behind;

use std::io::{self, IoSlice, Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;

/// How a stream is processed.
///
/// ```
/// use envcrypt::pipeline::PipelineOptions;
///
/// let options = PipelineOptions::default().with_threads(4).with_frames_in_flight(16);
/// assert_eq!((options.threads, options.frames_in_flight), (4, 16));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PipelineOptions {
    /// Worker threads; `0` = the available cores; `1` = everything on the calling thread.
    pub threads: usize,
    /// Frames in flight (bounds memory); `0` = four batches per worker (a batch is 128 KiB
    /// of frames, 512 KiB for signed messages; see [`crate::pipeline`]).
    pub frames_in_flight: usize,
    /// Streams whose frames are shorter than this run on the calling thread, whatever
    /// `threads` says: handing a frame to a worker and back costs more than the crypto of
    /// a few KiB. `0` = 16 KiB; `1` = always use the workers. (The in-memory
    /// `*_parallel` paths split the message between threads instead and ignore this.)
    pub parallel_min_frame: usize,
}

impl PipelineOptions {
    /// Sequential processing on the calling thread.
    pub fn single_threaded() -> Self {
        Self {
            threads: 1,
            frames_in_flight: 1,
            parallel_min_frame: 0,
        }
    }

    /// Sets [`threads`](Self::threads).
    pub const fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets [`frames_in_flight`](Self::frames_in_flight).
    pub const fn with_frames_in_flight(mut self, frames: usize) -> Self {
        self.frames_in_flight = frames;
        self
    }

    /// Sets [`parallel_min_frame`](Self::parallel_min_frame).
    pub const fn with_parallel_min_frame(mut self, bytes: usize) -> Self {
        self.parallel_min_frame = bytes;
        self
    }

    pub(crate) fn workers(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Workers that seal or open frames: [`workers`](Self::workers), but for a signed
    /// message with the thread count left to the machine one fewer (at least one), because
    /// its hash thread keeps a core busy for the whole stream and AES-GCM (about ten times
    /// faster than SHA-384) needs little more than the rest.
    pub(crate) fn frame_workers(&self, signed: bool) -> usize {
        match (signed, self.threads) {
            (true, 0) => (self.workers() - 1).max(1),
            _ => self.workers(),
        }
    }

    /// Whether frames of `frame_length` bytes go to worker threads.
    pub(crate) fn parallel_for(&self, frame_length: usize) -> bool {
        let min = match self.parallel_min_frame {
            0 => PARALLEL_MIN_FRAME,
            n => n,
        };
        self.workers() > 1 && frame_length >= min
    }

    pub(crate) fn in_flight(&self) -> usize {
        match self.frames_in_flight {
            0 => 4 * self.workers(),
            n => n.max(1),
        }
    }

    /// Frames of `frame_length` bytes that move between threads at once: about
    /// [`BATCH_BYTES`] of them ([`SIGNED_BATCH_BYTES`] for a signed message), at most
    /// [`BATCH_FRAMES`], and few enough that each worker has two batches when the caller
    /// set [`frames_in_flight`](Self::frames_in_flight).
    pub(crate) fn batch_for(&self, frame_length: usize, signed: bool) -> usize {
        let bytes = match signed {
            true => SIGNED_BATCH_BYTES,
            false => BATCH_BYTES,
        };
        let by_size = (bytes / frame_length.max(1)).clamp(1, BATCH_FRAMES);
        match self.frames_in_flight {
            0 => by_size,
            n => by_size.min(n / (2 * self.workers())).max(1),
        }
    }

    /// Frames in flight in a pipeline that moves [`batch_for`](Self::batch_for) frames
    /// at once: four batches per worker unless the caller set a number.
    pub(crate) fn frames_in_flight_for(&self, frame_length: usize, signed: bool) -> usize {
        match self.frames_in_flight {
            0 => 4 * self.workers() * self.batch_for(frame_length, signed),
            n => n.max(1),
        }
    }
}

/// About how many bytes of frames move between a pipeline's threads at once. An unsigned
/// stream is bound by moving bytes (read, AES-GCM, write): its frames in flight (four
/// batches per worker, 1 MiB on two cores) stay in the caches.
const BATCH_BYTES: usize = 128 << 10;

/// [`BATCH_BYTES`] for a signed stream, which is bound by its one hash thread: larger
/// batches wake that thread less often, and SHA-384 is too slow for the caches to matter.
const SIGNED_BATCH_BYTES: usize = 512 << 10;

/// At most this many frames move between a pipeline's threads at once.
const BATCH_FRAMES: usize = 16;

/// Frames shorter than this are not worth a worker thread (the default of
/// [`PipelineOptions::parallel_min_frame`]).
const PARALLEL_MIN_FRAME: usize = 16 << 10;

/// What a pipeline moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes read from the input.
    pub bytes_in: u64,
    /// Bytes written to the output.
    pub bytes_out: u64,
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Where a pipeline's read stage gets its bytes. Every `Read` is one; the async adapters'
/// channel is another, which hands whole buffers over instead of copying them.
pub(crate) trait Input {
    /// Fills `buf[at..at + len]` until it is full or the input ends; returns the bytes
    /// read. May swap `buf` for a buffer at least as long that holds them at the same place.
    fn fill(&mut self, buf: &mut Vec<u8>, at: usize, len: usize) -> io::Result<usize>;
}

impl<R: Read> Input for R {
    fn fill(&mut self, buf: &mut Vec<u8>, at: usize, len: usize) -> io::Result<usize> {
        read_full(self, &mut buf[at..at + len])
    }
}

/// Where a pipeline's write stage puts its bytes. Every `Write` is one; the async
/// adapters' channel is another, which takes whole buffers instead of copying them.
pub(crate) trait Output {
    /// Whether puts hand the buffers to another thread that writes them; if not, a
    /// parallel pipeline gives its writes a thread of their own ([`write_behind`]).
    const HANDS_OVER: bool = false;

    /// Writes all of `bytes` (a header or a footer).
    fn put(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Writes `buf[range]`; returns a buffer to reuse (`buf` itself or one the consumer is
    /// done with), or `None` when there is none at hand yet.
    fn put_buffer(&mut self, buf: Vec<u8>, range: Range<usize>) -> io::Result<Option<Vec<u8>>>;

    /// Writes `buf[range]` of each buffer, in order (one vectored write where the output
    /// takes them); returns what [`put_buffer`](Self::put_buffer) would for each.
    fn put_buffers(
        &mut self,
        bufs: Vec<(Vec<u8>, Range<usize>)>,
    ) -> io::Result<Vec<Option<Vec<u8>>>> {
        bufs.into_iter()
            .map(|(buf, range)| self.put_buffer(buf, range))
            .collect()
    }

    /// Flushes what was put.
    fn flush_output(&mut self) -> io::Result<()>;

    /// Writes the whole of `file` from its current position (a spill file released after
    /// the signature verified): in buffers handed over whole, unless the output can do
    /// better.
    fn put_file(&mut self, mut file: std::fs::File) -> io::Result<()> {
        const CHUNK: usize = 1 << 20;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_full(&mut file, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            let back = self.put_buffer(buf, 0..n)?;
            buf = back
                .filter(|b| b.len() >= CHUNK)
                .unwrap_or_else(|| vec![0u8; CHUNK]);
        }
    }
}

impl<W: Write> Output for W {
    /// `io::copy`, which moves a file to a file, pipe or socket inside the kernel
    /// (`copy_file_range`, `sendfile`, `splice`) where it can.
    fn put_file(&mut self, mut file: std::fs::File) -> io::Result<()> {
        io::copy(&mut file, self).map(|_| ())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }

    fn put_buffer(&mut self, buf: Vec<u8>, range: Range<usize>) -> io::Result<Option<Vec<u8>>> {
        self.write_all(&buf[range])?;
        Ok(Some(buf))
    }

    fn put_buffers(
        &mut self,
        bufs: Vec<(Vec<u8>, Range<usize>)>,
    ) -> io::Result<Vec<Option<Vec<u8>>>> {
        let mut slices: Vec<IoSlice<'_>> = bufs
            .iter()
            .filter(|(_, range)| !range.is_empty())
            .map(|(buf, range)| IoSlice::new(&buf[range.clone()]))
            .collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(bufs.into_iter().map(|(buf, _)| Some(buf)).collect())
    }

    fn flush_output(&mut self) -> io::Result<()> {
        self.flush()
    }
}

/// A job queue that several workers pull from in FIFO order (so each worker sees rising
/// sequence numbers, as per-key-object nonce rules require).
pub(crate) struct Queue<T>(Arc<Mutex<Receiver<T>>>);

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Queue<T> {
    pub(crate) fn new(rx: Receiver<T>) -> Self {
        Self(Arc::new(Mutex::new(rx)))
    }

    /// The next job, or `None` once the queue is closed and drained.
    pub(crate) fn next(&self) -> Option<T> {
        self.0.lock().ok()?.recv().ok()
    }
}

/// Shared by a pipeline's stages: the first error any stage hit (later ones are
/// consequences) and the flag that tells every waiting stage to give up.
#[derive(Default)]
pub(crate) struct Failure {
    first: Mutex<Option<Error>>,
    aborted: AtomicBool,
}

impl Failure {
    /// Records `e` (if it is the first) and stops the other stages.
    pub(crate) fn fail(&self, e: Error) {
        if let Ok(mut slot) = self.first.lock() {
            slot.get_or_insert(e);
        }
        self.aborted.store(true, Ordering::Relaxed);
    }

    /// The first error, if any stage failed.
    pub(crate) fn take(&self) -> Option<Error> {
        self.first.lock().ok()?.take()
    }
}

/// How often a waiting stage checks whether another one failed.
const POLL: Duration = Duration::from_millis(20);

/// Receives, waking up regularly to give up once another stage failed.
pub(crate) fn recv<T>(rx: &Receiver<T>, failure: &Failure) -> Option<T> {
    loop {
        match rx.recv_timeout(POLL) {
            Ok(v) => return Some(v),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if failure.aborted.load(Ordering::Relaxed) => {
                return None
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Sends, ignoring a closed channel (its receiver stopped because of an error recorded
/// elsewhere).
pub(crate) fn send<T>(tx: &Sender<T>, v: T) {
    let _ = tx.send(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most 7 bytes a call, from the first slice only (like many writers).
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn small_frames_stay_on_the_calling_thread_unless_asked() {
        let two = PipelineOptions {
            threads: 2,
            ..PipelineOptions::default()
        };
        assert!(!two.parallel_for(4096));
        assert!(two.parallel_for(16 << 10));
        assert!(two.parallel_for(65536));
        let always = PipelineOptions {
            parallel_min_frame: 1,
            ..two.clone()
        };
        assert!(always.parallel_for(1));
        assert!(!PipelineOptions::single_threaded().parallel_for(1 << 20));
    }

    #[test]
    fn frames_move_in_batches_larger_for_signed_streams() {
        let two = PipelineOptions::default().with_threads(2);
        assert_eq!(two.batch_for(64 << 10, false), 2);
        assert_eq!(two.batch_for(64 << 10, true), 8);
        assert_eq!(two.batch_for(4096, false), BATCH_FRAMES);
        assert_eq!(two.batch_for(1 << 20, true), 1);
        assert_eq!(two.batch_for(0, false), BATCH_FRAMES);
        // Four batches per worker by default; a number the caller set stands, and its
        // batches are small enough that each worker gets two.
        assert_eq!(two.frames_in_flight_for(64 << 10, false), 4 * 2 * 2);
        assert_eq!(two.frames_in_flight_for(64 << 10, true), 4 * 2 * 8);
        assert_eq!(two.frames_in_flight_for(1 << 20, true), 4 * 2);
        let few = two.clone().with_frames_in_flight(12);
        let at_64k = |o: &PipelineOptions| {
            (
                o.batch_for(64 << 10, true),
                o.frames_in_flight_for(64 << 10, true),
            )
        };
        assert_eq!(at_64k(&few), (3, 12));
        let one = two.clone().with_frames_in_flight(1);
        assert_eq!(at_64k(&one), (1, 1));
    }

    #[test]
    fn a_signed_stream_leaves_a_core_to_its_hash_unless_threads_were_set() {
        let set = PipelineOptions::default().with_threads(4);
        assert_eq!((set.frame_workers(true), set.frame_workers(false)), (4, 4));
        let one = PipelineOptions::default().with_threads(1);
        assert_eq!(one.frame_workers(true), 1);
        let auto = PipelineOptions::default();
        let cores = auto.workers();
        assert_eq!(auto.frame_workers(false), cores);
        assert_eq!(auto.frame_workers(true), (cores - 1).max(1));
    }

    #[test]
    fn put_buffers_writes_every_range_in_order_through_short_writes() {
        let bufs: Vec<(Vec<u8>, Range<usize>)> = vec![
            ((0..40).collect(), 3..33),
            (vec![9; 5], 2..2),
            ((100..120).collect(), 0..20),
            (vec![1, 2, 3], 1..3),
        ];
        let want: Vec<u8> = bufs
            .iter()
            .flat_map(|(b, r)| b[r.clone()].to_vec())
            .collect();
        let mut out = Trickle(Vec::new());
        let back = out.put_buffers(bufs).unwrap();
        assert_eq!(out.0, want);
        assert_eq!(back.len(), 4);
        assert!(back.iter().all(Option::is_some));
        // Nothing but empty ranges: nothing to write, and no `WriteZero`.
        let mut sink = Vec::new();
        sink.put_buffers(vec![(vec![1], 0..0)]).unwrap();
        assert!(sink.is_empty());
    }
}
