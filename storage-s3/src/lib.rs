#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod backend;
mod config;
mod error;

use std::sync::Arc;

pub use backend::S3Storage;
pub use config::S3Config;

use storage_core::Storage;
use storage_core::config::{ConfigError, ProviderConfig, ProviderFactory, ProviderFuture};

/// `type = "s3"`: the factory this crate registers (see [`S3Config`] for
/// the table's fields).
pub const FACTORY: ProviderFactory = ProviderFactory {
    type_name: "s3",
    description: "an S3 or S3-compatible bucket (AWS, R2, MinIO, B2, Wasabi, Ceph, Supabase S3)",
    create,
};

storage_core::inventory::submit!(FACTORY);

/// Reads a `type = "s3"` table into an [`S3Config`], checked.
pub fn config_from(table: &ProviderConfig<'_>) -> Result<S3Config, ConfigError> {
    let mut config: S3Config = table.parse()?;
    config.name = table.name().to_owned();
    config.validate().map_err(|message| table.error(message))?;
    Ok(config)
}

fn create(table: &ProviderConfig<'_>) -> Result<ProviderFuture, ConfigError> {
    let config = config_from(table)?;
    Ok(Box::pin(async move {
        let create = config.create_bucket;
        let store = S3Storage::new(config)?;
        if create && store.create_bucket().await? {
            tracing::info!(provider = %store.config().name, bucket = %store.config().bucket, "created the bucket");
        }
        Ok(Arc::new(store) as Arc<dyn Storage>)
    }))
}
