//! The conformance kit, unchanged, against the repository's Supabase
//! Storage test server (or a real server: see `tests/support`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use storage_core::conformance::Fixture;

async fn setup() -> Fixture {
    let test = support::store().await;
    Fixture::new(test.store).with_guard(test.server)
}

storage_core::conformance_suite!(setup);
