//! Metrics and audit layers over the in-memory provider.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::sync::{Arc, Mutex};

use storage_core::layers::{Audit, LayersConfig, Metrics, stack, with_caller};
use storage_core::{ErrorKind, GetOptions, Key, MemoryStorage, PutOptions, Storage};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[tokio::test]
async fn a_known_workload_gives_the_right_counts_bytes_and_errors() {
    let metrics = Metrics::new(MemoryStorage::new());
    let recorder = metrics.recorder();
    for i in 0..10 {
        let key = Key::new(format!("k{i}")).unwrap();
        metrics
            .put(&key, vec![7u8; 100].into(), PutOptions::default())
            .await
            .unwrap();
    }
    let streamed = futures::stream::iter([Ok(storage_core::Bytes::from(vec![1u8; 250]))]);
    metrics
        .put(
            &Key::new("streamed").unwrap(),
            storage_core::Body::from_stream(streamed),
            PutOptions::default(),
        )
        .await
        .unwrap();
    for i in 0..5 {
        let key = Key::new(format!("k{i}")).unwrap();
        let bytes = metrics
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len(), 100);
    }
    for i in 0..3 {
        let err = metrics
            .head(&Key::new(format!("missing{i}")).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    let snapshot = recorder.snapshot();
    assert_eq!(snapshot.provider, "memory");
    assert_eq!(snapshot.bytes_in, 1000 + 250);
    assert_eq!(snapshot.bytes_out, 500);
    let put = &snapshot.operations["put"];
    assert_eq!(put.count, 11);
    assert!(put.errors.is_empty());
    assert!(put.p50 <= put.p90 && put.p90 <= put.p99);
    assert_eq!(snapshot.operations["get"].count, 5);
    let head = &snapshot.operations["head"];
    assert_eq!(head.count, 3);
    assert_eq!(head.errors.get("not found"), Some(&3));
}

/// Collects the audit events' fields as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

struct FieldText(String);

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!("{}={} ", field.name(), value));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "storage::audit" {
            let mut text = FieldText(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
}

#[tokio::test]
async fn every_operation_is_one_audit_event_with_its_caller_and_outcome() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let store = Audit::new(MemoryStorage::with_name("media"));
    let key = Key::new("boards/1/a.png").unwrap();
    with_caller("user-42", async {
        store
            .put(&key, vec![0u8; 64].into(), PutOptions::default())
            .await
            .unwrap();
        store.get(&key, GetOptions::default()).await.unwrap();
        store.delete(&key).await.unwrap();
        store.head(&key).await.unwrap_err();
    })
    .await;
    let events = captured.0.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(
        events[0].contains("operation=put") && events[0].contains("size=64"),
        "{}",
        events[0]
    );
    assert!(events[0].contains("provider=media") && events[0].contains("key=boards/1/a.png"));
    assert!(
        events.iter().all(|e| e.contains("caller=user-42 ")),
        "{events:#?}"
    );
    assert!(events[0].contains("outcome=ok"));
    assert!(
        events[3].contains("operation=head") && events[3].contains("outcome=not found"),
        "{}",
        events[3]
    );
    assert!(events.iter().all(|e| e.contains("duration_ms=")));
}

#[tokio::test]
async fn stack_puts_audit_and_metrics_around_everything_by_default() {
    let stacked = stack(Arc::new(MemoryStorage::new()), &LayersConfig::default());
    let recorder = stacked.metrics.expect("metrics on by default");
    stacked
        .storage
        .put(&Key::new("x").unwrap(), "abc".into(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(recorder.snapshot().operations["put"].count, 1);
    assert!(stacked.breaker.is_none());
}
