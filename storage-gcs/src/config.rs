//! [`GcsConfig`]: the `[providers.NAME]` table of `type = "gcs"`.

use std::path::PathBuf;

use serde::Deserialize;
use storage_core::Secret;
use storage_core::config::ByteSize;

/// Settings of one Google Cloud Storage bucket. Unknown fields are refused.
///
/// Credentials, in order: `service_account_key` (the JSON key's contents),
/// `service_account_path` (its file), then, unless `anonymous`, the
/// standard fallbacks Google's own clients use: `GOOGLE_SERVICE_ACCOUNT_KEY`,
/// `GOOGLE_SERVICE_ACCOUNT_PATH`/`GOOGLE_SERVICE_ACCOUNT`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, the gcloud application-default file,
/// and finally the metadata server of a Google Cloud VM. When
/// `STORAGE_EMULATOR_HOST` is set (as Google's clients honour it) and no
/// key is configured, requests go to the emulator without credentials.
///
/// Signed URLs are computed locally from a service-account key, so they
/// need `service_account_key`, `service_account_path`, or one of the
/// variables naming a service-account key file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GcsConfig {
    /// The provider's name (the table's name in a configuration file).
    #[serde(skip, default = "default_name")]
    pub name: String,
    /// The bucket.
    pub bucket: String,
    /// The service-account JSON key itself (usually `"${GCS_KEY_JSON}"`).
    #[serde(default)]
    pub service_account_key: Option<Secret>,
    /// The path of a service-account JSON key file.
    #[serde(default)]
    pub service_account_path: Option<PathBuf>,
    /// Send no credentials at all (emulators, public buckets). Default:
    /// false, or true when `STORAGE_EMULATOR_HOST` is set and no key is
    /// configured.
    #[serde(default)]
    pub anonymous: Option<bool>,
    /// The API's base URL, for emulators and private endpoints
    /// (`http://127.0.0.1:4443`). Default: `STORAGE_EMULATOR_HOST` when
    /// set, else `https://storage.googleapis.com`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Create the bucket when the provider is opened, if it does not exist.
    /// Needs `project`. Default: false.
    #[serde(default)]
    pub create_bucket: bool,
    /// The project new buckets belong to (only for `create_bucket`);
    /// default `GOOGLE_CLOUD_PROJECT`.
    #[serde(default)]
    pub project: Option<String>,
    /// Bodies longer than this are resumable uploads sent in chunks of
    /// this size, a multiple of 256 KiB (GCS's rule). Memory in flight is
    /// about two chunks. Default: 8 MiB.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: ByteSize,
    /// Gets that serve more than this (a whole object, or a range) are
    /// fetched as parallel ranged requests of this size each. Default:
    /// 8 MiB.
    #[serde(default = "default_chunk_size")]
    pub download_chunk_size: ByteSize,
    /// Transfers in flight at once for a get in parts, the first
    /// request counted while its first chunk streams. Parts are read whole
    /// ahead of their turn, so memory held is up to this many chunks.
    /// Default: 4.
    #[serde(default = "default_concurrency")]
    pub download_concurrency: usize,
    /// Deletes in flight at once in `delete_many`. Default: 16.
    #[serde(default = "default_delete_concurrency")]
    pub delete_concurrency: usize,
    /// How often a resumable upload asks the server where it stands and
    /// resends after a dropped connection or a 5xx, per chunk. Default: 5.
    #[serde(default = "default_resume_attempts")]
    pub resume_attempts: usize,
    /// The longest wait for a byte from the server, in seconds: a request
    /// that stalls this long fails with Timeout, a long transfer that keeps
    /// moving does not. Default: 300.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// The timeout of connecting, in seconds. Default: 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_name() -> String {
    "gcs".to_owned()
}
fn default_chunk_size() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_concurrency() -> usize {
    4
}
fn default_delete_concurrency() -> usize {
    16
}
fn default_resume_attempts() -> usize {
    5
}
fn default_timeout() -> u64 {
    300
}
fn default_connect_timeout() -> u64 {
    10
}

/// Resumable upload chunks must be multiples of this (GCS's rule).
pub(crate) const CHUNK_GRANULARITY: u64 = 256 << 10;
/// The public endpoint.
pub(crate) const DEFAULT_BASE_URL: &str = "https://storage.googleapis.com";

