//! The resilience layers against injected faults: a proxy between the S3
//! client and moto fails requests at random (seeded), resets connections,
//! truncates and stalls bodies. Data must never be lost, duplicated or
//! returned short or wrong.

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use storage_core::conformance::pattern;
use storage_core::layers::{
    BreakerConfig, BreakerState, CircuitBreaker, LayersConfig, Retry, RetryConfig, TimeoutConfig,
    Timeouts, stack,
};
use storage_core::{
    ErrorKind, GetOptions, Key, ListEntry, ListOptions, Prefix, PutOptions, Storage,
};
use storage_s3::{S3Config, S3Storage};
use support::{FaultProxy, Faults, var};

/// The seed of this run's faults: `STORAGE_TEST_FAULT_SEED`, or a fixed one.
fn seed() -> u64 {
    std::env::var("STORAGE_TEST_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261123)
}

/// The share of requests that fail in the random-fault test:
/// `STORAGE_TEST_FAULT_RATE` (0.0 to 0.9), or 0.30. Half are 503s (some
/// with Retry-After), the rest split between resets, truncated and
/// stalled bodies.
fn fault_rate() -> f64 {
    std::env::var("STORAGE_TEST_FAULT_RATE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(|rate| rate.clamp(0.0, 0.9))
        .unwrap_or(0.30)
}

/// An S3 client through `proxy` with object_store's own retries off, so
/// the layers under test do all the recovering.
fn through(proxy: &FaultProxy) -> S3Storage {
    let mut config = S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
        .with_name("moto-through-faults")
        .with_endpoint(&proxy.url, true)
        .with_region("us-east-1")
        .with_credentials("k", "s");
    config.max_retries = 0;
    config.request_timeout_secs = 10;
    S3Storage::new(config).unwrap()
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("layers/{nanos:x}/{name}")
}

fn resilient(store: S3Storage) -> Arc<dyn Storage> {
    let mut config = LayersConfig::default();
    config.timeout = Some(TimeoutConfig::new(
        Duration::from_secs(10),
        Duration::from_secs(2),
    ));
    config.retry = Some(
        RetryConfig::default()
            .with_max_attempts(12)
            .with_base_delay(Duration::from_millis(5)),
    );
    stack(Arc::new(store), &config).storage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_30_percent_of_requests_failing_1000_puts_and_gets_are_all_correct() {
    let rate = fault_rate();
    let faults = Faults {
        unavailable: rate / 2.0,
        reset: rate / 6.0,
        truncate: rate / 6.0,
        stall: rate / 6.0,
        seed: seed(),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), faults).await;
    let store = resilient(through(&proxy));
    let base = unique("many");
    let keys: Vec<(Key, usize)> = (0..1000)
        .map(|i| {
            (
                Key::new(format!("{base}/{i:04}")).unwrap(),
                1 + (i * 977) % 70_000,
            )
        })
        .collect();
    stream::iter(&keys)
        .map(|(key, len)| {
            let store = store.clone();
            async move {
                store
                    .put(
                        key,
                        pattern(*len as u64, *len).into(),
                        PutOptions::default(),
                    )
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    stream::iter(&keys)
        .map(|(key, len)| {
            let store = store.clone();
            async move {
                let bytes = store.get(key, GetOptions::default()).await?.bytes().await?;
                assert!(bytes == pattern(*len as u64, *len), "{key} read back wrong");
                Ok::<_, storage_core::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let listed: Vec<ListEntry> = store
        .list(
            &Prefix::new(format!("{base}/")).unwrap(),
            ListOptions::default(),
        )
        .try_collect()
        .await
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|e| e.name()).collect();
    let expected: Vec<String> = keys.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(names, expected, "keys lost or duplicated");
    let injected = proxy.faults_injected();
    let requests = proxy.requests();
    // Truncation and stalls only hit GETs, so somewhat fewer than the
    // nominal rate are injected.
    assert!(
        injected as f64 >= requests as f64 * rate * 2.0 / 3.0,
        "too few faults: {injected} of {requests} at rate {rate}"
    );
    eprintln!(
        "faults injected: {injected} of {requests} requests (seed {}, rate {rate})",
        seed()
    );
}

#[tokio::test]
async fn a_stalled_download_times_out_instead_of_hanging() {
    let key = Key::new(unique("stalled")).unwrap();
    let direct = S3Storage::new(
        S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
            .with_endpoint(var("STORAGE_TEST_MOTO_ENDPOINT"), true)
            .with_region("us-east-1")
            .with_credentials("k", "s"),
    )
    .unwrap();
    direct
        .put(&key, pattern(3, 200_000).into(), PutOptions::default())
        .await
        .unwrap();
    let faults = Faults {
        stall: 1.0,
        seed: seed(),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), faults).await;
    let store = Timeouts::new(
        through(&proxy),
        TimeoutConfig::new(Duration::from_secs(5), Duration::from_millis(500)),
    );
    let read = async { store.get(&key, GetOptions::default()).await?.bytes().await };
    let err = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the stalled download hung")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_truncated_download_is_resumed_or_reported_never_returned_short() {
    let key = Key::new(unique("truncated")).unwrap();
    let data = pattern(5, 3 << 20);
    let direct = S3Storage::new(
        S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
            .with_endpoint(var("STORAGE_TEST_MOTO_ENDPOINT"), true)
            .with_region("us-east-1")
            .with_credentials("k", "s"),
    )
    .unwrap();
    direct
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();

    // Every answer is cut: without retries the read fails, never short.
    let always = Faults {
        truncate: 1.0,
        seed: seed(),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), always).await;
    let plain = through(&proxy);
    let read = async { plain.get(&key, GetOptions::default()).await?.bytes().await };
    assert!(
        read.await.is_err(),
        "a truncated body was returned as if whole"
    );

    // Half the answers are cut: with Retry the read resumes and is whole.
    let half = Faults {
        truncate: 0.5,
        seed: seed(),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), half).await;
    let retried = Retry::new(
        through(&proxy),
        RetryConfig::default()
            .with_max_attempts(20)
            .with_base_delay(Duration::from_millis(5)),
    );
    for _ in 0..5 {
        let bytes = retried
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(bytes == data, "a resumed download differs from the object");
    }
    assert!(proxy.faults_injected() > 0);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), Faults::default()).await;
    let breaker = CircuitBreaker::new(
        through(&proxy),
        BreakerConfig::new(0.5, 10, 4, Duration::from_millis(400)),
    );
    let handle = breaker.handle();
    let key = Key::new(unique("breaker")).unwrap();
    assert_eq!(handle.state(), BreakerState::Closed);

    proxy.set_down(true);
    for _ in 0..4 {
        let err = breaker.head(&key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
    assert_eq!(handle.state(), BreakerState::Open);
    let before = proxy.requests();
    let err = breaker.head(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        !err.is_retryable(),
        "an open breaker's answer must not be retried"
    );
    assert!(err.message().contains("circuit breaker is open"), "{err}");
    assert_eq!(
        proxy.requests(),
        before,
        "an open breaker still called the backend"
    );

    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(handle.state(), BreakerState::HalfOpen);
    // The probe fails: open again.
    assert!(breaker.head(&key).await.is_err());
    assert_eq!(handle.state(), BreakerState::Open);

    proxy.set_down(false);
    tokio::time::sleep(Duration::from_millis(450)).await;
    // The probe succeeds (NotFound is a healthy answer): closed.
    let answer = breaker.head(&key).await.unwrap_err();
    assert_eq!(answer.kind(), ErrorKind::NotFound);
    assert_eq!(handle.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_one_shot_stream_is_not_retried_and_says_so() {
    let faults = Faults {
        unavailable: 1.0,
        seed: seed(),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), faults).await;
    let store = Retry::new(
        through(&proxy),
        RetryConfig::default().with_base_delay(Duration::from_millis(1)),
    );
    let key = Key::new(unique("one-shot")).unwrap();
    let body = storage_core::Body::from_stream(stream::iter([Ok(
        storage_core::Bytes::from_static(b"once"),
    )]));
    let err = store
        .put(&key, body, PutOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains("not retried: the body was a one-shot stream"),
        "{err}"
    );
    assert_eq!(proxy.requests(), 1, "a one-shot stream was sent twice");
}

#[tokio::test]
async fn fallback_serves_reads_and_takes_writes_while_the_primary_is_down() {
    use storage_core::config::{Config, Registry};
    use storage_core::manager::{ArtifactSpec, Manager};

    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), Faults::default()).await;
    let bucket = var("STORAGE_TEST_S3_BUCKET");
    // The primary reaches moto through the proxy, the backup directly: the
    // same bucket, as a replicated backup would hold the same data.
    let text = format!(
        "default = \"primary\"\n\
         [providers.primary]\ntype = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{}\"\nallow_http = true\n\
         region = \"us-east-1\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\nmax_retries = 0\n\
         [providers.primary.layers]\nfallback = {{ providers = [\"backup\"], writes = true }}\n\
         [providers.backup]\ntype = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{}\"\nallow_http = true\n\
         region = \"us-east-1\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n",
        proxy.url,
        var("STORAGE_TEST_MOTO_ENDPOINT")
    );
    let config = Config::parse("storage.toml", &text).unwrap();
    let registry = Registry::with_factories(&[&storage_s3::FACTORY]);
    let manager = Manager::from_config(&config, &registry).await.unwrap();
    let board = unique("board").replace('/', "-");

    let before = manager
        .store(
            &ArtifactSpec::new("t", "doc", &board, "before"),
            "stored while up".into(),
        )
        .await
        .unwrap();
    assert_eq!(before.provider, "primary");

    proxy.set_down(true);
    let read = manager
        .open(&before, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        &read[..],
        b"stored while up",
        "the fallback did not serve the read"
    );
    let during = manager
        .store(
            &ArtifactSpec::new("t", "doc", &board, "during"),
            "stored while down".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        during.provider, "backup",
        "the reference must name where the data went"
    );
    let read = manager
        .open(&during, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&read[..], b"stored while down");

    proxy.set_down(false);
    let after = manager
        .store(
            &ArtifactSpec::new("t", "doc", &board, "after"),
            "stored when back".into(),
        )
        .await
        .unwrap();
    assert_eq!(after.provider, "primary");
}
