//! [`SupabaseConfig`]: the `[providers.NAME]` table of `type = "supabase"`.

use serde::Deserialize;
use storage_core::Secret;
use storage_core::config::ByteSize;

/// Settings of one Supabase Storage bucket. Unknown fields are refused.
///
/// The server is `url` (a project URL, `https://<ref>.supabase.co`, to
/// which `/storage/v1` is added) or `storage_url` (the storage API's own
/// root, for self-hosted servers: `http://127.0.0.1:5000`). The key is a
/// service-role or anon JWT; when absent it comes from
/// `SUPABASE_SERVICE_KEY`, `SUPABASE_SERVICE_ROLE_KEY` or
/// `SUPABASE_ANON_KEY`, in that order. Keys print as `***`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SupabaseConfig {
    /// The provider's name (the table's name in a configuration file).
    #[serde(skip, default = "default_name")]
    pub name: String,
    /// The project URL; the storage API is at `<url>/storage/v1`.
    #[serde(default)]
    pub url: Option<String>,
    /// The storage API's root itself (self-hosted servers).
    #[serde(default)]
    pub storage_url: Option<String>,
    /// The service-role or anon key (a JWT).
    #[serde(default)]
    pub key: Option<Secret>,
    /// The bucket (its id).
    pub bucket: String,
    /// Create the bucket when the provider opens, if it does not exist.
    #[serde(default)]
    pub create_bucket: bool,
    /// A created bucket is public (objects readable without a key).
    #[serde(default)]
    pub public: bool,
    /// A created bucket refuses objects larger than this.
    #[serde(default)]
    pub file_size_limit: Option<ByteSize>,
    /// A created bucket accepts only these types (`image/*` works).
    #[serde(default)]
    pub allowed_mime_types: Vec<String>,
    /// Bodies longer than this (or of unknown length) go through TUS
    /// resumable uploads in chunks of this size. Supabase's hosted service
    /// wants exactly 6 MiB. Default: 6 MiB.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: ByteSize,
    /// How often a resumable upload asks the server for its offset and
    /// resends, per chunk, after a dropped connection or a 5xx. Default: 5.
    #[serde(default = "default_resume_attempts")]
    pub resume_attempts: usize,
    /// Gets that serve more than this (a whole object, or a range) are
    /// fetched as parallel ranged downloads of this size each. Default:
    /// 8 MiB.
    #[serde(default = "default_download_chunk_size")]
    pub download_chunk_size: ByteSize,
    /// Transfers in flight at once for a get in parts, the first download
    /// counted while its first chunk streams. Parts are read whole ahead
    /// of their turn, so memory held is up to this many chunks. Default: 4.
    #[serde(default = "default_download_concurrency")]
    pub download_concurrency: usize,
    /// Keys deleted per request in `delete_many`. Default: 1,000.
    #[serde(default = "default_delete_batch")]
    pub delete_batch: usize,
    /// The longest wait for a byte from the server, in seconds. Default: 300.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// The timeout of connecting, in seconds. Default: 10.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

fn default_name() -> String {
    "supabase".to_owned()
}
fn default_chunk_size() -> ByteSize {
    ByteSize(6 << 20)
}
fn default_download_chunk_size() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_download_concurrency() -> usize {
    4
}
fn default_resume_attempts() -> usize {
    5
}
fn default_delete_batch() -> usize {
    1000
}
fn default_timeout() -> u64 {
    300
}
fn default_connect_timeout() -> u64 {
    10
}

/// The variables a key comes from when the table has none, in order.
pub(crate) const KEY_VARIABLES: [&str; 3] = [
    "SUPABASE_SERVICE_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_ANON_KEY",
];

impl SupabaseConfig {
    /// A bucket on the server whose storage API root is `storage_url`.
    pub fn new(storage_url: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self {
            name: default_name(),
            url: None,
            storage_url: Some(storage_url.into()),
            key: None,
            bucket: bucket.into(),
            create_bucket: false,
            public: false,
            file_size_limit: None,
            allowed_mime_types: Vec::new(),
            chunk_size: default_chunk_size(),
            resume_attempts: default_resume_attempts(),
            download_chunk_size: default_download_chunk_size(),
            download_concurrency: default_download_concurrency(),
            delete_batch: default_delete_batch(),
            request_timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
        }
    }

