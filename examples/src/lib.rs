//! The examples' shared code: what the benchmarks share (deterministic
//! data, the best of several rounds, this process's peak resident memory
//! and CPU time, a quiet disk before each measurement, a proxy that caps
//! each connection's rate), and [`in_house`], a third-party provider
//! registered at compile time.

pub mod capped_proxy;
pub mod in_house;

use std::time::Duration;

use std::time::Instant;

use futures::{TryStreamExt, stream};
use storage::{Body, Bytes, GetOptions, Key, PutOptions, Storage};

/// `size` bytes of a pattern that depends on `seed` (not compressible to
/// nothing, not random, so runs are repeatable).
pub fn chunk_of(size: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..size)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

/// Flushes every file system's dirty data and journal (`sync`), so that a
/// measurement starts on a quiet disk instead of paying for the writeback
/// of the one before it (or of a server's).
pub fn settle() {
    if let Err(err) = std::process::Command::new("sync").status() {
        eprintln!("warning: cannot run sync ({err}): figures will be noisier");
    }
}

/// The shortest of the rounds' times.
pub fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

/// Peak resident memory of this process so far (Linux VmHWM), in MiB; 0
/// where the kernel does not tell.
pub fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU time (user and system, every thread) this process has used so far.
/// Against a server on the same machine, the difference over a workload is
/// the client's own cost, whatever the server's speed.
pub fn cpu_time() -> Duration {
    let spent = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(spent.tv_sec).unwrap_or(0),
        u32::try_from(spent.tv_nsec).unwrap_or(0),
    )
}

/// Puts `size` bytes (`chunk` repeated) as a stream of unknown length, so
/// the backend's chunked or resumable upload path runs; the time it took.
pub async fn stream_up(
    store: &dyn Storage,
    key: &Key,
    chunk: &Bytes,
    size: usize,
) -> storage::Result<Duration> {
    let source = chunk.clone();
    let parts = size / source.len();
    let start = Instant::now();
    // A fresh buffer per chunk, as a file or socket reader makes: a
    // backend that keeps chunks by reference (S3's multipart parts do)
    // then holds real memory, not clones of one buffer.
    let body = Body::from_stream(stream::iter(
        (0..parts).map(move |_| Ok(Bytes::copy_from_slice(&source))),
    ));
    store.put(key, body, PutOptions::default()).await?;
    Ok(start.elapsed())
}

/// Reads the whole object as a stream, checking it has `size` bytes; the
/// time it took.
pub async fn read_all(store: &dyn Storage, key: &Key, size: usize) -> storage::Result<Duration> {
    let start = Instant::now();
    let mut body = store.get(key, GetOptions::default()).await?.body;
    let mut total = 0;
    while let Some(piece) = body.try_next().await? {
        total += piece.len();
    }
    assert_eq!(total, size, "the object read back has the wrong length");
    Ok(start.elapsed())
}

/// The same through object_store directly: one streamed GET of `key`,
/// checked to have `size` bytes; the time it took.
pub async fn read_all_object_store(
    store: &dyn object_store::ObjectStore,
    key: &Key,
    size: usize,
) -> object_store::Result<Duration> {
    use object_store::ObjectStoreExt;
    let start = Instant::now();
    let path = object_store::path::Path::from(key.as_str());
    let mut body = store.get(&path).await?.into_stream();
    let mut total = 0;
    while let Some(piece) = body.try_next().await? {
        total += piece.len();
    }
    assert_eq!(total, size, "the object read back has the wrong length");
    Ok(start.elapsed())
}
