//! An encrypting `Write` adapter.

use std::io::{self, Write};

use crate::engine::{Encryptor, FrameSlots};
use crate::error::{ConfigError, Error};

/// Encrypts everything written to it into one message on `inner`.
///
/// [`finish`](Self::finish) is mandatory: it writes the final frame and the signature.
/// A writer dropped without it leaves a truncated message, which every reader rejects.
///
/// ```
/// use std::io::Write;
/// use envcrypt::{Client, EncryptionContext, keyring::RawAesKeyring};
///
/// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
/// let mut w = client.encrypt_writer(Vec::new(), &EncryptionContext::new())?;
/// w.write_all(b"hello")?;
/// let message: Vec<u8> = w.finish()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EncryptingWriter<W: Write> {
    inner: W,
    encryptor: Encryptor,
    buf: Vec<u8>,
    filled: usize,
    failed: bool,
}

impl<W: Write> EncryptingWriter<W> {
    /// Writes the header to `inner` and returns the writer.
    pub fn new(encryptor: Encryptor, mut inner: W) -> Result<Self, Error> {
        inner.write_all(encryptor.header())?;
        let buf = encryptor.slots().buffer();
        Ok(Self {
            inner,
            encryptor,
            buf,
            filled: 0,
            failed: false,
        })
    }

    fn seal_full_frame(&mut self) -> Result<(), Error> {
        let slots = self.encryptor.slots();
        let frame = &mut self.buf[slots.frame(false, slots.frame_length())];
        self.encryptor.seal_frame(frame)?;
        self.inner.write_all(frame)?;
        self.filled = 0;
        Ok(())
    }

    /// Writes the final frame and footer, flushes, and returns the inner writer.
    pub fn finish(mut self) -> Result<W, Error> {
        if self.failed {
            return Err(ConfigError::StreamFinished.into());
        }
        let frame = &mut self.buf[self.encryptor.slots().frame(true, self.filled)];
        let footer = self.encryptor.seal_final_frame(frame)?;
        self.inner.write_all(frame)?;
        self.inner.write_all(&footer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(Error::from(ConfigError::StreamFinished).into());
        }
        let written = data.len();
        let fl = self.encryptor.frame_length();
        // Whole frames are sealed straight from the caller's slice (a plaintext that fills
        // its last frame ends with an empty final frame).
        while self.filled == 0 && data.len() >= fl {
            let (frame_plaintext, rest) = data.split_at(fl);
            let frame = &mut self.buf[self.encryptor.slots().frame(false, fl)];
            let sealed = self
                .encryptor
                .seal_frame_from(frame_plaintext, frame)
                .and_then(|()| Ok(self.inner.write_all(frame)?));
            if let Err(e) = sealed {
                self.failed = true;
                return Err(e.into());
            }
            data = rest;
        }
        while !data.is_empty() {
            let n = data.len().min(fl - self.filled);
            let at = FrameSlots::PLAINTEXT_AT + self.filled;
            self.buf[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == fl {
                // A full frame is always a regular one.
                if let Err(e) = self.seal_full_frame() {
                    self.failed = true;
                    return Err(e.into());
                }
            }
        }
        Ok(written)
    }

    /// Flushes the inner writer. Buffered plaintext stays until its frame is full or
    /// [`finish`](EncryptingWriter::finish) is called.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
