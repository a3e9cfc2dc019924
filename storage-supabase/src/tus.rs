//! TUS resumable uploads (`/upload/resumable`), for bodies longer than a
//! chunk or of unknown length.
//!
//! The upload is created with its length when the body declares one, else
//! with a deferred length that the last PATCH states; the bytes go in
//! PATCHes of `chunk_size`. One chunk is sent while
//! the next is read, and a chunk is known to be the last only once the
//! next read came back empty, so at most three chunks are in memory. When a
//! PATCH fails on a dropped connection, a timeout or a 5xx, a HEAD asks the
//! server for its offset and the chunk is resent from there: a broken
//! connection costs at most one chunk. A failed or dropped upload is
//! terminated (DELETE), so no object appears and the previous one stays.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use storage_core::layers::RetryConfig;
use storage_core::{Error, ErrorKind, Result};

use crate::client::{Client, check, header};
use crate::upload::NewObject;

const TUS_VERSION: &str = "1.0.0";

/// An upload in progress; terminated on the server if dropped unfinished.
pub(crate) struct TusUpload<'a> {
    client: &'a Client,
    location: Option<String>,
    resume_attempts: usize,
    /// Bytes the server holds.
    offset: u64,
    /// The length was deferred at creation: the last PATCH states it.
    deferred: bool,
}

impl<'a> TusUpload<'a> {
    /// Creates the upload: `length` if known, else deferred.
    pub(crate) async fn create(
        client: &'a Client,
        object: &NewObject<'_>,
        upsert: bool,
        length: Option<u64>,
        resume_attempts: usize,
    ) -> Result<Self> {
        let b64 = |text: &str| STANDARD.encode(text.as_bytes());
        let mut metadata = vec![
            format!("bucketName {}", b64(&client.bucket)),
            format!("objectName {}", b64(object.name)),
            format!("contentType {}", b64(object.content_type())),
        ];
        if let Some(cache_control) = object.cache_control {
            metadata.push(format!("cacheControl {}", b64(cache_control)));
        }
        if let Some(user) = object.metadata_json()? {
            metadata.push(format!("metadata {}", b64(&user)));
        }
        let request = client
            .request(Method::POST, &client.url("upload/resumable"))
            .header("tus-resumable", TUS_VERSION);
        let request = match length {
            Some(length) => request.header("upload-length", length.to_string()),
            None => request.header("upload-defer-length", "1"),
        };
        let request = request
            .header("upload-metadata", metadata.join(","))
            .header("x-upsert", if upsert { "true" } else { "false" })
            .header("content-length", "0");
        let response = client.send(request).await?;
        let location = header(response.headers(), LOCATION.as_str()).ok_or_else(|| {
            Error::new(
                ErrorKind::Other,
                "Supabase created a resumable upload without a Location",
            )
        })?;
        let location = resolve_location(&client.base_url, location);
        Ok(Self {
            client,
            location: Some(location),
            resume_attempts,
            offset: 0,
            deferred: length.is_none(),
        })
    }

    fn location(&self) -> Result<&str> {
        self.location
            .as_deref()
            .ok_or_else(|| Error::new(ErrorKind::Other, "the resumable upload already ended"))
    }

