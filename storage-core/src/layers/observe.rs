//! [`Metrics`] and [`Audit`]: what happened, counted and logged.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::body::{Body, ByteStream, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{ErrorKind, Operation, Result};
use crate::key::{Key, Prefix};
use crate::object::{ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::{ListStream, Storage};

/// Latency samples kept per operation for percentiles.
const SAMPLES: usize = 4096;

/// Every operation, in the order of [`slot`].
const OPERATIONS: [Operation; 9] = [
    Operation::Put,
    Operation::Get,
    Operation::Head,
    Operation::Delete,
    Operation::List,
    Operation::Copy,
    Operation::Rename,
    Operation::Presign,
    Operation::Open,
];

/// `operation`'s place in [`OPERATIONS`] (a match, so that a new
/// operation cannot be left without its keys).
fn slot(operation: Operation) -> usize {
    match operation {
        Operation::Put => 0,
        Operation::Get => 1,
        Operation::Head => 2,
        Operation::Delete => 3,
        Operation::List => 4,
        Operation::Copy => 5,
        Operation::Rename => 6,
        Operation::Presign => 7,
        Operation::Open => 8,
    }
}

/// Where the facade's metrics say they come from.
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// One provider's keys in the `metrics` facade, labelled once: the
/// facade's macros build (and allocate) a key on every call, and these
/// are used on every operation and every streamed chunk.
#[derive(Debug)]
struct FacadeKeys {
    provider: metrics::SharedString,
    /// `storage_operations_total` and `storage_operation_seconds` of each
    /// operation, at its [`slot`].
    calls: [(metrics::Key, metrics::Key); OPERATIONS.len()],
    bytes_in: metrics::Key,
    bytes_out: metrics::Key,
}

impl FacadeKeys {
    fn new(provider: &str) -> Self {
        let provider = metrics::SharedString::from(Arc::<str>::from(provider));
        let labelled = |name: &'static str, label: &'static str, value: &'static str| {
            metrics::Key::from_parts(
                name,
                vec![
                    metrics::Label::new("provider", provider.clone()),
                    metrics::Label::from_static_parts(label, value),
                ],
            )
        };
        Self {
            calls: OPERATIONS.map(|op| {
                (
                    labelled("storage_operations_total", "operation", op.as_str()),
                    labelled("storage_operation_seconds", "operation", op.as_str()),
                )
            }),
            bytes_in: labelled("storage_bytes_total", "direction", "in"),
            bytes_out: labelled("storage_bytes_total", "direction", "out"),
            provider,
        }
    }
}

tokio::task_local! {
    static CALLER: String;
}

/// Runs `work` with `caller` as the identity audit events name (a user id,
/// a service name). Without it, events say no caller.
pub async fn with_caller<F: Future>(caller: impl Into<String>, work: F) -> F::Output {
    CALLER.scope(caller.into(), work).await
}

fn current_caller() -> Option<String> {
    CALLER.try_with(|c| c.clone()).ok()
}

#[derive(Debug, Default)]
struct OperationStats {
    count: u64,
    errors: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    next_sample: usize,
}

