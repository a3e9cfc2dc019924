//! What the Supabase test binaries share: the test server (or a real one)
//! and stores pointed at it.
//!
//! By default every test starts the repository's own server
//! (`server.rs`). Set `STORAGE_TEST_SUPABASE_URL` (a storage root, e.g.
//! `http://127.0.0.1:5000`) and `STORAGE_TEST_SUPABASE_KEY` (a service-role
//! key) to run the same tests against a real Supabase Storage server.

#![allow(dead_code)] // Each test binary uses part of it.

pub(crate) mod server;

use std::time::Duration;

use storage_supabase::{SupabaseConfig, SupabaseStorage};

/// A store and what must outlive it.
pub(crate) struct TestStore {
    pub(crate) store: SupabaseStorage,
    pub(crate) url: String,
    pub(crate) key: String,
    pub(crate) server: Option<server::SupabaseServer>,
}

/// A bucket on the configured real server, else on a new test server
/// whose signed upload URLs live `upload_url_lifetime`.
pub(crate) async fn store_with(
    upload_url_lifetime: Duration,
    tweak: impl FnOnce(&mut SupabaseConfig),
) -> TestStore {
    let (url, key, server) = match (
        std::env::var("STORAGE_TEST_SUPABASE_URL"),
        std::env::var("STORAGE_TEST_SUPABASE_KEY"),
    ) {
        (Ok(url), Ok(key)) => (url, key, None),
        _ => {
            let server = server::SupabaseServer::start(upload_url_lifetime).await;
            (server.url.clone(), server::service_key(), Some(server))
        }
    };
    let bucket = format!("test-{:08x}", fastrand::u32(..));
    let mut config = SupabaseConfig::new(&url, bucket).with_key(key.as_str());
    config.create_bucket = true;
    tweak(&mut config);
    let store = SupabaseStorage::new(config).unwrap();
    assert!(
        store.create_bucket().await.unwrap(),
        "a fresh bucket is created"
    );
    TestStore {
        store,
        url,
        key,
        server,
    }
}

/// A store with the real server's 60 s upload-URL lifetime.
pub(crate) async fn store() -> TestStore {
    store_with(Duration::from_secs(60), |_| {}).await
}
