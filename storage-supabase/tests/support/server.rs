//! A Supabase Storage server for the tests, following
//! `../shared/supabase-storage-api.md` (the wire facts of the open-source
//! server 1.11.2, file backend): the same routes, headers and JSON shapes,
//! the 400-with-the-real-status-in-the-body error model, a bodyless 400 to
//! HEAD of a missing object, HS256 JWTs for the key and for signed URLs,
//! a server-fixed lifetime for signed upload URLs, `x-upsert` rules, the
//! key charset, bucket limits, list-v2 with cursors and folders, list v1,
//! supabase-js's multipart form uploads, and TUS. `@supabase/storage-js`
//! 2.109 runs its bucket, upload (Buffer and Blob), download, info,
//! exists, list, signed URL, signed upload, copy, move, remove and public
//! URL calls against it as it does against the real server.
//!
//! Not modelled: row-level security and roles (every valid key is the
//! service role), image transformation, the S3 protocol.

// A refusal is an HTTP answer, returned whole through `Result`s; a test
// server fails by panicking.
#![allow(clippy::result_large_err, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2::Sha256;

/// The HS256 secret keys and signed URLs are made with.
pub(crate) const JWT_SECRET: &str = "storage-supabase-test-jwt-secret-0123456789";

#[derive(Clone)]
struct Object {
    data: Bytes,
    content_type: String,
    cache_control: String,
    metadata: Value,
    etag: String,
    version: String,
    id: String,
    modified: SystemTime,
}

#[derive(Default)]
struct Bucket {
    public: bool,
    file_size_limit: Option<u64>,
    allowed_mime_types: Option<Vec<String>>,
    objects: BTreeMap<String, Object>,
}

struct Upload {
    bucket: String,
    name: String,
    content_type: String,
    cache_control: String,
    metadata: Value,
    upsert: bool,
    length: Option<u64>,
    data: Vec<u8>,
}

struct Shared {
    buckets: Mutex<HashMap<String, Bucket>>,
    uploads: Mutex<HashMap<String, Upload>>,
    upload_url_lifetime: Duration,
    base: Mutex<String>,
}

/// A running server; stops when dropped.
pub(crate) struct SupabaseServer {
    /// The storage root, as a self-hosted server serves it.
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SupabaseServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SupabaseServer {
    /// Starts on a free 127.0.0.1 port with signed upload URLs living
    /// `upload_url_lifetime` (the real server's default is 60 s).
    pub(crate) async fn start(upload_url_lifetime: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            buckets: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            upload_url_lifetime,
            base: Mutex::new(url.clone()),
        });
        let app = Router::new().fallback(handle).with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, task }
    }
}

/// A service-role key, as Supabase issues them.
pub(crate) fn service_key() -> String {
    jwt(&json!({ "role": "service_role", "iss": "supabase", "iat": now() }))
}

