//! The encrypting pipeline: read -> seal (workers) -> hash (signed suites) -> write.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use tracing::debug;

use super::write_behind::write_behind;
use super::{recv, send, Failure, Input, Output, PipelineOptions, Queue, StreamStats};
use crate::crypto::Signer;
use crate::engine::{footer, Encryptor, FrameSlots, FrameTicket};
use crate::error::Error;

/// One frame on its way to a worker: the right to seal it and its buffer, the frame's
/// bytes at `range` (the plaintext in the middle of them).
struct Job {
    ticket: FrameTicket,
    range: Range<usize>,
    buf: Vec<u8>,
}

/// One sealed frame on its way to the writer: its bytes are `buf[range]`.
struct Sealed {
    sequence: u32,
    last: bool,
    range: Range<usize>,
    buf: Vec<u8>,
}

/// A buffer the output handed back, if it can hold a frame, or a new one.
fn reuse(back: Option<Vec<u8>>, slots: FrameSlots) -> Vec<u8> {
    back.filter(|b| b.len() >= slots.buffer_len())
        .unwrap_or_else(|| slots.buffer())
}

/// What flows to the writer: batches of sealed frames (consecutive, never empty), then
/// (signed suites) the footer.
enum Msg {
    Frames(Vec<Sealed>),
    Footer(Vec<u8>),
}

/// Puts batches of consecutive frames back in sequence order.
struct Reorder {
    next: u32,
    pending: BTreeMap<u32, Vec<Sealed>>,
}

impl Reorder {
    fn new() -> Self {
        Self {
            next: 1,
            pending: BTreeMap::new(),
        }
    }

    fn push(&mut self, batch: Vec<Sealed>) {
        if let Some(first) = batch.first() {
            self.pending.insert(first.sequence, batch);
        }
    }

