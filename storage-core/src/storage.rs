//! The contract: one trait every backend implements.

use std::fmt::Debug;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;

use crate::body::{Body, GetResult};
use crate::capabilities::Capabilities;
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Key, Prefix};
use crate::object::{ListEntry, ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};

/// A stream of listing entries, in lexicographic byte order of their names.
pub type ListStream = Pin<Box<dyn Stream<Item = Result<ListEntry>> + Send + 'static>>;

/// A storage provider: one bucket, folder or container of objects.
///
/// The namespace is flat, as in S3: `a` and `a/b` are two unrelated keys
/// that can both exist; writing `a/b` creates no object `a/` or `a`. Every
/// method has one meaning on every backend, stated below and checked by
/// the [conformance kit](crate::conformance) (feature `conformance`).
///
/// Keys reach a provider already validated ([`Key`]), so no provider
/// parses or sanitises paths. Errors carry the provider's
/// [`name`](Storage::name), the operation and the key.
///
/// The trait is object-safe: applications hold an `Arc<dyn Storage>` and
/// switch backends by configuration.
#[async_trait]
pub trait Storage: Debug + Send + Sync + 'static {
    /// The provider's name, as configured (`"local"`, `"media"`); used in
    /// errors, logs and metrics.
    fn name(&self) -> &str;

    /// What this backend supports. Operations or options it lacks fail
    /// with `Unsupported` and change nothing.
    fn capabilities(&self) -> Capabilities;

    /// Stores `body` at `key`.
    ///
    /// - The write is atomic: readers see the old object or the new one,
    ///   never part of one, and a failed or cancelled put leaves the old
    ///   object (or nothing) in place.
    /// - With [`WriteMode::Overwrite`](crate::WriteMode::Overwrite) an
    ///   existing object is replaced, metadata included. Of concurrent
    ///   writers to one key, one writer's complete content remains.
    /// - With [`WriteMode::CreateNew`](crate::WriteMode::CreateNew) an
    ///   existing object fails the put with `AlreadyExists`.
    /// - With [`WriteMode::UpdateIfMatch`](crate::WriteMode::UpdateIfMatch)
    ///   a missing object or another etag fails with `PreconditionFailed`.
    /// - A streamed body is consumed once, in chunks; it is never held
    ///   whole in memory. An error from the stream fails the put and
    ///   leaves no object behind.
    ///
    /// Returns the size, etag and checksum of what was stored.
    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult>;

    /// Reads the object at `key`.
    ///
    /// - A missing key fails with `NotFound`.
    /// - With a [`range`](GetOptions::range), only those bytes are
    ///   streamed, as [`ByteRange::resolve`](crate::ByteRange::resolve)
    ///   says: a bounded range past the end is cut at the end; a range
    ///   that starts at or past the end fails with `RangeNotSatisfiable`.
    /// - `if_match` differing from the current etag fails with
    ///   `PreconditionFailed`; `if_none_match` equal to it fails with
    ///   `NotModified`.
    /// - Conditions are checked before the range.
    ///
    /// The metadata describes the whole object; the body streams the
    /// requested bytes of the version the metadata describes.
    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult>;

    /// Returns the metadata of the object at `key`, or `NotFound`.
    async fn head(&self, key: &Key) -> Result<ObjectMeta>;

    /// Whether an object is at `key`: [`head`](Storage::head) with
    /// `NotFound` mapped to `false`. Other errors are errors.
    async fn exists(&self, key: &Key) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Removes the object at `key`.
    ///
    /// Deleting a missing key is not an error: it returns `Ok(false)`;
    /// removing an object returns `Ok(true)`. Backends that cannot tell
    /// (S3 answers 204 either way) check first and say so in their docs.
    /// Other keys, `key/child` included, are untouched.
    async fn delete(&self, key: &Key) -> Result<bool>;

    /// Lists the objects whose keys start with `prefix`, in lexicographic
    /// order of their UTF-8 bytes, each key once; pagination happens
    /// inside the stream.
    ///
    /// With [`delimiter`](ListOptions::delimiter), a key that continues
    /// past a `/` after the prefix is folded into its common prefix (the
    /// prefix, the rest up to and including the next `/`), reported once,
    /// in order among the objects. Without it, every key under the prefix
    /// is listed, at any depth.
    ///
    /// With [`start_after`](ListOptions::start_after), only names greater
    /// than that key are returned.
    ///
    /// A listing started while others write reports each key that exists
    /// for its whole duration; keys written or removed meanwhile may or
    /// may not appear.
    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream;

    /// Copies the object at `from` to `to` on the server side, content and
    /// metadata, replacing any object at `to`. Returns what was written.
    ///
    /// A missing `from` fails with `NotFound`. Copying a key to itself
    /// leaves the object unchanged. Backends without server-side copy fail
    /// with `Unsupported` (see [`Capabilities::copy`]).
    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        let _ = to;
        Err(unsupported(
            self,
            "server-side copy",
            crate::Operation::Copy,
            from,
        ))
    }

    /// Moves the object at `from` to `to`, replacing any object at `to`.
    /// Afterwards `from` is gone and `to` has its content and metadata.
    ///
    /// A missing `from` fails with `NotFound`. Where the backend has no
    /// atomic rename this is a copy then a delete, and a crash in between
    /// leaves both. Backends without it fail with `Unsupported`.
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let _ = to;
        Err(unsupported(
            self,
            "server-side rename",
            crate::Operation::Rename,
            from,
        ))
    }

    /// A cheap real probe of the backend: `Ok` if it answers. The default
    /// asks whether a key that nobody writes exists (one HEAD or `stat`);
    /// backends with a cheaper health call may override it. Nothing is
    /// written.
    async fn health(&self) -> Result<()> {
        let probe = Key::new(".storage-health-probe").map_err(Error::from)?;
        self.exists(&probe).await.map(drop)
    }

    /// Signs a request that lets a client without credentials GET or PUT
    /// the object at `key` until `expires_in` from now.
    ///
    /// Signing does no I/O and does not check that the object exists. The
    /// URL is refused once expired, for another method, for another key,
    /// or if altered in any way. An expiry longer than the backend allows
    /// fails with `InvalidInput`. Backends without presigning fail with
    /// `Unsupported`.
    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        let _ = (method, expires_in, options);
        Err(unsupported(
            self,
            "presigned URLs",
            crate::Operation::Presign,
            key,
        ))
    }
}

