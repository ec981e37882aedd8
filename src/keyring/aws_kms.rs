//! AWS KMS keyrings (cargo feature `aws-kms`): [`AwsKmsKeyring`] (strict: named keys) and
//! [`AwsKmsDiscoveryKeyring`] (decrypt with any key that passes a [`DiscoveryFilter`]).
//!
//! EDK format (shared with every official SDK): provider id `aws-kms`; provider info = the key
//! ARN as KMS returned it; ciphertext = the KMS ciphertext blob. The full encryption context
//! of the message (including `aws-crypto-public-key` on signed suites) goes to every KMS call,
//! so KMS binds each wrapped key to it.
//!
//! # Runtimes
//!
//! The AWS SDK runs on tokio. A [`KmsClient`] owns a small tokio runtime (one worker thread,
//! started on first use) and runs every SDK call there, so the keyrings work both from any
//! async executor and through the blocking path ([`crate::block_on`], which has no reactor):
//! the caller only awaits the result. [`KmsClient::with_runtime`] runs the calls on a runtime
//! of the caller's instead (any flavor, but a current-thread runtime must not be blocked by
//! [`crate::block_on`] on its own thread while a call is running).
//!
//! # Failures
//!
//! Every call is bounded: connect timeout 2 s, read timeout 5 s, 5 s a try, 10 s in all, at
//! most 2 tries (unless the caller's SDK configuration sets its own). Errors are typed:
//!
//! | KMS answer | [`KeyringError`] |
//! |---|---|
//! | connection refused or reset, timeout, throttling, KMS internal error, HTTP 5xx | [`Unavailable`](KeyringError::Unavailable) |
//! | `AccessDeniedException`, bad credentials, invalid grant token, `DisabledException`, `KMSInvalidStateException` | [`AccessDenied`](KeyringError::AccessDenied) (the message names the reason) |
//! | `InvalidCiphertextException`, `IncorrectKeyException` (wrong key or context) | [`UnwrapFailed`](KeyringError::UnwrapFailed) |
//! | `NotFoundException`, `InvalidKeyUsageException`, a response naming another key, a data key of the wrong length | [`InvalidKey`](KeyringError::InvalidKey) |
//! | no `aws-kms` EDK for a configured key | [`NoMatchingKey`](KeyringError::NoMatchingKey) |
//! | `aws-kms` EDKs, but the discovery filter excluded every one | [`Excluded`](KeyringError::Excluded) (one reason per EDK) |

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use tokio::runtime::Handle;
use zeroize::Zeroizing;

use super::{Keyring, KeyringError};
use crate::format::{EncryptedDataKey, EncryptionContext};
use crate::materials::{DataKey, DecryptionMaterials, EncryptionMaterials};

/// Provider id of every KMS EDK.
pub const PROVIDER_ID: &str = "aws-kms";
/// Connect timeout of a [`KmsClient`] whose SDK configuration sets none.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Read timeout (time to first response byte) when the SDK configuration sets none.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for one try of a call when the SDK configuration sets none.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole call, retries included, when the SDK configuration sets none.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of a call when the SDK configuration sets no retry policy.
pub const MAX_ATTEMPTS: u32 = 2;

/// The bounded timeouts above, for callers that build their own SDK configuration.
pub fn default_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The bounded retry policy above ([`MAX_ATTEMPTS`] tries, standard backoff).
pub fn default_retry() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

// ---------------------------------------------------------------------------------------------
// The client and its runtime

/// A tokio runtime owned by a [`KmsClient`]; shut down without blocking when dropped (so
/// dropping the last client inside an async context is fine).
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn new() -> Result<Self, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("envcrypt-kms")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| format!("cannot start the tokio runtime for KMS calls: {e}"))
    }

    fn handle(&self) -> Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
            .clone()
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct ClientInner {
    client: aws_sdk_kms::Client,
    /// The caller's runtime, if given; else `own` (started on first use).
    handle: Option<Handle>,
    own: OnceLock<Result<OwnedRuntime, String>>,
}

/// An `aws-sdk-kms` client with bounded timeouts and retries, plus the tokio runtime its
/// calls run on. Cheap to clone (shared); one client can serve many keyrings.
///
/// ```no_run
/// use envcrypt::keyring::KmsClient;
/// // Region, credentials and endpoint (`AWS_ENDPOINT_URL_KMS`) from the usual AWS chain.
/// let client = KmsClient::from_env()?;
/// # Ok::<(), envcrypt::keyring::KeyringError>(())
/// ```
#[derive(Clone)]
pub struct KmsClient {
    inner: Arc<ClientInner>,
}

