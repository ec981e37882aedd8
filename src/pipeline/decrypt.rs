//! The decrypting pipeline: read -> hash (signed suites, in order) -> open (workers) ->
//! write (in order, on the writer thread of [`run`] unless the output hands buffers over
//! itself).

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use tracing::debug;

use super::spill::Spill;
use super::write_behind::write_behind;
use super::{send, Input, Output, PipelineOptions, Queue, StreamStats};
use crate::crypto::Verifier;
use crate::engine::{Decryptor, FrameLayout, Next};
use crate::error::{Error, FormatError};
use crate::format::ContentType;
use crate::policy::ReleasePolicy;

/// One unit (frame or non-framed block) with its bytes: prefix, ciphertext, tag, footer.
struct Job {
    layout: FrameLayout,
    buf: Vec<u8>,
}

impl Job {
    fn split(&mut self) -> (&[u8], &mut [u8], &[u8]) {
        self.layout.split_mut(&mut self.buf)
    }
}

/// Reads the next unit into `buf` as the decryptor asks for it (sequence, limits and
/// layout are the engine's): first as much as a regular frame, so a whole regular frame
/// arrives in one call (one syscall on a file, one buffer hand-over from the async
/// adapters), then exactly what the engine says is missing. Reading past the final unit
/// finds the end of the input or bytes that must not be there.
pub(crate) fn read_unit<I: Input>(
    input: &mut I,
    dec: &mut Decryptor,
    buf: &mut Vec<u8>,
) -> Result<FrameLayout, Error> {
    let (mut have, mut ended) = (0, false);
    let mut want = dec.unit_read_hint();
    loop {
        if have < want && !ended {
            grow(buf, want);
            have += input.fill(buf, have, want - have)?;
            ended = have < want;
        }
        match dec.next_frame(&buf[..have])? {
            Next::Unit(layout) if have > layout.total_len() => {
                // Only the final unit can be shorter than what was asked for.
                return Err(FormatError::TrailingBytes.into());
            }
            Next::Unit(layout) => return Ok(layout),
            Next::NeedBytes(_) if ended => return Err(FormatError::Truncated.into()),
            Next::NeedBytes(n) => want = n,
        }
    }
}

/// Makes `buf` at least `len` bytes long; a reused buffer is not zeroed again (units use
/// only their own length of it).
fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// Nothing may follow the message.
pub(crate) fn expect_end<I: Input>(input: &mut I) -> Result<(), Error> {
    let mut probe = vec![0u8; 1];
    match input.fill(&mut probe, 0, 1)? {
        0 => Ok(()),
        _ => Err(FormatError::TrailingBytes.into()),
    }
}

/// Decrypts the body of `input` (the header already parsed and authenticated by `dec`)
/// to `output`. Signed messages under [`ReleasePolicy::Verified`] go through a spill file
/// and reach `output` only once the signature verified ([`super::spill`]).
pub(crate) fn run<I: Input, O: Output + Send>(
    dec: Decryptor,
    input: I,
    mut output: O,
    options: &PipelineOptions,
    release: ReleasePolicy,
) -> Result<StreamStats, Error> {
    let signed = dec
        .header()
        .is_some_and(|h| h.header.suite.signature().is_some());
    if !signed || release == ReleasePolicy::UnverifiedStream {
        return run_releasing(dec, input, output, options);
    }
    let mut spill = Spill::new()?;
    let stats = run_releasing(dec, input, spill.writer(), options)?;
    spill.release_to(&mut output)?;
    output.flush_output()?;
    Ok(stats)
}

/// [`run`] releasing each unit to `output` as soon as it verified.
fn run_releasing<I: Input, O: Output + Send>(
    mut dec: Decryptor,
    mut input: I,
    mut output: O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let frame_length = dec.header().map_or(0, |h| match h.header.content_type {
        ContentType::Framed => h.header.frame_length as usize,
        ContentType::NonFramed => 0,
    });
    debug!(
        threads = options.workers(),
        parallel = options.parallel_for(frame_length),
        "pipeline: decrypt"
    );
    let stats = if !options.parallel_for(frame_length) {
        sequential(&mut dec, &mut input, &mut output)?
    } else if O::HANDS_OVER {
        parallel(&mut dec, &mut input, &mut output, options, frame_length)?
    } else {
        write_behind(&mut output, |mut w| {
            parallel(&mut dec, &mut input, &mut w, options, frame_length)
        })?
    };
    output.flush_output()?;
    Ok(stats)
}

fn sequential<I: Input, O: Output>(
    dec: &mut Decryptor,
    input: &mut I,
    output: &mut O,
) -> Result<StreamStats, Error> {
    let mut stats = StreamStats::default();
    let mut buf = Vec::new();
    loop {
        let layout = read_unit(input, dec, &mut buf)?;
        stats.bytes_in += layout.total_len() as u64;
        if layout.is_final() {
            expect_end(input)?;
        }
        let mut job = Job { layout, buf };
        let (prefix, body, footer) = job.split();
        dec.open_frame(&layout, prefix, body, footer)?;
        let back = output.put_buffer(job.buf, layout.plaintext_range())?;
        stats.bytes_out += layout.body_len() as u64;
        if layout.is_final() {
            return Ok(stats);
        }
        buf = back.unwrap_or_default();
    }
}

