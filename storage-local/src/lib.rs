#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod backend;
mod buffers;
mod cached;
mod config;
mod error;
mod format;
mod layout;
mod list;
mod presign;
#[cfg(feature = "server")]
mod server;
mod stream;
mod unnamed;
mod writeback;

pub use backend::LocalStorage;
pub use config::LocalConfig;
pub use presign::{MIN_SECRET_LEN, Refusal, UrlSigner};
#[cfg(feature = "server")]
pub use server::router;

use std::sync::Arc;

use storage_core::Storage;
use storage_core::config::{ConfigError, ProviderConfig, ProviderFactory, ProviderFuture};

/// `type = "local"`: the factory this crate registers (see
/// [`LocalConfig`] for the table's fields). Relative roots are relative to
/// the configuration file's folder.
pub const FACTORY: ProviderFactory = ProviderFactory {
    type_name: "local",
    description: "a folder on this machine (atomic writes, presigned URLs via `storage serve`)",
    create,
};

storage_core::inventory::submit!(FACTORY);

/// Reads a `type = "local"` table into a [`LocalConfig`], as the factory
/// does: relative roots resolved against the configuration file's folder,
/// presign settings checked.
pub fn config_from(table: &ProviderConfig<'_>) -> Result<LocalConfig, ConfigError> {
    let mut config: LocalConfig = table.parse()?;
    config.name = table.name().to_owned();
    if config.root.as_os_str().is_empty() {
        return Err(table.error("root must not be empty"));
    }
    if let Some(base) = table.base_dir()
        && config.root.is_relative()
    {
        config.root = base.join(&config.root);
    }
    if config.public_url.is_some() != config.signing_secret.is_some() {
        return Err(table
            .error("public_url and signing_secret go together: set both to presign, or neither"));
    }
    Ok(config)
}

fn create(table: &ProviderConfig<'_>) -> Result<ProviderFuture, ConfigError> {
    let config = config_from(table)?;
    Ok(Box::pin(async move {
        let store = tokio::task::spawn_blocking(move || LocalStorage::open(config))
            .await
            .map_err(|err| {
                storage_core::Error::new(
                    storage_core::ErrorKind::Other,
                    "opening the folder did not complete",
                )
                .with_source(err)
            })??;
        Ok(Arc::new(store) as Arc<dyn Storage>)
    }))
}

/// A folder for unit tests on the disk the tests were built on, not in
/// `/tmp`, which is often tmpfs, where `RESOLVE_CACHED` opens never succeed
/// (so the non-waiting path would always miss and go untested).
#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
fn scratch_folder() -> tempfile::TempDir {
    let exe = std::env::current_exe().unwrap();
    tempfile::tempdir_in(exe.parent().unwrap()).unwrap()
}
