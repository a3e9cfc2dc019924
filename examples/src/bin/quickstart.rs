//! The main job on the embedded local default: store artifacts of a board
//! through the manager (the routes in `./storage.toml` send big videos to
//! one folder and the rest to another), list them, read one back, and
//! print a presigned URL that works against `storage serve`.
//!
//! ```text
//! cargo run -p storage-examples --bin quickstart
//! ```
//!
//! Without a `storage.toml` in the current folder (or `STORAGE_CONFIG`),
//! the provider comes from the environment: a local folder by default.

use std::time::Duration;

use futures::TryStreamExt;
use storage::manager::{ArtifactSpec, Manager};
use storage::{Body, ByteRange, Bytes, GetOptions, ListOptions, Prefix, PresignMethod};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = storage::load_config(None)?;
    println!("configuration: {}", config.source_name());
    let manager = Manager::from_config(&config, &storage::registry()).await?;

    // Four artifacts of board 42: the content type is inferred from the
    // bytes or the file name; the 24 MiB video arrives as a stream of
    // unknown length and is routed by its size.
    let png =
        Bytes::from_static(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0");
    let cover = ArtifactSpec::new("tenant-1", "image", "board-42", "cover");
    let thumb = cover.clone().with_variant("thumb");
    let manifest = ArtifactSpec::new("tenant-1", "manifest", "board-42", "manifest")
        .with_file_name("manifest.json");
    let video = ArtifactSpec::new("tenant-1", "video", "board-42", "intro")
        .with_file_name("intro.mp4")
        .with_metadata("duration", "12s");
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let video_stream = futures::stream::iter((0..24).map(move |_| Ok(chunk.clone())));

    let stored = vec![
        manager.store(&cover, png.clone().into()).await?,
        manager.store(&thumb, png.into()).await?,
        manager
            .store(&manifest, r#"{"title":"Quickstart board"}"#.into())
            .await?,
        manager
            .store(&video, Body::from_stream(video_stream))
            .await?,
    ];
    println!("\nstored:");
    for artifact in &stored {
        println!(
            "  {:<6} {:>9} B  {:<18} {}",
            artifact.provider,
            artifact.size,
            artifact.content_type.as_deref().unwrap_or("-"),
            artifact.key
        );
    }

    // What each provider now holds for the board.
    let prefix = Prefix::new("tenant-1/")?;
    for (name, provider) in manager.providers().iter() {
        let keys: Vec<String> = provider
            .list(&prefix, ListOptions::default())
            .map_ok(|entry| entry.name().to_owned())
            .try_collect()
            .await?;
        println!("\n{name}: {} object(s) under {prefix}", keys.len());
        for key in keys {
            println!("  {key}");
        }
    }

    // Read the manifest back, and the last bytes of the video.
    let manifest_ref = &stored[2];
    let text = manager
        .open(manifest_ref, GetOptions::default())
        .await?
        .bytes()
        .await?;
    println!(
        "\nread {}: {}",
        manifest_ref.key,
        String::from_utf8_lossy(&text)
    );
    let tail = manager
        .open(
            &stored[3],
            GetOptions::default().with_range(ByteRange::Suffix(16)),
        )
        .await?;
    println!("read bytes {:?} of {}", tail.range, stored[3].key);

    // A reference is a stable string: keep it in your database.
    println!("\nreference: {}", stored[0]);

    // A presigned download URL for the cover.
    let signed = manager
        .presign(&stored[0], PresignMethod::Get, Duration::from_secs(3600))
        .await?;
    println!("\npresigned GET (valid 1 hour):\n  {}", signed.url);
    println!(
        "serve it with `cargo run -p storage-cli -- serve --provider {}` and open it, or:\n  curl -o cover.png '{}'",
        stored[0].provider, signed.url
    );
    Ok(())
}
