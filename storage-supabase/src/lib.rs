#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

mod backend;
mod client;
mod config;
mod error;
mod names;
mod resource;
mod tus;
mod upload;

use std::sync::Arc;

pub use backend::SupabaseStorage;
pub use config::SupabaseConfig;

use storage_core::Storage;
use storage_core::config::{ConfigError, ProviderConfig, ProviderFactory, ProviderFuture};

/// `type = "supabase"`: the factory this crate registers (see
/// [`SupabaseConfig`] for the table's fields).
pub const FACTORY: ProviderFactory = ProviderFactory {
    type_name: "supabase",
    description: "a Supabase Storage bucket (hosted project or self-hosted server)",
    create,
};

storage_core::inventory::submit!(FACTORY);

/// Reads a `type = "supabase"` table into a [`SupabaseConfig`], checked.
pub fn config_from(table: &ProviderConfig<'_>) -> Result<SupabaseConfig, ConfigError> {
    let mut config: SupabaseConfig = table.parse()?;
    config.name = table.name().to_owned();
    config.validate().map_err(|message| table.error(message))?;
    Ok(config)
}

fn create(table: &ProviderConfig<'_>) -> Result<ProviderFuture, ConfigError> {
    let config = config_from(table)?;
    Ok(Box::pin(async move {
        let create = config.create_bucket;
        let store = SupabaseStorage::new(config)?;
        if create && store.create_bucket().await? {
            tracing::info!(provider = %store.config().name, bucket = %store.config().bucket, "created the bucket");
        }
        Ok(Arc::new(store) as Arc<dyn Storage>)
    }))
}