/// Counts and timings of one provider's operations, shared by its
/// [`Metrics`] layer and whoever wants a [`MetricsSnapshot`].
#[derive(Debug)]
pub struct MetricsRecorder {
    provider: String,
    keys: FacadeKeys,
    operations: Mutex<BTreeMap<&'static str, OperationStats>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// One operation's figures in a [`MetricsSnapshot`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperationMetrics {
    /// Calls made.
    pub count: u64,
    /// Failed calls by error kind (`not found`, `unavailable`...).
    pub errors: BTreeMap<String, u64>,
    /// Latency percentiles over the last 4,096 calls.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

/// The figures of one provider at one moment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The provider's name.
    pub provider: String,
    /// Per operation (`put`, `get`, ...).
    pub operations: BTreeMap<&'static str, OperationMetrics>,
    /// Bytes written to the provider (put bodies).
    pub bytes_in: u64,
    /// Bytes read from it (get bodies, as streamed to the caller).
    pub bytes_out: u64,
}

impl MetricsRecorder {
    /// An empty recorder for `provider`.
    pub fn new(provider: impl Into<String>) -> Self {
        let provider = provider.into();
        Self {
            keys: FacadeKeys::new(&provider),
            provider,
            operations: Mutex::new(BTreeMap::new()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        }
    }

    fn record(&self, operation: Operation, elapsed: Duration, error: Option<ErrorKind>) {
        let op = operation.as_str();
        let (calls, seconds) = &self.keys.calls[slot(operation)];
        metrics::with_recorder(|r| r.register_counter(calls, &METADATA)).increment(1);
        metrics::with_recorder(|r| r.register_histogram(seconds, &METADATA))
            .record(elapsed.as_secs_f64());
        if let Some(kind) = error {
            metrics::counter!("storage_errors_total", "provider" => self.keys.provider.clone(), "operation" => op, "kind" => kind.as_str())
                .increment(1);
        }
        let mut operations = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let stats = operations.entry(op).or_default();
        stats.count += 1;
        if let Some(kind) = error {
            *stats.errors.entry(kind.as_str().to_owned()).or_default() += 1;
        }
        if stats.latencies.len() < SAMPLES {
            stats.latencies.push(elapsed);
        } else {
            let slot = stats.next_sample % SAMPLES;
            stats.latencies[slot] = elapsed;
        }
        stats.next_sample += 1;
    }

    fn add_bytes(&self, inbound: bool, bytes: u64) {
        let (counter, key) = if inbound {
            (&self.bytes_in, &self.keys.bytes_in)
        } else {
            (&self.bytes_out, &self.keys.bytes_out)
        };
        counter.fetch_add(bytes, Ordering::Relaxed);
        metrics::with_recorder(|r| r.register_counter(key, &METADATA)).increment(bytes);
    }

    /// The figures now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let operations = self.operations.lock().unwrap_or_else(|p| p.into_inner());
        let operations = operations
            .iter()
            .map(|(op, stats)| {
                let mut sorted = stats.latencies.clone();
                sorted.sort();
                let at = |q: f64| {
                    if sorted.is_empty() {
                        Duration::ZERO
                    } else {
                        let index =
                            ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
                        sorted[index]
                    }
                };
                let figures = OperationMetrics {
                    count: stats.count,
                    errors: stats.errors.clone(),
                    p50: at(0.50),
                    p90: at(0.90),
                    p99: at(0.99),
                };
                (*op, figures)
            })
            .collect();
        MetricsSnapshot {
            provider: self.provider.clone(),
            operations,
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

fn error_kind(result: &Result<impl Sized>) -> Option<ErrorKind> {
    result.as_ref().err().map(|err| err.kind())
}

/// Counts a byte stream's bytes as they pass.
fn counting(stream: ByteStream, recorder: Arc<MetricsRecorder>, inbound: bool) -> ByteStream {
    Box::pin(stream.inspect_ok(move |chunk| recorder.add_bytes(inbound, chunk.len() as u64)))
}

/// Records counts, errors by kind, bytes in and out and latencies of the
/// wrapped provider, both to the `metrics` crate facade (plug in
/// Prometheus or anything else) as `storage_operations_total`,
/// `storage_errors_total`, `storage_bytes_total` and
/// `storage_operation_seconds`, labelled by provider and operation, and to
/// its [`MetricsRecorder`] for snapshots.
pub struct Metrics<S> {
    inner: Arc<S>,
    recorder: Arc<MetricsRecorder>,
}

impl<S: fmt::Debug> fmt::Debug for Metrics<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Metrics<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        let recorder = Arc::new(MetricsRecorder::new(inner.name()));
        Self {
            inner: Arc::new(inner),
            recorder,
        }
    }

    /// The recorder, for snapshots.
    pub fn recorder(&self) -> Arc<MetricsRecorder> {
        self.recorder.clone()
    }

    async fn timed<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        self.recorder
            .record(operation, started.elapsed(), error_kind(&result));
        result
    }
}

#[crate::async_trait]
impl<S: Storage> Storage for Metrics<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        // Streams are counted as they pass; bytes once stored.
        let (body, whole) = match body {
            Body::Bytes(bytes) => {
                let len = bytes.len() as u64;
                (Body::Bytes(bytes), Some(len))
            }
            Body::Stream { stream, size } => (
                Body::Stream {
                    stream: counting(stream, self.recorder.clone(), true),
                    size,
                },
                None,
            ),
        };
        let result = self
            .timed(Operation::Put, self.inner.put(key, body, options))
            .await;
        if let (Ok(_), Some(len)) = (&result, whole) {
            self.recorder.add_bytes(true, len);
        }
        result
    }
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let result = self
            .timed(Operation::Get, self.inner.get(key, options))
            .await?;
        Ok(GetResult {
            body: counting(result.body, self.recorder.clone(), false),
            ..result
        })
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.timed(Operation::Head, self.inner.head(key)).await
    }
    async fn exists(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Head, self.inner.exists(key)).await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.timed(Operation::Delete, self.inner.delete(key)).await
    }
    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let recorder = self.recorder.clone();
        let started = Instant::now();
        let mut first = true;
        Box::pin(self.inner.list(prefix, options).inspect(move |item| {
            if first {
                first = false;
                recorder.record(
                    Operation::List,
                    started.elapsed(),
                    item.as_ref().err().map(|e| e.kind()),
                );
            }
        }))
    }
    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.timed(Operation::Copy, self.inner.copy(from, to)).await
    }
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.timed(Operation::Rename, self.inner.rename(from, to))
            .await
    }
    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        self.timed(
            Operation::Presign,
            self.inner.presign(method, key, expires_in, options),
        )
        .await
    }
}

