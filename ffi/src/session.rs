//! Streaming sessions, in the shape of the AWS Encryption SDK for C
//! (`process` / `finish` / `is_done`), driving the library's adapters: an
//! `EncryptingWriter` into memory and a `DecryptingPush`.

use std::io::Write;

use envcrypt::stream::{DecryptingPush, EncryptingWriter};
use zeroize::Zeroizing;

use crate::client::{context_or_empty, decrypt_options, envcrypt_client, envcrypt_context};
use crate::error::{code, envcrypt_result, ENVCRYPT_SESSION_FINISHED};
use crate::handle::{borrow, borrow_mut, bytes, bytes_mut, free, give, non_null, run};

/// A streaming encryption or decryption. Not thread-safe: one thread at a time.
pub struct envcrypt_session {
    mode: Mode,
    /// Output made but not yet handed out (at most about one frame).
    pending: Zeroizing<Vec<u8>>,
    /// Bytes of `pending` already handed out.
    handed: usize,
    /// Input bytes taken per step (encrypt: one frame).
    step: usize,
}

enum Mode {
    Encrypt(Option<Box<EncryptingWriter<Vec<u8>>>>),
    Decrypt(Box<DecryptingPush>),
    /// The input ended and the message is complete (what is pending still goes out).
    Finished,
    /// An error happened: every call but free fails.
    Failed,
}

/// Starts encrypting one message with `ctx` (NULL: empty context). Gets the data key from
/// the keyrings now.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_new_encrypt(
    client: *const envcrypt_client,
    ctx: *const envcrypt_context,
    out: *mut *mut envcrypt_session,
) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null()])?;
        let client = &unsafe { borrow(client)? }.client;
        let context = unsafe { context_or_empty(ctx) };
        let encryptor = client.encryptor(&context, None).map_err(|e| code(&e))?;
        let writer = EncryptingWriter::new(encryptor, Vec::new()).map_err(|e| code(&e))?;
        let session = envcrypt_session {
            mode: Mode::Encrypt(Some(Box::new(writer))),
            pending: Zeroizing::new(Vec::new()),
            handed: 0,
            step: client.frame_length() as usize,
        };
        unsafe { give(out, session) };
        Ok(())
    })
}

/// Starts decrypting one message; `expected` (NULL: no check) pairs must be in its context.
///
/// A frame's plaintext is written only after its tag verified, the final frame's only at
/// `envcrypt_session_finish` once the input ended right after it. For signed suites the
/// plaintext written before `envcrypt_session_is_done` is true is NOT yet covered by the
/// signature (a holder of the data key can forge it): keep it private until then, or use
/// `envcrypt_decrypt_file`, which writes nothing under the output's name before the whole
/// message verified.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_new_decrypt(
    client: *const envcrypt_client,
    expected: *const envcrypt_context,
    out: *mut *mut envcrypt_session,
) -> envcrypt_result {
    run(|| {
        non_null(&[out.is_null()])?;
        let client = &unsafe { borrow(client)? }.client;
        let options = unsafe { decrypt_options(expected) };
        let session = envcrypt_session {
            mode: Mode::Decrypt(Box::new(DecryptingPush::new(client, &options))),
            pending: Zeroizing::new(Vec::new()),
            handed: 0,
            step: usize::MAX,
        };
        unsafe { give(out, session) };
        Ok(())
    })
}

