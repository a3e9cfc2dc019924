//! [`CircuitBreaker`]: stop calling a provider that keeps failing.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Deserialize;

use crate::body::{Body, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{Key, Prefix};
use crate::object::{ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::{ListStream, Storage};

/// When the breaker opens and for how long. In a configuration file, the
/// `circuit_breaker` table of a provider's `layers`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Open when at least this share of the calls in the window failed.
    /// Default: 0.5.
    #[serde(default = "default_rate")]
    pub failure_rate: f64,
    /// How many of the latest calls the rate is taken over. Default: 20.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Calls needed in the window before the rate counts. Default: 10.
    #[serde(default = "default_min_calls")]
    pub min_calls: usize,
    /// How long the breaker stays open before letting a probe through, in
    /// milliseconds. Default: 30000.
    #[serde(default = "default_open")]
    pub open_ms: u64,
}

fn default_rate() -> f64 {
    0.5
}
fn default_window() -> usize {
    20
}
fn default_min_calls() -> usize {
    10
}
fn default_open() -> u64 {
    30_000
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: default_rate(),
            window: default_window(),
            min_calls: default_min_calls(),
            open_ms: default_open(),
        }
    }
}

impl BreakerConfig {
    /// A breaker that opens at `failure_rate` over `window` calls (counted
    /// once `min_calls` are in) and stays open for `open_for`.
    pub fn new(failure_rate: f64, window: usize, min_calls: usize, open_for: Duration) -> Self {
        Self {
            failure_rate,
            window,
            min_calls,
            open_ms: open_for.as_millis() as u64,
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail fast with `Unavailable` until the open time is over.
    Open,
    /// One probe call goes through: its success closes the breaker, its
    /// failure opens it again.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    outcomes: VecDeque<bool>,
}

/// A shared handle on a breaker's state, to show it (health checks,
/// dashboards).
#[derive(Debug, Clone)]
pub struct BreakerHandle {
    inner: Arc<Mutex<Inner>>,
    config: Arc<BreakerConfig>,
}

impl BreakerHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current state (an open breaker whose time is over reads as
    /// half-open).
    pub fn state(&self) -> BreakerState {
        let inner = self.lock();
        match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) if at.elapsed() >= self.open_for() => {
                BreakerState::HalfOpen
            }
            (state, _) => state,
        }
    }

    fn open_for(&self) -> Duration {
        Duration::from_millis(self.config.open_ms)
    }

    /// Whether a call may go through now; `Err` while open.
    fn admit(&self) -> std::result::Result<(), Duration> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => {
                let waited = inner.opened_at.map(|at| at.elapsed()).unwrap_or_default();
                if waited >= self.open_for() && !inner.probe_in_flight {
                    inner.state = BreakerState::HalfOpen;
                    inner.probe_in_flight = true;
                    Ok(())
                } else {
                    Err(self.open_for().saturating_sub(waited))
                }
            }
            BreakerState::HalfOpen if !inner.probe_in_flight => {
                inner.probe_in_flight = true;
                Ok(())
            }
            BreakerState::HalfOpen => Err(Duration::ZERO),
        }
    }

    fn record(&self, success: bool) {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::HalfOpen => {
                inner.probe_in_flight = false;
                inner.outcomes.clear();
                if success {
                    inner.state = BreakerState::Closed;
                    inner.opened_at = None;
                    tracing::info!("circuit breaker closed");
                } else {
                    inner.state = BreakerState::Open;
                    inner.opened_at = Some(Instant::now());
                }
            }
            BreakerState::Closed => {
                inner.outcomes.push_back(success);
                while inner.outcomes.len() > self.config.window.max(1) {
                    inner.outcomes.pop_front();
                }
                let calls = inner.outcomes.len();
                let failures = inner.outcomes.iter().filter(|ok| !**ok).count();
                if calls >= self.config.min_calls
                    && failures as f64 >= self.config.failure_rate * calls as f64
                {
                    inner.state = BreakerState::Open;
                    inner.opened_at = Some(Instant::now());
                    tracing::warn!(failures, calls, "circuit breaker opened");
                }
            }
            BreakerState::Open => {}
        }
    }
}

/// Whether an outcome says the provider is unwell. Answers about the data
/// (not found, precondition failed, invalid input...) are the provider
/// working correctly.
fn is_failure(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Other
    )
}

/// Fails fast while the wrapped provider keeps failing: it opens after
/// `failure_rate` of the last `window` calls failed (availability errors
/// only), answers `Unavailable` (not retryable) while open, lets one probe
/// through after `open_ms`, and closes when the probe succeeds.
pub struct CircuitBreaker<S> {
    inner: Arc<S>,
    handle: BreakerHandle,
}

impl<S: fmt::Debug> fmt::Debug for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("state", &self.handle.state())
            .finish()
    }
}

impl<S: Storage> CircuitBreaker<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: BreakerConfig) -> Self {
        Self {
            inner: Arc::new(inner),
            handle: BreakerHandle {
                inner: Arc::new(Mutex::new(Inner {
                    state: BreakerState::Closed,
                    opened_at: None,
                    probe_in_flight: false,
                    outcomes: VecDeque::new(),
                })),
                config: Arc::new(config),
            },
        }
    }

    /// A handle on the state.
    pub fn handle(&self) -> BreakerHandle {
        self.handle.clone()
    }

    async fn guarded<T>(
        &self,
        operation: Operation,
        key: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        if let Err(wait) = self.handle.admit() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the circuit breaker is open after repeated failures; next probe in {} ms",
                    wait.as_millis()
                ),
            )
            .with_retryable(false)
            .context(operation, self.inner.name(), Some(key)));
        }
        let result = call.await;
        self.handle.record(match &result {
            Ok(_) => true,
            Err(err) => !is_failure(err),
        });
        result
    }
}

#[crate::async_trait]
impl<S: Storage> Storage for CircuitBreaker<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn health(&self) -> Result<()> {
        // A probe tells the provider's state whatever the breaker's; it is
        // neither refused nor counted (the breaker's state is shown apart).
        self.inner.health().await
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        self.guarded(Operation::Put, key, self.inner.put(key, body, options))
            .await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.guarded(Operation::Get, key, self.inner.get(key, options))
            .await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.guarded(Operation::Head, key, self.inner.head(key))
            .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.guarded(Operation::Head, key, self.inner.exists(key))
            .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.guarded(Operation::Delete, key, self.inner.delete(key))
            .await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        if let Err(wait) = self.handle.admit() {
            let err = Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the circuit breaker is open; next probe in {} ms",
                    wait.as_millis()
                ),
            )
            .with_retryable(false)
            .context(Operation::List, self.inner.name(), Some(prefix.as_str()));
            return Box::pin(futures::stream::once(async move { Err(err) }));
        }
        let handle = self.handle.clone();
        let mut recorded = false;
        Box::pin(self.inner.list(prefix, options).map(move |item| {
            if !recorded {
                recorded = true;
                handle.record(item.as_ref().map_or_else(|err| !is_failure(err), |_| true));
            }
            item
        }))
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.guarded(Operation::Copy, from, self.inner.copy(from, to))
            .await
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.guarded(Operation::Rename, from, self.inner.rename(from, to))
            .await
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        // Signing is local: it neither needs nor tells the provider's health.
        self.inner.presign(method, key, expires_in, options).await
    }
}
