//! The client: configuration plus one-shot encrypt and decrypt of byte slices.

use std::collections::BTreeSet;
use std::sync::Arc;

use zeroize::Zeroize;

use crate::crypto::CryptoProvider;
use crate::engine::{DecryptConfig, Decryptor, Encryptor, DEFAULT_FRAME_LENGTH};
use crate::error::{ConfigError, Error, FormatError, PolicyError};
use crate::format::{AlgorithmSuite, EncryptionContext, Header, MAX_FRAME_LENGTH};
use crate::keyring::Keyring;
use crate::materials::{log, DefaultMaterialsManager, EncryptionRequest, MaterialsManager};
use crate::pipeline::{PipelineOptions, StreamStats};
use crate::policy::{CommitmentPolicy, ReleasePolicy, SignaturePolicy};
use crate::stream::{DecryptingReader, EncryptingWriter, HeaderRead};
use std::io::Read as _;

/// Encrypts and decrypts messages with one materials manager and one crypto provider.
///
/// ```
/// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
///
/// let keyring = RawAesKeyring::new("hospital-a", "imaging-2026", &[0x42; 32])?;
/// let client = Client::new(keyring);
/// let context = EncryptionContext::from_pairs([("purpose", "backup")]);
/// let message = client.encrypt(b"pixel data", &context)?;
/// let decrypted = client.decrypt(&message, &DecryptOptions::default())?;
/// assert_eq!(decrypted.plaintext, b"pixel data");
/// assert_eq!(decrypted.header.encryption_context.get("purpose"), Some("backup"));
/// # Ok::<(), envcrypt::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    provider: &'static CryptoProvider,
    cmm: Arc<dyn MaterialsManager>,
    suite: AlgorithmSuite,
    frame_length: u32,
    required_context_keys: BTreeSet<String>,
    decrypt: DecryptConfig,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("provider", &self.provider)
            .field("suite", &self.suite)
            .field("frame_length", &self.frame_length)
            .field("decrypt", &self.decrypt)
            .finish_non_exhaustive()
    }
}

/// Options for one decryption.
///
/// ```
/// use envcrypt::{DecryptOptions, EncryptionContext, ReleasePolicy};
///
/// let options = DecryptOptions::default()
///     .with_expected_context(EncryptionContext::from_pairs([("purpose", "backup")]))
///     .with_release(ReleasePolicy::UnverifiedStream);
/// assert_eq!(options.expected_context.get("purpose"), Some("backup"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DecryptOptions {
    /// Pairs that must be in the stored context with these values.
    pub expected_context: EncryptionContext,
    /// Pairs kept out of the stored header at encryption (required encryption context);
    /// a pair whose key *is* stored must match it.
    pub required_context: EncryptionContext,
    /// When streaming adapters may release plaintext of signed messages (default: only
    /// after the signature verified).
    pub release: ReleasePolicy,
    /// Keys that must be in the stored context, with any value.
    pub expected_keys: Vec<String>,
}

impl DecryptOptions {
    /// Sets [`expected_context`](Self::expected_context).
    pub fn with_expected_context(mut self, context: EncryptionContext) -> Self {
        self.expected_context = context;
        self
    }

    /// Sets [`required_context`](Self::required_context).
    pub fn with_required_context(mut self, context: EncryptionContext) -> Self {
        self.required_context = context;
        self
    }

    /// Sets [`release`](Self::release).
    pub fn with_release(mut self, release: ReleasePolicy) -> Self {
        self.release = release;
        self
    }

    /// Sets [`expected_keys`](Self::expected_keys): each must be in the stored context, with
    /// any value.
    ///
    /// ```
    /// use envcrypt::{keyring::RawAesKeyring, Client, DecryptOptions, EncryptionContext, ErrorKind};
    ///
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let context = EncryptionContext::from_pairs([("purpose", "archive")]);
    /// let message = client.encrypt(b"x", &context)?;
    /// let any_purpose = DecryptOptions::default().with_expected_keys(["purpose"]);
    /// assert!(client.decrypt(&message, &any_purpose).is_ok());
    /// let a_study = DecryptOptions::default().with_expected_keys(["study"]);
    /// assert_eq!(client.decrypt(&message, &a_study).unwrap_err().kind(), ErrorKind::Policy);
    /// # Ok::<(), envcrypt::Error>(())
    /// ```
    pub fn with_expected_keys<S: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = S>,
    ) -> Self {
        self.expected_keys = keys.into_iter().map(Into::into).collect();
        self
    }
}