impl core::fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KmsClient")
            .field("region", &self.inner.client.config().region())
            .field("own_runtime", &self.inner.handle.is_none())
            .finish_non_exhaustive()
    }
}

impl KmsClient {
    /// A client configured from the standard AWS chain (`aws_config::defaults`): region,
    /// credentials and endpoint (`AWS_REGION`, `AWS_ENDPOINT_URL_KMS`, profiles, ...), with
    /// the bounded timeouts and retries of this module.
    ///
    /// Blocks the calling thread while the configuration loads (environment and profile
    /// files; the region may be asked from instance metadata). Fails when no region is
    /// configured.
    ///
    /// ```no_run
    /// use envcrypt::keyring::{AwsKmsKeyring, KmsClient};
    /// let client = KmsClient::from_env()?;
    /// let keyring = AwsKmsKeyring::new(
    ///     client,
    ///     "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    /// )?;
    /// # Ok::<(), envcrypt::keyring::KeyringError>(())
    /// ```
    pub fn from_env() -> Result<Self, KeyringError> {
        Self::from_env_with(|loader| loader)
    }

    /// Like [`from_env`](Self::from_env), with the loader adjusted by `configure` first (a
    /// region, an endpoint, credentials, a profile, ...).
    ///
    /// ```no_run
    /// use aws_config::Region;
    /// use envcrypt::keyring::KmsClient;
    /// let client = KmsClient::from_env_with(|loader| {
    ///     loader.region(Region::new("eu-west-1")).endpoint_url("http://127.0.0.1:5000")
    /// })?;
    /// # Ok::<(), envcrypt::keyring::KeyringError>(())
    /// ```
    pub fn from_env_with(
        configure: impl FnOnce(ConfigLoader) -> ConfigLoader,
    ) -> Result<Self, KeyringError> {
        let runtime = OwnedRuntime::new().map_err(KeyringError::Unavailable)?;
        let loader = configure(
            aws_config::defaults(BehaviorVersion::latest())
                .timeout_config(default_timeouts())
                .retry_config(default_retry()),
        );
        // Load on the runtime (credential and region providers may need its timers and
        // sockets) and wait here: works with or without an ambient executor.
        let config =
            crate::block_on(AbortOnDrop(runtime.handle().spawn(loader.load()))).map_err(|e| {
                KeyringError::Unavailable(format!("loading the AWS configuration: {e}"))
            })?;
        if config.region().is_none() {
            return Err(KeyringError::InvalidKey(
                "no AWS region configured (set AWS_REGION or a profile region)".into(),
            ));
        }
        let own = OnceLock::new();
        let _ = own.set(Ok(runtime));
        Ok(Self {
            inner: Arc::new(ClientInner {
                client: aws_sdk_kms::Client::new(&config),
                handle: None,
                own,
            }),
        })
    }

    /// A client from a loaded AWS configuration. Timeouts it leaves unset and a missing retry
    /// policy get this module's bounded defaults.
    pub fn from_sdk_config(config: &SdkConfig) -> Self {
        Self::from_sdk_client(aws_sdk_kms::Client::new(config))
    }

    /// Wraps an existing `aws-sdk-kms` client (its endpoint, region and credentials are kept).
    /// Timeouts it leaves unset and a missing retry policy get this module's bounded defaults.
    ///
    /// ```no_run
    /// use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    /// use envcrypt::keyring::KmsClient;
    /// let config = aws_sdk_kms::Config::builder()
    ///     .behavior_version(BehaviorVersion::latest())
    ///     .region(Region::new("us-east-1"))
    ///     .credentials_provider(Credentials::new("test", "test", None, None, "static"))
    ///     .endpoint_url("http://127.0.0.1:5000")
    ///     .build();
    /// let client = KmsClient::from_sdk_client(aws_sdk_kms::Client::from_conf(config));
    /// ```
    pub fn from_sdk_client(client: aws_sdk_kms::Client) -> Self {
        let config = client.config();
        let timeouts = match config.timeout_config() {
            Some(t) => t
                .to_builder()
                .take_unset_from(default_timeouts().into_builder())
                .build(),
            None => default_timeouts(),
        };
        let mut builder = config.to_builder().timeout_config(timeouts);
        if config.retry_config().is_none() {
            builder = builder.retry_config(default_retry());
        }
        Self {
            inner: Arc::new(ClientInner {
                client: aws_sdk_kms::Client::from_conf(builder.build()),
                handle: None,
                own: OnceLock::new(),
            }),
        }
    }

