//! [`Fallback`]: serve from other providers while the primary is down.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;

use crate::body::{Body, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Key, Prefix};
use crate::object::{ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::{ListStream, Storage};

/// Where to go when the primary is down. In a configuration file, the
/// `fallback` table of a provider's `layers`:
///
/// ```toml
/// fallback = { providers = ["backup"], writes = true }
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FallbackConfig {
    /// Other configured providers, tried in order.
    pub providers: Vec<String>,
    /// Also send writes to a fallback while the primary is down (the put's
    /// result, and the manager's reference, name where the data went).
    /// Default: false (reads only).
    #[serde(default)]
    pub writes: bool,
}

/// Whether an error says the provider is down (rather than answering).
fn is_outage(err: &Error) -> bool {
    matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
}

/// Reads from the primary, and from the fallbacks in order when the
/// primary is down (Unavailable or Timeout, an open circuit breaker
/// included). With `writes`, puts go to the first fallback that takes
/// them while the primary is down, [`PutResult::stored_on`] naming it;
/// and a read the primary answers with NotFound is tried on the fallbacks
/// too, since the data may have gone there.
pub struct Fallback {
    primary: Arc<dyn Storage>,
    fallbacks: Vec<Arc<dyn Storage>>,
    writes: bool,
}

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("primary", &self.primary)
            .field(
                "fallbacks",
                &self
                    .fallbacks
                    .iter()
                    .map(|f| f.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("writes", &self.writes)
            .finish()
    }
}

impl Fallback {
    /// Wraps `primary` with `fallbacks`, tried in order.
    pub fn new(primary: Arc<dyn Storage>, fallbacks: Vec<Arc<dyn Storage>>, writes: bool) -> Self {
        Self {
            primary,
            fallbacks,
            writes,
        }
    }

    fn should_try_next(&self, err: &Error) -> bool {
        is_outage(err) || (self.writes && err.kind() == ErrorKind::NotFound)
    }

    async fn read<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Arc<dyn Storage>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let first_error = match call(self.primary.clone()).await {
            Ok(value) => return Ok(value),
            Err(err) if self.should_try_next(&err) => err,
            Err(err) => return Err(err),
        };
        for fallback in &self.fallbacks {
            match call(fallback.clone()).await {
                Ok(value) => {
                    if is_outage(&first_error) {
                        tracing::warn!(
                            primary = self.primary.name(),
                            fallback = fallback.name(),
                            "read served by a fallback"
                        );
                    }
                    return Ok(value);
                }
                Err(err) if self.should_try_next(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Err(first_error)
    }
}

#[crate::async_trait]
impl Storage for Fallback {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.primary.capabilities()
    }

    async fn health(&self) -> Result<()> {
        // The primary's health: a fallback must not hide that it is down.
        self.primary.health().await
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        if !self.writes {
            return self.primary.put(key, body, options).await;
        }
        let replay = match &body {
            Body::Bytes(bytes) => Some(bytes.clone()),
            Body::Stream { .. } => None,
        };
        let first_error = match self.primary.put(key, body, options.clone()).await {
            Ok(written) => return Ok(written),
            Err(err) if is_outage(&err) => err,
            Err(err) => return Err(err),
        };
        let Some(bytes) = replay else {
            return Err(first_error);
        };
        for fallback in &self.fallbacks {
            match fallback
                .put(key, Body::Bytes(bytes.clone()), options.clone())
                .await
            {
                Ok(mut written) => {
                    tracing::warn!(primary = self.primary.name(), fallback = fallback.name(), key = %key, "write sent to a fallback");
                    written.stored_on = Some(fallback.name().to_owned());
                    return Ok(written);
                }
                Err(err) if is_outage(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Err(first_error)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.read(|store| {
            let options = options.clone();
            async move { store.get(key, options).await }
        })
        .await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.read(|store| async move { store.head(key).await })
            .await
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        match self
            .read(|store| async move { store.exists(key).await })
            .await
        {
            Ok(false) if self.writes => {
                for fallback in &self.fallbacks {
                    if fallback.exists(key).await.unwrap_or(false) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            other => other,
        }
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.primary.delete(key).await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        // A listing is one stream: if the primary's first answer is an
        // outage, the first fallback lists instead.
        let primary = self.primary.clone();
        let fallbacks = self.fallbacks.clone();
        let prefix = prefix.clone();
        let stream = async move {
            let mut listing = primary.list(&prefix, options.clone()).peekable();
            let outage = matches!(std::pin::Pin::new(&mut listing).peek().await, Some(Err(err)) if is_outage(err));
            if outage && let Some(fallback) = fallbacks.first() {
                return fallback.list(&prefix, options);
            }
            Box::pin(listing) as ListStream
        };
        Box::pin(futures::stream::once(stream).flatten())
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.primary.copy(from, to).await
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.primary.rename(from, to).await
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        self.primary.presign(method, key, expires_in, options).await
    }
}
