//! What the S3 test binaries share: the servers' variables, and a
//! fault-injecting HTTP proxy for the layer tests: it sits on 127.0.0.1
//! between the S3 client and a real test server and, by seeded chance or
//! by switch, answers 503 (with Retry-After), resets connections, truncates
//! or stalls response bodies, and adds latency. It also notes the payload
//! hash header each request carried, for the tests of body signing.

#![allow(dead_code)] // Each test binary uses part of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

/// A variable the test command sets; missing means the servers are not
/// running, which fails the test rather than skipping it.
pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the S3 test servers are not running; use `cargo xtask test`")
    })
}

/// What goes wrong, and how often (0.0 to 1.0 each, drawn per request).
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    /// 503 Service Unavailable (half of them with `Retry-After: 0`).
    pub(crate) unavailable: f64,
    /// The connection is dropped before an answer.
    pub(crate) reset: f64,
    /// A GET answer stops halfway through its body.
    pub(crate) truncate: f64,
    /// A GET answer sends half its body and then nothing, forever.
    pub(crate) stall: f64,
    /// Added to every request.
    pub(crate) latency: Duration,
    /// The seed of the draws, so a failing run can be replayed.
    pub(crate) seed: u64,
}

struct Shared {
    upstream: String,
    faults: Faults,
    rng: Mutex<fastrand::Rng>,
    down: AtomicBool,
    requests: AtomicU64,
    faults_injected: AtomicU64,
    payload_hashes: Mutex<Vec<(String, String)>>,
    client: reqwest::Client,
}

/// A running proxy; stops when dropped.
pub(crate) struct FaultProxy {
    /// The proxy's base URL.
    pub(crate) url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free 127.0.0.1 port.
    pub(crate) async fn start(upstream: &str, faults: Faults) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(fastrand::Rng::with_seed(faults.seed)),
            faults,
            down: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            payload_hashes: Mutex::new(Vec::new()),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    /// While down, every request gets 503.
    pub(crate) fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Requests received so far.
    pub(crate) fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Faults injected so far.
    pub(crate) fn faults_injected(&self) -> u64 {
        self.shared.faults_injected.load(Ordering::SeqCst)
    }

    /// Each request's method and `x-amz-content-sha256` header (empty when
    /// it had none), in the order they arrived.
    pub(crate) fn payload_hashes(&self) -> Vec<(String, String)> {
        self.shared.payload_hashes.lock().unwrap().clone()
    }
}

enum Fault {
    None,
    Unavailable { retry_after: bool },
    Reset,
    Truncate,
    Stall,
}

fn draw(shared: &Shared, is_get: bool) -> Fault {
    if shared.down.load(Ordering::SeqCst) {
        return Fault::Unavailable { retry_after: false };
    }
    let mut rng = shared.rng.lock().unwrap();
    let f = &shared.faults;
    let roll = rng.f64();
    let mut edge = f.unavailable;
    if roll < edge {
        return Fault::Unavailable {
            retry_after: rng.bool(),
        };
    }
    edge += f.reset;
    if roll < edge {
        return Fault::Reset;
    }
    if is_get {
        edge += f.truncate;
        if roll < edge {
            return Fault::Truncate;
        }
        edge += f.stall;
        if roll < edge {
            return Fault::Stall;
        }
    }
    Fault::None
}

fn reset() -> Response {
    // A body that fails at once makes the server drop the connection.
    let failing = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("injected reset"))
    });
    let mut response = Response::new(Body::from_stream(failing));
    response
        .headers_mut()
        .insert("content-length", HeaderValue::from_static("1048576"));
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let payload_hash = request
        .headers()
        .get("x-amz-content-sha256")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    shared
        .payload_hashes
        .lock()
        .unwrap()
        .push((request.method().to_string(), payload_hash));
    if !shared.faults.latency.is_zero() {
        tokio::time::sleep(shared.faults.latency).await;
    }
    let is_get = request.method() == axum::http::Method::GET;
    let fault = draw(&shared, is_get);
    if !matches!(fault, Fault::None) {
        shared.faults_injected.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Unavailable { retry_after } => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>",
            )
                .into_response();
            if retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static("0"));
            }
            return response;
        }
        Fault::Reset => return reset(),
        _ => {}
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            headers.append(name.clone(), value.clone());
        }
    }
    let upstream = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = upstream.status();
    let mut response_headers = HeaderMap::new();
    for (name, value) in upstream.headers() {
        if name != "transfer-encoding" && name != "connection" {
            response_headers.append(name.clone(), value.clone());
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    let body = match fault {
        Fault::Truncate if bytes.len() > 1 => {
            let half = bytes.slice(..bytes.len() / 2);
            let cut = futures::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
                futures::stream::once(async { Err(std::io::Error::other("injected truncation")) }),
            );
            Body::from_stream(cut)
        }
        Fault::Stall if bytes.len() > 1 => {
            let half = bytes.slice(..bytes.len() / 2);
            let stalled = futures::stream::iter([Ok::<_, std::io::Error>(half)])
                .chain(futures::stream::pending());
            Body::from_stream(stalled)
        }
        _ => Body::from(bytes),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}
