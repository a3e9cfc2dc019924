//! What the encryption promises: only ciphertext reaches the folder, the
//! wrong key or an altered byte fails the read as corruption, and every
//! plaintext range reads back exactly, across segment boundaries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::path::Path;
use std::sync::Arc;

use storage_core::conformance::{chunked, pattern};
use storage_core::{ByteRange, Bytes, ErrorKind, GetOptions, Key, PutOptions, Storage};
use storage_local::{LocalConfig, LocalStorage};
use storage_plugin_encrypted::{EncryptedStorage, MasterKey};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

fn store(root: &Path, key: &str) -> EncryptedStorage {
    let inner = LocalStorage::open(LocalConfig::new(root).with_name("vault")).unwrap();
    EncryptedStorage::new(Arc::new(inner), MasterKey::from_base64(key).unwrap())
}

/// The file that holds object `name` under `root` (the local backend
/// names it after the key, with a suffix).
fn object_file(root: &Path, name: &str) -> std::path::PathBuf {
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(name)
            {
                return path;
            }
        }
    }
    panic!("no file for object {name} under {}", root.display());
}

async fn read(store: &dyn Storage, key: &Key, options: GetOptions) -> storage_core::Result<Bytes> {
    store.get(key, options).await?.bytes().await
}

#[tokio::test]
async fn the_folder_holds_ciphertext_only_and_each_write_differs() {
    let dir = tempfile::tempdir().unwrap();
    let vault = store(dir.path(), KEY);
    let secret = Bytes::from("attack at dawn; ".repeat(10_000));
    let key = Key::new("plans.txt").unwrap();
    vault
        .put(&key, secret.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let first = std::fs::read(object_file(dir.path(), "plans.txt")).unwrap();
    assert!(
        !first.windows(16).any(|w| w == b"attack at dawn; "),
        "plaintext on disk"
    );
    // The same plaintext again: a new salt, so other ciphertext.
    vault
        .put(&key, secret.clone().into(), PutOptions::default())
        .await
        .unwrap();
    let second = std::fs::read(object_file(dir.path(), "plans.txt")).unwrap();
    // (The local backend's file also holds its own metadata, whose length
    // varies, so only the contents are compared.)
    assert!(
        !second.windows(16).any(|w| w == b"attack at dawn; "),
        "plaintext on disk"
    );
    assert_ne!(first, second);
    assert_eq!(
        read(&vault, &key, GetOptions::default()).await.unwrap(),
        secret
    );
}

#[tokio::test]
async fn the_wrong_key_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("a").unwrap();
    store(dir.path(), KEY)
        .put(&key, "secret".into(), PutOptions::default())
        .await
        .unwrap();
    let err = read(&store(dir.path(), OTHER_KEY), &key, GetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
}

#[tokio::test]
async fn an_altered_truncated_or_extended_object_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let vault = store(dir.path(), KEY);
    let key = Key::new("doc").unwrap();
    vault
        .put(&key, pattern(1, 200_000).into(), PutOptions::default())
        .await
        .unwrap();
    let path = object_file(dir.path(), "doc");
    let original = std::fs::read(&path).unwrap();

    let mut flipped = original.clone();
    flipped[150_000] ^= 0x80;
    std::fs::write(&path, &flipped).unwrap();
    let err = read(&vault, &key, GetOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    // A range in an untouched segment still reads; the altered one fails.
    assert_eq!(
        read(
            &vault,
            &key,
            GetOptions::default().with_range(ByteRange::bounded(0..1000))
        )
        .await
        .unwrap(),
        pattern(1, 200_000).slice(0..1000)
    );

    // Drop the last segment whole: the new last one was not sealed as last.
    let cut = original.len() - (200_000 - 3 * 65_536) - 16;
    std::fs::write(&path, &original[..cut]).unwrap();
    let err = read(&vault, &key, GetOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");

    // A stored size no plaintext has.
    let mut longer = original.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    let err = vault.head(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
}

#[tokio::test]
async fn every_range_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let vault = store(dir.path(), KEY);
    let segment = 65_536u64;
    for size in [1u64, segment - 1, segment, segment + 1, 3 * segment + 17] {
        let data = pattern(size, size as usize);
        let key = Key::new(format!("obj-{size}")).unwrap();
        // Streamed in odd pieces, unknown length.
        vault
            .put(&key, chunked(data.clone(), 7_777), PutOptions::default())
            .await
            .unwrap();
        assert_eq!(vault.head(&key).await.unwrap().size, size);
        let mut cuts = vec![
            0,
            1,
            segment - 1,
            segment,
            segment + 1,
            2 * segment,
            size - 1,
            size,
        ];
        cuts.retain(|c| *c <= size);
        for &start in &cuts {
            for &end in &cuts {
                if start >= end {
                    continue;
                }
                let got = read(
                    &vault,
                    &key,
                    GetOptions::default().with_range(ByteRange::bounded(start..end)),
                )
                .await
                .unwrap();
                assert_eq!(
                    got,
                    data.slice(start as usize..end as usize),
                    "{size}: {start}..{end}"
                );
            }
        }
        let tail = read(
            &vault,
            &key,
            GetOptions::default().with_range(ByteRange::Suffix(10)),
        )
        .await
        .unwrap();
        assert_eq!(tail, data.slice(size.saturating_sub(10) as usize..));
    }
}

#[tokio::test]
async fn the_configuration_file_selects_the_loaded_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = std::env::var_os("STORAGE_TEST_PLUGIN_DIR")
        .map(std::path::PathBuf::from)
        .expect("STORAGE_TEST_PLUGIN_DIR is not set: run `cargo xtask test`")
        .join("storage_plugin_encrypted");
    let toml = format!(
        "default = \"vault\"\n[providers.vault]\ntype = \"plugin\"\npath = {:?}\nroot = \"data\"\nkey = \"${{TEST_VAULT_KEY}}\"\n",
        plugin.display().to_string()
    );
    let file = dir.path().join("storage.toml");
    std::fs::write(&file, toml).unwrap();
    let registry = storage_core::config::Registry::with_factories(&[&storage_plugin_api::FACTORY]);

    // The key comes from the environment; without it, a clear refusal.
    let err = storage_core::config::Config::load_with(&file, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("TEST_VAULT_KEY"), "{err}");
    let config = storage_core::config::Config::load_with(&file, &|name| {
        (name == "TEST_VAULT_KEY").then(|| KEY.to_owned())
    })
    .unwrap();
    let vault = registry.build(&config, "vault").await.unwrap();
    let key = Key::new("k").unwrap();
    vault
        .put(&key, "through the plugin".into(), PutOptions::default())
        .await
        .unwrap();
    // Relative `root` is relative to the configuration file.
    assert!(dir.path().join("data").is_dir());
    assert_eq!(
        &read(vault.as_ref(), &key, GetOptions::default())
            .await
            .unwrap()[..],
        b"through the plugin"
    );
    assert!(!format!("{vault:?}").contains(KEY));

    // A wrong key value is refused without echoing it.
    let bad = storage_core::config::Config::load_with(&file, &|name| {
        (name == "TEST_VAULT_KEY").then(|| "c2hvcnQta2V5".to_owned())
    })
    .unwrap();
    let err = registry.build(&bad, "vault").await.unwrap_err().to_string();
    assert!(err.contains("32 bytes"), "{err}");
    assert!(!err.contains("c2hvcnQta2V5"), "{err}");
}
