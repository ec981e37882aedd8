//! Full decryption of arbitrary bytes, one-shot and streaming, with a fixed raw AES keyring.
//!
//! The first input byte picks a mode (low two bits) and a sample message (the rest):
//! - 0: the input as is, default policy;
//! - 1: the input as is, version 1 messages allowed (legacy suites and non-framed bodies);
//! - 2: a valid, authenticating header of a sample message, then the input (body parsers);
//! - 3: a sample message edited by the input, read as 4-byte instructions
//!   `op, pos_hi, pos_lo, value` (xor, set, truncate, insert).
//!
//! Checked: no panic; both paths agree; success only for an unchanged sample message, with
//! its plaintext; on failure the reader released at most a prefix of the true plaintext.

#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use envcrypt::format::{parse_header, HeaderLimits};
use envcrypt::keyring::RawAesKeyring;
use envcrypt::{AlgorithmSuite, Client, CommitmentPolicy, DecryptOptions, EncryptionContext};
use libfuzzer_sys::fuzz_target;

struct Sample {
    message: Vec<u8>,
    plaintext: Vec<u8>,
    header_len: usize,
}

struct Fixture {
    strict: Client,
    lenient: Client,
    samples: Vec<Sample>,
}

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("fuzz-ns", "fuzz-key", &[0x24; 32]).expect("keyring")
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Bounded frame lengths keep the reader's buffer (and each run) small.
        let strict = Client::builder()
            .keyring(keyring())
            .max_frame_length(1 << 16)
            .build()
            .expect("client");
        let lenient = Client::builder()
            .keyring(keyring())
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .max_frame_length(1 << 16)
            .build()
            .expect("client");
        let ctx = EncryptionContext::from_pairs([("purpose", "fuzz"), ("é", "ü")]);
        let limits = HeaderLimits::new(1, u32::MAX);
        let mut samples = Vec::new();
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            for (fl, len) in [(16u32, 40usize), (1, 3), (100, 0), (7, 7)] {
                let writer = Client::builder()
                    .keyring(keyring())
                    .suite(suite)
                    .frame_length(fl)
                    .build()
                    .expect("client");
                let plaintext: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
                let message = writer.encrypt(&plaintext, &ctx).expect("encrypt");
                let header_len = parse_header(&message, &limits)
                    .expect("header")
                    .expect("complete")
                    .bytes()
                    .len();
                samples.push(Sample {
                    message,
                    plaintext,
                    header_len,
                });
            }
        }
        Fixture {
            strict,
            lenient,
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

/// Feeds input in chunks of 1, 37 and 4096 bytes, cyclically.
struct Chunked<'a> {
    data: &'a [u8],
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = [1, 37, 4096][self.i % 3];
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn stream(client: &Client, input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let reader = client.decrypt_reader(Chunked { data: input, i: 0 }, &DecryptOptions::default());
    match reader {
        Err(_) => (out, false),
        Ok(mut r) => {
            let ok = r.read_to_end(&mut out).is_ok();
            (out, ok)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let sample = &f.samples[usize::from(selector >> 2) % f.samples.len()];
    let mode = selector & 3;
    let input = match mode {
        0 | 1 => rest.to_vec(),
        2 => [&sample.message[..sample.header_len], rest].concat(),
        _ => edit(&sample.message, rest),
    };
    let client = if mode == 1 { &f.lenient } else { &f.strict };

    let one_shot = client.decrypt(&input, &DecryptOptions::default());
    let (streamed, stream_ok) = stream(client, &input);

    match (&one_shot, stream_ok) {
        (Ok(d), true) => {
            let original = f
                .samples
                .iter()
                .find(|s| s.message == input)
                .unwrap_or_else(|| panic!("a message that is no sample decrypted: {input:02x?}"));
            assert_eq!(d.plaintext, original.plaintext);
            assert_eq!(streamed, original.plaintext);
        }
        (Err(_), false) => {
            // Released plaintext can only be verified frames of the sample.
            let pt: &[u8] = if mode == 3 { &sample.plaintext } else { &[] };
            assert!(
                streamed.len() <= pt.len() && streamed[..] == pt[..streamed.len()],
                "reader released {} unverified bytes",
                streamed.len()
            );
        }
        (one, stream_ok) => panic!(
            "one-shot and reader disagree: one-shot {:?}, reader ok = {stream_ok}",
            one.as_ref().map(|d| d.plaintext.len())
        ),
    }
});
