//! S3 behaviour beyond the shared kit, against the servers `cargo xtask
//! test` starts: multipart uploads and their cleanup, parallel downloads
//! (and their parts asked for again past a slow reader), batched deletes,
//! and errors from a real server.

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use storage_core::conformance::pattern;
use storage_core::{Body, ByteRange, Bytes, ErrorKind, GetOptions, Key, PutOptions, Storage};
use storage_s3::{S3Config, S3Storage};
use support::{FaultProxy, Faults, var};

fn moto_config() -> S3Config {
    moto_config_at(&var("STORAGE_TEST_MOTO_ENDPOINT"))
}

/// moto's configuration with another address (a proxy in front of it).
fn moto_config_at(endpoint: &str) -> S3Config {
    let mut config = S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
        .with_name("moto")
        .with_endpoint(endpoint, true)
        .with_region("us-east-1")
        .with_credentials("moto-key", "moto-secret");
    config.max_retries = 1;
    config
}

/// moto's configuration at `endpoint` with small download chunks (256
/// KiB, four transfers), so that a few MiB is a get in parts.
fn small_download_chunks_at(endpoint: &str) -> S3Config {
    let mut config = moto_config_at(endpoint);
    config.download_chunk_size = storage_core::config::ByteSize(256 << 10);
    config.download_concurrency = 4;
    config
}

fn moto() -> S3Storage {
    S3Storage::new(moto_config()).unwrap()
}

/// A reader of moto in small download chunks through a proxy that cuts
/// its second connection's answer 100 KiB in: inside a ranged part (the
/// first connection is the first answer's). Its retries are off, so only
/// the backend's own re-request of the cut part can complete a read.
async fn reader_cut_inside_a_part() -> (storage_core::testing::CuttingProxy, S3Storage) {
    let proxy = storage_core::testing::CuttingProxy::start_cutting_answers(
        &var("STORAGE_TEST_MOTO_ENDPOINT"),
        1,
        100 << 10,
    )
    .await;
    let mut config = small_download_chunks_at(&proxy.url);
    config.max_retries = 0;
    let reader = S3Storage::new(config).unwrap();
    (proxy, reader)
}

fn s3s_fs_with_secret(secret: &str) -> S3Storage {
    let mut config = S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
        .with_name("s3s-fs")
        .with_endpoint(var("STORAGE_TEST_S3S_ENDPOINT"), true)
        .with_region("us-east-1")
        .with_credentials(var("STORAGE_TEST_S3S_ACCESS_KEY"), secret);
    config.max_retries = 1;
    S3Storage::new(config).unwrap()
}

fn s3s_fs() -> S3Storage {
    s3s_fs_with_secret(&var("STORAGE_TEST_S3S_SECRET_KEY"))
}

fn unique(name: &str) -> Key {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Key::new(format!("s3-tests/{nanos:x}/{name}")).unwrap()
}

