//! Property tests: random payloads, contexts, frame lengths and I/O chunkings round-trip
//! through every encrypt and decrypt path; the parsers and the decryptors answer `Ok` or a
//! typed error on any input, never panic, and never accept a changed message.
//!
//! Case counts are chosen so that the file runs in well under 30 s with `--release`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::OnceLock;

use envcrypt::format::{
    parse_footer, parse_frame_header, parse_header, write_header_v2, ContentType, HeaderLimits,
    HeaderV2Fields, MessageVersion,
};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{
    AlgorithmSuite, Client, CommitmentPolicy, ContextError, DecryptOptions, EncryptionContext,
    Error, FormatError,
};
use proptest::prelude::*;

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
];
const MAX_PAYLOAD: usize = 200 * 1024;
/// Bounds the number of frames per message (frame length 1 means one frame per byte).
const MAX_FRAMES: usize = 3000;

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("prop-ns", "prop-key", &[0x5c; 32]).unwrap()
}

fn client(suite: AlgorithmSuite, frame_length: u32, required: &BTreeSet<String>) -> Client {
    Client::builder()
        .keyring(keyring())
        .suite(suite)
        .frame_length(frame_length)
        .required_context_keys(required.iter().cloned())
        .build()
        .unwrap()
}

/// Deterministic bytes from a seed (cheaper than a strategy per byte).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A reader that hands out input in the given chunk sizes, cyclically.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn io_error(e: std::io::Error) -> Error {
    let kind = e.kind();
    match e.into_inner().map(|i| i.downcast::<Error>()) {
        Some(Ok(e)) => *e,
        _ => panic!("reader returned a bare io error of kind {kind:?}"),
    }
}

/// Streams `msg` through the reader with these input and output chunk sizes.
fn stream_decrypt(
    client: &Client,
    msg: &[u8],
    options: &DecryptOptions,
    in_sizes: &[usize],
    out_sizes: &[usize],
) -> (Vec<u8>, Result<(), Error>) {
    let inner = Chunked {
        data: msg,
        sizes: in_sizes.to_vec(),
        i: 0,
    };
    let mut out = Vec::new();
    let mut r = match client.decrypt_reader(inner, options) {
        Ok(r) => r,
        Err(e) => return (out, Err(e)),
    };
    let mut buf = vec![0u8; out_sizes.iter().copied().max().unwrap_or(1)];
    for i in 0.. {
        let want = out_sizes[i % out_sizes.len()];
        match r.read(&mut buf[..want]) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(io_error(e))),
        }
    }
    unreachable!()
}

fn context_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop::collection::vec(any::<char>(), 1..12)
        .prop_map(String::from_iter)
        .prop_filter("reserved key", |k| !k.starts_with("aws-crypto-"));
    let value = prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter);
    prop::collection::btree_map(key, value, 0..8)
}

/// Frame length 1 ..= 70,000 (biased to small ones), then a payload length that keeps the
/// frame count bounded.
fn layout_strategy() -> impl Strategy<Value = (u32, usize)> {
    prop_oneof![1u32..64, 64u32..4096, 4096u32..70_000,].prop_flat_map(|fl| {
        let max = MAX_PAYLOAD.min(fl as usize * MAX_FRAMES);
        let near = move |k: usize| (k * fl as usize).min(max);
        (
            Just(fl),
            prop_oneof![
                3 => 0..=max,
                // Lengths at and around frame boundaries.
                1 => (0usize..4).prop_map(near),
                1 => (1usize..4).prop_map(move |k| near(k) - 1),
                1 => (0usize..4).prop_map(move |k| (near(k) + 1).min(max)),
            ],
        )
    })
}

#[derive(Debug, Clone)]
struct RoundTrip {
    suite: AlgorithmSuite,
    frame_length: u32,
    payload: Vec<u8>,
    context: BTreeMap<String, String>,
    required: BTreeSet<String>,
    write_sizes: Vec<usize>,
    read_in_sizes: Vec<usize>,
    read_out_sizes: Vec<usize>,
}

