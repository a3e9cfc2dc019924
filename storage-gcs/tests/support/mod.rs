//! What the GCS test binaries share: the servers' addresses from the
//! environment `cargo xtask test` sets, and stores pointed at them.

#![allow(dead_code)] // Each test binary uses part of it.

use storage_gcs::{GcsConfig, GcsStorage};

/// A variable the test command sets; missing means the servers are not
/// running, which fails the test rather than skipping it.
pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the GCS test servers are not running; use `cargo xtask test`")
    })
}

/// The configuration of a store on the emulator at `endpoint`, signing
/// with the run's generated service-account key.
pub(crate) fn config(name: &str, endpoint: &str) -> GcsConfig {
    GcsConfig::new(var("STORAGE_TEST_GCS_BUCKET"))
        .with_name(name)
        .with_base_url(endpoint)
        .with_service_account_path(var("STORAGE_TEST_GCS_SERVICE_ACCOUNT"))
}

/// A store on fake-gcs-server.
pub(crate) fn fake_gcs() -> GcsStorage {
    GcsStorage::new(config(
        "fake-gcs-server",
        &var("STORAGE_TEST_FAKE_GCS_ENDPOINT"),
    ))
    .unwrap()
}

/// A store on gcp-storage-emulator.
pub(crate) fn emulator() -> GcsStorage {
    GcsStorage::new(config(
        "gcp-storage-emulator",
        &var("STORAGE_TEST_GCS_EMULATOR_ENDPOINT"),
    ))
    .unwrap()
}

/// A TCP proxy on 127.0.0.1 that forwards to a server and, once, drops
/// the connection that carries the client's byte number `cut_at` (counted
/// over all connections), mid-request: a dropped connection as a client
/// sees it. It counts what the client sent, so a test can tell a resumed
/// upload (about the object's size) from a restarted one (much more).
pub(crate) struct CuttingProxy {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    cuts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CuttingProxy {
    pub(crate) async fn start(upstream: &str, cut_at: u64) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let (sent_in, cuts_in) = (sent.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (sent, cuts) = (sent_in.clone(), cuts_in.clone());
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upstream_to_client = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let mut buffer = vec![0u8; 64 << 10];
                    loop {
                        let n = match client_read.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let before = sent.fetch_add(n as u64, Ordering::SeqCst);
                        if before < cut_at
                            && before + n as u64 >= cut_at
                            && cuts.fetch_add(1, Ordering::SeqCst) == 0
                        {
                            // Both directions die: the client sees its
                            // request fail with no answer.
                            upstream_to_client.abort();
                            return;
                        }
                        if server_write.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                    let _ = upstream_to_client.await;
                });
            }
        });
        Self {
            url,
            sent,
            cuts,
            task,
        }
    }

    /// Bytes the client sent through the proxy.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections dropped.
    pub(crate) fn cuts(&self) -> u64 {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An HTTP server on 127.0.0.1 that answers the first `failures` requests
/// with 503 and `Retry-After: SECONDS` (GCS's JSON error body), and
/// forwards the rest to `upstream`.
pub(crate) struct BusyFirst {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BusyFirst {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BusyFirst {
    pub(crate) async fn start(upstream: &str, failures: u64, retry_after_secs: u64) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};

        use axum::body::Body;
        use axum::extract::Request;
        use axum::response::Response;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicU64::new(0));
        let counter = seen.clone();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let app = axum::Router::new().fallback(move |request: Request| {
            let (counter, upstream, client) = (counter.clone(), upstream.clone(), client.clone());
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < failures {
                    return Response::builder()
                        .status(503)
                        .header("retry-after", retry_after_secs.to_string())
                        .header("content-type", "application/json")
                        .body(Body::from(
                            r#"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#,
                        ))
                        .unwrap();
                }
                let (parts, body) = request.into_parts();
                let target = format!(
                    "{upstream}{}",
                    parts.uri.path_and_query().map_or("/", |p| p.as_str())
                );
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let mut forwarded = client.request(parts.method, target).body(body);
                for (name, value) in &parts.headers {
                    if name != "host" {
                        forwarded = forwarded.header(name, value);
                    }
                }
                let answer = forwarded.send().await.unwrap();
                let mut response = Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    response = response.header(name, value);
                }
                response.body(Body::from(answer.bytes().await.unwrap())).unwrap()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, seen, task }
    }

    /// Requests received so far.
    pub(crate) fn seen(&self) -> u64 {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}
