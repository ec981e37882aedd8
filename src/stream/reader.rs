//! A decrypting `Read` adapter.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;

use super::header::read_some;
use crate::client::{Client, DecryptOptions, OpenedMessage};
use crate::engine::{DecryptConfig, Decryptor, FrameLayout, Next};
use crate::error::{ConfigError, Error, FormatError};
use crate::format::Header;
use crate::pipeline::spill::Spill;
use crate::pipeline::PipelineOptions;
use crate::policy::ReleasePolicy;

const READ_CHUNK: usize = 256 * 1024;

/// Decrypts a message read from `inner`.
///
/// Unsigned messages: each frame's plaintext is released only after its tag verified; the
/// last frame's only after the input ended right there. Signed messages: by default
/// ([`ReleasePolicy::Verified`]) the first read decrypts the whole message into an unnamed
/// temporary file and verifies the signature, and reads are served from that file; with
/// [`ReleasePolicy::UnverifiedStream`] frames are released as their tags verify and the
/// last one after the signature.
///
/// ```
/// use std::io::Read;
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
///
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let message = client.encrypt(b"hello", &EncryptionContext::new())?;
/// let mut r = client.decrypt_reader(&message[..], &DecryptOptions::default())?;
/// let mut out = Vec::new();
/// r.read_to_end(&mut out)?;
/// assert_eq!(out, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DecryptingReader<R: Read> {
    inner: R,
    decryptor: Decryptor,
    header: Header,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    plaintext: Range<usize>,
    failed: bool,
    /// Signed message, [`ReleasePolicy::Verified`]: decrypt it whole before the first byte.
    hold: bool,
    /// The verified plaintext of a held message.
    verified: Option<File>,
    config: DecryptConfig,
}

impl<R: Read> DecryptingReader<R> {
    /// Reads the header, gets the data key and authenticates the header.
    pub fn new(client: &Client, mut inner: R, options: &DecryptOptions) -> Result<Self, Error> {
        let OpenedMessage {
            decryptor,
            header,
            header_read,
        } = client.open(&mut inner, options)?;
        let (start, end) = (header_read.header_len, header_read.buf.len());
        let buf = header_read.buf;
        let hold = header.suite.signature().is_some() && options.release == ReleasePolicy::Verified;
        Ok(Self {
            inner,
            decryptor,
            header,
            buf,
            start,
            end,
            plaintext: 0..0,
            failed: false,
            hold,
            verified: None,
            config: client.decrypt_config(),
        })
    }

    /// Decrypts and verifies the rest of the message into a spill file to read from.
    fn verify_whole(&mut self) -> Result<File, Error> {
        let dec = std::mem::replace(&mut self.decryptor, Decryptor::new(self.config));
        let body = io::Cursor::new(&self.buf[self.start..self.end]).chain(&mut self.inner);
        let mut spill = Spill::new()?;
        let pipeline = PipelineOptions::default();
        let release = ReleasePolicy::UnverifiedStream; // into the private spill file
        crate::pipeline::decrypt::run(dec, body, spill.writer(), &pipeline, release)?;
        self.buf = Vec::new();
        (self.start, self.end) = (0, 0);
        Ok(spill.into_reader()?)
    }

    /// The authenticated header: suite, stored context, EDKs, frame length.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads more input behind the unconsumed bytes, growing the buffer to `need` bytes.
    fn fill(&mut self, need: usize) -> Result<usize, Error> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need.max(READ_CHUNK), 0);
        }
        let n = read_some(&mut self.inner, &mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Reads the next unit whole into the buffer and returns its layout; checks that
    /// nothing follows the final one.
    fn next_layout(&mut self) -> Result<FrameLayout, Error> {
        let layout = loop {
            match self.decryptor.next_frame(&self.buf[self.start..self.end])? {
                Next::Unit(layout) => break layout,
                Next::NeedBytes(need) => {
                    if self.fill(need)? == 0 {
                        return Err(FormatError::Truncated.into());
                    }
                }
            }
        };
        if layout.is_final() {
            // Nothing may follow the message: check before releasing the last plaintext.
            if self.end - self.start > layout.total_len() {
                return Err(FormatError::TrailingBytes.into());
            }
            crate::pipeline::decrypt::expect_end(&mut self.inner)?;
        }
        Ok(layout)
    }

    /// Opens the next unit: straight into `out` when it fits (returns the bytes written),
    /// else in place, leaving the plaintext in `self.plaintext` (returns 0).
    fn next_unit(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let layout = self.next_layout()?;
        let total = layout.total_len();
        let unit = self.start..self.start + total;
        self.start += total;
        let n = layout.body_len();
        if out.len() >= n {
            let (prefix, body, footer) = layout.split(&self.buf[unit]);
            self.decryptor
                .open_frame_to(&layout, prefix, body, footer, &mut out[..n])?;
            return Ok(n);
        }
        let range = self
            .decryptor
            .open_frame_in_place(&layout, &mut self.buf[unit.clone()])?;
        self.plaintext = unit.start + range.start..unit.start + range.end;
        Ok(0)
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(Error::from(ConfigError::StreamFinished).into());
        }
        if self.hold {
            if self.verified.is_none() {
                match self.verify_whole() {
                    Ok(file) => self.verified = Some(file),
                    Err(e) => {
                        self.failed = true;
                        return Err(e.into());
                    }
                }
            }
            return self.verified.as_mut().map_or(Ok(0), |f| f.read(out));
        }
        while self.plaintext.is_empty() {
            if self.decryptor.is_done() || out.is_empty() {
                return Ok(0);
            }
            match self.next_unit(out) {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(e) => {
                    self.failed = true;
                    self.buf.fill(0);
                    return Err(e.into());
                }
            }
        }
        let n = out.len().min(self.plaintext.len());
        out[..n].copy_from_slice(&self.buf[self.plaintext.start..self.plaintext.start + n]);
        self.plaintext.start += n;
        Ok(n)
    }
}
