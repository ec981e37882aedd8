//! Key rotation (`Rewrap::stream`) of arbitrary or edited source messages, from one raw AES
//! keyring to another.
//!
//! The first input byte picks a mode (low two bits), a pipeline (bit 2: one thread, or
//! worker threads for every frame) and a sample message (the rest); the second byte picks
//! the source's read chunks; the rest is:
//! - 0: the source as is;
//! - 1: a sample's header (valid, authenticating), then the input;
//! - 2: a sample edited by the input, read as 4-byte instructions `op, pos_hi, pos_lo,
//!   value` (xor, set, truncate, insert);
//! - 3: an unchanged sample written to an output that fails after `pos` bytes (the first
//!   two bytes of the rest), so the sealing side stops first.
//!
//! Checked: no panic; success only for an unchanged sample (both suites, several frame
//! lengths) written whole, and then the output decrypts under the new keys (and not under
//! the old) to the sample's plaintext, under a new message id, with the suite and frame
//! length kept; on failure the partial output never decrypts under the new keys.

#![no_main]

use std::io::{Read, Write};
use std::sync::OnceLock;

use envcrypt::format::{parse_header, HeaderLimits};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::pipeline::PipelineOptions;
use envcrypt::rewrap::Rewrap;
use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};
use libfuzzer_sys::fuzz_target;

struct Sample {
    message: Vec<u8>,
    plaintext: Vec<u8>,
    header_len: usize,
    suite: AlgorithmSuite,
    frame_length: u32,
}

struct Fixture {
    from: Client,
    to: Client,
    samples: Vec<Sample>,
}

fn client(key: u8, suite: AlgorithmSuite, frame_length: u32) -> Client {
    let keyring =
        RawAesKeyring::new("fuzz-ns", &format!("key-{key}"), &[key; 32]).expect("keyring");
    Client::builder()
        .keyring(keyring)
        .suite(suite)
        .frame_length(frame_length)
        .max_frame_length(1 << 16)
        .build()
        .expect("client")
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ctx = EncryptionContext::from_pairs([("purpose", "fuzz"), ("é", "ü")]);
        let limits = HeaderLimits::new(1, u32::MAX);
        let mut samples = Vec::new();
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            for (frame_length, len) in [(16u32, 40usize), (1, 3), (100, 0), (7, 7), (4096, 5000)] {
                let plaintext: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
                let message = client(0x31, suite, frame_length)
                    .encrypt(&plaintext, &ctx)
                    .expect("encrypt");
                let header_len = parse_header(&message, &limits)
                    .expect("header")
                    .expect("complete")
                    .bytes()
                    .len();
                samples.push(Sample {
                    message,
                    plaintext,
                    header_len,
                    suite,
                    frame_length,
                });
            }
        }
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
        Fixture {
            from: client(0x31, suite, 64),
            to: client(0x42, suite, 64),
            samples,
        }
    })
}

fn edit(message: &[u8], instructions: &[u8]) -> Vec<u8> {
    let mut m = message.to_vec();
    for ins in instructions.chunks_exact(4) {
        let pos = usize::from(u16::from_be_bytes([ins[1], ins[2]]));
        let value = ins[3];
        match ins[0] % 4 {
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
            _ => {}
        }
    }
    m
}

/// Feeds the source in chunks of `sizes`, cyclically.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: [usize; 3],
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % 3];
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Keeps what is written, and fails once more than `limit` bytes were asked for.
struct Output {
    bytes: Vec<u8>,
    limit: usize,
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit - self.bytes.len();
        if room == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("disk full"));
        }
        let n = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, chunking, rest @ ..] = data else {
        return;
    };
    let f = fixture();
    let sample = &f.samples[usize::from(selector >> 3) % f.samples.len()];
    let mode = selector & 3;
    let mut limit = usize::MAX;
    let input = match mode {
        0 => rest.to_vec(),
        1 => [&sample.message[..sample.header_len], rest].concat(),
        2 => edit(&sample.message, rest),
        _ => {
            if let [hi, lo, ..] = rest {
                limit = usize::from(u16::from_be_bytes([*hi, *lo]));
            }
            sample.message.clone()
        }
    };
    let pipeline = if selector & 4 == 0 {
        PipelineOptions::single_threaded()
    } else {
        PipelineOptions::default()
            .with_threads(2)
            .with_parallel_min_frame(1)
    };
    let sizes = [
        1 + usize::from(chunking & 7),
        4096,
        1 + usize::from(chunking >> 3),
    ];
    let reader = Chunked {
        data: &input,
        sizes,
        i: 0,
    };
    let mut output = Output {
        bytes: Vec::new(),
        limit,
    };
    let result = Rewrap::new(&f.from, &f.to).stream(reader, &mut output, &pipeline);
    let output = output.bytes;
    let opened = f.to.decrypt(&output, &DecryptOptions::default());
    match result {
        Ok(done) => {
            let original = f
                .samples
                .iter()
                .find(|s| s.message == input)
                .unwrap_or_else(|| panic!("a source that is no sample rewrapped: {input:02x?}"));
            let opened = opened.expect("a successful rewrap does not decrypt under the new keys");
            assert_eq!(opened.plaintext, original.plaintext);
            assert!(output.len() <= limit);
            assert_ne!(done.header.message_id, done.source.message_id);
            assert_eq!(opened.header.message_id, done.header.message_id);
            assert_eq!(done.header.suite, original.suite);
            assert_eq!(done.header.frame_length, original.frame_length);
            assert_eq!(done.stats.bytes_in, input.len() as u64);
            assert_eq!(done.stats.bytes_out, output.len() as u64);
            assert!(f.from.decrypt(&output, &DecryptOptions::default()).is_err());
        }
        Err(e) => assert!(
            opened.is_err(),
            "a failed rewrap ({e}) wrote a complete message ({} bytes)",
            output.len()
        ),
    }
});