/// A decrypted message and the header it came with. Its `Debug` shows the plaintext's
/// length, never its bytes.
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The header (suite, stored context, EDKs, frame length) for the caller's policy checks.
    pub header: Header,
}

impl core::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decrypted")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("header", &self.header)
            .finish()
    }
}

/// A message whose header was read and authenticated ([`Client::open`]): where every
/// decrypting adapter starts.
pub struct OpenedMessage {
    /// Ready to open the body's units (its state follows the header).
    pub decryptor: Decryptor,
    /// The authenticated header: suite, stored context, EDKs, frame length.
    pub header: Header,
    pub(crate) header_read: HeaderRead,
}

impl OpenedMessage {
    /// Length of the header in bytes (where the body starts in the input).
    pub fn header_len(&self) -> usize {
        self.header_read.header_len
    }

    /// Body bytes that were read along with the header; the rest follows in the input.
    pub fn body_start(&self) -> &[u8] {
        self.header_read.body_start()
    }
}

impl core::fmt::Debug for OpenedMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedMessage")
            .field("header", &self.header)
            .field("header_len", &self.header_len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    provider: Option<&'static CryptoProvider>,
    cmm: Option<Arc<dyn MaterialsManager>>,
    suite: AlgorithmSuite,
    frame_length: u32,
    required_context_keys: BTreeSet<String>,
    decrypt: DecryptConfig,
    require_fips: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            provider: None,
            cmm: None,
            suite: AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
            frame_length: DEFAULT_FRAME_LENGTH,
            required_context_keys: BTreeSet::new(),
            decrypt: DecryptConfig::default(),
            require_fips: false,
        }
    }
}

impl ClientBuilder {
    /// Uses `keyring` through a [`DefaultMaterialsManager`].
    pub fn keyring(self, keyring: impl Keyring + 'static) -> Self {
        self.materials_manager(DefaultMaterialsManager::new(keyring))
    }

    /// Uses a custom materials manager.
    pub fn materials_manager(mut self, cmm: impl MaterialsManager + 'static) -> Self {
        self.cmm = Some(Arc::new(cmm));
        self
    }

    /// Uses this crypto provider (default: [`crate::crypto::default_provider`]).
    pub fn provider(mut self, provider: &'static CryptoProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Makes [`build`](Self::build) fail unless the provider is a FIPS module in FIPS mode.
    ///
    /// ```
    /// use envcrypt::{Client, keyring::RawAesKeyring};
    /// let built = Client::builder()
    ///     .keyring(RawAesKeyring::new("ns", "k", &[1; 32]).unwrap())
    ///     .require_fips()
    ///     .build();
    /// assert_eq!(built.is_ok(), envcrypt::crypto::default_provider().fips());
    /// ```
    pub fn require_fips(mut self) -> Self {
        self.require_fips = true;
        self
    }

    /// Suite for encryption: `0x0578` (default, signed) or `0x0478`.
    pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = suite;
        self
    }

    /// Frame length for encryption (default 64 KiB).
    pub fn frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    /// Context keys to authenticate but keep out of the stored header on encryption.
    pub fn required_context_keys<S: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = S>,
    ) -> Self {
        self.required_context_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// Which messages may be read (default: committed only).
    pub fn commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.decrypt.commitment_policy = policy;
        self
    }

    /// Whether signed messages may be read (default: yes).
    pub fn signature_policy(mut self, policy: SignaturePolicy) -> Self {
        self.decrypt.signature_policy = policy;
        self
    }

    /// Most EDKs a message may carry on decrypt (default 64).
    pub fn max_encrypted_data_keys(mut self, max: u16) -> Self {
        self.decrypt.max_encrypted_data_keys = max;
        self
    }

    /// Largest frame length accepted on decrypt (default 16 MiB).
    pub fn max_frame_length(mut self, max: u32) -> Self {
        self.decrypt.max_frame_length = max;
        self
    }

    /// Largest header accepted on decrypt, in bytes (default 1 MiB): a longer one is
    /// refused as soon as that many bytes arrived, before it is parsed again.
    pub fn max_header_length(mut self, max: u32) -> Self {
        self.decrypt.max_header_length = max;
        self
    }

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if self.frame_length == 0 || self.frame_length > MAX_FRAME_LENGTH {
            return Err(ConfigError::InvalidFrameLength(self.frame_length.into()).into());
        }
        if !self.suite.is_committing() {
            return Err(ConfigError::UnsupportedEncryptSuite(self.suite.id()).into());
        }
        let cmm = self.cmm.ok_or(PolicyError::InvalidMaterials(
            "no keyring or materials manager configured",
        ))?;
        let provider = self
            .provider
            .unwrap_or_else(crate::crypto::default_provider);
        if self.require_fips && !provider.fips() {
            return Err(ConfigError::FipsRequired(provider.name).into());
        }
        Ok(Client {
            provider,
            cmm,
            suite: self.suite,
            frame_length: self.frame_length,
            required_context_keys: self.required_context_keys,
            decrypt: self.decrypt,
        })
    }
}

