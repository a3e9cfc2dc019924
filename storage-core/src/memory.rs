//! [`MemoryStorage`]: a complete provider that keeps objects in memory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream};

use crate::body::{Body, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{Key, Prefix};
use crate::object::{Checksum, ListEntry, ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions, WriteMode};
use crate::storage::{ListStream, Storage};

/// `type = "memory"`: an empty in-memory store; its table takes no fields.
pub const FACTORY: crate::config::ProviderFactory = crate::config::ProviderFactory {
    type_name: "memory",
    description: "objects in process memory, lost on exit (tests, caches)",
    create: create_from_config,
};

inventory::submit!(FACTORY);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MemoryConfig {}

fn create_from_config(
    config: &crate::config::ProviderConfig<'_>,
) -> std::result::Result<crate::config::ProviderFuture, crate::config::ConfigError> {
    let MemoryConfig {} = config.parse()?;
    let store = MemoryStorage::with_name(config.name());
    Ok(Box::pin(
        async move { Ok(Arc::new(store) as Arc<dyn Storage>) },
    ))
}

/// Chunk size of the streams a get returns (slices of the stored bytes,
/// not copies).
const CHUNK: usize = 1 << 20;
/// Entries read under one lock acquisition while listing.
const LIST_PAGE: usize = 1000;

/// A provider that keeps objects in process memory.
///
/// It implements the whole contract except presigning (there is no server
/// to send a URL to), with the same semantics as every other backend:
/// conditional writes are atomic, listings are ordered and paged, gets
/// stream. Use it in tests and as a cache; its content is lost when it is
/// dropped.
///
/// ```
/// # tokio_test_block_on(async {
/// use storage_core::{Key, MemoryStorage, Storage, PutOptions, GetOptions};
///
/// let store = MemoryStorage::new();
/// let key = Key::new("notes/hello.txt")?;
/// store.put(&key, "hello".into(), PutOptions::default()).await?;
/// let bytes = store.get(&key, GetOptions::default()).await?.bytes().await?;
/// assert_eq!(&bytes[..], b"hello");
/// # Ok::<(), storage_core::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    objects: RwLock<BTreeMap<String, StoredObject>>,
    next_etag: AtomicU64,
}

#[derive(Debug, Clone)]
struct StoredObject {
    meta: ObjectMeta,
    data: Bytes,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// An empty store named `"memory"`.
    pub fn new() -> Self {
        Self::with_name("memory")
    }

