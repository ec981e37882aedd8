//! Key rotation: move a message to new keys in one verified pass, under a fresh data key.
//!
//! A rewrap opens the source message with one client's keyrings and writes a new message
//! whose data key the other client's keyrings wrap. The new message has a **fresh data key,
//! a new message id and (signed suites) a fresh signing key**, and every frame is opened
//! and sealed again. It never keeps the old data key under a new header: in format v2 the
//! header tag is AES-GCM under the derived key with a fixed all-zero IV, so two headers
//! over one data key (the old object and its rewrapped version, both kept by S3
//! versioning or a backup) would hand an attacker the GHASH key and with it forged headers
//! and frames (the GCM "forbidden attack"). A fresh data key is also what locks out anyone
//! who once unwrapped the old one.
//!
//! One pass, two [pipelines](crate::pipeline) linked in memory: the decrypting one opens
//! each frame and hands it on only after its tag verified; the encrypting one seals it
//! under the new key. Plaintext never touches a disk and is wiped from the buffers it
//! crossed. The source's final frame is handed on only after the whole source verified
//! (signature and end of input included), so the new message cannot be completed from a
//! source that fails: a tampered, truncated or extended source, or a signed one whose
//! frames were re-sealed by a key holder, gives an error. Write to a temporary place and
//! keep the output only on `Ok`; the [file forms](Rewrap::file) do that for you.
//!
//! What is kept: the stored encryption context (pairs may be added or removed), the frame
//! length (a non-framed source gets the new client's), and the suite if it is a committing
//! one (0x0478 or 0x0578) unless [`RewrapOptions::suite`] says otherwise; a legacy
//! non-committing source becomes 0x0578 if it was signed, 0x0478 if not. Pairs kept out of
//! the source's header (required encryption context, given in
//! [`RewrapOptions::decrypt`]) are kept out of the new one too.
//!
//! ```
//! use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
//! use envcrypt::pipeline::PipelineOptions;
//! use envcrypt::rewrap::Rewrap;
//!
//! let old = Client::new(RawAesKeyring::new("hospital-a", "key-2025", &[1; 32])?);
//! let new = Client::new(RawAesKeyring::new("hospital-a", "key-2026", &[2; 32])?);
//! let context = EncryptionContext::from_pairs([("study", "ct-42")]);
//! let message = old.encrypt(b"pixel data", &context)?;
//!
//! let mut rotated = Vec::new();
//! let done = Rewrap::new(&old, &new).stream(&message[..], &mut rotated, &PipelineOptions::default())?;
//! assert_ne!(done.header.message_id, done.source.message_id);
//! assert_eq!(done.header.encryption_context.get("study"), Some("ct-42"));
//!
//! assert_eq!(new.decrypt(&rotated, &DecryptOptions::default())?.plaintext, b"pixel data");
//! assert!(old.decrypt(&rotated, &DecryptOptions::default()).is_err());
//! # Ok::<(), envcrypt::Error>(())
//! ```

mod bridge;
mod file;
#[cfg(feature = "tokio")]
mod non_blocking;

use std::collections::BTreeSet;
use std::io::{Cursor, Read, Write};
use std::thread;

use tracing::{debug, info};

use crate::client::{Client, DecryptOptions, EncryptPlan, OpenedMessage};
use crate::error::{ConfigError, Error};
use crate::format::{
    parse_header, AlgorithmSuite, ContentType, EncryptionContext, Header, HeaderLimits,
};
use crate::materials::log::Hex;
use crate::materials::RESERVED_CONTEXT_PREFIX;
use crate::pipeline::{PipelineOptions, StreamStats};
use crate::policy::ReleasePolicy;

