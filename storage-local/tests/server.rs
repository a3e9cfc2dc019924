//! The presign handler at the HTTP level, as a browser or curl meets it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::time::Duration;

use storage_core::{
    GetOptions, Key, PresignMethod, PresignOptions, PresignedRequest, PutOptions, Storage,
};
use storage_local::{LocalConfig, LocalStorage};

struct Server {
    store: LocalStorage,
    http: reqwest::Client,
    _folder: tempfile::TempDir,
}

async fn serve() -> Server {
    let folder = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/files", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let store = LocalStorage::open(
        LocalConfig::new(folder.path()).with_presign(url, "server-test-secret-1234"),
    )
    .unwrap();
    let app = storage_local::router(store.clone()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Server {
        store,
        http,
        _folder: folder,
    }
}

impl Server {
    async fn sign(&self, method: PresignMethod, key: &Key) -> PresignedRequest {
        self.store
            .presign(
                method,
                key,
                Duration::from_secs(60),
                PresignOptions::default(),
            )
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn an_upload_without_a_signed_type_keeps_the_type_it_was_sent_with() {
    let server = serve().await;
    let key = Key::new("curl/upload.bin").unwrap();
    let signed = server.sign(PresignMethod::Put, &key).await;
    // What `curl --data-binary @file URL` sends.
    let response = server
        .http
        .put(signed.url.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![5u8; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("etag"));
    let meta = server.store.head(&key).await.unwrap();
    assert_eq!(meta.size, 70_000);
    assert_eq!(
        meta.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn methods_other_than_get_and_put_are_refused_with_403() {
    let server = serve().await;
    let key = Key::new("kept").unwrap();
    server
        .store
        .put(&key, "keep me".into(), PutOptions::default())
        .await
        .unwrap();
    for method in [PresignMethod::Get, PresignMethod::Put] {
        let signed = server.sign(method, &key).await;
        for other in ["POST", "DELETE", "PATCH"] {
            let method = reqwest::Method::from_bytes(other.as_bytes()).unwrap();
            let response = server
                .http
                .request(method, signed.url.as_str())
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{other}");
        }
    }
    let content = server
        .store
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&content[..], b"keep me");
}

#[tokio::test]
async fn a_download_answers_conditional_and_ranged_requests_as_http_does() {
    let server = serve().await;
    let key = Key::new("media/clip.mp4").unwrap();
    let written = server
        .store
        .put(
            &key,
            vec![9u8; 1000].into(),
            PutOptions::default().with_content_type("video/mp4"),
        )
        .await
        .unwrap();
    let etag = written.etag.unwrap();
    let signed = server.sign(PresignMethod::Get, &key).await;

    let head = server.http.head(signed.url.as_str()).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "1000");
    assert_eq!(head.headers()["content-type"], "video/mp4");
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert!(head.headers().contains_key("last-modified"));

    let cached = server
        .http
        .get(signed.url.as_str())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    assert!(cached.bytes().await.unwrap().is_empty());

    let past = server
        .http
        .get(signed.url.as_str())
        .header("range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);

    let part = server
        .http
        .get(signed.url.as_str())
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 990-999/1000");
    assert_eq!(part.bytes().await.unwrap().len(), 10);
}

#[tokio::test]
async fn a_missing_object_is_404_and_a_bad_signature_403() {
    let server = serve().await;
    let key = Key::new("nothing/here").unwrap();
    let signed = server.sign(PresignMethod::Get, &key).await;
    let response = server.http.get(signed.url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let unsigned = signed.url.as_str().split('?').next().unwrap().to_owned();
    let response = server.http.get(unsigned).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.text().await.unwrap().trim(),
        "the presigned URL is malformed"
    );
}