    /// A bucket of the hosted project at `project_url`.
    pub fn for_project(project_url: impl Into<String>, bucket: impl Into<String>) -> Self {
        let mut config = Self::new("", bucket);
        config.storage_url = None;
        config.url = Some(project_url.into());
        config
    }

    /// Sets the provider's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Secret>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The storage API root, without a trailing slash.
    pub(crate) fn base_url(&self) -> Result<String, String> {
        let given = |v: &Option<String>| v.clone().filter(|u| !u.trim().is_empty());
        let base = match (given(&self.storage_url), given(&self.url)) {
            (Some(_), Some(_)) => {
                return Err(
                    "set url (a project URL) or storage_url (the storage API root), not both"
                        .into(),
                );
            }
            (Some(storage), None) => storage.trim_end_matches('/').to_owned(),
            (None, Some(project)) => format!("{}/storage/v1", project.trim_end_matches('/')),
            (None, None) => {
                return Err("set url (https://<project>.supabase.co) or storage_url".into());
            }
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "the storage URL {base:?} must start with http:// or https://"
            ));
        }
        Ok(base)
    }

    /// The key: configured, else from the first variable that is set.
    pub(crate) fn resolved_key(&self) -> Result<Secret, String> {
        if let Some(key) = self.key.clone().filter(|k| !k.is_empty()) {
            return Ok(key);
        }
        KEY_VARIABLES
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .map(Secret::new)
            .ok_or_else(|| format!("no key: set key, or one of {}", KEY_VARIABLES.join(", ")))
    }

    /// Checks values serde cannot; the message names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.bucket.trim().is_empty() || self.bucket.contains('/') {
            return Err(format!(
                "bucket {:?} must be a bucket id (no '/')",
                self.bucket
            ));
        }
        self.base_url()?;
        if self.chunk_size.0 == 0 {
            return Err("chunk_size must not be 0".into());
        }
        if self.download_chunk_size.0 == 0 {
            return Err("download_chunk_size must not be 0".into());
        }
        if self.download_concurrency == 0 {
            return Err("download_concurrency must be at least 1".into());
        }
        if self.delete_batch == 0 {
            return Err("delete_batch must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_url_gets_the_storage_path() {
        let config = SupabaseConfig::for_project("https://abc.supabase.co/", "b");
        assert_eq!(
            config.base_url().unwrap(),
            "https://abc.supabase.co/storage/v1"
        );
        let config = SupabaseConfig::new("http://127.0.0.1:5000/", "b");
        assert_eq!(config.base_url().unwrap(), "http://127.0.0.1:5000");
    }

    #[test]
    fn mistakes_are_named() {
        let mut both = SupabaseConfig::new("http://x", "b");
        both.url = Some("https://y".into());
        assert!(both.validate().unwrap_err().contains("not both"));
        let mut neither = SupabaseConfig::new("", "b");
        neither.storage_url = None;
        assert!(neither.validate().unwrap_err().contains("url"));
        assert!(
            SupabaseConfig::new("ftp://x", "b")
                .validate()
                .unwrap_err()
                .contains("http")
        );
        assert!(
            SupabaseConfig::new("http://x", "a/b")
                .validate()
                .unwrap_err()
                .contains("bucket")
        );
        let mut no_chunk = SupabaseConfig::new("http://x", "b");
        no_chunk.download_chunk_size = ByteSize(0);
        assert!(
            no_chunk
                .validate()
                .unwrap_err()
                .contains("download_chunk_size")
        );
        let mut no_transfers = SupabaseConfig::new("http://x", "b");
        no_transfers.download_concurrency = 0;
        assert!(
            no_transfers
                .validate()
                .unwrap_err()
                .contains("download_concurrency")
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = SupabaseConfig::new("http://x", "b").with_key("eyJhbGciOiJIUzI1NiJ9.secret");
        assert!(!format!("{config:?}").contains("eyJ"));
    }
}
