//! [`Timeouts`]: deadlines for calls and for stalled streams.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use serde::Deserialize;

use crate::body::{Body, ByteStream, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{Key, Prefix};
use crate::object::{ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::{ListStream, Storage};

/// Deadlines. In a configuration file, the `timeout` table of a provider's
/// `layers`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// The deadline of one call that moves no body (head, delete, copy,
    /// list pages, a get until its body starts), in milliseconds. Default:
    /// 30000.
    #[serde(default = "default_operation")]
    pub operation_ms: u64,
    /// The longest a body (a get's, or a put's source) may go without a
    /// byte before it fails with `Timeout`, in milliseconds. Default: 30000.
    #[serde(default = "default_stall")]
    pub stall_ms: u64,
}

fn default_operation() -> u64 {
    30_000
}
fn default_stall() -> u64 {
    30_000
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            operation_ms: default_operation(),
            stall_ms: default_stall(),
        }
    }
}

impl TimeoutConfig {
    /// Sets both deadlines.
    pub fn new(operation: Duration, stall: Duration) -> Self {
        Self {
            operation_ms: operation.as_millis() as u64,
            stall_ms: stall.as_millis() as u64,
        }
    }
}

/// Puts deadlines on the wrapped provider: each call must answer within
/// `operation_ms`, and no body may stall for more than `stall_ms`. A
/// deadline that passes is a retryable `Timeout`, so a retry layer outside
/// tries again.
pub struct Timeouts<S> {
    inner: Arc<S>,
    operation: Duration,
    stall: Duration,
}

impl<S: fmt::Debug> fmt::Debug for Timeouts<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeouts")
            .field("inner", &self.inner)
            .field("operation", &self.operation)
            .field("stall", &self.stall)
            .finish()
    }
}

impl<S: Storage> Timeouts<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: TimeoutConfig) -> Self {
        Self {
            inner: Arc::new(inner),
            operation: Duration::from_millis(config.operation_ms),
            stall: Duration::from_millis(config.stall_ms),
        }
    }

    async fn bounded<T>(
        &self,
        operation: Operation,
        key: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.operation, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("no answer within {} ms", self.operation.as_millis()),
            )
            .context(operation, self.inner.name(), Some(key))),
        }
    }
}

use std::future::Future;

/// Fails a stream that yields nothing for `stall`.
pub(crate) fn stall_guard(body: ByteStream, stall: Duration, what: &'static str) -> ByteStream {
    Box::pin(stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(stall, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("the {what} stalled: no bytes for {} ms", stall.as_millis()),
                )),
                None,
            )),
        }
    }))
}

#[crate::async_trait]
impl<S: Storage> Storage for Timeouts<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn health(&self) -> Result<()> {
        match tokio::time::timeout(self.operation, self.inner.health()).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the health probe had no answer within {} ms",
                    self.operation.as_millis()
                ),
            )
            .context(Operation::Head, self.inner.name(), None)),
        }
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        // A put's duration grows with its size: only its source is watched
        // for stalls.
        let body = match body {
            Body::Stream { stream, size } => Body::Stream {
                stream: stall_guard(stream, self.stall, "upload source"),
                size,
            },
            bytes => bytes,
        };
        self.inner.put(key, body, options).await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let result = self
            .bounded(Operation::Get, key, self.inner.get(key, options))
            .await?;
        Ok(GetResult {
            body: stall_guard(result.body, self.stall, "download"),
            ..result
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.bounded(Operation::Head, key, self.inner.head(key))
            .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.bounded(Operation::Head, key, self.inner.exists(key))
            .await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.bounded(Operation::Delete, key, self.inner.delete(key))
            .await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let stall = self.operation;
        let inner = self.inner.list(prefix, options);
        Box::pin(stream::unfold(Some(inner), move |state| async move {
            let mut listing = state?;
            match tokio::time::timeout(stall, listing.next()).await {
                Ok(Some(item)) => Some((item, Some(listing))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(Error::new(
                        ErrorKind::Timeout,
                        format!("the listing stalled: no entry for {} ms", stall.as_millis()),
                    )),
                    None,
                )),
            }
        }))
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.bounded(Operation::Copy, from, self.inner.copy(from, to))
            .await
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.bounded(Operation::Rename, from, self.inner.rename(from, to))
            .await
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        self.bounded(
            Operation::Presign,
            key,
            self.inner.presign(method, key, expires_in, options),
        )
        .await
    }
}
