//! The decrypting pipeline: read + hash (in order) -> open (workers) -> write (in order,
//! on the writer thread of [`run`] unless the output hands buffers over itself).

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use tracing::debug;

use super::spill::Spill;
use super::write_behind::write_behind;
use super::{send, Input, Output, PipelineOptions, Queue, StreamStats};
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
        parallel(&mut dec, &mut input, &mut output, options)?
    } else {
        write_behind(&mut output, |mut w| {
            parallel(&mut dec, &mut input, &mut w, options)
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

/// Workers open; this thread reads, hashes (signed suites) and puts opened units in order
/// once they may be released, like the encrypting pipeline.
fn parallel<I: Input, O: Output + Send>(
    dec: &mut Decryptor,
    input: &mut I,
    output: &mut O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let openers = (0..options.workers())
        .map(|_| dec.frame_opener())
        .collect::<Result<Vec<_>, _>>()?;
    let mut stats = StreamStats::default();
    let result = thread::scope(|s| {
        let (job_tx, job_rx) = channel::<Job>();
        let queue = Queue::new(job_rx);
        let (done_tx, done_rx) = channel::<Opened>();
        for opener in openers {
            let (queue, done_tx) = (queue.clone(), done_tx.clone());
            s.spawn(move || {
                while let Some(mut job) = queue.next() {
                    let layout = job.layout;
                    let (_, body, _) = job.split();
                    let opened = opener.open(&layout, body).map(|()| job);
                    send(&done_tx, (layout.header.sequence, opened));
                }
            });
        }
        drop(done_tx);
        let io = Io {
            dec,
            input,
            output,
            jobs: job_tx,
            done: &done_rx,
            free: (0..options.in_flight().max(2))
                .map(|_| Vec::new())
                .collect(),
            stats: &mut stats,
            order: InOrder::default(),
        };
        io.run()
    });
    result.map(|()| stats)
}

/// A unit back from a worker: its sequence number and the unit opened, or why not.
type Opened = (u32, Result<Job, Error>);

/// The I/O side of [`parallel`].
struct Io<'a, I, O> {
    dec: &'a mut Decryptor,
    input: &'a mut I,
    output: &'a mut O,
    jobs: Sender<Job>,
    done: &'a Receiver<Opened>,
    /// Buffers not in flight.
    free: Vec<Vec<u8>>,
    stats: &'a mut StreamStats,
    order: InOrder,
}

impl<I: Input, O: Output> Io<'_, I, O> {
    fn run(mut self) -> Result<(), Error> {
        let mut reading = true;
        let mut sequence = 1u32;
        let mut in_flight = 0usize;
        loop {
            while reading {
                let Some(buf) = self.free.pop() else {
                    break;
                };
                match self.read(buf) {
                    Ok((job, last)) => {
                        send(&self.jobs, job);
                        in_flight += 1;
                        reading = !last;
                    }
                    Err(e) => {
                        self.order.read_failure = Some((sequence, e));
                        reading = false;
                    }
                }
                sequence += 1;
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
            for (sequence, opened) in std::iter::once(first).chain(self.done.try_iter()) {
                in_flight -= 1;
                self.order.pending.insert(sequence, opened);
            }
        }
    }

    /// Reads the next unit into `buf`, checks and (signed suites) hashes it; for the final
    /// unit also checks the end of the input and the signature.
    fn read(&mut self, mut buf: Vec<u8>) -> Result<(Job, bool), Error> {
        let layout = read_unit(self.input, self.dec, &mut buf)?;
        self.stats.bytes_in += layout.total_len() as u64;
        let mut job = Job { layout, buf };
        let (prefix, body, footer) = job.split();
        self.dec.accept_frame(&layout, prefix, body)?;
        let last = layout.is_final();
        if last {
            self.order.end =
                Some(expect_end(self.input).and_then(|()| self.dec.finish(footer, None)));
        }
        Ok((job, last))
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
