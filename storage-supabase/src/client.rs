//! The HTTP side: one reqwest client, the storage API's URLs, the key on
//! every request, and answers checked against the error table.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, RequestBuilder, Response};
use storage_core::{Error, ErrorKind, Result, Secret};

use crate::config::SupabaseConfig;
use crate::error::{from_response, from_transport};

/// Path segments are percent-encoded except unreserved characters (the
/// names this crate stores hold only `A-Za-z0-9-._!:/`, see `names`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What every request needs.
pub(crate) struct Client {
    http: reqwest::Client,
    key: Secret,
    /// The storage API root (`…/storage/v1` on hosted projects).
    pub(crate) base_url: String,
    /// The bucket id.
    pub(crate) bucket: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(config: &SupabaseConfig) -> std::result::Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .read_timeout(Duration::from_secs(config.request_timeout_secs))
            .build()
            .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
        Ok(Self {
            http,
            key: config.resolved_key()?,
            base_url: config.base_url()?,
            bucket: config.bucket.clone(),
        })
    }

    /// `…/object/{ROUTE}/BUCKET/NAME` (`ROUTE` may be empty), each
    /// segment of the name percent-encoded.
    pub(crate) fn object_url(&self, route: &str, name: &str) -> String {
        let mut url = format!("{}/object/", self.base_url);
        if !route.is_empty() {
            url.push_str(route);
            url.push('/');
        }
        url.push_str(&utf8_percent_encode(&self.bucket, SEGMENT).to_string());
        for segment in name.split('/') {
            url.push('/');
            url.push_str(&utf8_percent_encode(segment, SEGMENT).to_string());
        }
        url
    }

    /// `…/PATH` under the storage root.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    /// A request with the key: `Authorization` for the storage server and
    /// `apikey` for the hosted API gateway in front of it.
    pub(crate) fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.key.expose()))
            .header("apikey", self.key.expose())
    }

    /// Sends; any answer comes back.
    pub(crate) async fn send_raw(&self, request: RequestBuilder) -> Result<Response> {
        storage_core::http::send(request, "Supabase").await
    }

    /// Sends; a non-success answer is the contract's error for it.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response> {
        check(self.send_raw(request).await?).await
    }

    /// Sends and reads a JSON answer.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T> {
        read_json(self.send(request).await?).await
    }
}

/// A success answer passes; any other becomes the contract's error.
pub(crate) async fn check(response: Response) -> Result<Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    Err(error_of(response).await)
}

/// The contract's error for a non-success answer (its body read).
pub(crate) async fn error_of(response: Response) -> Error {
    let status = response.status().as_u16();
    let retry_after = storage_core::http::retry_after(response.headers());
    if status == 304 {
        return Error::new(
            ErrorKind::NotModified,
            "the object's etag matches if-none-match",
        );
    }
    let body = response.text().await.unwrap_or_default();
    from_response(status, &body, retry_after)
}

/// Reads a JSON answer body.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T> {
    let body = response.bytes().await.map_err(from_transport)?;
    serde_json::from_slice(&body).map_err(|err| {
        Error::new(
            ErrorKind::Other,
            format!("Supabase sent an answer this backend cannot read: {err}"),
        )
    })
}

/// A header as text.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
