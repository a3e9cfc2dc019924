//! [`Validation`]: refuse uploads by size, type (judged by their bytes),
//! extension, or an application's scanner, before anything is stored.

use std::fmt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{TryStreamExt, stream};
use serde::Deserialize;

use crate::body::{Body, ByteStream, GetResult};
use crate::capabilities::Capabilities;
use crate::config::ByteSize;
use crate::config::content_type_matches;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{Key, Prefix};
use crate::object::{ObjectMeta, PutResult};
use crate::options::{GetOptions, ListOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::{ListStream, Storage};

/// Bytes looked at to tell the real type.
const SNIFF: usize = 8192;
/// Chunk size when replaying a checked upload.
const REPLAY_CHUNK: usize = 1 << 20;

/// What uploads must satisfy. In a configuration file, the `validation`
/// table of a provider's `layers`.
///
/// ```toml
/// validation = { max_size = "25MB", allowed_content_types = ["image/*", "video/mp4"], allowed_extensions = ["png", "jpg", "mp4"] }
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ValidationConfig {
    /// The largest upload.
    #[serde(default)]
    pub max_size: Option<ByteSize>,
    /// Content types allowed (globs such as `image/*`), checked against the
    /// type the bytes show, and the declared type when the bytes show none.
    /// Empty: any.
    #[serde(default)]
    pub allowed_content_types: Vec<String>,
    /// File name extensions allowed (without the dot, any case). Empty: any.
    #[serde(default)]
    pub allowed_extensions: Vec<String>,
}

/// An upload for a [`Scanner`] to judge: already complete, not yet stored.
#[derive(Debug)]
#[non_exhaustive]
pub struct Upload<'a> {
    /// Where it is going.
    pub key: &'a Key,
    /// Its size.
    pub size: u64,
    /// The content type it was declared with.
    pub declared_type: Option<&'a str>,
    /// The type its bytes show, if recognised.
    pub sniffed_type: Option<&'a str>,
    /// A file holding the whole content (deleted afterwards).
    pub path: &'a Path,
}

/// The application's content check (a malware scanner such as ClamAV, a
/// policy service): return an error to refuse the upload; it then never
/// becomes visible.
#[crate::async_trait]
pub trait Scanner: fmt::Debug + Send + Sync + 'static {
    /// Allows or refuses `upload`.
    async fn scan(&self, upload: &Upload<'_>) -> Result<()>;
}

/// Checks every put before the wrapped provider sees it: the extension,
/// the size (counted, not trusted from the caller), the real content type
/// sniffed from the first bytes (an executable declared as `image/png` is
/// refused), and the application's [`Scanner`]. The body is checked whole
/// in a temporary file, in bounded memory, then stored; a refusal is an
/// `InvalidInput` (or the scanner's error) and stores nothing.
pub struct Validation<S> {
    inner: Arc<S>,
    config: ValidationConfig,
    scanner: Option<Arc<dyn Scanner>>,
}

impl<S: fmt::Debug> fmt::Debug for Validation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validation")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("scanner", &self.scanner)
            .finish()
    }
}

fn refuse(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn is_executable(content_type: &str) -> bool {
    matches!(
        content_type,
        "application/x-executable"
            | "application/x-elf"
            | "application/x-sharedlib"
            | "application/x-mach-binary"
            | "application/vnd.microsoft.portable-executable"
            | "application/x-msdownload"
            | "application/x-dosexec"
            | "application/java-archive"
            | "application/vnd.android.package-archive"
            | "application/x-sh"
    )
}

fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn io_error(err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("cannot hold the upload for checking: {err}"),
    )
    .with_source(err)
}

fn join_error(err: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Other, "checking the upload did not complete").with_source(err)
}

