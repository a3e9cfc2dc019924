#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod backend;
mod client;
mod config;
mod credentials;
mod download;
mod error;
mod resource;
mod signer;
#[cfg(all(test, feature = "test-servers"))]
mod signer_reference_tests;
mod upload;

use std::sync::Arc;

pub use backend::GcsStorage;
pub use config::GcsConfig;

use storage_core::Storage;
use storage_core::config::{ConfigError, ProviderConfig, ProviderFactory, ProviderFuture};

/// `type = "gcs"`: the factory this crate registers (see [`GcsConfig`]
/// for the table's fields).
pub const FACTORY: ProviderFactory = ProviderFactory {
    type_name: "gcs",
    description: "a Google Cloud Storage bucket (JSON API; emulators through base_url)",
    create,
};

storage_core::inventory::submit!(FACTORY);

/// Reads a `type = "gcs"` table into a [`GcsConfig`], checked.
pub fn config_from(table: &ProviderConfig<'_>) -> Result<GcsConfig, ConfigError> {
    let mut config: GcsConfig = table.parse()?;
    config.name = table.name().to_owned();
    config.validate().map_err(|message| table.error(message))?;
    Ok(config)
}

fn create(table: &ProviderConfig<'_>) -> Result<ProviderFuture, ConfigError> {
    let config = config_from(table)?;
    Ok(Box::pin(async move {
        let create = config.create_bucket;
        let store = GcsStorage::new(config)?;
        if create && store.create_bucket().await? {
            tracing::info!(provider = %store.config().name, bucket = %store.config().bucket, "created the bucket");
        }
        Ok(Arc::new(store) as Arc<dyn Storage>)
    }))
}
