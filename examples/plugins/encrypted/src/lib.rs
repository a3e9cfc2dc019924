//! A runtime plugin: client-side encryption over a local folder.
//!
//! Built as a `cdylib`, this crate is a storage provider that a host loads
//! by path from its configuration, without being compiled with it:
//!
//! ```toml
//! [providers.vault]
//! type = "plugin"
//! path = "../../target/debug/libstorage_plugin_encrypted.so"   # relative to this file
//! root = "vault"                 # the folder for the ciphertext, relative to this file
//! key = "${VAULT_KEY}"           # 32 bytes, standard base64
//! ```
//!
//! Every object is sealed with AES-256-GCM in 64 KiB segments under a key
//! derived per object (format in [`cipher`]); the folder holds only
//! ciphertext, and a wrong key or an altered byte fails the read with
//! `Corruption`. Streams stay streams: at most two segments of an object
//! are in memory at a time, whatever its size.
//!
//! The whole plugin side is [`open`] plus one line:
//! `storage_plugin_api::export_plugin!("encrypted" => open);`.
//! The same provider links statically too ([`EncryptedStorage`]), which
//! the plugin-boundary benchmark compares against.
//!
//! Build it and run the demo host with one command: `cargo xtask example plugin`
//! (it runs `cargo build -p storage-plugin-encrypted`, then
//! `cargo run -p storage-examples --bin plugin_demo`).

pub mod backend;
pub mod cipher;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use storage_core::Result;
use storage_local::{LocalConfig, LocalStorage};
use storage_plugin_api::export::ProviderSettings;

pub use backend::EncryptedStorage;
pub use cipher::MasterKey;

/// The plugin's settings: the rest of its `[providers.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedSettings {
    /// The folder that holds the ciphertext.
    root: PathBuf,
    /// The master key: 32 bytes in standard base64.
    key: String,
    /// Whether writes are flushed to disk before they count (default true).
    #[serde(default = "default_fsync")]
    fsync: bool,
}

fn default_fsync() -> bool {
    true
}

/// Opens `type = "encrypted"`: the local folder `root`, encrypted with
/// `key`.
pub async fn open(settings: ProviderSettings) -> Result<EncryptedStorage> {
    let parsed: EncryptedSettings = settings.parse()?;
    let key = MasterKey::from_base64(&parsed.key)
        .map_err(|err| err.context(storage_core::Operation::Open, settings.name(), None))?;
    let config = LocalConfig::new(settings.resolve(&parsed.root))
        .with_name(settings.name())
        .with_fsync(parsed.fsync);
    let inner = LocalStorage::open(config)?;
    tracing::info!(provider = settings.name(), root = %inner.root().display(), "encrypted store opened");
    Ok(EncryptedStorage::new(Arc::new(inner), key))
}

storage_plugin_api::export_plugin!("encrypted" => open);
