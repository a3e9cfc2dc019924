//! The main job on the embedded local default: store a few artifacts, list
//! them, read one back in part, and hand out presigned URLs that a plain
//! HTTP client uses to download and upload without credentials.
//!
//! ```text
//! cargo run -p storage-examples --bin quickstart
//! ```
//!
//! Objects land in `./storage-data` (override with `STORAGE_ROOT`).

use std::time::Duration;

use futures::TryStreamExt;
use storage_core::{
    Body, ByteRange, Bytes, GetOptions, Key, ListEntry, ListOptions, Prefix, PresignMethod,
    PresignOptions, PutOptions, Storage,
};
use storage_local::{LocalConfig, LocalStorage};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::var("STORAGE_ROOT").unwrap_or_else(|_| "./storage-data".to_owned());

    // Serve presigned URLs on a free local port, as an application would
    // mount the router in its own axum app.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public_url = format!("http://{}/files", listener.local_addr()?).parse()?;
    let secret = std::env::var("LOCAL_SIGNING_SECRET")
        .unwrap_or_else(|_| "quickstart-only-signing-secret".to_owned());
    let store = LocalStorage::open(LocalConfig::new(&root).with_presign(public_url, secret))?;
    let app = storage_local::router(store.clone())?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Three artifacts of one board: an image, its metadata, and a 24 MiB
    // "video" streamed in 1 MiB chunks (never whole in memory).
    let board = "tenant-1/boards/42";
    let image = Key::new(format!("{board}/images/cover.png"))?;
    let manifest = Key::new(format!("{board}/manifest.json"))?;
    let video = Key::new(format!("{board}/videos/intro.mp4"))?;

    store
        .put(
            &image,
            Bytes::from_static(b"\x89PNG\r\n\x1a\n...").into(),
            PutOptions::default()
                .with_content_type("image/png")
                .with_metadata("artifact-type", "image"),
        )
        .await?;
    store
        .put(
            &manifest,
            r#"{"title":"Quickstart board"}"#.into(),
            PutOptions::default().with_content_type("application/json"),
        )
        .await?;
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let chunks = futures::stream::iter((0..24).map(move |_| Ok(chunk.clone())));
    let written = store
        .put(
            &video,
            Body::from_stream(chunks),
            PutOptions::default().with_content_type("video/mp4"),
        )
        .await?;
    println!(
        "stored {} bytes at {video} (etag {:?})",
        written.size, written.etag
    );

    // One "directory" level, then everything under the board.
    let prefix = Prefix::new(format!("{board}/"))?;
    println!("\n{prefix} (one level):");
    let level: Vec<ListEntry> = store
        .list(&prefix, ListOptions::default().with_delimiter())
        .try_collect()
        .await?;
    for entry in &level {
        match entry {
            ListEntry::Object(meta) => println!("  {:>10}  {}", meta.size, meta.key),
            ListEntry::Prefix(p) => println!("  {:>10}  {p}", "<dir>"),
        }
    }

    // The last 16 bytes of the video, without reading the rest.
    let tail = store
        .get(
            &video,
            GetOptions::default().with_range(ByteRange::Suffix(16)),
        )
        .await?;
    println!("\nread bytes {:?} of {}", tail.range, video);

    // Presigned URLs: a browser could use these directly.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let download = store
        .presign(
            PresignMethod::Get,
            &manifest,
            Duration::from_secs(300),
            PresignOptions::default(),
        )
        .await?;
    let fetched = http
        .get(download.url.clone())
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    println!("\npresigned GET {}\n  -> {fetched}", download.url);

    let upload_key = Key::new(format!("{board}/uploads/from-browser.txt"))?;
    let upload = store
        .presign(
            PresignMethod::Put,
            &upload_key,
            Duration::from_secs(300),
            PresignOptions::default().with_content_type("text/plain"),
        )
        .await?;
    let mut request = http
        .put(upload.url.clone())
        .body("uploaded without credentials");
    for (name, value) in &upload.headers {
        request = request.header(name, value);
    }
    request.send().await?.error_for_status()?;
    let uploaded = store
        .get(&upload_key, GetOptions::default())
        .await?
        .bytes()
        .await?;
    println!(
        "presigned PUT stored {:?} at {upload_key}",
        String::from_utf8_lossy(&uploaded)
    );

    // A tampered URL is refused.
    let tampered = format!(
        "{}0",
        &download.url.as_str()[..download.url.as_str().len() - 1]
    );
    let status = http.get(tampered).send().await?.status();
    println!("a tampered URL gets {status}");

    println!("\nobjects are in {root}");
    Ok(())
}
