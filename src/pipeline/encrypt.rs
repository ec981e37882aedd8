//! The encrypting pipeline: read -> seal (workers) -> hash (signed suites) -> write.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use super::{recv, send, Failure, Input, Output, PipelineOptions, Queue, StreamStats};
use crate::crypto::{Signer, TAG_LEN};
use crate::engine::{footer, Encryptor};
use crate::error::Error;
use crate::format::{FINAL_FRAME_PREFIX_LEN, REGULAR_FRAME_PREFIX_LEN};

/// The final frame's prefix is 8 bytes longer than a regular one's: plaintext sits at a
/// fixed offset and each frame is sealed from the slot that fits it.
const SLACK: usize = FINAL_FRAME_PREFIX_LEN - REGULAR_FRAME_PREFIX_LEN;

/// One frame on its way through the pipeline.
struct Job {
    sequence: u32,
    last: bool,
    len: usize,
    buf: Vec<u8>,
}

impl Job {
    /// The sealed frame's bytes within the buffer.
    fn frame_range(&self) -> std::ops::Range<usize> {
        if self.last {
            0..FINAL_FRAME_PREFIX_LEN + self.len + TAG_LEN
        } else {
            SLACK..FINAL_FRAME_PREFIX_LEN + self.len + TAG_LEN
        }
    }
}

/// A buffer that holds any frame of the message, plaintext at [`PLAINTEXT_AT`].
pub(crate) fn frame_buffer(frame_length: usize) -> Vec<u8> {
    vec![0u8; frame_buffer_len(frame_length)]
}

pub(crate) const fn frame_buffer_len(frame_length: usize) -> usize {
    FINAL_FRAME_PREFIX_LEN + frame_length + TAG_LEN
}

/// Where plaintext sits in a frame buffer.
pub(crate) const PLAINTEXT_AT: usize = FINAL_FRAME_PREFIX_LEN;

/// A buffer the output handed back, if it can hold a frame, or a new one.
fn reuse(back: Option<Vec<u8>>, frame_length: usize) -> Vec<u8> {
    back.filter(|b| b.len() >= frame_buffer_len(frame_length))
        .unwrap_or_else(|| frame_buffer(frame_length))
}

/// What flows to the writer: sealed frames, then (signed suites) the footer.
enum Msg {
    Frame(Job),
    Footer(Vec<u8>),
}

/// Puts frames back in sequence order.
struct Reorder {
    next: u32,
    pending: BTreeMap<u32, Job>,
}

impl Reorder {
    fn new() -> Self {
        Self {
            next: 1,
            pending: BTreeMap::new(),
        }
    }

    fn push(&mut self, job: Job) {
        self.pending.insert(job.sequence, job);
    }

    fn pop(&mut self) -> Option<Job> {
        let job = self.pending.remove(&self.next)?;
        self.next += 1;
        Some(job)
    }
}

/// Encrypts `input` to `output` with the header already built in `enc`.
pub(crate) fn run<I: Input, O: Output + Send>(
    mut enc: Encryptor,
    mut input: I,
    mut output: O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    output.put(enc.header())?;
    let header_len = enc.header().len() as u64;
    let stats = if options.workers() <= 1 {
        sequential(&mut enc, &mut input, &mut output)?
    } else {
        parallel(&mut enc, &mut input, &mut output, options)?
    };
    output.flush_output()?;
    Ok(StreamStats {
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out + header_len,
    })
}

fn sequential<I: Input, O: Output>(
    enc: &mut Encryptor,
    input: &mut I,
    output: &mut O,
) -> Result<StreamStats, Error> {
    let fl = enc.frame_length();
    let mut stats = StreamStats::default();
    let mut cur = frame_buffer(fl);
    let mut next = frame_buffer(fl);
    let mut n = input.fill(&mut cur, PLAINTEXT_AT, fl)?;
    loop {
        stats.bytes_in += n as u64;
        let m = if n == fl {
            input.fill(&mut next, PLAINTEXT_AT, fl)?
        } else {
            0
        };
        if m == 0 {
            let end = FINAL_FRAME_PREFIX_LEN + n + TAG_LEN;
            let footer = enc.seal_final_frame(&mut cur[..end])?;
            output.put_buffer(cur, 0..end)?;
            output.put(&footer)?;
            stats.bytes_out += (end + footer.len()) as u64;
            return Ok(stats);
        }
        let end = FINAL_FRAME_PREFIX_LEN + fl + TAG_LEN;
        enc.seal_frame(&mut cur[SLACK..end])?;
        let back = output.put_buffer(cur, SLACK..end)?;
        stats.bytes_out += (end - SLACK) as u64;
        cur = next;
        next = reuse(back, fl);
        n = m;
    }
}

