//! The provider: every object encrypted before it reaches the inner store.

use std::sync::Arc;

use futures::StreamExt;
use storage_core::{
    Body, Capabilities, GetOptions, GetResult, Key, ListEntry, ListOptions, ListStream, ObjectMeta,
    Prefix, PutOptions, PutResult, Result, Storage, async_trait,
};

use crate::cipher::{
    Decryption, HEADER, MasterKey, SEGMENT, decrypt, encrypt, plain_size, segments, stored_range,
    stored_size,
};

/// Client-side encryption over any store.
///
/// Contents are AES-256-GCM encrypted in 64 KiB segments under a key
/// derived per object (see the [format](crate::cipher)); the inner store
/// sees only ciphertext. Keys, content types, cache control and user
/// metadata are stored as given, in clear. Sizes, ranges and listings are
/// in plaintext bytes; etags are the inner store's. Presigned URLs are not
/// offered: a client holding one would fetch ciphertext.
#[derive(Debug)]
pub struct EncryptedStorage {
    name: String,
    inner: Arc<dyn Storage>,
    key: MasterKey,
}

impl EncryptedStorage {
    /// Encrypts into `inner` with `key`. Errors name the inner store's
    /// provider, so give it this provider's name.
    pub fn new(inner: Arc<dyn Storage>, key: MasterKey) -> Self {
        Self {
            name: inner.name().to_owned(),
            inner,
            key,
        }
    }

    /// Metadata in plaintext terms.
    fn plain_meta(&self, mut meta: ObjectMeta) -> Result<ObjectMeta> {
        meta.size = plain_size(meta.size).map_err(|err| {
            err.context(
                storage_core::Operation::Head,
                &self.name,
                Some(meta.key.as_str()),
            )
        })?;
        // The inner checksum covers the ciphertext.
        meta.checksum = None;
        Ok(meta)
    }
}

#[async_trait]
impl Storage for EncryptedStorage {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        caps.presign = false;
        caps.presign_put = false;
        caps
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let plain = body.size_hint();
        let sealed = encrypt(&self.key, body.into_stream())?;
        let body = match plain {
            Some(plain) => Body::from_sized_stream(sealed, stored_size(plain)),
            None => Body::from_stream(sealed),
        };
        let mut result = self.inner.put(key, body, options).await?;
        result.size = plain_size(result.size)?;
        result.checksum = None;
        Ok(result)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let fail = |err: storage_core::Error| {
            err.context(storage_core::Operation::Get, &self.name, Some(key.as_str()))
        };
        let stored = self.inner.head(key).await?;
        options
            .check_conditions(stored.etag.as_deref())
            .map_err(fail)?;
        let stored_len = stored.size;
        let meta = self.plain_meta(stored)?;
        let plain = meta.size;
        let range = match options.range {
            Some(range) => range.resolve(plain).map_err(fail)?,
            None => 0..plain,
        };
        if range.is_empty() {
            return Ok(GetResult {
                meta,
                range,
                body: futures::stream::empty().boxed(),
            });
        }
        // Read the segments that hold the range, pinned to the version
        // just looked at; the header comes with them or is read apart.
        let pinned = |range: std::ops::Range<u64>| {
            let mut pin = GetOptions::default().with_range(range);
            if let Some(etag) = &meta.etag {
                pin = pin.with_if_match(etag.clone());
            }
            pin
        };
        let wanted = stored_range(range.start, range.end, plain);
        let first_segment = range.start / SEGMENT;
        let (header, from) = if first_segment == 0 {
            (None, 0)
        } else {
            let header = self
                .inner
                .get(key, pinned(0..HEADER))
                .await?
                .bytes()
                .await?;
            (Some(header), wanted.start)
        };
        debug_assert!(wanted.end <= stored_len);
        let stored_bytes = self.inner.get(key, pinned(from..wanted.end)).await?;
        let body = decrypt(
            &self.key,
            stored_bytes.body,
            Decryption {
                header,
                first_segment,
                segments: segments(plain),
                skip: range.start - first_segment * SEGMENT,
                take: range.end - range.start,
            },
        )?;
        Ok(GetResult { meta, range, body })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let stored = self.inner.head(key).await?;
        self.plain_meta(stored)
    }

    async fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(key).await
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(key).await
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let name = self.name.clone();
        self.inner
            .list(prefix, options)
            .map(move |entry| match entry? {
                ListEntry::Object(mut meta) => {
                    meta.size = plain_size(meta.size).map_err(|err| {
                        err.context(
                            storage_core::Operation::List,
                            &name,
                            Some(meta.key.as_str()),
                        )
                    })?;
                    meta.checksum = None;
                    Ok(ListEntry::Object(meta))
                }
                prefix => Ok(prefix),
            })
            .boxed()
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        // Object keys are derived from each object's own salt, so the
        // ciphertext copies as it is.
        let mut result = self.inner.copy(from, to).await?;
        result.size = plain_size(result.size)?;
        result.checksum = None;
        Ok(result)
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.inner.rename(from, to).await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}