impl GcsConfig {
    /// Defaults for `bucket`; credentials from the environment.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            name: default_name(),
            bucket: bucket.into(),
            service_account_key: None,
            service_account_path: None,
            anonymous: None,
            base_url: None,
            create_bucket: false,
            project: None,
            chunk_size: default_chunk_size(),
            download_chunk_size: default_chunk_size(),
            download_concurrency: default_concurrency(),
            delete_concurrency: default_delete_concurrency(),
            resume_attempts: default_resume_attempts(),
            request_timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
        }
    }

    /// Sets the provider's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sends requests to `base_url` (an emulator, a private endpoint).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Authenticates (and signs URLs) with this service-account key file.
    pub fn with_service_account_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.service_account_path = Some(path.into());
        self
    }

    /// Authenticates (and signs URLs) with this service-account JSON key.
    pub fn with_service_account_key(mut self, key: impl Into<Secret>) -> Self {
        self.service_account_key = Some(key.into());
        self
    }

    /// Sends no credentials.
    pub fn anonymous(mut self) -> Self {
        self.anonymous = Some(true);
        self
    }

    /// The base URL requests go to, without a trailing slash: configured,
    /// else `STORAGE_EMULATOR_HOST` (with `http://` added when it has no
    /// scheme, as Google's clients do), else the public endpoint.
    pub(crate) fn resolved_base_url(&self) -> String {
        let configured = self.base_url.clone().filter(|u| !u.trim().is_empty());
        let url = configured
            .or_else(emulator_host)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        url.trim_end_matches('/').to_owned()
    }

    /// Whether requests go without credentials.
    pub(crate) fn is_anonymous(&self) -> bool {
        match self.anonymous {
            Some(anonymous) => anonymous,
            None => {
                self.service_account_key.is_none()
                    && self.service_account_path.is_none()
                    && emulator_host().is_some()
            }
        }
    }

    /// Checks values serde cannot; the message names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.bucket.trim().is_empty() {
            return Err("bucket must not be empty".into());
        }
        if self.bucket.contains('/') {
            return Err(format!(
                "bucket {:?} must be a bucket name, not a path",
                self.bucket
            ));
        }
        let chunk = self.chunk_size.0;
        if chunk == 0 || !chunk.is_multiple_of(CHUNK_GRANULARITY) {
            return Err(format!(
                "chunk_size must be a non-zero multiple of 256 KiB (GCS's rule for resumable uploads); it is {}",
                self.chunk_size
            ));
        }
        if self.download_chunk_size.0 == 0 {
            return Err("download_chunk_size must not be 0".into());
        }
        if self.download_concurrency == 0 || self.delete_concurrency == 0 {
            return Err("download_concurrency and delete_concurrency must be at least 1".into());
        }
        if self.service_account_key.is_some() && self.service_account_path.is_some() {
            return Err(
                "set service_account_key or service_account_path, not both (which one wins would be a guess)"
                    .into(),
            );
        }
        if self.anonymous == Some(true)
            && (self.service_account_key.is_some() || self.service_account_path.is_some())
        {
            return Err("anonymous = true contradicts a configured service-account key".into());
        }
        let base_url = self.resolved_base_url();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "base_url {base_url:?} must start with http:// or https://"
            ));
        }
        Ok(())
    }
}

/// `STORAGE_EMULATOR_HOST`, as a URL.
fn emulator_host() -> Option<String> {
    let host = std::env::var("STORAGE_EMULATOR_HOST").ok()?;
    let host = host.trim();
    if host.is_empty() {
        return None;
    }
    Some(if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_must_be_a_multiple_of_256_kib() {
        let mut config = GcsConfig::new("b").with_base_url("http://127.0.0.1:1");
        assert!(config.validate().is_ok());
        config.chunk_size = ByteSize(300 << 10);
        let message = config.validate().unwrap_err();
        assert!(message.contains("chunk_size"), "{message}");
    }

    #[test]
    fn contradictions_are_named() {
        let config = GcsConfig::new("b")
            .with_service_account_key("{}")
            .with_service_account_path("/k.json");
        assert!(config.validate().unwrap_err().contains("not both"));
        let config = GcsConfig::new("b")
            .with_service_account_path("/k.json")
            .anonymous();
        assert!(config.validate().unwrap_err().contains("anonymous"));
        let config = GcsConfig::new("a/b");
        assert!(config.validate().unwrap_err().contains("bucket"));
        let config = GcsConfig::new("b").with_base_url("127.0.0.1:1");
        assert!(config.validate().unwrap_err().contains("base_url"));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = GcsConfig::new("b").with_service_account_key("-----BEGIN PRIVATE KEY-----");
        let debug = format!("{config:?}");
        assert!(!debug.contains("BEGIN PRIVATE KEY"), "{debug}");
    }
}
