//! The conformance kit against the local backend, presigned URLs served by
//! its axum router on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use storage_core::conformance::Fixture;
use storage_local::{LocalConfig, LocalStorage};

async fn local_with_presign_server() -> Fixture {
    serve(LocalConfig::new("unused")).await
}

/// A store for `config` (its root replaced by a fresh folder), with
/// presigning served on 127.0.0.1 and checksums verified.
async fn serve(config: LocalConfig) -> Fixture {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port on 127.0.0.1");
    let address = listener.local_addr().expect("the bound address");
    let public_url = format!("http://{address}/files").parse().expect("a URL");
    let mut config = config;
    config.root = folder.path().join("root");
    let config = config
        .with_presign(public_url, "conformance-signing-secret")
        .with_verify_checksums(true);
    let store = LocalStorage::open(config).expect("the local store opens");
    let app = storage_local::router(store.clone()).expect("the presign router");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Fixture::new(store)
        .with_guard(folder)
        .with_guard(AbortOnDrop(server))
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

storage_core::conformance_suite!(local_with_presign_server);

/// The same kit with every read on the blocking pool: the path taken when
/// the kernel's caches miss, or on systems without non-waiting calls.
mod blocking_reads {
    use super::*;

    async fn setup() -> Fixture {
        serve(LocalConfig::new("unused").with_cached_reads(false)).await
    }

    storage_core::conformance_suite!(setup);
}

/// The same kit with puts through named temporary files renamed into
/// place: the path taken where unnamed files (`O_TMPFILE`) are missing.
mod named_temp_files {
    use super::*;

    async fn setup() -> Fixture {
        serve(LocalConfig::new("unused").with_unnamed_temp_files(false)).await
    }

    storage_core::conformance_suite!(setup);
}

/// The same kit through the validation layer with a size limit: presigned
/// uploads would bypass it, so the stack declares `presign_put` false and
/// the kit checks they are refused as unsupported, while presigned
/// downloads and everything else still pass.
mod validated {
    use super::*;
    use std::sync::Arc;
    use storage_core::Storage;
    use storage_core::config::ByteSize;
    use storage_core::layers::{Validation, ValidationConfig};

    async fn setup() -> Fixture {
        local_with_presign_server().await.map_storage(|local| {
            let mut config = ValidationConfig::default();
            config.max_size = Some(ByteSize(64 << 20));
            let validated = Validation::new(local, config);
            assert!(!validated.capabilities().presign_put);
            Arc::new(validated)
        })
    }

    storage_core::conformance_suite!(setup);
}