/// How a rewrap changes the message besides its keys.
///
/// ```
/// use envcrypt::{AlgorithmSuite, EncryptionContext};
/// use envcrypt::rewrap::RewrapOptions;
///
/// let options = RewrapOptions::default()
///     .with_suite(AlgorithmSuite::Aes256GcmHkdfSha512Commit)
///     .with_added_context(EncryptionContext::from_pairs([("rotated", "2026")]))
///     .with_removed_context(["legacy-tag"]);
/// assert!(options.remove_context.contains("legacy-tag"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RewrapOptions {
    /// How the source is opened: pairs it must carry, pairs kept out of its header.
    /// Its `release` is ignored (nothing leaves a rewrap before the source verified).
    pub decrypt: DecryptOptions,
    /// The new message's suite; `None` keeps the source's (see the [module docs](self)).
    pub suite: Option<AlgorithmSuite>,
    /// Pairs to add to the stored context (a key already there is refused unless it is
    /// also removed).
    pub add_context: EncryptionContext,
    /// Keys to remove from the stored context (a key that is not there is refused).
    pub remove_context: BTreeSet<String>,
}

impl RewrapOptions {
    /// Sets [`decrypt`](Self::decrypt).
    pub fn with_decrypt(mut self, decrypt: DecryptOptions) -> Self {
        self.decrypt = decrypt;
        self
    }

    /// Sets [`suite`](Self::suite).
    pub fn with_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = Some(suite);
        self
    }

    /// Sets [`add_context`](Self::add_context).
    pub fn with_added_context(mut self, pairs: EncryptionContext) -> Self {
        self.add_context = pairs;
        self
    }

    /// Sets [`remove_context`](Self::remove_context).
    pub fn with_removed_context<S: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = S>,
    ) -> Self {
        self.remove_context = keys.into_iter().map(Into::into).collect();
        self
    }
}

/// What a rewrap did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rewrapped {
    /// The source message's authenticated header.
    pub source: Header,
    /// The new message's header (new message id, new EDKs).
    pub header: Header,
    /// Bytes read (the source) and written (the new message).
    pub stats: StreamStats,
}

/// A rewrap from the keys of one client to those of another.
///
/// `from` opens the source (each of its keyrings tried, its decrypt limits and policies
/// applied); `to` makes and wraps the new data key (its first keyring generates it, the
/// others also wrap it) with its crypto provider. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Rewrap<'a> {
    from: &'a Client,
    to: &'a Client,
    options: RewrapOptions,
}

impl<'a> Rewrap<'a> {
    /// A rewrap from `from`'s keys to `to`'s, keeping context, frame length and suite.
    pub fn new(from: &'a Client, to: &'a Client) -> Self {
        Self {
            from,
            to,
            options: RewrapOptions::default(),
        }
    }

    /// Uses `options`.
    pub fn with_options(mut self, options: RewrapOptions) -> Self {
        self.options = options;
        self
    }