    /// Runs the SDK calls on the caller's runtime instead of an owned one.
    pub fn with_runtime(self, handle: Handle) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                client: self.inner.client.clone(),
                handle: Some(handle),
                own: OnceLock::new(),
            }),
        }
    }

    /// The underlying SDK client (for calls the keyrings do not make, e.g. `CreateKey`).
    pub fn sdk_client(&self) -> &aws_sdk_kms::Client {
        &self.inner.client
    }

    /// Runs `future` on the runtime and waits for it from any executor.
    async fn run<F>(&self, future: F) -> Result<F::Output, KeyringError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = match &self.inner.handle {
            Some(h) => h.clone(),
            None => match self.inner.own.get_or_init(OwnedRuntime::new) {
                Ok(rt) => rt.handle(),
                Err(e) => return Err(KeyringError::Unavailable(e.clone())),
            },
        };
        AbortOnDrop(handle.spawn(future)).await.map_err(|e| {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            KeyringError::Unavailable(format!("the runtime of the KMS calls stopped: {e}"))
        })
    }
}

/// Aborts the spawned call when the caller stops waiting for it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// ARNs

/// The parts of a KMS ARN: `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` (or `alias/NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KmsArn<'a> {
    partition: &'a str,
    account: &'a str,
    resource_type: &'a str,
}

impl<'a> KmsArn<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        let (arn, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let (resource_type, id) = resource.split_once('/')?;
        let ok = arn == "arn"
            && !partition.is_empty()
            && service == "kms"
            && !region.is_empty()
            && !account.is_empty()
            && matches!(resource_type, "key" | "alias")
            && !id.is_empty();
        ok.then_some(Self {
            partition,
            account,
            resource_type,
        })
    }

    fn is_key(&self) -> bool {
        self.resource_type == "key"
    }
}

fn is_key_arn(s: &str) -> bool {
    KmsArn::parse(s).is_some_and(|a| a.is_key())
}

/// A key id KMS accepts for encryption: key ARN, alias ARN, `alias/NAME` or a bare key id.
fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 2048
        && !s.chars().any(char::is_whitespace)
        && (!s.starts_with("arn:") || KmsArn::parse(s).is_some())
}

// ---------------------------------------------------------------------------------------------
// Error mapping

/// What a failed KMS call means for the keyring.
enum Failure {
    Unreachable(String),
    Refused(String),
    BadCiphertext,
    Invalid(String),
}

fn classify<E>(op: &str, key: &str, err: &SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = chain(err);
    let service = match err {
        SdkError::TimeoutError(_) => {
            return Failure::Unreachable(format!("KMS {op} with {key} timed out ({detail})"))
        }
        SdkError::ServiceError(s) => s,
        // Connection refused/reset, DNS, TLS, a response that is not KMS's, or a request
        // that could not be made (no credentials): KMS was not reached.
        _ => return Failure::Unreachable(format!("KMS {op} with {key}: {detail}")),
    };
    let code = service.err().code().unwrap_or("");
    let message = service.err().message().unwrap_or("");
    let status = service.raw().status().as_u16();
    let why = if message.is_empty() {
        format!("{code} (HTTP {status})")
    } else {
        format!("{code}: {message}")
    };
    match code {
        "InvalidCiphertextException" | "IncorrectKeyException" => Failure::BadCiphertext,
        "DisabledException" => {
            Failure::Refused(format!("KMS key {key} is disabled ({op} refused: {why})"))
        }
        "KMSInvalidStateException" => Failure::Refused(format!(
            "KMS key {key} is not in a usable state, e.g. pending deletion ({op} refused: {why})"
        )),
        "AccessDeniedException"
        | "InvalidGrantTokenException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "NotAuthorized" => Failure::Refused(format!("KMS {op} with {key}: {why}")),
        "NotFoundException" => Failure::Invalid(format!("KMS key {key} not found ({why})")),
        "InvalidKeyUsageException" | "InvalidArnException" | "ValidationException" => {
            Failure::Invalid(format!("KMS {op} with {key}: {why}"))
        }
        "ThrottlingException"
        | "KMSInternalException"
        | "DependencyTimeoutException"
        | "KeyUnavailableException"
        | "LimitExceededException" => Failure::Unreachable(format!("KMS {op} with {key}: {why}")),
        _ if status >= 500 || status == 429 => {
            Failure::Unreachable(format!("KMS {op} with {key}: {why}"))
        }
        _ => Failure::Refused(format!("KMS {op} with {key}: {why}")),
    }
}

