//! The encrypting pipeline: read -> seal (workers) -> hash (signed suites) -> write.

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use super::write_behind::write_behind;
use super::{recv, send, Failure, Input, Output, PipelineOptions, Queue, StreamStats};
use crate::crypto::{Signer, TAG_LEN};
use crate::engine::{footer, Encryptor, FrameTicket};
use crate::error::Error;
use crate::format::{FINAL_FRAME_PREFIX_LEN, REGULAR_FRAME_PREFIX_LEN};

/// The final frame's prefix is 8 bytes longer than a regular one's: plaintext sits at a
/// fixed offset and each frame is sealed from the slot that fits it.
const SLACK: usize = FINAL_FRAME_PREFIX_LEN - REGULAR_FRAME_PREFIX_LEN;

/// One frame on its way to a worker: the right to seal it and its plaintext.
struct Job {
    ticket: FrameTicket,
    len: usize,
    buf: Vec<u8>,
}

/// One sealed frame on its way to the writer.
struct Sealed {
    sequence: u32,
    last: bool,
    len: usize,
    buf: Vec<u8>,
}

/// The frame's bytes within a frame buffer holding `len` plaintext bytes.
fn frame_range(last: bool, len: usize) -> std::ops::Range<usize> {
    let end = FINAL_FRAME_PREFIX_LEN + len + TAG_LEN;
    if last {
        0..end
    } else {
        SLACK..end
    }
}

impl Sealed {
    /// The sealed frame's bytes within the buffer.
    fn frame_range(&self) -> std::ops::Range<usize> {
        frame_range(self.last, self.len)
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
    Frame(Sealed),
    Footer(Vec<u8>),
}

/// Puts frames back in sequence order.
struct Reorder {
    next: u32,
    pending: BTreeMap<u32, Sealed>,
}

impl Reorder {
    fn new() -> Self {
        Self {
            next: 1,
            pending: BTreeMap::new(),
        }
    }

    fn push(&mut self, job: Sealed) {
        self.pending.insert(job.sequence, job);
    }

