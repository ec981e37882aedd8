//! In-memory messages on several cores: frames sealed straight from the plaintext slice
//! into their place in the output (and opened straight from the message into theirs), in
//! batches pulled by workers, while one thread hashes finished batches in order for the
//! signature. No byte is copied besides the cipher's own input and output.

use std::collections::BTreeMap;
use std::sync::mpsc::channel;
use std::sync::Mutex;
use std::thread;

use super::PipelineOptions;
use crate::crypto::{Signer, Verifier};
use crate::engine::{footer, Decryptor, Encryptor, FrameLayout, FrameSealer, FrameTickets, Next};
use crate::error::{Error, FormatError};
use crate::format::final_frame_len;

/// Frames per batch: large enough to amortise hand-offs, small enough to keep the hash
/// thread close behind the workers.
const BATCH_FRAMES: usize = 16;

const POISONED: &str = "a worker's lock was poisoned";
const PANICKED: &str = "a worker thread panicked";

/// Hashes finished pieces in index order as they arrive from the workers.
fn hash_in_order<'a>(
    mut absorb: impl FnMut(&'a [u8]),
    pieces: impl Iterator<Item = (usize, &'a [u8])>,
) {
    let mut pending = BTreeMap::new();
    let mut next = 0;
    for (index, piece) in pieces {
        pending.insert(index, piece);
        while let Some(piece) = pending.remove(&next) {
            absorb(piece);
            next += 1;
        }
    }
}

/// Encrypts `plaintext` into `out` with the header built in `enc`.
pub(crate) fn encrypt(
    mut enc: Encryptor,
    plaintext: &[u8],
    out: &mut Vec<u8>,
    options: &PipelineOptions,
) -> Result<(), Error> {
    let fl = enc.frame_length();
    let rfl = enc.regular_frame_len();
    // A plaintext that fills its last frame ends with an empty final frame.
    let regular = plaintext.len() / fl;
    let (body, last) = plaintext.split_at(regular * fl);
    let header_len = enc.header().len();
    let body_end = header_len + regular * rfl + final_frame_len(last.len());
    out.resize(body_end, 0);
    let (head, frames) = out.split_at_mut(header_len);
    head.copy_from_slice(enc.header());
    let (regular_out, final_out) = frames.split_at_mut(regular * rfl);
    let mut tickets = enc.reserve_frames(regular)?;
    let final_ticket = enc.reserve_final_frame()?;
    enc.frame_sealer()?
        .seal_from(final_ticket, last, final_out)?;
    let mut signer = enc.take_signer();

    let batches = body
        .chunks(BATCH_FRAMES * fl)
        .zip(regular_out.chunks_mut(BATCH_FRAMES * rfl))
        .map(move |(pt, ct)| (tickets.split_front(BATCH_FRAMES), pt, ct));
    let batch_count = regular.div_ceil(BATCH_FRAMES);
    if options.workers().min(batch_count) <= 1 {
        let mut sealer = enc.frame_sealer()?;
        for (tickets, pt, ct) in batches {
            seal_batch(&mut sealer, tickets, fl, pt, ct)?;
            if let Some(s) = signer.as_mut() {
                s.update(ct);
            }
        }
    } else {
        let sealers = (0..options.frame_workers(signer.is_some()).min(batch_count))
            .map(|_| enc.frame_sealer())
            .collect::<Result<Vec<_>, _>>()?;
        let queue = Mutex::new(batches.enumerate());
        signer = thread::scope(|s| -> Result<Option<Box<dyn Signer>>, Error> {
            let (done_tx, done_rx) = channel::<(usize, &[u8])>();
            let handles: Vec<_> = sealers
                .into_iter()
                .map(|mut sealer| {
                    let (queue, done_tx) = (&queue, done_tx.clone());
                    s.spawn(move || -> Result<(), Error> {
                        loop {
                            // Batches leave the queue in order: each sealer's nonces rise.
                            let next = queue.lock().map_err(|_| Error::Internal(POISONED))?.next();
                            let Some((b, (tickets, pt, ct))) = next else {
                                return Ok(());
                            };
                            seal_batch(&mut sealer, tickets, fl, pt, ct)?;
                            let _ = done_tx.send((b, &*ct));
                        }
                    })
                })
                .collect();
            drop(done_tx);
            let hasher = s.spawn(move || {
                let mut signer = signer;
                if let Some(sig) = signer.as_mut() {
                    hash_in_order(|piece| sig.update(piece), done_rx.iter());
                }
                signer
            });
            for h in handles {
                h.join().unwrap_or(Err(Error::Internal(PANICKED)))?;
            }
            Ok(hasher.join().unwrap_or(None))
        })?;
    }
    if let Some(s) = signer.as_mut() {
        s.update(&out[header_len + regular * rfl..body_end]);
    }
    let footer = footer(signer)?;
    out.extend_from_slice(&footer);
    Ok(())
}

/// Seals one batch of regular frames from `pt` into `ct` with its `tickets`.
fn seal_batch(
    sealer: &mut FrameSealer,
    tickets: FrameTickets,
    fl: usize,
    pt: &[u8],
    ct: &mut [u8],
) -> Result<(), Error> {
    let rfl = sealer.regular_frame_len();
    if tickets.len() * fl != pt.len() || tickets.len() * rfl != ct.len() {
        return Err(Error::Internal("batch and tickets differ"));
    }
    for (ticket, (p, c)) in tickets.zip(pt.chunks(fl).zip(ct.chunks_mut(rfl))) {
        sealer.seal_from(ticket, p, c)?;
    }
    Ok(())
}

/// Decrypts the body of a message (the header parsed and authenticated by `dec`) into
/// `out`. Nothing in `out` may be used unless this returns `Ok`.
pub(crate) fn decrypt(
    dec: &mut Decryptor,
    body: &[u8],
    out: &mut Vec<u8>,
    options: &PipelineOptions,
) -> Result<(), Error> {
    // Walk the frame headers in order (cheap); the engine checks sequence and limits.
    let mut verifier = dec.take_verifier();
    let mut units: Vec<(FrameLayout, usize)> = Vec::new();
    let mut pos = 0;
    let mut plain_len = 0;
    let last = loop {
        let rest = &body[pos..];
        let layout = match dec.next_frame(rest)? {
            Next::Unit(layout) => layout,
            Next::NeedBytes(_) => return Err(FormatError::Truncated.into()),
        };
        let total = layout.total_len();
        if layout.is_final() && rest.len() > total {
            return Err(FormatError::TrailingBytes.into());
        }
        let (prefix, sealed, _) = layout.split(rest);
        dec.accept_frame(&layout, prefix, sealed)?;
        units.push((layout, pos));
        plain_len += layout.body_len();
        pos += total;
        if layout.is_final() {
            break layout;
        }
    };
    let footer = &body[pos - last.footer_len..pos];
    let signed_part = &body[..pos - last.footer_len];
    out.resize(plain_len, 0);

    // Disjoint output regions, one per unit, grouped into batches.
    let mut regions = Vec::with_capacity(units.len());
    let mut rest: &mut [u8] = out;
    for (layout, _) in &units {
        let (region, tail) = rest.split_at_mut(layout.body_len());
        regions.push(region);
        rest = tail;
    }
    let open_unit = |opener: &crate::engine::FrameOpener,
                     (layout, at): &(FrameLayout, usize),
                     region: &mut [u8]|
     -> Result<(), Error> {
        let (_, sealed, _) = layout.split(&body[*at..]);
        opener.open_to(layout, sealed, region)
    };
    let batch_count = units.len().div_ceil(BATCH_FRAMES);
    if options.workers().min(batch_count) <= 1 {
        if let Some(v) = verifier.as_mut() {
            v.update(signed_part);
        }
        let opener = dec.frame_opener()?;
        for (unit, region) in units.iter().zip(regions) {
            open_unit(&opener, unit, region)?;
        }
    } else {
        let openers = (0..options.frame_workers(verifier.is_some()).min(batch_count))
            .map(|_| dec.frame_opener())
            .collect::<Result<Vec<_>, _>>()?;
        let queue = Mutex::new(
            units
                .chunks(BATCH_FRAMES)
                .zip(chunk_regions(regions, BATCH_FRAMES)),
        );
        verifier = thread::scope(|s| -> Result<Option<Box<dyn Verifier>>, Error> {
            // The signature's hash runs beside the workers, over the ciphertext.
            let hasher = s.spawn(move || {
                let mut verifier = verifier;
                if let Some(v) = verifier.as_mut() {
                    v.update(signed_part);
                }
                verifier
            });
            let handles: Vec<_> = openers
                .into_iter()
                .map(|opener| {
                    let (queue, open_unit) = (&queue, &open_unit);
                    s.spawn(move || -> Result<(), Error> {
                        loop {
                            let next = queue.lock().map_err(|_| Error::Internal(POISONED))?.next();
                            let Some((batch, regions)) = next else {
                                return Ok(());
                            };
                            for (unit, region) in batch.iter().zip(regions) {
                                open_unit(&opener, unit, region)?;
                            }
                        }
                    })
                })
                .collect();
            // The first failure in message order wins, whatever the timing.
            let mut first: Option<Error> = None;
            for h in handles {
                if let Err(e) = h.join().unwrap_or(Err(Error::Internal(PANICKED))) {
                    first = Some(match (first, e) {
                        (Some(a), b) => earliest(a, b),
                        (None, b) => b,
                    });
                }
            }
            let verifier = hasher.join().unwrap_or(None);
            match first {
                Some(e) => Err(e),
                None => Ok(verifier),
            }
        })?;
    }
    dec.finish(footer, verifier)
}

/// Of two frame failures, the one earlier in the message.
fn earliest(a: Error, b: Error) -> Error {
    use crate::error::AuthenticationError::FrameTag;
    match (&a, &b) {
        (
            Error::Authentication(FrameTag { sequence: x }),
            Error::Authentication(FrameTag { sequence: y }),
        ) if y < x => b,
        _ => a,
    }
}

fn chunk_regions(regions: Vec<&mut [u8]>, n: usize) -> Vec<Vec<&mut [u8]>> {
    let mut out = Vec::with_capacity(regions.len().div_ceil(n));
    let mut it = regions.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(n).collect());
    }
    out
}