/// Workers open; this thread reads and puts opened units in order once they may be
/// released, like the encrypting pipeline. Units move between threads in batches
/// ([`PipelineOptions::batch_for`]); for signed suites one more thread hashes them, in
/// order, between this one and the workers (opening overwrites the ciphertext).
fn parallel<I: Input, O: Output + Send>(
    dec: &mut Decryptor,
    input: &mut I,
    output: &mut O,
    options: &PipelineOptions,
    frame_length: usize,
) -> Result<StreamStats, Error> {
    let verifier = dec.take_verifier();
    let signed = verifier.is_some();
    let openers = (0..options.frame_workers(signed))
        .map(|_| dec.frame_opener())
        .collect::<Result<Vec<_>, _>>()?;
    let mut stats = StreamStats::default();
    let result = thread::scope(|s| {
        let (job_tx, job_rx) = channel::<Vec<Job>>();
        let queue = Queue::new(job_rx);
        let (done_tx, done_rx) = channel::<Vec<Opened>>();
        for opener in openers {
            let (queue, done_tx) = (queue.clone(), done_tx.clone());
            s.spawn(move || {
                while let Some(jobs) = queue.next() {
                    let opened = jobs
                        .into_iter()
                        .map(|mut job| {
                            let layout = job.layout;
                            let (_, body, _) = job.split();
                            (
                                layout.header.sequence,
                                opener.open(&layout, body).map(|()| job),
                            )
                        })
                        .collect();
                    send(&done_tx, opened);
                }
            });
        }
        drop(done_tx);
        let (jobs, hashed) = match verifier {
            Some(verifier) => {
                let (to_hash, units) = channel::<Vec<Job>>();
                let (give_back, hashed) = channel();
                s.spawn(move || hash_units(verifier, &units, &job_tx, &give_back));
                (to_hash, Some(hashed))
            }
            None => (job_tx, None),
        };
        let io = Io {
            dec,
            input,
            output,
            jobs,
            done: &done_rx,
            hashed,
            footer: None,
            free: (0..options.frames_in_flight_for(frame_length, signed).max(2))
                .map(|_| Vec::new())
                .collect(),
            batch: options.batch_for(frame_length, signed),
            stats: &mut stats,
            order: InOrder::default(),
        };
        io.run()
    });
    result.map(|()| stats)
}

/// The hash thread of a signed message: hashes each batch of units in message order,
/// passes it on to the workers, and hands the verifier back after the final unit.
fn hash_units(
    mut verifier: Box<dyn Verifier>,
    units: &Receiver<Vec<Job>>,
    to_open: &Sender<Vec<Job>>,
    give_back: &Sender<Box<dyn Verifier>>,
) {
    for jobs in units {
        for job in &jobs {
            let (prefix, sealed, _) = job.layout.split(&job.buf);
            verifier.update(prefix);
            verifier.update(sealed);
        }
        let last = jobs.iter().any(|job| job.layout.is_final());
        send(to_open, jobs);
        if last {
            // Nothing follows the final unit: the reader stops there.
            return send(give_back, verifier);
        }
    }
}

/// A unit back from a worker: its sequence number and the unit opened, or why not.
type Opened = (u32, Result<Job, Error>);

/// The I/O side of [`parallel`].
struct Io<'a, I, O> {
    dec: &'a mut Decryptor,
    input: &'a mut I,
    output: &'a mut O,
    /// To the workers, or (signed suites) to the hash thread.
    jobs: Sender<Vec<Job>>,
    done: &'a Receiver<Vec<Opened>>,
    /// Signed suites: the verifier, back from the hash thread after the final unit.
    hashed: Option<Receiver<Box<dyn Verifier>>>,
    /// The final unit's footer (and whether the input ended there), waiting for the
    /// verifier to come back.
    footer: Option<Result<Vec<u8>, Error>>,
    /// Buffers not in flight.
    free: Vec<Vec<u8>>,
    /// Units handed on at once.
    batch: usize,
    stats: &'a mut StreamStats,
    order: InOrder,
}

