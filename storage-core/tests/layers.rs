//! Metrics and audit layers over the in-memory provider.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::sync::{Arc, Mutex};

use storage_core::layers::{Audit, LayersConfig, Metrics, stack, with_caller};
use storage_core::{ErrorKind, GetOptions, Key, MemoryStorage, PutOptions, Storage};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Tests that emit audit events take turns. `tracing` caches, per event
/// site, whether anyone listens, computed when the site is first hit; a
/// site first hit on another test's thread while a test installs its
/// subscriber can keep a stale "nobody" and that test then misses events
/// (seen once in CI: one audit event of four captured).
static AUDIT_EVENTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// A `metrics` recorder that keeps each counter's total and each
/// histogram's sample count, by name and labels (`name{a=1,b=2}`).
#[derive(Default)]
struct FacadeTotals {
    counters: Mutex<std::collections::BTreeMap<String, Arc<std::sync::atomic::AtomicU64>>>,
    histograms: Mutex<std::collections::BTreeMap<String, Arc<SampleCount>>>,
}

#[derive(Default)]
struct SampleCount(std::sync::atomic::AtomicU64);

impl metrics::HistogramFn for SampleCount {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn facade_name(key: &metrics::Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl FacadeTotals {
    fn counter(&self, name: &str) -> u64 {
        let counters = self.counters.lock().unwrap();
        counters
            .get(name)
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
    fn samples(&self, name: &str) -> u64 {
        let histograms = self.histograms.lock().unwrap();
        histograms
            .get(name)
            .map_or(0, |h| h.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl metrics::Recorder for FacadeTotals {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut counters = self.counters.lock().unwrap();
        metrics::Counter::from_arc(counters.entry(facade_name(key)).or_default().clone())
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        metrics::Histogram::from_arc(histograms.entry(facade_name(key)).or_default().clone())
    }
}

#[test]
fn the_metrics_facade_gets_counts_latencies_bytes_and_errors_by_label() {
    let totals = FacadeTotals::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // The recorder is this thread's for the closure, and the runtime runs
    // every call on this thread.
    metrics::with_local_recorder(&totals, || {
        runtime.block_on(async {
            let metrics = Metrics::new(MemoryStorage::new());
            for i in 0..4 {
                let key = Key::new(format!("k{i}")).unwrap();
                metrics
                    .put(&key, vec![7u8; 100].into(), PutOptions::default())
                    .await
                    .unwrap();
            }
            let result = metrics
                .get(&Key::new("k0").unwrap(), GetOptions::default())
                .await
                .unwrap();
            assert_eq!(result.bytes().await.unwrap().len(), 100);
            for _ in 0..2 {
                let missing = Key::new("missing").unwrap();
                assert!(metrics.head(&missing).await.is_err());
            }
        })
    });
    let ops = |op: &str| format!("storage_operations_total{{provider=memory,operation={op}}}");
    assert_eq!(totals.counter(&ops("put")), 4);
    assert_eq!(totals.counter(&ops("get")), 1);
    assert_eq!(totals.counter(&ops("head")), 2);
    assert_eq!(
        totals.samples("storage_operation_seconds{provider=memory,operation=put}"),
        4
    );
    assert_eq!(
        totals.counter("storage_errors_total{provider=memory,operation=head,kind=not found}"),
        2
    );
    assert_eq!(
        totals.counter("storage_bytes_total{provider=memory,direction=in}"),
        400
    );
    assert_eq!(
        totals.counter("storage_bytes_total{provider=memory,direction=out}"),
        100
    );
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
    let _turn = AUDIT_EVENTS.lock().await;
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
    let _turn = AUDIT_EVENTS.lock().await;
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

mod validation {
    use super::*;
    use storage_core::config::ByteSize;
    use storage_core::layers::{Scanner, Upload, Validation, ValidationConfig};

    /// The start of a Linux executable.
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00";

    fn config() -> ValidationConfig {
        let mut config = ValidationConfig::default();
        config.max_size = Some(ByteSize(1 << 20));
        config.allowed_content_types = vec!["image/*".into(), "application/pdf".into()];
        config.allowed_extensions = vec!["png".into(), "jpg".into(), "pdf".into()];
        config
    }

    async fn refused(
        store: &dyn Storage,
        key: &str,
        body: storage_core::Body,
        content_type: &str,
    ) -> String {
        let key = Key::new(key).unwrap();
        let err = store
            .put(
                &key,
                body,
                PutOptions::default().with_content_type(content_type),
            )
            .await
            .unwrap_err();
        assert!(
            !store.exists(&key).await.unwrap(),
            "a refused upload was stored"
        );
        err.to_string()
    }

    #[tokio::test]
    async fn an_executable_declared_as_png_is_refused_and_not_stored() {
        let store = Validation::new(MemoryStorage::new(), config());
        let mut bytes = ELF.to_vec();
        bytes.resize(4096, 0);
        let err = refused(&store, "avatar.png", bytes.clone().into(), "image/png").await;
        assert!(
            err.contains("declared image/png but its bytes are application/x-executable"),
            "{err}"
        );
        // Streamed too.
        let streamed = storage_core::Body::from_stream(futures::stream::iter([Ok(
            storage_core::Bytes::from(bytes),
        )]));
        let err = refused(&store, "avatar2.png", streamed, "image/png").await;
        assert!(err.contains("application/x-executable"), "{err}");
    }

    #[tokio::test]
    async fn size_type_and_extension_limits_are_enforced() {
        let store = Validation::new(MemoryStorage::new(), config());
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        store
            .put(
                &Key::new("ok.png").unwrap(),
                png.clone().into(),
                PutOptions::default().with_content_type("image/png"),
            )
            .await
            .unwrap();
        let err = refused(&store, "tool.exe", png.clone().into(), "image/png").await;
        assert!(err.contains("extension \"exe\" is not allowed"), "{err}");
        let err = refused(&store, "notes.pdf", "plain text".into(), "text/plain").await;
        assert!(
            err.contains("content type text/plain is not allowed"),
            "{err}"
        );
        let big = futures::stream::iter(
            (0..3).map(|_| Ok(storage_core::Bytes::from(vec![0u8; 600_000]))),
        );
        let err = refused(
            &store,
            "huge.png",
            storage_core::Body::from_stream(big),
            "image/png",
        )
        .await;
        assert!(err.contains("larger than the 1048576-byte limit"), "{err}");
    }

    #[derive(Debug)]
    struct RefusesEicar;

    #[storage_core::async_trait]
    impl Scanner for RefusesEicar {
        async fn scan(&self, upload: &Upload<'_>) -> storage_core::Result<()> {
            let content = std::fs::read(upload.path).unwrap();
            if content.windows(5).any(|w| w == b"EICAR") {
                return Err(storage_core::Error::new(
                    ErrorKind::PermissionDenied,
                    "malware found: EICAR test signature",
                ));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_scanner_sees_the_whole_upload_and_can_refuse_it() {
        let store = Validation::new(MemoryStorage::new(), ValidationConfig::default())
            .with_scanner(Arc::new(RefusesEicar));
        let mut infected = vec![b'x'; 3 << 20];
        infected.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE");
        let err = refused(&store, "report.pdf", infected.into(), "application/pdf").await;
        assert!(err.contains("malware found"), "{err}");
        let clean = Key::new("clean.bin").unwrap();
        store
            .put(&clean, vec![1u8; 3 << 20].into(), PutOptions::default())
            .await
            .unwrap();
        let bytes = store
            .get(&clean, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len(), 3 << 20);
    }
}

/// A provider whose own health probe fails in a way the default probe
/// (an `exists` check) would not notice.
#[derive(Debug)]
struct SickBucket(MemoryStorage);

#[storage_core::async_trait]
impl Storage for SickBucket {
    fn name(&self) -> &str {
        "sick"
    }
    fn capabilities(&self) -> storage_core::Capabilities {
        self.0.capabilities()
    }
    async fn put(
        &self,
        key: &Key,
        body: storage_core::Body,
        options: PutOptions,
    ) -> storage_core::Result<storage_core::PutResult> {
        self.0.put(key, body, options).await
    }
    async fn get(
        &self,
        key: &Key,
        options: GetOptions,
    ) -> storage_core::Result<storage_core::GetResult> {
        self.0.get(key, options).await
    }
    async fn head(&self, key: &Key) -> storage_core::Result<storage_core::ObjectMeta> {
        self.0.head(key).await
    }
    async fn delete(&self, key: &Key) -> storage_core::Result<bool> {
        self.0.delete(key).await
    }
    fn list(
        &self,
        prefix: &storage_core::Prefix,
        options: storage_core::ListOptions,
    ) -> storage_core::ListStream {
        self.0.list(prefix, options)
    }
    async fn health(&self) -> storage_core::Result<()> {
        Err(storage_core::Error::new(
            ErrorKind::NotFound,
            "the bucket does not exist",
        ))
    }
}

#[tokio::test]
async fn every_layer_passes_the_backends_own_health_probe_through() {
    let _turn = AUDIT_EVENTS.lock().await;
    let mut config = LayersConfig::default();
    config.timeout = Some(storage_core::layers::TimeoutConfig::default());
    config.retry = Some(storage_core::layers::RetryConfig::default());
    config.circuit_breaker = Some(storage_core::layers::BreakerConfig::default());
    config.validation = Some(storage_core::layers::ValidationConfig::default());
    let stacked = stack(Arc::new(SickBucket(MemoryStorage::new())), &config).storage;
    let err = stacked.health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("bucket does not exist"), "{err}");
    let fallback =
        storage_core::layers::Fallback::new(stacked, vec![Arc::new(MemoryStorage::new())], true);
    let err = fallback.health().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "a fallback must not hide the primary's health: {err}"
    );
}