impl<S: Storage> Validation<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, config: ValidationConfig) -> Self {
        Self {
            inner: Arc::new(inner),
            config,
            scanner: None,
        }
    }

    /// A presigned upload bypasses this layer: it is allowed only when it
    /// cannot carry what the layer would refuse (only an extension rule,
    /// which the signed key itself shows, is checkable at signing time).
    fn refuses_presigned_uploads(&self) -> bool {
        self.scanner.is_some()
            || !self.config.allowed_content_types.is_empty()
            || self.config.max_size.is_some()
    }

    /// Asks `scanner` about every upload too.
    pub fn with_scanner(mut self, scanner: Arc<dyn Scanner>) -> Self {
        self.scanner = Some(scanner);
        self
    }

    fn check_extension(&self, key: &Key) -> Result<()> {
        if self.config.allowed_extensions.is_empty() {
            return Ok(());
        }
        let name = key.file_name();
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let allowed = self
            .config
            .allowed_extensions
            .iter()
            .any(|e| e.trim_start_matches('.').eq_ignore_ascii_case(&extension));
        if allowed {
            Ok(())
        } else {
            Err(refuse(format!(
                "the extension {:?} is not allowed; allowed: {}",
                extension,
                self.config.allowed_extensions.join(", ")
            )))
        }
    }

    fn check_size(&self, size: u64) -> Result<()> {
        match self.config.max_size {
            Some(ByteSize(max)) if size > max => Err(refuse(format!(
                "the upload is larger than the {max}-byte limit"
            ))),
            _ => Ok(()),
        }
    }

    fn check_type(&self, declared: Option<&str>, sniffed: Option<&str>) -> Result<()> {
        let declared = declared.map(essence);
        if let (Some(declared), Some(sniffed)) = (&declared, sniffed) {
            let generic = declared == "application/octet-stream";
            let top = |t: &str| t.split('/').next().unwrap_or("").to_owned();
            let disguised_executable = is_executable(sniffed) && !is_executable(declared);
            if disguised_executable || (!generic && top(declared) != top(sniffed)) {
                return Err(refuse(format!(
                    "the upload is declared {declared} but its bytes are {sniffed}"
                )));
            }
        }
        if self.config.allowed_content_types.is_empty() {
            return Ok(());
        }
        let effective = sniffed
            .map(str::to_owned)
            .or(declared)
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        if self
            .config
            .allowed_content_types
            .iter()
            .any(|g| content_type_matches(g, &effective))
        {
            Ok(())
        } else {
            Err(refuse(format!(
                "the content type {effective} is not allowed; allowed: {}",
                self.config.allowed_content_types.join(", ")
            )))
        }
    }

    /// Holds the whole body in an anonymous temporary file (counting it
    /// against the size limit) and keeps its first bytes for sniffing.
    async fn hold(&self, body: Body) -> Result<(tempfile::NamedTempFile, u64, Bytes)> {
        let file = tokio::task::spawn_blocking(tempfile::NamedTempFile::new)
            .await
            .map_err(join_error)?
            .map_err(io_error)?;
        let mut stream = body.into_stream();
        let mut head = Vec::new();
        let mut size = 0u64;
        let mut file = Some(file);
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            self.check_size(size)?;
            if head.len() < SNIFF {
                let take = (SNIFF - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            let mut held = file
                .take()
                .ok_or_else(|| io_error(std::io::Error::other("lost the file")))?;
            held = tokio::task::spawn_blocking(move || held.write_all(&chunk).map(|()| held))
                .await
                .map_err(join_error)?
                .map_err(io_error)?;
            file = Some(held);
        }
        let file = file.ok_or_else(|| io_error(std::io::Error::other("lost the file")))?;
        Ok((file, size, Bytes::from(head)))
    }
}

/// Replays a held upload from its start, in chunks; the file is removed
/// when the stream is dropped.
fn replay(file: tempfile::NamedTempFile) -> ByteStream {
    Box::pin(stream::try_unfold(
        (file, false),
        |(file, started)| async move {
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                let mut file = file;
                let handle = file.as_file_mut();
                if !started {
                    handle.seek(SeekFrom::Start(0))?;
                }
                let mut chunk = Vec::with_capacity(REPLAY_CHUNK);
                handle.take(REPLAY_CHUNK as u64).read_to_end(&mut chunk)?;
                Ok::<_, std::io::Error>((file, chunk))
            })
            .await
            .map_err(join_error)?
            .map_err(io_error)?;
            if chunk.is_empty() {
                Ok(None)
            } else {
                Ok(Some((Bytes::from(chunk), (file, true))))
            }
        },
    ))
}

#[crate::async_trait]
impl<S: Storage> Storage for Validation<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = self.inner.capabilities();
        capabilities.presign_put &= !self.refuses_presigned_uploads();
        capabilities
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let ctx = |err: Error| err.context(Operation::Put, self.inner.name(), Some(key.as_str()));
        self.check_extension(key).map_err(ctx)?;
        if let Some(size) = body.size_hint() {
            self.check_size(size).map_err(ctx)?;
        }
        let declared = options.content_type.clone();
        // Small bodies in memory need no file unless a scanner wants one.
        if let (Body::Bytes(bytes), None) = (&body, &self.scanner) {
            let sniffed = infer::get(bytes).map(|t| t.mime_type());
            self.check_type(declared.as_deref(), sniffed).map_err(ctx)?;
            return self.inner.put(key, body, options).await;
        }
        let (file, size, head) = self.hold(body).await.map_err(ctx)?;
        let sniffed = infer::get(&head).map(|t| t.mime_type());
        self.check_type(declared.as_deref(), sniffed).map_err(ctx)?;
        if let Some(scanner) = &self.scanner {
            let upload = Upload {
                key,
                size,
                declared_type: declared.as_deref(),
                sniffed_type: sniffed,
                path: file.path(),
            };
            scanner.scan(&upload).await.map_err(ctx)?;
        }
        self.inner
            .put(key, Body::from_sized_stream(replay(file), size), options)
            .await
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        self.inner.get(key, options).await
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        self.inner.head(key).await
    }
    async fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.inner.delete(key).await
    }
    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        self.inner.list(prefix, options)
    }
    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        // A copy stores nothing new, but it may give a checked object a
        // name with a forbidden extension.
        self.check_extension(to)
            .map_err(|err| err.context(Operation::Copy, self.inner.name(), Some(to.as_str())))?;
        self.inner.copy(from, to).await
    }
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        self.check_extension(to)
            .map_err(|err| err.context(Operation::Rename, self.inner.name(), Some(to.as_str())))?;
        self.inner.rename(from, to).await
    }
    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        if method == PresignMethod::Put {
            if self.refuses_presigned_uploads() {
                return Err(Error::unsupported(
                    "presigned uploads cannot be validated (size, content or scanner checks); upload through the library",
                )
                .context(Operation::Presign, self.inner.name(), Some(key.as_str())));
            }
            self.check_extension(key).map_err(|err| {
                err.context(Operation::Presign, self.inner.name(), Some(key.as_str()))
            })?;
        }
        self.inner.presign(method, key, expires_in, options).await
    }
}
