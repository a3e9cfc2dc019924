//! [`Retry`]: exponential backoff with full jitter, for retryable errors
//! only, with reads resumed where they broke off.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use serde::Deserialize;

use crate::body::{Body, ByteStream, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Key, Prefix};
use crate::object::{ObjectMeta, PutResult};
use crate::options::{ByteRange, GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::{ListStream, Storage};

/// How [`Retry`] retries. In a configuration file, the `retry` table of a
/// provider's `layers`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, the first included. Default: 4.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The first backoff's ceiling, in milliseconds; it doubles each time.
    /// Default: 100.
    #[serde(default = "default_base")]
    pub base_delay_ms: u64,
    /// The largest backoff ceiling, in milliseconds. Default: 5000.
    #[serde(default = "default_max_delay")]
    pub max_delay_ms: u64,
    /// The time budget of one operation, retries and waits included, in
    /// milliseconds. Default: 60000.
    #[serde(default = "default_budget")]
    pub budget_ms: u64,
}

fn default_attempts() -> u32 {
    4
}
fn default_base() -> u64 {
    100
}
fn default_max_delay() -> u64 {
    5_000
}
fn default_budget() -> u64 {
    60_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            base_delay_ms: default_base(),
            max_delay_ms: default_max_delay(),
            budget_ms: default_budget(),
        }
    }
}

impl RetryConfig {
    /// Sets the number of attempts.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the first backoff's ceiling.
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay_ms = delay.as_millis() as u64;
        self
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1):
    /// uniformly random up to `base × 2^(attempt-1)` capped at the maximum
    /// ("full jitter"), and never less than the backend's Retry-After.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base_delay_ms
            .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(20))
            .min(self.max_delay_ms);
        let jittered = Duration::from_millis(fastrand::u64(0..=ceiling));
        match retry_after {
            Some(after) => jittered.max(after),
            None => jittered,
        }
    }
}

/// The retry state of one operation.
struct Attempts<'a> {
    config: &'a RetryConfig,
    started: Instant,
    attempt: u32,
}

impl<'a> Attempts<'a> {
    fn new(config: &'a RetryConfig) -> Self {
        Self {
            config,
            started: Instant::now(),
            attempt: 1,
        }
    }

    /// Waits before the next attempt, or returns the error if it is not
    /// retryable or the attempts or the budget are spent.
    async fn next(&mut self, err: Error) -> Result<()> {
        if !err.is_retryable() || self.attempt >= self.config.max_attempts {
            return Err(err);
        }
        let delay = self.config.delay(self.attempt, err.retry_after());
        let budget = Duration::from_millis(self.config.budget_ms);
        if self.started.elapsed() + delay > budget {
            return Err(err);
        }
        tracing::debug!(attempt = self.attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
        tokio::time::sleep(delay).await;
        self.attempt += 1;
        Ok(())
    }
}

/// Retries retryable failures of the wrapped provider.
///
/// - Only errors with [`Error::is_retryable`] are retried, up to
///   `max_attempts` and within `budget_ms`, waiting per
///   [`RetryConfig::delay`].
/// - A put of bytes in memory is retried; a put of a one-shot stream is
///   not (its bytes are gone) and its error says so.
/// - A get whose body fails midway resumes from the byte it reached with a
///   ranged request pinned to the first answer's etag, so the caller sees
///   every byte once and never a short read; if the object changed
///   meanwhile, the stream ends with `PreconditionFailed`.
/// - A listing that fails midway resumes after the last name it yielded.
#[derive(Clone)]
pub struct Retry<S> {
    inner: Arc<S>,
    config: Arc<RetryConfig>,
}

impl<S> fmt::Debug for Retry<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S: Storage> Retry<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: RetryConfig) -> Self {
        Self {
            inner: Arc::new(inner),
            config: Arc::new(config),
        }
    }
}

impl<S: Storage> Retry<S> {
    async fn run<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempts = Attempts::new(&self.config);
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(err) => attempts.next(err).await?,
            }
        }
    }
}

/// Resumes a get body from the byte it reached.
struct Resume<S> {
    inner: Arc<S>,
    config: Arc<RetryConfig>,
    key: Key,
    etag: Option<String>,
    position: u64,
    end: u64,
    body: ByteStream,
    attempts_used: u32,
}

impl<S: Storage> Resume<S> {
    fn into_stream(self) -> ByteStream {
        Box::pin(stream::try_unfold(self, |mut state| async move {
            loop {
                if state.position >= state.end {
                    return Ok(None);
                }
                match state.body.next().await {
                    Some(Ok(chunk)) => {
                        state.position += chunk.len() as u64;
                        return Ok(Some((chunk, state)));
                    }
                    None => {
                        // The answer ended early: a short read is never
                        // returned; ask for the rest.
                        let err = Error::new(
                            ErrorKind::Unavailable,
                            format!("the body ended at byte {} of {}", state.position, state.end),
                        );
                        state.reopen(err).await?;
                    }
                    Some(Err(err)) => state.reopen(err).await?,
                }
            }
        }))
    }

