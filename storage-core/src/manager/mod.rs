//! The manager: artifacts in, references out.
//!
//! Applications rarely want to pick keys and providers by hand. The
//! [`Manager`] lays out the key from the artifact's identity (the
//! [`KeyLayout`]), picks the provider with the [`Route`]s (first match
//! wins), infers the content type when none is given, stores the bytes,
//! and returns an [`ArtifactRef`] that names where they really went. Reads,
//! presigns and deletes take that reference, so they keep working after
//! the routes change, and each goes through the application's
//! [`Authorizer`] first.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use storage_core::config::{Config, Registry};
//! use storage_core::manager::{ArtifactSpec, Manager};
//!
//! let config = Config::parse("storage.toml", r#"
//!     default = "small"
//!     [providers.small]
//!     type = "memory"
//!     [providers.big]
//!     type = "memory"
//!     [[routes]]
//!     when = { artifact_type = "video", size_gt = "1MB" }
//!     provider = "big"
//!     [[routes]]
//!     provider = "small"
//! "#)?;
//! let manager = Manager::from_config(&config, &Registry::new()).await?;
//!
//! let clip = ArtifactSpec::new("acme", "video", "board-7", "clip-1").with_file_name("intro.mp4");
//! let stored = manager.store(&clip, vec![0u8; 2_000_000].into()).await?;
//! assert_eq!(stored.provider, "big");
//! assert_eq!(stored.key.as_str(), "acme/video/board-7/clip-1/original");
//! assert_eq!(stored.content_type.as_deref(), Some("video/mp4"));
//!
//! let bytes = manager.open(&stored, Default::default()).await?.bytes().await?;
//! assert_eq!(bytes.len(), 2_000_000);
//! # Ok::<(), storage_core::Error>(())
//! # }).unwrap();
//! ```

mod reference;
pub mod spool;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

pub use reference::ArtifactRef;

use crate::body::{Body, GetResult};
use crate::config::{ArtifactFacts, Config, KeyLayout, Placeholder, Providers, Registry, Route};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Key;
use crate::object::{ObjectMeta, UserMetadata};
use crate::options::{GetOptions, PutOptions};
use crate::presign::{PresignMethod, PresignOptions, PresignedRequest};
use crate::storage::Storage;

/// The content type stored when none is given and none can be inferred.
pub const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// The identity of an artifact: what the key layout and the routes look at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArtifactSpec {
    /// The tenant (customer, workspace).
    pub tenant: String,
    /// The artifact type (`image`, `video`, `model`, `bundle`).
    pub artifact_type: String,
    /// The board (project, collection).
    pub board: String,
    /// The artifact's id, unique within the board.
    pub artifact_id: String,
    /// The variant (`original`, `thumb`, `720p`); default `original`.
    pub variant: String,
    /// The original file name, for `{file_name}` and content type
    /// inference.
    pub file_name: Option<String>,
    /// The content type; inferred from the bytes, then the file name, when
    /// not given.
    pub content_type: Option<String>,
    /// User metadata stored with the object.
    pub user_metadata: UserMetadata,
}

impl ArtifactSpec {
    /// An artifact of `tenant`, `artifact_type`, `board` and `artifact_id`,
    /// variant `original`.
    pub fn new(
        tenant: impl Into<String>,
        artifact_type: impl Into<String>,
        board: impl Into<String>,
        artifact_id: impl Into<String>,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            artifact_type: artifact_type.into(),
            board: board.into(),
            artifact_id: artifact_id.into(),
            variant: "original".to_owned(),
            file_name: None,
            content_type: None,
            user_metadata: UserMetadata::new(),
        }
    }

    /// Sets the variant.
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = variant.into();
        self
    }

    /// Sets the original file name.
    pub fn with_file_name(mut self, file_name: impl Into<String>) -> Self {
        self.file_name = Some(file_name.into());
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds a user metadata pair.
    pub fn with_metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_metadata.insert(name.into(), value.into());
        self
    }

    fn placeholder(&self, placeholder: Placeholder) -> Option<String> {
        match placeholder {
            Placeholder::Tenant => Some(self.tenant.clone()),
            Placeholder::ArtifactType => Some(self.artifact_type.clone()),
            Placeholder::Board => Some(self.board.clone()),
            Placeholder::ArtifactId => Some(self.artifact_id.clone()),
            Placeholder::Variant => Some(self.variant.clone()),
            Placeholder::FileName => self.file_name.clone(),
        }
    }
}

