//! Random access: decrypt a byte range of an unsigned framed message without the rest.
//!
//! Frame `k` of a framed message sits at a computable offset, and each frame is
//! authenticated on its own (its sequence number and the message id are in its AAD), so a
//! viewer can read one slice of a 5 GB image by opening only the frames that hold it.
//! Signed messages cannot be read this way: their signature covers every byte.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use crate::client::{Client, DecryptOptions};
use crate::error::{ConfigError, Error, FormatError};
use crate::format::ContentType;
use crate::pipeline::decrypt::{expect_end, read_unit};

impl Client {
    /// Decrypts plaintext bytes `range` of the message in `input` (an unsigned, framed
    /// message: suite 0x0478), reading only the header and the frames that hold the range.
    /// A range past the end is cut at the end. Every byte returned was authenticated as
    /// part of this message at this position.
    ///
    /// ```
    /// use std::io::Cursor;
    /// use envcrypt::{AlgorithmSuite, Client, DecryptOptions, EncryptionContext};
    /// use envcrypt::keyring::RawAesKeyring;
    ///
    /// let client = Client::builder()
    ///     .keyring(RawAesKeyring::new("ns", "key", &[1; 32])?)
    ///     .suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
    ///     .frame_length(4096)
    ///     .build()?;
    /// let image: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    /// let message = client.encrypt(&image, &EncryptionContext::new())?;
    /// let slice = client.decrypt_range(Cursor::new(&message), 50_000..50_100, &DecryptOptions::default())?;
    /// assert_eq!(slice, &image[50_000..50_100]);
    /// # Ok::<(), envcrypt::Error>(())
    /// ```
    pub fn decrypt_range<R: Read + Seek>(
        &self,
        mut input: R,
        range: Range<u64>,
        options: &DecryptOptions,
    ) -> Result<Vec<u8>, Error> {
        input.seek(SeekFrom::Start(0))?;
        let opened = self.open(&mut input, options)?;
        let header_len = opened.header_len();
        let (mut dec, header) = (opened.decryptor, &opened.header);
        if header.suite.signature().is_some() || header.content_type != ContentType::Framed {
            return Err(ConfigError::RandomAccessUnsupported.into());
        }
        let fl = u64::from(header.frame_length);

        // Where the final frame must start if the input ends where the message does: after
        // `n` regular frames, with `last` (0 ..= frame length) bytes of plaintext. Nothing
        // is served, and nothing sized, before that frame authenticated at that place: its
        // AAD holds its sequence number and length, so it proves `n` and `last`.
        let body = input
            .seek(SeekFrom::End(0))?
            .checked_sub(header_len as u64)
            .ok_or(FormatError::Truncated)?; // the input shrank since its header was read
        let (final_sequence, _) = dec.final_frame_position(body)?;
        let mut buf = Vec::new();
        let offset = dec.seek_frame(final_sequence)?;
        input.seek(SeekFrom::Start(header_len as u64 + offset))?;
        let layout = read_unit(&mut input, &mut dec, &mut buf)?;
        if !layout.is_final() {
            // A regular frame where the final one must be: the message was cut after it.
            return Err(FormatError::Truncated.into());
        }
        expect_end(&mut input)?;
        let (_, sealed, _) = layout.split_mut(&mut buf);
        dec.frame_opener()?.open(&layout, sealed)?;
        let final_plaintext = sealed[..layout.body_len()].to_vec();
        sealed.fill(0);

        let n = u64::from(final_sequence - 1);
        let len = n * fl + final_plaintext.len() as u64;
        let (start, end) = (range.start.min(len), range.end.min(len));
        if start >= end {
            return Ok(Vec::new());
        }
        let first = u32::try_from(start / fl + 1).map_err(|_| FormatError::Truncated)?;
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut pos = u64::from(first - 1) * fl;
        if first < final_sequence {
            let offset = dec.seek_frame(first)?;
            input.seek(SeekFrom::Start(header_len as u64 + offset))?;
        }
        while pos < end {
            let plain = if pos == n * fl {
                &final_plaintext[..]
            } else {
                let layout = read_unit(&mut input, &mut dec, &mut buf)?;
                if layout.is_final() {
                    return Err(FormatError::Truncated.into());
                }
                let plain = dec.open_frame_in_place(&layout, &mut buf[..layout.total_len()])?;
                &buf[plain]
            };
            let from = ((start.max(pos) - pos) as usize).min(plain.len());
            let to = ((end - pos) as usize).min(plain.len());
            out.extend_from_slice(&plain[from..to]);
            pos += plain.len() as u64;
            if plain.is_empty() {
                break;
            }
        }
        buf.fill(0);
        Ok(out)
    }
}
