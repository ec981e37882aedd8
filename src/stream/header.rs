//! Reading a message's header from a stream: the one loop every adapter uses, sync and
//! async. The decryptor parses; this only reads until it has what the parser needs.

use std::io::{self, Read};

use crate::engine::Decryptor;
use crate::error::{Error, FormatError};

/// Bytes asked for per read while looking for the end of the header.
const HEADER_READ: usize = 16 * 1024;

/// A header read from a stream: the bytes read so far, the header at their front.
pub(crate) struct HeaderRead {
    /// Everything read: the header, then the first bytes of the body.
    pub(crate) buf: Vec<u8>,
    /// Length of the header.
    pub(crate) header_len: usize,
}

impl HeaderRead {
    /// The body bytes read along with the header.
    pub(crate) fn body_start(&self) -> &[u8] {
        &self.buf[self.header_len..]
    }
}

/// Grows `buf` when it is full (the decryptor's `max_header_length` bounds how far).
fn room(buf: &mut Vec<u8>, end: usize) {
    if end == buf.len() {
        buf.resize((buf.len() * 2).max(HEADER_READ), 0);
    }
}

/// Reads from `input` until `decryptor` has parsed the header.
pub(crate) fn read_header<R: Read>(
    decryptor: &mut Decryptor,
    input: &mut R,
) -> Result<HeaderRead, Error> {
    let (mut buf, mut end) = (vec![0u8; HEADER_READ], 0);
    loop {
        if let Some(header_len) = decryptor.parse_header(&buf[..end])? {
            buf.truncate(end);
            return Ok(HeaderRead { buf, header_len });
        }
        room(&mut buf, end);
        match read_some(input, &mut buf[end..])? {
            0 => return Err(FormatError::Truncated.into()),
            n => end += n,
        }
    }
}

/// [`read_header`] from an `AsyncRead`.
#[cfg(feature = "tokio")]
pub(crate) async fn read_header_async<R: tokio::io::AsyncRead + Unpin>(
    decryptor: &mut Decryptor,
    input: &mut R,
) -> Result<HeaderRead, Error> {
    use tokio::io::AsyncReadExt;
    let (mut buf, mut end) = (vec![0u8; HEADER_READ], 0);
    loop {
        if let Some(header_len) = decryptor.parse_header(&buf[..end])? {
            buf.truncate(end);
            return Ok(HeaderRead { buf, header_len });
        }
        room(&mut buf, end);
        match input.read(&mut buf[end..]).await? {
            0 => return Err(FormatError::Truncated.into()),
            n => end += n,
        }
    }
}

/// One `read`, retried when interrupted.
pub(crate) fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
