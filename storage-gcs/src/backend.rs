//! [`GcsStorage`]: the contract over one Google Cloud Storage bucket.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::{Method, StatusCode};
use storage_core::{
    Body, Capabilities, ChunkReader, Error, ErrorKind, GetOptions, GetResult, Key, ListEntry,
    ListOptions, ListStream, ObjectMeta, Operation, Prefix, PresignMethod, PresignOptions,
    PresignedRequest, PutOptions, PutResult, Result, Storage, WriteMode, async_trait,
};

use crate::client::{Client, error_of};
use crate::config::GcsConfig;
use crate::credentials::{Auth, SigningKey};
use crate::download::{self, Split, as_generation};
use crate::resource::{ListPage, NewObject, ObjectResource, RewriteResponse};
use crate::signer::{SignedUrlRequest, signed_url};
use crate::upload::{ResumableUpload, multipart};

/// One Google Cloud Storage bucket, on the JSON API.
///
/// - The contract's etag is the object's generation, so create-only
///   (`ifGenerationMatch=0`), replace-if-match and pinned reads are single
///   conditional requests, never a read-then-write.
/// - A body that ends within `chunk_size` is one `uploadType=multipart`
///   request; a longer one is a resumable upload in chunks that survives a
///   dropped connection by resuming where the server stands.
/// - Gets serving more than `download_chunk_size` (whole or ranged)
///   are parallel ranged requests pinned to the first answer's
///   generation, requested while the first answer's first chunk streams,
///   and yielded in order; a part cut short is asked for again from its
///   first missing byte.
/// - Signed URLs (V4) are computed locally from the service-account key.
#[derive(Debug, Clone)]
pub struct GcsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: GcsConfig,
    client: Arc<Client>,
    signing: Option<SigningKey>,
}