impl envcrypt_session {
    /// Moves pending output to `out`; returns the bytes written.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let rest = &self.pending[self.handed..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.handed += n;
        if self.handed == self.pending.len() {
            zeroize::Zeroize::zeroize(&mut *self.pending);
            self.pending.clear();
            self.handed = 0;
        }
        n
    }

    fn has_pending(&self) -> bool {
        self.handed < self.pending.len()
    }

    /// Takes input into the adapter (while nothing is pending); returns the bytes taken.
    fn feed(&mut self, input: &[u8]) -> Result<usize, envcrypt_result> {
        let take = input.len().min(self.step);
        match &mut self.mode {
            Mode::Encrypt(Some(writer)) => {
                let n = writer.write(&input[..take]).map_err(io_code)?;
                self.pending.append(writer.get_mut());
                Ok(n)
            }
            Mode::Decrypt(push) => push.push(input, &mut self.pending).map_err(|e| code(&e)),
            _ => Err(ENVCRYPT_SESSION_FINISHED),
        }
    }

    fn process(&mut self, out: &mut [u8], input: &[u8]) -> Result<(usize, usize), envcrypt_result> {
        if matches!(self.mode, Mode::Finished | Mode::Failed) {
            return Err(ENVCRYPT_SESSION_FINISHED);
        }
        let (mut written, mut read) = (0, 0);
        loop {
            written += self.drain(&mut out[written..]);
            if self.has_pending() || read == input.len() {
                return Ok((written, read));
            }
            let before = (read, self.pending.len());
            read += self.feed(&input[read..])?;
            if (read, self.pending.len()) == before {
                return Ok((written, read)); // The adapter wants nothing more now.
            }
        }
    }

    fn finish(&mut self, out: &mut [u8]) -> Result<usize, envcrypt_result> {
        match std::mem::replace(&mut self.mode, Mode::Finished) {
            Mode::Encrypt(writer) => {
                if let Some(writer) = writer {
                    let mut tail = writer.finish().map_err(|e| code(&e))?;
                    self.pending.append(&mut tail);
                }
            }
            Mode::Decrypt(mut push) => {
                push.finish(&mut self.pending).map_err(|e| code(&e))?;
            }
            Mode::Finished => {}
            Mode::Failed => {
                self.mode = Mode::Failed;
                return Err(ENVCRYPT_SESSION_FINISHED);
            }
        }
        Ok(self.drain(out))
    }

    fn fail(&mut self) {
        self.mode = Mode::Failed;
        zeroize::Zeroize::zeroize(&mut *self.pending);
        self.pending.clear();
        self.handed = 0;
    }
}

/// The library error inside an `io::Error` of the writer, as a code.
fn io_code(e: std::io::Error) -> envcrypt_result {
    let e = match e.into_inner() {
        Some(inner) => match inner.downcast::<envcrypt::Error>() {
            Ok(e) => *e,
            Err(other) => envcrypt::Error::Io(std::io::Error::other(other)),
        },
        None => envcrypt::Error::Internal("the encrypting writer failed"),
    };
    code(&e)
}

/// Takes what it can of the `in_len` bytes at `in` (`*in_read`) and writes what fits of
/// the output into `out` (`*out_written`). Call again with the rest of the input (and with
/// an emptied `out`) until all input is read; then call `envcrypt_session_finish` until
/// `envcrypt_session_is_done`. After an error the session is failed: every call but free
/// returns `ENVCRYPT_SESSION_FINISHED`, and output of this call must be discarded.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_process(
    session: *mut envcrypt_session,
    out: *mut u8,
    out_cap: usize,
    out_written: *mut usize,
    r#in: *const u8,
    in_len: usize,
    in_read: *mut usize,
) -> envcrypt_result {
    run(|| {
        non_null(&[out_written.is_null(), in_read.is_null()])?;
        let session = unsafe { borrow_mut(session)? };
        let out = unsafe { bytes_mut(out, out_cap)? };
        let input = unsafe { bytes(r#in, in_len)? };
        match session.process(out, input) {
            Ok((written, read)) => {
                unsafe { (*out_written, *in_read) = (written, read) };
                Ok(())
            }
            Err(c) => {
                if c != ENVCRYPT_SESSION_FINISHED {
                    session.fail();
                }
                Err(c)
            }
        }
    })
}

/// Ends the input and writes what fits of the rest of the output (`*out_written`). Call
/// until `envcrypt_session_is_done`. On a done session: `ENVCRYPT_OK`, nothing written. A
/// truncated message fails here (`ENVCRYPT_FORMAT`).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_finish(
    session: *mut envcrypt_session,
    out: *mut u8,
    out_cap: usize,
    out_written: *mut usize,
) -> envcrypt_result {
    run(|| {
        non_null(&[out_written.is_null()])?;
        let session = unsafe { borrow_mut(session)? };
        let out = unsafe { bytes_mut(out, out_cap)? };
        match session.finish(out) {
            Ok(written) => {
                unsafe { *out_written = written };
                Ok(())
            }
            Err(c) => {
                session.fail();
                Err(c)
            }
        }
    })
}

/// True once the message is complete and all its output was written (false for NULL).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_is_done(session: *const envcrypt_session) -> bool {
    let mut done = false;
    crate::panic::guard(|| {
        if let Ok(s) = unsafe { borrow(session) } {
            done = matches!(s.mode, Mode::Finished) && !s.has_pending();
        }
        crate::error::ENVCRYPT_OK
    });
    done
}

/// Frees a session (NULL: nothing); pending plaintext is wiped.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_free(session: *mut envcrypt_session) {
    crate::panic::guard(|| {
        unsafe { free(session) };
        crate::error::ENVCRYPT_OK
    });
}
