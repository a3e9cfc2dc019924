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
