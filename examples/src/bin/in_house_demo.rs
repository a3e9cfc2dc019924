//! A third-party provider type, compiled in and registered with
//! `inventory`, selected by `examples/in_house.toml` like any built-in
//! type.
//!
//! ```text
//! cargo run -p storage-examples --bin in_house_demo
//! ```
//!
//! `storage::registry()` collects every factory submitted with
//! `inventory::submit!` in the binary: this one lives in
//! `storage_examples::in_house`, which this binary links because it names
//! the module below (the linker pitfall and its fix are in that module's
//! docs).

use std::path::PathBuf;

use storage::{ErrorKind, Key, PutOptions};
use storage_examples::in_house;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("in_house.toml"));
    let config = storage::load_config(Some(&file))?;
    // Naming the factory keeps the crate linked (see above).
    let registry = storage::registry();
    assert!(
        registry
            .types()
            .any(|t| t.type_name == in_house::FACTORY.type_name)
    );
    for factory in registry.types() {
        println!("type {:<10} {}", factory.type_name, factory.description);
    }
    let providers = registry.build_all(&config).await?;
    let scratch = providers.default_provider()?;

    let small = Key::new("small.bin")?;
    let stored = scratch
        .put(&small, vec![0u8; 1000].into(), PutOptions::default())
        .await?;
    println!(
        "stored {} bytes at {small} on {:?}",
        stored.size,
        scratch.name()
    );

    let big = Key::new("big.bin")?;
    match scratch
        .put(&big, vec![0u8; 2 << 20].into(), PutOptions::default())
        .await
    {
        Err(err) if err.kind() == ErrorKind::QuotaExceeded => {
            println!("refused as configured: {err}")
        }
        other => return Err(format!("the 1 MiB limit did not hold: {other:?}").into()),
    }
    Ok(())
}
