//! What the conformance kit does not cover: bucket creation, batch
//! deletes, parallel reads pinned to one generation and resumed past a
//! slow reader, the error kinds of a
//! missing bucket and an unreachable server, and configuration through the
//! registry. On fake-gcs-server.

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use futures::TryStreamExt;
use storage_core::config::{ByteSize, Config, Registry};
use storage_core::conformance::pattern;
use storage_core::{ByteRange, ErrorKind, GetOptions, Key, PutOptions, Storage, collect_stream};
use storage_gcs::{GcsConfig, GcsStorage};

fn key(name: &str) -> Key {
    Key::new(format!("gcs-tests/{}/{name}", fastrand::u64(..))).unwrap()
}

fn endpoint() -> String {
    support::var("STORAGE_TEST_FAKE_GCS_ENDPOINT")
}

#[tokio::test(flavor = "multi_thread")]
async fn create_bucket_creates_once_and_then_finds_it() {
    let mut config = GcsConfig::new(format!("created-{}", fastrand::u32(..)))
        .with_base_url(endpoint())
        .anonymous();
    config.project = Some("storage-test".into());
    let store = GcsStorage::new(config).unwrap();
    assert_eq!(
        store.health().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.create_bucket().await.unwrap(), "first call creates");
    assert!(
        !store.create_bucket().await.unwrap(),
        "second call finds it"
    );
    store.health().await.unwrap();
    let key = Key::new("in-new-bucket").unwrap();
    store
        .put(&key, "x".into(), PutOptions::default())
        .await
        .unwrap();
    assert!(store.exists(&key).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn create_bucket_without_a_project_names_the_setting() {
    // `cargo xtask test` does not set GOOGLE_CLOUD_PROJECT.
    let store = GcsStorage::new(GcsConfig::new("b").with_base_url(endpoint()).anonymous()).unwrap();
    let err = store.create_bucket().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("project"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_many_removes_every_key_and_ignores_missing_ones() {
    let store = support::fake_gcs();
    let keys: Vec<Key> = (0..40).map(|i| key(&format!("many-{i:02}"))).collect();
    for key in &keys[..30] {
        store
            .put(key, "x".into(), PutOptions::default())
            .await
            .unwrap();
    }
    let results = store.delete_many(&keys).await;
    assert_eq!(results.len(), keys.len());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for key in &keys {
        assert!(!store.exists(key).await.unwrap(), "{key} is still there");
    }
}

/// Whole-object gets in parts of 256 KiB, `concurrency` transfers at once.
fn small_download_chunks(concurrency: usize) -> GcsConfig {
    small_download_chunks_at(&endpoint(), concurrency)
}

/// The same, at another address (a proxy in front of fake-gcs-server).
fn small_download_chunks_at(endpoint: &str, concurrency: usize) -> GcsConfig {
    let mut config = support::config("fake-gcs-server", endpoint);
    config.download_chunk_size = ByteSize(256 << 10);
    config.download_concurrency = concurrency;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_ranged_reads_reassemble_the_object_in_order() {
    let store = GcsStorage::new(small_download_chunks(1)).unwrap();
    let key = key("parallel.bin");
    let data = pattern(3, (3 << 20) + 17);
    store
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let got = store.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(got.range, 0..data.len() as u64);
    let bytes = collect_stream(got.body).await.unwrap();
    assert!(bytes == data, "the reassembled object differs");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_replaced_during_a_parallel_read_fails_the_read() {
    let store = GcsStorage::new(small_download_chunks(1)).unwrap();
    let key = key("replaced.bin");
    let data = pattern(4, 2 << 20);
    store
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let mut got = store.get(&key, GetOptions::default()).await.unwrap();
    // Read the first chunk (from the first answer), then replace the object.
    let mut read = 0usize;
    while read < (256 << 10) {
        read += got.body.try_next().await.unwrap().unwrap().len();
    }
    store
        .put(&key, pattern(5, 2 << 20).into(), PutOptions::default())
        .await
        .unwrap();
    let rest: Result<Vec<_>, _> = got.body.try_collect().await;
    let err = rest.expect_err("a read must not mix two versions of an object");
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert_eq!(err.key(), Some(key.as_str()));
}

/// A reader away for longer than the request timeout, in the middle of
/// a parallel get: the parts in flight are read whole meanwhile (and a
/// part whose answer timed out would be asked for again), so the read
/// completes instead of failing with `Timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_away_past_the_request_timeout_still_reads_the_whole_object() {
    let key = key("slow-reader.bin");
    let data = pattern(6, (2 << 20) + 17);
    // Written with the default timeout: only the reader's is short.
    support::fake_gcs()
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let mut config = small_download_chunks(4);
    // Short, but not so short that a loaded server misses it twice.
    config.request_timeout_secs = 2;
    let reader = GcsStorage::new(config).unwrap();
    let mut got = reader.get(&key, GetOptions::default()).await.unwrap();
    // The first piece of the first answer; then the reader is away past
    // the request timeout. The parts started beside the first answer are
    // read whole meanwhile, so none is left in its connection to time
    // out (and one that did would be asked for again).
    let mut read = got.body.try_next().await.unwrap().unwrap().to_vec();
    assert!(
        read.len() < (256 << 10),
        "the first piece was the whole chunk"
    );
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    while let Some(chunk) = got.body.try_next().await.unwrap() {
        read.extend_from_slice(&chunk);
    }
    assert!(read == data, "the object read back differs");
}

/// An answer cut mid-body (the connection dropped under one part of a
/// parallel get): the rest of that part is asked for again, from its
/// first missing byte, and the read completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_part_cut_short_is_asked_for_again_from_its_first_missing_byte() {
    let key = key("cut-part.bin");
    let data = pattern(7, (2 << 20) + 17);
    support::fake_gcs()
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    // 100 KiB into the second connection: inside a ranged part (the first
    // connection is the first answer's).
    let proxy =
        storage_core::testing::CuttingProxy::start_cutting_answers(&endpoint(), 1, 100 << 10).await;
    let reader = GcsStorage::new(small_download_chunks_at(&proxy.url, 4)).unwrap();
    let got = reader.get(&key, GetOptions::default()).await.unwrap();
    let read = collect_stream(got.body).await.unwrap();
    assert_eq!(proxy.cuts(), 1, "no answer was cut");
    assert!(read == data, "the object read back differs");
}

/// A range longer than a chunk is read in parallel parts, offset into
/// the object: exactly the range, for bounded, open and suffix ranges.
/// Each read survives a cut on its second connection, which only a get
/// in parts has.
#[tokio::test(flavor = "multi_thread")]
async fn a_range_longer_than_a_chunk_is_read_in_parts_exactly() {
    let key = key("ranged-parts.bin");
    let data = pattern(8, (3 << 20) + 17);
    let len = data.len() as u64;
    support::fake_gcs()
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    for (range, expected) in [
        (ByteRange::bounded(100_000..2_900_000), 100_000..2_900_000),
        (ByteRange::From(1_000_001), 1_000_001..len),
        (ByteRange::Suffix(2_000_000), len - 2_000_000..len),
    ] {
        let proxy =
            storage_core::testing::CuttingProxy::start_cutting_answers(&endpoint(), 1, 100 << 10)
                .await;
        let reader = GcsStorage::new(small_download_chunks_at(&proxy.url, 4)).unwrap();
        let got = reader
            .get(&key, GetOptions::default().with_range(range))
            .await
            .unwrap();
        assert_eq!(got.range, expected, "{range:?}");
        let read = collect_stream(got.body).await.unwrap();
        let wanted = &data[expected.start as usize..expected.end as usize];
        assert!(&read[..] == wanted, "{range:?}: the bytes differ");
        assert_eq!(proxy.cuts(), 1, "{range:?} was not read in parts");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_is_not_found() {
    let store = GcsStorage::new(
        GcsConfig::new("no-such-bucket-here")
            .with_base_url(endpoint())
            .anonymous(),
    )
    .unwrap();
    let key = Key::new("k").unwrap();
    let err = store.head(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = store.health().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.provider(), Some("gcs"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_unavailable_and_retryable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store =
        GcsStorage::new(support::config("gcs", &format!("http://127.0.0.1:{port}"))).unwrap();
    let key = Key::new("k").unwrap();
    let err = store
        .put(&key, "x".into(), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.key(), Some("k"));
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("Bearer") && !text.contains("PRIVATE KEY"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_file_opens_a_gcs_provider() {
    let text = format!(
        "[providers.assets]\ntype = \"gcs\"\nbucket = \"{}\"\nbase_url = \"{}\"\nservice_account_path = \"{}\"\nchunk_size = \"512KiB\"\n",
        support::var("STORAGE_TEST_GCS_BUCKET"),
        endpoint(),
        support::var("STORAGE_TEST_GCS_SERVICE_ACCOUNT"),
    );
    let config = Config::parse("storage.toml", &text).unwrap();
    let registry = Registry::with_factories(&[&storage_gcs::FACTORY]);
    let store = registry.build(&config, "assets").await.unwrap();
    assert_eq!(store.name(), "assets");
    assert!(store.capabilities().presign);
    store.health().await.unwrap();

    let bad = "[providers.assets]\ntype = \"gcs\"\nbucket = \"b\"\nchunk_size = \"300KiB\"\n";
    let config = Config::parse("storage.toml", bad).unwrap();
    let err = registry.check(&config).unwrap_err().to_string();
    assert!(
        err.starts_with("storage.toml:") && err.contains("assets") && err.contains("256 KiB"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_service_account_key_fails_at_open_naming_the_field() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("key.json");
    std::fs::write(&path, r#"{"type":"service_account","client_email":"a@b"}"#).unwrap();
    let err = GcsStorage::new(
        GcsConfig::new("b")
            .with_base_url(endpoint())
            .with_service_account_path(&path),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("private_key"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_on_a_dropped_connection_is_sent_once_more_and_a_write_is_not() {
    let direct = support::fake_gcs();
    let key = key("stale.txt");
    direct
        .put(&key, "here".into(), PutOptions::default())
        .await
        .unwrap();
    // The first request's first byte kills its connection.
    let proxy = storage_core::testing::CuttingProxy::start(&endpoint(), 1).await;
    let through = GcsStorage::new(support::config("gcs", &proxy.url)).unwrap();
    assert_eq!(through.head(&key).await.unwrap().size, 4);
    assert_eq!(proxy.cuts(), 1);

    let proxy = storage_core::testing::CuttingProxy::start(&endpoint(), 1).await;
    let through = GcsStorage::new(support::config("gcs", &proxy.url)).unwrap();
    let err = through
        .put(&key, "not twice".into(), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable(), "the retry layer may send it again");
    let got = direct.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(&got.bytes().await.unwrap()[..], b"here");
}
