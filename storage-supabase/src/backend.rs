//! [`SupabaseStorage`]: the contract over one Supabase Storage bucket.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::header::{
    CACHE_CONTROL, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use reqwest::{Method, Response, StatusCode};
use storage_core::{
    Body, ByteRange, ByteStream, Capabilities, ChunkReader, Error, ErrorKind, GetOptions,
    GetResult, Key, ListOptions, ListStream, ObjectMeta, Operation, Prefix, PresignMethod,
    PresignOptions, PresignedRequest, PutOptions, PutResult, Result, Storage, WriteMode,
    async_trait, prefix_then_parts,
};

use crate::client::{Client, check, error_of, header};
use crate::config::SupabaseConfig;
use crate::error::from_transport;
use crate::names;
use crate::resource::{ListPage, ObjectInfo, SignedUpload, parse_time};
use crate::tus::TusUpload;
use crate::upload::{NewObject, upload};

/// One Supabase Storage bucket, on the storage REST API.
///
/// - Keys are stored under an order-preserving escape encoding (see the
///   crate docs), so every contract key works and lists back in byte
///   order, though Supabase refuses most punctuation and all non-ASCII.
/// - A body that ends within `chunk_size` is one upload request; a longer
///   one is a TUS resumable upload that survives a dropped connection.
/// - Create-only is the server's own `x-upsert: false` (atomic);
///   replace-if-match has no API and is declared unsupported.
/// - A get reads the bytes and the object's info together and checks they
///   agree (the download carries no user metadata). What it serves
///   beyond `download_chunk_size` continues as parallel ranged downloads
///   of the same etag.
#[derive(Debug, Clone)]
pub struct SupabaseStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SupabaseConfig,
    client: Client,
}

impl SupabaseStorage {
    /// Builds the client (no I/O); fails with `InvalidConfig` naming the
    /// bad setting.
    pub fn new(config: SupabaseConfig) -> Result<Self> {
        let invalid = |message: String| {
            Error::new(ErrorKind::InvalidConfig, message).context(
                Operation::Open,
                &config.name,
                None,
            )
        };
        config.validate().map_err(invalid)?;
        let client = Client::new(&config).map_err(invalid)?;
        Ok(Self {
            inner: Arc::new(Inner { config, client }),
        })
    }

    /// The configuration (the key prints as `***`).
    pub fn config(&self) -> &SupabaseConfig {
        &self.inner.config
    }

    fn client(&self) -> &Client {
        &self.inner.client
    }