    async fn reopen(&mut self, err: Error) -> Result<()> {
        let mut attempts = Attempts::new(&self.config);
        attempts.attempt = self.attempts_used.max(1);
        let mut err = err;
        loop {
            attempts.next(err).await?;
            self.attempts_used = attempts.attempt;
            let mut options =
                GetOptions::default().with_range(ByteRange::bounded(self.position..self.end));
            // Pin the version: bytes from another version would corrupt
            // the object silently.
            options.if_match = self.etag.clone();
            match self.inner.get(&self.key, options).await {
                Ok(result) => {
                    tracing::debug!(key = %self.key, from = self.position, "resumed a broken download");
                    self.body = result.body;
                    return Ok(());
                }
                Err(next) => err = next,
            }
        }
    }
}

#[crate::async_trait]
impl<S: Storage> Storage for Retry<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn health(&self) -> Result<()> {
        // One probe: a retried probe would hide a flaky provider.
        self.inner.health().await
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        match body {
            Body::Bytes(bytes) => {
                self.run(|| self.inner.put(key, Body::Bytes(bytes.clone()), options.clone()))
                    .await
            }
            stream => self.inner.put(key, stream, options).await.map_err(|err| {
                if err.is_retryable() {
                    let message = format!(
                        "{} (not retried: the body was a one-shot stream; put bytes to have it retried)",
                        err.message()
                    );
                    Error::new(err.kind(), message)
                        .with_retryable(true)
                        .context(crate::Operation::Put, self.inner.name(), Some(key.as_str()))
                        .with_source(err)
                } else {
                    err
                }
            }),
        }
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let result = self.run(|| self.inner.get(key, options.clone())).await?;
        let resume = Resume {
            inner: self.inner.clone(),
            config: self.config.clone(),
            key: key.clone(),
            etag: result.meta.etag.clone(),
            position: result.range.start,
            end: result.range.end,
            body: result.body,
            attempts_used: 1,
        };
        Ok(GetResult {
            meta: result.meta,
            range: result.range,
            body: resume.into_stream(),
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.run(|| self.inner.head(key)).await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.run(|| self.inner.exists(key)).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.run(|| self.inner.delete(key)).await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let inner = self.inner.clone();
        let config = self.config.clone();
        let prefix = prefix.clone();
        struct State<S> {
            inner: Arc<S>,
            config: Arc<RetryConfig>,
            prefix: Prefix,
            options: ListOptions,
            stream: Option<ListStream>,
            last_name: Option<String>,
            last_key: Option<Key>,
            attempts_used: u32,
        }
        let state = State {
            inner,
            config,
            prefix,
            options,
            stream: None,
            last_name: None,
            last_key: None,
            attempts_used: 1,
        };
        Box::pin(stream::try_unfold(state, |mut state| async move {
            loop {
                let stream = state.stream.get_or_insert_with(|| {
                    let mut options = state.options.clone();
                    if let Some(key) = &state.last_key
                        && options.start_after.as_ref().is_none_or(|after| after < key)
                    {
                        options.start_after = Some(key.clone());
                    }
                    state.inner.list(&state.prefix, options)
                });
                match stream.next().await {
                    None => return Ok(None),
                    Some(Ok(entry)) => {
                        // After a resume, skip what was already yielded.
                        if state
                            .last_name
                            .as_deref()
                            .is_some_and(|last| entry.name() <= last)
                        {
                            continue;
                        }
                        state.last_name = Some(entry.name().to_owned());
                        if let Some(meta) = entry.as_object() {
                            state.last_key = Some(meta.key.clone());
                        }
                        return Ok(Some((entry, state)));
                    }
                    Some(Err(err)) => {
                        let mut attempts = Attempts::new(&state.config);
                        attempts.attempt = state.attempts_used;
                        attempts.next(err).await?;
                        state.attempts_used = attempts.attempt;
                        state.stream = None;
                    }
                }
            }
        }))
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.run(|| self.inner.copy(from, to)).await
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        // A rename that failed after moving answers NotFound on a retry;
        // report the first error rather than a misleading NotFound.
        let mut attempts = Attempts::new(&self.config);
        let mut first_error: Option<Error> = None;
        loop {
            match self.inner.rename(from, to).await {
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == ErrorKind::NotFound && first_error.is_some() => {
                    if self.inner.exists(to).await.unwrap_or(false) {
                        return Ok(());
                    }
                    return Err(first_error.unwrap_or(err));
                }
                Err(err) => {
                    let kind = err.kind();
                    let message = err.message().to_owned();
                    match attempts.next(err).await {
                        Ok(()) => {
                            first_error.get_or_insert_with(|| Error::new(kind, message));
                        }
                        Err(err) => return Err(err),
                    }
                }
            }
        }
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        self.run(|| self.inner.presign(method, key, expires_in, options.clone()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_under_a_doubling_ceiling_and_honours_retry_after() {
        let config = RetryConfig::default();
        for attempt in 1..=8 {
            let ceiling = (100u64 << (attempt - 1)).min(5_000);
            for _ in 0..50 {
                assert!(config.delay(attempt, None) <= Duration::from_millis(ceiling));
            }
        }
        let after = Duration::from_secs(2);
        assert!(config.delay(1, Some(after)) >= after);
    }
}
