//! [`S3Storage`]: the contract over one S3 bucket.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::{HeaderName, HeaderValue, Method, SignedUrlOptions, Signer};
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMode, PutMultipartOptions, PutPayload, RetryConfig, UpdateVersion, WriteMultipart,
};
use storage_core::{
    Body, ByteRange, ByteStream, Capabilities, Error, ErrorKind, GetOptions, GetResult, Key,
    ListEntry, ListOptions, ListStream, ObjectMeta, Operation, Prefix, PresignMethod,
    PresignOptions, PresignedRequest, PutOptions, PutResult, Result, Storage, WriteMode,
    async_trait, prefix_then_parts,
};

use crate::config::{MAX_PRESIGN_EXPIRY, S3Config};
use crate::error::from_object_store;

/// One S3 bucket (AWS, or any S3-compatible store), built on
/// `object_store`'s `AmazonS3` for signing, retries and multipart uploads.
///
/// - Small bodies are one PUT; streams longer than `part_size` are
///   multipart uploads with `upload_concurrency` parts in flight, aborted
///   if the put fails or is dropped, so no incomplete upload is left.
/// - Gets serving more than `download_chunk_size` (whole or ranged)
///   are parallel ranged GETs pinned to the first answer's etag,
///   requested while the first answer's first chunk streams, and yielded
///   in order; a part cut short is asked for again from its first missing
///   byte.
/// - `delete` asks HEAD first, because S3 answers 204 whether or not the
///   key existed and the contract reports whether something was removed.
/// - Conditional writes are single requests (`If-None-Match: *`,
///   `If-Match`); a conditional put of a stream longer than `part_size` is
///   refused with `Unsupported`, since S3 multipart completion cannot be
///   made conditional through object_store.
#[derive(Debug, Clone)]
pub struct S3Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: S3Config,
    store: AmazonS3,
}

/// The region: configured, else `AWS_REGION`, else `AWS_DEFAULT_REGION`,
/// else `us-east-1`.
fn resolve_region(config: &S3Config) -> String {
    config
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned())
}

/// Chunks at least this long join a part by reference, not copied: the
/// part's request body then sends the caller's own buffers. Shorter ones
/// are copied together, so that a stream of small chunks still makes
/// parts of a few large buffers rather than thousands of tiny ones.
const SHARED_CHUNK: usize = 64 * 1024;

/// Appends `chunk` to the multipart upload's current part.
fn append(writer: &mut WriteMultipart, chunk: Bytes) {
    if chunk.len() >= SHARED_CHUNK {
        writer.put(chunk);
    } else {
        writer.write(&chunk);
    }
}

fn secret_text(secret: &Option<storage_core::Secret>) -> Option<&str> {
    secret
        .as_ref()
        .map(|s| s.expose())
        .filter(|s| !s.is_empty())
}

