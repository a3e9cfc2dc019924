//! The resilience layers over GCS: the backend reports a 503's
//! `Retry-After` on the error it returns, and the retry layer, which waits
//! at least that long (unit-tested in storage-core), recovers from it.

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::sync::Arc;
use std::time::Duration;

use storage_core::layers::{LayersConfig, RetryConfig, stack};
use storage_core::{ErrorKind, Key, PutOptions, Storage};
use storage_gcs::GcsStorage;

fn key(name: &str) -> Key {
    Key::new(format!("gcs-layers/{}/{name}", fastrand::u64(..))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_carries_its_retry_after_on_the_error() {
    let busy =
        support::BusyFirst::start(&support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT"), 1, 7).await;
    let store = GcsStorage::new(support::config("fake-gcs-server", &busy.url)).unwrap();
    let err = store
        .put(&key("busy"), "x".into(), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.message().contains("Backend Error"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retry_layer_recovers_from_503s_with_retry_after() {
    let busy =
        support::BusyFirst::start(&support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT"), 2, 1).await;
    let store = GcsStorage::new(support::config("fake-gcs-server", &busy.url)).unwrap();
    let mut config = LayersConfig::default();
    config.retry = Some(RetryConfig::default().with_max_attempts(4));
    let layered = stack(Arc::new(store), &config).storage;
    let key = key("recovered");
    layered
        .put(&key, "after two 503s".into(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        busy.seen(),
        3,
        "two refused attempts and one that went through"
    );
    let direct = support::fake_gcs();
    let got = direct.get(&key, Default::default()).await.unwrap();
    assert_eq!(&got.bytes().await.unwrap()[..], b"after two 503s");
}