/// An HS256 JWT of `claims`.
pub(crate) fn jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(JWT_SECRET.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Verifies an HS256 JWT; the claims, or the error the real server gives.
fn verify(token: &str, code: &str) -> Result<Value, Response> {
    let invalid = |message: &str| error("400", code, message, code);
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(invalid("Invalid Compact JWS"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(JWT_SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| invalid("signature verification failed"))?;
    if mac.verify_slice(&signature).is_err() {
        return Err(invalid("signature verification failed"));
    }
    let claims: Value = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(|| invalid("Invalid Compact JWS"))?;
    if let Some(exp) = claims.get("exp").and_then(Value::as_u64)
        && exp <= now()
    {
        return Err(invalid("\"exp\" claim timestamp check failed"));
    }
    Ok(claims)
}

/// The claims of a signed URL's `token`, checked as the real server does:
/// a missing token, a bad signature or an expiry, and a token made for
/// another object or purpose, each with its own error.
fn signed_claims(
    query: &HashMap<String, String>,
    bucket: &str,
    name: &str,
    scope: &str,
) -> Result<Value, Response> {
    let Some(token) = query.get("token") else {
        return Err(error(
            "400",
            "Error",
            "querystring must have required property 'token'",
            "InvalidRequest",
        ));
    };
    let claims = verify(token, "InvalidJWT")?;
    if claims["url"] != json!(format!("{bucket}/{name}")) || claims["scope"] != json!(scope) {
        return Err(error(
            "400",
            "InvalidSignature",
            "Invalid signature",
            "InvalidSignature",
        ));
    }
    Ok(claims)
}

/// The error model: HTTP 400 with the real status as a string in the body,
/// except 416 and 500, which are real.
fn error(status: &str, error: &str, message: &str, code: &str) -> Response {
    let http = match status {
        "416" => 416,
        "500" => 500,
        _ => 400,
    };
    json_response(
        http,
        &json!({ "statusCode": status, "error": error, "message": message, "code": code }),
    )
}

fn no_such_key() -> Response {
    error("404", "not_found", "Object not found", "NoSuchKey")
}

fn no_such_bucket() -> Response {
    error(
        "404",
        "Bucket not found",
        "Bucket not found",
        "NoSuchBucket",
    )
}

fn duplicate(code: &str) -> Response {
    error("409", "Duplicate", "The resource already exists", code)
}

fn json_response(status: u16, value: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(value.to_string()))
        .unwrap()
}

fn route_not_found(method: &Method, path: &str) -> Response {
    json_response(
        404,
        &json!({ "statusCode": "404", "error": "Not Found", "message": format!("Route {method}:{path} not found"), "code": "InvalidRequest" }),
    )
}

/// The characters the real server allows in a key.
fn valid_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/!.*'() &$=@;:+,?-".contains(c))
}

fn random_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339()
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    // Served at the root, as a self-hosted server does, and under
    // `/storage/v1`, as a hosted project's gateway does.
    let routed = path.strip_prefix("/storage/v1").unwrap_or(&path);
    let segments: Vec<String> = routed
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = parts.method.clone();
    let headers = parts.headers;

    // Routes that carry their own authority.
    match (&method, seg.as_slice()) {
        (&Method::GET, ["status"]) => return Response::new(Body::empty()),
        (&Method::GET | &Method::HEAD, ["object", "public", bucket, rest @ ..]) => {
            let buckets = shared.buckets.lock().unwrap();
            return match buckets.get(*bucket) {
                Some(b) if b.public => serve(b, &rest.join("/"), &headers, method == Method::HEAD),
                _ => no_such_bucket(),
            };
        }
        (&Method::GET, ["object", "sign", bucket, rest @ ..]) => {
            let name = rest.join("/");
            let claims = match signed_claims(&query, bucket, &name, "download") {
                Ok(claims) => claims,
                Err(response) => return response,
            };
            let buckets = shared.buckets.lock().unwrap();
            return match buckets.get(*bucket) {
                Some(b) => {
                    let mut response = serve(b, &name, &headers, false);
                    if let Some(exp) = claims["exp"].as_u64() {
                        response.headers_mut().insert(
                            "expires",
                            http_date(UNIX_EPOCH + Duration::from_secs(exp))
                                .parse()
                                .unwrap(),
                        );
                    }
                    response
                }
                None => no_such_bucket(),
            };
        }
        (&Method::PUT, ["object", "upload", "sign", bucket, rest @ ..]) => {
            let name = rest.join("/");
            let claims = match signed_claims(&query, bucket, &name, "upload") {
                Ok(claims) => claims,
                Err(response) => return response,
            };
            let upsert = claims["upsert"].as_bool().unwrap_or(false);
            let mut buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get_mut(*bucket) else {
                return no_such_bucket();
            };
            return match store(b, &name, &headers, body, upsert, None) {
                Ok(_) => json_response(200, &json!({ "Key": format!("{bucket}/{name}") })),
                Err(response) => response,
            };
        }
        _ => {}
    }

    // Everything else needs the key.
    let Some(authorization) = header(&headers, "authorization") else {
        return error(
            "400",
            "Error",
            "headers must have required property 'authorization'",
            "InvalidRequest",
        );
    };
    let token = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
        .unwrap_or(authorization);
    if let Err(response) = verify(token, "AccessDenied").map_err(|_| {
        error(
            "403",
            "Unauthorized",
            "signature verification failed",
            "AccessDenied",
        )
    }) {
        return response;
    }
    let json_body = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);

    match (&method, seg.as_slice()) {
        (&Method::POST, ["bucket"]) => {
            let request = json_body();
            let Some(name) = request["name"].as_str() else {
                return error(
                    "400",
                    "Error",
                    "body must have required property 'name'",
                    "InvalidRequest",
                );
            };
            let id = request["id"].as_str().unwrap_or(name).to_owned();
            if id.contains('/') || id.is_empty() {
                return error(
                    "400",
                    "Invalid Input",
                    "Bucket name invalid",
                    "InvalidBucketName",
                );
            }
            let mut buckets = shared.buckets.lock().unwrap();
            if buckets.contains_key(&id) {
                return duplicate("BucketAlreadyExists");
            }
            let limit = match &request["file_size_limit"] {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => parse_size(s),
                _ => None,
            };
            let allowed = request["allowed_mime_types"].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
            buckets.insert(
                id,
                Bucket {
                    public: request["public"].as_bool().unwrap_or(false),
                    file_size_limit: limit,
                    allowed_mime_types: allowed,
                    objects: BTreeMap::new(),
                },
            );
            json_response(200, &json!({ "name": name }))
        }
        (&Method::GET, ["bucket", id]) => {
            let buckets = shared.buckets.lock().unwrap();
            match buckets.get(*id) {
                Some(b) => json_response(
                    200,
                    &json!({ "id": id, "name": id, "owner": "", "public": b.public,
                             "file_size_limit": b.file_size_limit, "allowed_mime_types": b.allowed_mime_types,
                             "created_at": rfc3339(SystemTime::now()), "updated_at": rfc3339(SystemTime::now()) }),
                ),
                None => no_such_bucket(),
            }
        }
        (&Method::POST, ["object", "list-v2", bucket]) => {
            let buckets = shared.buckets.lock().unwrap();
            match buckets.get(*bucket) {
                Some(b) => list_v2(b, &json_body()),
                None => no_such_bucket(),
            }
        }
        (&Method::POST, ["object", "copy"]) | (&Method::POST, ["object", "move"]) => {
            let moving = seg[1] == "move";
            let request = json_body();
            let (Some(bucket), Some(source), Some(destination)) = (
                request["bucketId"].as_str(),
                request["sourceKey"].as_str(),
                request["destinationKey"].as_str(),
            ) else {
                return error(
                    "400",
                    "Error",
                    "body must have required property 'sourceKey'",
                    "InvalidRequest",
                );
            };
            if !valid_key(destination) {
                return error(
                    "400",
                    "InvalidKey",
                    &format!("Invalid key: {destination}"),
                    "InvalidKey",
                );
            }
            let upsert = !moving && header(&headers, "x-upsert") == Some("true");
            let mut buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get_mut(bucket) else {
                return no_such_bucket();
            };
            let Some(object) = b.objects.get(source).cloned() else {
                return no_such_key();
            };
            if b.objects.contains_key(destination) && !upsert {
                return duplicate(if moving {
                    "ResourceAlreadyExists"
                } else {
                    "KeyAlreadyExists"
                });
            }
            let mut copied = object.clone();
            if moving {
                b.objects.remove(source);
                b.objects.insert(destination.to_owned(), copied);
                return json_response(200, &json!({ "message": "Successfully moved" }));
            }
            if request["copyMetadata"] == json!(false) {
                copied.metadata = json!({});
            }
            copied.id = random_id();
            copied.version = random_id();
            copied.modified = SystemTime::now();
            b.objects.insert(destination.to_owned(), copied.clone());
            json_response(
                200,
                &json!({ "Key": format!("{bucket}/{destination}"), "Id": copied.id, "name": destination,
                         "bucket_id": bucket, "version": copied.version, "metadata": system_metadata(&copied),
                         "user_metadata": copied.metadata }),
            )
        }
        (&Method::POST, ["object", "sign", bucket, rest @ ..]) => {
            let name = rest.join("/");
            let request = json_body();
            let expires_in = match &request["expiresIn"] {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            let Some(expires_in) = expires_in.filter(|e| *e >= 1) else {
                return error(
                    "400",
                    "Error",
                    "body/expiresIn must be >= 1",
                    "InvalidRequest",
                );
            };
            let buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get(*bucket) else {
                return no_such_bucket();
            };
            if !b.objects.contains_key(&name) {
                return no_such_key();
            }
            let iat = now();
            let token = jwt(
                &json!({ "url": format!("{bucket}/{name}"), "scope": "download", "iat": iat, "exp": iat + expires_in as u64 }),
            );
            json_response(
                200,
                &json!({ "signedURL": format!("/object/sign/{bucket}/{name}?token={token}") }),
            )
        }
        (&Method::POST, ["object", "upload", "sign", bucket, rest @ ..]) => {
            let name = rest.join("/");
            if !valid_key(&name) {
                return error(
                    "400",
                    "InvalidKey",
                    &format!("Invalid key: {name}"),
                    "InvalidKey",
                );
            }
            let upsert = header(&headers, "x-upsert") == Some("true");
            let buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get(*bucket) else {
                return error(
                    "404",
                    "InvalidRequest",
                    "The related resource does not exist",
                    "InvalidRequest",
                );
            };
            if b.objects.contains_key(&name) && !upsert {
                return duplicate("KeyAlreadyExists");
            }
            let iat = now();
            let exp = iat + shared.upload_url_lifetime.as_secs();
            let token = jwt(
                &json!({ "url": format!("{bucket}/{name}"), "upsert": upsert, "scope": "upload", "iat": iat, "exp": exp }),
            );
            json_response(
                200,
                &json!({ "url": format!("/object/upload/sign/{bucket}/{name}?token={token}"), "token": token }),
            )
        }
        (&Method::GET, ["object", "info", rest @ ..]) => {
            let rest = match rest {
                ["authenticated", rest @ ..] => rest,
                rest => rest,
            };
            let [bucket, name @ ..] = rest else {
                return route_not_found(&method, &path);
            };
            let buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get(*bucket) else {
                return no_such_bucket();
            };
            match b.objects.get(&name.join("/")) {
                Some(o) => json_response(
                    200,
                    &json!({ "id": o.id, "name": name.join("/"), "version": o.version, "bucket_id": bucket,
                             "size": o.data.len(), "content_type": o.content_type, "cache_control": o.cache_control,
                             "etag": o.etag, "metadata": o.metadata, "last_modified": rfc3339(o.modified),
                             "created_at": rfc3339(o.modified) }),
                ),
                None => no_such_key(),
            }
        }
        (&Method::GET | &Method::HEAD, ["object", rest @ ..]) => {
            let rest = match rest {
                ["authenticated", rest @ ..] => rest,
                rest => rest,
            };
            let [bucket, name @ ..] = rest else {
                return route_not_found(&method, &path);
            };
            let head = method == Method::HEAD;
            let buckets = shared.buckets.lock().unwrap();
            match buckets.get(*bucket) {
                Some(b) => serve(b, &name.join("/"), &headers, head),
                None if head => bodyless_400(),
                None => no_such_bucket(),
            }
        }
        (&Method::POST, ["object", "list", bucket]) => {
            let buckets = shared.buckets.lock().unwrap();
            match buckets.get(*bucket) {
                Some(b) => list_v1(b, &json_body()),
                // The real server lists a missing bucket as empty.
                None => json_response(200, &json!([])),
            }
        }
        (&Method::POST | &Method::PUT, ["object", bucket, rest @ ..]) if !rest.is_empty() => {
            let name = rest.join("/");
            let upsert = method == Method::PUT || header(&headers, "x-upsert") == Some("true");
            let metadata = header(&headers, "x-metadata")
                .and_then(|m| STANDARD.decode(m).ok())
                .and_then(|m| serde_json::from_slice(&m).ok());
            let mut buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get_mut(*bucket) else {
                return no_such_bucket();
            };
            match store(b, &name, &headers, body, upsert, metadata) {
                Ok(object) => json_response(
                    200,
                    &json!({ "Key": format!("{bucket}/{name}"), "Id": object.id }),
                ),
                Err(response) => response,
            }
        }
        (&Method::DELETE, ["object", bucket]) => {
            let request = json_body();
            let Some(prefixes) = request["prefixes"].as_array().filter(|p| !p.is_empty()) else {
                return error(
                    "400",
                    "Error",
                    "body/prefixes must NOT have fewer than 1 items",
                    "InvalidRequest",
                );
            };
            let mut buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get_mut(*bucket) else {
                return json_response(200, &json!([]));
            };
            let mut deleted = Vec::new();
            for name in prefixes.iter().filter_map(Value::as_str) {
                if let Some(o) = b.objects.remove(name) {
                    deleted.push(json!({ "name": name, "bucket_id": bucket, "id": o.id, "metadata": system_metadata(&o) }));
                }
            }
            json_response(200, &Value::Array(deleted))
        }
        (&Method::DELETE, ["object", bucket, rest @ ..]) => {
            let mut buckets = shared.buckets.lock().unwrap();
            let Some(b) = buckets.get_mut(*bucket) else {
                return no_such_key();
            };
            match b.objects.remove(&rest.join("/")) {
                Some(_) => json_response(200, &json!({ "message": "Successfully deleted" })),
                None => no_such_key(),
            }
        }
        (&Method::POST, ["upload", "resumable"]) => tus_create(&shared, &headers),
        (&Method::PATCH, ["upload", "resumable", id]) => tus_patch(&shared, id, &headers, body),
        (&Method::HEAD, ["upload", "resumable", id]) => {
            let uploads = shared.uploads.lock().unwrap();
            match uploads.get(*id) {
                Some(upload) => Response::builder()
                    .status(200)
                    .header("tus-resumable", "1.0.0")
                    .header("upload-offset", upload.data.len().to_string())
                    .header("cache-control", "no-store")
                    .body(Body::empty())
                    .unwrap(),
                None => Response::builder().status(404).body(Body::empty()).unwrap(),
            }
        }
        (&Method::DELETE, ["upload", "resumable", id]) => {
            shared.uploads.lock().unwrap().remove(*id);
            Response::builder()
                .status(204)
                .header("tus-resumable", "1.0.0")
                .body(Body::empty())
                .unwrap()
        }
        _ => route_not_found(&method, &path),
    }
}