impl GcsStorage {
    /// Builds the client and reads the credentials (key files, no network
    /// I/O); fails with `InvalidConfig` naming the bad setting.
    pub fn new(config: GcsConfig) -> Result<Self> {
        let invalid = |err: Error| err.context(Operation::Open, &config.name, None);
        config
            .validate()
            .map_err(|message| invalid(Error::new(ErrorKind::InvalidConfig, message)))?;
        let auth = Auth::new(&config).map_err(invalid)?;
        let signing = SigningKey::find(&config).map_err(invalid)?;
        let client = Arc::new(Client::new(&config, auth).map_err(invalid)?);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                client,
                signing,
            }),
        })
    }

    /// The configuration (keys print as `***`).
    pub fn config(&self) -> &GcsConfig {
        &self.inner.config
    }

    fn ctx(&self, operation: Operation, key: &str) -> impl Fn(Error) -> Error + '_ {
        let key = key.to_owned();
        move |err| err.context(operation, &self.inner.config.name, Some(&key))
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Creates the bucket if it does not exist; `Ok(true)` if it was
    /// created, `Ok(false)` if it was already there and readable.
    pub async fn create_bucket(&self) -> Result<bool> {
        let config = &self.inner.config;
        let fail = |err: Error| err.context(Operation::Open, &config.name, None);
        let project = config
            .project
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| std::env::var("GOOGLE_CLOUD_PROJECT").ok())
            .ok_or_else(|| {
                fail(Error::new(
                    ErrorKind::InvalidConfig,
                    "create_bucket needs project (or GOOGLE_CLOUD_PROJECT)",
                ))
            })?;
        let client = self.client();
        let request = client
            .request(Method::POST, &format!("{}/storage/v1/b", client.base_url))
            .query(&[("project", project)])
            .json(&serde_json::json!({ "name": config.bucket }));
        let response = client.send_raw(request).await.map_err(fail)?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::CONFLICT => self.health().await.map(|()| false),
            _ => Err(fail(error_of(response).await)),
        }
    }

    /// Deletes many keys, `delete_concurrency` at a time. Missing keys are
    /// not errors. Returns one result per key, in order.
    pub async fn delete_many(&self, keys: &[Key]) -> Vec<Result<()>> {
        stream::iter(keys)
            .map(|key| async move { self.delete(key).await.map(drop) })
            .buffered(self.inner.config.delete_concurrency)
            .collect()
            .await
    }

    async fn resource(&self, name: &str) -> Result<ObjectResource> {
        let client = self.client();
        client
            .send_json(client.request(Method::GET, &client.object_url(name)))
            .await
    }

    async fn write(
        &self,
        key: &Key,
        body: Body,
        options: &PutOptions,
        if_generation_match: Option<u64>,
    ) -> Result<ObjectResource> {
        let object = NewObject {
            name: key.as_str(),
            content_type: options.content_type.as_deref(),
            cache_control: options.cache_control.as_deref(),
            metadata: &options.user_metadata,
        };
        let client = self.client();
        if let Body::Bytes(bytes) = &body
            && bytes.len() as u64 <= self.inner.config.chunk_size.0
        {
            return multipart(client, &object, bytes.clone(), if_generation_match).await;
        }
        let chunk_size = self.inner.config.chunk_size.0 as usize;
        let mut chunks = ChunkReader::new(body.into_stream());
        let first = chunks.next_chunk(chunk_size).await?;
        let second = if first.len() < chunk_size {
            bytes::Bytes::new()
        } else {
            chunks.next_chunk(chunk_size).await?
        };
        if second.is_empty() {
            return multipart(client, &object, first, if_generation_match).await;
        }
        let mut upload = ResumableUpload::start(
            client,
            &object,
            if_generation_match,
            self.inner.config.resume_attempts,
        )
        .await?;
        // At most two chunks are held: the one on the wire and the one
        // being read. Whether a full chunk is the last is known only after
        // it is sent, so a stream that ends on a chunk boundary is
        // finalized by an empty request that states the total.
        let outcome: Result<ObjectResource> = async {
            upload.send_chunk(first, false).await?;
            let mut current = second;
            let last = loop {
                if current.len() < chunk_size {
                    break current;
                }
                let (sent, next) = futures::join!(
                    upload.send_chunk(current, false),
                    chunks.next_chunk(chunk_size)
                );
                sent?;
                current = next?;
                if current.is_empty() {
                    break current;
                }
            };
            upload.send_chunk(last, true).await?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Other,
                    "GCS did not finish the upload after its last chunk",
                )
            })
        }
        .await;
        if outcome.is_err() {
            upload.cancel().await;
        }
        outcome
    }

    /// The listing, page by page.
    fn list_pages(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        struct State {
            this: GcsStorage,
            prefix: String,
            delimiter: bool,
            start_after: Option<String>,
            token: Option<String>,
            last: Option<String>,
            done: bool,
        }
        let state = State {
            this: self.clone(),
            prefix: prefix.as_str().to_owned(),
            delimiter: options.delimiter,
            start_after: options.start_after.map(Key::into_string),
            token: None,
            last: None,
            done: false,
        };
        let pages = stream::try_unfold(state, |mut state| async move {
            if state.done {
                return Ok::<_, Error>(None);
            }
            let client = state.this.client();
            let mut query = vec![("maxResults", "1000".to_owned())];
            if !state.prefix.is_empty() {
                query.push(("prefix", state.prefix.clone()));
            }
            if state.delimiter {
                query.push(("delimiter", "/".to_owned()));
            }
            if let Some(after) = &state.start_after {
                // Inclusive on the server; the exclusive bound is below.
                query.push(("startOffset", after.clone()));
            }
            if let Some(token) = &state.token {
                query.push(("pageToken", token.clone()));
            }
            let page: ListPage = client
                .send_json(
                    client
                        .request(Method::GET, &client.objects_url())
                        .query(&query),
                )
                .await?;
            let mut entries: Vec<ListEntry> =
                page.prefixes.into_iter().map(ListEntry::Prefix).collect();
            for item in &page.items {
                entries.push(item.to_entry()?);
            }
            entries.sort_by(|a, b| a.name().cmp(b.name()));
            // Names only go up: a prefix repeated on the next page, or a
            // name at or before start_after, is dropped.
            let floor = state.last.clone().or_else(|| state.start_after.clone());
            entries.retain(|e| floor.as_deref().is_none_or(|f| e.name() > f));
            if let Some(last) = entries.last() {
                state.last = Some(last.name().to_owned());
            }
            state.token = page.next_page_token.filter(|t| !t.is_empty());
            state.done = state.token.is_none();
            Ok(Some((stream::iter(entries.into_iter().map(Ok)), state)))
        });
        Box::pin(pages.try_flatten())
    }

    /// Rewrites `from` into `to` server-side, looping while GCS asks for
    /// more calls (large objects across locations or storage classes).
    async fn rewrite(
        &self,
        from: &str,
        to: &str,
        source_generation: Option<&str>,
    ) -> Result<ObjectResource> {
        let client = self.client();
        let url = client.rewrite_url(from, to);
        let mut token: Option<String> = None;
        loop {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(generation) = source_generation {
                query.push(("sourceGeneration", generation.to_owned()));
            }
            if let Some(token) = &token {
                query.push(("rewriteToken", token.clone()));
            }
            let answer: RewriteResponse = client
                .send_json(
                    client
                        .request(Method::POST, &url)
                        .query(&query)
                        .json(&serde_json::json!({})),
                )
                .await?;
            if answer.done {
                return answer.resource.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Other,
                        "GCS finished a rewrite without the object",
                    )
                });
            }
            token = Some(
                answer
                    .rewrite_token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Other,
                            "GCS left a rewrite unfinished without a token",
                        )
                    })?,
            );
        }
    }
}