/// An error and its sources on one line ("dispatch failure: io error: ...: Connection
/// refused"), without the SDK's debug dump.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// A failure of `GenerateDataKey`/`Encrypt` as a keyring error.
fn encrypt_error<E>(op: &str, key: &str, err: SdkError<E>) -> KeyringError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match classify(op, key, &err) {
        Failure::Unreachable(m) => KeyringError::Unavailable(m),
        Failure::Refused(m) => KeyringError::AccessDenied(m),
        Failure::Invalid(m) => KeyringError::InvalidKey(m),
        Failure::BadCiphertext => {
            KeyringError::InvalidKey(format!("KMS {op} with {key}: {}", chain(&err)))
        }
    }
}

/// An encryption context as the SDK takes it.
type KmsContext = std::collections::HashMap<String, String>;

fn kms_context(context: &EncryptionContext) -> Option<KmsContext> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn grants(tokens: &[String]) -> Option<Vec<String>> {
    (!tokens.is_empty()).then(|| tokens.to_vec())
}

/// Moves a plaintext data key out of a KMS response into zeroizing storage and checks its
/// length.
fn take_data_key(
    plaintext: Option<Blob>,
    expected_len: usize,
    op: &str,
    key: &str,
) -> Result<DataKey, KeyringError> {
    let bytes = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    if bytes.len() != expected_len {
        return Err(KeyringError::InvalidKey(format!(
            "KMS {op} with {key} returned a data key of {} bytes, expected {expected_len}",
            bytes.len()
        )));
    }
    let mut bytes = bytes;
    Ok(DataKey::new(core::mem::take(&mut *bytes)))
}

/// One `Decrypt` call: the data key, or why not.
async fn decrypt_one(
    client: &KmsClient,
    key_id: &str,
    edk: &EncryptedDataKey,
    context: &Option<KmsContext>,
    key_len: usize,
    grant_tokens: &[String],
) -> Result<DataKey, KeyringError> {
    let call = client
        .sdk_client()
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(edk.ciphertext.clone()))
        .set_encryption_context(context.clone())
        .set_grant_tokens(grants(grant_tokens))
        .send();
    let mut out = match client.run(call).await? {
        Ok(out) => out,
        Err(err) => {
            return Err(match classify("Decrypt", key_id, &err) {
                Failure::Unreachable(m) => KeyringError::Unavailable(m),
                Failure::Refused(m) => KeyringError::AccessDenied(m),
                Failure::Invalid(m) => KeyringError::InvalidKey(m),
                Failure::BadCiphertext => KeyringError::UnwrapFailed {
                    provider_id: PROVIDER_ID.into(),
                    key_name: key_id.into(),
                },
            })
        }
    };
    let data_key = take_data_key(out.plaintext.take(), key_len, "Decrypt", key_id)?;
    match out.key_id() {
        Some(answered) if answered == key_id => Ok(data_key),
        answered => Err(KeyringError::InvalidKey(format!(
            "KMS Decrypt answered for key {}, not the requested {key_id}",
            answered.unwrap_or("(none)")
        ))),
    }
}

/// Tries `candidates` (EDK, key id to call with) in order; the first data key wins. When all
/// fail: the first failure about the data or the configuration, else (every one was about
/// reaching KMS) the first of those. Stops at the first unreachable KMS.
async fn decrypt_any(
    client: &KmsClient,
    mut materials: DecryptionMaterials,
    candidates: Vec<(&EncryptedDataKey, &str)>,
    grant_tokens: &[String],
    none: KeyringError,
) -> Result<DecryptionMaterials, KeyringError> {
    let context = kms_context(&materials.encryption_context);
    let key_len = materials.suite.data_key_len();
    let mut first_unavailable = None;
    let mut first_other = None;
    for (edk, key_id) in candidates {
        match decrypt_one(client, key_id, edk, &context, key_len, grant_tokens).await {
            Ok(key) => {
                materials.data_key = Some(key);
                return Ok(materials);
            }
            Err(e @ KeyringError::Unavailable(_)) => {
                first_unavailable.get_or_insert(e);
                break;
            }
            Err(e) if e.is_unavailable() => {
                first_unavailable.get_or_insert(e);
            }
            Err(e) => {
                first_other.get_or_insert(e);
            }
        }
    }
    Err(first_other.or(first_unavailable).unwrap_or(none))
}