    fn ctx(&self, operation: Operation, key: &str) -> impl Fn(Error) -> Error + '_ {
        let key = key.to_owned();
        move |err| err.context(operation, &self.inner.config.name, Some(&key))
    }

    /// Creates the bucket with the configured `public`, `file_size_limit`
    /// and `allowed_mime_types` if it does not exist; `Ok(true)` if it was
    /// created, `Ok(false)` if it was there (its settings are left alone).
    pub async fn create_bucket(&self) -> Result<bool> {
        let config = &self.inner.config;
        let fail = |err: Error| err.context(Operation::Open, &config.name, None);
        let mut body = serde_json::json!({
            "id": config.bucket,
            "name": config.bucket,
            "public": config.public,
        });
        if let Some(limit) = config.file_size_limit {
            body["file_size_limit"] = limit.0.into();
        }
        if !config.allowed_mime_types.is_empty() {
            body["allowed_mime_types"] = config.allowed_mime_types.clone().into();
        }
        let client = self.client();
        let request = client
            .request(Method::POST, &client.url("bucket"))
            .json(&body);
        match client.send(request).await {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(fail(err)),
        }
    }

    /// Deletes many keys, `delete_batch` per request. Missing keys are not
    /// errors. Returns one result per key, in order.
    pub async fn delete_many(&self, keys: &[Key]) -> Vec<Result<()>> {
        let mut results = Vec::with_capacity(keys.len());
        for batch in keys.chunks(self.inner.config.delete_batch) {
            let prefixes: Vec<String> = batch.iter().map(|k| names::encode(k.as_str())).collect();
            let client = self.client();
            let request = client
                .request(
                    Method::DELETE,
                    &client.url(&format!("object/{}", client.bucket)),
                )
                .json(&serde_json::json!({ "prefixes": prefixes }));
            match client.send(request).await {
                Ok(_) => results.extend(batch.iter().map(|_| Ok(()))),
                Err(err) => results.extend(batch.iter().map(|key| {
                    let each =
                        Error::new(err.kind(), err.message()).with_retryable(err.is_retryable());
                    Err(self.ctx(Operation::Delete, key.as_str())(each))
                })),
            }
        }
        results
    }

    /// The public URL of an object in a public bucket (no key, no expiry).
    pub fn public_url(&self, key: &Key) -> Result<storage_core::Url> {
        let url = self
            .client()
            .object_url("public", &names::encode(key.as_str()));
        storage_core::Url::parse(&url).map_err(|err| {
            Error::new(
                ErrorKind::Other,
                format!("the public URL does not parse: {err}"),
            )
        })
    }

    async fn info(&self, key: &Key) -> Result<ObjectInfo> {
        let client = self.client();
        let url = client.object_url("info", &names::encode(key.as_str()));
        client.send_json(client.request(Method::GET, &url)).await
    }

    async fn write(&self, key: &Key, body: Body, options: &PutOptions, upsert: bool) -> Result<()> {
        let name = names::encode(key.as_str());
        let object = NewObject {
            name: &name,
            content_type: options.content_type.as_deref(),
            cache_control: options.cache_control.as_deref(),
            metadata: &options.user_metadata,
        };
        let client = self.client();
        let chunk_size = self.inner.config.chunk_size.0 as usize;
        if let Body::Bytes(bytes) = &body
            && bytes.len() <= chunk_size
        {
            return upload(client, &object, bytes.clone(), upsert).await;
        }
        let declared = body.size_hint();
        let mut chunks = ChunkReader::new(body.into_stream());
        let first = chunks.next_chunk(chunk_size).await?;
        let mut next = if first.len() < chunk_size {
            bytes::Bytes::new()
        } else {
            chunks.next_chunk(chunk_size).await?
        };
        if next.is_empty() {
            return upload(client, &object, first, upsert).await;
        }
        let mut tus = TusUpload::create(
            client,
            &object,
            upsert,
            declared,
            self.inner.config.resume_attempts,
        )
        .await?;
        let mut current = first;
        let outcome: Result<()> = async {
            loop {
                if next.is_empty() {
                    return tus.send_chunk(current, true).await;
                }
                let (sent, after) = futures::join!(
                    tus.send_chunk(current, false),
                    chunks.next_chunk(chunk_size)
                );
                sent?;
                current = next;
                next = after?;
            }
        }
        .await;
        if outcome.is_err() {
            tus.cancel().await;
        }
        outcome
    }

    /// The download and the info of `key`, which must describe the same
    /// version; asked together, and once more if a writer came between.
    async fn download(&self, key: &Key, options: &GetOptions) -> Result<(Response, ObjectMeta)> {
        let name = names::encode(key.as_str());
        for _ in 0..2 {
            let client = self.client();
            let mut request =
                client.request(Method::GET, &client.object_url("authenticated", &name));
            if let Some(range) = options.range {
                request = request.header(RANGE, range.to_http_header());
            }
            if let Some(etag) = &options.if_none_match {
                request = request.header(IF_NONE_MATCH, etag.as_str());
            }
            let (response, info) = futures::join!(client.send_raw(request), self.info(key));
            let response = response?;
            if response.status() == StatusCode::BAD_REQUEST
                || response.status() == StatusCode::NOT_FOUND
            {
                return Err(error_of(response).await);
            }
            let response = check(response).await?;
            let info = info?;
            let served = header(response.headers(), ETAG.as_str());
            if served.is_some() && served != info.etag.as_deref() {
                continue;
            }
            let mut meta = info.to_meta(key.clone());
            // The download's own headers describe the bytes served.
            let headers = response.headers();
            if let Some(content_type) = header(headers, CONTENT_TYPE.as_str()) {
                meta.content_type = Some(content_type.to_owned());
            }
            if let Some(cache_control) = header(headers, CACHE_CONTROL.as_str()) {
                meta.cache_control = Some(cache_control.to_owned());
            }
            if let Some(modified) = header(headers, LAST_MODIFIED.as_str()).and_then(parse_time) {
                meta.last_modified = Some(modified);
            }
            return Ok((response, meta));
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the object changed twice while it was being read",
        )
        .with_retryable(true))
    }

    /// The body of a download that serves `served` of the object: `first`
    /// itself up to a chunk; beyond, its first chunk, then ranged
    /// downloads in parallel, offset into the object, each of which must
    /// carry `etag` (the version the first answer described).
    fn rest_in_parts(
        &self,
        key: &Key,
        first: ByteStream,
        served: Range<u64>,
        etag: Option<String>,
    ) -> ByteStream {
        let chunk = self.inner.config.download_chunk_size.0;
        let len = served.end - served.start;
        if len <= chunk {
            return first;
        }
        let inner = Arc::clone(&self.inner);
        let name = names::encode(key.as_str());
        let offset = served.start;
        let rest = move |part: Range<u64>| {
            let inner = Arc::clone(&inner);
            let name = name.clone();
            let etag = etag.clone();
            async move {
                let client = &inner.client;
                let range = ByteRange::bounded(offset + part.start..offset + part.end);
                let request = client
                    .request(Method::GET, &client.object_url("authenticated", &name))
                    .header(RANGE, range.to_http_header());
                let response = client.send(request).await?;
                let answered = header(response.headers(), ETAG.as_str());
                if etag.is_some() && answered.is_some() && answered != etag.as_deref() {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        "the object was replaced while it was being read",
                    ));
                }
                if response.status() != StatusCode::PARTIAL_CONTENT {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "Supabase answered a ranged download with {}, not 206",
                            response.status()
                        ),
                    ));
                }
                Ok(response.bytes_stream().map_err(from_transport).boxed())
            }
        };
        prefix_then_parts(
            first,
            chunk,
            len,
            rest,
            self.inner.config.download_concurrency,
        )
    }

    /// The listing, page by page. The server is asked for the folder part
    /// of the prefix; the rest of it, and `start_after`, filter here.
    fn list_pages(&self, prefix: &Prefix, options: ListOptions) -> ListStream {
        struct State {
            this: SupabaseStorage,
            prefix: String,
            folder: String,
            delimiter: bool,
            start_after: Option<String>,
            cursor: Option<String>,
            done: bool,
        }
        let prefix_text = prefix.as_str().to_owned();
        let folder = match prefix_text.rfind('/') {
            Some(slash) => prefix_text[..=slash].to_owned(),
            None => String::new(),
        };
        let state = State {
            this: self.clone(),
            prefix: prefix_text,
            folder,
            delimiter: options.delimiter,
            start_after: options.start_after.map(Key::into_string),
            cursor: None,
            done: false,
        };
        let pages = stream::try_unfold(state, |mut state| async move {
            if state.done {
                return Ok::<_, Error>(None);
            }
            let client = state.this.client();
            let mut body = serde_json::json!({
                "prefix": names::encode(&state.folder),
                "limit": 1000,
                "with_delimiter": state.delimiter,
                "sortBy": { "column": "name", "order": "asc" },
            });
            if let Some(cursor) = &state.cursor {
                body["cursor"] = cursor.clone().into();
            }
            let url = client.url(&format!("object/list-v2/{}", client.bucket));
            let page: ListPage = client
                .send_json(client.request(Method::POST, &url).json(&body))
                .await?;
            let mut entries = Vec::with_capacity(page.folders.len() + page.objects.len());
            for folder in &page.folders {
                entries.push(folder.to_prefix()?);
            }
            for object in &page.objects {
                entries.push(object.to_object()?);
            }
            entries.sort_by(|a, b| a.name().cmp(b.name()));
            entries.retain(|e| {
                e.name().starts_with(&state.prefix)
                    && state
                        .start_after
                        .as_deref()
                        .is_none_or(|after| e.name() > after)
            });
            state.cursor = page.next_cursor.filter(|c| !c.is_empty());
            state.done = !page.has_next || state.cursor.is_none();
            Ok(Some((stream::iter(entries.into_iter().map(Ok)), state)))
        });
        Box::pin(pages.try_flatten())
    }
}

