//! The conformance kit, unchanged, against the in-memory store loaded from
//! a plugin library: the same cases as `MemoryStorage` linked statically,
//! through the C boundary.

mod support;

use serde_json::json;
use storage_core::conformance::Fixture;
use storage_plugin_api::open_plugin;

async fn setup() -> Fixture {
    let path = support::plugin("storage-test-plugin-faulty");
    match open_plugin(&path, Some("memory"), "memory", &json!({})).await {
        Ok(store) => Fixture::from_arc(store),
        Err(err) => panic!("cannot open the plugin's memory store: {err}"),
    }
}

storage_core::conformance_suite!(setup);
