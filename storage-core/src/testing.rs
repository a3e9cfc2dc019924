//! Helpers for backends' own test suites (feature `conformance`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy on 127.0.0.1 that forwards to a server and, once, drops
/// the connection that carries the client's byte number `cut_at` (counted
/// over all connections), mid-request: a dropped connection as a client
/// sees it. It counts what the client sent, so a test can tell a resumed
/// upload (about the object's size) from a restarted one (much more).
/// [`start_cutting_answers`](Self::start_cutting_answers) cuts an answer
/// instead, for downloads.
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
    /// Starts a proxy to `upstream` (`http://host:port` or `host:port`)
    /// that cuts the request carrying the client's byte number `cut_at`.
    ///
    /// # Panics
    ///
    /// If no 127.0.0.1 port can be bound (a test machine without loopback).
    pub async fn start(upstream: &str, cut_at: u64) -> Self {
        Self::start_with(upstream, cut_at, Cut::Request).await
    }

    /// Starts a proxy to `upstream` that drops its connection number
    /// `connection` (from 0, in the order they are opened) once that
    /// connection has carried `cut_at` bytes of answers, headers included:
    /// an answer cut short mid-body, as a client sees it. (Counting over
    /// one connection, not all, places the cut: an answer the client stops
    /// reading may have sent far more than it read.)
    ///
    /// # Panics
    ///
    /// If no 127.0.0.1 port can be bound.
    pub async fn start_cutting_answers(upstream: &str, connection: u64, cut_at: u64) -> Self {
        Self::start_with(upstream, cut_at, Cut::Answer { connection }).await
    }

    async fn start_with(upstream: &str, cut_at: u64, cut: Cut) -> Self {
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
            for number in 0u64.. {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (sent, cuts) = (sent_in.clone(), cuts_in.clone());
                tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let (request_cut, answer_cut) = match cut {
                        Cut::Request => (cut_at, u64::MAX),
                        Cut::Answer { connection } if connection == number => (u64::MAX, cut_at),
                        Cut::Answer { .. } => (u64::MAX, u64::MAX),
                    };
                    let received = Arc::new(AtomicU64::new(0));
                    // Whichever direction cuts, both die: the client sees
                    // its request or its answer fail.
                    let requests =
                        forward(client_read, server_write, sent, request_cut, cuts.clone());
                    let answers = forward(server_read, client_write, received, answer_cut, cuts);
                    tokio::pin!(requests, answers);
                    tokio::select! {
                        cut = &mut requests => if !cut { answers.await; },
                        cut = &mut answers => if !cut { requests.await; },
                    }
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

/// What a [`CuttingProxy`] cuts: the request carrying a byte counted over
/// all connections, or an answer on one connection.
#[derive(Debug, Clone, Copy)]
enum Cut {
    Request,
    Answer { connection: u64 },
}

/// Copies `from` to `to`, counting bytes in `counter`, until `from` ends
/// (then shuts `to` down and returns `false`) or the byte number `cut_at`
/// passes, if no connection was cut before (then returns `true` without
/// forwarding it, and the connection is dropped).
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counter: Arc<AtomicU64>,
    cut_at: u64,
    cuts: Arc<AtomicU64>,
) -> bool {
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = counter.fetch_add(n as u64, Ordering::SeqCst);
        if before < cut_at
            && before + n as u64 >= cut_at
            && cuts.fetch_add(1, Ordering::SeqCst) == 0
        {
            return true;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    false
}