fn round_trip_strategy() -> impl Strategy<Value = RoundTrip> {
    (
        prop::sample::select(SUITES.to_vec()),
        layout_strategy(),
        any::<u64>(),
        context_strategy(),
        any::<u8>(),
        prop::collection::vec(1usize..100_000, 1..6),
        prop::collection::vec(1usize..100_000, 1..6),
        prop::collection::vec(1usize..100_000, 1..6),
    )
        .prop_map(
            |(suite, (frame_length, len), seed, context, mask, w, ri, ro)| {
                // Some pairs become required pairs (kept out of the stored header).
                let required = context
                    .keys()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, k)| k.clone())
                    .collect();
                RoundTrip {
                    suite,
                    frame_length,
                    payload: bytes(len, seed),
                    context,
                    required,
                    write_sizes: w,
                    read_in_sizes: ri,
                    read_out_sizes: ro,
                }
            },
        )
}

/// Full regular frames, then a final frame shorter than the frame length (empty when the
/// payload fills its last frame).
fn expected_unsigned_len(header: usize, payload: usize, fl: usize) -> usize {
    let regular = payload / fl;
    let last = payload - regular * fl;
    header + regular * (4 + 12 + fl + 16) + (4 + 4 + 12 + 4 + last + 16)
}

fn check_round_trip(t: &RoundTrip) -> Result<(), TestCaseError> {
    let client = client(t.suite, t.frame_length, &t.required);
    let ctx = EncryptionContext::from_pairs(t.context.clone());
    let options = DecryptOptions::default().with_required_context(
        t.context
            .iter()
            .filter(|(k, _)| t.required.contains(*k))
            .collect(),
    );
    let signed = t.suite.signature().is_some();

    // One-shot encrypt.
    let msg = client.encrypt(&t.payload, &ctx).unwrap();
    // Streaming encrypt with random write sizes.
    let mut w = client.encrypt_writer(Vec::new(), &ctx).unwrap();
    let mut rest = &t.payload[..];
    let mut i = 0;
    while !rest.is_empty() {
        let n = t.write_sizes[i % t.write_sizes.len()].min(rest.len());
        w.write_all(&rest[..n]).unwrap();
        rest = &rest[n..];
        i += 1;
    }
    let msg2 = w.finish().unwrap();

    let limits = HeaderLimits::new(1, u32::MAX);
    let header = parse_header(&msg, &limits).unwrap().unwrap();
    prop_assert_eq!(header.header.frame_length, t.frame_length);
    prop_assert_eq!(header.header.suite, t.suite);
    if !signed {
        let expected = expected_unsigned_len(
            header.bytes().len(),
            t.payload.len(),
            t.frame_length as usize,
        );
        prop_assert_eq!(msg.len(), expected);
        prop_assert_eq!(msg2.len(), expected);
    }

    for m in [&msg, &msg2] {
        let d = client.decrypt(m, &options).unwrap();
        prop_assert!(d.plaintext == t.payload, "one-shot plaintext differs");
        let stored = &d.header.encryption_context;
        for (k, v) in &t.context {
            if t.required.contains(k) {
                prop_assert_eq!(stored.get(k), None);
            } else {
                prop_assert_eq!(stored.get(k), Some(v.as_str()));
            }
        }
        let extra = usize::from(signed);
        prop_assert_eq!(stored.len(), t.context.len() - t.required.len() + extra);
        prop_assert_eq!(
            stored.contains_key("aws-crypto-public-key"),
            signed,
            "public key pair"
        );

        let (out, result) =
            stream_decrypt(&client, m, &options, &t.read_in_sizes, &t.read_out_sizes);
        if let Err(e) = result {
            return Err(TestCaseError::fail(format!("reader failed: {e:?}")));
        }
        prop_assert!(out == t.payload, "streamed plaintext differs");
    }

    // Without the required pairs the message does not open.
    if !t.required.is_empty() {
        prop_assert!(client.decrypt(&msg, &DecryptOptions::default()).is_err());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(t in round_trip_strategy()) {
        check_round_trip(&t)?;
    }
}

// ---------------------------------------------------------------------------------------
// Never panic, never accept a change.
// ---------------------------------------------------------------------------------------

struct Sample {
    client: Client,
    payload: Vec<u8>,
    message: Vec<u8>,
}

/// Valid messages to mutate: both suites; several frames; one frame; empty; a
/// multi-EDK-less big-frame one.
fn samples() -> &'static [Sample] {
    static SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut v = Vec::new();
        let ctx = EncryptionContext::from_pairs([("purpose", "fuzz"), ("é", "ü")]);
        for suite in SUITES {
            for (fl, len) in [(16u32, 40usize), (64, 10), (100, 0), (1, 5), (4096, 9000)] {
                let client = client(suite, fl, &BTreeSet::new());
                let payload = bytes(len, u64::from(fl) * 31 + len as u64);
                let message = client.encrypt(&payload, &ctx).unwrap();
                v.push(Sample {
                    client,
                    payload,
                    message,
                });
            }
        }
        v
    })
}

