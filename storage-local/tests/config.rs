//! The local backend built from a configuration file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use storage_core::config::{Config, Registry};
use storage_core::{Key, PutOptions, Storage};

fn registry() -> Registry {
    Registry::with_factories(&[&storage_local::FACTORY])
}

#[test]
fn a_wrong_type_in_a_local_table_names_the_field_line_and_column() {
    let text = "[providers.files]\ntype = \"local\"\nroot = \"data\"\nfsync = \"yes\"\n";
    let config = Config::parse("storage.toml", text).unwrap();
    let err = registry().check(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "storage.toml:4:9: provider \"files\": invalid type: string \"yes\", expected a boolean"
    );
}

#[test]
fn an_unknown_local_field_lists_the_known_ones() {
    let text = "[providers.files]\ntype = \"local\"\nroot = \"data\"\nroute = \"x\"\n";
    let config = Config::parse("storage.toml", text).unwrap();
    let err = registry().check(&config).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "storage.toml:4:1: provider \"files\": unknown field `route`, expected one of `root`"
        ),
        "{err}"
    );
}

#[test]
fn half_configured_presigning_is_refused_at_check_time() {
    let text = "[providers.files]\ntype = \"local\"\nroot = \"data\"\npublic_url = \"http://127.0.0.1:8080/files\"\n";
    let config = Config::parse("storage.toml", text).unwrap();
    let err = registry().check(&config).unwrap_err().to_string();
    assert!(
        err.contains("public_url and signing_secret go together"),
        "{err}"
    );
}

#[tokio::test]
async fn a_relative_root_is_relative_to_the_configuration_file() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("storage.toml");
    std::fs::write(
        &file,
        "[providers.files]\ntype = \"local\"\nroot = \"./data\"\n",
    )
    .unwrap();
    let config = Config::load(&file).unwrap();
    let store = registry().build(&config, "files").await.unwrap();
    assert_eq!(store.name(), "files");
    store
        .put(&Key::new("k").unwrap(), "v".into(), PutOptions::default())
        .await
        .unwrap();
    assert!(folder.path().join("data").join("k~").exists());
}

#[test]
fn the_local_type_registers_itself_through_inventory() {
    // This test binary references the crate, so its submission is linked.
    let _ = &storage_local::FACTORY;
    let types: Vec<&str> = Registry::new().types().map(|f| f.type_name).collect();
    assert!(
        types.contains(&"local") && types.contains(&"memory"),
        "{types:?}"
    );
}

#[test]
fn durability_and_read_settings_are_read_from_the_table() {
    let text = "[providers.files]\ntype = \"local\"\nroot = \"data\"\n\
                fsync_folder = false\ncached_reads = false\nunnamed_temp_files = false\n";
    let config = Config::parse("storage.toml", text).unwrap();
    let local = config
        .with_provider("files", storage_local::config_from)
        .unwrap();
    assert!(local.fsync, "fsync stays on by default");
    assert!(!local.fsync_folder);
    assert!(!local.cached_reads);
    assert!(!local.unnamed_temp_files);
    let defaults = storage_local::LocalConfig::new("data");
    assert!(defaults.fsync && defaults.fsync_folder && defaults.cached_reads);
    assert!(defaults.unnamed_temp_files);
}
