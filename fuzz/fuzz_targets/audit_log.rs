//! Audit log verification (`audit::verify_log`) of arbitrary, target-chained and edited logs.
//!
//! The first input byte picks a mode (low two bits; bit 2 pins the sample's key in mode 0):
//! - 0: the input as a log. Checked: `Ok` only for a log that an independent check finds
//!   chained (every line newline-terminated, hashed over its bytes, `seq` 1, 2, ..., `prev`
//!   the line before's hash, ending in a checkpoint if it has one), with matching counts;
//!   with the key pinned, only for the sample or a cut the limit allows (see mode 2);
//! - 1: each input line as an event's fields, chained and hashed by the target. Checked as
//!   mode 0, and a chained log without checkpoints must verify;
//! - 2: the sample log (12 events, a signed checkpoint every 4) edited by the input as
//!   4-byte instructions `op, pos_hi, pos_lo, value` (xor, set, truncate, insert, delete a
//!   line, swap two lines), its key pinned. Checked: `Ok` only for the sample or the sample
//!   cut exactly after a checkpoint (the documented limit), with the sample's counts up to
//!   there; anything else is `VerifyError::Broken`;
//! - 3: as 2 without the key: a cut before the first checkpoint is also `Ok`.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use envcrypt::audit::{
    verify_log, AuditEvent, AuditSigningKey, AuditSink, AuditVerifyingKey, FsyncPolicy,
    JsonLinesOptions, JsonLinesSink, LogSummary, Operation, VerifyError,
};
use envcrypt::crypto::{default_provider, HashAlgorithm};
use libfuzzer_sys::fuzz_target;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Fixture {
    log: Vec<u8>,
    key: AuditVerifyingKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let p = default_provider();
        let path = std::env::temp_dir().join(format!("envcrypt-fuzz-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let signing = AuditSigningKey::generate(p).expect("key");
        let key = signing.verifying_key().clone();
        let options = JsonLinesOptions::default()
            .with_signing_key(signing)
            .with_checkpoint_every(4)
            .with_fsync(FsyncPolicy::Never);
        let sink = JsonLinesSink::open(&path, p, options).expect("sink");
        let ops = [Operation::Encrypt, Operation::Generate, Operation::Wrap];
        for i in 0..12u64 {
            let mut event = AuditEvent::new(ops[i as usize % 3]).bytes(i * 1000);
            if i % 5 == 1 {
                event = event
                    .path("a \"quoted\" ,\"hash\":\"x\n")
                    .failed(&envcrypt::Error::Cancelled);
            }
            sink.record(&event).expect("record");
        }
        sink.finish().expect("finish");
        let log = std::fs::read(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        Fixture { log, key }
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = default_provider().digest.start(HashAlgorithm::Sha256);
    h.update(bytes);
    h.finish().iter().map(|b| format!("{b:02x}")).collect()
}

/// Per line: its hash, whether it is a checkpoint, its op and whether it failed; `None`
/// unless the log is chained (the independent check of mode 0).
fn chained(log: &[u8]) -> Option<Vec<(String, bool, String, bool)>> {
    if !log.is_empty() && !log.ends_with(b"\n") {
        return None;
    }
    let mut lines = Vec::new();
    let mut prev = GENESIS.to_owned();
    for (i, line) in log.split_inclusive(|&b| b == b'\n').enumerate() {
        let text = std::str::from_utf8(&line[..line.len() - 1]).ok()?;
        let (body, hash) = text.rsplit_once(",\"hash\":\"")?;
        let hash = hash.strip_suffix("\"}")?;
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if hash.len() != 64
            || !hash.bytes().all(hex)
            || sha256_hex(format!("{body}}}").as_bytes()) != hash
        {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&format!("{body}}}")).ok()?;
        if v.get("seq")?.as_u64()? != i as u64 + 1 || v.get("prev")?.as_str()? != prev {
            return None;
        }
        let op = v
            .get("op")
            .and_then(|o| o.as_str())
            .unwrap_or("")
            .to_owned();
        let failed = v.get("outcome").and_then(|o| o.as_str()) == Some("failed");
        prev = hash.to_owned();
        lines.push((prev.clone(), op == "checkpoint", op, failed));
    }
    let has_checkpoint = lines.iter().any(|l| l.1);
    (!has_checkpoint || lines.last().is_some_and(|l| l.1)).then_some(lines)
}

/// The summary must count exactly what `lines` holds.
fn check_counts(s: &LogSummary, lines: &[(String, bool, String, bool)]) {
    let mut ops = BTreeMap::new();
    for l in lines.iter().filter(|l| !l.1) {
        *ops.entry(l.2.clone()).or_insert(0u64) += 1;
    }
    let checkpoints = lines.iter().filter(|l| l.1).count() as u64;
    assert_eq!(s.lines, lines.len() as u64);
    assert_eq!(s.checkpoints, checkpoints);
    assert_eq!(s.events, s.lines - checkpoints);
    assert_eq!(
        s.failed,
        lines.iter().filter(|l| !l.1 && l.3).count() as u64
    );
    assert_eq!(s.operations, ops);
    assert_eq!(s.last_seq, s.lines);
    assert_eq!(s.last_hash, lines.last().map_or(GENESIS, |l| &l.0));
    assert_eq!(s.signed_by.is_some(), checkpoints > 0 || s.key_pinned);
}

/// Byte lengths of the sample's prefixes that verify: after each checkpoint, and (without
/// the key) every cut before the first checkpoint.
fn allowed_cuts(f: &Fixture, pinned: bool) -> Vec<usize> {
    let lines = chained(&f.log).expect("the sample log is chained");
    let mut cuts = if pinned { vec![] } else { vec![0] };
    let (mut end, mut seen_checkpoint) = (0, false);
    for (line, info) in f.log.split_inclusive(|&b| b == b'\n').zip(&lines) {
        end += line.len();
        seen_checkpoint |= info.1;
        if info.1 || (!pinned && !seen_checkpoint) {
            cuts.push(end);
        }
    }
    cuts
}

fn edit(log: &[u8], instructions: &[u8]) -> Vec<u8> {
    let mut m = log.to_vec();
    for ins in instructions.chunks_exact(4) {
        let pos = usize::from(u16::from_be_bytes([ins[1], ins[2]]));
        let value = ins[3];
        let mut lines: Vec<Vec<u8>> = m
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        match ins[0] % 6 {
            0 if !m.is_empty() => {
                let at = pos % m.len();
                m[at] ^= value;
            }
            1 if !m.is_empty() => {
                let at = pos % m.len();
                m[at] = value;
            }
            2 => m.truncate(pos % (m.len() + 1)),
            3 => {
                let at = pos % (m.len() + 1);
                m.insert(at, value);
            }
            4 if !lines.is_empty() => {
                lines.remove(pos % lines.len());
                m = lines.concat();
            }
            5 if !lines.is_empty() => {
                let n = lines.len();
                lines.swap(usize::from(ins[1]) % n, usize::from(ins[2]) % n);
                m = lines.concat();
            }
            _ => {}
        }
    }
    m
}

/// Event fields from the input, one line each, chained and hashed as the sink does.
fn seal(fields: &[u8]) -> Vec<u8> {
    let mut log = String::new();
    let mut prev = GENESIS.to_owned();
    for (i, f) in fields.split(|&b| b == b'\n').enumerate() {
        let f = String::from_utf8_lossy(f);
        let body = format!("{{\"seq\":{},{f},\"prev\":\"{prev}\"}}", i + 1);
        prev = sha256_hex(body.as_bytes());
        log.push_str(&format!(
            "{},\"hash\":\"{prev}\"}}\n",
            &body[..body.len() - 1]
        ));
    }
    log.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let provider = default_provider();
    let mode = selector & 3;
    let pinned = mode == 2 || (mode == 0 && selector & 4 != 0);
    let log = match mode {
        0 => rest.to_vec(),
        1 => seal(rest),
        _ => edit(&f.log, rest),
    };
    let result = verify_log(&log[..], pinned.then_some(&f.key), provider);
    if let Err(e) = &result {
        let VerifyError::Broken { line, .. } = e else {
            panic!("reading from memory failed: {e}");
        };
        assert!(*line <= log.iter().filter(|&&b| b == b'\n').count() as u64 + 1);
    }
    let independent = chained(&log);
    if let Ok(summary) = &result {
        assert_eq!(summary.key_pinned, pinned);
        let lines = independent
            .as_ref()
            .unwrap_or_else(|| panic!("a log that is not chained verified: {log:02x?}"));
        check_counts(summary, lines);
    }
    if mode == 1 && independent.as_ref().is_some_and(|l| l.iter().all(|l| !l.1)) {
        assert!(
            result.is_ok(),
            "a chained log without checkpoints failed: {result:?}"
        );
    }
    if pinned || mode >= 2 {
        let allowed = allowed_cuts(f, pinned)
            .into_iter()
            .any(|cut| log[..] == f.log[..cut]);
        assert_eq!(
            result.is_ok(),
            allowed,
            "edited log: {result:?}\n{}",
            String::from_utf8_lossy(&log)
        );
        if let Ok(summary) = &result {
            assert_eq!(
                summary.signed_by,
                Some(f.key.fingerprint()).filter(|_| summary.checkpoints > 0 || pinned)
            );
        }
    }
});
