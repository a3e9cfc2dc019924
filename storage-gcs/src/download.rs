//! Reads: one `alt=media` request, its metadata read from the answer's
//! headers; whole objects and ranges larger than a download chunk continue
//! as parallel ranged requests pinned to the first answer's generation and
//! yielded in order, each read whole ahead of its turn, so memory stays
//! at most about `download_concurrency` chunks.

use std::ops::Range;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use reqwest::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LAST_MODIFIED};
use reqwest::{Method, Response};
use storage_core::{
    ByteRange, ByteStream, Error, ErrorKind, GetOptions, GetResult, Key, ObjectMeta, Result,
    prefix_then_parts, take_prefix,
};

use crate::client::{Client, check, header};
use crate::error::from_transport;
use crate::resource::crc32c_from_base64;

/// How a get is split into parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split {
    pub(crate) chunk: u64,
    pub(crate) concurrency: usize,
}

/// A get: ranged or whole, conditions checked by the server (as
/// generation preconditions) and again against the generation it answers
/// with, since not every server honours them. `Ok(None)` when the answer
/// carries no `x-goog-generation` header (some emulators): then
/// [`get_via_resource`] does it in two steps.
pub(crate) async fn get(
    client: &Arc<Client>,
    key: &Key,
    options: &GetOptions,
    split: Split,
) -> Result<Option<GetResult>> {
    let response = media_request(client, key.as_str(), options, options.range).await?;
    let Some((meta, range)) = meta_from_headers(key, &response)? else {
        return Ok(None);
    };
    options.check_conditions(meta.etag.as_deref())?;
    let body = response.bytes_stream().map_err(from_transport).boxed();
    // What is served (the object, or the range asked for) beyond a chunk
    // continues as parallel ranged requests.
    let len = range.end - range.start;
    if len <= split.chunk {
        return Ok(Some(GetResult { meta, range, body }));
    }
    let generation = meta.etag.clone();
    let client = Arc::clone(client);
    let name = key.clone();
    let chunk = split.chunk;
    let offset = range.start;
    let rest = move |part: Range<u64>| {
        let client = Arc::clone(&client);
        let name = name.clone();
        let generation = generation.clone();
        async move {
            let mut pinned = GetOptions::default();
            pinned.if_match = generation;
            let part_range = ByteRange::bounded(offset + part.start..offset + part.end);
            let response = media_request(&client, name.as_str(), &pinned, Some(part_range)).await?;
            let answered = header(response.headers(), "x-goog-generation").map(str::to_owned);
            if answered.is_some() && answered != pinned.if_match {
                return Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    "the object was replaced while it was being read",
                ));
            }
            Ok(response.bytes_stream().map_err(from_transport).boxed())
        }
    };
    Ok(Some(GetResult {
        meta,
        range,
        body: prefix_then_parts(body, chunk, len, rest, split.concurrency),
    }))
}

/// `GET …/o/NAME?alt=media` with the range and generation conditions.
async fn media_request(
    client: &Client,
    name: &str,
    options: &GetOptions,
    range: Option<ByteRange>,
) -> Result<Response> {
    let mut query = vec![("alt", "media".to_owned())];
    if let Some(generation) = options.if_match.as_deref().and_then(as_generation) {
        query.push(("ifGenerationMatch", generation.to_string()));
    }
    if let Some(generation) = options.if_none_match.as_deref().and_then(as_generation) {
        query.push(("ifGenerationNotMatch", generation.to_string()));
    }
    let mut request = client
        .request(Method::GET, &client.object_url(name))
        .query(&query)
        // Bytes as stored: no transcoding, so sizes and ranges are exact.
        .header("accept-encoding", "identity");
    if let Some(range) = range {
        request = request.header("range", range.to_http_header());
    }
    let response = client.send_raw(request).await?;
    check(response).await
}

/// An etag of this backend is a generation number; anything else cannot
/// match one.
pub(crate) fn as_generation(etag: &str) -> Option<u64> {
    etag.trim_matches('"').parse().ok()
}

/// The object's metadata and the range served, from a media answer's
/// headers; `None` without `x-goog-generation`.
fn meta_from_headers(key: &Key, response: &Response) -> Result<Option<(ObjectMeta, Range<u64>)>> {
    let headers = response.headers();
    let Some(generation) = header(headers, "x-goog-generation") else {
        return Ok(None);
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let (range, size) = match header(headers, CONTENT_RANGE.as_str()) {
        // `bytes 8-10/11`
        Some(content_range) => {
            let spec = content_range.trim().strip_prefix("bytes ").unwrap_or("");
            let parsed = spec.split_once('/').and_then(|(span, total)| {
                let (first, last) = span.split_once('-')?;
                Some((number(first)?..number(last)? + 1, number(total)?))
            });
            parsed.ok_or_else(|| {
                Error::new(
                    ErrorKind::Other,
                    format!("GCS sent an unreadable Content-Range: {content_range:?}"),
                )
            })?
        }
        None => {
            let size = header(headers, "x-goog-stored-content-length")
                .or_else(|| header(headers, CONTENT_LENGTH.as_str()))
                .and_then(number)
                .ok_or_else(|| Error::new(ErrorKind::Other, "GCS sent no object size"))?;
            (0..size, size)
        }
    };
    let mut meta = ObjectMeta::new(key.clone(), size);
    meta.etag = Some(generation.to_owned());
    meta.version = Some(generation.to_owned());
    meta.content_type = header(headers, CONTENT_TYPE.as_str()).map(str::to_owned);
    meta.cache_control = header(headers, CACHE_CONTROL.as_str()).map(str::to_owned);
    meta.last_modified = header(headers, LAST_MODIFIED.as_str())
        .and_then(|text| httpdate::parse_http_date(text).ok());
    meta.checksum = header(headers, "x-goog-hash").and_then(|hashes| {
        hashes
            .split(',')
            .find_map(|part| part.trim().strip_prefix("crc32c="))
            .and_then(crc32c_from_base64)
    });
    for (name, value) in headers {
        // Header names arrive lowercased, so these names are too; head()
        // reads them from the object resource, case kept.
        if let Some(meta_name) = name.as_str().strip_prefix("x-goog-meta-")
            && let Ok(value) = value.to_str()
        {
            meta.user_metadata
                .insert(meta_name.to_owned(), value.to_owned());
        }
    }
    Ok(Some((meta, range)))
}

/// A whole-object get for servers without generation headers: the
/// resource first, then the bytes of exactly that generation.
pub(crate) async fn get_via_resource(
    client: &Arc<Client>,
    key: &Key,
    options: &GetOptions,
    meta: ObjectMeta,
) -> Result<GetResult> {
    options.check_conditions(meta.etag.as_deref())?;
    let range = match options.range {
        Some(range) => range.resolve(meta.size)?,
        None => 0..meta.size,
    };
    if range.is_empty() {
        return Ok(GetResult {
            meta,
            range,
            body: Box::pin(stream::empty()),
        });
    }
    let mut pinned = GetOptions::default();
    pinned.if_match = meta.etag.clone();
    let response = media_request(
        client,
        key.as_str(),
        &pinned,
        Some(ByteRange::bounded(range.clone())),
    )
    .await?;
    let body: ByteStream = response.bytes_stream().map_err(from_transport).boxed();
    Ok(GetResult {
        meta,
        range: range.clone(),
        body: take_prefix(body, range.end - range.start),
    })
}
