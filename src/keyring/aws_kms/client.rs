//! [`KmsClient`]: the SDK client with bounded timeouts and retries, and the tokio runtime its
//! calls run on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use tokio::runtime::Handle;

use super::KeyringError;
use crate::aws_runtime::{AbortOnDrop, OwnedRuntime, Runtime};

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

struct ClientInner {
    client: aws_sdk_kms::Client,
    runtime: Runtime,
}

/// The name of the owned runtime's thread.
const RUNTIME: &str = "envcrypt-kms";

fn owned_runtime() -> Runtime {
    Runtime::new(None, RUNTIME, 1)
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
            .field("own_runtime", &!self.inner.runtime.is_callers())
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
        let runtime = OwnedRuntime::new(RUNTIME, 1).map_err(KeyringError::Unavailable)?;
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
        Ok(Self {
            inner: Arc::new(ClientInner {
                client: aws_sdk_kms::Client::new(&config),
                runtime: Runtime::started(runtime, RUNTIME, 1),
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
        let timeouts = crate::aws_runtime::bounded(config.timeout_config(), default_timeouts());
        let mut builder = config.to_builder().timeout_config(timeouts);
        if config.retry_config().is_none() {
            builder = builder.retry_config(default_retry());
        }
        Self {
            inner: Arc::new(ClientInner {
                client: aws_sdk_kms::Client::from_conf(builder.build()),
                runtime: owned_runtime(),
            }),
        }
    }

    /// Runs the SDK calls on the caller's runtime instead of an owned one.
    pub fn with_runtime(self, handle: Handle) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                client: self.inner.client.clone(),
                runtime: Runtime::new(Some(handle), RUNTIME, 1),
            }),
        }
    }

    /// The underlying SDK client (for calls the keyrings do not make, e.g. `CreateKey`).
    pub fn sdk_client(&self) -> &aws_sdk_kms::Client {
        &self.inner.client
    }

    /// Runs `future` on the runtime and waits for it from any executor.
    pub(super) async fn run<F>(&self, future: F) -> Result<F::Output, KeyringError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner
            .runtime
            .run(future)
            .await
            .map_err(KeyringError::Unavailable)
    }
}
