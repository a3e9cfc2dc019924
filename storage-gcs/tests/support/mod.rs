//! What the GCS test binaries share: the servers' addresses from the
//! environment `cargo xtask test` sets, and stores pointed at them.

#![allow(dead_code)] // Each test binary uses part of it.

use storage_gcs::{GcsConfig, GcsStorage};

/// A variable the test command sets; missing means the servers are not
/// running, which fails the test rather than skipping it.
pub(crate) fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: the GCS test servers are not running; use `cargo xtask test`")
    })
}

/// The configuration of a store on the emulator at `endpoint`, signing
/// with the run's generated service-account key.
pub(crate) fn config(name: &str, endpoint: &str) -> GcsConfig {
    GcsConfig::new(var("STORAGE_TEST_GCS_BUCKET"))
        .with_name(name)
        .with_base_url(endpoint)
        .with_service_account_path(var("STORAGE_TEST_GCS_SERVICE_ACCOUNT"))
}

/// A store on fake-gcs-server.
pub(crate) fn fake_gcs() -> GcsStorage {
    GcsStorage::new(config("fake-gcs-server", &var("STORAGE_TEST_FAKE_GCS_ENDPOINT"))).unwrap()
}

/// A store on gcp-storage-emulator.
pub(crate) fn emulator() -> GcsStorage {
    GcsStorage::new(config(
        "gcp-storage-emulator",
        &var("STORAGE_TEST_GCS_EMULATOR_ENDPOINT"),
    ))
    .unwrap()
}
