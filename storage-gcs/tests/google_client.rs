//! Interop with Google's own Python client (`google-cloud-storage`) on
//! fake-gcs-server: what this backend writes, Google's client reads back
//! byte-identical with its content type and metadata, and the reverse.
//! Small objects (one multipart request) and large ones (resumable
//! uploads) both ways.

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::process::Command;

use sha2::{Digest, Sha256};
use storage_core::config::ByteSize;
use storage_core::conformance::{chunked, pattern};
use storage_core::{Body, GetOptions, Key, PutOptions, Storage, collect_stream};
use storage_gcs::GcsStorage;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/google_client.py");

fn google_client(args: &[&str]) -> serde_json::Value {
    let output = Command::new(support::var("STORAGE_TEST_GCS_PYTHON"))
        .arg(SCRIPT)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "google_client.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn store() -> GcsStorage {
    let mut config = support::config(
        "fake-gcs-server",
        &support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT"),
    );
    config.chunk_size = ByteSize(256 << 10);
    GcsStorage::new(config).unwrap()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn googles_client_reads_what_this_backend_wrote() {
    let store = store();
    let bucket = support::var("STORAGE_TEST_GCS_BUCKET");
    let endpoint = support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT");
    for (name, size, streamed) in [
        ("interop/ours/small ü+?.txt", 1_000, false),
        ("interop/ours/large.bin", 3 << 20, true),
    ] {
        let key = Key::new(format!("{name}-{}", fastrand::u32(..))).unwrap();
        let data = pattern(size as u64, size);
        let body = if streamed {
            chunked(data.clone(), 65_536)
        } else {
            Body::from(data.clone())
        };
        let options = PutOptions::default()
            .with_content_type("text/x-interop")
            .with_cache_control("private, max-age=5")
            .with_metadata("Written-By", "storage-gcs")
            .with_metadata("ticket", "42");
        let written = store.put(&key, body, options).await.unwrap();
        let read = google_client(&["download", &endpoint, &bucket, key.as_str()]);
        assert_eq!(read["size"], size, "{name}");
        assert_eq!(read["sha256"], sha256(&data), "{name}");
        assert_eq!(read["content_type"], "text/x-interop", "{name}");
        assert_eq!(read["cache_control"], "private, max-age=5", "{name}");
        assert_eq!(read["metadata"]["Written-By"], "storage-gcs", "{name}");
        assert_eq!(read["metadata"]["ticket"], "42", "{name}");
        assert_eq!(
            read["generation"].as_str(),
            written.etag.as_deref(),
            "the etag is the generation Google's client sees"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn this_backend_reads_what_googles_client_wrote() {
    let store = store();
    let bucket = support::var("STORAGE_TEST_GCS_BUCKET");
    let endpoint = support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT");
    let folder = tempfile::tempdir().unwrap();
    for (name, size, resumable) in [
        ("interop/theirs/small ü+?.txt", 1_000, false),
        ("interop/theirs/large.bin", 3 << 20, true),
    ] {
        let key = Key::new(format!("{name}-{}", fastrand::u32(..))).unwrap();
        let data = pattern(size as u64 + 1, size);
        let file = folder.path().join("upload.bin");
        std::fs::write(&file, &data).unwrap();
        let metadata = if resumable {
            r#"{"Written-By": "google-cloud-storage", "resumable": "yes"}"#
        } else {
            r#"{"Written-By": "google-cloud-storage"}"#
        };
        let written = google_client(&[
            "upload",
            &endpoint,
            &bucket,
            key.as_str(),
            &file.display().to_string(),
            "application/x-interop",
            metadata,
        ]);
        let meta = store.head(&key).await.unwrap();
        assert_eq!(meta.size, size as u64, "{name}");
        assert_eq!(meta.content_type.as_deref(), Some("application/x-interop"));
        assert_eq!(meta.user_metadata["Written-By"], "google-cloud-storage");
        assert_eq!(meta.etag.as_deref(), written["generation"].as_str());
        let got = store.get(&key, GetOptions::default()).await.unwrap();
        assert_eq!(
            got.meta.content_type.as_deref(),
            Some("application/x-interop")
        );
        let bytes = collect_stream(got.body).await.unwrap();
        assert_eq!(sha256(&bytes), sha256(&data), "{name}: the bytes differ");
    }
}
