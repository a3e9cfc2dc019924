//! What an application that depends only on the facade gets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use storage::config::Config;
use storage::{GetOptions, Key, PutOptions};

#[tokio::test]
async fn the_local_feature_builds_a_local_provider_from_a_file() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("storage.toml");
    std::fs::write(
        &file,
        "[providers.files]\ntype = \"local\"\nroot = \"data\"\n",
    )
    .unwrap();
    let config = storage::load_config(Some(&file)).unwrap();
    let providers = storage::registry().build_all(&config).await.unwrap();
    let store = providers.default_provider().unwrap();
    let key = Key::new("a/b.txt").unwrap();
    store
        .put(&key, "hello".into(), PutOptions::default())
        .await
        .unwrap();
    let bytes = store
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello");
}

#[test]
fn a_type_this_build_lacks_names_the_feature_that_adds_it() {
    let built = built_types();
    // A first-party type this build lacks names its feature; with every
    // feature on, an unknown type says that no feature adds it.
    let lacking = [
        ("s3", "s3"),
        ("gcs", "gcs"),
        ("supabase", "supabase"),
        ("plugin", "plugins"),
    ]
    .into_iter()
    .find(|(type_name, _)| !built.contains(type_name));
    let (type_name, hint) = match lacking {
        Some((type_name, feature)) => (
            type_name,
            format!("enable the {feature:?} feature of the storage crate (or link its backend crate) to add it"),
        ),
        None => (
            "ftp",
            "no feature adds it: link the crate that provides it, or load it with type = \"plugin\"".to_owned(),
        ),
    };
    let config = Config::parse(
        "app.toml",
        &format!("[providers.media]\ntype = \"{type_name}\"\npath = \"x.so\"\n"),
    )
    .unwrap();
    let err = storage::registry().check(&config).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "app.toml:2:8: provider \"media\": unknown provider type \"{type_name}\"; this binary has: {}; {hint}",
            built.join(", ")
        )
    );
}

#[test]
fn the_registry_lists_its_types_with_descriptions() {
    let registry = storage::registry();
    let types: Vec<(&str, bool)> = registry
        .types()
        .map(|f| (f.type_name, !f.description.is_empty()))
        .collect();
    let expected: Vec<(&str, bool)> = built_types().into_iter().map(|t| (t, true)).collect();
    assert_eq!(types, expected);
}

/// The types this build should have: memory always, the rest by feature.
fn built_types() -> Vec<&'static str> {
    let mut types = vec!["memory"];
    if cfg!(feature = "local") {
        types.push("local");
    }
    if cfg!(feature = "s3") {
        types.push("s3");
    }
    if cfg!(feature = "gcs") {
        types.push("gcs");
    }
    if cfg!(feature = "supabase") {
        types.push("supabase");
    }
    if cfg!(feature = "plugins") {
        types.push("plugin");
    }
    types.sort();
    types
}