/// One provider's answer to a health probe.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProviderHealth {
    /// The provider's name.
    pub name: String,
    /// Whether it answered.
    pub healthy: bool,
    /// Why not, if not.
    pub error: Option<String>,
    /// How long the probe took.
    pub latency: Duration,
    /// Its circuit breaker's state, if it has one.
    pub breaker: Option<crate::layers::BreakerState>,
}

/// What the application is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Reading the content ([`Manager::open`]).
    Read,
    /// Reading the metadata ([`Manager::head`]).
    Head,
    /// Handing out a presigned URL for this method.
    Presign(PresignMethod),
    /// Deleting the artifact.
    Delete,
}

/// The application's authorization hook: asked before every read, head,
/// presign and delete through the manager. Return an error (typically
/// [`ErrorKind::PermissionDenied`]) to refuse; nothing is read or signed
/// then.
#[crate::async_trait]
pub trait Authorizer: fmt::Debug + Send + Sync + 'static {
    /// Allows or refuses `action` on `artifact`.
    async fn authorize(&self, action: Action, artifact: &ArtifactRef) -> Result<()>;
}

/// Allows everything: the default when no authorizer is set.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[crate::async_trait]
impl Authorizer for AllowAll {
    async fn authorize(&self, _action: Action, _artifact: &ArtifactRef) -> Result<()> {
        Ok(())
    }
}

/// Stores artifacts by layout and routes, and reads them back by
/// reference. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Manager {
    providers: Providers,
    routes: Arc<[Route]>,
    layout: KeyLayout,
    authorizer: Arc<dyn Authorizer>,
}

impl Manager {
    /// A manager over built providers.
    pub fn new(providers: Providers, routes: Vec<Route>, layout: KeyLayout) -> Self {
        Self {
            providers,
            routes: routes.into(),
            layout,
            authorizer: Arc::new(AllowAll),
        }
    }

    /// Builds every provider of `config` with `registry`, and takes its
    /// routes and layout.
    pub async fn from_config(config: &Config, registry: &Registry) -> Result<Self> {
        let providers = registry.build_all(config).await?;
        Ok(Self::new(
            providers,
            config.routes().to_vec(),
            config.layout().clone(),
        ))
    }

    /// The same manager, asking `authorizer` before reads, presigns and
    /// deletes (for example one bound to the current user).
    pub fn with_authorizer(&self, authorizer: Arc<dyn Authorizer>) -> Self {
        Self {
            authorizer,
            ..self.clone()
        }
    }

    /// The providers.
    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Probes every provider ([`Storage::health`]), in name order.
    pub async fn health(&self) -> Vec<ProviderHealth> {
        let mut report = Vec::new();
        for (name, provider) in self.providers.iter() {
            let started = std::time::Instant::now();
            let result = provider.health().await;
            report.push(ProviderHealth {
                name: name.to_owned(),
                healthy: result.is_ok(),
                error: result.err().map(|e| e.to_string()),
                latency: started.elapsed(),
                breaker: self.providers.breaker_state(name),
            });
        }
        report
    }

    /// The key an artifact gets.
    pub fn key_for(&self, artifact: &ArtifactSpec) -> Result<Key> {
        let text = self
            .layout
            .render(|p| artifact.placeholder(p))
            .map_err(|message| Error::new(ErrorKind::InvalidInput, message))?;
        Ok(Key::new(text)?)
    }

    /// The provider the routes pick for these facts: the first route that
    /// matches, or the default provider when there are no routes.
    pub fn route(&self, facts: &ArtifactFacts<'_>) -> &str {
        self.routes
            .iter()
            .find(|route| route.matches(facts))
            .map(|route| route.provider.as_str())
            .unwrap_or(self.providers.default_name())
    }

    /// The largest size any route compares against, if any route does.
    fn size_limit(&self) -> Option<u64> {
        self.routes
            .iter()
            .flat_map(|route| route.conditions.iter())
            .filter_map(|condition| match condition {
                crate::config::RouteCondition::SizeGreaterThan(n)
                | crate::config::RouteCondition::SizeLessThan(n) => Some(*n),
                _ => None,
            })
            .max()
    }