impl S3Storage {
    /// Builds the client (no I/O); fails with `InvalidConfig` on a bad
    /// setting, naming it.
    pub fn new(config: S3Config) -> Result<Self> {
        let invalid = |message: String| {
            Error::new(ErrorKind::InvalidConfig, message).context(
                Operation::Open,
                &config.name,
                None,
            )
        };
        config.validate().map_err(invalid)?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_allow_http(config.allow_http)
            // Set either way, so that `AWS_UNSIGNED_PAYLOAD` in the
            // environment cannot turn body signing off behind the config.
            .with_unsigned_payload(config.unsigned_payload)
            .with_retry(RetryConfig {
                max_retries: config.max_retries,
                retry_timeout: Duration::from_secs(config.request_timeout_secs),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(config.allow_http)
                    .with_timeout(Duration::from_secs(config.request_timeout_secs))
                    .with_connect_timeout(Duration::from_secs(config.connect_timeout_secs)),
            );
        builder = builder.with_region(resolve_region(&config));
        if let Some(endpoint) = config.endpoint.as_deref().filter(|e| !e.is_empty()) {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(id) = secret_text(&config.access_key_id) {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = secret_text(&config.secret_access_key) {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = secret_text(&config.session_token) {
            builder = builder.with_token(token);
        }
        if let Some(key_id) = config.sse_kms_key_id.as_deref().filter(|k| !k.is_empty()) {
            builder = builder.with_sse_kms_encryption(key_id);
        }
        let store = builder.build().map_err(|err| {
            // object_store's builder errors name the setting, not its value.
            invalid(format!("cannot configure the S3 client: {err}"))
        })?;
        Ok(Self {
            inner: Arc::new(Inner { config, store }),
        })
    }

    /// The configuration (secrets print as `***`).
    pub fn config(&self) -> &S3Config {
        &self.inner.config
    }

    /// Creates the bucket if it does not exist; `Ok(true)` if it was
    /// created, `Ok(false)` if it was already yours. object_store has no
    /// bucket API, so this sends a CreateBucket request signed the same way
    /// (a SigV4 presigned PUT of the bucket's root), with the region's
    /// location constraint outside `us-east-1`.
    pub async fn create_bucket(&self) -> Result<bool> {
        let fail = |err: Error| err.context(Operation::Open, &self.inner.config.name, None);
        let url = self
            .inner
            .store
            .signed_url(Method::PUT, &Path::from(""), Duration::from_secs(300))
            .await
            .map_err(|err| fail(from_object_store(err)))?;
        let region = resolve_region(&self.inner.config);
        let body = if region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(self.inner.config.request_timeout_secs))
            .build()
            .map_err(|err| {
                fail(Error::new(ErrorKind::Other, "cannot build an HTTP client").with_source(err))
            })?;
        let response = client
            .put(url.as_str())
            .header("content-length", body.len().to_string())
            .body(body)
            .send()
            .await
            .map_err(|err| {
                fail(
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("cannot create the bucket: {err}"),
                    )
                    .with_source(err),
                )
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let code = crate::error::error_code(&text);
        match (status, code.as_deref()) {
            (200..=299, _) => Ok(true),
            (409, Some("BucketAlreadyOwnedByYou")) => Ok(false),
            // Some servers answer this for the owner's own bucket too: it is
            // ours if we can list it.
            (409, Some("BucketAlreadyExists")) => {
                let mut listing = self.list(&storage_core::Prefix::all(), ListOptions::default());
                match listing.try_next().await {
                    Ok(_) => Ok(false),
                    Err(err) => Err(fail(
                        Error::new(
                            ErrorKind::AlreadyExists,
                            format!(
                                "the bucket {:?} exists and is not accessible with these credentials",
                                self.inner.config.bucket
                            ),
                        )
                        .with_source(err),
                    )),
                }
            }
            (_, code) => {
                let (kind, retryable) = crate::error::from_status(status, code);
                Err(fail(
                    Error::new(
                        kind,
                        format!(
                            "cannot create the bucket {:?}: {status} {}",
                            self.inner.config.bucket,
                            code.unwrap_or("")
                        ),
                    )
                    .with_retryable(retryable),
                ))
            }
        }
    }

    fn ctx(&self, operation: Operation, key: &str) -> impl Fn(Error) -> Error + '_ {
        let key = key.to_owned();
        move |err| err.context(operation, &self.inner.config.name, Some(&key))
    }

    /// Deletes many keys with batched DeleteObjects requests (up to 1,000
    /// keys each). Missing keys are not errors. Returns one result per key,
    /// in order.
    pub async fn delete_many(&self, keys: &[Key]) -> Vec<Result<()>> {
        let locations: Vec<object_store::Result<Path>> = keys.iter().map(|k| Ok(path(k))).collect();
        let results: Vec<object_store::Result<Path>> = self
            .inner
            .store
            .delete_stream(stream::iter(locations).boxed())
            .collect()
            .await;
        results
            .into_iter()
            .zip(keys)
            .map(|(result, key)| match result {
                Ok(_) => Ok(()),
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(self.ctx(Operation::Delete, key)(from_object_store(err))),
            })
            .collect()
    }

    fn attributes(&self, options: &PutOptions) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(content_type) = &options.content_type {
            attributes.insert(Attribute::ContentType, content_type.clone().into());
        }
        if let Some(cache_control) = &options.cache_control {
            attributes.insert(Attribute::CacheControl, cache_control.clone().into());
        }
        if let Some(class) = self
            .inner
            .config
            .storage_class
            .as_deref()
            .filter(|c| !c.is_empty())
        {
            attributes.insert(Attribute::StorageClass, class.to_owned().into());
        }
        for (name, value) in &options.user_metadata {
            attributes.insert(
                Attribute::Metadata(name.clone().into()),
                value.clone().into(),
            );
        }
        attributes
    }

    async fn put_multipart(
        &self,
        location: &Path,
        attributes: Attributes,
        first: Vec<Bytes>,
        mut rest: ByteStream,
    ) -> Result<PutResult> {
        let config = &self.inner.config;
        let options = PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let upload = self
            .inner
            .store
            .put_multipart_opts(location, options)
            .await
            .map_err(from_object_store)?;
        let mut writer = AbortOnDrop(Some(WriteMultipart::new_with_chunk_size(
            upload,
            config.part_size.0 as usize,
        )));
        let mut size = 0u64;
        let outcome: Result<()> = async {
            for chunk in first {
                size += chunk.len() as u64;
                append(writer.get()?, chunk);
            }
            while let Some(chunk) = rest.try_next().await? {
                let part_writer = writer.get()?;
                part_writer
                    .wait_for_capacity(config.upload_concurrency)
                    .await
                    .map_err(from_object_store)?;
                size += chunk.len() as u64;
                append(part_writer, chunk);
            }
            Ok(())
        }
        .await;
        let upload = writer.take()?;
        match outcome {
            Ok(()) => {
                let written = upload.finish().await.map_err(from_object_store)?;
                Ok(to_put_result(size, written))
            }
            Err(err) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "could not abort a failed multipart upload");
                }
                Err(err)
            }
        }
    }

    /// A get, whole or ranged. What it serves (the object, or the range
    /// asked for) is one GET when it is a chunk or less, exactly as
    /// object_store alone would do it. Anything longer is read from that
    /// answer for its first chunk only; the rest comes as ranged GETs in
    /// parallel, requested while the first chunk still streams.
    async fn get_in_parts(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let location = path(key);
        let chunk = self.inner.config.download_chunk_size.0;
        let first = self
            .inner
            .store
            .get_opts(&location, to_object_store_get(&options))
            .await
            .map_err(from_object_store)?;
        let meta = to_meta(key.clone(), &first.meta, &first.attributes);
        let served = first.range.clone();
        let len = served.end - served.start;
        let first_body = first.into_stream().map_err(from_object_store).boxed();
        if len <= chunk {
            return Ok(GetResult {
                meta,
                range: served,
                body: first_body,
            });
        }
        let etag = meta.etag.clone();
        let store = self.inner.store.clone();
        let offset = served.start;
        let rest = move |part: Range<u64>| {
            let store = store.clone();
            let location = location.clone();
            let mut ranged = object_store::GetOptions {
                range: Some(GetRange::Bounded(offset + part.start..offset + part.end)),
                ..Default::default()
            };
            // Pin every range to the version the first answer described.
            ranged.if_match = etag.clone();
            async move {
                let part = store
                    .get_opts(&location, ranged)
                    .await
                    .map_err(from_object_store)?;
                // The chunks as they arrive: `bytes()` would copy them
                // into one buffer of the part's size.
                Ok(part.into_stream().map_err(from_object_store).boxed())
            }
        };
        Ok(GetResult {
            meta,
            range: served,
            body: prefix_then_parts(
                first_body,
                chunk,
                len,
                rest,
                self.inner.config.download_concurrency,
            ),
        })
    }
}