fn bodyless_400() -> Response {
    Response::builder().status(400).body(Body::empty()).unwrap()
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits.parse().ok()?;
    let unit = text[digits.len()..].trim().to_ascii_uppercase();
    let factor = match unit.as_str() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    Some(number * factor)
}

fn system_metadata(o: &Object) -> Value {
    json!({ "eTag": o.etag, "size": o.data.len(), "mimetype": o.content_type, "cacheControl": o.cache_control,
            "lastModified": rfc3339(o.modified), "contentLength": o.data.len(), "httpStatusCode": 200 })
}

fn mime_allowed(allowed: &[String], content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    allowed
        .iter()
        .any(|pattern| match pattern.strip_suffix("/*") {
            Some(family) => base.split('/').next() == Some(family),
            None => pattern == base,
        })
}

/// Stores an object under the bucket's rules.
fn store(
    bucket: &mut Bucket,
    name: &str,
    headers: &HeaderMap,
    data: Bytes,
    upsert: bool,
    metadata: Option<Value>,
) -> Result<Object, Response> {
    let content_type = header(headers, "content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    let cache_control = header(headers, "cache-control")
        .unwrap_or("no-cache")
        .to_owned();
    // supabase-js style: a form with `cacheControl`, `metadata` and the
    // file in the field "" (its part's type is the object's).
    if let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_owned())
    {
        let form = parse_form(&data, &boundary);
        let Some(file) = form.iter().find(|part| part.name.is_empty()) else {
            return Err(error(
                "400",
                "Error",
                "the form has no file field",
                "InvalidRequest",
            ));
        };
        let field = |wanted: &str| {
            form.iter()
                .find(|part| part.name == wanted)
                .map(|part| String::from_utf8_lossy(&part.body).into_owned())
        };
        let cache_control =
            field("cacheControl").map_or(cache_control, |seconds| format!("max-age={seconds}"));
        let form_metadata = field("metadata").and_then(|m| serde_json::from_str(&m).ok());
        return put_object(
            bucket,
            name,
            file.body.clone(),
            file.content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            cache_control,
            form_metadata.or(metadata).unwrap_or(json!({})),
            upsert,
        );
    }
    put_object(
        bucket,
        name,
        data,
        content_type,
        cache_control,
        metadata.unwrap_or(json!({})),
        upsert,
    )
}

