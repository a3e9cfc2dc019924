//! A test plugin: the in-memory store behind the plugin boundary, with
//! faults on demand (settings of its `[providers.NAME]` table):
//!
//! - `panic_in_create = true`: `create` panics.
//! - `panic_after_chunks = N`: a get's stream, cut in 1000-byte chunks,
//!   panics after N of them.
//! - `panic_in_head = true`: `head` panics inside its future.
//! - `sleep_ms = N`: every get first sleeps on a tokio timer, which needs
//!   the plugin's runtime to be entered when the host polls.
//! - `log = "text"`: `create` logs the text at warn level.
//!
//! Type `"memory"` is the plain in-memory store, for the conformance kit.
//! `cargo xtask plugins` also builds this crate with `panic = "abort"`, to
//! check that the host refuses it.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use storage_core::{
    Body, Bytes, Capabilities, GetOptions, GetResult, Key, ListOptions, ListStream, MemoryStorage,
    ObjectMeta, Prefix, PutOptions, PutResult, Result, Storage, async_trait,
};
use storage_plugin_api::export::ProviderSettings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    panic_in_create: bool,
    panic_after_chunks: Option<usize>,
    #[serde(default)]
    panic_in_head: bool,
    sleep_ms: Option<u64>,
    log: Option<String>,
}

/// The in-memory store with faults.
#[derive(Debug)]
pub struct Faulty {
    inner: MemoryStorage,
    panic_after_chunks: Option<usize>,
    panic_in_head: bool,
    sleep: Option<Duration>,
}

async fn open_faulty(settings: ProviderSettings) -> Result<Faulty> {
    let faults: Faults = settings.parse()?;
    if faults.panic_in_create {
        panic!("asked to panic in create");
    }
    if let Some(line) = faults.log {
        tracing::warn!(answer = 42, "{line}");
    }
    Ok(Faulty {
        inner: MemoryStorage::with_name(settings.name()),
        panic_after_chunks: faults.panic_after_chunks,
        panic_in_head: faults.panic_in_head,
        sleep: faults.sleep_ms.map(Duration::from_millis),
    })
}

async fn open_memory(settings: ProviderSettings) -> Result<MemoryStorage> {
    let _: serde::de::IgnoredAny = settings.parse()?;
    Ok(MemoryStorage::with_name(settings.name()))
}

#[async_trait]
impl Storage for Faulty {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        self.inner.put(key, body, options).await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        if let Some(sleep) = self.sleep {
            tokio::time::sleep(sleep).await;
        }
        let mut result = self.inner.get(key, options).await?;
        if let Some(limit) = self.panic_after_chunks {
            // The memory store answers in one chunk: cut it in 1000-byte
            // pieces, so there is a middle to panic in.
            result.body = result
                .body
                .flat_map(|chunk| {
                    let pieces: Vec<Result<Bytes>> = match chunk {
                        Ok(bytes) => (0..bytes.len())
                            .step_by(1000)
                            .map(|at| Ok(bytes.slice(at..(at + 1000).min(bytes.len()))))
                            .collect(),
                        Err(err) => vec![Err(err)],
                    };
                    futures::stream::iter(pieces)
                })
                .enumerate()
                .map(move |(i, chunk)| {
                    if i >= limit {
                        panic!("asked to panic after {limit} chunks");
                    }
                    chunk
                })
                .boxed();
        }
        Ok(result)
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        if self.panic_in_head {
            panic!("asked to panic in head");
        }
        self.inner.head(key).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(key).await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        self.inner.list(prefix, options)
    }
}

storage_plugin_api::export_plugin!("faulty" => open_faulty, "memory" => open_memory);