// ---------------------------------------------------------------------------------------------
// Strict keyring

/// Wraps data keys with named KMS keys and unwraps only EDKs of those keys.
///
/// The first key (the generator) makes the data key with `GenerateDataKey` (or wraps one
/// made by an earlier keyring with `Encrypt`); every additional key wraps it with `Encrypt`.
/// On decrypt, each EDK whose provider info is one of the configured key ARNs is sent to
/// `Decrypt` with that key id, and the answer must name the same key.
///
/// The generator may be a key ARN, an alias ARN, `alias/NAME` or a key id (encryption
/// resolves it); additional keys must be key ARNs. Decryption matches key ARNs only, so a
/// keyring whose generator is an alias decrypts only with its additional keys.
///
/// ```no_run
/// use envcrypt::keyring::{AwsKmsKeyring, KmsClient};
/// use envcrypt::{Client, DecryptOptions, EncryptionContext};
///
/// let kms = KmsClient::from_env()?;
/// let keyring = AwsKmsKeyring::new(
///     kms,
///     "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
/// )?
/// .with_additional_keys([
///     "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321",
/// ])?;
/// let client = Client::new(keyring);
/// let context = EncryptionContext::from_pairs([("study", "ct-abdomen")]);
/// let message = client.encrypt(b"pixel data", &context)?;
/// let decrypted = client.decrypt(&message, &DecryptOptions::default())?;
/// assert_eq!(decrypted.plaintext, b"pixel data");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AwsKmsKeyring {
    client: KmsClient,
    generator: String,
    additional: Vec<String>,
    grant_tokens: Vec<String>,
}

impl AwsKmsKeyring {
    /// A keyring whose generator is `key_id` (key ARN, alias ARN, `alias/NAME` or key id).
    pub fn new(client: KmsClient, key_id: impl Into<String>) -> Result<Self, KeyringError> {
        let generator = key_id.into();
        if !valid_identifier(&generator) {
            return Err(KeyringError::InvalidKey(format!(
                "not a KMS key identifier: {generator:?}"
            )));
        }
        Ok(Self {
            client,
            generator,
            additional: Vec::new(),
            grant_tokens: Vec::new(),
        })
    }

    /// Adds keys (key ARNs) that also wrap every data key and may unwrap.
    pub fn with_additional_keys<S: Into<String>>(
        mut self,
        key_arns: impl IntoIterator<Item = S>,
    ) -> Result<Self, KeyringError> {
        for arn in key_arns {
            let arn = arn.into();
            if !is_key_arn(&arn) {
                return Err(KeyringError::InvalidKey(format!(
                    "additional KMS keys must be key ARNs (arn:PARTITION:kms:REGION:ACCOUNT:key/ID), got {arn:?}"
                )));
            }
            self.additional.push(arn);
        }
        Ok(self)
    }

    /// Grant tokens sent with every call.
    pub fn with_grant_tokens<S: Into<String>>(
        mut self,
        tokens: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// The generator key id as configured.
    pub fn generator(&self) -> &str {
        &self.generator
    }

    fn configured(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.generator.as_str()).chain(self.additional.iter().map(String::as_str))
    }

    async fn encrypt_with(
        &self,
        key_id: &str,
        context: &Option<KmsContext>,
        data_key: &DataKey,
    ) -> Result<EncryptedDataKey, KeyringError> {
        let call = self
            .client
            .sdk_client()
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(data_key.expose_secret().to_vec()))
            .set_encryption_context(context.clone())
            .set_grant_tokens(grants(&self.grant_tokens))
            .send();
        let out = self
            .client
            .run(call)
            .await?
            .map_err(|e| encrypt_error("Encrypt", key_id, e))?;
        edk_from(out.key_id, out.ciphertext_blob, "Encrypt", key_id)
    }
}