impl<I: Input, O: Output> Io<'_, I, O> {
    fn run(mut self) -> Result<(), Error> {
        let mut reading = true;
        let mut sequence = 1u32;
        let mut in_flight = 0usize;
        loop {
            while reading && !self.free.is_empty() {
                let mut jobs = Vec::with_capacity(self.batch);
                while let Some(buf) = self.free.pop() {
                    match self.read(buf) {
                        Ok((job, last)) => {
                            jobs.push(job);
                            reading = !last;
                        }
                        Err(e) => {
                            self.order.read_failure = Some((sequence, e));
                            reading = false;
                        }
                    }
                    sequence += 1;
                    if !reading || jobs.len() == self.batch {
                        break;
                    }
                }
                if !jobs.is_empty() {
                    in_flight += jobs.len();
                    send(&self.jobs, jobs);
                }
                self.verify_footer();
            }
            if self
                .order
                .write_ready(self.output, &mut self.free, self.stats)?
            {
                return Ok(());
            }
            if reading && !self.free.is_empty() {
                continue;
            }
            // Units are in flight (else a read failure or the end would have completed
            // the message above); the workers answer every one of them.
            let first = match in_flight {
                0 => None,
                _ => self.done.recv().ok(),
            };
            let Some(first) = first else {
                return Err(Error::Internal("the decrypting pipeline lost a unit"));
            };
            for (sequence, opened) in std::iter::once(first).chain(self.done.try_iter()).flatten() {
                in_flight -= 1;
                self.order.pending.insert(sequence, opened);
            }
        }
    }

    /// Reads the next unit into `buf` and checks it; for the final unit also checks the
    /// end of the input and the signature (or, when the hash thread holds the verifier,
    /// keeps the footer for [`verify_footer`](Self::verify_footer)).
    fn read(&mut self, mut buf: Vec<u8>) -> Result<(Job, bool), Error> {
        let layout = read_unit(self.input, self.dec, &mut buf)?;
        self.stats.bytes_in += layout.total_len() as u64;
        let mut job = Job { layout, buf };
        let (prefix, body, footer) = job.split();
        self.dec.accept_frame(&layout, prefix, body)?;
        let last = layout.is_final();
        if last {
            let ended = expect_end(self.input);
            match self.hashed {
                Some(_) => self.footer = Some(ended.map(|()| footer.to_vec())),
                None => self.order.end = Some(ended.and_then(|()| self.dec.finish(footer, None))),
            }
        }
        Ok((job, last))
    }

    /// Once the final unit went to the hash thread: waits for the verifier and checks the
    /// signature.
    fn verify_footer(&mut self) {
        let (Some(footer), Some(hashed)) = (self.footer.take(), &self.hashed) else {
            return;
        };
        let verified = footer.and_then(|footer| {
            let verifier = hashed
                .recv()
                .map_err(|_| Error::Internal("the hash thread stopped"))?;
            self.dec.finish(&footer, Some(verifier))
        });
        self.order.end = Some(verified);
    }
}

/// Plaintext released in sequence order; the final unit's only once the message verified
/// (signature and end of input). The first failure in message order is the one reported.
#[derive(Default)]
struct InOrder {
    pending: BTreeMap<u32, Result<Job, Error>>,
    /// The reader could not produce the unit with this sequence number.
    read_failure: Option<(u32, Error)>,
    /// After the final unit: the input ended there and the signature (if any) verified.
    end: Option<Result<(), Error>>,
    /// Sequence number of the last unit written (0: none yet).
    written: u32,
}

impl InOrder {
    /// Writes the units that are next in order (in one batch); `true` once the message is
    /// complete. Units that verified are written before a later failure is reported.
    fn write_ready<O: Output>(
        &mut self,
        output: &mut O,
        free: &mut Vec<Vec<u8>>,
        stats: &mut StreamStats,
    ) -> Result<bool, Error> {
        let mut batch = Vec::new();
        let (complete, failure) = self.take_ready(&mut batch);
        for (layout, _) in &batch {
            stats.bytes_out += layout.body_len() as u64;
        }
        let bufs = batch
            .into_iter()
            .map(|(layout, buf)| (buf, layout.plaintext_range()))
            .collect();
        for back in output.put_buffers(bufs)? {
            free.push(back.unwrap_or_default());
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(complete),
        }
    }

    /// Moves the units that may be written now to `batch`; returns whether the final one is
    /// among them, and the failure that stops the message here, if any.
    fn take_ready(&mut self, batch: &mut Vec<(FrameLayout, Vec<u8>)>) -> (bool, Option<Error>) {
        loop {
            let next = self.written + 1;
            let job = match self.pending.remove(&next) {
                Some(Ok(job)) => job,
                Some(Err(e)) => return (false, Some(e)),
                None => match self.read_failure.take() {
                    Some((at, e)) if at == next => return (false, Some(e)),
                    other => {
                        self.read_failure = other;
                        return (false, None);
                    }
                },
            };
            let last = job.layout.is_final();
            if last {
                match self.end.take() {
                    None => {
                        self.pending.insert(next, Ok(job));
                        return (false, None);
                    }
                    Some(Err(e)) => return (false, Some(e)),
                    Some(Ok(())) => {}
                }
            }
            self.written = next;
            batch.push((job.layout, job.buf));
            if last {
                return (true, None);
            }
        }
    }
}