    fn pop(&mut self) -> Option<Sealed> {
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
    let stats = if !options.parallel_for(enc.frame_length()) {
        sequential(&mut enc, &mut input, &mut output)?
    } else if O::HANDS_OVER {
        parallel(&mut enc, &mut input, &mut output, options)?
    } else {
        write_behind(&mut output, |mut w| {
            parallel(&mut enc, &mut input, &mut w, options)
        })?
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
    let mut buf = frame_buffer(fl);
    loop {
        let n = input.fill(&mut buf, PLAINTEXT_AT, fl)?;
        stats.bytes_in += n as u64;
        if n < fl {
            // A short (or empty) frame ends the message: a full one never does.
            let end = FINAL_FRAME_PREFIX_LEN + n + TAG_LEN;
            let footer = enc.seal_final_frame(&mut buf[..end])?;
            output.put_buffer(buf, 0..end)?;
            output.put(&footer)?;
            stats.bytes_out += (end + footer.len()) as u64;
            return Ok(stats);
        }
        let end = FINAL_FRAME_PREFIX_LEN + fl + TAG_LEN;
        enc.seal_frame(&mut buf[SLACK..end])?;
        let back = output.put_buffer(buf, SLACK..end)?;
        stats.bytes_out += (end - SLACK) as u64;
        buf = reuse(back, fl);
    }
}

/// Workers seal; this thread reads plaintext into free buffers and puts sealed frames in
/// order as they come back (to the writer thread of [`run`], or to an output that hands
/// them over itself).
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
    let signed = signer.is_some();

    let mut stats = StreamStats::default();
    thread::scope(|s| {
        let (job_tx, job_rx) = channel::<Job>();
        let queue = Queue::new(job_rx);
        let (done_tx, done_rx) = channel::<Msg>();
        // Signed suites: one thread hashes the sealed frames in order while the workers
        // seal the next ones, and hands them on, then the footer.
        let to_sealed = match signer {
            Some(signer) => {
                let (tx, rx) = channel::<Msg>();
                let failure = &failure;
                s.spawn(move || hash_stage(signer, &rx, &done_tx, failure));
                tx
            }
            None => done_tx,
        };
        for mut sealer in sealers {
            let (queue, to_sealed, failure) = (queue.clone(), to_sealed.clone(), &failure);
            s.spawn(move || {
                while let Some(Job {
                    ticket,
                    len,
                    mut buf,
                }) = queue.next()
                {
                    let (sequence, last) = (ticket.sequence(), ticket.is_final());
                    match sealer.seal(ticket, &mut buf[frame_range(last, len)]) {
                        Ok(()) => {
                            let sealed = Sealed {
                                sequence,
                                last,
                                len,
                                buf,
                            };
                            send(&to_sealed, Msg::Frame(sealed));
                        }
                        Err(e) => return failure.fail(e),
                    }
                }
            });
        }
        drop(to_sealed);
        let io = Io {
            enc,
            input,
            output,
            jobs: job_tx,
            done: &done_rx,
            failure: &failure,
            free: (0..options.in_flight().max(2))
                .map(|_| frame_buffer(fl))
                .collect(),
            frame_length: fl,
            signed,
            stats: &mut stats,
        };
        if let Err(e) = io.run() {
            failure.fail(e);
        }
    });
    match failure.take() {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

/// The I/O side of [`parallel`].
struct Io<'a, I, O> {
    enc: &'a mut Encryptor,
    input: &'a mut I,
    output: &'a mut O,
    jobs: Sender<Job>,
    done: &'a Receiver<Msg>,
    failure: &'a Failure,
    /// Buffers not in flight.
    free: Vec<Vec<u8>>,
    frame_length: usize,
    signed: bool,
    stats: &'a mut StreamStats,
}

impl<I: Input, O: Output> Io<'_, I, O> {
    fn run(mut self) -> Result<(), Error> {
        let fl = self.frame_length;
        let mut reading = true;
        let mut reorder = Reorder::new();
        let mut wrote_last = false;
        loop {
            while reading {
                let Some(mut buf) = self.free.pop() else {
                    break;
                };
                let n = self.input.fill(&mut buf, PLAINTEXT_AT, fl)?;
                self.stats.bytes_in += n as u64;
                // A short (or empty) frame ends the message: a full one never does.
                let last = n < fl;
                self.dispatch(buf, n, last)?;
                reading = !last;
            }
            // Wait for a sealed frame, take all that came, write them in order.
            let Some(first) = recv(self.done, self.failure) else {
                return Ok(()); // A worker failed; its error is recorded.
            };
            let mut footer = None;
            for msg in std::iter::once(first).chain(self.done.try_iter()) {
                match msg {
                    Msg::Frame(job) => reorder.push(job),
                    Msg::Footer(f) => footer = Some(f),
                }
            }
            let mut batch = Vec::new();
            while let Some(job) = reorder.pop() {
                let range = job.frame_range();
                self.stats.bytes_out += range.len() as u64;
                wrote_last = job.last;
                batch.push((job.buf, range));
            }
            for back in self.output.put_buffers(batch)? {
                self.free.push(reuse(back, fl));
            }
            if let Some(footer) = footer {
                self.output.put(&footer)?;
                self.stats.bytes_out += footer.len() as u64;
                return Ok(());
            }
            if wrote_last && !self.signed {
                return Ok(());
            }
        }
    }

    /// Sends a frame to the workers with the next sequence number.
    fn dispatch(&mut self, buf: Vec<u8>, len: usize, last: bool) -> Result<(), Error> {
        let ticket = if last {
            self.enc.reserve_final_frame()?
        } else {
            self.enc.reserve_frame()?
        };
        send(&self.jobs, Job { ticket, len, buf });
        Ok(())
    }
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
