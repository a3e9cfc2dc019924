//! The HTTP side: one reqwest client, the JSON API's URLs, credentials on
//! every request, and answers checked against the error table.

use std::time::Duration;

use percent_encoding::utf8_percent_encode;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use storage_core::{Error, ErrorKind, Result};

use crate::config::GcsConfig;
use crate::credentials::Auth;
use crate::error::{from_response, from_transport};
use crate::signer::UNRESERVED;

/// What every request needs.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    auth: Auth,
    /// `https://storage.googleapis.com`, or an emulator's address.
    pub(crate) base_url: String,
    bucket: String,
}

impl Client {
    pub(crate) fn new(config: &GcsConfig, auth: Auth) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            // A read that waits this long fails; a long transfer that keeps
            // moving does not.
            .read_timeout(Duration::from_secs(config.request_timeout_secs))
            // GCS answers an unfinished resumable upload with 308 "Resume
            // Incomplete", which is not a redirect to follow.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| {
                Error::new(ErrorKind::InvalidConfig, "cannot build an HTTP client").with_source(err)
            })?;
        Ok(Self {
            http,
            auth,
            base_url: config.resolved_base_url(),
            bucket: config.bucket.clone(),
        })
    }

    /// `…/storage/v1/b/BUCKET`.
    pub(crate) fn bucket_url(&self) -> String {
        format!(
            "{}/storage/v1/b/{}",
            self.base_url,
            utf8_percent_encode(&self.bucket, UNRESERVED)
        )
    }

    /// `…/storage/v1/b/BUCKET/o/NAME`, the name encoded whole (`/` too).
    pub(crate) fn object_url(&self, name: &str) -> String {
        format!(
            "{}/o/{}",
            self.bucket_url(),
            utf8_percent_encode(name, UNRESERVED)
        )
    }

    /// `…/o/FROM/rewriteTo/b/BUCKET/o/TO`, a server-side copy in the bucket.
    pub(crate) fn rewrite_url(&self, from: &str, to: &str) -> String {
        format!(
            "{}/rewriteTo/b/{}/o/{}",
            self.object_url(from),
            utf8_percent_encode(&self.bucket, UNRESERVED),
            utf8_percent_encode(to, UNRESERVED)
        )
    }

    /// `…/storage/v1/b/BUCKET/o`, for listing.
    pub(crate) fn objects_url(&self) -> String {
        format!("{}/o", self.bucket_url())
    }

    /// `…/upload/storage/v1/b/BUCKET/o`, for uploads.
    pub(crate) fn upload_url(&self) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o",
            self.base_url,
            utf8_percent_encode(&self.bucket, UNRESERVED)
        )
    }

    /// A request to `url`, credentials not yet added.
    pub(crate) fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends with credentials; any answer comes back, success or not
    /// (for the resumable protocol, where 308 is an answer).
    pub(crate) async fn send_raw(&self, request: RequestBuilder) -> Result<Response> {
        let request = match self.auth.bearer().await? {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        };
        storage_core::http::send(request, "GCS").await
    }

    /// Sends with credentials; a non-success answer is the contract's
    /// error for it.
    pub(crate) async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = self.send_raw(request).await?;
        check(response).await
    }

    /// Sends and reads a JSON answer.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T> {
        let response = self.send(request).await?;
        read_json(response).await
    }
}

/// A success answer passes; any other becomes the contract's error.
pub(crate) async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(error_of(response).await)
}

/// The contract's error for a non-success answer (its body read).
pub(crate) async fn error_of(response: Response) -> Error {
    let status = response.status();
    let retry_after = storage_core::http::retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    if status == StatusCode::NOT_MODIFIED {
        return Error::new(
            ErrorKind::NotModified,
            "the object's etag matches if-none-match",
        );
    }
    from_response(status.as_u16(), &body, retry_after)
}

/// Reads a JSON answer body.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T> {
    let body = response.bytes().await.map_err(from_transport)?;
    serde_json::from_slice(&body).map_err(|err| {
        Error::new(
            ErrorKind::Other,
            format!("GCS sent an answer this backend cannot read: {err}"),
        )
    })
}

/// A header as text.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