/// Builds the EDK from a response, checking that KMS named a key ARN.
fn edk_from(
    answered: Option<String>,
    blob: Option<Blob>,
    op: &str,
    key_id: &str,
) -> Result<EncryptedDataKey, KeyringError> {
    let arn = answered.unwrap_or_default();
    if !is_key_arn(&arn) {
        return Err(KeyringError::InvalidKey(format!(
            "KMS {op} with {key_id} answered with key id {arn:?}, not a key ARN"
        )));
    }
    let ciphertext = blob.map(Blob::into_inner).unwrap_or_default();
    if ciphertext.is_empty() {
        return Err(KeyringError::InvalidKey(format!(
            "KMS {op} with {key_id} returned no ciphertext"
        )));
    }
    Ok(EncryptedDataKey {
        provider_id: PROVIDER_ID.into(),
        provider_info: arn.into_bytes(),
        ciphertext,
    })
}

#[async_trait]
impl Keyring for AwsKmsKeyring {
    async fn on_encrypt(
        &self,
        mut materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        // With a data key from an earlier keyring every configured key wraps it (`Encrypt`);
        // else the generator makes it and the additional keys wrap it.
        let context = kms_context(&materials.encryption_context);
        let (data_key, wrap): (DataKey, Vec<&str>) = match materials.data_key.take() {
            Some(k) => (k, self.configured().collect()),
            None => {
                let key_len = materials.suite.data_key_len();
                let call = self
                    .client
                    .sdk_client()
                    .generate_data_key()
                    .key_id(&self.generator)
                    .number_of_bytes(key_len as i32)
                    .set_encryption_context(context.clone())
                    .set_grant_tokens(grants(&self.grant_tokens))
                    .send();
                let mut out = self
                    .client
                    .run(call)
                    .await?
                    .map_err(|e| encrypt_error("GenerateDataKey", &self.generator, e))?;
                let key = take_data_key(
                    out.plaintext.take(),
                    key_len,
                    "GenerateDataKey",
                    &self.generator,
                )?;
                let edk = edk_from(
                    out.key_id.take(),
                    out.ciphertext_blob.take(),
                    "GenerateDataKey",
                    &self.generator,
                )?;
                materials.encrypted_data_keys.push(edk);
                (key, self.additional.iter().map(String::as_str).collect())
            }
        };
        for key_id in wrap {
            let edk = self.encrypt_with(key_id, &context, &data_key).await?;
            materials.encrypted_data_keys.push(edk);
        }
        materials.data_key = Some(data_key);
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            return Ok(materials);
        }
        let candidates: Vec<(&EncryptedDataKey, &str)> = encrypted_data_keys
            .iter()
            .filter(|edk| edk.provider_id == PROVIDER_ID)
            .filter_map(|edk| {
                let info = core::str::from_utf8(&edk.provider_info).ok()?;
                if !is_key_arn(info) {
                    return None;
                }
                self.configured().find(|k| *k == info).map(|k| (edk, k))
            })
            .collect();
        let none = KeyringError::NoMatchingKey;
        decrypt_any(
            &self.client,
            materials,
            candidates,
            &self.grant_tokens,
            none,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery keyring

/// Which KMS keys a discovery keyring may use: those of `partition` in `account_ids`.
///
/// ```
/// use envcrypt::keyring::DiscoveryFilter;
/// let filter = DiscoveryFilter::new("aws", ["111122223333", "444455556666"]);
/// assert_eq!(filter.account_ids.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryFilter {
    /// The ARN partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// Account ids whose keys may decrypt.
    pub account_ids: Vec<String>,
}

impl DiscoveryFilter {
    /// A filter for `partition` and `account_ids`.
    pub fn new<S: Into<String>>(
        partition: impl Into<String>,
        account_ids: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            partition: partition.into(),
            account_ids: account_ids.into_iter().map(Into::into).collect(),
        }
    }

    /// `None` when `arn` passes; else why not.
    fn reject(&self, arn: &KmsArn<'_>) -> Option<String> {
        if arn.partition != self.partition {
            return Some(format!(
                "partition {} is not {}",
                arn.partition, self.partition
            ));
        }
        if !self.account_ids.iter().any(|a| a == arn.account) {
            return Some(format!(
                "account {} is not in the filter [{}]",
                arn.account,
                self.account_ids.join(", ")
            ));
        }
        None
    }
}