    /// Rewraps the message in `input` to `output`, on the threads `pipeline` allows
    /// (unsigned messages; a rewrap that involves a signed suite runs each side on one
    /// thread, since its two SHA-384 passes bound it).
    ///
    /// Bytes reach `output` while the source is read, but the new message is complete
    /// (final frame, signature) only if the whole source verified: on `Err`, discard what
    /// was written.
    pub fn stream<R: Read, W: Write + Send>(
        &self,
        mut input: R,
        output: W,
        pipeline: &PipelineOptions,
    ) -> Result<Rewrapped, Error> {
        let OpenedMessage {
            decryptor,
            header: source,
            header_read,
        } = self.from.open(&mut input, &self.options.decrypt)?;
        let header_len = header_read.header_len as u64;
        let mut body_start = Cursor::new(header_read.buf);
        body_start.set_position(header_len);
        let body = body_start.chain(input);

        let (context, plan) = self.plan(&source)?;
        let encryptor = crate::block_on(self.to.encryptor_with(&context, plan, None))?;
        let header = parse_header(encryptor.header(), &HeaderLimits::new(u16::MAX, u32::MAX))?
            .ok_or(Error::Internal("the new header does not parse"))?
            .header;
        let slots = encryptor.slots();
        // A signed side is bound by its SHA-384, one thread each; worker threads would only
        // add hand-offs (measured: 1.38x decrypt alone with workers, 1.30x without).
        let signed = source.suite.signature().is_some() || header.suite.signature().is_some();
        let sequential = PipelineOptions::single_threaded();
        let pipeline = if signed { &sequential } else { pipeline };
        let (mut sink, plain) = bridge::link(slots, pipeline.in_flight().max(4));

        // The new message is sealed on a thread of its own while this one opens the source.
        let (opened, sealed) = thread::scope(|s| {
            let sealing =
                s.spawn(move || crate::pipeline::encrypt::run(encryptor, plain, output, pipeline));
            let opened = crate::pipeline::decrypt::run(
                decryptor,
                body,
                &mut sink,
                pipeline,
                ReleasePolicy::UnverifiedStream,
            );
            let peer_gone = sink.peer_gone();
            // Only a source that verified completely ends the plaintext; a failed one
            // closes the link, which the sealing side takes as an error.
            let opened = match opened {
                Ok(stats) => sink.end().map(|()| stats).map_err(Error::from),
                Err(e) => {
                    drop(sink);
                    Err(e)
                }
            };
            let sealed = sealing
                .join()
                .unwrap_or(Err(Error::Internal("the sealing thread panicked")));
            ((opened, peer_gone), sealed)
        });
        let stats = match (opened, sealed) {
            ((Ok(read), _), Ok(written)) => StreamStats {
                bytes_in: read.bytes_in + header_len,
                bytes_out: written.bytes_out,
            },
            // The sealing side stopped first (its output failed, say): its error is the cause.
            ((Err(_), true), Err(e)) | ((Err(e), _), _) | ((Ok(_), _), Err(e)) => {
                debug!(from = %Hex(&source.message_id), error = %e, "rewrap: failed");
                return Err(e);
            }
        };
        info!(
            from = %Hex(&source.message_id),
            to = %Hex(&header.message_id),
            bytes_in = stats.bytes_in,
            bytes_out = stats.bytes_out,
            "rewrap: done"
        );
        Ok(Rewrapped {
            source,
            header,
            stats,
        })
    }

    /// The new message's full context (stored pairs plus kept-out pairs) and settings.
    fn plan(&self, source: &Header) -> Result<(EncryptionContext, EncryptPlan), Error> {
        let options = &self.options;
        let mut context = EncryptionContext::new();
        for (k, v) in source.encryption_context.iter() {
            // The SDK's own pairs (the old verification key) are made anew.
            if !k.starts_with(RESERVED_CONTEXT_PREFIX) {
                context.insert(k, v);
            }
        }
        for key in &options.remove_context {
            if context.remove(key).is_none() {
                return Err(ConfigError::ContextKeyAbsent(key.clone()).into());
            }
        }
        for (k, v) in options.add_context.iter() {
            if context.insert(k, v).is_some() {
                return Err(ConfigError::ContextKeyPresent(k.to_owned()).into());
            }
        }
        let mut plan = self.to.encrypt_plan();
        for (k, v) in options.decrypt.required_context.iter() {
            context.insert(k, v);
            plan.required_context_keys.insert(k.to_owned());
        }
        plan.suite = options.suite.unwrap_or_else(|| kept_suite(source.suite));
        if source.content_type == ContentType::Framed {
            plan.frame_length = source.frame_length;
        }
        Ok((context, plan))
    }
}

/// The suite a rewrap keeps: the source's if envcrypt writes it, else the committing suite
/// with the same signing.
fn kept_suite(source: AlgorithmSuite) -> AlgorithmSuite {
    match (source.is_committing(), source.signature().is_some()) {
        (true, _) => source,
        (false, true) => AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        (false, false) => AlgorithmSuite::Aes256GcmHkdfSha512Commit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_suites_become_the_committing_suite_with_the_same_signing() {
        use AlgorithmSuite::*;
        for suite in AlgorithmSuite::ALL {
            let kept = kept_suite(suite);
            assert!(kept.is_committing());
            assert_eq!(kept.signature().is_some(), suite.signature().is_some());
            if suite.is_committing() {
                assert_eq!(kept, suite);
            }
        }
        assert_eq!(
            kept_suite(Aes256GcmHkdfSha384EcdsaP384),
            Aes256GcmHkdfSha512CommitEcdsaP384
        );
        assert_eq!(kept_suite(Aes128GcmNoKdf), Aes256GcmHkdfSha512Commit);
    }
}