/// Aborts a multipart upload that is dropped before it finished (a failed
/// or cancelled put), so no incomplete upload is left on the server.
struct AbortOnDrop(Option<WriteMultipart>);

impl AbortOnDrop {
    fn get(&mut self) -> Result<&mut WriteMultipart> {
        self.0
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Other, "the multipart upload already ended"))
    }

    fn take(&mut self) -> Result<WriteMultipart> {
        self.0
            .take()
            .ok_or_else(|| Error::new(ErrorKind::Other, "the multipart upload already ended"))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(err) = upload.abort().await {
                    tracing::warn!(error = %err, "could not abort a cancelled multipart upload");
                }
            });
        }
    }
}

fn path(key: &Key) -> Path {
    // Keys are validated (no empty, `.` or `..` segment, no control
    // characters), which is what Path::parse requires; from_iter keeps
    // the raw text too, so this cannot fail on a Key.
    Path::parse(key.as_str()).unwrap_or_else(|_| Path::from_iter(key.segments()))
}

fn to_object_store_get(options: &GetOptions) -> object_store::GetOptions {
    object_store::GetOptions {
        if_match: options.if_match.clone(),
        if_none_match: options.if_none_match.clone(),
        range: options.range.map(|range| match range {
            ByteRange::Bounded { start, end } => GetRange::Bounded(start..end),
            ByteRange::From(start) => GetRange::Offset(start),
            ByteRange::Suffix(n) => GetRange::Suffix(n),
        }),
        ..Default::default()
    }
}