/// One part of a multipart/form-data body.
struct FormPart {
    name: String,
    content_type: Option<String>,
    body: Bytes,
}

fn parse_form(data: &Bytes, boundary: &str) -> Vec<FormPart> {
    let delimiter = format!("--{boundary}");
    let bytes = &data[..];
    let positions: Vec<usize> = bytes
        .windows(delimiter.len())
        .enumerate()
        .filter(|(_, w)| *w == delimiter.as_bytes())
        .map(|(at, _)| at)
        .collect();
    let mut parts = Vec::new();
    for pair in positions.windows(2) {
        let start = pair[0] + delimiter.len();
        let part = &bytes[start..pair[1]];
        let skip = if part.starts_with(b"\r\n") { 2 } else { 0 };
        let part = &part[skip..];
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..split]);
        let mut body_len = part.len() - split - 4;
        if part.ends_with(b"\r\n") {
            body_len -= 2;
        }
        let body_start = start + skip + split + 4;
        let mut name = None;
        let mut content_type = None;
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                name = line
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("name="))
                    .map(|n| n.trim_matches('"').to_owned());
            } else if lower.starts_with("content-type:") {
                content_type = Some(line["content-type:".len()..].trim().to_owned());
            }
        }
        if let Some(name) = name {
            parts.push(FormPart {
                name,
                content_type,
                body: data.slice(body_start..body_start + body_len),
            });
        }
    }
    parts
}

