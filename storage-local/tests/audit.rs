//! Audit events of a presigning backend carry no signature, and errors
//! and Debug output carry no signing secret.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage_core::layers::Audit;
use storage_core::{Key, PresignMethod, PutOptions, Storage};
use storage_local::{LocalConfig, LocalStorage};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<String>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut out = self.0.lock().unwrap();
        event.record(&mut Text(&mut out));
        out.push('\n');
    }
}

#[tokio::test]
async fn audit_lines_errors_and_debug_hold_no_signature_or_secret() {
    let captured = Captured::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(captured.clone()));
    let folder = tempfile::tempdir().unwrap();
    let secret = "audit-test-signing-secret-0123";
    let url = "http://127.0.0.1:9/files".parse().unwrap();
    let store = Audit::new(
        LocalStorage::open(LocalConfig::new(folder.path()).with_presign(url, secret)).unwrap(),
    );
    let key = Key::new("shared/photo.jpg").unwrap();
    store
        .put(&key, "x".into(), PutOptions::default())
        .await
        .unwrap();
    let signed = store
        .presign(
            PresignMethod::Get,
            &key,
            Duration::from_secs(60),
            Default::default(),
        )
        .await
        .unwrap();
    let signature = signed
        .url
        .query_pairs()
        .find(|(k, _)| k == "signature")
        .unwrap()
        .1
        .into_owned();
    let err = store
        .presign(
            PresignMethod::Get,
            &key,
            Duration::from_secs(30 * 24 * 3600),
            Default::default(),
        )
        .await
        .unwrap_err();
    let logged = captured.0.lock().unwrap().clone();
    assert!(logged.contains("operation=\"presign\""), "{logged}");
    for text in [
        logged,
        err.to_string(),
        format!("{err:?}"),
        format!("{store:?}"),
    ] {
        assert!(!text.contains(&signature), "a signature leaked: {text}");
        assert!(!text.contains(secret), "the secret leaked: {text}");
    }
}
