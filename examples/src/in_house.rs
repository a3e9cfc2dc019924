//! A provider of your own, added at compile time: the whole recipe for a
//! third-party backend crate (here a module of the examples crate).
//!
//! `type = "in-house"` is an in-memory store with a company rule on top:
//! objects larger than `max_object_size` are refused with `QuotaExceeded`,
//! before anything is stored (a stream is counted as it arrives).
//!
//! ```toml
//! [providers.scratch]
//! type = "in-house"
//! max_object_size = "10MB"
//! ```
//!
//! 1. Implement [`Storage`] (here mostly by delegating).
//! 2. Describe the table with a `serde` struct (`deny_unknown_fields`, so
//!    a typo is an error naming the line).
//! 3. Submit a [`ProviderFactory`] with `inventory::submit!`.
//! 4. Make sure the binary links the crate. `inventory` registers through
//!    static constructors, and a crate the binary never references may not
//!    be linked at all: the type is then "unknown" at run time. Reference
//!    it: pass [`FACTORY`] to `Registry::with_factories`, or use any item
//!    of the crate (see `examples/tests/in_house.rs`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use storage_core::config::{
    ByteSize, ConfigError, ProviderConfig, ProviderFactory, ProviderFuture,
};
use storage_core::{
    Body, Capabilities, Error, ErrorKind, GetOptions, GetResult, Key, ListOptions, ListStream,
    MemoryStorage, ObjectMeta, Operation, Prefix, PresignMethod, PresignOptions, PresignedRequest,
    PutOptions, PutResult, Result, Storage, async_trait,
};

/// The `[providers.NAME]` table of `type = "in-house"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InHouseConfig {
    /// The largest object accepted.
    pub max_object_size: ByteSize,
}

/// The in-house provider.
#[derive(Debug)]
pub struct InHouseStorage {
    name: String,
    max_object_size: u64,
    objects: MemoryStorage,
}

impl InHouseStorage {
    /// A provider named `name` with this rule.
    pub fn new(name: impl Into<String>, config: InHouseConfig) -> Self {
        let name = name.into();
        Self {
            // Errors from the store name this provider.
            objects: MemoryStorage::with_name(name.clone()),
            name,
            max_object_size: config.max_object_size.0,
        }
    }

    fn too_large(&self, key: &Key) -> Error {
        Error::new(
            ErrorKind::QuotaExceeded,
            format!("objects here are at most {} bytes", self.max_object_size),
        )
        .context(Operation::Put, &self.name, Some(key.as_str()))
    }
}

#[async_trait]
impl Storage for InHouseStorage {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.objects.capabilities()
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        if body
            .size_hint()
            .is_some_and(|size| size > self.max_object_size)
        {
            return Err(self.too_large(key));
        }
        // A stream of unknown length is counted as it arrives; the memory
        // store writes nothing if the stream fails.
        let limit = self.max_object_size;
        let refusal = self.too_large(key);
        let mut seen = 0u64;
        let mut refusal = Some(refusal);
        let counted = body.into_stream().map(move |piece| {
            let piece = piece?;
            seen += piece.len() as u64;
            match refusal.take_if(|_| seen > limit) {
                Some(err) => Err(err),
                None => Ok(piece),
            }
        });
        self.objects
            .put(key, Body::from_stream(counted), options)
            .await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.objects.get(key, options).await
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.objects.head(key).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.objects.delete(key).await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        self.objects.list(prefix, options)
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        self.objects.copy(from, to).await
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.objects.rename(from, to).await
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        self.objects.presign(method, key, expires_in, options).await
    }
}

/// `type = "in-house"`.
pub const FACTORY: ProviderFactory = ProviderFactory {
    type_name: "in-house",
    description: "an in-memory store that refuses objects over max_object_size (an example of a third-party provider)",
    create,
};

storage_core::inventory::submit!(FACTORY);

fn create(table: &ProviderConfig<'_>) -> std::result::Result<ProviderFuture, ConfigError> {
    let config: InHouseConfig = table.parse()?;
    if config.max_object_size.0 == 0 {
        return Err(table.error("max_object_size must not be 0"));
    }
    let name = table.name().to_owned();
    Ok(Box::pin(async move {
        Ok(Arc::new(InHouseStorage::new(name, config)) as Arc<dyn Storage>)
    }))
}
