//! The decrypting pipeline: read + hash (in order) -> open (workers) -> write (in order).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;

use super::{read_full, recv, send, Failure, PipelineOptions, Queue, StreamStats};
use crate::crypto::TAG_LEN;
use crate::engine::{DecryptConfig, Decryptor, FrameLayout};
use crate::error::{Error, FormatError};
use crate::format::{parse_frame_header, ContentType, FINAL_MARKER};

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

    fn plaintext(&self) -> &[u8] {
        &self.buf[self.layout.plaintext_range()]
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

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), Error> {
    if read_full(r, buf)? == buf.len() {
        Ok(())
    } else {
        Err(FormatError::Truncated.into())
    }
}

/// Reads the next unit into `buf` and validates it with the decryptor (sequence, limits).
pub(crate) fn read_unit<R: Read>(
    input: &mut R,
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
    grow(buf, 24);
    let prefix_len = match content_type {
        ContentType::NonFramed => {
            read_exact(input, &mut buf[..20])?;
            20
        }
        ContentType::Framed => {
            read_exact(input, &mut buf[..4])?;
            if buf[..4] == FINAL_MARKER.to_be_bytes() {
                read_exact(input, &mut buf[4..24])?;
                24
            } else {
                read_exact(input, &mut buf[4..16])?;
                16
            }
        }
    };
    let fh = parse_frame_header(&buf[..prefix_len], content_type, frame_length)?
        .ok_or(FormatError::Truncated)?;
    // Bound the allocation before reading the body.
    if fh.content_len > u64::from(config.max_frame_length) {
        return Err(FormatError::BodyTooLong(fh.content_len).into());
    }
    let mut total = prefix_len + fh.content_len as usize + TAG_LEN;
    grow(buf, total);
    read_exact(input, &mut buf[prefix_len..total])?;
    if signed && fh.kind != crate::format::BodyKind::Regular {
        grow(buf, total + 2);
        read_exact(input, &mut buf[total..total + 2])?;
        let sig_len = u16::from_be_bytes([buf[total], buf[total + 1]]) as usize;
        grow(buf, total + 2 + sig_len);
        read_exact(input, &mut buf[total + 2..total + 2 + sig_len])?;
        total += 2 + sig_len;
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
pub(crate) fn expect_end<R: Read>(input: &mut R) -> Result<(), Error> {
    let mut probe = [0u8; 1];
    match read_full(input, &mut probe)? {
        0 => Ok(()),
        _ => Err(FormatError::TrailingBytes.into()),
    }
}

/// Decrypts the body of `input` (the header already parsed and authenticated by `dec`)
/// to `output`.
pub(crate) fn run<R: Read, W: Write + Send>(
    mut dec: Decryptor,
    config: DecryptConfig,
    mut input: R,
    mut output: W,
    options: &PipelineOptions,
) -> Result<StreamStats, Error> {
    let stats = if options.workers() <= 1 {
        sequential(&mut dec, &config, &mut input, &mut output)?
    } else {
        parallel(&mut dec, &config, &mut input, &mut output, options)?
    };
    output.flush()?;
    Ok(stats)
}

fn sequential<R: Read, W: Write>(
    dec: &mut Decryptor,
    config: &DecryptConfig,
    input: &mut R,
    output: &mut W,
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
        output.write_all(job.plaintext())?;
        stats.bytes_out += layout.body_len() as u64;
        if layout.is_final() {
            return Ok(stats);
        }
        buf = job.buf;
    }
}

fn parallel<R: Read, W: Write + Send>(
    dec: &mut Decryptor,
    config: &DecryptConfig,
    input: &mut R,
    output: &mut W,
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
fn write_stage<W: Write>(
    mut output: W,
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
            if let Err(e) = output.write_all(job.plaintext()) {
                failure.fail(e.into());
                return written;
            }
            written += job.layout.body_len() as u64;
            if job.layout.is_final() {
                return written;
            }
            next += 1;
            send(pool, job.buf);
        }
    }
    written
}