/// The expiry a signed-URL token states (its `exp` claim), read without
/// verifying: the server verifies it when the URL is used.
fn token_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = json.get("exp")?.as_u64()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(exp))
}

#[async_trait]
impl Storage for SupabaseStorage {
    fn name(&self) -> &str {
        &self.inner.config.name
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::all();
        // No API replaces an object only if it still has a given etag.
        capabilities.update_if_match = false;
        // Signed upload URLs: the server fixes their lifetime
        // (UPLOAD_SIGNED_URL_EXPIRATION_TIME) and signs no headers.
        capabilities.presign_put_chosen_expiry = false;
        capabilities.presign_put_content_type = false;
        capabilities
    }

    async fn put(&self, key: &Key, body: Body, options: PutOptions) -> Result<PutResult> {
        let ctx = self.ctx(Operation::Put, key);
        let upsert = match &options.mode {
            WriteMode::Overwrite => true,
            WriteMode::CreateNew => false,
            _ => {
                return Err(ctx(Error::unsupported(
                    "conditional replace: Supabase Storage cannot replace an object only if its etag matches",
                )));
            }
        };
        self.write(key, body, &options, upsert)
            .await
            .map_err(&ctx)?;
        // The upload answer has no etag: the info has it.
        let meta = self.info(key).await.map_err(&ctx)?.to_meta(key.clone());
        let mut result = PutResult::new(meta.size, meta.etag);
        result.version = meta.version;
        Ok(result)
    }