/// How one message is encrypted: the client's settings, or a rewrap's.
#[derive(Debug, Clone)]
pub(crate) struct EncryptPlan {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) frame_length: u32,
    /// Context keys authenticated but kept out of the stored header.
    pub(crate) required_context_keys: BTreeSet<String>,
}

impl Client {
    /// A client with default settings over `keyring`.
    pub fn new(keyring: impl Keyring + 'static) -> Self {
        Self::builder()
            .keyring(keyring)
            .build()
            .expect("default configuration is valid")
    }

    /// A builder with default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The crypto provider in use.
    pub fn provider(&self) -> &'static CryptoProvider {
        self.provider
    }

    /// The suite of the messages this client writes.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The frame length of the messages this client writes.
    pub fn frame_length(&self) -> u32 {
        self.frame_length
    }

    /// The decrypt-side configuration.
    pub fn decrypt_config(&self) -> DecryptConfig {
        self.decrypt
    }

    /// Gets materials and starts a message (async: keyrings may be remote).
    pub async fn encryptor_async(
        &self,
        context: &EncryptionContext,
        plaintext_length: Option<u64>,
    ) -> Result<Encryptor, Error> {
        self.encryptor_with(context, self.encrypt_plan(), plaintext_length)
            .await
    }

    /// Starts a message with `plan`'s suite, frame length and kept-out context keys instead
    /// of the client's (a rewrap keeps its source's).
    pub(crate) async fn encryptor_with(
        &self,
        context: &EncryptionContext,
        plan: EncryptPlan,
        plaintext_length: Option<u64>,
    ) -> Result<Encryptor, Error> {
        if !plan.suite.is_committing() {
            return Err(ConfigError::UnsupportedEncryptSuite(plan.suite.id()).into());
        }
        let materials = self
            .cmm
            .encryption_materials(EncryptionRequest {
                provider: self.provider,
                encryption_context: context.clone(),
                suite: plan.suite,
                required_context_keys: plan.required_context_keys,
                plaintext_length,
            })
            .await?;
        if materials.suite != plan.suite {
            return Err(PolicyError::InvalidMaterials("suite differs from the request").into());
        }
        let enc = Encryptor::new(materials, plan.frame_length)?;
        log::encrypt_started(enc.header());
        Ok(enc)
    }

    /// The client's own encryption settings, as a plan to adjust.
    pub(crate) fn encrypt_plan(&self) -> EncryptPlan {
        EncryptPlan {
            suite: self.suite,
            frame_length: self.frame_length,
            required_context_keys: self.required_context_keys.clone(),
        }
    }

    /// Gets materials and starts a message, blocking the thread while keyrings work.
    pub fn encryptor(
        &self,
        context: &EncryptionContext,
        plaintext_length: Option<u64>,
    ) -> Result<Encryptor, Error> {
        crate::block_on(self.encryptor_async(context, plaintext_length))
    }

    /// Gets the data key for a decryptor whose header is parsed and checks the header.
    pub async fn unlock_async(
        &self,
        decryptor: &mut Decryptor,
        options: &DecryptOptions,
    ) -> Result<(), Error> {
        let header = decryptor
            .header()
            .ok_or(Error::Internal("no header after it was authenticated"))?
            .header
            .encryption_context
            .clone();
        for (k, v) in options.expected_context.iter() {
            if header.get(k) != Some(v) {
                return Err(PolicyError::ContextMismatch(k.to_owned()).into());
            }
        }
        for k in &options.expected_keys {
            if header.get(k).is_none() {
                return Err(PolicyError::ContextMismatch(k.to_owned()).into());
            }
        }
        let request = decryptor.materials_request(self.provider, &options.required_context)?;
        let materials = self.cmm.decryption_materials(request).await?;
        decryptor.set_materials(materials)?;
        if let Some(h) = decryptor.header() {
            log::started("decrypt", &h.header);
        }
        Ok(())
    }

    /// Blocking form of [`unlock_async`](Self::unlock_async).
    pub fn unlock(&self, decryptor: &mut Decryptor, options: &DecryptOptions) -> Result<(), Error> {
        crate::block_on(self.unlock_async(decryptor, options))
    }

    /// Encrypts `plaintext` into one message.
    pub fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encrypt_into(plaintext, context, &mut out)?;
        Ok(out)
    }

    /// Encrypts `plaintext` into `out` (replacing its content), reusing its allocation.
    ///
    /// Frames are sealed straight from `plaintext` into `out`: no intermediate copy, and a
    /// reused `out` is not zero-filled again.
    pub fn encrypt_into(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.encrypt_parallel(plaintext, context, out, &PipelineOptions::single_threaded())
    }

    /// [`encrypt_into`](Self::encrypt_into) on several cores: workers seal batches of
    /// frames straight into their place in `out` while one thread hashes finished batches
    /// for the signature.
    pub fn encrypt_parallel(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
        out: &mut Vec<u8>,
        options: &PipelineOptions,
    ) -> Result<(), Error> {
        let enc = self.encryptor(context, Some(plaintext.len() as u64))?;
        let id = log::written_message_id(enc.header());
        let result = crate::pipeline::slice::encrypt(enc, plaintext, out, options);
        log::finished("encrypt", &id, &result, |_| {
            (plaintext.len() as u64, out.len() as u64)
        });
        result
    }

    /// Decrypts one whole message. Nothing is returned unless every byte verified.
    pub fn decrypt(&self, message: &[u8], options: &DecryptOptions) -> Result<Decrypted, Error> {
        let mut plaintext = Vec::new();
        let header = self.decrypt_into(message, options, &mut plaintext)?;
        Ok(Decrypted { plaintext, header })
    }

    /// Decrypts one whole message into `out` (replacing its content), reusing its
    /// allocation, and returns the header. Frames are opened straight from `message` into
    /// `out`. On error `out` is wiped and left empty.
    pub fn decrypt_into(
        &self,
        message: &[u8],
        options: &DecryptOptions,
        out: &mut Vec<u8>,
    ) -> Result<Header, Error> {
        self.decrypt_parallel(message, options, out, &PipelineOptions::single_threaded())
    }

    /// [`decrypt_into`](Self::decrypt_into) on several cores: workers open batches of
    /// frames straight into their place in `out` while one thread hashes the ciphertext for
    /// the signature.
    pub fn decrypt_parallel(
        &self,
        message: &[u8],
        options: &DecryptOptions,
        out: &mut Vec<u8>,
        pipeline: &PipelineOptions,
    ) -> Result<Header, Error> {
        let result = (|| {
            let mut dec = Decryptor::new(self.decrypt);
            let pos = dec.parse_header(message)?.ok_or(FormatError::Truncated)?;
            self.unlock(&mut dec, options)?;
            let header = dec
                .header()
                .ok_or(Error::Internal("no header after it was authenticated"))?
                .header
                .clone();
            let body = crate::pipeline::slice::decrypt(&mut dec, &message[pos..], out, pipeline);
            log::finished("decrypt", &header.message_id, &body, |_| {
                (message.len() as u64, out.len() as u64)
            });
            body.map(|()| header)
        })();
        if result.is_err() {
            out.zeroize();
        }
        result
    }

    /// Encrypts all of `input` to `output` through the parallel frame pipeline (see
    /// [`crate::pipeline`]): workers seal frames in place while this thread reads.
    pub fn encrypt_stream<R: std::io::Read, W: std::io::Write + Send>(
        &self,
        input: R,
        output: W,
        context: &EncryptionContext,
        options: &PipelineOptions,
    ) -> Result<StreamStats, Error> {
        let enc = self.encryptor(context, None)?;
        let id = log::written_message_id(enc.header());
        let result = crate::pipeline::encrypt::run(enc, input, output, options);
        log::finished("encrypt", &id, &result, |s| (s.bytes_in, s.bytes_out));
        result
    }

    /// Decrypts one message from `input` to `output` through the parallel frame pipeline.
    /// Returns the authenticated header.
    ///
    /// What reaches `output` before the end: for unsigned messages, each frame as its tag
    /// verifies (a truncated message is an error at the end, after the frames before the
    /// cut were written); for signed messages, nothing until the signature verified (the
    /// plaintext waits in an unnamed temporary file) unless `options.release` is
    /// [`ReleasePolicy::UnverifiedStream`]. See [`ReleasePolicy`]. Write to a temporary
    /// file and keep it only on `Ok` ([`Client::decrypt_file`] does).
    pub fn decrypt_stream<R: std::io::Read, W: std::io::Write + Send>(
        &self,
        input: R,
        output: W,
        options: &DecryptOptions,
        pipeline: &PipelineOptions,
    ) -> Result<(Header, StreamStats), Error> {
        self.decrypt_stream_with(input, output, options, pipeline, options.release)
    }

    /// [`decrypt_stream`](Self::decrypt_stream) with the release policy given apart (the
    /// file API's output is private until renamed, so it releases early into it).
    pub(crate) fn decrypt_stream_with<R: std::io::Read, W: std::io::Write + Send>(
        &self,
        mut input: R,
        output: W,
        options: &DecryptOptions,
        pipeline: &PipelineOptions,
        release: ReleasePolicy,
    ) -> Result<(Header, StreamStats), Error> {
        let OpenedMessage {
            decryptor,
            header,
            header_read,
        } = self.open(&mut input, options)?;
        let header_len = header_read.header_len as u64;
        let mut body_start = std::io::Cursor::new(header_read.buf);
        body_start.set_position(header_len);
        let body = body_start.chain(input);
        let result = crate::pipeline::decrypt::run(decryptor, body, output, pipeline, release).map(
            |mut stats| {
                stats.bytes_in += header_len;
                stats
            },
        );
        log::finished("decrypt", &header.message_id, &result, |s| {
            (s.bytes_in, s.bytes_out)
        });
        Ok((header, result?))
    }

    /// Reads the header from `input`, gets the data key from the materials manager and
    /// authenticates the header (key commitment, header tag, the caller's context): the
    /// first step of every decrypting adapter, for callers that drive the engine
    /// themselves. The body follows: [`OpenedMessage::body_start`], then the rest of
    /// `input`.
    ///
    /// ```
    /// use envcrypt::{Client, DecryptOptions, EncryptionContext, keyring::RawAesKeyring};
    ///
    /// let client = Client::new(RawAesKeyring::new("ns", "key", &[1; 32])?);
    /// let message = client.encrypt(b"hello", &EncryptionContext::new())?;
    /// let opened = client.open(&mut &message[..], &DecryptOptions::default())?;
    /// assert_eq!(opened.header.frame_length, 64 * 1024);
    /// assert_eq!(opened.header_len() + opened.body_start().len(), message.len());
    /// # Ok::<(), envcrypt::Error>(())
    /// ```
    pub fn open<R: std::io::Read>(
        &self,
        input: &mut R,
        options: &DecryptOptions,
    ) -> Result<OpenedMessage, Error> {
        let mut decryptor = Decryptor::new(self.decrypt);
        let header_read = crate::stream::read_header(&mut decryptor, input)?;
        self.unlock(&mut decryptor, options)?;
        let header = decryptor
            .header()
            .ok_or(Error::Internal("no header after it was authenticated"))?
            .header
            .clone();
        Ok(OpenedMessage {
            decryptor,
            header,
            header_read,
        })
    }

    /// An encrypting writer over `inner`; its [`finish`](EncryptingWriter::finish) is
    /// mandatory.
    pub fn encrypt_writer<W: std::io::Write>(
        &self,
        inner: W,
        context: &EncryptionContext,
    ) -> Result<EncryptingWriter<W>, Error> {
        EncryptingWriter::new(self.encryptor(context, None)?, inner)
    }

    /// A decrypting reader over `inner`. Reads and authenticates the header before returning.
    pub fn decrypt_reader<R: std::io::Read>(
        &self,
        inner: R,
        options: &DecryptOptions,
    ) -> Result<DecryptingReader<R>, Error> {
        DecryptingReader::new(self, inner, options)
    }
}