/// Logs one structured `tracing` event per operation, at target
/// `storage::audit`: provider, operation, key, size, outcome (`ok` or the
/// error kind), duration in milliseconds, and the caller set with
/// [`with_caller`]. Events never carry bodies, credentials or presigned
/// URLs: a presign is logged with its key, method and expiry only.
pub struct Audit<S> {
    inner: Arc<S>,
}

impl<S: fmt::Debug> fmt::Debug for Audit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit").field("inner", &self.inner).finish()
    }
}

impl<S: Storage> Audit<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    async fn logged<T>(
        &self,
        operation: Operation,
        key: &str,
        size: impl Fn(&T) -> Option<u64>,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = call.await;
        // The field values are worked out only if an event is recorded:
        // without a subscriber that wants it, auditing costs a clock read.
        tracing::info!(
            target: "storage::audit",
            provider = self.inner.name(),
            operation = operation.as_str(),
            key,
            size = result.as_ref().ok().and_then(&size),
            outcome = match &result {
                Ok(_) => "ok",
                Err(err) => err.kind().as_str(),
            },
            duration_ms = started.elapsed().as_millis() as u64,
            caller = current_caller().as_deref(),
        );
        result
    }
}

#[crate::async_trait]
impl<S: Storage> Storage for Audit<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        self.logged(
            Operation::Put,
            key,
            |r: &PutResult| Some(r.size),
            self.inner.put(key, body, options),
        )
        .await
    }
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.logged(
            Operation::Get,
            key,
            |r: &GetResult| Some(r.len()),
            self.inner.get(key, options),
        )
        .await
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.logged(
            Operation::Head,
            key,
            |m: &ObjectMeta| Some(m.size),
            self.inner.head(key),
        )
        .await
    }
    async fn exists(&self, key: &Key) -> Result<bool> {
        self.logged(Operation::Head, key, |_| None, self.inner.exists(key))
            .await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.logged(Operation::Delete, key, |_| None, self.inner.delete(key))
            .await
    }
    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        tracing::info!(
            target: "storage::audit",
            provider = self.inner.name(),
            operation = "list",
            key = prefix.as_str(),
            caller = current_caller().as_deref(),
        );
        self.inner.list(prefix, options)
    }
    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.logged(
            Operation::Copy,
            from,
            |r: &PutResult| Some(r.size),
            self.inner.copy(from, to),
        )
        .await
    }
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.logged(
            Operation::Rename,
            from,
            |_| None,
            self.inner.rename(from, to),
        )
        .await
    }
    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        // The URL is a bearer credential: only its key and method are logged.
        tracing::debug!(target: "storage::audit", method = method.as_str(), expires_in_s = expires_in.as_secs(), "presign");
        self.logged(
            Operation::Presign,
            key,
            |_| None,
            self.inner.presign(method, key, expires_in, options),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_own_slot() {
        for (index, operation) in OPERATIONS.iter().enumerate() {
            assert_eq!(slot(*operation), index, "{operation}");
        }
    }
}