/// `len` bytes in chunks of `chunk`, as a stream of unknown length.
fn streamed(data: Bytes, chunk: usize) -> Body {
    let chunks: Vec<storage_core::Result<Bytes>> = (0..data.len())
        .step_by(chunk)
        .map(|start| Ok(data.slice(start..(start + chunk).min(data.len()))))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

async fn multipart_round_trip(store: S3Storage) {
    let key = unique("multipart.bin");
    let data = pattern(31, (21 << 20) + 4321);
    let options = PutOptions::default()
        .with_content_type("video/mp4")
        .with_metadata("origin", "multipart");
    let written = store
        .put(&key, streamed(data.clone(), 1 << 20), options)
        .await
        .unwrap();
    assert_eq!(written.size, data.len() as u64);
    // A whole-object get of 21 MiB is three parallel ranged GETs.
    let got = store.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(got.meta.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(
        got.meta.user_metadata.get("origin").map(String::as_str),
        Some("multipart")
    );
    assert_eq!(got.range, 0..data.len() as u64);
    let bytes = got.bytes().await.unwrap();
    assert!(bytes == data, "the multipart object read back differs");
    assert!(store.delete(&key).await.unwrap());
}

#[tokio::test]
async fn a_long_stream_is_a_multipart_upload_that_reads_back_whole_on_moto() {
    multipart_round_trip(moto()).await;
}

#[tokio::test]
async fn a_long_stream_is_a_multipart_upload_that_reads_back_whole_on_s3s_fs() {
    multipart_round_trip(s3s_fs()).await;
}

/// A reader away for longer than the request timeout, in the middle of
/// a parallel get: the parts in flight are read whole meanwhile (and a
/// part whose answer timed out would be asked for again), so the read
/// completes instead of failing with `Timeout`.
#[tokio::test]
async fn a_reader_away_past_the_request_timeout_still_reads_the_whole_object() {
    let writer = moto();
    let key = unique("slow-reader.bin");
    let data = pattern(32, (2 << 20) + 17);
    writer
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let mut config = small_download_chunks_at(&var("STORAGE_TEST_MOTO_ENDPOINT"));
    // Short, but not so short that a loaded server misses it twice.
    config.request_timeout_secs = 2;
    let reader = S3Storage::new(config).unwrap();
    let mut got = reader.get(&key, GetOptions::default()).await.unwrap();
    // The first piece of the first answer; then the reader is away past
    // the request timeout. The parts started beside the first answer are
    // read whole meanwhile, so none is left in its connection to time
    // out (and one that did would be asked for again).
    let mut read = got.body.next().await.unwrap().unwrap().to_vec();
    assert!(
        read.len() < (256 << 10),
        "the first piece was the whole chunk"
    );
    tokio::time::sleep(Duration::from_millis(4500)).await;
    while let Some(chunk) = got.body.next().await {
        read.extend_from_slice(&chunk.unwrap());
    }
    assert!(read == data, "the object read back differs");
    assert!(writer.delete(&key).await.unwrap());
}

/// An answer cut mid-body (the connection dropped under one part of a
/// parallel get): the rest of that part is asked for again, from its
/// first missing byte, and the read completes.
#[tokio::test]
async fn a_part_cut_short_is_asked_for_again_from_its_first_missing_byte() {
    let writer = moto();
    let key = unique("cut-part.bin");
    let data = pattern(33, (2 << 20) + 17);
    writer
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let (proxy, reader) = reader_cut_inside_a_part().await;
    let got = reader.get(&key, GetOptions::default()).await.unwrap();
    let read = storage_core::collect_stream(got.body).await.unwrap();
    assert_eq!(proxy.cuts(), 1, "no answer was cut");
    assert!(read == data, "the object read back differs");
    assert!(writer.delete(&key).await.unwrap());
}

/// A range longer than a chunk is read in parallel parts, offset into
/// the object: exactly the range, for bounded, open and suffix ranges.
/// Each read survives a cut on its second connection, which only a get
/// in parts has.
#[tokio::test]
async fn a_range_longer_than_a_chunk_is_read_in_parts_exactly() {
    let writer = moto();
    let key = unique("ranged-parts.bin");
    let data = pattern(34, (3 << 20) + 17);
    let len = data.len() as u64;
    writer
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    for (range, expected) in [
        (ByteRange::bounded(100_000..2_900_000), 100_000..2_900_000),
        (ByteRange::From(1_000_001), 1_000_001..len),
        (ByteRange::Suffix(2_000_000), len - 2_000_000..len),
    ] {
        let (proxy, reader) = reader_cut_inside_a_part().await;
        let got = reader
            .get(&key, GetOptions::default().with_range(range))
            .await
            .unwrap();
        assert_eq!(got.range, expected, "{range:?}");
        let read = storage_core::collect_stream(got.body).await.unwrap();
        let wanted = &data[expected.start as usize..expected.end as usize];
        assert!(&read[..] == wanted, "{range:?}: the bytes differ");
        assert_eq!(proxy.cuts(), 1, "{range:?} was not read in parts");
    }
    assert!(writer.delete(&key).await.unwrap());
}

/// The uploads in progress on moto for `key` (ListMultipartUploads; moto
/// checks no signature in its default mode).
async fn uploads_in_progress(key: &Key) -> usize {
    let url = format!(
        "{}/{}?uploads&prefix={}",
        var("STORAGE_TEST_MOTO_ENDPOINT"),
        var("STORAGE_TEST_S3_BUCKET"),
        key.as_str()
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = client.get(url).send().await.unwrap().text().await.unwrap();
    body.matches("<Upload>").count()
}

#[tokio::test]
async fn a_cancelled_multipart_upload_leaves_no_incomplete_upload() {
    let store = moto();
    let key = unique("cancelled.bin");
    // 12 MiB, then a stream that never ends: the put is mid-upload when
    // it is dropped.
    let head = streamed(pattern(7, 12 << 20), 1 << 20).into_stream();
    let body = Body::from_stream(head.chain(futures::stream::pending()));
    let put = store.put(&key, body, PutOptions::default());
    assert!(
        tokio::time::timeout(Duration::from_secs(3), put)
            .await
            .is_err()
    );
    // The abort runs in the background after the drop.
    let mut remaining = usize::MAX;
    for _ in 0..50 {
        remaining = uploads_in_progress(&key).await;
        if remaining == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(remaining, 0, "a cancelled multipart upload was left behind");
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn a_failing_stream_aborts_its_multipart_upload() {
    let store = moto();
    let key = unique("failed.bin");
    let head = streamed(pattern(8, 12 << 20), 1 << 20).into_stream();
    let failure = futures::stream::once(async {
        Err(storage_core::Error::new(
            ErrorKind::Other,
            "the source broke",
        ))
    });
    let err = store
        .put(
            &key,
            Body::from_stream(head.chain(failure)),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("the source broke"), "{err}");
    assert_eq!(uploads_in_progress(&key).await, 0);
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn a_conditional_put_of_a_long_stream_is_unsupported_and_writes_nothing() {
    let store = moto();
    let key = unique("conditional-long.bin");
    let body = streamed(pattern(9, 9 << 20), 1 << 20);
    let err = store
        .put(&key, body, PutOptions::default().create_new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.message().contains("part_size"), "{err}");
    assert!(!store.exists(&key).await.unwrap());
}

#[tokio::test]
async fn delete_many_removes_every_key_and_ignores_missing_ones() {
    let store = moto();
    let keys: Vec<Key> = (0..25).map(|i| unique(&format!("batch/{i:02}"))).collect();
    for key in &keys[..20] {
        store
            .put(key, "x".into(), PutOptions::default())
            .await
            .unwrap();
    }
    let results = store.delete_many(&keys).await;
    assert_eq!(results.len(), 25);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for key in &keys {
        assert!(!store.exists(key).await.unwrap(), "{key} survived");
    }
}

#[tokio::test]
async fn a_wrong_secret_is_permission_denied_and_not_retryable() {
    let store = s3s_fs_with_secret("not-the-secret");
    let err = store
        .put(&unique("denied"), "x".into(), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_retryable());
    assert!(
        !format!("{err} {err:?}").contains("not-the-secret"),
        "the secret leaked: {err:?}"
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable_and_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = S3Config::new("b")
        .with_endpoint(format!("http://127.0.0.1:{port}"), true)
        .with_region("us-east-1")
        .with_credentials("k", "s");
    config.max_retries = 0;
    let store = S3Storage::new(config).unwrap();
    let err = store.head(&unique("nowhere")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
}

async fn created_from_a_config_file(endpoint: &str, access_key: &str, secret: &str) {
    use storage_core::config::{Config, Registry};
    let bucket = format!(
        "created-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let text = format!(
        "[providers.fresh]\ntype = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\n\
         allow_http = true\nregion = \"us-east-1\"\naccess_key_id = \"{access_key}\"\n\
         secret_access_key = \"{secret}\"\ncreate_bucket = true\n"
    );
    let config = Config::parse("storage.toml", &text).unwrap();
    let registry = Registry::with_factories(&[&storage_s3::FACTORY]);
    let store = registry.build(&config, "fresh").await.unwrap();
    let key = Key::new("hello.txt").unwrap();
    store
        .put(&key, "in a new bucket".into(), PutOptions::default())
        .await
        .unwrap();
    let bytes = store
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"in a new bucket");
    // Opening again finds the bucket already there, which is fine.
    let again = registry.build(&config, "fresh").await.unwrap();
    assert!(again.exists(&key).await.unwrap());
}

#[tokio::test]
async fn create_bucket_makes_a_missing_bucket_on_moto() {
    created_from_a_config_file(&var("STORAGE_TEST_MOTO_ENDPOINT"), "k", "s").await;
}

#[tokio::test]
async fn create_bucket_makes_a_missing_bucket_on_s3s_fs() {
    created_from_a_config_file(
        &var("STORAGE_TEST_S3S_ENDPOINT"),
        &var("STORAGE_TEST_S3S_ACCESS_KEY"),
        &var("STORAGE_TEST_S3S_SECRET_KEY"),
    )
    .await;
}

/// A provider built from a configuration file that turns body signing off.
async fn unsigned_from_a_config_file(
    endpoint: &str,
    access_key: &str,
    secret: &str,
) -> Arc<dyn Storage> {
    use storage_core::config::{Config, Registry};
    let text = format!(
        "[providers.unsigned]\ntype = \"s3\"\nbucket = \"{}\"\nendpoint = \"{endpoint}\"\n\
         allow_http = true\nregion = \"us-east-1\"\naccess_key_id = \"{access_key}\"\n\
         secret_access_key = \"{secret}\"\nunsigned_payload = true\nmax_retries = 0\n",
        var("STORAGE_TEST_S3_BUCKET")
    );
    let config = Config::parse("storage.toml", &text).unwrap();
    let registry = Registry::with_factories(&[&storage_s3::FACTORY]);
    registry.build(&config, "unsigned").await.unwrap()
}

#[tokio::test]
async fn a_server_that_checks_signatures_takes_unsigned_bodies_single_and_multipart() {
    // s3s-fs verifies SigV4, with UNSIGNED-PAYLOAD in place of the hash.
    let store = unsigned_from_a_config_file(
        &var("STORAGE_TEST_S3S_ENDPOINT"),
        &var("STORAGE_TEST_S3S_ACCESS_KEY"),
        &var("STORAGE_TEST_S3S_SECRET_KEY"),
    )
    .await;
    let small = unique("unsigned-small.bin");
    let data = pattern(5, 70_000);
    store
        .put(&small, Body::Bytes(data.clone()), PutOptions::default())
        .await
        .unwrap();
    let got = store.get(&small, GetOptions::default()).await.unwrap();
    assert!(got.bytes().await.unwrap() == data);
    let large = unique("unsigned-multipart.bin");
    let data = pattern(6, (11 << 20) + 17);
    store
        .put(
            &large,
            streamed(data.clone(), 1 << 20),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let got = store.get(&large, GetOptions::default()).await.unwrap();
    assert!(
        got.bytes().await.unwrap() == data,
        "the multipart object read back differs"
    );
    assert!(store.delete(&small).await.unwrap());
    assert!(store.delete(&large).await.unwrap());
}

/// The requests that send a body (PUT, POST) among `seen`.
fn uploads_of(seen: &[(String, String)]) -> Vec<&(String, String)> {
    seen.iter()
        .filter(|(method, _)| method == "PUT" || method == "POST")
        .collect()
}

#[tokio::test]
async fn unsigned_payload_sends_no_body_hash_and_the_default_signs_every_body() {
    use sha2::{Digest, Sha256};
    let proxy = FaultProxy::start(&var("STORAGE_TEST_MOTO_ENDPOINT"), Faults::default()).await;
    let body = pattern(7, 4096);
    let long = pattern(8, (8 << 20) + 1000);

    // The default: each body's SHA-256, hex, signed.
    let signed = {
        let mut config = S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
            .with_endpoint(&proxy.url, true)
            .with_region("us-east-1")
            .with_credentials("k", "s");
        config.max_retries = 0;
        S3Storage::new(config).unwrap()
    };
    signed
        .put(
            &unique("signed.bin"),
            Body::Bytes(body.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let seen = proxy.payload_hashes();
    let expected = format!("{:x}", Sha256::digest(&body));
    assert_eq!(seen, vec![("PUT".to_owned(), expected)]);
    // A multipart upload signs the hash of every request it sends.
    signed
        .put(
            &unique("signed-long.bin"),
            streamed(long.clone(), 1 << 20),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let seen = proxy.payload_hashes().split_off(1);
    let uploads = uploads_of(&seen);
    assert_eq!(uploads.len(), 4, "create, two parts, complete: {seen:?}");
    for (method, hash) in uploads {
        assert!(
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "a {method} of the default carried {hash:?}, not a SHA-256"
        );
    }
    let before_unsigned = proxy.payload_hashes().len();

    // Unsigned: a single PUT and every request of a multipart upload
    // (create, parts, complete) carry UNSIGNED-PAYLOAD.
    let unsigned = unsigned_from_a_config_file(&proxy.url, "k", "s").await;
    unsigned
        .put(
            &unique("unsigned.bin"),
            Body::Bytes(body),
            PutOptions::default(),
        )
        .await
        .unwrap();
    unsigned
        .put(
            &unique("unsigned-long.bin"),
            streamed(long, 1 << 20),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let seen = proxy.payload_hashes().split_off(before_unsigned);
    let uploads = uploads_of(&seen);
    // One single PUT, then create, two parts and complete.
    assert_eq!(uploads.len(), 5, "{seen:?}");
    for (method, hash) in uploads {
        assert_eq!(hash, "UNSIGNED-PAYLOAD", "a {method} signed its body");
    }
}
