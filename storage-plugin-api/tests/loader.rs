//! Loading plugins from disk: every broken library is refused with its
//! path and the reason, panics in a plugin come back as errors, and the
//! host keeps running through all of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::json;
use storage_core::config::{Config, Registry};
use storage_core::{Body, Bytes, ErrorKind, GetOptions, Key, PutOptions, Storage};
use storage_plugin_api::{FACTORY, Plugin, open_plugin};
use support::{plugin, plugin_dir};

fn refusal(path: &Path) -> String {
    let err = Plugin::load(path).expect_err("a broken plugin was accepted");
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the error does not name the path: {message}"
    );
    message
}

#[test]
fn a_missing_file_is_refused_by_name() {
    let path = plugin_dir().join("no-such-plugin.so");
    let message = refusal(&path);
    assert!(message.ends_with("no such file"), "{message}");
}

#[test]
fn a_bare_name_finds_the_platforms_library_file() {
    let bare = plugin_dir().join("storage-test-plugin-faulty");
    let loaded = Plugin::load(&bare).unwrap();
    assert_eq!(loaded.name(), "storage-test-plugin-faulty");
    let message = refusal(&plugin_dir().join("no-such-plugin"));
    assert!(message.contains("no such file (nor "), "{message}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let message = refusal(&plugin("not-a-library"));
    assert!(
        message.contains("cannot be loaded as a library"),
        "{message}"
    );
}

#[test]
fn a_library_without_the_declaration_is_not_a_plugin() {
    let message = refusal(&plugin("broken-not-a-plugin"));
    assert!(message.contains("not a storage plugin"), "{message}");
    assert!(
        message.contains("storage_plugin_declaration_v1"),
        "{message}"
    );
}

#[test]
fn a_plugin_of_another_abi_major_version_says_so() {
    let message = refusal(&plugin("broken-abi-v2"));
    assert!(message.contains("plugin ABI 2"), "{message}");
    assert!(message.contains("this host speaks ABI 1"), "{message}");
}

#[test]
fn a_wrong_magic_is_refused() {
    let message = refusal(&plugin("broken-bad-magic"));
    assert!(message.contains("magic"), "{message}");
}

#[test]
fn a_wrong_abi_version_in_the_declaration_is_refused() {
    let message = refusal(&plugin("broken-bad-version"));
    assert!(message.contains("plugin ABI 7"), "{message}");
}

#[test]
fn a_wrong_declaration_size_is_refused() {
    let message = refusal(&plugin("broken-bad-size"));
    assert!(message.contains("24 bytes long"), "{message}");
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused() {
    let message = refusal(&plugin("faulty-panic-abort"));
    assert!(message.contains("panic = \"abort\""), "{message}");
    assert!(message.contains("storage-test-plugin-faulty"), "{message}");
}

#[test]
fn a_good_plugin_declares_itself() {
    let loaded = Plugin::load(&plugin("storage-test-plugin-faulty")).unwrap();
    assert_eq!(loaded.name(), "storage-test-plugin-faulty");
    assert_eq!(loaded.version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(loaded.api_version(), storage_plugin_api::API_VERSION);
    assert_eq!(loaded.provider_types(), ["faulty", "memory"]);
    // Loaded once per path.
    let again = Plugin::load(&plugin("storage-test-plugin-faulty")).unwrap();
    assert!(std::ptr::eq(loaded, again));
}

async fn faulty(settings: serde_json::Value) -> storage_core::Result<Arc<dyn Storage>> {
    open_plugin(
        &plugin("storage-test-plugin-faulty"),
        Some("faulty"),
        "flaky",
        &settings,
    )
    .await
}

#[tokio::test]
async fn a_panic_in_create_is_an_error_and_the_host_goes_on() {
    let err = faulty(json!({ "panic_in_create": true }))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("panicked"), "{message}");
    assert!(message.contains("asked to panic in create"), "{message}");
    assert!(message.contains("provider \"flaky\""), "{message}");
    // Still here, and the plugin still works.
    let store = faulty(json!({})).await.unwrap();
    store
        .put(&Key::new("a").unwrap(), "x".into(), PutOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_panic_in_an_operation_is_an_error() {
    let store = faulty(json!({ "panic_in_head": true })).await.unwrap();
    let err = store.head(&Key::new("a").unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("asked to panic in head"), "{err}");
    assert_eq!(err.operation(), Some(storage_core::Operation::Head));
    assert_eq!(err.key(), Some("a"));
}

#[tokio::test]
async fn a_panic_in_the_middle_of_a_stream_ends_it_with_an_error() {
    let store = faulty(json!({ "panic_after_chunks": 2 })).await.unwrap();
    let key = Key::new("big").unwrap();
    let chunks = (0..5).map(|i| Ok(Bytes::from(vec![i as u8; 1000])));
    store
        .put(
            &key,
            Body::from_stream(futures::stream::iter(chunks)),
            PutOptions::default(),
        )
        .await
        .unwrap();
    // The memory store yields what it was given, chunk by chunk.
    let mut body = store.get(&key, GetOptions::default()).await.unwrap().body;
    assert_eq!(body.next().await.unwrap().unwrap().len(), 1000);
    assert_eq!(body.next().await.unwrap().unwrap().len(), 1000);
    let err = body.next().await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("asked to panic after 2 chunks"),
        "{err}"
    );
    assert!(
        body.next().await.is_none(),
        "the stream went on after a panic"
    );
    // The provider is still usable.
    assert!(store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn the_plugins_timers_run_on_its_own_runtime() {
    // A tokio sleep inside the plugin needs the plugin's reactor: the
    // host's is another copy of tokio that the plugin cannot see.
    let store = faulty(json!({ "sleep_ms": 20 })).await.unwrap();
    let key = Key::new("t").unwrap();
    store
        .put(&key, "tick".into(), PutOptions::default())
        .await
        .unwrap();
    let got = store
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], b"tick");
}

#[tokio::test]
async fn a_plugins_errors_keep_their_kind_and_name_the_host_provider() {
    let store = faulty(json!({})).await.unwrap();
    let err = store.head(&Key::new("missing").unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.provider(), Some("flaky"));
    assert_eq!(err.key(), Some("missing"));
}

#[tokio::test]
async fn unknown_settings_and_types_are_named() {
    let err = faulty(json!({ "panic_in_craete": true }))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("panic_in_craete"), "{err}");

    let path = plugin("storage-test-plugin-faulty");
    let err = open_plugin(&path, Some("nope"), "x", &json!({}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("it offers: faulty, memory"),
        "{err}"
    );
    let err = open_plugin(&path, None, "x", &json!({})).await.unwrap_err();
    assert!(
        err.to_string().contains("choose one with provider"),
        "{err}"
    );
}

/// Collects the host's log events.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_plugins_logs_reach_the_hosts_tracing() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    // The plugin reads the host's level when it is first loaded: this test
    // runs in its own process (an integration-test binary) only if alone,
    // so set the global default before anything loads a plugin here.
    let _ = tracing::subscriber::set_global_default(subscriber);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(faulty(json!({ "log": "hello from the plugin" })))
        .unwrap();
    let lines = captured.0.lock().unwrap().concat();
    assert!(lines.contains("hello from the plugin"), "{lines}");
    assert!(lines.contains("answer=42"), "{lines}");
    assert!(lines.contains("storage_plugin"), "{lines}");
}

#[tokio::test]
async fn a_configuration_file_selects_a_plugin_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "default = \"scratch\"\n[providers.scratch]\ntype = \"plugin\"\npath = {:?}\nprovider = \"memory\"\n",
        plugin("storage-test-plugin-faulty").display().to_string()
    );
    let path = dir.path().join("storage.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(&path).unwrap();
    let registry = Registry::with_factories(&[&FACTORY]);
    let store = registry.build(&config, "scratch").await.unwrap();
    let key = Key::new("k").unwrap();
    store
        .put(&key, "v".into(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        &store
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()[..],
        b"v"
    );
}

#[test]
fn a_broken_plugin_in_a_configuration_file_is_reported_at_its_table() {
    let toml = format!(
        "[providers.media]\ntype = \"plugin\"\npath = {:?}\n",
        plugin("broken-bad-magic").display().to_string()
    );
    let config = Config::parse("app.toml", &toml).unwrap();
    let err = Registry::with_factories(&[&FACTORY])
        .check(&config)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("app.toml:3:"), "{err}");
    assert!(err.contains("magic"), "{err}");

    let missing = "[providers.media]\ntype = \"plugin\"\npath = \"nowhere/libx.so\"\n";
    let config = Config::parse("app.toml", missing).unwrap();
    let err = Registry::with_factories(&[&FACTORY])
        .check(&config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nowhere/libx.so: no such file"), "{err}");

    let no_path = "[providers.media]\ntype = \"plugin\"\n";
    let config = Config::parse("app.toml", no_path).unwrap();
    let err = Registry::with_factories(&[&FACTORY])
        .check(&config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("path"), "{err}");
}

#[tokio::test]
async fn chunks_cross_the_boundary_without_being_copied() {
    // The plugin's memory store keeps the chunk it was given and serves
    // slices of it: if neither direction copies, the host reads back the
    // very allocation it wrote.
    let store = open_plugin(
        &plugin("storage-test-plugin-faulty"),
        Some("memory"),
        "m",
        &json!({}),
    )
    .await
    .unwrap();
    let chunk = Bytes::from(vec![5u8; 1 << 20]);
    let address = chunk.as_ptr();
    let key = Key::new("one-mib").unwrap();
    store
        .put(&key, Body::Bytes(chunk), PutOptions::default())
        .await
        .unwrap();
    let mut body = store.get(&key, GetOptions::default()).await.unwrap().body;
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(first.len(), 1 << 20);
    assert_eq!(
        first.as_ptr(),
        address,
        "a chunk was copied at the boundary"
    );
}

#[tokio::test]
async fn a_plugins_refusal_of_its_settings_never_shows_a_secret() {
    // The plugin's own parser quotes a wrongly typed value; when that value
    // came from the environment, the host masks it like its own errors.
    let toml = format!(
        "[providers.x]\ntype = \"plugin\"\npath = {:?}\nprovider = \"faulty\"\npanic_in_create = \"${{PLUGIN_SECRET}}\"\n",
        plugin("storage-test-plugin-faulty").display().to_string()
    );
    let secret = "hunter2-but-longer";
    let config = Config::parse_with("app.toml", &toml, &|name| {
        (name == "PLUGIN_SECRET").then(|| secret.to_owned())
    })
    .unwrap();
    let err = Registry::with_factories(&[&FACTORY])
        .build(&config, "x")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{message}");
    assert!(
        message.contains("panic_in_create") || message.contains("expected a boolean"),
        "{message}"
    );
    assert!(!message.contains(secret), "the secret leaked: {message}");
    assert!(
        !format!("{err:?}").contains(secret),
        "the secret leaked: {err:?}"
    );
}
