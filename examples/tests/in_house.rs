//! The third-party provider of `storage_examples::in_house`: found by the
//! registry through `inventory`, built from a configuration file, its rule
//! enforced, and the conformance kit passed like any first-party backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use futures::stream;
use storage_core::config::{ByteSize, Config, Registry};
use storage_core::conformance::Fixture;
use storage_core::{Body, Bytes, ErrorKind, Key, PutOptions, Storage};
use storage_examples::in_house::{self, InHouseConfig, InHouseStorage};

const TABLE: &str =
    "default = \"scratch\"\n[providers.scratch]\ntype = \"in-house\"\nmax_object_size = \"1KiB\"\n";

#[test]
fn inventory_registers_it_once_the_crate_is_linked() {
    // This file uses the crate, so the linker keeps its static
    // constructor, and the plain registry sees the type.
    let registry = Registry::new();
    assert!(
        registry.types().any(|f| f.type_name == "in-house"),
        "the in-house type is missing: {:?}",
        registry.types().map(|f| f.type_name).collect::<Vec<_>>()
    );
    // The explicit way, which needs no linker luck at all.
    let explicit = Registry::with_factories(&[&in_house::FACTORY]);
    assert!(explicit.types().any(|f| f.type_name == "in-house"));
}

#[tokio::test]
async fn a_configuration_file_builds_it_and_its_rule_holds() {
    let config = Config::parse("storage.toml", TABLE).unwrap();
    let store = Registry::new().build(&config, "scratch").await.unwrap();
    let key = Key::new("small.txt").unwrap();
    store
        .put(&key, vec![1u8; 1024].into(), PutOptions::default())
        .await
        .unwrap();

    let big = Key::new("big.bin").unwrap();
    let err = store
        .put(&big, vec![1u8; 1025].into(), PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert_eq!(err.provider(), Some("scratch"));

    // A stream of unknown length is refused when it crosses the limit, and
    // nothing is stored.
    let pieces = (0..3).map(|_| Ok(Bytes::from(vec![2u8; 400])));
    let err = store
        .put(
            &big,
            Body::from_stream(stream::iter(pieces)),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
    assert!(!store.exists(&big).await.unwrap());
}

#[test]
fn mistakes_in_its_table_name_the_line() {
    let typo = "[providers.scratch]\ntype = \"in-house\"\nmax_object_sise = \"1KiB\"\n";
    let config = Config::parse("storage.toml", typo).unwrap();
    let err = Registry::new().check(&config).unwrap_err().to_string();
    assert!(err.starts_with("storage.toml:3:"), "{err}");
    assert!(err.contains("max_object_sise"), "{err}");
}

async fn setup() -> Fixture {
    let config = InHouseConfig {
        max_object_size: ByteSize(64 << 20),
    };
    Fixture::new(InHouseStorage::new("in-house", config))
}

storage_core::conformance_suite!(setup);
