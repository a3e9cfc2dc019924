//! Helpers for backends' own test suites (feature `conformance`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy on 127.0.0.1 that forwards to a server and, once, drops
/// the connection that carries the client's byte number `cut_at` (counted
/// over all connections), mid-request: a dropped connection as a client
/// sees it. It counts what the client sent, so a test can tell a resumed
/// upload (about the object's size) from a restarted one (much more).
#[derive(Debug)]
pub struct CuttingProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    sent: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CuttingProxy {
    /// Starts a proxy to `upstream` (`http://host:port` or `host:port`).
    ///
    /// # Panics
    ///
    /// If no 127.0.0.1 port can be bound (a test machine without loopback).
    pub async fn start(upstream: &str, cut_at: u64) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        #[allow(clippy::expect_used)] // Documented: a test helper.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port on 127.0.0.1");
        let url = match listener.local_addr() {
            Ok(address) => format!("http://{address}"),
            Err(err) => panic!("the bound address: {err}"),
        };
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
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Connections dropped.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}