fn to_meta(key: Key, meta: &object_store::ObjectMeta, attributes: &Attributes) -> ObjectMeta {
    let mut out = ObjectMeta::new(key, meta.size);
    out.etag = meta.e_tag.clone();
    out.version = meta.version.clone();
    out.last_modified = Some(SystemTime::from(meta.last_modified));
    for (attribute, value) in attributes {
        let value: &AttributeValue = value;
        let text = value.as_ref().to_owned();
        match attribute {
            Attribute::ContentType => out.content_type = Some(text),
            Attribute::CacheControl => out.cache_control = Some(text),
            Attribute::Metadata(name) => {
                out.user_metadata.insert(name.to_string(), text);
            }
            _ => {}
        }
    }
    out
}

fn to_put_result(size: u64, written: object_store::PutResult) -> PutResult {
    let mut result = PutResult::new(size, written.e_tag);
    result.version = written.version;
    result
}

fn to_entry(meta: &object_store::ObjectMeta) -> Result<ListEntry> {
    let key = Key::new(meta.location.as_ref()).map_err(|err| {
        Error::new(
            ErrorKind::Other,
            format!("the bucket holds a key this library cannot address: {err}"),
        )
    })?;
    Ok(ListEntry::Object(to_meta(key, meta, &Attributes::new())))
}