fn put_result(resource: &ObjectResource, key: &Key) -> Result<PutResult> {
    let meta = resource.to_meta(key.clone())?;
    let mut result = PutResult::new(meta.size, meta.etag);
    result.version = meta.version;
    result.checksum = meta.checksum;
    Ok(result)
}

#[async_trait]
impl Storage for GcsStorage {
    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::all();
        capabilities.presign = self.inner.signing.is_some();
        capabilities
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Put, key);
        let if_generation_match = match &options.mode {
            WriteMode::Overwrite => None,
            WriteMode::CreateNew => Some(0),
            WriteMode::UpdateIfMatch(etag) => Some(as_generation(etag).ok_or_else(|| {
                // Not a generation: it cannot be this object's etag.
                ctx(Error::new(
                    ErrorKind::PreconditionFailed,
                    "the etag is not a GCS generation, so it matches no object here",
                ))
            })?),
            _ => return Err(ctx(Error::unsupported("this write mode"))),
        };
        let resource = self
            .write(key, body, &options, if_generation_match)
            .await
            .map_err(|err| match (err.kind(), &options.mode) {
                // GCS answers a failed ifGenerationMatch=0 with 412.
                (ErrorKind::PreconditionFailed, WriteMode::CreateNew) => Error::new(
                    ErrorKind::AlreadyExists,
                    "an object already exists at this key",
                ),
                _ => err,
            })
            .map_err(&ctx)?;
        put_result(&resource, key).map_err(ctx)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let ctx = self.ctx(Operation::Get, key);
        if let Some(range) = options.range {
            // Empty ranges are the caller's mistake, whatever the object.
            range.resolve(u64::MAX).map_err(&ctx)?;
        }
        let split = Split {
            chunk: self.inner.config.download_chunk_size.0,
            concurrency: self.inner.config.download_concurrency,
        };
        let result = match download::get(&self.inner.client, key, &options, split)
            .await
            .map_err(&ctx)?
        {
            Some(result) => result,
            None => {
                let meta = self.head(key).await.map_err(&ctx)?;
                download::get_via_resource(&self.inner.client, key, &options, meta)
                    .await
                    .map_err(&ctx)?
            }
        };
        let name = self.inner.config.name.clone();
        let key_text = key.as_str().to_owned();
        let body = result
            .body
            .map_err(move |err| err.context(Operation::Get, &name, Some(&key_text)))
            .boxed();
        Ok(GetResult { body, ..result })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let ctx = self.ctx(Operation::Head, key);
        let resource = self.resource(key.as_str()).await.map_err(&ctx)?;
        resource.to_meta(key.clone()).map_err(ctx)
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let ctx = self.ctx(Operation::Delete, key);
        let client = self.client();
        let request = client.request(Method::DELETE, &client.object_url(key.as_str()));
        match client.send(request).await {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
            Err(err) => Err(ctx(err)),
        }
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let name = self.inner.config.name.clone();
        let context_prefix = prefix.as_str().to_owned();
        Box::pin(
            self.list_pages(prefix, options)
                .map_err(move |err| err.context(Operation::List, &name, Some(&context_prefix))),
        )
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Copy, from);
        let resource = if from == to {
            self.resource(from.as_str()).await
        } else {
            self.rewrite(from.as_str(), to.as_str(), None).await
        }
        .map_err(&ctx)?;
        put_result(&resource, to).map_err(ctx)
    }

    /// A rewrite of exactly the source's current generation, then a delete
    /// of that generation only: if the source is overwritten meanwhile,
    /// the new source stays and the rename fails with `PreconditionFailed`,
    /// so nothing is lost.
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let ctx = self.ctx(Operation::Rename, from);
        let source = self.resource(from.as_str()).await.map_err(&ctx)?;
        if from == to {
            return Ok(());
        }
        let generation = source.generation.as_deref();
        self.rewrite(from.as_str(), to.as_str(), generation)
            .await
            .map_err(&ctx)?;
        let client = self.client();
        let mut request = client.request(Method::DELETE, &client.object_url(from.as_str()));
        if let Some(generation) = generation {
            request = request.query(&[("ifGenerationMatch", generation)]);
        }
        match client.send(request).await {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(ctx(err)),
        }
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        let ctx = self.ctx(Operation::Presign, key);
        let Some(signing) = &self.inner.signing else {
            return Err(ctx(Error::unsupported(
                "signed URLs: they need a service-account key (service_account_key, service_account_path or GOOGLE_APPLICATION_CREDENTIALS naming a key file)",
            )));
        };
        let http_method = match method {
            PresignMethod::Get => "GET",
            PresignMethod::Put => "PUT",
            _ => return Err(ctx(Error::unsupported("this presign method"))),
        };
        let content_type = match method {
            PresignMethod::Put => options.content_type.clone(),
            _ => None,
        };
        let at = SystemTime::now();
        let request = SignedUrlRequest {
            method: http_method,
            endpoint: &self.inner.client.base_url,
            bucket: &self.inner.config.bucket,
            object: key.as_str(),
            expires_in,
            content_type: content_type.as_deref(),
            at,
        };
        let url = signed_url(signing, &request).map_err(&ctx)?;
        let url = storage_core::Url::parse(&url).map_err(|err| {
            ctx(Error::new(
                ErrorKind::Other,
                format!("the signed URL does not parse: {err}"),
            ))
        })?;
        let mut presigned = PresignedRequest::new(method, url, at + expires_in);
        if let Some(content_type) = content_type {
            presigned = presigned.with_header("content-type", content_type);
        }
        Ok(presigned)
    }

    /// Reads the bucket's resource: a cheap, real request that proves the
    /// endpoint, the credentials and the bucket.
    async fn health(&self) -> Result<()> {
        let client = self.client();
        let request = client
            .request(Method::GET, &client.bucket_url())
            .query(&[("fields", "name")]);
        let bucket = &self.inner.config.bucket;
        client
            .send(request)
            .await
            .map(drop)
            .map_err(|err| match err.kind() {
                ErrorKind::NotFound => Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the bucket {bucket:?} does not exist, or these credentials cannot see it"
                    ),
                ),
                _ => err,
            })
            .map_err(|err| err.context(Operation::Head, &self.inner.config.name, None))
    }
}
