//! [`S3Client`]: the SDK client with bounded timeouts and retries, path-style addressing on
//! a custom endpoint, and the tokio runtime its calls run on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use tokio::runtime::Handle;

use crate::aws_runtime::{AbortOnDrop, OwnedRuntime, Runtime};
use crate::error::Error;

/// Connect timeout when the SDK configuration sets none.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for one try of a call (a part of up to a few hundred MiB included) when the SDK
/// configuration sets none.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
/// Time for a whole call, retries included, when the SDK configuration sets none. A
/// download's body streams after its call: a stalled body is caught by the SDK's
/// stalled-stream protection instead.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(900);
/// Tries of a call when the SDK configuration sets no retry policy.
pub const MAX_ATTEMPTS: u32 = 3;

/// Worker threads of the runtime an [`S3Client`] starts for itself.
const WORKERS: usize = 2;
const RUNTIME: &str = "envcrypt-s3";

/// The bounded timeouts above.
pub fn default_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

struct Inner {
    client: aws_sdk_s3::Client,
    runtime: Runtime,
}

/// An `aws-sdk-s3` client with bounded timeouts and retries, plus the tokio runtime its
/// calls run on. Cheap to clone (shared).
///
/// ```no_run
/// use envcrypt::s3::S3Client;
/// // Region, credentials and endpoint (`AWS_ENDPOINT_URL_S3`) from the usual AWS chain.
/// let s3 = S3Client::from_env()?;
/// # Ok::<(), envcrypt::Error>(())
/// ```
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("region", &self.inner.client.config().region())
            .field("own_runtime", &!self.inner.runtime.is_callers())
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// A client from the standard AWS chain (`aws_config::defaults`): region, credentials
    /// and endpoint (`AWS_REGION`, `AWS_ENDPOINT_URL_S3`, profiles, ...), with this module's
    /// bounded timeouts and retries. With an endpoint override (MinIO, moto, a VPC endpoint
    /// given as a URL) buckets are addressed path-style.
    ///
    /// Blocks the calling thread while the configuration loads.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_with(|loader| loader)
    }

    /// Like [`from_env`](Self::from_env), with the loader adjusted by `configure` first.
    pub fn from_env_with(
        configure: impl FnOnce(ConfigLoader) -> ConfigLoader,
    ) -> Result<Self, Error> {
        let runtime = OwnedRuntime::new(RUNTIME, WORKERS).map_err(unavailable)?;
        let loader = configure(
            aws_config::defaults(BehaviorVersion::latest())
                .timeout_config(default_timeouts())
                .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)),
        );
        let config = crate::block_on(AbortOnDrop(runtime.handle().spawn(loader.load())))
            .map_err(|e| unavailable(format!("loading the AWS configuration: {e}")))?;
        if config.region().is_none() {
            return Err(unavailable(
                "no AWS region configured (set AWS_REGION or a profile region)".into(),
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client: aws_sdk_s3::Client::from_conf(s3_config(&config)),
                runtime: Runtime::started(runtime, RUNTIME, WORKERS),
            }),
        })
    }

    /// Wraps an existing `aws-sdk-s3` client, kept as configured (endpoint, addressing,
    /// region, credentials); timeouts it leaves unset and a missing retry policy get this
    /// module's bounded defaults.
    pub fn from_sdk_client(client: aws_sdk_s3::Client) -> Self {
        let config = client.config();
        let timeouts = crate::aws_runtime::bounded(config.timeout_config(), default_timeouts());
        let mut builder = config.to_builder().timeout_config(timeouts);
        if config.retry_config().is_none() {
            builder = builder.retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
        }
        Self {
            inner: Arc::new(Inner {
                client: aws_sdk_s3::Client::from_conf(builder.build()),
                runtime: Runtime::new(None, RUNTIME, WORKERS),
            }),
        }
    }

    /// Runs the SDK calls on the caller's runtime instead of an owned one.
    pub fn with_runtime(self, handle: Handle) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: self.inner.client.clone(),
                runtime: Runtime::new(Some(handle), RUNTIME, WORKERS),
            }),
        }
    }

    /// The underlying SDK client (for calls this crate does not make).
    pub fn sdk_client(&self) -> &aws_sdk_s3::Client {
        &self.inner.client
    }

    /// The runtime the calls run on.
    pub(crate) fn handle(&self) -> Result<Handle, Error> {
        self.inner.runtime.handle().map_err(unavailable)
    }

    /// Runs `future` on the runtime and waits for it from any executor.
    pub(crate) async fn run<F, T>(&self, future: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.runtime.run(future).await.map_err(unavailable)?
    }

    /// [`run`](Self::run), blocking the calling thread.
    pub(crate) fn block_on<F, T>(&self, future: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        crate::block_on(self.run(future))
    }
}

/// The S3 configuration of `config`: path-style addressing when the endpoint is overridden
/// (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, or one set on the loader), since local and
/// self-hosted servers seldom resolve `BUCKET.host` names.
fn s3_config(config: &SdkConfig) -> aws_sdk_s3::Config {
    let overridden = config.endpoint_url().is_some()
        || ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    aws_sdk_s3::config::Builder::from(config)
        .force_path_style(overridden)
        .build()
}

fn unavailable(message: String) -> Error {
    Error::Io(std::io::Error::other(message))
}
