//! Async forms of [`Client`]'s calls (feature `tokio`): one-shot [`Client::encrypt_async`]
//! and [`Client::decrypt_async`] for messages in memory, an encrypting `AsyncWrite` and a
//! decrypting `AsyncRead` over the parallel frame pipeline.

use tokio::io::{AsyncRead, AsyncWrite};
use zeroize::{Zeroize, Zeroizing};

use crate::client::{Client, DecryptOptions, Decrypted};
use crate::error::Error;
use crate::format::EncryptionContext;
use crate::pipeline::PipelineOptions;
use crate::stream::{AsyncDecryptingReader, AsyncEncryptingWriter};

impl Client {
    /// An encrypting [`AsyncWrite`] over `inner` (feature `tokio`); its
    /// [`finish`](AsyncEncryptingWriter::finish) (or `shutdown`) is mandatory.
    ///
    /// The frames are sealed by the parallel pipeline (`pipeline` sets its workers and
    /// frames in flight) on a dedicated thread, off the executor. The keyrings run on that
    /// thread as well (blocking path, in the caller's runtime context); this future waits
    /// for them and fails with their error.
    ///
    /// Each adapter has its own pipeline thread, plus `pipeline.threads` workers while it
    /// runs (default: one per core). Many concurrent streams are better served with
    /// [`PipelineOptions::single_threaded`]: one thread each, the cores shared between the
    /// streams.
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
    /// use envcrypt::pipeline::PipelineOptions;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let image = vec![7u8; 3 << 20];
    /// let mut w = client
    ///     .encrypt_async_writer(Vec::new(), &EncryptionContext::new(), &PipelineOptions::default())
    ///     .await?;
    /// w.write_all(&image).await?;
    /// w.shutdown().await?; // completes the message
    /// let message = w.get_ref();
    /// assert_eq!(client.decrypt(message, &DecryptOptions::default())?.plaintext, image);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn encrypt_async_writer<W: AsyncWrite + Unpin>(
        &self,
        inner: W,
        context: &EncryptionContext,
        pipeline: &PipelineOptions,
    ) -> Result<AsyncEncryptingWriter<W>, Error> {
        AsyncEncryptingWriter::new(self, inner, context, pipeline).await
    }

    /// A decrypting [`AsyncRead`] over `inner` (feature `tokio`). Reads and authenticates
    /// the header before returning.
    ///
    /// The frames are opened by the parallel pipeline on a dedicated thread, off the
    /// executor; plaintext is readable frame by frame as each verifies (the last one only
    /// after the signature and the end of `inner`). On an error, discard what was read.
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    /// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
    /// use envcrypt::pipeline::PipelineOptions;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let message = client.encrypt(&[7u8; 100_000], &EncryptionContext::new())?;
    /// let mut r = client
    ///     .decrypt_async_reader(&message[..], &DecryptOptions::default(), &PipelineOptions::default())
    ///     .await?;
    /// let mut out = Vec::new();
    /// r.read_to_end(&mut out).await?;
    /// assert_eq!(out, [7u8; 100_000]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn decrypt_async_reader<R: AsyncRead + Unpin>(
        &self,
        inner: R,
        options: &DecryptOptions,
        pipeline: &PipelineOptions,
    ) -> Result<AsyncDecryptingReader<R>, Error> {
        AsyncDecryptingReader::new(self, inner, options, pipeline).await
    }

    /// Encrypts `plaintext` into one message, like [`encrypt`](Self::encrypt), without
    /// blocking the executor (feature `tokio`).
    ///
    /// Keyrings (KMS, an HSM, RSA) and the sealing run on tokio's blocking pool (or a
    /// thread of their own outside a runtime), so `plaintext` is copied once; the copy is
    /// wiped when the work ends. Dropping the future abandons the result. For inputs of
    /// many megabytes prefer [`encrypt_async_writer`](Self::encrypt_async_writer), which
    /// streams and uses every core.
    ///
    /// ```
    /// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), envcrypt::Error> {
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let context = EncryptionContext::from_pairs([("purpose", "archive")]);
    /// let message = client.encrypt_async(b"report", &context).await?;
    /// let decrypted = client.decrypt_async(&message, &DecryptOptions::default()).await?;
    /// assert_eq!(decrypted.plaintext, b"report");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn encrypt_async(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, Error> {
        let (client, context) = (self.clone(), context.clone());
        let plaintext = Zeroizing::new(plaintext.to_vec());
        off_executor(move || client.encrypt(&plaintext, &context), drop).await
    }

    /// Decrypts one whole message, like [`decrypt`](Self::decrypt), without blocking the
    /// executor (feature `tokio`). Nothing is returned unless every byte verified.
    ///
    /// The work runs as in [`encrypt_async`](Self::encrypt_async); `message` is copied
    /// once. If the future is dropped before the end, the plaintext made is wiped. For
    /// large messages prefer [`decrypt_async_reader`](Self::decrypt_async_reader).
    pub async fn decrypt_async(
        &self,
        message: &[u8],
        options: &DecryptOptions,
    ) -> Result<Decrypted, Error> {
        let (client, options) = (self.clone(), options.clone());
        let message = message.to_vec();
        off_executor(
            move || client.decrypt(&message, &options),
            |mut unwanted: Decrypted| unwanted.plaintext.zeroize(),
        )
        .await
    }
}

/// Runs `work` on tokio's blocking pool (or its own thread outside a runtime) and waits for
/// its result; a result nobody waits for any more goes to `discard`.
pub(crate) async fn off_executor<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    discard: impl FnOnce(T) + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        if let Err(Ok(value)) = tx.send(work()) {
            discard(value);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(job)),
        Err(_) => crate::stream::async_pipe::spawn("envcrypt-oneshot", job)?,
    }
    rx.await
        .unwrap_or_else(|_| Err(crate::stream::async_pipe::thread_lost()))
}