/// A reader that allows version 1 messages too, so the legacy paths are exercised.
fn lenient_client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        Client::builder()
            .keyring(keyring())
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .max_frame_length(1 << 20)
            .build()
            .unwrap()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Xor(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// Copies a range over another place (a frame over a frame, ...).
    Copy(usize, usize, usize),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    // Positions are taken modulo the message length when applied.
    let pos = any::<usize>();
    prop_oneof![
        4 => (pos, 1u8..=255).prop_map(|(p, x)| Mutation::Xor(p, x)),
        2 => (pos, any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        1 => pos.prop_map(Mutation::Truncate),
        1 => (pos, prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (pos, 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (pos, pos, 1usize..64).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

fn apply(msg: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut m = msg.to_vec();
    for mu in mutations {
        let len = m.len().max(1);
        match mu {
            Mutation::Xor(p, x) => {
                if !m.is_empty() {
                    m[p % len] ^= x;
                }
            }
            Mutation::Set(p, b) => {
                if !m.is_empty() {
                    m[p % len] = *b;
                }
            }
            Mutation::Truncate(p) => m.truncate(p % len),
            Mutation::Insert(p, b) => {
                let at = p % (m.len() + 1);
                m.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let at = p % len;
                let end = (at + n).min(m.len());
                m.drain(at.min(end)..end);
            }
            Mutation::Copy(a, b, n) => {
                let (a, b) = (a % len, b % len);
                let n = (*n)
                    .min(m.len().saturating_sub(a))
                    .min(m.len().saturating_sub(b));
                m.copy_within(a..a + n, b);
            }
        }
    }
    m
}

fn all_header_parsers(input: &[u8]) {
    for limits in [
        HeaderLimits::new(u16::MAX, u32::MAX),
        HeaderLimits::new(1, 16),
    ] {
        let _ = parse_header(input, &limits);
    }
    for ct in [ContentType::Framed, ContentType::NonFramed] {
        for fl in [0, 1, 16, u32::MAX] {
            let _ = parse_frame_header(input, ct, fl);
        }
    }
    let _ = parse_footer(input);
}

/// Serializing a parsed version 2 framed header gives back its bytes; every shorter prefix
/// asks for more bytes.
fn header_round_trip(input: &[u8]) -> Result<(), TestCaseError> {
    let limits = HeaderLimits::new(u16::MAX, u32::MAX);
    let Ok(Some(parsed)) = parse_header(input, &limits) else {
        return Ok(());
    };
    let n = parsed.bytes().len();
    prop_assert_eq!(parsed.bytes(), &input[..n]);
    for cut in [0, n / 2, n.saturating_sub(17), n - 1] {
        prop_assert!(
            matches!(parse_header(&input[..cut], &limits), Ok(None)),
            "prefix {} of a {}-byte header",
            cut,
            n
        );
    }
    let h = &parsed.header;
    if h.version != MessageVersion::V2 || h.content_type != ContentType::Framed {
        return Ok(());
    }
    let id: [u8; 32] = h.message_id[..].try_into().unwrap();
    let fields = HeaderV2Fields {
        suite: h.suite,
        message_id: &id,
        stored_context: &h.encryption_context,
        encrypted_data_keys: &h.encrypted_data_keys,
        frame_length: h.frame_length,
        commitment: h.commitment.as_ref().unwrap(),
    };
    // Version 2 layout: version, suite, message id, then the u16-prefixed context section.
    let section = 37..37 + usize::from(u16::from_be_bytes([input[35], input[36]]));
    let canonical = h.encryption_context.to_bytes().ok();
    match write_header_v2(&fields) {
        Ok(mut bytes) => {
            bytes.extend_from_slice(&h.header_tag);
            if canonical.as_deref() == Some(&input[section.clone()]) {
                prop_assert!(bytes == parsed.bytes(), "re-serialized header differs");
            } else {
                // Readers accept contexts in any order (official SDKs wrote unsorted ones);
                // the writer sorts, so only the context section may differ.
                prop_assert_eq!(bytes.len(), n);
                prop_assert!(bytes[..section.start] == input[..section.start]);
                prop_assert!(bytes[section.end..] == input[section.end..n]);
            }
        }
        // The parser accepts an empty context key that the writer refuses (reported).
        Err(FormatError::Context(ContextError::EmptyKey)) => {
            prop_assert!(h.encryption_context.contains_key(""));
        }
        Err(e) => return Err(TestCaseError::fail(format!("cannot re-serialize: {e:?}"))),
    }
    Ok(())
}

/// Decrypts `m` one-shot and streaming with `client`: they must agree, and success is only
/// allowed for the original message.
fn decrypt_both(
    client: &Client,
    m: &[u8],
    original: Option<(&[u8], &[u8])>,
) -> Result<(), TestCaseError> {
    let options = DecryptOptions::default();
    let one = client.decrypt(m, &options);
    let (out, streamed) = stream_decrypt(client, m, &options, &[1000, 1, 333], &[4096, 7]);
    match (&one, &streamed) {
        (Ok(d), Ok(())) => {
            prop_assert!(out == d.plaintext, "reader and one-shot plaintexts differ");
            match original {
                Some((msg, pt)) => {
                    prop_assert!(m == msg, "a changed message decrypted");
                    prop_assert!(d.plaintext == pt);
                }
                None => {
                    return Err(TestCaseError::fail("random bytes decrypted"));
                }
            }
        }
        (Err(_), Err(_)) => {
            if let Some((_, pt)) = original {
                prop_assert!(out.len() <= pt.len() && out[..] == pt[..out.len()]);
            }
        }
        _ => {
            return Err(TestCaseError::fail(format!(
                "one-shot {:?} but reader {:?}",
                one.as_ref().map(|d| d.plaintext.len()),
                streamed
            )))
        }
    }
    Ok(())
}

fn header_prefix_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec![0x02, 0x04, 0x78]),
        Just(vec![0x02, 0x05, 0x78]),
        Just(vec![0x01, 0x80, 0x01, 0x78]),
        Just(vec![0x01, 0x80, 0x03, 0x78]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn parsers_never_panic_on_random_bytes(
        prefix in header_prefix_strategy(),
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let input = [prefix, tail].concat();
        all_header_parsers(&input);
        header_round_trip(&input)?;
    }

    #[test]
    fn parsers_never_panic_on_mutated_headers(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation_strategy(), 1..4),
    ) {
        let s = which.get(samples());
        let m = apply(&s.message, &mutations);
        all_header_parsers(&m);
        header_round_trip(&m)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6000))]

    #[test]
    fn decrypt_never_panics_on_random_bytes(
        prefix in header_prefix_strategy(),
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let input = [prefix, tail].concat();
        decrypt_both(&samples()[0].client, &input, None)?;
        decrypt_both(lenient_client(), &input, None)?;
    }

    #[test]
    fn decrypt_never_panics_after_a_valid_header(
        which in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        // A header that authenticates, followed by garbage: exercises the body parsers.
        let s = which.get(samples());
        let limits = HeaderLimits::new(1, u32::MAX);
        let h = parse_header(&s.message, &limits).unwrap().unwrap().bytes().len();
        let input = [&s.message[..h], &tail[..]].concat();
        decrypt_both(&s.client, &input, None)?;
    }

    #[test]
    fn mutated_messages_are_rejected_without_panic(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation_strategy(), 1..4),
    ) {
        let s = which.get(samples());
        let m = apply(&s.message, &mutations);
        decrypt_both(&s.client, &m, Some((&s.message, &s.payload)))?;
    }
}
