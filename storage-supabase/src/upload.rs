//! Writes of bodies up to a chunk: one request with the raw body.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use storage_core::{Error, ErrorKind, Result};

use crate::client::Client;

/// What a new object is stored with.
#[derive(Debug)]
pub(crate) struct NewObject<'a> {
    /// The stored (encoded) name.
    pub(crate) name: &'a str,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) cache_control: Option<&'a str>,
    pub(crate) metadata: &'a BTreeMap<String, String>,
}

impl NewObject<'_> {
    /// The stored type: as given, else what Supabase itself defaults to.
    pub(crate) fn content_type(&self) -> &str {
        self.content_type.unwrap_or("application/octet-stream")
    }

    /// The user metadata as JSON, if any.
    pub(crate) fn metadata_json(&self) -> Result<Option<String>> {
        if self.metadata.is_empty() {
            return Ok(None);
        }
        serde_json::to_string(self.metadata)
            .map(Some)
            .map_err(|err| {
                Error::new(ErrorKind::Other, "cannot encode the user metadata").with_source(err)
            })
    }
}

/// `POST /object/BUCKET/NAME` with the raw body: created, or replaced when
/// `upsert` (`x-upsert: true`); without it an existing key fails with
/// `KeyAlreadyExists`, atomically on the server.
pub(crate) async fn upload(
    client: &Client,
    object: &NewObject<'_>,
    data: Bytes,
    upsert: bool,
) -> Result<()> {
    let mut request = client
        .request(Method::POST, &client.object_url("", object.name))
        .header(CONTENT_TYPE, object.content_type())
        .header("x-upsert", if upsert { "true" } else { "false" })
        .body(data);
    if let Some(cache_control) = object.cache_control {
        request = request.header(CACHE_CONTROL, cache_control);
    }
    if let Some(json) = object.metadata_json()? {
        request = request.header("x-metadata", STANDARD.encode(json));
    }
    client.send(request).await.map(drop)
}
