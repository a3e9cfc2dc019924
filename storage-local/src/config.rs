//! [`LocalConfig`]: where the folder is and how URLs are signed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use storage_core::{Secret, Url};

/// The local backend's settings, as in a `[providers.NAME]` table with
/// `type = "local"`. Unknown fields are refused.
///
/// ```toml
/// root = "./storage-data"
/// public_url = "http://127.0.0.1:8080/files"   # where the presign handler is mounted
/// signing_secret = "${LOCAL_SIGNING_SECRET}"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LocalConfig {
    /// The provider's name in errors and logs. In a configuration file it
    /// is the table's name, not a field.
    #[serde(skip, default = "default_name")]
    pub name: String,
    /// The folder that holds the objects. Nothing is read or written
    /// outside it.
    pub root: PathBuf,
    /// Create `root` (and its parents) if missing. Default: true.
    #[serde(default = "default_true")]
    pub create_root: bool,
    /// The URL where [`router`](crate::router) is mounted; presigned URLs
    /// are built under it. Needed only to presign.
    #[serde(default)]
    pub public_url: Option<Url>,
    /// The HMAC-SHA256 key that signs URLs; at least 16 bytes. Needed only
    /// to presign. Never printed.
    #[serde(default)]
    pub signing_secret: Option<Secret>,
    /// The longest expiry a presigned URL may ask for, in seconds.
    /// Default: 7 days, as S3.
    #[serde(default = "default_max_expiry")]
    pub max_presign_expiry_secs: u64,
    /// Flush every write to disk before publishing it, so a power loss
    /// cannot leave a published but empty object. Default: true.
    #[serde(default = "default_true")]
    pub fsync: bool,
    /// With `fsync`, also flush the object's folder after publishing, so
    /// that the new name survives a power loss as well as the content.
    /// Off, a power loss soon after a put can bring back the previous
    /// object (never a torn one), for one flush less per write: the
    /// durability of OpenDAL's fs service. Default: true.
    #[serde(default = "default_true")]
    pub fsync_folder: bool,
    /// Check each full read against the stored CRC-32C and fail the stream
    /// with `Corruption` on a mismatch. Default: false.
    #[serde(default)]
    pub verify_checksums: bool,
    /// Answer `get` and `head` of objects whose files the kernel has
    /// cached, and `exists`, on the calling task instead of handing them
    /// to the blocking thread pool: faster for small objects (the hand-off
    /// costs more than the read). Uses only calls that fail rather than
    /// wait for the disk (Linux `openat2` with `RESOLVE_CACHED`, `preadv2`
    /// with `RWF_NOWAIT`); on a miss, or on other systems, the operation
    /// goes to the pool as with this off. Default: true.
    #[serde(default = "default_true")]
    pub cached_reads: bool,
    /// Write each put into an unnamed file (Linux `O_TMPFILE`) and give it
    /// the object's name once flushed, instead of renaming a named
    /// temporary file into place: the folder is written once per put
    /// rather than twice, and a crash while the content is being written
    /// leaves no temporary file behind.
    /// Where the system or the file system cannot (checked when the store
    /// opens), named temporary files are used as with this off.
    /// Default: true.
    #[serde(default = "default_true")]
    pub unnamed_temp_files: bool,
}

fn default_name() -> String {
    "local".to_owned()
}

fn default_true() -> bool {
    true
}

fn default_max_expiry() -> u64 {
    7 * 24 * 3600
}

impl LocalConfig {
    /// Defaults for a folder: no presigning, fsync on.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            name: default_name(),
            root: root.into(),
            create_root: true,
            public_url: None,
            signing_secret: None,
            max_presign_expiry_secs: default_max_expiry(),
            fsync: true,
            fsync_folder: true,
            verify_checksums: false,
            cached_reads: true,
            unnamed_temp_files: true,
        }
    }

    /// Sets the provider's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Enables presigning: URLs under `public_url`, signed with `secret`.
    pub fn with_presign(mut self, public_url: Url, secret: impl Into<Secret>) -> Self {
        self.public_url = Some(public_url);
        self.signing_secret = Some(secret.into());
        self
    }

    /// Turns fsync on or off (off only for scratch data and benchmarks of
    /// the page cache).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Turns flushing the folder after each write on or off (see
    /// [`fsync_folder`](Self::fsync_folder)).
    pub fn with_fsync_folder(mut self, fsync_folder: bool) -> Self {
        self.fsync_folder = fsync_folder;
        self
    }

    /// Turns checksum verification of full reads on or off.
    pub fn with_verify_checksums(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }

    /// Turns answering reads from the kernel's caches on the calling task
    /// on or off (see [`cached_reads`](Self::cached_reads)).
    pub fn with_cached_reads(mut self, cached_reads: bool) -> Self {
        self.cached_reads = cached_reads;
        self
    }

    /// Turns writing puts into unnamed files on or off (see
    /// [`unnamed_temp_files`](Self::unnamed_temp_files)).
    pub fn with_unnamed_temp_files(mut self, unnamed: bool) -> Self {
        self.unnamed_temp_files = unnamed;
        self
    }

    pub(crate) fn max_presign_expiry(&self) -> Duration {
        Duration::from_secs(self.max_presign_expiry_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_signing_secret() {
        let url = Url::parse("http://127.0.0.1/files").unwrap();
        let config = LocalConfig::new("/data").with_presign(url, "super-secret-value");
        let printed = format!("{config:?}");
        assert!(!printed.contains("super-secret-value"), "{printed}");
        assert!(printed.contains("***"));
    }
}
