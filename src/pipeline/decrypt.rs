//! The decrypting pipeline: read + hash (in order) -> open (workers) -> write (in order).

use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use super::{recv, send, Failure, Input, Output, PipelineOptions, Queue, StreamStats};
use crate::crypto::TAG_LEN;
use crate::engine::{DecryptConfig, Decryptor, FrameLayout};
use crate::error::{Error, FormatError};
use crate::format::{
    parse_frame_header, BodyKind, ContentType, FINAL_FRAME_PREFIX_LEN, FINAL_MARKER,
    NON_FRAMED_PREFIX_LEN, REGULAR_FRAME_PREFIX_LEN,
};

/// One unit (frame or non-framed block) with its bytes: prefix, ciphertext, tag, footer.
struct Job {
    layout: FrameLayout,
    buf: Vec<u8>,
}

impl Job {
    fn split(&mut self) -> (&[u8], &mut [u8], &[u8]) {
        let p = self.layout.header.prefix_len;
        let (prefix, rest) = self.buf[..self.layout.total_len()].split_at_mut(p);
        let (body, footer) = rest.split_at_mut(self.layout.body_len() + TAG_LEN);
        (prefix, body, footer)
    }
}

/// What reaches the writer. Every failure carries its place in the message, so the
/// error reported is the first one in message order, whatever the threads' timing.
enum Msg {
    /// A unit whose tag verified.
    Opened(Job),
    /// A unit whose tag did not verify.
    Failed(u32, Error),
    /// The reader could not produce the unit with this sequence number.
    ReadFailed(u32, Error),
    /// After the final unit: the input ended there and the signature (if any) verified.
    End(Result<(), Error>),
}

/// Bytes of the unit being read: `have` of them are in the buffer; `ended` once the input
/// ran out.
struct Gathered {
    have: usize,
    ended: bool,
}

impl Gathered {
    /// Reads until the first `k` bytes of `buf` hold input or the input ends.
    fn read_to<I: Input>(
        &mut self,
        input: &mut I,
        buf: &mut Vec<u8>,
        k: usize,
    ) -> Result<(), Error> {
        if self.have < k && !self.ended {
            grow(buf, k);
            self.have += input.fill(buf, self.have, k - self.have)?;
            self.ended = self.have < k;
        }
        Ok(())
    }

    /// Makes sure the first `k` bytes of `buf` hold input.
    fn ensure<I: Input>(
        &mut self,
        input: &mut I,
        buf: &mut Vec<u8>,
        k: usize,
    ) -> Result<(), Error> {
        self.read_to(input, buf, k)?;
        if self.have < k {
            return Err(FormatError::Truncated.into());
        }
        Ok(())
    }
}

