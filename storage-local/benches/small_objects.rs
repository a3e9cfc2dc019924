//! Micro-benchmarks of the local backend's per-operation cost on small
//! objects: what one `get`, `head`, `exists` or `put` of 4 KiB costs when
//! the disk is not the limit (files in the page cache, no `fsync`).
//!
//! Each read runs twice: with [`LocalConfig::with_cached_reads`] on (the
//! default: the kernel's cached answer taken on the calling task) and off
//! (every operation handed to the blocking pool), so the table shows what
//! the non-waiting path saves. `local_bench` (`cargo xtask bench local`)
//! measures the same operations against raw file I/O and the anchors; this
//! is the quick loop for working on the code path itself:
//!
//! ```text
//! cargo bench -p storage-local --bench small_objects
//! ```
//!
//! The store lives under Cargo's `CARGO_TARGET_TMPDIR`, on the build disk:
//! `/tmp` is often tmpfs, where the cached path never answers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed setup ends the bench.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use storage_core::{Body, Bytes, GetOptions, Key, PutOptions, Storage};
use storage_local::{LocalConfig, LocalStorage};

const SIZE: usize = 4096;
/// Objects the reads cycle over, in 10 folders, as a small working set of
/// a real store would be spread.
const OBJECTS: usize = 200;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn keys() -> Vec<Key> {
    (0..OBJECTS)
        .map(|i| Key::new(format!("bench/{:02}/{i:04}", i % 10)).unwrap())
        .collect()
}

/// Runs `operation` on the keys in turn, `iterations` times, on one task.
fn timed<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    keys: &[Key],
    iterations: u64,
    operation: F,
) -> Duration
where
    F: Fn(Key) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime.block_on(async {
        let start = Instant::now();
        for i in 0..iterations as usize {
            operation(keys[i % keys.len()].clone()).await;
        }
        start.elapsed()
    })
}

fn reads(c: &mut Criterion) {
    let runtime = runtime();
    let folder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let keys = keys();
    let body = Bytes::from(vec![42u8; SIZE]);
    let writer = LocalStorage::open(LocalConfig::new(folder.path()).with_fsync(false)).unwrap();
    runtime.block_on(async {
        for key in &keys {
            writer
                .put(key, Body::Bytes(body.clone()), PutOptions::default())
                .await
                .unwrap();
        }
    });

    let mut group = c.benchmark_group("4 KiB reads");
    group.throughput(Throughput::Elements(1));
    for cached in [true, false] {
        let path = if cached { "cached" } else { "blocking pool" };
        let store = LocalStorage::open(
            LocalConfig::new(folder.path())
                .with_fsync(false)
                .with_cached_reads(cached),
        )
        .unwrap();
        group.bench_function(format!("get, {path}"), |b| {
            b.iter_custom(|iterations| {
                timed(&runtime, &keys, iterations, |key| {
                    let store = &store;
                    async move {
                        let result = store.get(&key, GetOptions::default()).await.unwrap();
                        let bytes = result.bytes().await.unwrap();
                        assert_eq!(bytes.len(), SIZE);
                        black_box(bytes);
                    }
                })
            })
        });
        group.bench_function(format!("head, {path}"), |b| {
            b.iter_custom(|iterations| {
                timed(&runtime, &keys, iterations, |key| {
                    let store = &store;
                    async move {
                        black_box(store.head(&key).await.unwrap());
                    }
                })
            })
        });
        group.bench_function(format!("exists, {path}"), |b| {
            b.iter_custom(|iterations| {
                timed(&runtime, &keys, iterations, |key| {
                    let store = &store;
                    async move {
                        assert!(store.exists(&key).await.unwrap());
                    }
                })
            })
        });
    }
    group.finish();
}

fn writes(c: &mut Criterion) {
    let runtime = runtime();
    let folder = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let keys = keys();
    let body = Bytes::from(vec![42u8; SIZE]);
    // No fsync: this measures the library's work, not the disk's.
    let store = LocalStorage::open(
        LocalConfig::new(folder.path())
            .with_fsync(false)
            .with_fsync_folder(false),
    )
    .unwrap();
    let mut group = c.benchmark_group("4 KiB writes");
    group.throughput(Throughput::Elements(1));
    group.bench_function("put replacing an object, no fsync", |b| {
        b.iter_custom(|iterations| {
            timed(&runtime, &keys, iterations, |key| {
                let (store, body) = (&store, body.clone());
                async move {
                    let put = store.put(&key, Body::Bytes(body), PutOptions::default());
                    black_box(put.await.unwrap());
                }
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: each iteration is microseconds, and the figures settle
    // well within a second.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = reads, writes
}
criterion_main!(benches);
