//! The JSON API's object resource and listing page, and their mapping to
//! the contract's metadata.
//!
//! The contract's etag of a GCS object is its **generation** (a decimal
//! number that changes on every write, even of identical bytes): it is what
//! `ifGenerationMatch` takes, so create-only (`ifGenerationMatch=0`),
//! replace-if-match and pinned reads are single conditional requests.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use storage_core::{Checksum, Error, ErrorKind, Key, ListEntry, ObjectMeta, Result};

/// An object resource (the fields this crate reads). Numbers come as
/// strings, as the JSON API sends 64-bit values.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectResource {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) generation: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<String>,
    #[serde(default)]
    pub(crate) content_type: Option<String>,
    #[serde(default)]
    pub(crate) cache_control: Option<String>,
    #[serde(default)]
    pub(crate) crc32c: Option<String>,
    #[serde(default)]
    pub(crate) md5_hash: Option<String>,
    #[serde(default)]
    pub(crate) updated: Option<String>,
    #[serde(default)]
    pub(crate) metadata: Option<BTreeMap<String, Option<String>>>,
}

/// One page of `objects.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPage {
    #[serde(default)]
    pub(crate) items: Vec<ObjectResource>,
    #[serde(default)]
    pub(crate) prefixes: Vec<String>,
    #[serde(default)]
    pub(crate) next_page_token: Option<String>,
}

/// The answer of `objects.rewrite`, looped on until `done`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RewriteResponse {
    #[serde(default)]
    pub(crate) done: bool,
    #[serde(default)]
    pub(crate) rewrite_token: Option<String>,
    #[serde(default)]
    pub(crate) resource: Option<ObjectResource>,
}

/// The metadata sent with a new object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewObject<'a> {
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache_control: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) metadata: &'a BTreeMap<String, String>,
}

impl ObjectResource {
    /// The contract's metadata of this object, under `key`.
    pub(crate) fn to_meta(&self, key: Key) -> Result<ObjectMeta> {
        let size = match &self.size {
            Some(size) => size.parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorKind::Other,
                    format!("GCS sent an object size that is not a number: {size:?}"),
                )
            })?,
            None => 0,
        };
        let mut meta = ObjectMeta::new(key, size);
        meta.etag = self.generation.clone();
        meta.version = self.generation.clone();
        meta.content_type = self.content_type.clone();
        meta.cache_control = self.cache_control.clone();
        meta.last_modified = self.updated.as_deref().and_then(parse_rfc3339);
        meta.checksum = self
            .crc32c
            .as_deref()
            .and_then(crc32c_from_base64)
            .or_else(|| self.md5_hash.as_deref().and_then(md5_from_base64));
        if let Some(metadata) = &self.metadata {
            // A null value is a deleted entry (PATCH semantics).
            meta.user_metadata = metadata
                .iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                .collect();
        }
        Ok(meta)
    }

    /// The contract's key of a listed object; a name the contract cannot
    /// address (written by another client) is an error naming it.
    pub(crate) fn key(&self) -> Result<Key> {
        Key::new(self.name.as_str()).map_err(|err| {
            Error::new(
                ErrorKind::Other,
                format!(
                    "the bucket holds an object this library cannot address ({:?}): {err}",
                    self.name
                ),
            )
        })
    }

    /// As a listing entry.
    pub(crate) fn to_entry(&self) -> Result<ListEntry> {
        Ok(ListEntry::Object(self.to_meta(self.key()?)?))
    }
}

/// `updated` and `timeCreated` are RFC 3339.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(SystemTime::from)
}

/// GCS sends CRC32C as the base64 of its four big-endian bytes.
pub(crate) fn crc32c_from_base64(text: &str) -> Option<Checksum> {
    let bytes: [u8; 4] = STANDARD.decode(text).ok()?.try_into().ok()?;
    Some(Checksum::Crc32c(u32::from_be_bytes(bytes)))
}

fn md5_from_base64(text: &str) -> Option<Checksum> {
    let bytes: [u8; 16] = STANDARD.decode(text).ok()?.try_into().ok()?;
    Some(Checksum::Md5(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_resource_becomes_contract_metadata() {
        let json = r#"{"kind":"storage#object","name":"dir/a b","bucket":"b","size":"11",
            "contentType":"text/plain","cacheControl":"no-cache","crc32c":"yZRlqg==",
            "md5Hash":"XrY7u+Ae7tCTyyK7j1rNww==","etag":"CJLl","generation":"1795434805218402",
            "updated":"2026-11-23T11:53:25.218366Z","metadata":{"k":"v","gone":null}}"#;
        let resource: ObjectResource = serde_json::from_str(json).unwrap();
        let meta = resource.to_meta(resource.key().unwrap()).unwrap();
        assert_eq!(meta.key.as_str(), "dir/a b");
        assert_eq!(meta.size, 11);
        assert_eq!(meta.etag.as_deref(), Some("1795434805218402"));
        assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
        assert_eq!(meta.cache_control.as_deref(), Some("no-cache"));
        assert_eq!(meta.checksum, Some(Checksum::crc32c(b"hello world")));
        assert_eq!(meta.user_metadata.len(), 1);
        assert_eq!(meta.user_metadata["k"], "v");
        assert!(meta.last_modified.is_some());
    }

    #[test]
    fn a_bad_size_is_an_error_not_zero() {
        let resource: ObjectResource =
            serde_json::from_str(r#"{"name":"a","size":"lots"}"#).unwrap();
        let err = resource.to_meta(resource.key().unwrap()).unwrap_err();
        assert!(err.message().contains("lots"), "{err}");
    }
}
