//! Resumable uploads against both emulators, and resumption after a
//! dropped connection against gcp-storage-emulator (fake-gcs-server's
//! status query wrongly finalizes the upload, so resumption cannot be
//! tested there).

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use futures::{StreamExt, stream};
use storage_core::config::ByteSize;
use storage_core::conformance::{chunked, pattern};
use storage_core::{Body, ErrorKind, GetOptions, Key, PutOptions, Storage, collect_stream};
use storage_gcs::{GcsConfig, GcsStorage};

const CHUNK: u64 = 256 << 10;

fn key(name: &str) -> Key {
    Key::new(format!("resumable/{}/{name}", fastrand::u64(..))).unwrap()
}

fn small_chunks(mut config: GcsConfig) -> GcsStorage {
    config.chunk_size = ByteSize(CHUNK);
    config.download_chunk_size = ByteSize(CHUNK);
    GcsStorage::new(config).unwrap()
}

async fn round_trip(store: &GcsStorage, size: usize) {
    let key = key("object.bin");
    let data = pattern(size as u64, size);
    let options = PutOptions::default()
        .with_content_type("application/x-test")
        .with_metadata("origin", "resumable");
    let written = store
        .put(&key, chunked(data.clone(), 100_003), options)
        .await
        .unwrap();
    assert_eq!(written.size, size as u64);
    let meta = store.head(&key).await.unwrap();
    assert_eq!(meta.size, size as u64);
    assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(meta.user_metadata["origin"], "resumable");
    assert_eq!(meta.etag, written.etag);
    let got = store.get(&key, GetOptions::default()).await.unwrap();
    let bytes = collect_stream(got.body).await.unwrap();
    assert!(
        bytes == data,
        "the object read back differs from what was written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_length_streams_upload_in_chunks_on_gcp_storage_emulator() {
    let store = small_chunks(support::config(
        "gcp-storage-emulator",
        &support::var("STORAGE_TEST_GCS_EMULATOR_ENDPOINT"),
    ));
    // Several whole chunks and a partial last one; exactly whole chunks.
    round_trip(&store, (3 * CHUNK + 12_345) as usize).await;
    round_trip(&store, (4 * CHUNK) as usize).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_length_streams_upload_in_chunks_on_fake_gcs_server() {
    let store = small_chunks(support::config(
        "fake-gcs-server",
        &support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT"),
    ));
    round_trip(&store, (3 * CHUNK + 12_345) as usize).await;
    round_trip(&store, (4 * CHUNK) as usize).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_mid_upload_resumes_instead_of_restarting() {
    let size = 6 * CHUNK + 777;
    // Cut inside the third chunk's request.
    let proxy = storage_core::testing::CuttingProxy::start(
        &support::var("STORAGE_TEST_GCS_EMULATOR_ENDPOINT"),
        2 * CHUNK + CHUNK / 2,
    )
    .await;
    let store = small_chunks(support::config("gcp-storage-emulator", &proxy.url));
    let key = key("resumed.bin");
    let data = pattern(9, size as usize);
    store
        .put(&key, chunked(data.clone(), 100_003), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        proxy.cuts(),
        1,
        "the proxy should have dropped one connection"
    );
    // Headers and the resent part of one chunk on top of the object: a
    // restart would have sent the first chunks again.
    let overhead = proxy.sent() - size;
    assert!(
        overhead < CHUNK,
        "sent {} bytes for a {size}-byte object: the upload restarted instead of resuming",
        proxy.sent()
    );
    let direct = support::emulator();
    let got = direct.get(&key, GetOptions::default()).await.unwrap();
    let bytes = collect_stream(got.body).await.unwrap();
    assert!(
        bytes == data,
        "the resumed object differs from what was written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_mid_upload_leaves_the_previous_object() {
    let store = small_chunks(support::config(
        "gcp-storage-emulator",
        &support::var("STORAGE_TEST_GCS_EMULATOR_ENDPOINT"),
    ));
    let key = key("kept.bin");
    store
        .put(&key, "previous".into(), PutOptions::default())
        .await
        .unwrap();
    let good = stream::iter((0..5).map(|i| Ok(pattern(i, CHUNK as usize))));
    let failing = good.chain(stream::once(async {
        Err(storage_core::Error::new(
            ErrorKind::Other,
            "the source broke",
        ))
    }));
    let err = store
        .put(&key, Body::from_stream(failing), PutOptions::default())
        .await
        .unwrap_err();
    assert!(err.message().contains("the source broke"), "{err}");
    let got = store.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(&collect_stream(got.body).await.unwrap()[..], b"previous");
}
