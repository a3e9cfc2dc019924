//! The manager: key layout, routing, references, authorization.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use std::sync::Arc;
use std::time::Duration;

use storage_core::config::{Config, Registry};
use storage_core::manager::{Action, ArtifactRef, ArtifactSpec, Authorizer, Manager};
use storage_core::{Body, Bytes, Error, ErrorKind, GetOptions, PresignMethod};

const ROUTED: &str = r#"
default = "general"

[providers.general]
type = "memory"
[providers.media]
type = "memory"
[providers.acme]
type = "memory"
[providers.docs]
type = "memory"

[[routes]]
when = { tenant = "acme" }
provider = "acme"

[[routes]]
when = { artifact_type = "video", size_gt = "100MB" }
provider = "media"

[[routes]]
when = { content_type = ["application/pdf", "text/*"], size_lt = "10MiB" }
provider = "docs"

[[routes]]
provider = "general"
"#;

async fn manager(text: &str) -> Manager {
    let config = Config::parse("storage.toml", text).unwrap();
    Manager::from_config(&config, &Registry::new())
        .await
        .unwrap()
}

/// A body of `size` bytes that only declares its size (the routes must
/// not need to read it).
fn sized(size: u64) -> Body {
    let chunk = Bytes::from(vec![0u8; 1 << 20]);
    let full = size / (1 << 20);
    let rest = (size % (1 << 20)) as usize;
    let chunks = (0..full)
        .map(move |_| Ok(chunk.clone()))
        .chain((rest > 0).then(|| Ok(Bytes::from(vec![0u8; rest]))));
    Body::from_sized_stream(futures::stream::iter(chunks), size)
}

#[tokio::test]
async fn an_independent_table_of_artifacts_lands_on_the_expected_providers() {
    let manager = manager(ROUTED).await;
    // (tenant, type, size, content type, expected provider)
    let table: &[(&str, &str, u64, &str, &str)] = &[
        ("acme", "video", 200_000_000, "video/mp4", "acme"),
        ("acme", "image", 10, "image/png", "acme"),
        ("zeta", "video", 100_000_001, "video/mp4", "media"),
        ("zeta", "video", 100_000_000, "video/mp4", "general"),
        ("zeta", "video", 5, "video/mp4", "general"),
        ("zeta", "report", 1000, "application/pdf", "docs"),
        (
            "zeta",
            "notes",
            1000,
            "text/markdown; charset=utf-8",
            "docs",
        ),
        (
            "zeta",
            "report",
            10 * 1024 * 1024,
            "application/pdf",
            "general",
        ),
        ("zeta", "image", 1000, "image/png", "general"),
        (
            "zeta",
            "model",
            300_000_000,
            "application/octet-stream",
            "general",
        ),
    ];
    for (i, (tenant, kind, size, content_type, expected)) in table.iter().enumerate() {
        let spec = ArtifactSpec::new(*tenant, *kind, "b1", format!("a{i}"))
            .with_content_type(*content_type);
        let stored = manager.store(&spec, sized(*size)).await.unwrap();
        assert_eq!(
            stored.provider, *expected,
            "row {i}: {tenant} {kind} {size} {content_type}"
        );
        assert_eq!(stored.size, *size);
        assert_eq!(
            stored.key.as_str(),
            format!("{tenant}/{kind}/b1/a{i}/original")
        );
    }
}

#[tokio::test]
async fn a_stream_of_unknown_length_is_routed_by_its_size() {
    let manager = manager(ROUTED).await;
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let stream = futures::stream::iter((0..101).map(move |_| Ok(chunk.clone())));
    let spec = ArtifactSpec::new("zeta", "video", "b", "long").with_content_type("video/mp4");
    let stored = manager
        .store(&spec, Body::from_stream(stream))
        .await
        .unwrap();
    assert_eq!(stored.provider, "media");
    assert_eq!(stored.size, 101 << 20);
    let bytes = manager
        .open(&stored, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 101 << 20);
    assert!(bytes.iter().all(|&b| b == 7));
}

