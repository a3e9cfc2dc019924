//! `type = "plugin"` in a configuration file.
//!
//! ```toml
//! [providers.vault]
//! type = "plugin"
//! path = "target/debug/libstorage_plugin_encrypted.so"  # relative to this file
//! provider = "encrypted"        # the plugin's provider type; optional if it has one
//! root = "./vault"              # everything else is the plugin's own settings
//! key = "${VAULT_KEY}"
//! ```
//!
//! The library is loaded (and its declaration checked) when the table is
//! checked, so `storage check` reports a wrong path or a broken plugin at
//! the `path` line; the provider is opened, with its settings, when it is
//! built.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use storage_core::config::{ConfigError, ProviderConfig, ProviderFactory, ProviderFuture};
use storage_core::{Error, Operation};

use crate::host::Plugin;

/// The registry entry of `type = "plugin"`. The facade's `plugins`
/// feature references it; it is also submitted with `inventory`.
pub static FACTORY: ProviderFactory = ProviderFactory {
    type_name: "plugin",
    description: "a provider from a dynamic library (path = \"...\"), loaded at run time",
    create,
};

inventory::submit!(FACTORY);

/// The host's part of a plugin provider's table; the rest is the plugin's.
#[derive(Debug, Deserialize)]
struct PluginTable {
    /// The library, relative to the configuration file's folder.
    path: PathBuf,
    /// Which of the plugin's provider types.
    provider: Option<String>,
    /// The plugin's own settings.
    #[serde(flatten)]
    settings: BTreeMap<String, toml::Value>,
}

fn create(table: &ProviderConfig<'_>) -> Result<ProviderFuture, ConfigError> {
    let parsed: PluginTable = table.parse()?;
    let path = match table.base_dir() {
        Some(base) if parsed.path.is_relative() => base.join(&parsed.path),
        _ => parsed.path.clone(),
    };
    let plugin = Plugin::load(&path).map_err(|err| table.field_error("path", err.to_string()))?;
    let provider_type = plugin
        .choose_type(parsed.provider.as_deref())
        .map_err(|why| table.field_error("provider", why))?;
    let settings = serde_json::to_value(&parsed.settings)
        .map_err(|err| table.error(format!("the plugin's settings cannot be passed on: {err}")))?;
    let name = table.name().to_owned();
    let base_dir = table.base_dir().map(std::path::Path::to_owned);
    // The plugin sees the settings with their values from the environment,
    // and its own parser may quote one in a refusal: mask them here.
    let mask = table.secret_mask();
    Ok(Box::pin(async move {
        let storage = plugin
            .open(&provider_type, &name, &settings, base_dir.as_deref())
            .await
            .map_err(|err| {
                Error::new(err.kind(), mask.apply(err.message()))
                    .with_retryable(err.is_retryable())
                    .context(Operation::Open, &name, None)
            })?;
        Ok(std::sync::Arc::new(storage) as std::sync::Arc<dyn storage_core::Storage>)
    }))
}