    /// An empty store with a provider name for errors and logs.
    pub fn with_name(name: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                objects: RwLock::new(BTreeMap::new()),
                next_etag: AtomicU64::new(1),
            }),
        }
    }

    fn error(&self, err: Error, operation: Operation, key: Option<&str>) -> Error {
        err.context(operation, &self.inner.name, key)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, StoredObject>> {
        // A panic while holding the lock cannot leave a half-updated map:
        // every write is a single insert or remove.
        self.inner
            .objects
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, StoredObject>> {
        self.inner
            .objects
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn new_etag(&self) -> String {
        let n = self.inner.next_etag.fetch_add(1, Ordering::Relaxed);
        format!("\"m{n:x}\"")
    }

    fn lookup(&self, key: &Key) -> Option<StoredObject> {
        self.read().get(key.as_str()).cloned()
    }
}

/// Checks a write mode against the current object, if any.
fn check_mode(mode: &WriteMode, current: Option<&StoredObject>) -> Result<()> {
    match (mode, current) {
        (WriteMode::CreateNew, Some(_)) => Err(Error::new(
            ErrorKind::AlreadyExists,
            "an object already exists at this key",
        )),
        (WriteMode::UpdateIfMatch(_), None) => Err(Error::new(
            ErrorKind::PreconditionFailed,
            "no object exists at this key to update",
        )),
        (WriteMode::UpdateIfMatch(etag), Some(current))
            if current.meta.etag.as_deref() != Some(etag.as_str()) =>
        {
            Err(Error::new(
                ErrorKind::PreconditionFailed,
                "the object's etag does not match",
            ))
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::all();
        caps.presign = false;
        caps
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let fail = |err| self.error(err, Operation::Put, Some(key.as_str()));
        // Fail fast before reading a large body; checked again under the lock.
        if options.mode != WriteMode::Overwrite {
            check_mode(&options.mode, self.lookup(key).as_ref()).map_err(fail)?;
        }
        let data = match body {
            Body::Bytes(bytes) => bytes,
            body => {
                let mut buffer = BytesMut::with_capacity(body.size_hint().unwrap_or(0) as usize);
                let mut chunks = body.into_stream();
                while let Some(chunk) = chunks.try_next().await.map_err(fail)? {
                    buffer.extend_from_slice(&chunk);
                }
                buffer.freeze()
            }
        };
        let mut meta = ObjectMeta::new(key.clone(), data.len() as u64);
        meta.content_type = options.content_type;
        meta.cache_control = options.cache_control;
        meta.user_metadata = options.user_metadata;
        meta.etag = Some(self.new_etag());
        meta.last_modified = Some(SystemTime::now());
        meta.checksum = Some(Checksum::crc32c(&data));
        let result = put_result(&meta);
        let mut objects = self.write();
        check_mode(&options.mode, objects.get(key.as_str())).map_err(fail)?;
        objects.insert(key.as_str().to_owned(), StoredObject { meta, data });
        Ok(result)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let fail = |err| self.error(err, Operation::Get, Some(key.as_str()));
        let object = self
            .lookup(key)
            .ok_or_else(|| fail(Error::not_found(key.as_str())))?;
        options
            .check_conditions(object.meta.etag.as_deref())
            .map_err(fail)?;
        let size = object.meta.size;
        let range = match options.range {
            Some(range) => range.resolve(size).map_err(fail)?,
            None => 0..size,
        };
        let data = object.data.slice(range.start as usize..range.end as usize);
        let chunks: Vec<Result<Bytes>> = (0..data.len())
            .step_by(CHUNK)
            .map(|start| Ok(data.slice(start..(start + CHUNK).min(data.len()))))
            .collect();
        Ok(GetResult {
            meta: object.meta,
            range,
            body: Box::pin(stream::iter(chunks)),
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.lookup(key).map(|object| object.meta).ok_or_else(|| {
            self.error(
                Error::not_found(key.as_str()),
                Operation::Head,
                Some(key.as_str()),
            )
        })
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        Ok(self.write().remove(key.as_str()).is_some())
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let store = self.clone();
        let prefix = prefix.as_str().to_owned();
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix.as_str() => {
                Bound::Excluded(after.as_str().to_owned())
            }
            _ => Bound::Included(prefix.clone()),
        };
        let pages = stream::unfold(Some(start), move |cursor| {
            let store = store.clone();
            let prefix = prefix.clone();
            async move {
                let cursor = cursor?;
                let (page, next) = store.list_page(&prefix, cursor, options.delimiter);
                Some((stream::iter(page.into_iter().map(Ok)), next))
            }
        });
        let start_after = options.start_after.map(Key::into_string);
        Box::pin(pages.flatten().try_filter(move |entry| {
            let keep = start_after
                .as_deref()
                .is_none_or(|after| entry.name() > after);
            std::future::ready(keep)
        }))
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        let mut objects = self.write();
        let mut object = objects.get(from.as_str()).cloned().ok_or_else(|| {
            self.error(
                Error::not_found(from.as_str()),
                Operation::Copy,
                Some(from.as_str()),
            )
        })?;
        if from == to {
            return Ok(put_result(&object.meta));
        }
        object.meta.key = to.clone();
        object.meta.etag = Some(self.new_etag());
        object.meta.last_modified = Some(SystemTime::now());
        let result = put_result(&object.meta);
        objects.insert(to.as_str().to_owned(), object);
        Ok(result)
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let mut objects = self.write();
        let mut object = objects.remove(from.as_str()).ok_or_else(|| {
            self.error(
                Error::not_found(from.as_str()),
                Operation::Rename,
                Some(from.as_str()),
            )
        })?;
        object.meta.key = to.clone();
        objects.insert(to.as_str().to_owned(), object);
        Ok(())
    }
}

impl MemoryStorage {
    /// One page of a listing from `cursor`, and the cursor of the next page
    /// (`None` at the end).
    fn list_page(
        &self,
        prefix: &str,
        cursor: Bound<String>,
        delimiter: bool,
    ) -> (Vec<ListEntry>, Option<Bound<String>>) {
        let objects = self.read();
        let mut page = Vec::new();
        let mut cursor = cursor;
        while page.len() < LIST_PAGE {
            let bounds = (cursor.clone(), Bound::Unbounded);
            let Some((key, object)) = objects.range::<String, _>(bounds).next() else {
                return (page, None);
            };
            if !key.starts_with(prefix) {
                return (page, None);
            }
            let rest = &key[prefix.len()..];
            match rest.find('/').filter(|_| delimiter) {
                Some(slash) => {
                    let common = format!("{prefix}{}", &rest[..=slash]);
                    // Every key under `common` sorts before `common` with its
                    // trailing '/' replaced by '0', the next byte.
                    let mut after = common.clone();
                    after.pop();
                    after.push('0');
                    cursor = Bound::Included(after);
                    page.push(ListEntry::Prefix(common));
                }
                None => {
                    cursor = Bound::Excluded(key.clone());
                    page.push(ListEntry::Object(object.meta.clone()));
                }
            }
        }
        (page, Some(cursor))
    }
}

fn put_result(meta: &ObjectMeta) -> PutResult {
    let mut result = PutResult::new(meta.size, meta.etag.clone());
    result.version = meta.version.clone();
    result.checksum = meta.checksum;
    result
}