fn unsupported<S: Storage + ?Sized>(
    storage: &S,
    what: &str,
    operation: crate::Operation,
    key: &Key,
) -> Error {
    Error::unsupported(format!("this backend has no {what}")).context(
        operation,
        storage.name(),
        Some(key.as_str()),
    )
}

/// The future an `#[async_trait]` method returns.
type BoxedCall<'a, T> = Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;

/// `Storage` for pointers to a `Storage`, handing back the pointee's own
/// future. (Written as `async fn`, each call through an `Arc` would box
/// one more future around it: a stacked provider is an `Arc` in an `Arc`
/// per layer, so that was two allocations and two moves of every result
/// per layer per call.) The signatures are the ones `#[async_trait]`
/// gives the trait's methods.
macro_rules! forward_storage {
    ($ty:ty) => {
        #[async_trait]
        impl<S: Storage + ?Sized> Storage for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn put<'life0, 'life1, 'async_trait>(
                &'life0 self,
                key: &'life1 Key,
                body: Body,
                options: PutOptions,
            ) -> BoxedCall<'async_trait, PutResult>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                (**self).put(key, body, options)
            }
            fn get<'life0, 'life1, 'async_trait>(
                &'life0 self,
                key: &'life1 Key,
                options: GetOptions,
            ) -> BoxedCall<'async_trait, GetResult>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                (**self).get(key, options)
            }
            fn head<'life0, 'life1, 'async_trait>(
                &'life0 self,
                key: &'life1 Key,
            ) -> BoxedCall<'async_trait, ObjectMeta>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                (**self).head(key)
            }
            fn exists<'life0, 'life1, 'async_trait>(
                &'life0 self,
                key: &'life1 Key,
            ) -> BoxedCall<'async_trait, bool>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                (**self).exists(key)
            }
            fn delete<'life0, 'life1, 'async_trait>(
                &'life0 self,
                key: &'life1 Key,
            ) -> BoxedCall<'async_trait, bool>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                (**self).delete(key)
            }
            fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
                (**self).list(prefix, options)
            }
            fn copy<'life0, 'life1, 'life2, 'async_trait>(
                &'life0 self,
                from: &'life1 Key,
                to: &'life2 Key,
            ) -> BoxedCall<'async_trait, PutResult>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                'life2: 'async_trait,
                Self: 'async_trait,
            {
                (**self).copy(from, to)
            }
            fn rename<'life0, 'life1, 'life2, 'async_trait>(
                &'life0 self,
                from: &'life1 Key,
                to: &'life2 Key,
            ) -> BoxedCall<'async_trait, ()>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                'life2: 'async_trait,
                Self: 'async_trait,
            {
                (**self).rename(from, to)
            }
            fn presign<'life0, 'life1, 'async_trait>(
                &'life0 self,
                method: PresignMethod,
                key: &'life1 Key,
                expires_in: Duration,
                options: PresignOptions,
            ) -> BoxedCall<'async_trait, PresignedRequest>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                Self: 'async_trait,
            {
                (**self).presign(method, key, expires_in, options)
            }
            fn health<'life0, 'async_trait>(&'life0 self) -> BoxedCall<'async_trait, ()>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                (**self).health()
            }
        }
    };
}

forward_storage!(Arc<S>);
forward_storage!(Box<S>);
