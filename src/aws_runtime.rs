//! The tokio runtime that AWS SDK calls (KMS, S3) run on: the caller's, or a small one the
//! client owns, started on first use.

use std::future::Future;
use std::sync::OnceLock;

use aws_config::timeout::TimeoutConfig;
use tokio::runtime::Handle;

/// `current` (a caller's SDK client's timeouts), with what it leaves unset from `defaults`.
pub(crate) fn bounded(current: Option<&TimeoutConfig>, defaults: TimeoutConfig) -> TimeoutConfig {
    match current {
        Some(t) => t
            .to_builder()
            .take_unset_from(defaults.into_builder())
            .build(),
        None => defaults,
    }
}

/// A tokio runtime owned by an AWS client; shut down without blocking when dropped (so
/// dropping the last client inside an async context is fine).
pub(crate) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    /// A multi-threaded runtime with `workers` threads named `name`.
    pub(crate) fn new(name: &str, workers: usize) -> Result<Self, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|e| format!("cannot start the tokio runtime for {name}: {e}"))
    }

    pub(crate) fn handle(&self) -> Handle {
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

/// Where a client's calls run: the caller's runtime if given, else one of its own.
pub(crate) struct Runtime {
    handle: Option<Handle>,
    own: OnceLock<Result<OwnedRuntime, String>>,
    name: &'static str,
    workers: usize,
}

impl Runtime {
    /// Calls run on `handle`, or on an owned runtime of `workers` threads started on first
    /// use.
    pub(crate) fn new(handle: Option<Handle>, name: &'static str, workers: usize) -> Self {
        Self {
            handle,
            own: OnceLock::new(),
            name,
            workers,
        }
    }

    /// Like [`new`](Self::new) without a handle, with `owned` already started.
    pub(crate) fn started(owned: OwnedRuntime, name: &'static str, workers: usize) -> Self {
        let own = OnceLock::new();
        let _ = own.set(Ok(owned));
        Self {
            handle: None,
            own,
            name,
            workers,
        }
    }

    /// Whether calls run on a runtime of the caller's.
    pub(crate) fn is_callers(&self) -> bool {
        self.handle.is_some()
    }

    /// The runtime's handle (starting the owned runtime if needed).
    pub(crate) fn handle(&self) -> Result<Handle, String> {
        match &self.handle {
            Some(h) => Ok(h.clone()),
            None => match self
                .own
                .get_or_init(|| OwnedRuntime::new(self.name, self.workers))
            {
                Ok(rt) => Ok(rt.handle()),
                Err(e) => Err(e.clone()),
            },
        }
    }

    /// Runs `future` on the runtime and waits for it from any executor; a panic in it is
    /// resumed here.
    pub(crate) async fn run<F>(&self, future: F) -> Result<F::Output, String>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.handle()?;
        AbortOnDrop(handle.spawn(future)).await.map_err(|e| {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            format!("the runtime of the {} calls stopped: {e}", self.name)
        })
    }
}

/// Aborts the spawned task when the caller stops waiting for it.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

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