#[async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Put, key);
        let location = path(key);
        let attributes = self.attributes(&options);
        let mode = match &options.mode {
            WriteMode::Overwrite => PutMode::Overwrite,
            WriteMode::CreateNew => PutMode::Create,
            WriteMode::UpdateIfMatch(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag.clone()),
                version: None,
            }),
            _ => return Err(ctx(Error::unsupported("this write mode"))),
        };
        // Read up to one part: a body that ends by then is one PUT.
        let part_size = self.inner.config.part_size.0;
        let (chunks, rest) = match body {
            Body::Bytes(bytes) => (vec![bytes], None),
            body => {
                let mut stream = body.into_stream();
                let mut chunks = Vec::new();
                let mut buffered = 0u64;
                let mut ended = false;
                while buffered <= part_size {
                    match stream.try_next().await.map_err(&ctx)? {
                        Some(chunk) => {
                            buffered += chunk.len() as u64;
                            chunks.push(chunk);
                        }
                        None => {
                            ended = true;
                            break;
                        }
                    }
                }
                (chunks, (!ended).then_some(stream))
            }
        };
        let size: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let Some(rest) = rest else {
            let payload: PutPayload = chunks.into_iter().collect();
            let put_options = object_store::PutOptions {
                mode,
                attributes,
                ..Default::default()
            };
            let written = self
                .inner
                .store
                .put_opts(&location, payload, put_options)
                .await
                .map_err(|err| ctx(from_object_store(err)))?;
            return Ok(to_put_result(size, written));
        };
        if options.mode != WriteMode::Overwrite {
            return Err(ctx(Error::unsupported(format!(
                "conditional writes are single requests; this body is longer than part_size ({} bytes)",
                part_size
            ))));
        }
        self.put_multipart(&location, attributes, chunks, rest)
            .await
            .map_err(ctx)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let ctx = self.ctx(Operation::Get, key);
        if let Some(ByteRange::Bounded { start, end }) = options.range
            && start >= end
        {
            return Err(ctx(Error::new(
                ErrorKind::InvalidInput,
                format!("the range {start}..{end} is empty"),
            )));
        }
        if options.range == Some(ByteRange::Suffix(0)) {
            return Err(ctx(Error::new(
                ErrorKind::InvalidInput,
                "a suffix range of 0 bytes is empty",
            )));
        }
        let result = self.get_in_parts(key, options).await.map_err(&ctx)?;
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
        let options = object_store::GetOptions {
            head: true,
            ..Default::default()
        };
        let result = self
            .inner
            .store
            .get_opts(&path(key), options)
            .await
            .map_err(|err| ctx(from_object_store(err)))?;
        Ok(to_meta(key.clone(), &result.meta, &result.attributes))
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let ctx = self.ctx(Operation::Delete, key);
        if !self.exists(key).await.map_err(&ctx)? {
            return Ok(false);
        }
        match self.inner.store.delete(&path(key)).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(ctx(from_object_store(err))),
        }
    }

    fn list(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        let this = self.clone();
        let prefix_text = prefix.as_str().to_owned();
        let name = self.inner.config.name.clone();
        let context_prefix = prefix_text.clone();
        let stream = stream::once(async move { this.list_entries(prefix_text, options).await })
            .map_ok(|entries| entries)
            .try_flatten();
        Box::pin(
            stream.map_err(move |err| err.context(Operation::List, &name, Some(&context_prefix))),
        )
    }

    async fn copy(&self, from: &Key, to: &Key) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Copy, from);
        if from != to {
            self.inner
                .store
                .copy(&path(from), &path(to))
                .await
                .map_err(|err| ctx(from_object_store(err)))?;
        }
        let meta = self.head(to).await.map_err(&ctx)?;
        let mut result = PutResult::new(meta.size, meta.etag);
        result.version = meta.version;
        Ok(result)
    }

    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let ctx = self.ctx(Operation::Rename, from);
        if from == to {
            return self.head(from).await.map(drop).map_err(ctx);
        }
        self.inner
            .store
            .rename(&path(from), &path(to))
            .await
            .map_err(|err| ctx(from_object_store(err)))
    }

    async fn presign(
        &self,
        method: PresignMethod,
        key: &Key,
        expires_in: Duration,
        options: PresignOptions,
    ) -> Result<PresignedRequest> {
        let ctx = self.ctx(Operation::Presign, key);
        if expires_in.is_zero() || expires_in > MAX_PRESIGN_EXPIRY {
            return Err(ctx(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "S3 presigned URLs live between 1 second and 7 days; {} seconds were asked",
                    expires_in.as_secs()
                ),
            )));
        }
        let http_method = match method {
            PresignMethod::Get => Method::GET,
            PresignMethod::Put => Method::PUT,
            _ => return Err(ctx(Error::unsupported("this presign method"))),
        };
        let mut signed_options = SignedUrlOptions::new();
        let content_type = match method {
            PresignMethod::Put => options.content_type.clone(),
            _ => None,
        };
        if let Some(content_type) = &content_type {
            let value = HeaderValue::from_str(content_type).map_err(|_| {
                ctx(Error::new(
                    ErrorKind::InvalidInput,
                    "the content type is not a valid header value",
                ))
            })?;
            signed_options =
                signed_options.with_signed_header(HeaderName::from_static("content-type"), value);
        }
        let url = self
            .inner
            .store
            .signed_url_opts(http_method, &path(key), expires_in, &signed_options)
            .await
            .map_err(|err| ctx(from_object_store(err)))?;
        let url = storage_core::Url::parse(url.as_str()).map_err(|err| {
            ctx(Error::new(
                ErrorKind::Other,
                format!("the signed URL does not parse: {err}"),
            ))
        })?;
        let mut request = PresignedRequest::new(method, url, SystemTime::now() + expires_in);
        if let Some(content_type) = content_type {
            request = request.with_header("content-type", content_type);
        }
        Ok(request)
    }
}