/// Decrypts with whichever KMS key wrapped the data key, if it passes the filter. Cannot
/// encrypt.
///
/// Each `aws-kms` EDK whose provider info is a key ARN passing the [`DiscoveryFilter`] (any
/// key without a filter) is sent to `Decrypt` with that ARN as key id; the answer must name
/// the same key. Calls go to the client's region.
///
/// ```no_run
/// use envcrypt::keyring::{AwsKmsDiscoveryKeyring, DiscoveryFilter, KmsClient};
/// use envcrypt::{Client, DecryptOptions};
///
/// let keyring = AwsKmsDiscoveryKeyring::new(KmsClient::from_env()?)
///     .with_filter(DiscoveryFilter::new("aws", ["111122223333"]));
/// let client = Client::new(keyring);
/// # let message: Vec<u8> = Vec::new();
/// let decrypted = client.decrypt(&message, &DecryptOptions::default())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AwsKmsDiscoveryKeyring {
    client: KmsClient,
    filter: Option<DiscoveryFilter>,
    grant_tokens: Vec<String>,
}

impl AwsKmsDiscoveryKeyring {
    /// A discovery keyring without filter: any KMS key the credentials may use.
    pub fn new(client: KmsClient) -> Self {
        Self {
            client,
            filter: None,
            grant_tokens: Vec::new(),
        }
    }

    /// Limits decryption to keys that pass `filter`.
    pub fn with_filter(mut self, filter: DiscoveryFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Grant tokens sent with every call.
    pub fn with_grant_tokens<S: Into<String>>(
        mut self,
        tokens: impl IntoIterator<Item = S>,
    ) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }
}

#[async_trait]
impl Keyring for AwsKmsDiscoveryKeyring {
    async fn on_encrypt(
        &self,
        _materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        Err(KeyringError::Unsupported(
            "a KMS discovery keyring can only decrypt",
        ))
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        if materials.data_key.is_some() {
            return Ok(materials);
        }
        let mut excluded = Vec::new();
        let mut candidates = Vec::new();
        for edk in encrypted_data_keys {
            if edk.provider_id != PROVIDER_ID {
                continue;
            }
            let Some(info) = core::str::from_utf8(&edk.provider_info).ok() else {
                excluded.push("aws-kms EDK whose provider info is not UTF-8".to_owned());
                continue;
            };
            let arn = match KmsArn::parse(info) {
                Some(a) if a.is_key() => a,
                _ => {
                    excluded.push(format!("{info:?} is not a KMS key ARN"));
                    continue;
                }
            };
            if let Some(why) = self.filter.as_ref().and_then(|f| f.reject(&arn)) {
                excluded.push(format!("{info}: {why}"));
                continue;
            }
            candidates.push((edk, info));
        }
        let none = if excluded.is_empty() {
            KeyringError::NoMatchingKey
        } else {
            KeyringError::Excluded(excluded)
        };
        decrypt_any(
            &self.client,
            materials,
            candidates,
            &self.grant_tokens,
            none,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn arns() {
        let a = KmsArn::parse(KEY).unwrap();
        assert_eq!((a.partition, a.account), ("aws", "123456789012"));
        assert!(a.is_key());
        let alias = KmsArn::parse("arn:aws-cn:kms:cn-north-1:123456789012:alias/x").unwrap();
        assert!(!alias.is_key());
        for bad in [
            "",
            "arn:aws:kms:us-east-1:123456789012",
            "arn:aws:s3:us-east-1:123456789012:key/x",
            "arn::kms:us-east-1:123456789012:key/x",
            "arn:aws:kms::123456789012:key/x",
            "arn:aws:kms:us-east-1::key/x",
            "arn:aws:kms:us-east-1:123456789012:key/",
            "arn:aws:kms:us-east-1:123456789012:bucket/x",
            "nra:aws:kms:us-east-1:123456789012:key/x",
        ] {
            assert!(KmsArn::parse(bad).is_none(), "{bad}");
        }
        assert!(valid_identifier("alias/x"));
        assert!(valid_identifier("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(!valid_identifier("arn:aws:kms:bad"));
        assert!(!valid_identifier("a b"));
        assert!(!valid_identifier(""));
    }

    #[test]
    fn filter() {
        let f = DiscoveryFilter::new("aws", ["123456789012"]);
        assert_eq!(f.reject(&KmsArn::parse(KEY).unwrap()), None);
        let other = KmsArn::parse("arn:aws:kms:us-east-1:111122223333:key/x").unwrap();
        assert!(f.reject(&other).unwrap().contains("account 111122223333"));
        let cn = KmsArn::parse("arn:aws-cn:kms:cn-north-1:123456789012:key/x").unwrap();
        assert!(f.reject(&cn).unwrap().contains("partition aws-cn"));
    }
}
