//! What the conformance kit does not cover: TUS uploads and their
//! resumption, the error kinds of the wire facts' error table, signed
//! upload URLs with the server's own lifetime, bucket limits, public URLs,
//! batch deletes and health. Against the repository's test server (or a
//! real one: see `tests/support`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, stream};
use storage_core::config::ByteSize;
use storage_core::conformance::{chunked, pattern};
use storage_core::testing::CuttingProxy;
use storage_core::{
    Body, ByteRange, ErrorKind, GetOptions, Key, PresignMethod, PutOptions, Storage, collect_stream,
};
use storage_supabase::{SupabaseConfig, SupabaseStorage};

const CHUNK: u64 = 256 << 10;

fn key(name: &str) -> Key {
    Key::new(format!("tests/{}/{name}", fastrand::u64(..))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_length_streams_go_through_tus_and_read_back_whole() {
    let test =
        support::store_with(Duration::from_secs(60), |c| c.chunk_size = ByteSize(CHUNK)).await;
    for size in [3 * CHUNK + 12_345, 4 * CHUNK] {
        let key = key("tus ü.bin");
        let data = pattern(size, size as usize);
        let options = PutOptions::default()
            .with_content_type("application/x-test")
            .with_cache_control("max-age=60")
            .with_metadata("origin", "tus");
        let written = test
            .store
            .put(&key, chunked(data.clone(), 100_003), options)
            .await
            .unwrap();
        assert_eq!(written.size, size);
        let meta = test.store.head(&key).await.unwrap();
        assert_eq!(meta.size, size);
        assert_eq!(meta.etag, written.etag);
        assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
        assert_eq!(meta.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(meta.user_metadata["origin"], "tus");
        let got = test.store.get(&key, GetOptions::default()).await.unwrap();
        assert!(
            collect_stream(got.body).await.unwrap() == data,
            "{size} bytes differ"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_mid_upload_resumes_instead_of_restarting() {
    let test = support::store().await;
    let size = 6 * CHUNK + 777;
    let proxy = CuttingProxy::start(&test.url, 2 * CHUNK + CHUNK / 2).await;
    let mut config = SupabaseConfig::new(&proxy.url, test.store.config().bucket.clone())
        .with_key(test.key.as_str());
    config.chunk_size = ByteSize(CHUNK);
    let through = SupabaseStorage::new(config).unwrap();
    let key = key("resumed.bin");
    let data = pattern(9, size as usize);
    through
        .put(&key, chunked(data.clone(), 100_003), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        proxy.cuts(),
        1,
        "the proxy should have dropped one connection"
    );
    let overhead = proxy.sent() - size;
    assert!(
        overhead < CHUNK,
        "sent {} bytes for a {size}-byte object: the upload restarted instead of resuming",
        proxy.sent()
    );
    let got = test.store.get(&key, GetOptions::default()).await.unwrap();
    assert!(
        collect_stream(got.body).await.unwrap() == data,
        "the resumed object differs"
    );
}

/// Gets that serve more than a download chunk (the whole object, or a
/// bounded, open or suffix range) are read in parallel ranged parts,
/// offset into the object: exactly what is served, through a connection
/// cut mid-part (the third: the first two carry the download and the
/// info, and only a get in parts opens more), whose rest is asked for
/// again.
#[tokio::test(flavor = "multi_thread")]
async fn gets_longer_than_a_chunk_are_read_in_parts_exactly() {
    let test = support::store().await;
    let key = key("parts.bin");
    let data = pattern(11, (3 << 20) + 17);
    let len = data.len() as u64;
    test.store
        .put(&key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    for (range, expected) in [
        (None, 0..len),
        (
            Some(ByteRange::bounded(100_000..2_900_000)),
            100_000..2_900_000,
        ),
        (Some(ByteRange::From(1_000_001)), 1_000_001..len),
        (Some(ByteRange::Suffix(2_000_000)), len - 2_000_000..len),
    ] {
        let proxy = CuttingProxy::start_cutting_answers(&test.url, 2, 100 << 10).await;
        let mut config = SupabaseConfig::new(&proxy.url, test.store.config().bucket.clone())
            .with_key(test.key.as_str());
        config.download_chunk_size = ByteSize(CHUNK);
        config.download_concurrency = 4;
        let through = SupabaseStorage::new(config).unwrap();
        let mut options = GetOptions::default();
        options.range = range;
        let got = through.get(&key, options).await.unwrap();
        assert_eq!(got.range, expected, "{range:?}");
        let read = collect_stream(got.body).await.unwrap();
        let wanted = &data[expected.start as usize..expected.end as usize];
        assert!(&read[..] == wanted, "{range:?}: the bytes differ");
        assert_eq!(proxy.cuts(), 1, "{range:?} was not read in parts");
    }
}

/// An object replaced while it is read in parts fails the read with
/// `PreconditionFailed` instead of mixing two versions.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_replaced_while_it_is_read_in_parts_fails_the_read() {
    let test = support::store_with(Duration::from_secs(60), |c| {
        c.download_chunk_size = ByteSize(CHUNK);
        c.download_concurrency = 2;
    })
    .await;
    let key = key("replaced.bin");
    test.store
        .put(
            &key,
            pattern(12, (1 << 20) + 5).into(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    // The first answer is in; the parts are asked for when the body is
    // first read, after the object was replaced.
    let got = test.store.get(&key, GetOptions::default()).await.unwrap();
    test.store
        .put(
            &key,
            pattern(13, (1 << 20) + 5).into(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let err = collect_stream(got.body).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_mid_upload_leaves_the_previous_object() {
    let test =
        support::store_with(Duration::from_secs(60), |c| c.chunk_size = ByteSize(CHUNK)).await;
    let key = key("kept.bin");
    test.store
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
    let err = test
        .store
        .put(&key, Body::from_stream(failing), PutOptions::default())
        .await
        .unwrap_err();
    assert!(err.message().contains("the source broke"), "{err}");
    let got = test.store.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(&collect_stream(got.body).await.unwrap()[..], b"previous");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_error_tables_cases_are_the_contracts_kinds() {
    let test = support::store_with(Duration::from_secs(60), |c| {
        c.file_size_limit = Some(ByteSize(1000));
        c.allowed_mime_types = vec!["text/*".into(), "image/png".into()];
    })
    .await;
    let store = &test.store;
    let missing = key("missing");
    assert_eq!(
        store.head(&missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .get(&missing, GetOptions::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(!store.exists(&missing).await.unwrap());

    let existing = key("existing.txt");
    let text = PutOptions::default().with_content_type("text/plain");
    store
        .put(&existing, "v1".into(), text.clone())
        .await
        .unwrap();
    let err = store
        .put(&existing, "v2".into(), text.clone().create_new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

    let json = PutOptions::default().with_content_type("application/json");
    let err = store
        .put(&key("data.json"), "{}".into(), json)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("InvalidMimeType"), "{err}");

    let err = store
        .put(&key("big.txt"), vec![b'x'; 1001].into(), text)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert_eq!(err.provider(), Some("supabase"));

    let no_bucket = SupabaseStorage::new(
        SupabaseConfig::new(&test.url, "no-such-bucket").with_key(test.key.as_str()),
    )
    .unwrap();
    let err = no_bucket.head(&missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(
        no_bucket.health().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let wrong_key = SupabaseStorage::new(
        SupabaseConfig::new(&test.url, store.config().bucket.clone())
            .with_key("eyJhbGciOiJIUzI1NiJ9.e30.d3Jvbmc"),
    )
    .unwrap();
    let err = wrong_key.head(&existing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        !format!("{err:?}").contains("d3Jvbmc"),
        "the key leaked: {err:?}"
    );

    // Hostile keys never become keys, so they never reach the server.
    for hostile in ["../etc/passwd", "/absolute", "a/../../b", "nul\0byte"] {
        assert!(Key::new(hostile).is_err(), "{hostile:?} became a key");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_upload_url_states_and_keeps_the_servers_lifetime() {
    let test = support::store_with(Duration::from_secs(2), |_| {}).await;
    let key = key("upload via url.txt");
    // Asked for ten minutes; the server grants its own two seconds.
    let signed = test
        .store
        .presign(
            PresignMethod::Put,
            &key,
            Duration::from_secs(600),
            Default::default(),
        )
        .await
        .unwrap();
    let lifetime = signed
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    // The repository's server grants 2 s; a real one its own setting
    // (60 s by default), which must still be shorter than asked.
    let granted = if test.server.is_some() {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(599)
    };
    assert!(
        lifetime > Duration::ZERO && lifetime <= granted,
        "{lifetime:?}"
    );
    let client = reqwest::Client::new();
    let response = client
        .put(signed.url.as_str())
        .header("content-type", "text/plain")
        .body("first")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        &test
            .store
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()[..],
        b"first"
    );
    // Past the stated expiry (whole seconds in the token, so one more).
    tokio::time::sleep(lifetime + Duration::from_millis(1_100)).await;
    let late = client
        .put(signed.url.as_str())
        .body("late")
        .send()
        .await
        .unwrap();
    assert!(
        late.status().is_client_error(),
        "an expired upload URL gave {}",
        late.status()
    );
    assert_eq!(
        &test
            .store
            .get(&key, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()[..],
        b"first"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_buckets_serve_public_urls_and_private_ones_do_not() {
    let public = support::store_with(Duration::from_secs(60), |c| c.public = true).await;
    let key = key("open.txt");
    public
        .store
        .put(&key, "for everyone".into(), PutOptions::default())
        .await
        .unwrap();
    let url = public.store.public_url(&key).unwrap();
    let response = reqwest::get(url.as_str()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], b"for everyone");

    let private = support::store().await;
    private
        .store
        .put(&key, "not for everyone".into(), PutOptions::default())
        .await
        .unwrap();
    let url = private.store.public_url(&key).unwrap();
    let response = reqwest::get(url.as_str()).await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_many_removes_every_key_and_ignores_missing_ones() {
    let mut test = support::store().await;
    test.store = SupabaseStorage::new({
        let mut config = test.store.config().clone();
        config.delete_batch = 7;
        config
    })
    .unwrap();
    let keys: Vec<Key> = (0..30).map(|i| key(&format!("many {i:02}"))).collect();
    for key in &keys[..20] {
        test.store
            .put(key, "x".into(), PutOptions::default())
            .await
            .unwrap();
    }
    let results = test.store.delete_many(&keys).await;
    assert_eq!(results.len(), keys.len());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for key in &keys {
        assert!(
            !test.store.exists(key).await.unwrap(),
            "{key} is still there"
        );
    }
    test.store.health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_configuration_reaches_a_project_url() {
    // A hosted project's URL, as SUPABASE_URL holds it: the storage API is
    // under /storage/v1 there. Always the repository's server, which
    // serves both at its root and under /storage/v1.
    let server = support::server::SupabaseServer::start(Duration::from_secs(60)).await;
    let service_key = support::server::service_key();
    let direct = SupabaseStorage::new(
        SupabaseConfig::new(&server.url, "from-env").with_key(service_key.as_str()),
    )
    .unwrap();
    assert!(direct.create_bucket().await.unwrap());
    let project_url = server.url.clone();
    let lookup = move |name: &str| match name {
        "SUPABASE_URL" => Some(project_url.clone()),
        "SUPABASE_SERVICE_ROLE_KEY" => Some(service_key.clone()),
        "SUPABASE_BUCKET" => Some("from-env".to_owned()),
        _ => None,
    };
    let config = storage_core::config::Config::from_env_with(&lookup);
    let registry = storage_core::config::Registry::with_factories(&[&storage_supabase::FACTORY]);
    let store = registry.build(&config, "supabase").await.unwrap();
    let object = key("from-env.txt");
    store
        .put(&object, "via /storage/v1".into(), PutOptions::default())
        .await
        .unwrap();
    let got = direct.get(&object, GetOptions::default()).await.unwrap();
    assert_eq!(&got.bytes().await.unwrap()[..], b"via /storage/v1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_uploaded_as_supabase_js_does_reads_back_with_its_settings() {
    // supabase-js sends a Blob as multipart/form-data: `cacheControl` in
    // seconds, `metadata` as JSON, the file in the field "".
    let test = support::store().await;
    let name = "from-js/photo.png";
    let boundary = "----formdata-test-0123";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"cacheControl\"\r\n\r\n3600\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{{\"origin\":\"js\"}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"\"; filename=\"blob\"\r\nContent-Type: image/png\r\n\r\n\
         not really a png\r\n--{boundary}--\r\n"
    );
    let url = format!("{}/object/{}/{name}", test.url, test.store.config().bucket);
    let response = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {}", test.key))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    // Written by another client, so under the raw name: plain characters
    // are stored as they are, and this one has none other.
    let key = Key::new(name).unwrap();
    let meta = test.store.head(&key).await.unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("image/png"));
    assert_eq!(meta.cache_control.as_deref(), Some("max-age=3600"));
    assert_eq!(meta.user_metadata["origin"], "js");
    let got = test.store.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(&got.bytes().await.unwrap()[..], b"not really a png");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_of_known_length_declare_it_to_tus_up_front() {
    let test =
        support::store_with(Duration::from_secs(60), |c| c.chunk_size = ByteSize(CHUNK)).await;
    let size = 2 * CHUNK + 99;
    let data = pattern(5, size as usize);
    let bytes_key = key("bytes.bin");
    test.store
        .put(&bytes_key, data.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let sized_key = key("sized.bin");
    let pieces: Vec<storage_core::Result<Bytes>> = data
        .chunks(70_001)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let sized = Body::from_sized_stream(stream::iter(pieces), size);
    test.store
        .put(&sized_key, sized, PutOptions::default())
        .await
        .unwrap();
    for key in [bytes_key, sized_key] {
        let got = test.store.get(&key, GetOptions::default()).await.unwrap();
        assert!(collect_stream(got.body).await.unwrap() == data, "{key}");
    }
}
