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