/// Reads the next unit into `buf` and validates it with the decryptor (sequence, limits).
///
/// A regular frame has a fixed length, so one read asks for exactly that much: a whole
/// regular frame arrives in one call (one syscall on a file, one buffer hand-over from the
/// async adapters), and a final frame with its footer arrives in one or two. Reading past
/// the final unit finds the end of the input or bytes that must not be there.
pub(crate) fn read_unit<I: Input>(
    input: &mut I,
    dec: &mut Decryptor,
    config: &DecryptConfig,
    buf: &mut Vec<u8>,
) -> Result<FrameLayout, Error> {
    let (content_type, frame_length, signed) = {
        let h = &dec.header().ok_or(FormatError::Truncated)?.header;
        (
            h.content_type,
            h.frame_length,
            h.suite.signature().is_some(),
        )
    };
    let mut got = Gathered {
        have: 0,
        ended: false,
    };
    let prefix_len = match content_type {
        ContentType::NonFramed => NON_FRAMED_PREFIX_LEN,
        ContentType::Framed => {
            let regular = REGULAR_FRAME_PREFIX_LEN + frame_length as usize + TAG_LEN;
            // Short only at a final frame; checked below.
            got.read_to(input, buf, regular)?;
            got.ensure(input, buf, 4)?;
            if buf[..4] == FINAL_MARKER.to_be_bytes() {
                FINAL_FRAME_PREFIX_LEN
            } else {
                REGULAR_FRAME_PREFIX_LEN
            }
        }
    };
    got.ensure(input, buf, prefix_len)?;
    let fh = parse_frame_header(&buf[..prefix_len], content_type, frame_length)?
        .ok_or(FormatError::Truncated)?;
    // Bound the allocation before reading the body.
    if fh.content_len > u64::from(config.max_frame_length) {
        return Err(FormatError::BodyTooLong(fh.content_len).into());
    }
    let mut total = prefix_len + fh.content_len as usize + TAG_LEN;
    got.ensure(input, buf, total)?;
    let last = fh.kind != BodyKind::Regular;
    if signed && last {
        got.ensure(input, buf, total + 2)?;
        let sig_len = u16::from_be_bytes([buf[total], buf[total + 1]]) as usize;
        total += 2 + sig_len;
        got.ensure(input, buf, total)?;
    }
    if got.have > total {
        // Only a final unit can be shorter than what was asked for.
        return Err(FormatError::TrailingBytes.into());
    }
    let layout = dec
        .next_frame(&buf[..total])?
        .ok_or(FormatError::Truncated)?;
    debug_assert_eq!(layout.total_len(), total);
    Ok(layout)
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
/// to `output`.
pub(crate) fn run<I: Input, O: Output + Send>(
    mut dec: Decryptor,
    config: DecryptConfig,
    mut input: I,
    mut output: O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let stats = if options.workers() <= 1 {
        sequential(&mut dec, &config, &mut input, &mut output)?
    } else {
        parallel(&mut dec, &config, &mut input, &mut output, options)?
    };
    output.flush_output()?;
    Ok(stats)
}

fn sequential<I: Input, O: Output>(
    dec: &mut Decryptor,
    config: &DecryptConfig,
    input: &mut I,
    output: &mut O,
) -> Result<StreamStats, Error> {
    let mut stats = StreamStats::default();
    let mut buf = Vec::new();
    loop {
        let layout = read_unit(input, dec, config, &mut buf)?;
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

fn parallel<I: Input, O: Output + Send>(
    dec: &mut Decryptor,
    config: &DecryptConfig,
    input: &mut I,
    output: &mut O,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let failure = Failure::default();
    let openers = (0..options.workers())
        .map(|_| dec.frame_opener())
        .collect::<Result<Vec<_>, _>>()?;
    let mut stats = StreamStats::default();
    let bytes_out = thread::scope(|s| {
        let (job_tx, job_rx) = channel::<Job>();
        let queue = Queue::new(job_rx);
        let (pool_tx, pool_rx) = channel::<Vec<u8>>();
        for _ in 0..options.in_flight().max(2) {
            send(&pool_tx, Vec::new());
        }
        let (to_writer, writer_rx) = channel::<Msg>();
        for opener in openers {
            let (queue, to_writer) = (queue.clone(), to_writer.clone());
            s.spawn(move || {
                while let Some(mut job) = queue.next() {
                    let layout = job.layout;
                    let (_, body, _) = job.split();
                    match opener.open(&layout, body) {
                        Ok(()) => send(&to_writer, Msg::Opened(job)),
                        Err(e) => send(&to_writer, Msg::Failed(layout.header.sequence, e)),
                    }
                }
            });
        }
        let writer = {
            let failure = &failure;
            s.spawn(move || write_stage(output, &writer_rx, &pool_tx, failure))
        };

        // This thread reads and, for signed suites, hashes the units in order while the
        // workers open earlier ones.
        let mut sequence = 1u32;
        let read = (|| -> Result<(), Error> {
            loop {
                let Some(mut buf) = recv(&pool_rx, &failure) else {
                    return Ok(());
                };
                let layout = read_unit(input, dec, config, &mut buf)?;
                stats.bytes_in += layout.total_len() as u64;
                let mut job = Job { layout, buf };
                let (prefix, body, footer) = job.split();
                dec.accept_frame(&layout, prefix, body)?;
                if layout.is_final() {
                    let end = expect_end(input).and_then(|()| dec.finish(footer, None));
                    send(&job_tx, job);
                    send(&to_writer, Msg::End(end));
                    return Ok(());
                }
                send(&job_tx, job);
                sequence += 1;
            }
        })();
        if let Err(e) = read {
            send(&to_writer, Msg::ReadFailed(sequence, e));
        }
        drop(job_tx);
        drop(to_writer);
        writer.join().unwrap_or(0)
    });
    if let Some(e) = failure.take() {
        return Err(e);
    }
    stats.bytes_out = bytes_out;
    Ok(stats)
}

/// Writes plaintext in sequence order; the final unit's only once the reader reported the
/// message verified (signature and end of input). Reports the first failure in message
/// order.
fn write_stage<O: Output>(
    output: &mut O,
    inbox: &Receiver<Msg>,
    pool: &Sender<Vec<u8>>,
    failure: &Failure,
) -> u64 {
    let mut pending: BTreeMap<u32, Result<Job, Error>> = BTreeMap::new();
    let mut read_failure: Option<(u32, Error)> = None;
    let mut end: Option<Result<(), Error>> = None;
    let mut next = 1u32;
    let mut written = 0u64;
    while let Some(msg) = recv(inbox, failure) {
        match msg {
            Msg::Opened(job) => {
                pending.insert(job.layout.header.sequence, Ok(job));
            }
            Msg::Failed(sequence, e) => {
                pending.insert(sequence, Err(e));
            }
            Msg::ReadFailed(sequence, e) => read_failure = Some((sequence, e)),
            Msg::End(result) => end = Some(result),
        }
        loop {
            let job = match pending.remove(&next) {
                Some(Ok(job)) => job,
                Some(Err(e)) => {
                    failure.fail(e);
                    return written;
                }
                None => match read_failure.take() {
                    Some((at, e)) if at == next => {
                        failure.fail(e);
                        return written;
                    }
                    other => {
                        read_failure = other;
                        break;
                    }
                },
            };
            if job.layout.is_final() {
                match end.take() {
                    None => {
                        pending.insert(next, Ok(job));
                        break;
                    }
                    Some(Err(e)) => {
                        failure.fail(e);
                        return written;
                    }
                    Some(Ok(())) => {}
                }
            }
            let layout = job.layout;
            let back = match output.put_buffer(job.buf, layout.plaintext_range()) {
                Ok(back) => back,
                Err(e) => {
                    failure.fail(e.into());
                    return written;
                }
            };
            written += layout.body_len() as u64;
            if layout.is_final() {
                return written;
            }
            next += 1;
            send(pool, back.unwrap_or_default());
        }
    }
    written
}