/// List v1: one level under `prefix` (a folder, trailing `/` optional),
/// folders and files sorted together by name, `limit`/`offset` paging,
/// `search` as a substring filter on the names.
fn list_v1(bucket: &Bucket, request: &Value) -> Response {
    let Some(prefix) = request["prefix"].as_str() else {
        return error(
            "400",
            "Error",
            "body must have required property 'prefix'",
            "InvalidRequest",
        );
    };
    let folder = match prefix.trim_end_matches('/') {
        "" => String::new(),
        folder => format!("{folder}/"),
    };
    let limit = request["limit"].as_u64().unwrap_or(100).max(1) as usize;
    let offset = request["offset"].as_u64().unwrap_or(0) as usize;
    let search = request["search"].as_str().unwrap_or("");
    let descending = request["sortBy"]["order"].as_str() == Some("desc");
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    for (name, o) in bucket.objects.range(folder.clone()..) {
        let Some(rest) = name.strip_prefix(&folder) else {
            break;
        };
        match rest.split_once('/') {
            Some((sub, _)) => {
                entries.entry(sub.to_owned()).or_insert_with(|| {
                    json!({ "name": sub, "id": null, "updated_at": null, "created_at": null,
                            "last_accessed_at": null, "metadata": null })
                });
            }
            None => {
                entries.insert(
                    rest.to_owned(),
                    json!({ "name": rest, "id": o.id, "updated_at": rfc3339(o.modified),
                            "created_at": rfc3339(o.modified), "last_accessed_at": rfc3339(o.modified),
                            "metadata": system_metadata(o) }),
                );
            }
        }
    }
    let mut listed: Vec<Value> = entries
        .into_iter()
        .filter(|(name, _)| name.contains(search))
        .map(|(_, v)| v)
        .collect();
    if descending {
        listed.reverse();
    }
    let page: Vec<Value> = listed.into_iter().skip(offset).take(limit).collect();
    json_response(200, &Value::Array(page))
}