#[tokio::test]
async fn content_types_are_inferred_from_bytes_then_file_names() {
    let manager = manager(ROUTED).await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let spec = ArtifactSpec::new("t", "image", "b", "1");
    let stored = manager.store(&spec, png.into()).await.unwrap();
    assert_eq!(stored.content_type.as_deref(), Some("image/png"));

    let spec = ArtifactSpec::new("t", "doc", "b", "2").with_file_name("notes.json");
    let stored = manager.store(&spec, "{}".into()).await.unwrap();
    assert_eq!(stored.content_type.as_deref(), Some("application/json"));

    let spec = ArtifactSpec::new("t", "blob", "b", "3");
    let stored = manager.store(&spec, "????".into()).await.unwrap();
    assert_eq!(
        stored.content_type.as_deref(),
        Some("application/octet-stream")
    );
}

#[tokio::test]
async fn a_reference_still_works_after_the_routes_change() {
    let first = manager(ROUTED).await;
    let spec = ArtifactSpec::new("acme", "image", "b", "kept").with_content_type("image/png");
    let stored = first.store(&spec, "pixels".into()).await.unwrap();
    assert_eq!(stored.provider, "acme");
    let text = stored.to_string();
    let json = stored.to_json();

    // Same providers, routes that would now send it elsewhere.
    let rerouted = ROUTED.replace(
        "when = { tenant = \"acme\" }",
        "when = { tenant = \"nobody\" }",
    );
    let config = Config::parse("storage.toml", &rerouted).unwrap();
    let second = Manager::new(
        first.providers().clone(),
        config.routes().to_vec(),
        config.layout().clone(),
    );
    for reference in [
        text.parse::<ArtifactRef>().unwrap(),
        ArtifactRef::from_json(&json).unwrap(),
    ] {
        assert_eq!(reference, stored);
        let bytes = second
            .open(&reference, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"pixels");
        assert_eq!(second.head(&reference).await.unwrap().size, 6);
    }
    assert!(second.delete(&stored).await.unwrap());
    assert!(!second.delete(&stored).await.unwrap());
}

#[derive(Debug)]
struct OnlyTenant(&'static str);

#[storage_core::async_trait]
impl Authorizer for OnlyTenant {
    async fn authorize(&self, action: Action, artifact: &ArtifactRef) -> storage_core::Result<()> {
        if artifact.key.as_str().starts_with(&format!("{}/", self.0)) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{action:?} refused"),
            ))
        }
    }
}

#[tokio::test]
async fn the_authorizer_is_asked_before_reads_presigns_and_deletes() {
    let manager = manager(ROUTED).await;
    let spec = ArtifactSpec::new("acme", "image", "b", "secret");
    let stored = manager.store(&spec, "x".into()).await.unwrap();
    let guarded = manager.with_authorizer(Arc::new(OnlyTenant("zeta")));
    let denied = |err: Error| assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    denied(
        guarded
            .open(&stored, GetOptions::default())
            .await
            .unwrap_err(),
    );
    denied(guarded.head(&stored).await.unwrap_err());
    denied(
        guarded
            .presign(&stored, PresignMethod::Get, Duration::from_secs(60))
            .await
            .unwrap_err(),
    );
    denied(guarded.delete(&stored).await.unwrap_err());
    // Nothing was deleted.
    assert!(manager.open(&stored, GetOptions::default()).await.is_ok());
    let allowed = manager.with_authorizer(Arc::new(OnlyTenant("acme")));
    assert!(allowed.open(&stored, GetOptions::default()).await.is_ok());
}

#[tokio::test]
async fn a_layout_value_that_is_missing_or_not_one_segment_is_refused() {
    let with_file_name = format!("layout = \"{{tenant}}/{{artifact_id}}/{{file_name}}\"\n{ROUTED}");
    let manager = manager(&with_file_name).await;
    let spec = ArtifactSpec::new("t", "image", "b", "1");
    let err = manager.store(&spec, "x".into()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("{file_name}"), "{err}");
    let spec = ArtifactSpec::new("t", "image", "b", "../1").with_file_name("f");
    let err = manager.store(&spec, "x".into()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::InvalidKey),
        "{err}"
    );
    let spec = ArtifactSpec::new("t", "image", "b", "1").with_file_name("a.png");
    let stored = manager.store(&spec, "x".into()).await.unwrap();
    assert_eq!(stored.key.as_str(), "t/1/a.png");
}

#[tokio::test]
async fn health_probes_every_provider() {
    let manager = manager(ROUTED).await;
    let report = manager.health().await;
    let names: Vec<&str> = report.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["acme", "docs", "general", "media"]);
    assert!(report.iter().all(|h| h.healthy && h.error.is_none()));
}
