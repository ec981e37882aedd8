//! Async constructors on [`Client`] (feature `tokio`): an encrypting `AsyncWrite` and a
//! decrypting `AsyncRead` over the parallel frame pipeline.

use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{Client, DecryptOptions};
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
}