    async fn get(&self, key: &Key, options: GetOptions) -> Result<GetResult> {
        let ctx = self.ctx(Operation::Get, key);
        if let Some(range) = options.range {
            range.resolve(u64::MAX).map_err(&ctx)?;
        }
        let (response, meta) = self.download(key, &options).await.map_err(&ctx)?;
        options
            .check_conditions(meta.etag.as_deref())
            .map_err(&ctx)?;
        let range = match (
            response.status(),
            header(response.headers(), CONTENT_RANGE.as_str()),
        ) {
            (StatusCode::PARTIAL_CONTENT, Some(content_range)) => {
                parse_content_range(content_range).ok_or_else(|| {
                    ctx(Error::new(
                        ErrorKind::Other,
                        format!("Supabase sent an unreadable Content-Range: {content_range:?}"),
                    ))
                })?
            }
            _ => 0..meta.size,
        };
        let first = response.bytes_stream().map_err(from_transport).boxed();
        let body = self.rest_in_parts(key, first, range.clone(), meta.etag.clone());
        let name = self.inner.config.name.clone();
        let key_text = key.as_str().to_owned();
        let body = body
            .map_err(move |err| err.context(Operation::Get, &name, Some(&key_text)))
            .boxed();
        Ok(GetResult { meta, range, body })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let ctx = self.ctx(Operation::Head, key);
        Ok(self.info(key).await.map_err(ctx)?.to_meta(key.clone()))
    }