fn put_object(
    bucket: &mut Bucket,
    name: &str,
    data: Bytes,
    content_type: String,
    cache_control: String,
    metadata: Value,
    upsert: bool,
) -> Result<Object, Response> {
    if !valid_key(name) {
        return Err(error(
            "400",
            "InvalidKey",
            &format!("Invalid key: {name}"),
            "InvalidKey",
        ));
    }
    if let Some(allowed) = &bucket.allowed_mime_types
        && !mime_allowed(allowed, &content_type)
    {
        return Err(error(
            "415",
            "invalid_mime_type",
            &format!("mime type {content_type} is not supported"),
            "InvalidMimeType",
        ));
    }
    if let Some(limit) = bucket.file_size_limit
        && data.len() as u64 > limit
    {
        return Err(error(
            "413",
            "Payload too large",
            "The object exceeded the maximum allowed size",
            "EntityTooLarge",
        ));
    }
    let previous = bucket.objects.get(name);
    if previous.is_some() && !upsert {
        return Err(duplicate("KeyAlreadyExists"));
    }
    let object = Object {
        etag: format!(
            "\"{}\"",
            Md5::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        id: previous.map_or_else(random_id, |p| p.id.clone()),
        version: random_id(),
        data,
        content_type,
        cache_control,
        metadata,
        modified: SystemTime::now(),
    };
    bucket.objects.insert(name.to_owned(), object.clone());
    Ok(object)
}

/// GET or HEAD of an object: Range (206/416) and If-None-Match (304).
fn serve(bucket: &Bucket, name: &str, headers: &HeaderMap, head: bool) -> Response {
    let Some(o) = bucket.objects.get(name) else {
        return if head { bodyless_400() } else { no_such_key() };
    };
    let size = o.data.len() as u64;
    let base = || {
        Response::builder()
            .header("content-type", &o.content_type)
            .header("etag", &o.etag)
            .header("last-modified", http_date(o.modified))
            .header("cache-control", &o.cache_control)
            .header("accept-ranges", "bytes")
            .header("x-robots-tag", "none")
    };
    if header(headers, "if-none-match") == Some(o.etag.as_str()) {
        return base().status(304).body(Body::empty()).unwrap();
    }
    let range = header(headers, "range").map(storage_core::ByteRange::parse_http_header);
    let (status, span) = match range {
        None => (200, 0..size),
        Some(Err(_)) => (200, 0..size),
        Some(Ok(range)) => match range.resolve(size) {
            Ok(span) => (206, span),
            Err(_) => {
                return error(
                    "416",
                    "invalid_range",
                    "invalid range provided",
                    "InvalidRange",
                );
            }
        },
    };
    let mut response = base()
        .status(status)
        .header("content-length", (span.end - span.start).to_string());
    if status == 206 {
        response = response.header(
            "content-range",
            format!("bytes {}-{}/{size}", span.start, span.end - 1),
        );
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(o.data.slice(span.start as usize..span.end as usize))
    };
    response.body(body).unwrap()
}

/// list-v2: names under `prefix`, folders folded at the next `/` when
/// `with_delimiter`, sorted by name, `limit` per page, opaque cursors.
fn list_v2(bucket: &Bucket, request: &Value) -> Response {
    let prefix = request["prefix"].as_str().unwrap_or("");
    let limit = request["limit"].as_u64().unwrap_or(1000).clamp(1, 1000) as usize;
    let delimiter = request["with_delimiter"].as_bool().unwrap_or(false);
    let after = request["cursor"]
        .as_str()
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| String::from_utf8(c).ok());
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut last_folder: Option<String> = None;
    for (name, o) in bucket.objects.range(prefix.to_owned()..) {
        if !name.starts_with(prefix) {
            break;
        }
        let rest = &name[prefix.len()..];
        if delimiter && let Some(slash) = rest.find('/') {
            let folder = format!("{prefix}{}", &rest[..=slash]);
            if last_folder.as_deref() != Some(folder.as_str()) {
                last_folder = Some(folder.clone());
                entries.push((
                    folder.clone(),
                    json!({ "key": &rest[..slash], "name": folder, "id": null, "updated_at": null,
                            "created_at": null, "last_accessed_at": null, "metadata": null }),
                ));
            }
            continue;
        }
        let mut entry = json!({ "id": o.id, "name": name, "metadata": system_metadata(o),
                                "updated_at": rfc3339(o.modified), "created_at": rfc3339(o.modified),
                                "last_accessed_at": rfc3339(o.modified) });
        if delimiter {
            entry["key"] = json!(rest);
        }
        entries.push((name.clone(), entry));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let remaining: Vec<(String, Value)> = entries
        .into_iter()
        .filter(|(name, _)| after.as_deref().is_none_or(|a| name.as_str() > a))
        .collect();
    let has_next = remaining.len() > limit;
    let page: Vec<(String, Value)> = remaining.into_iter().take(limit).collect();
    let (folders, objects): (Vec<_>, Vec<_>) = page.iter().partition(|(_, v)| v["id"].is_null());
    let mut answer = json!({
        "hasNext": has_next,
        "folders": folders.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "objects": objects.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
    });
    if has_next && let Some((last, _)) = page.last() {
        answer["nextCursor"] = json!(URL_SAFE_NO_PAD.encode(last));
        answer["nextCursorKey"] = json!(last);
    }
    json_response(200, &answer)
}

fn tus_create(shared: &Shared, headers: &HeaderMap) -> Response {
    let metadata: HashMap<String, String> = header(headers, "upload-metadata")
        .unwrap_or("")
        .split(',')
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once(' ')?;
            let value = String::from_utf8(STANDARD.decode(value).ok()?).ok()?;
            Some((name.to_owned(), value))
        })
        .collect();
    let (Some(bucket), Some(name)) = (metadata.get("bucketName"), metadata.get("objectName"))
    else {
        return error(
            "400",
            "Error",
            "Upload-Metadata must name bucketName and objectName",
            "InvalidRequest",
        );
    };
    if !valid_key(name) {
        return error(
            "400",
            "InvalidKey",
            &format!("Invalid key: {name}"),
            "InvalidKey",
        );
    }
    let upsert = header(headers, "x-upsert") == Some("true");
    {
        let buckets = shared.buckets.lock().unwrap();
        let Some(b) = buckets.get(bucket.as_str()) else {
            return no_such_bucket();
        };
        if b.objects.contains_key(name) && !upsert {
            return duplicate("KeyAlreadyExists");
        }
    }
    let length = header(headers, "upload-length").and_then(|l| l.parse().ok());
    let id = random_id();
    shared.uploads.lock().unwrap().insert(
        id.clone(),
        Upload {
            bucket: bucket.clone(),
            name: name.clone(),
            content_type: metadata
                .get("contentType")
                .cloned()
                .unwrap_or_else(|| "application/octet-stream".into()),
            cache_control: metadata
                .get("cacheControl")
                .cloned()
                .unwrap_or_else(|| "no-cache".into()),
            metadata: metadata
                .get("metadata")
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or(json!({})),
            upsert,
            length,
            data: Vec::new(),
        },
    );
    // As tus-node-server does: the Location is on the host the client
    // asked (a proxy in front stays in front).
    let base = match header(headers, "host") {
        Some(host) => format!("http://{host}"),
        None => shared.base.lock().unwrap().clone(),
    };
    Response::builder()
        .status(201)
        .header("tus-resumable", "1.0.0")
        .header("location", format!("{base}/upload/resumable/{id}"))
        .body(Body::empty())
        .unwrap()
}

