#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]

use std::path::Path;

pub use storage_core::*;

#[cfg(feature = "gcs")]
pub use storage_gcs as gcs;
#[cfg(feature = "local")]
pub use storage_local as local;
#[cfg(feature = "plugins")]
pub use storage_plugin_api as plugins;
#[cfg(feature = "s3")]
pub use storage_s3 as s3;
#[cfg(feature = "supabase")]
pub use storage_supabase as supabase;

use storage_core::config::{Config, ConfigError, Registry};

/// The file looked for in the current folder when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "storage.toml";
/// The variable that names a configuration file.
pub const CONFIG_VARIABLE: &str = "STORAGE_CONFIG";

/// The registry of every backend this build has.
///
/// Each backend whose feature is on is referenced here by name, so its
/// factory is linked and registered even though nothing else in the
/// binary mentions the backend crate (the linker pitfall described in
/// [`storage_core::config::Registry`]). Third-party factories submitted
/// with `inventory` are included too.
pub fn registry() -> Registry {
    Registry::with_factories(&[
        #[cfg(feature = "local")]
        &storage_local::FACTORY,
        #[cfg(feature = "s3")]
        &storage_s3::FACTORY,
        #[cfg(feature = "gcs")]
        &storage_gcs::FACTORY,
        #[cfg(feature = "supabase")]
        &storage_supabase::FACTORY,
        #[cfg(feature = "plugins")]
        &storage_plugin_api::FACTORY,
    ])
}

/// Loads the configuration: from `path` if given; else from the file in
/// `STORAGE_CONFIG`; else from `./storage.toml` if it exists; else from
/// the environment ([`Config::from_env`]).
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    if let Some(path) = path {
        return Config::load(path);
    }
    if let Some(path) = std::env::var_os(CONFIG_VARIABLE).filter(|p| !p.is_empty()) {
        tracing::debug!(path = %Path::new(&path).display(), "configuration from {CONFIG_VARIABLE}");
        return Config::load(Path::new(&path));
    }
    let default = Path::new(DEFAULT_CONFIG_FILE);
    if default.exists() {
        return Config::load(default);
    }
    Ok(Config::from_env())
}
