//! An axum router that serves presigned GET and PUT requests (feature
//! `server`), so a browser can download from and upload to the local
//! backend directly, as it would with S3.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body as HttpBody;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;
use storage_core::{
    Body, ByteRange, Error, ErrorKind, GetOptions, Key, Operation, PresignMethod, PutOptions,
    Result, Storage,
};

use crate::backend::LocalStorage;
use crate::presign::UrlSigner;

#[derive(Debug)]
struct Served {
    storage: LocalStorage,
    signer: UrlSigner,
}

/// A router that serves the presigned URLs of `storage` at the path of its
/// `public_url`: merge it into an application's router, or serve it alone.
///
/// Every request is verified before any I/O: a missing, altered, expired or
/// wrong-method signature, or a content type other than the signed one,
/// gets `403 Forbidden` with the reason, and nothing is read or written.
/// GET honours `Range` (206, or 416 past the end), sends `ETag`,
/// `Last-Modified`, `Content-Type` and `Cache-Control`; PUT streams the
/// body into the store (`Content-Length` is checked when given) and answers
/// `200` with the new `ETag`.
///
/// Fails with `InvalidConfig` if the store has no presigning configured.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use storage_local::{LocalConfig, LocalStorage};
///
/// let url = "http://127.0.0.1:8080/files".parse()?;
/// let store = LocalStorage::open(
///     LocalConfig::new("./storage-data").with_presign(url, "a secret of 16+ bytes"),
/// )?;
/// let app = storage_local::router(store)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app).await?;
/// # Ok(())
/// # }
/// ```
pub fn router(storage: LocalStorage) -> Result<Router> {
    let signer = storage.signer().cloned().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidConfig,
            "serving presigned URLs needs public_url and signing_secret",
        )
        .context(Operation::Open, storage.name(), None)
    })?;
    let route = format!("{}/{{*key}}", signer.base_path());
    let state = Arc::new(Served { storage, signer });
    Ok(Router::new()
        .route(
            &route,
            get(serve_get).put(serve_put).fallback(refuse_other_methods),
        )
        .with_state(state))
}

/// A presigned URL is signed for GET (and HEAD) or PUT; any other method
/// is refused like a bad signature.
async fn refuse_other_methods() -> Response {
    refuse(
        StatusCode::FORBIDDEN,
        "presigned URLs are signed for GET or PUT only",
    )
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// The one table from contract errors to HTTP answers. Messages sent to the
/// client name the problem, never paths or configuration.
fn error_response(err: &Error) -> Response {
    let status = match err.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorKind::InvalidInput | ErrorKind::InvalidKey => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Unavailable | ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::NOT_MODIFIED {
        // A 304 carries no body.
        return status.into_response();
    }
    if status.is_server_error() {
        tracing::warn!(error = %err, "presigned request failed");
        return refuse(status, "the request could not be completed");
    }
    refuse(status, &err.kind().to_string())
}

/// The key of a request whose signature holds, or the status and reason of
/// its refusal.
fn verified(
    served: &Served,
    method: PresignMethod,
    raw_key: &str,
    query: Option<&str>,
    content_type: Option<&str>,
) -> std::result::Result<Key, (StatusCode, String)> {
    let key = Key::new(raw_key).map_err(|err| (StatusCode::BAD_REQUEST, err.to_string()))?;
    let now = SystemTime::now();
    served
        .signer
        .verify(method, &key, query.unwrap_or(""), content_type, now)
        .map_err(|refusal| (StatusCode::FORBIDDEN, refusal.reason().to_owned()))?;
    Ok(key)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn serve_get(
    State(served): State<Arc<Served>>,
    Path(raw_key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let key = match verified(
        &served,
        PresignMethod::Get,
        &raw_key,
        query.as_deref(),
        None,
    ) {
        Ok(key) => key,
        Err((status, reason)) => return refuse(status, &reason),
    };
    let mut options = GetOptions::default();
    if let Some(range) = header_text(&headers, header::RANGE) {
        match ByteRange::parse_http_header(range) {
            Ok(range) => options.range = Some(range),
            Err(err) => return error_response(&err),
        }
    }
    if let Some(etag) = header_text(&headers, header::IF_NONE_MATCH) {
        options.if_none_match = Some(etag.to_owned());
    }
    if let Some(etag) = header_text(&headers, header::IF_MATCH) {
        options.if_match = Some(etag.to_owned());
    }
    let ranged = options.range.is_some();
    let result = match served.storage.get(&key, options).await {
        Ok(result) => result,
        Err(err) => return error_response(&err),
    };
    let meta = &result.meta;
    let mut response = Response::builder()
        .status(if ranged {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_LENGTH, result.len())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            header::CONTENT_TYPE,
            meta.content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
        );
    if ranged {
        let range = &result.range;
        let value = format!(
            "bytes {}-{}/{}",
            range.start,
            range.end.saturating_sub(1),
            meta.size
        );
        response = response.header(header::CONTENT_RANGE, value);
    }
    if let Some(etag) = meta
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        response = response.header(header::ETAG, etag);
    }
    if let Some(modified) = meta.last_modified {
        response = response.header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified));
    }
    if let Some(cache) = meta
        .cache_control
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        response = response.header(header::CACHE_CONTROL, cache);
    }
    match response.body(HttpBody::from_stream(result.body)) {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the response could not be built",
        ),
    }
}

async fn serve_put(
    State(served): State<Arc<Served>>,
    Path(raw_key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: HttpBody,
) -> Response {
    let content_type = header_text(&headers, header::CONTENT_TYPE);
    let key = match verified(
        &served,
        PresignMethod::Put,
        &raw_key,
        query.as_deref(),
        content_type,
    ) {
        Ok(key) => key,
        Err((status, reason)) => return refuse(status, &reason),
    };
    let length = header_text(&headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    let chunks = body.into_data_stream().map_err(|err| {
        Error::new(ErrorKind::Unavailable, "the upload was interrupted").with_source(err)
    });
    let body = match length {
        Some(length) => Body::from_sized_stream(chunks, length),
        None => Body::from_stream(chunks),
    };
    let mut options = PutOptions::default();
    options.content_type = content_type.map(str::to_owned);
    if let Some(cache) = header_text(&headers, header::CACHE_CONTROL) {
        options.cache_control = Some(cache.to_owned());
    }
    match served.storage.put(&key, body, options).await {
        Ok(written) => {
            let mut response = StatusCode::OK.into_response();
            if let Some(etag) = written
                .etag
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Err(err) => error_response(&err),
    }
}
