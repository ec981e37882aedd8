//! Streaming sessions, in the shape of the AWS Encryption SDK for C
//! (`process` / `finish` / `is_done`), driving the library's push adapters
//! (`EncryptingPush`, `DecryptingPush`): frames go straight between the caller's buffers
//! where they fit, so a session adds no copy of its own.

use envcrypt::stream::{DecryptingPush, EncryptingPush};

use crate::client::{context_or_empty, decrypt_options, envcrypt_client, envcrypt_context};
use crate::error::{code, envcrypt_result, ENVCRYPT_SESSION_FINISHED};
use crate::handle::{borrow, borrow_mut, bytes, bytes_mut, free, give, non_null, run};

/// A streaming encryption or decryption. Not thread-safe: one thread at a time.
pub struct envcrypt_session {
    mode: Mode,
}

enum Mode {
    Encrypt(Box<EncryptingPush>),
    Decrypt(Box<DecryptingPush>),
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
        let mode = Mode::Encrypt(Box::new(EncryptingPush::new(encryptor)));
        unsafe { give(out, envcrypt_session { mode }) };
        Ok(())
    })
}

/// Starts decrypting one message; `expected` (NULL: no check) pairs must be in its context.
///
/// A frame's plaintext is written only after its tag verified, the final frame's only by
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
        let mode = Mode::Decrypt(Box::new(DecryptingPush::new(client, &options)));
        unsafe { give(out, envcrypt_session { mode }) };
        Ok(())
    })
}

impl envcrypt_session {
    fn process(&mut self, out: &mut [u8], input: &[u8]) -> Result<(usize, usize), envcrypt::Error> {
        let step = match &mut self.mode {
            Mode::Encrypt(push) => push.push(input, out)?,
            Mode::Decrypt(push) => push.push(input, out)?,
            Mode::Failed => return Err(envcrypt::ConfigError::StreamFinished.into()),
        };
        Ok((step.written, step.consumed))
    }

    fn finish(&mut self, out: &mut [u8]) -> Result<usize, envcrypt::Error> {
        match &mut self.mode {
            Mode::Encrypt(push) => push.finish(out),
            Mode::Decrypt(push) => push.finish(out),
            Mode::Failed => Err(envcrypt::ConfigError::StreamFinished.into()),
        }
    }

    fn is_done(&self) -> bool {
        match &self.mode {
            Mode::Encrypt(push) => push.is_done(),
            Mode::Decrypt(push) => push.is_done(),
            Mode::Failed => false,
        }
    }
}

/// The code of a session error: a call on a finished or failed session is
/// `ENVCRYPT_SESSION_FINISHED`; anything else fails the session.
fn session_error(session: &mut envcrypt_session, e: envcrypt::Error) -> envcrypt_result {
    if matches!(
        e,
        envcrypt::Error::Config(envcrypt::ConfigError::StreamFinished)
    ) {
        return ENVCRYPT_SESSION_FINISHED;
    }
    session.mode = Mode::Failed;
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
            Err(e) => Err(session_error(session, e)),
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
            Err(e) => Err(session_error(session, e)),
        }
    })
}

/// True once the message is complete and all its output was written (false for NULL).
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_is_done(session: *const envcrypt_session) -> bool {
    let mut done = false;
    crate::panic::guard(|| {
        if let Ok(s) = unsafe { borrow(session) } {
            done = s.is_done();
        }
        crate::error::ENVCRYPT_OK
    });
    done
}

/// Frees a session (NULL: nothing); buffered plaintext is wiped.
#[no_mangle]
pub unsafe extern "C" fn envcrypt_session_free(session: *mut envcrypt_session) {
    crate::panic::guard(|| {
        unsafe { free(session) };
        crate::error::ENVCRYPT_OK
    });
}