    /// Stores an artifact: lays out its key, infers its content type if
    /// needed, routes it, and writes it (replacing any previous version of
    /// the same artifact on that provider).
    ///
    /// A stream of unknown length is read ahead only if a route compares
    /// sizes, in bounded memory (see [`spool`]).
    pub async fn store(&self, artifact: &ArtifactSpec, body: Body) -> Result<ArtifactRef> {
        let key = self.key_for(artifact)?;
        let (content_type, body) = match &artifact.content_type {
            Some(content_type) => (content_type.clone(), body),
            None => infer_content_type(body, artifact.file_name.as_deref()).await?,
        };
        let (size, body) = match (body.size_hint(), self.size_limit()) {
            (Some(size), _) => (Some(size), body),
            (None, None) => (None, body),
            (None, Some(limit)) => {
                let (known, body) = spool::measure(body, limit).await?;
                (Some(known.for_routing()), body)
            }
        };
        let facts = ArtifactFacts {
            artifact_type: Some(&artifact.artifact_type),
            content_type: Some(&content_type),
            tenant: Some(&artifact.tenant),
            size,
        };
        let provider_name = self.route(&facts).to_owned();
        let provider = self.providers.get(&provider_name)?;
        let mut options = PutOptions::default().with_content_type(&content_type);
        if provider.capabilities().user_metadata {
            options.user_metadata = artifact.user_metadata.clone();
        }
        let written = provider.put(&key, body, options).await?;
        tracing::debug!(provider = %provider_name, key = %key, size = written.size, "stored artifact");
        // A fallback layer may have stored it elsewhere: record where.
        let provider_name = written.stored_on.clone().unwrap_or(provider_name);
        let mut reference = ArtifactRef::new(provider_name, key, written.size);
        reference.content_type = Some(content_type);
        reference.checksum = written.checksum.map(|c| c.to_string());
        Ok(reference)
    }

    fn provider_of(&self, artifact: &ArtifactRef) -> Result<&Arc<dyn Storage>> {
        self.providers.get(&artifact.provider)
    }

    /// Reads an artifact, after the authorizer allows [`Action::Read`].
    pub async fn open(&self, artifact: &ArtifactRef, options: GetOptions) -> Result<GetResult> {
        self.authorizer.authorize(Action::Read, artifact).await?;
        self.provider_of(artifact)?
            .get(&artifact.key, options)
            .await
    }

    /// The artifact's current metadata, after the authorizer allows
    /// [`Action::Head`].
    pub async fn head(&self, artifact: &ArtifactRef) -> Result<ObjectMeta> {
        self.authorizer.authorize(Action::Head, artifact).await?;
        self.provider_of(artifact)?.head(&artifact.key).await
    }

    /// A presigned URL for the artifact, after the authorizer allows
    /// [`Action::Presign`].
    pub async fn presign(
        &self,
        artifact: &ArtifactRef,
        method: PresignMethod,
        expires_in: Duration,
    ) -> Result<PresignedRequest> {
        self.authorizer
            .authorize(Action::Presign(method), artifact)
            .await?;
        let mut options = PresignOptions::default();
        if method == PresignMethod::Put {
            options.content_type = artifact.content_type.clone();
        }
        self.provider_of(artifact)?
            .presign(method, &artifact.key, expires_in, options)
            .await
    }

    /// Deletes the artifact, after the authorizer allows
    /// [`Action::Delete`]; `Ok(false)` if it was already gone.
    pub async fn delete(&self, artifact: &ArtifactRef) -> Result<bool> {
        self.authorizer.authorize(Action::Delete, artifact).await?;
        self.provider_of(artifact)?.delete(&artifact.key).await
    }
}

/// Infers a content type from the first bytes (magic numbers), then from
/// the file name's extension; returns it with a body that still yields
/// every byte.
pub async fn infer_content_type(body: Body, file_name: Option<&str>) -> Result<(String, Body)> {
    let by_name = || {
        file_name
            .and_then(|name| mime_guess::from_path(name).first_raw())
            .map(str::to_owned)
    };
    match body {
        Body::Bytes(bytes) => {
            let sniffed = infer::get(&bytes).map(|t| t.mime_type().to_owned());
            let content_type = sniffed
                .or_else(by_name)
                .unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_owned());
            Ok((content_type, Body::Bytes(bytes)))
        }
        Body::Stream { mut stream, size } => {
            // Look at the first chunk only, and put it back in front.
            let first: Option<Bytes> = stream.try_next().await?;
            let sniffed = first
                .as_ref()
                .and_then(|chunk| infer::get(chunk))
                .map(|t| t.mime_type().to_owned());
            let content_type = sniffed
                .or_else(by_name)
                .unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_owned());
            let replayed = stream::iter(first.map(Ok)).chain(stream);
            let body = match size {
                Some(size) => Body::from_sized_stream(replayed, size),
                None => Body::from_stream(replayed),
            };
            Ok((content_type, body))
        }
    }
}