    async fn delete(&self, key: &Key) -> Result<bool> {
        let ctx = self.ctx(Operation::Delete, key);
        let client = self.client();
        let url = client.object_url("", &names::encode(key.as_str()));
        match client.send(client.request(Method::DELETE, &url)).await {
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
        if from != to {
            let client = self.client();
            let request = client
                .request(Method::POST, &client.url("object/copy"))
                .header("x-upsert", "true")
                .json(&serde_json::json!({
                    "bucketId": client.bucket,
                    "sourceKey": names::encode(from.as_str()),
                    "destinationKey": names::encode(to.as_str()),
                    "copyMetadata": true,
                }));
            client.send(request).await.map_err(&ctx)?;
        }
        let meta = self.info(to).await.map_err(&ctx)?.to_meta(to.clone());
        let mut result = PutResult::new(meta.size, meta.etag);
        result.version = meta.version;
        Ok(result)
    }

    /// A server-side move; onto an existing key (which Supabase's move
    /// refuses) a copy that replaces it, then a delete of the source.
    async fn rename(&self, from: &Key, to: &Key) -> Result<()> {
        let ctx = self.ctx(Operation::Rename, from);
        if from == to {
            return self.info(from).await.map(drop).map_err(ctx);
        }
        let client = self.client();
        let request = client
            .request(Method::POST, &client.url("object/move"))
            .json(&serde_json::json!({
                "bucketId": client.bucket,
                "sourceKey": names::encode(from.as_str()),
                "destinationKey": names::encode(to.as_str()),
            }));
        match client.send(request).await {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                self.copy(from, to).await?;
                self.delete(from).await.map(drop)
            }
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
        let secs = expires_in.as_secs();
        if secs == 0 {
            return Err(ctx(Error::new(
                ErrorKind::InvalidInput,
                "a signed URL must live at least one second",
            )));
        }
        let client = self.client();
        let name = names::encode(key.as_str());
        let (path, expires_at) = match method {
            PresignMethod::Get => {
                #[derive(serde::Deserialize)]
                struct Signed {
                    #[serde(rename = "signedURL")]
                    signed_url: String,
                }
                let request = client
                    .request(Method::POST, &client.object_url("sign", &name))
                    .json(&serde_json::json!({ "expiresIn": secs }));
                let signed: Signed = client.send_json(request).await.map_err(&ctx)?;
                (signed.signed_url, SystemTime::now() + expires_in)
            }
            PresignMethod::Put => {
                let request = client
                    .request(Method::POST, &client.object_url("upload/sign", &name))
                    .header("x-upsert", "true");
                let signed: SignedUpload = client.send_json(request).await.map_err(&ctx)?;
                // The server fixes upload URLs' lifetime: state the real
                // one, read from the token it signed.
                let real = token_expiry(&signed.token).ok_or_else(|| {
                    ctx(Error::new(
                        ErrorKind::Other,
                        "Supabase signed an upload URL whose token states no expiry",
                    ))
                })?;
                (signed.url, real)
            }
            _ => return Err(ctx(Error::unsupported("this presign method"))),
        };
        let url = storage_core::Url::parse(&client.url(&path)).map_err(|err| {
            ctx(Error::new(
                ErrorKind::Other,
                format!("the signed URL does not parse: {err}"),
            ))
        })?;
        let mut request = PresignedRequest::new(method, url, expires_at);
        if method == PresignMethod::Put
            && let Some(content_type) = options.content_type
        {
            request = request.with_header("content-type", content_type);
        }
        Ok(request)
    }

    /// Reads the bucket: a cheap real request that proves the URL, the key
    /// and the bucket.
    async fn health(&self) -> Result<()> {
        let client = self.client();
        let url = client.url(&format!("bucket/{}", client.bucket));
        client
            .send(client.request(Method::GET, &url))
            .await
            .map(drop)
            .map_err(|err| err.context(Operation::Head, &self.inner.config.name, None))
    }
}

/// `bytes 0-4/14` → `0..5`.
fn parse_content_range(text: &str) -> Option<std::ops::Range<u64>> {
    let spec = text.trim().strip_prefix("bytes ")?;
    let (span, _) = spec.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some(first.trim().parse().ok()?..last.trim().parse::<u64>().ok()? + 1)
}