    fn pop(&mut self) -> Option<Vec<Sealed>> {
        let batch = self.pending.remove(&self.next)?;
        self.next += batch.len() as u32;
        Some(batch)
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
    debug!(
        threads = options.workers(),
        parallel = options.parallel_for(enc.frame_length()),
        "pipeline: encrypt"
    );
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
    let slots = enc.slots();
    let mut buf = slots.buffer();
    loop {
        let n = input.fill(&mut buf, FrameSlots::PLAINTEXT_AT, fl)?;
        stats.bytes_in += n as u64;
        if n < fl {
            // A short (or empty) frame ends the message: a full one never does.
            let frame = slots.frame(true, n);
            let footer = enc.seal_final_frame(&mut buf[frame.clone()])?;
            stats.bytes_out += (frame.len() + footer.len()) as u64;
            output.put_buffer(buf, frame)?;
            output.put(&footer)?;
            return Ok(stats);
        }
        let frame = slots.frame(false, fl);
        enc.seal_frame(&mut buf[frame.clone()])?;
        stats.bytes_out += frame.len() as u64;
        let back = output.put_buffer(buf, frame)?;
        buf = reuse(back, slots);
    }
}

/// Workers seal; this thread reads plaintext into free buffers and puts sealed frames in
/// order as they come back (to the writer thread of [`run`], or to an output that hands
/// them over itself). Frames move between threads in batches of consecutive frames
/// ([`PipelineOptions::batch_for`]): a hand-off can wake a thread, and per 64 KiB frame
/// the wake-ups cost more than sealing it.
fn parallel<I: Input, O: Output + Send>(
    enc: &mut Encryptor,
    input: &mut I,
    output: &mut O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let slots = enc.slots();
    let fl = enc.frame_length();
    let failure = Failure::default();
    let signer = enc.take_signer();
    let signed = signer.is_some();
    let sealers = (0..options.frame_workers(signed))
        .map(|_| enc.frame_sealer())
        .collect::<Result<Vec<_>, _>>()?;

    let mut stats = StreamStats::default();
    thread::scope(|s| {
        let (job_tx, job_rx) = channel::<Vec<Job>>();
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
                while let Some(jobs) = queue.next() {
                    let mut sealed = Vec::with_capacity(jobs.len());
                    for Job {
                        ticket,
                        range,
                        mut buf,
                    } in jobs
                    {
                        let (sequence, last) = (ticket.sequence(), ticket.is_final());
                        if let Err(e) = sealer.seal(ticket, &mut buf[range.clone()]) {
                            return failure.fail(e);
                        }
                        sealed.push(Sealed {
                            sequence,
                            last,
                            range,
                            buf,
                        });
                    }
                    send(&to_sealed, Msg::Frames(sealed));
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
            free: (0..options.frames_in_flight_for(fl, signed).max(2))
                .map(|_| slots.buffer())
                .collect(),
            batch: options.batch_for(fl, signed),
            slots,
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
    jobs: Sender<Vec<Job>>,
    done: &'a Receiver<Msg>,
    failure: &'a Failure,
    /// Buffers not in flight.
    free: Vec<Vec<u8>>,
    /// Frames handed to the workers at once.
    batch: usize,
    slots: FrameSlots,
    signed: bool,
    stats: &'a mut StreamStats,
}

impl<I: Input, O: Output> Io<'_, I, O> {
    fn run(mut self) -> Result<(), Error> {
        let fl = self.slots.frame_length();
        let mut reading = true;
        let mut reorder = Reorder::new();
        let mut wrote_last = false;
        loop {
            // Read into every free buffer, handing full batches (and the last frames,
            // or what the free buffers held) to the workers.
            while reading && !self.free.is_empty() {
                let mut jobs = Vec::with_capacity(self.batch);
                while let Some(mut buf) = self.free.pop() {
                    let n = self.input.fill(&mut buf, FrameSlots::PLAINTEXT_AT, fl)?;
                    self.stats.bytes_in += n as u64;
                    // A short (or empty) frame ends the message: a full one never does.
                    let last = n < fl;
                    jobs.push(self.job(buf, n, last)?);
                    reading = !last;
                    if !reading || jobs.len() == self.batch {
                        break;
                    }
                }
                send(&self.jobs, jobs);
            }
            // Wait for a sealed frame, take all that came, write them in order.
            let Some(first) = recv(self.done, self.failure) else {
                return Ok(()); // A worker failed; its error is recorded.
            };
            let mut footer = None;
            for msg in std::iter::once(first).chain(self.done.try_iter()) {
                match msg {
                    Msg::Frames(frames) => reorder.push(frames),
                    Msg::Footer(f) => footer = Some(f),
                }
            }
            let mut batch = Vec::new();
            while let Some(frames) = reorder.pop() {
                for job in frames {
                    let range = job.range;
                    self.stats.bytes_out += range.len() as u64;
                    wrote_last = job.last;
                    batch.push((job.buf, range));
                }
            }
            for back in self.output.put_buffers(batch)? {
                self.free.push(reuse(back, self.slots));
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

    /// A frame for the workers with the next sequence number.
    fn job(&mut self, buf: Vec<u8>, len: usize, last: bool) -> Result<Job, Error> {
        let ticket = if last {
            self.enc.reserve_final_frame()?
        } else {
            self.enc.reserve_frame()?
        };
        let range = self.slots.frame(last, len);
        Ok(Job { ticket, range, buf })
    }
}

fn hash_stage(
    mut signer: Box<dyn Signer>,
    sealed: &Receiver<Msg>,
    ordered: &Sender<Msg>,
    failure: &Failure,
) {
    let mut reorder = Reorder::new();
    while let Some(Msg::Frames(frames)) = recv(sealed, failure) {
        reorder.push(frames);
        while let Some(frames) = reorder.pop() {
            for job in &frames {
                signer.update(&job.buf[job.range.clone()]);
            }
            let last = frames.last().is_some_and(|job| job.last);
            send(ordered, Msg::Frames(frames));
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
