//! The conformance kit against the in-memory provider.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use storage_core::MemoryStorage;
use storage_core::conformance::Fixture;

storage_core::conformance_suite!(|| async { Fixture::new(MemoryStorage::new()) });
