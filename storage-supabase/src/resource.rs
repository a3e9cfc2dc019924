//! The JSON shapes of the storage API this crate reads, and their mapping
//! to the contract's metadata.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Deserialize;
use storage_core::{Error, ErrorKind, Key, ListEntry, ObjectMeta, Result};

use crate::names;

/// `GET /object/info/…`. Here `metadata` is the user metadata.
#[derive(Debug, Deserialize)]
pub(crate) struct ObjectInfo {
    #[serde(default)]
    pub(crate) version: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) content_type: Option<String>,
    #[serde(default)]
    pub(crate) cache_control: Option<String>,
    #[serde(default)]
    pub(crate) etag: Option<String>,
    #[serde(default)]
    pub(crate) metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub(crate) last_modified: Option<String>,
}

impl ObjectInfo {
    pub(crate) fn to_meta(&self, key: Key) -> ObjectMeta {
        let mut meta = ObjectMeta::new(key, self.size.unwrap_or(0));
        meta.etag = self.etag.clone();
        meta.version = self.version.clone();
        meta.content_type = self.content_type.clone();
        meta.cache_control = self.cache_control.clone();
        meta.last_modified = self.last_modified.as_deref().and_then(parse_time);
        meta.user_metadata = user_metadata(self.metadata.as_ref());
        meta
    }
}

/// User metadata values are strings when this crate wrote them; others
/// (written by another client) keep their JSON text.
fn user_metadata(
    metadata: Option<&BTreeMap<String, serde_json::Value>>,
) -> BTreeMap<String, String> {
    metadata
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}

/// `POST /object/list-v2/…`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListPage {
    #[serde(default)]
    pub(crate) has_next: bool,
    #[serde(default)]
    pub(crate) next_cursor: Option<String>,
    #[serde(default)]
    pub(crate) folders: Vec<ListedItem>,
    #[serde(default)]
    pub(crate) objects: Vec<ListedItem>,
}

/// An object or folder of a listing; `name` is the full stored name.
#[derive(Debug, Deserialize)]
pub(crate) struct ListedItem {
    pub(crate) name: String,
    /// The system metadata (size, eTag, mimetype, cacheControl, ...).
    #[serde(default)]
    pub(crate) metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) updated_at: Option<String>,
}

impl ListedItem {
    fn key_text(&self) -> Result<String> {
        names::decode(&self.name).ok_or_else(|| {
            Error::new(
                ErrorKind::Other,
                format!(
                    "the bucket holds a name this library did not write: {:?}",
                    self.name
                ),
            )
        })
    }

    /// As a folder entry (`a/b/`).
    pub(crate) fn to_prefix(&self) -> Result<ListEntry> {
        let mut text = self.key_text()?;
        if !text.ends_with('/') {
            text.push('/');
        }
        Ok(ListEntry::Prefix(text))
    }

    /// As an object entry.
    pub(crate) fn to_object(&self) -> Result<ListEntry> {
        let key = Key::new(self.key_text()?).map_err(|err| {
            Error::new(
                ErrorKind::Other,
                format!("the bucket holds a key this library cannot address: {err}"),
            )
        })?;
        let system = self.metadata.as_ref();
        let text = |name: &str| {
            system
                .and_then(|m| m.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let size = system
            .and_then(|m| m.get("size").or_else(|| m.get("contentLength")))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let mut meta = ObjectMeta::new(key, size);
        meta.etag = text("eTag");
        meta.content_type = text("mimetype");
        meta.cache_control = text("cacheControl");
        meta.last_modified = text("lastModified")
            .or_else(|| self.updated_at.clone())
            .as_deref()
            .and_then(parse_time);
        Ok(ListEntry::Object(meta))
    }
}

/// `POST /object/upload/sign/…` and `POST /object/sign/…`.
#[derive(Debug, Deserialize)]
pub(crate) struct SignedUpload {
    pub(crate) url: String,
    pub(crate) token: String,
}

/// Timestamps are RFC 3339 in JSON, HTTP dates in headers.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(SystemTime::from)
        .ok()
        .or_else(|| httpdate::parse_http_date(text).ok())
}
