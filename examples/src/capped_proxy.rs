//! A TCP proxy that caps each connection's download rate, for benchmarks
//! of parallel gets where a connection's throughput, not the machine's, is
//! the limit (as it is against S3 and GCS).
//!
//! Loopback is no such path: the kernel moves gigabytes a second on one
//! connection and buffers megabytes for a reader that does not read. The
//! proxy forwards what the server sends at a fixed rate per connection and
//! keeps its own buffering small (64 KiB socket buffers on both sides), so
//! a part that is not read stalls in its connection as it would on a
//! capped network path, and the server waits behind it.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

/// Socket buffers on the proxy's two sides.
const BUFFER: u32 = 64 << 10;

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct CappedProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CappedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CappedProxy {
    /// A proxy to `upstream` (`http://host:port`) whose connections each
    /// carry at most `bytes_per_second` from the server to the client;
    /// requests pass uncapped.
    pub async fn start(upstream: &str, bytes_per_second: f64) -> std::io::Result<Self> {
        let upstream: std::net::SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(std::io::Error::other)?;
        // Accepted sockets take the listener's buffer sizes.
        let socket = TcpSocket::new_v4()?;
        socket.set_send_buffer_size(BUFFER)?;
        socket.bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
        let listener: TcpListener = socket.listen(64)?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(socket) = TcpSocket::new_v4() else {
                        return;
                    };
                    if socket.set_recv_buffer_size(BUFFER).is_err() {
                        return;
                    }
                    let Ok(server) = socket.connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    });
                    let mut buffer = vec![0u8; 16 << 10];
                    let mut due = Instant::now();
                    while let Ok(read) = server_read.read(&mut buffer).await {
                        if read == 0 || client_write.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                        // Pace by what was sent; sleep only once ahead by
                        // more than the timer's resolution.
                        let now = Instant::now();
                        due =
                            due.max(now) + Duration::from_secs_f64(read as f64 / bytes_per_second);
                        if due > now + Duration::from_millis(2) {
                            tokio::time::sleep_until(due.into()).await;
                        }
                    }
                    let _ = client_write.shutdown().await;
                });
            }
        });
        Ok(Self { url, task })
    }
}
