//! What the library's log events show of keys and messages: ids and names, never secrets.
//!
//! Events are `tracing` events under the `envcrypt` target; the library installs no
//! subscriber. An encrypted data key is shown as `PROVIDER_ID/KEY` (the raw AES trailer of
//! tag length, IV length and IV cut off), a message id as lowercase hex, a context as its
//! keys only (values may be sensitive and are never logged).

use std::fmt;

use tracing::{debug, info, Level};

use crate::format::{parse_header, EncryptedDataKey, EncryptionContext, Header, HeaderLimits};
use crate::Error;

/// The target of the per-message events (the client's operations).
const TARGET: &str = "envcrypt::client";

/// Where a version 2 header keeps its message id (after the version byte and suite id).
const V2_MESSAGE_ID: std::ops::Range<usize> = 3..35;

/// The message id of a header this library wrote (version 2), or nothing.
pub(crate) fn written_message_id(header: &[u8]) -> [u8; 32] {
    header
        .get(V2_MESSAGE_ID)
        .and_then(|id| id.try_into().ok())
        .unwrap_or([0; 32])
}

/// Info event: `op` (`encrypt`, `decrypt`) has a header: message id, suite, frame length,
/// EDKs and context keys.
pub(crate) fn started(op: &'static str, h: &Header) {
    info!(
        target: TARGET,
        op,
        message_id = %Hex(&h.message_id),
        suite = %format_args!("{:#06x}", h.suite.id()),
        frame_length = h.frame_length,
        edks = %Edks(&h.encrypted_data_keys),
        context_keys = %ContextKeys(&h.encryption_context),
        "{op}: message header ready"
    );
}

/// [`started`] for a header this library just wrote (parsed again only when the event is
/// wanted).
pub(crate) fn encrypt_started(header: &[u8]) {
    if !tracing::enabled!(target: TARGET, Level::INFO) {
        return;
    }
    if let Ok(Some(parsed)) = parse_header(header, &HeaderLimits::new(u16::MAX, u32::MAX)) {
        started("encrypt", &parsed.header);
    }
}

/// Info event at the end of a message (`bytes_in` read, `bytes_out` written), or a debug
/// event naming the error.
pub(crate) fn finished<T>(
    op: &'static str,
    message_id: &[u8],
    result: &Result<T, Error>,
    bytes: impl FnOnce(&T) -> (u64, u64),
) {
    match result {
        Ok(done) => {
            let (bytes_in, bytes_out) = bytes(done);
            info!(target: TARGET, op, message_id = %Hex(message_id), bytes_in, bytes_out, "{op}: done");
        }
        Err(e) => {
            debug!(target: TARGET, op, message_id = %Hex(message_id), error = %e, "{op}: failed")
        }
    }
}

/// A list of EDKs as `ns/key, aws-kms/arn:...`.
pub(crate) struct Edks<'a>(pub &'a [EncryptedDataKey]);

impl fmt::Display for Edks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, edk) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}/{}", edk.provider_id, edk.key_name())?;
        }
        Ok(())
    }
}

/// Bytes as lowercase hex (message ids).
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The keys of an encryption context, without their values.
pub(crate) struct ContextKeys<'a>(pub &'a EncryptionContext);

impl fmt::Display for ContextKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, _)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(k)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edk(id: &str, info: &[u8]) -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: id.into(),
            provider_info: info.to_vec(),
            ciphertext: vec![9; 48],
        }
    }

    #[test]
    fn edks_show_ids_and_names_only() {
        let mut aes = b"key-1".to_vec();
        aes.extend_from_slice(&[0, 0, 0, 128, 0, 0, 0, 12]);
        aes.extend_from_slice(&[0xAB; 12]);
        let list = [edk("hosp", &aes), edk("aws-kms", b"arn:aws:kms:x")];
        assert_eq!(Edks(&list).to_string(), "hosp/key-1, aws-kms/arn:aws:kms:x");
        assert_eq!(Hex(&[0, 0xff, 0x1a]).to_string(), "00ff1a");
    }

    #[test]
    fn context_keys_leave_values_out() {
        let mut c = EncryptionContext::new();
        c.insert("purpose", "secret-value");
        c.insert("a", "b");
        assert_eq!(ContextKeys(&c).to_string(), "a,purpose");
    }
}
