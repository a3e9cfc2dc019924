//! A provider loaded at run time: `examples/plugin_demo.toml` names the
//! encrypted plugin's dynamic library by path, and this program, which
//! was compiled without it, stores and reads objects through it.
//!
//! ```text
//! cargo xtask example plugin
//! ```
//!
//! (that builds the plugin, `cargo build -p storage-plugin-encrypted`,
//! then runs this binary). What it shows: a 3 MiB stream of unknown length
//! goes in, a range that crosses encryption segments comes back, the
//! folder on disk holds only ciphertext, and an altered byte on disk is
//! caught as corruption.

use std::path::PathBuf;

use futures::TryStreamExt;
use storage::{
    Body, ByteRange, Bytes, ErrorKind, GetOptions, Key, ListOptions, Prefix, PutOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugin_demo.toml"));
    let config = storage::load_config(Some(&file))?;
    let providers = storage::registry().build_all(&config).await?;
    let vault = providers.default_provider()?;
    println!("provider {:?} from {}", vault.name(), file.display());

    // 3 MiB of text, streamed in 100 KiB pieces of unknown total length.
    let line = "the quick brown fox jumps over the lazy dog\n";
    let text: Bytes = line.repeat((3 << 20) / line.len() + 1).into_bytes().into();
    let text = text.slice(..3 << 20);
    let pieces: Vec<storage::Result<Bytes>> = text
        .chunks(100 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let key = Key::new("notes/fox.txt")?;
    let stored = vault
        .put(
            &key,
            Body::from_stream(futures::stream::iter(pieces)),
            PutOptions::default().with_content_type("text/plain"),
        )
        .await?;
    println!(
        "stored {} bytes at {key} (etag {:?})",
        stored.size, stored.etag
    );

    let range = 65_000..70_000; // crosses the first 64 KiB segment boundary
    let part = vault
        .get(
            &key,
            GetOptions::default().with_range(ByteRange::bounded(range.clone())),
        )
        .await?
        .bytes()
        .await?;
    if part != text.slice(range.start as usize..range.end as usize) {
        return Err("the range read back differs from what was written".into());
    }
    println!("range {range:?} reads back the same {} bytes", part.len());

    let listed: Vec<_> = vault
        .list(&Prefix::new("notes/")?, ListOptions::default())
        .try_collect()
        .await?;
    for entry in &listed {
        if let Some(meta) = entry.as_object() {
            println!(
                "listed {} ({} bytes, {:?})",
                meta.key, meta.size, meta.content_type
            );
        }
    }

    // On disk: ciphertext only. The local backend keeps objects as files
    // under the root given in the plugin's settings.
    let root = file
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("../storage-data/vault");
    let on_disk = find_file(&root, "fox.txt")?;
    let raw = std::fs::read(&on_disk)?;
    let plain_marker = line.as_bytes();
    if raw.windows(plain_marker.len()).any(|w| w == plain_marker) {
        return Err(format!("{} holds plaintext", on_disk.display()).into());
    }
    println!(
        "{} holds {} bytes of ciphertext, no plaintext",
        on_disk.display(),
        raw.len()
    );

    // Alter one byte of the stored segment: the read fails as corruption.
    let mut altered = raw.clone();
    altered[1000] ^= 1;
    std::fs::write(&on_disk, &altered)?;
    let read = vault.get(&key, GetOptions::default()).await;
    let err = match read {
        Ok(result) => result.bytes().await.err(),
        Err(err) => Some(err),
    };
    match err {
        Some(err) if err.kind() == ErrorKind::Corruption => {
            println!("after altering one byte: {err}")
        }
        other => {
            return Err(format!("an altered object was not refused as corrupt: {other:?}").into());
        }
    }
    vault.delete(&key).await?;
    println!("done");
    Ok(())
}

/// The file of object `name` under `root`, at any depth (the local
/// backend adds a suffix to object file names).
fn find_file(root: &std::path::Path, name: &str) -> std::io::Result<PathBuf> {
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.is_dir() {
            if let Ok(found) = find_file(&path, name) {
                return Ok(found);
            }
        } else if path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with(name))
        {
            return Ok(path);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no {name} under {}", root.display()),
    ))
}
