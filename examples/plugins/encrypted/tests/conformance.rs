//! The conformance kit against the encrypted provider, twice: linked
//! statically over a local folder, and loaded from its cdylib by path the
//! way a host loads it from a configuration file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use storage_core::conformance::Fixture;
use storage_local::{LocalConfig, LocalStorage};
use storage_plugin_encrypted::{EncryptedStorage, MasterKey};

/// A fixed test key, base64 of 32 bytes.
pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The cdylib built by `cargo xtask plugins`.
pub fn plugin_path() -> PathBuf {
    let dir = std::env::var_os("STORAGE_TEST_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!("STORAGE_TEST_PLUGIN_DIR is not set: run `cargo xtask test`, or `cargo xtask plugins` and export what it prints")
    });
    dir.join(format!(
        "{}storage_plugin_encrypted{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

mod linked {
    use super::*;

    async fn setup() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let inner = LocalStorage::open(LocalConfig::new(dir.path()).with_name("vault")).unwrap();
        let store = EncryptedStorage::new(Arc::new(inner), MasterKey::from_base64(KEY).unwrap());
        Fixture::new(store).with_guard(dir)
    }

    storage_core::conformance_suite!(setup);
}

mod loaded {
    use super::*;

    async fn setup() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let settings = json!({ "root": dir.path(), "key": KEY });
        let store = storage_plugin_api::open_plugin(&plugin_path(), None, "vault", &settings)
            .await
            .unwrap();
        Fixture::from_arc(store).with_guard(dir)
    }

    storage_core::conformance_suite!(setup);
}