impl S3Storage {
    /// The listing as a stream, following the contract's byte-prefix
    /// semantics on top of object_store's folder prefixes: the folder part
    /// of the prefix is listed, the rest filters (and, being sorted, stops)
    /// the results.
    async fn list_entries(&self, prefix: String, options: ListOptions) -> Result<ListStream> {
        let (folder, partial) = match prefix.rfind('/') {
            Some(slash) => (prefix[..slash].to_owned(), prefix[slash + 1..].to_owned()),
            None => (String::new(), prefix.clone()),
        };
        let folder_path = (!folder.is_empty()).then(|| Path::from_iter(folder.split('/')));
        let start_after = options.start_after.clone().map(Key::into_string);
        let keep_after = {
            let start_after = start_after.clone();
            move |name: &str| start_after.as_deref().is_none_or(|after| name > after)
        };
        if options.delimiter {
            let listed = self
                .inner
                .store
                .list_with_delimiter(folder_path.as_ref())
                .await
                .map_err(from_object_store)?;
            let mut entries: Vec<ListEntry> = listed
                .common_prefixes
                .iter()
                .map(|p| ListEntry::Prefix(format!("{}/", p.as_ref())))
                .collect();
            for meta in &listed.objects {
                entries.push(to_entry(meta)?);
            }
            entries.retain(|e| e.name().starts_with(&prefix) && keep_after(e.name()));
            entries.sort_by(|a, b| a.name().cmp(b.name()));
            return Ok(Box::pin(stream::iter(entries.into_iter().map(Ok))));
        }
        // Start listing just before the prefix: at start_after when that is
        // later, else at the prefix without its last character (every key
        // that starts with the prefix is greater). Keys below the prefix are
        // skipped, and the sorted listing stops at the first key past it.
        let below_prefix = partial
            .char_indices()
            .last()
            .map(|(at, _)| {
                format!(
                    "{}{}",
                    &prefix[..prefix.len() - partial.len()],
                    &partial[..at]
                )
            })
            .map(|text| text.trim_end_matches('/').to_owned())
            .filter(|text| !text.is_empty());
        let offset = match (start_after.clone(), below_prefix) {
            (Some(after), Some(below)) => Some(after.max(below)),
            (after, below) => after.or(below),
        };
        let listing = match offset {
            Some(offset) => self
                .inner
                .store
                .list_with_offset(folder_path.as_ref(), &Path::from_iter(offset.split('/'))),
            None => self.inner.store.list(folder_path.as_ref()),
        };
        let below = prefix.clone();
        let within = prefix.clone();
        let objects = listing
            .map_err(from_object_store)
            .and_then(|meta| std::future::ready(to_entry(&meta)))
            .try_skip_while(move |entry| std::future::ready(Ok(entry.name() < below.as_str())))
            .try_take_while(move |entry| std::future::ready(Ok(entry.name().starts_with(&within))))
            .try_filter(move |entry| std::future::ready(keep_after(entry.name())));
        Ok(Box::pin(objects))
    }
}
