//! The conformance kit against the in-memory provider.

use storage_core::MemoryStorage;
use storage_core::conformance::Fixture;

storage_core::conformance_suite!(|| async { Fixture::new(MemoryStorage::new()) });