    /// Sends `chunk` at the server's offset; `last` states the length.
    pub(crate) async fn send_chunk(&mut self, chunk: Bytes, last: bool) -> Result<()> {
        let start = self.offset;
        let end = start + chunk.len() as u64;
        let mut failures = 0;
        loop {
            let from = (self.offset - start) as usize;
            let stated = (last && self.deferred).then_some(end);
            let attempt = self.patch(chunk.slice(from..), stated).await;
            let failure = match attempt {
                Ok(held) if held == end => {
                    self.offset = held;
                    if last {
                        self.location = None;
                    }
                    return Ok(());
                }
                Ok(held) if held > self.offset && held < end => {
                    self.offset = held;
                    continue;
                }
                Ok(held) => Error::new(
                    ErrorKind::Unavailable,
                    format!("Supabase holds {held} bytes after a chunk ending at {end}"),
                )
                .with_retryable(true),
                Err(err) if err.is_retryable() => err,
                Err(err) => return Err(err),
            };
            failures += 1;
            if failures > self.resume_attempts {
                return Err(failure);
            }
            tracing::debug!(error = %failure, attempt = failures, "a resumable upload chunk failed; asking the server for its offset");
            tokio::time::sleep(
                RetryConfig::default().delay(failures as u32, failure.retry_after()),
            )
            .await;
            match self.server_offset().await {
                Ok(held) if (start..=end).contains(&held) => self.offset = held,
                Ok(held) => {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "Supabase holds {held} bytes of the upload, outside the chunk {start}..{end} this backend still has"
                        ),
                    ));
                }
                Err(err) if err.is_retryable() => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// One PATCH at the current offset; the server's new offset.
    async fn patch(&self, data: Bytes, length: Option<u64>) -> Result<u64> {
        let mut request = self
            .client
            .request(Method::PATCH, self.location()?)
            .header("tus-resumable", TUS_VERSION)
            .header("upload-offset", self.offset.to_string())
            .header(CONTENT_TYPE, "application/offset+octet-stream")
            .header("content-length", data.len().to_string())
            .body(data);
        if let Some(length) = length {
            request = request.header("upload-length", length.to_string());
        }
        let response = self.client.send(request).await?;
        offset_of(response.headers())
    }

    /// HEAD: how much the server holds.
    async fn server_offset(&self) -> Result<u64> {
        let request = self
            .client
            .request(Method::HEAD, self.location()?)
            .header("tus-resumable", TUS_VERSION);
        let response = check(self.client.send_raw(request).await?).await?;
        offset_of(response.headers())
    }

    /// Terminates the upload on the server (the object is not written).
    pub(crate) async fn cancel(mut self) {
        if let Some(location) = self.location.take() {
            let request = self
                .client
                .request(Method::DELETE, &location)
                .header("tus-resumable", TUS_VERSION);
            if let Err(err) = self.client.send(request).await {
                tracing::warn!(error = %err, "could not terminate a resumable upload");
            }
        }
    }
}

impl Drop for TusUpload<'_> {
    fn drop(&mut self) {
        // Dropped mid-way (the put was cancelled): terminate in the
        // background with a request built now (it owns what it needs).
        if let Some(location) = self.location.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let request = self
                .client
                .request(Method::DELETE, &location)
                .header("tus-resumable", TUS_VERSION);
            runtime.spawn(async move {
                if let Err(err) = request.send().await {
                    tracing::warn!(error = %err.without_url(), "could not terminate a dropped resumable upload");
                }
            });
        }
    }
}

/// The upload's URL from the creation's `Location`: a path is on the
/// storage root; an absolute URL is kept, except that one naming the
/// storage root's own host with another scheme gets the root's scheme (the
/// server writes `https` whenever NODE_ENV=production, even when it is
/// served over plain HTTP).
fn resolve_location(base_url: &str, location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return format!(
            "{}/{}",
            base_url.trim_end_matches('/'),
            location.trim_start_matches('/')
        );
    };
    let authority = |url: &str| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
    };
    match base_url.split_once("://") {
        Some((base_scheme, _))
            if base_scheme != scheme && authority(base_url) == authority(location) =>
        {
            format!("{base_scheme}://{rest}")
        }
        _ => location.to_owned(),
    }
}

fn offset_of(headers: &reqwest::header::HeaderMap) -> Result<u64> {
    header(headers, "upload-offset")
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::Other, "Supabase sent no Upload-Offset"))
}

#[cfg(test)]
mod tests {
    use super::resolve_location;

    #[test]
    fn locations_resolve_against_the_storage_root() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(
            resolve_location(base, "/upload/resumable/abc"),
            "http://127.0.0.1:5000/upload/resumable/abc"
        );
        assert_eq!(
            resolve_location(base, "https://127.0.0.1:5000/upload/resumable/abc"),
            "http://127.0.0.1:5000/upload/resumable/abc"
        );
        assert_eq!(
            resolve_location(
                "https://x.supabase.co/storage/v1",
                "https://x.supabase.co/storage/v1/upload/resumable/abc"
            ),
            "https://x.supabase.co/storage/v1/upload/resumable/abc"
        );
        assert_eq!(
            resolve_location(base, "https://elsewhere.example/upload/resumable/abc"),
            "https://elsewhere.example/upload/resumable/abc"
        );
    }
}
