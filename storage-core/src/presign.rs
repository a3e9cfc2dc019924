//! Presigned requests: URLs a browser can use directly, without credentials.

use std::time::{Duration, SystemTime};

use url::Url;

/// The HTTP method a presigned URL allows. A URL signed for one method is
/// refused for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresignMethod {
    /// Download the object (with `Range` where the backend serves it).
    Get,
    /// Upload the object, replacing any object at the key.
    Put,
}

impl PresignMethod {
    /// The HTTP method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PresignMethod::Get => "GET",
            PresignMethod::Put => "PUT",
        }
    }
}

impl std::fmt::Display for PresignMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of [`Storage::presign`](crate::Storage::presign).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresignOptions {
    /// For a PUT: the content type the upload must carry. It is bound into
    /// the signature, so an upload with another `Content-Type` is refused.
    pub content_type: Option<String>,
}

impl PresignOptions {
    /// Binds `content_type` into a PUT signature.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

/// A request a client without credentials can make once signed.
///
/// Send `method` to `url` with every header in `headers`, before
/// `expires_at`. Changing the URL, the method or a signed header makes the
/// backend refuse the request (HTTP 403) and change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresignedRequest {
    /// The method to use.
    pub method: PresignMethod,
    /// The signed URL. It is a bearer credential: share it only with the
    /// client it is meant for.
    pub url: Url,
    /// Headers the client must send, exactly (for example the signed
    /// `content-type` of a PUT).
    pub headers: Vec<(String, String)>,
    /// When the backend stops accepting the URL. Some backends fix the
    /// expiry themselves; this is the one they really apply.
    pub expires_at: SystemTime,
}

impl PresignedRequest {
    /// A request with no required headers.
    pub fn new(method: PresignMethod, url: Url, expires_at: SystemTime) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            expires_at,
        }
    }

    /// Adds a header the client must send.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long from now the URL stays valid (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}
