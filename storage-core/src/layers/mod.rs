//! Layers: behaviour that wraps any provider.
//!
//! Each layer is a [`Storage`] that wraps another. They can
//! be used one by one from code, or stacked from a provider's `layers`
//! table by [`stack`], which always composes them in this order, outermost
//! first, so the order cannot be got wrong:
//!
//! | layer              | sees                                              |
//! |--------------------|---------------------------------------------------|
//! | [`Audit`]          | each operation as the caller made it, with its final outcome |
//! | [`Metrics`]        | each operation: counts, errors by kind, bytes, latency including retries |
//! | [`Validation`]     | each upload, whole, before any attempt to store it |
//! | [`Fallback`]       | each operation; sends it to the next provider (with its own layers) when this one is down |
//! | [`Retry`]          | each operation; retries what the inner layers fail with a retryable error |
//! | [`CircuitBreaker`] | each attempt; fails fast while the backend keeps failing (not retryable, so Retry stops) |
//! | [`Timeouts`]       | each attempt; a deadline per call, a stall limit per body |
//! | the backend        |                                                   |
//!
//! A timeout inside Retry makes each attempt bounded and a timed-out
//! attempt retried; the breaker between them counts attempts, and its
//! fast failure is final for Retry.

mod breaker;
mod fallback;
mod observe;
mod retry;
mod timeout;
mod validation;

use std::sync::Arc;

use serde::Deserialize;

pub use breaker::{BreakerConfig, BreakerHandle, BreakerState, CircuitBreaker};
pub use fallback::{Fallback, FallbackConfig};
pub use observe::{
    Audit, Metrics, MetricsRecorder, MetricsSnapshot, OperationMetrics, with_caller,
};
pub use retry::{Retry, RetryConfig};
pub use timeout::{TimeoutConfig, Timeouts};
pub use validation::{Scanner, Upload, Validation, ValidationConfig};

use crate::storage::Storage;

/// A provider's `layers` table.
///
/// ```toml
/// [providers.media.layers]
/// timeout = { operation_ms = 10000, stall_ms = 15000 }
/// retry = { max_attempts = 5 }
/// circuit_breaker = { failure_rate = 0.5, window = 20 }
/// validation = { max_size = "25MB", allowed_content_types = ["image/*"] }
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LayersConfig {
    /// Deadlines per call and per stalled body.
    #[serde(default)]
    pub timeout: Option<TimeoutConfig>,
    /// Retries of retryable failures.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Fail fast while the backend keeps failing.
    #[serde(default)]
    pub circuit_breaker: Option<BreakerConfig>,
    /// Checks on uploads. A scanner hook is added from code
    /// ([`Validation::with_scanner`]).
    #[serde(default)]
    pub validation: Option<ValidationConfig>,
    /// Other providers that serve reads (and writes, if asked) while this
    /// one is down. Applied by the registry once every provider is built.
    #[serde(default)]
    pub fallback: Option<FallbackConfig>,
    /// Record metrics (default: true).
    #[serde(default = "default_true")]
    pub metrics: bool,
    /// Log an audit event per operation (default: true).
    #[serde(default = "default_true")]
    pub audit: bool,
}

fn default_true() -> bool {
    true
}

impl Default for LayersConfig {
    /// Metrics and audit on; no timeouts, retries or breaker.
    fn default() -> Self {
        Self {
            timeout: None,
            retry: None,
            circuit_breaker: None,
            validation: None,
            fallback: None,
            metrics: true,
            audit: true,
        }
    }
}

/// What [`stack`] built, with handles on stateful layers.
#[derive(Debug, Clone)]
pub struct Stacked {
    /// The provider with its layers.
    pub storage: Arc<dyn Storage>,
    /// The circuit breaker's handle, if there is one.
    pub breaker: Option<BreakerHandle>,
    /// The metrics recorder, if metrics are on.
    pub metrics: Option<Arc<MetricsRecorder>>,
}

/// Wraps `backend` in the layers `config` asks for, in the fixed order.
pub fn stack(backend: Arc<dyn Storage>, config: &LayersConfig) -> Stacked {
    let mut storage = backend;
    if let Some(timeout) = &config.timeout {
        storage = Arc::new(Timeouts::new(storage, timeout.clone()));
    }
    let mut breaker = None;
    if let Some(breaker_config) = &config.circuit_breaker {
        let layer = CircuitBreaker::new(storage, breaker_config.clone());
        breaker = Some(layer.handle());
        storage = Arc::new(layer);
    }
    if let Some(retry) = &config.retry {
        storage = Arc::new(Retry::new(storage, retry.clone()));
    }
    if let Some(validation) = &config.validation {
        storage = Arc::new(Validation::new(storage, validation.clone()));
    }
    let mut metrics = None;
    if config.metrics {
        let layer = Metrics::new(storage);
        metrics = Some(layer.recorder());
        storage = Arc::new(layer);
    }
    if config.audit {
        storage = Arc::new(Audit::new(storage));
    }
    Stacked {
        storage,
        breaker,
        metrics,
    }
}