fn tus_patch(shared: &Shared, id: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let mut uploads = shared.uploads.lock().unwrap();
    let Some(upload) = uploads.get_mut(id) else {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    };
    let offset: Option<u64> = header(headers, "upload-offset").and_then(|o| o.parse().ok());
    if offset != Some(upload.data.len() as u64) {
        return Response::builder()
            .status(409)
            .body(Body::from("Upload-Offset conflict"))
            .unwrap();
    }
    if let Some(length) = header(headers, "upload-length").and_then(|l| l.parse().ok()) {
        upload.length = Some(length);
    }
    upload.data.extend_from_slice(&body);
    let held = upload.data.len() as u64;
    let done = upload.length == Some(held);
    let mut response = Response::builder()
        .status(204)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", held.to_string());
    if done {
        let upload = uploads.remove(id).unwrap();
        let mut buckets = shared.buckets.lock().unwrap();
        let Some(b) = buckets.get_mut(&upload.bucket) else {
            return no_such_bucket();
        };
        if let Err(refusal) = put_object(
            b,
            &upload.name,
            Bytes::from(upload.data),
            upload.content_type,
            upload.cache_control,
            upload.metadata,
            upload.upsert,
        ) {
            return refusal;
        }
        response = response.header("tus-complete", "1");
    }
    response.body(Body::empty()).unwrap()
}
