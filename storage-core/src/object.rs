//! Object metadata and the results of writes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use crate::key::Key;

/// User metadata: string pairs stored with an object (S3's `x-amz-meta-*`).
///
/// Names are compared as given; backends that fold case (S3 lower-cases
/// names) are documented as such in their capability tables. Use lower-case
/// ASCII names to be portable.
pub type UserMetadata = BTreeMap<String, String>;

/// What is known about a stored object.
///
/// From [`head`](crate::Storage::head) and [`get`](crate::Storage::get)
/// every field the backend stores is filled. Listings fill at least `key`
/// and `size`; the rest only where the backend's listing returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectMeta {
    /// The object's key.
    pub key: Key,
    /// The size in bytes.
    pub size: u64,
    /// The content type given at write time, if any.
    pub content_type: Option<String>,
    /// The cache control given at write time, if any.
    pub cache_control: Option<String>,
    /// An opaque tag that changes whenever the content is replaced; the
    /// value to pass to `if-match` and
    /// [`WriteMode::UpdateIfMatch`](crate::WriteMode::UpdateIfMatch).
    pub etag: Option<String>,
    /// The backend's version or generation of this object, if it has
    /// versions.
    pub version: Option<String>,
    /// When the object was last written.
    pub last_modified: Option<SystemTime>,
    /// User metadata given at write time.
    pub user_metadata: UserMetadata,
    /// A checksum of the whole content, where the backend knows one.
    pub checksum: Option<Checksum>,
}

impl ObjectMeta {
    /// Metadata with only a key and a size; other fields empty.
    pub fn new(key: Key, size: u64) -> Self {
        Self {
            key,
            size,
            content_type: None,
            cache_control: None,
            etag: None,
            version: None,
            last_modified: None,
            user_metadata: UserMetadata::new(),
            checksum: None,
        }
    }
}

/// A checksum of an object's whole content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Checksum {
    /// CRC-32C (Castagnoli), as S3's `x-amz-checksum-crc32c` and GCS's
    /// `crc32c` report it.
    Crc32c(u32),
    /// MD5, as GCS's `md5Hash` and S3's single-part etags report it.
    Md5([u8; 16]),
    /// SHA-256.
    Sha256([u8; 32]),
}

impl Checksum {
    /// The algorithm's name in lower case.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Crc32c(_) => "crc32c",
            Checksum::Md5(_) => "md5",
            Checksum::Sha256(_) => "sha256",
        }
    }

    /// The CRC-32C of `data`.
    pub fn crc32c(data: &[u8]) -> Self {
        Checksum::Crc32c(crc32c::crc32c(data))
    }
}

impl fmt::Display for Checksum {
    /// `algorithm:hex`, for example `crc32c:e3069283`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.algorithm())?;
        match self {
            Checksum::Crc32c(value) => write!(f, "{value:08x}"),
            Checksum::Md5(bytes) => bytes.iter().try_for_each(|b| write!(f, "{b:02x}")),
            Checksum::Sha256(bytes) => bytes.iter().try_for_each(|b| write!(f, "{b:02x}")),
        }
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a successful put (or copy) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutResult {
    /// The number of bytes stored.
    pub size: u64,
    /// The new object's etag, if the backend reports one.
    pub etag: Option<String>,
    /// The new object's version or generation, if the backend has them.
    pub version: Option<String>,
    /// The checksum of what was stored, where known.
    pub checksum: Option<Checksum>,
    /// The provider that really stored it, when a fallback layer wrote to
    /// another provider than the one asked (`None`: the one asked).
    pub stored_on: Option<String>,
}

impl PutResult {
    /// A result with a size and etag.
    pub fn new(size: u64, etag: Option<String>) -> Self {
        Self {
            size,
            etag,
            version: None,
            checksum: None,
            stored_on: None,
        }
    }
}

/// One item of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    /// An object.
    Object(ObjectMeta),
    /// A common prefix ("directory") when listing with a delimiter: every
    /// key that starts with it continues past the delimiter. It ends with
    /// the delimiter and is reported once.
    Prefix(String),
}

impl ListEntry {
    /// The key or the common prefix: what the listing is ordered by.
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Object(meta) => meta.key.as_str(),
            ListEntry::Prefix(prefix) => prefix,
        }
    }

    /// The object's metadata, if this entry is an object.
    pub fn as_object(&self) -> Option<&ObjectMeta> {
        match self {
            ListEntry::Object(meta) => Some(meta),
            ListEntry::Prefix(_) => None,
        }
    }
}
