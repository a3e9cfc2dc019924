//! Micro-benchmarks of what the contract adds to every operation, on the
//! in-memory provider so that nothing else is measured:
//!
//! - key validation (`Key::new`), which every operation's key goes
//!   through before any I/O;
//! - the layer stack: the same `head` and 1 KiB `get` bare, with the
//!   default layers (metrics and audit), and with every layer that wraps
//!   each call (timeouts, circuit breaker, retry, metrics, audit), with
//!   audit events going nowhere and going through a formatting subscriber.
//!
//! ```text
//! cargo bench -p storage-core --bench overhead
//! ```
//!
//! The S3 bench (`cargo xtask bench s3`) shows the same stack against a
//! real server, where it is lost in the network's time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed setup ends the bench.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use storage_core::layers::{BreakerConfig, LayersConfig, RetryConfig, TimeoutConfig, stack};
use storage_core::{Body, Bytes, GetOptions, Key, MemoryStorage, PutOptions, Storage};

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("key validation");
    group.throughput(Throughput::Elements(1));
    for (name, text) in [
        ("short key", "avatars/42.png"),
        (
            "nested key, 96 bytes",
            "tenants/7f3a9c/projects/2026/reports/quarterly/finance/summary-final-v2.pdf.backup",
        ),
    ] {
        group.bench_function(name, |b| b.iter(|| Key::new(black_box(text)).unwrap()));
    }
    group.bench_function("hostile key, refused", |b| {
        b.iter(|| Key::new(black_box("uploads/../../etc/passwd")).unwrap_err())
    });
    group.finish();
}

fn layers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = Arc::new(MemoryStorage::new());
    let key = Key::new("bench/object").unwrap();
    runtime.block_on(async {
        let body = Body::Bytes(Bytes::from(vec![7u8; 1024]));
        backend
            .put(&key, body, PutOptions::default())
            .await
            .unwrap();
    });
    let bare: Arc<dyn Storage> = backend.clone();
    let defaults = stack(backend.clone(), &LayersConfig::default()).storage;
    let every = {
        let mut config = LayersConfig::default();
        config.timeout = Some(TimeoutConfig::default());
        config.retry = Some(RetryConfig::default());
        config.circuit_breaker = Some(BreakerConfig::default());
        stack(backend.clone(), &config).storage
    };

    let mut group = c.benchmark_group("layers over the memory provider");
    group.throughput(Throughput::Elements(1));
    let stacks = [
        ("bare", &bare, false),
        ("metrics + audit (default)", &defaults, false),
        ("every layer", &every, false),
        ("every layer, audit formatted", &every, true),
    ];
    for (name, storage, logged) in stacks {
        // A subscriber that formats every audit event, written nowhere:
        // the cost a service that logs its audit trail pays.
        let _subscriber = logged.then(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(std::io::sink)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_default(subscriber)
        });
        group.bench_function(format!("head, {name}"), |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        black_box(storage.head(&key).await.unwrap());
                    }
                    start.elapsed()
                })
            })
        });
        group.bench_function(format!("get 1 KiB, {name}"), |b| {
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        let result = storage.get(&key, GetOptions::default()).await.unwrap();
                        black_box(result.bytes().await.unwrap());
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = keys, layers
}
criterion_main!(benches);