fn parallel<I: Input, O: Output + Send>(
    enc: &mut Encryptor,
    input: &mut I,
    output: &mut O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let fl = enc.frame_length();
    let failure = Failure::default();
    let sealers = (0..options.workers())
        .map(|_| enc.frame_sealer())
        .collect::<Result<Vec<_>, _>>()?;
    let signer = enc.take_signer();

    let mut stats = StreamStats::default();
    let bytes_out = thread::scope(|s| {
        let (job_tx, job_rx) = channel::<Job>();
        let queue = Queue::new(job_rx);
        let (pool_tx, pool_rx) = channel::<Vec<u8>>();
        for _ in 0..options.in_flight().max(2) {
            send(&pool_tx, frame_buffer(fl));
        }
        let (to_writer, writer_rx) = channel::<Msg>();
        let signed = signer.is_some();
        // Signed suites: one thread hashes the sealed frames in order while the workers
        // seal the next ones, and hands them on to the writer, then the footer.
        let to_sealed = match signer {
            Some(signer) => {
                let (tx, rx) = channel::<Msg>();
                let failure = &failure;
                s.spawn(move || hash_stage(signer, &rx, &to_writer, failure));
                tx
            }
            None => to_writer,
        };
        for mut sealer in sealers {
            let (queue, to_sealed, failure) = (queue.clone(), to_sealed.clone(), &failure);
            s.spawn(move || {
                while let Some(mut job) = queue.next() {
                    let range = job.frame_range();
                    let frame = &mut job.buf[range];
                    let sealed = if job.last {
                        sealer.seal_final_frame(job.sequence, frame)
                    } else {
                        sealer.seal_frame(job.sequence, frame)
                    };
                    match sealed {
                        Ok(()) => send(&to_sealed, Msg::Frame(job)),
                        Err(e) => return failure.fail(e),
                    }
                }
            });
        }
        drop(to_sealed);
        let writer = {
            let failure = &failure;
            s.spawn(move || write_stage(output, &writer_rx, &pool_tx, signed, fl, failure))
        };

        // This thread reads, in order, into free buffers; a full buffer is a regular frame
        // only if more input follows it.
        let read = (|| -> Result<(), Error> {
            let Some(mut cur) = recv(&pool_rx, &failure) else {
                return Ok(());
            };
            let mut n = input.fill(&mut cur, PLAINTEXT_AT, fl)?;
            loop {
                stats.bytes_in += n as u64;
                let mut next = None;
                let mut m = 0;
                if n == fl {
                    let Some(mut buf) = recv(&pool_rx, &failure) else {
                        return Ok(());
                    };
                    m = input.fill(&mut buf, PLAINTEXT_AT, fl)?;
                    next = Some(buf);
                }
                let last = m == 0;
                let sequence = if last {
                    enc.reserve_final_frame()?
                } else {
                    enc.reserve_frame()?
                };
                let job = Job {
                    sequence,
                    last,
                    len: n,
                    buf: cur,
                };
                send(&job_tx, job);
                match next {
                    Some(buf) if !last => (cur, n) = (buf, m),
                    _ => return Ok(()),
                }
            }
        })();
        if let Err(e) = read {
            failure.fail(e);
        }
        drop(job_tx);
        writer.join().unwrap_or(0)
    });
    if let Some(e) = failure.take() {
        return Err(e);
    }
    stats.bytes_out = bytes_out;
    Ok(stats)
}

fn hash_stage(
    mut signer: Box<dyn Signer>,
    sealed: &Receiver<Msg>,
    ordered: &Sender<Msg>,
    failure: &Failure,
) {
    let mut reorder = Reorder::new();
    while let Some(Msg::Frame(job)) = recv(sealed, failure) {
        reorder.push(job);
        while let Some(job) = reorder.pop() {
            signer.update(&job.buf[job.frame_range()]);
            let last = job.last;
            send(ordered, Msg::Frame(job));
            if last {
                match footer(Some(signer)) {
                    Ok(f) => send(ordered, Msg::Footer(f)),
                    Err(e) => failure.fail(e),
                }
                return;
            }
        }
    }
}

fn write_stage<O: Output>(
    output: &mut O,
    ordered: &Receiver<Msg>,
    pool: &Sender<Vec<u8>>,
    signed: bool,
    frame_length: usize,
    failure: &Failure,
) -> u64 {
    let mut reorder = Reorder::new();
    let mut written = 0u64;
    let mut wrote_last = false;
    while let Some(msg) = recv(ordered, failure) {
        match msg {
            Msg::Frame(job) => reorder.push(job),
            Msg::Footer(footer) => {
                if let Err(e) = output.put(&footer) {
                    failure.fail(e.into());
                }
                return written + footer.len() as u64;
            }
        }
        while let Some(job) = reorder.pop() {
            let range = job.frame_range();
            written += range.len() as u64;
            wrote_last = job.last;
            match output.put_buffer(job.buf, range) {
                Ok(back) => send(pool, reuse(back, frame_length)),
                Err(e) => {
                    failure.fail(e.into());
                    return written;
                }
            }
        }
        if wrote_last && !signed {
            return written;
        }
    }
    written
}
