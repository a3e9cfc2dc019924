//! [`S3Config`]: the `[providers.NAME]` table of `type = "s3"`.

use std::time::Duration;

use serde::Deserialize;
use storage_core::Secret;
use storage_core::config::ByteSize;

/// Settings of an S3 or S3-compatible bucket. Unknown fields are refused.
/// Anything left out falls back to the standard `AWS_*` variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`), then to the
/// defaults below. Secrets print as `***`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct S3Config {
    /// The provider's name (the table's name in a configuration file).
    #[serde(skip, default = "default_name")]
    pub name: String,
    /// The bucket.
    pub bucket: String,
    /// The region; default from the environment, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// The endpoint of an S3-compatible store
    /// (`https://<account>.r2.cloudflarestorage.com`,
    /// `http://127.0.0.1:9000`); empty means AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The access key id.
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    /// The secret access key.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// A session token for temporary credentials.
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Address the bucket as `https://bucket.host/key` instead of
    /// `https://host/bucket/key`. Default: false (path style, which every
    /// S3-compatible server accepts).
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Allow `http://` endpoints (local servers). Default: false.
    #[serde(default)]
    pub allow_http: bool,
    /// Sign requests without hashing their bodies: the signature covers
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD` instead of the body's
    /// SHA-256, which every uploaded byte otherwise costs (on a loopback
    /// server: 22% of a 256 MiB upload's time, 12% of the client CPU of
    /// 64 KiB puts and gets; see BENCHMARKS.md). OpenDAL sends every
    /// request this way; AWS's SDKs do over HTTPS, sending a CRC checksum
    /// header instead, which object_store cannot. Over HTTPS, TLS guards
    /// the body in transit; over plain HTTP nothing then does, so keep it
    /// off there unless the network is yours (a server on loopback).
    /// Presigned URLs never carry a payload hash either way.
    /// Default: false.
    #[serde(default)]
    pub unsigned_payload: bool,
    /// Create the bucket when the provider is opened, if it does not exist
    /// (an existing bucket of yours is fine). Default: false.
    #[serde(default)]
    pub create_bucket: bool,
    /// The storage class of new objects (`STANDARD_IA`, `GLACIER_IR`, ...).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Server-side encryption with a KMS key: its id or ARN.
    #[serde(default)]
    pub sse_kms_key_id: Option<String>,
    /// Streams longer than this are uploaded in parts of this size
    /// (minimum 5 MiB, S3's limit). Default: 8 MiB.
    #[serde(default = "default_part_size")]
    pub part_size: ByteSize,
    /// Parts uploaded at once. Memory in flight is about
    /// `(upload_concurrency + 1) × part_size`. Chunks of 64 KiB and more
    /// join a part by reference, not copied, so a chunk sliced from a
    /// larger buffer keeps that buffer alive until its part is sent.
    /// Default: 4.
    #[serde(default = "default_concurrency")]
    pub upload_concurrency: usize,
    /// Gets that serve more than this (a whole object, or a range) are
    /// fetched as parallel ranged GETs of this size each. Default: 8 MiB.
    #[serde(default = "default_part_size")]
    pub download_chunk_size: ByteSize,
    /// Transfers in flight at once for a get in parts, the first GET
    /// counted while its first chunk streams. Parts are read whole ahead
    /// of their turn, so memory held is up to this many chunks. Default: 4.
    #[serde(default = "default_concurrency")]
    pub download_concurrency: usize,
    /// Retries of transient failures inside a request (5xx, throttling,
    /// resets). Default: 3.
    #[serde(default = "default_retries")]
    pub max_retries: usize,
    /// The timeout of one request, in seconds. Default: 300.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// The timeout of connecting, in seconds. Default: 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_name() -> String {
    "s3".to_owned()
}
fn default_part_size() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_concurrency() -> usize {
    4
}
fn default_retries() -> usize {
    3
}
fn default_timeout() -> u64 {
    300
}
fn default_connect_timeout() -> u64 {
    10
}

/// S3's smallest part (except the last).
pub(crate) const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's longest presigned URL lifetime.
pub(crate) const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

impl S3Config {
    /// Defaults for `bucket`; everything else from the environment.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            name: default_name(),
            bucket: bucket.into(),
            region: None,
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            virtual_hosted_style: false,
            allow_http: false,
            unsigned_payload: false,
            create_bucket: false,
            storage_class: None,
            sse_kms_key_id: None,
            part_size: default_part_size(),
            upload_concurrency: default_concurrency(),
            download_chunk_size: default_part_size(),
            download_concurrency: default_concurrency(),
            max_retries: default_retries(),
            request_timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
        }
    }

    /// Sets the provider's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// An S3-compatible endpoint (`http://` allowed when `allow_http`).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>, allow_http: bool) -> Self {
        self.endpoint = Some(endpoint.into());
        self.allow_http = allow_http;
        self
    }

    /// Static credentials.
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<Secret>,
        secret: impl Into<Secret>,
    ) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret.into());
        self
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Checks values serde cannot; the message names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.bucket.trim().is_empty() {
            return Err("bucket must not be empty".into());
        }
        if self.part_size.0 < MIN_PART_SIZE {
            return Err(format!(
                "part_size must be at least 5 MiB (S3's smallest part); it is {}",
                self.part_size
            ));
        }
        if self.download_chunk_size.0 == 0 {
            return Err("download_chunk_size must not be 0".into());
        }
        if self.upload_concurrency == 0 || self.download_concurrency == 0 {
            return Err("upload_concurrency and download_concurrency must be at least 1".into());
        }
        if let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.is_empty())
            && endpoint.starts_with("http://")
            && !self.allow_http
        {
            return Err(format!(
                "endpoint {endpoint:?} is plain HTTP; set allow_http = true for a local server"
            ));
        }
        Ok(())
    }
}
