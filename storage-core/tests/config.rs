//! Configuration errors: each class of mistake names the file, line and
//! column and what was expected. Messages are snapshot-tested.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

use storage_core::config::{Config, Registry, RouteCondition};

fn env(name: &str) -> Option<String> {
    match name {
        "BUCKET" => Some("artifacts".into()),
        "TOKEN" => Some("hunter2-very-secret".into()),
        _ => None,
    }
}

fn error(text: &str) -> String {
    match Config::parse_with("storage.toml", text, &env) {
        Ok(config) => match Registry::new().check(&config) {
            Ok(()) => panic!("the configuration was accepted"),
            Err(err) => err.to_string(),
        },
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_syntax_error_points_at_the_line_and_column() {
    insta::assert_snapshot!(error(
        "default = \"m\"\n[providers.m]\ntype = \"memory\nroot = 1\n"
    ));
}

#[test]
fn an_unknown_field_in_a_provider_table_is_refused() {
    insta::assert_snapshot!(error("[providers.m]\ntype = \"memory\"\nroot = \"/tmp\"\n"));
}

#[test]
fn an_unknown_top_level_key_is_refused() {
    insta::assert_snapshot!(error("defualt = \"m\"\n[providers.m]\ntype = \"memory\"\n"));
}

#[test]
fn a_wrong_type_says_what_was_expected() {
    insta::assert_snapshot!(error(
        "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nwhen = { size_gt = true }\nprovider = \"m\"\n\n[[routes]]\nprovider = \"m\"\n"
    ));
}

#[test]
fn a_missing_variable_is_named_with_the_setting_that_uses_it() {
    insta::assert_snapshot!(error(
        "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nwhen = { tenant = \"${TENANT_NAME}\" }\nprovider = \"m\"\n\n[[routes]]\nprovider = \"m\"\n"
    ));
}

#[test]
fn an_unknown_provider_type_lists_the_built_in_types_and_the_feature() {
    insta::assert_snapshot!(error(
        "[providers.media]\ntype = \"s3\"\nbucket = \"${BUCKET}\"\n"
    ));
}

#[test]
fn an_unknown_third_party_type_says_how_to_add_it() {
    insta::assert_snapshot!(error("[providers.vault]\ntype = \"acme-vault\"\n"));
}

#[test]
fn routes_that_can_leave_an_artifact_unrouted_are_refused() {
    insta::assert_snapshot!(error(
        "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nwhen = { artifact_type = \"video\" }\nprovider = \"m\"\n"
    ));
}

#[test]
fn a_route_after_a_catch_all_is_unreachable() {
    insta::assert_snapshot!(error(
        "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nprovider = \"m\"\n\n[[routes]]\nwhen = { artifact_type = \"video\" }\nprovider = \"m\"\n"
    ));
}

#[test]
fn a_route_to_an_unconfigured_provider_is_refused() {
    insta::assert_snapshot!(error(
        "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nprovider = \"media\"\n"
    ));
}

#[test]
fn several_providers_need_a_default() {
    insta::assert_snapshot!(error(
        "[providers.a]\ntype = \"memory\"\n[providers.b]\ntype = \"memory\"\n"
    ));
}

#[test]
fn an_unknown_layout_placeholder_is_refused() {
    insta::assert_snapshot!(error(
        "layout = \"{tenant}/{project}/{artifact_id}\"\n[providers.m]\ntype = \"memory\"\n"
    ));
}

#[test]
fn values_from_the_environment_never_appear_in_errors() {
    let message = error(
        "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nwhen = { size_gt = \"${TOKEN}\" }\nprovider = \"m\"\n\n[[routes]]\nprovider = \"m\"\n",
    );
    assert!(!message.contains("hunter2"), "{message}");
    insta::assert_snapshot!(message);
}

#[test]
fn a_valid_file_loads_with_routes_layout_and_interpolation() {
    let text = r#"
default = "small"
layout = "{tenant}/{board}/{artifact_id}-{variant}"

[providers.small]
type = "memory"

[providers.big]
type = "memory"

[[routes]]
when = { artifact_type = ["video", "model"], size_gt = "100MB", content_type = "video/*", tenant = "${BUCKET}" }
provider = "big"

[[routes]]
provider = "small"
"#;
    let config = Config::parse_with("storage.toml", text, &env).unwrap();
    Registry::new().check(&config).unwrap();
    assert_eq!(config.default_provider(), "small");
    assert_eq!(
        config.layout().template(),
        "{tenant}/{board}/{artifact_id}-{variant}"
    );
    assert_eq!(config.routes().len(), 2);
    assert_eq!(
        config.routes()[0].conditions,
        [
            RouteCondition::ArtifactType(vec!["video".into(), "model".into()]),
            RouteCondition::ContentType(vec!["video/*".into()]),
            RouteCondition::Tenant(vec!["artifacts".into()]),
            RouteCondition::SizeGreaterThan(100_000_000),
        ]
    );
    let providers: Vec<_> = config.providers().collect();
    assert_eq!(providers, [("big", "memory"), ("small", "memory")]);
}

#[test]
fn the_environment_picks_supabase_then_s3_then_gcs_then_local() {
    let supabase = |name: &str| match name {
        "SUPABASE_URL" => Some("https://x.supabase.co".to_owned()),
        "SUPABASE_SERVICE_ROLE_KEY" => Some("key".to_owned()),
        "S3_BUCKET" => Some("b".to_owned()),
        _ => None,
    };
    let config = Config::from_env_with(&supabase);
    assert_eq!(
        config.providers().collect::<Vec<_>>(),
        [("supabase", "supabase")]
    );

    let s3 = |name: &str| (name == "S3_BUCKET").then(|| "b".to_owned());
    let config = Config::from_env_with(&s3);
    assert_eq!(config.providers().collect::<Vec<_>>(), [("s3", "s3")]);

    let gcs = |name: &str| (name == "GCS_BUCKET").then(|| "b".to_owned());
    let config = Config::from_env_with(&gcs);
    assert_eq!(config.providers().collect::<Vec<_>>(), [("gcs", "gcs")]);

    let config = Config::from_env_with(&|_| None);
    assert_eq!(config.providers().collect::<Vec<_>>(), [("local", "local")]);
    assert_eq!(config.source_name(), "<environment>");
}

#[test]
fn debug_output_of_a_config_holds_no_values() {
    let text = "[providers.m]\ntype = \"memory\"\n\n[[routes]]\nwhen = { tenant = \"${TOKEN}\" }\nprovider = \"m\"\n[[routes]]\nprovider = \"m\"\n";
    let config = Config::parse_with("storage.toml", text, &env).unwrap();
    let printed = format!("{config:?}");
    assert!(
        !printed.contains("${TOKEN}") || !printed.contains("hunter2"),
        "{printed}"
    );
}

#[test]
fn a_mistake_in_a_layers_table_is_placed_and_named() {
    insta::assert_snapshot!(error(
        "[providers.m]\ntype = \"memory\"\n\n[providers.m.layers]\nretry = { max_attempts = 3, backof = 5 }\n"
    ));
}

#[tokio::test]
async fn a_layers_table_wraps_the_built_provider() {
    let text = "[providers.m]\ntype = \"memory\"\n[providers.m.layers]\nretry = { max_attempts = 3 }\n\
                timeout = { operation_ms = 1000, stall_ms = 1000 }\n\
                circuit_breaker = { failure_rate = 0.5, window = 10, min_calls = 5, open_ms = 100 }\n";
    let config = Config::parse_with("storage.toml", text, &env).unwrap();
    let providers = Registry::new().build_all(&config).await.unwrap();
    let store = providers.get("m").unwrap();
    store
        .put(
            &storage_core::Key::new("k").unwrap(),
            "v".into(),
            Default::default(),
        )
        .await
        .unwrap();
    let debug = format!("{store:?}");
    for layer in [
        "Audit",
        "Metrics",
        "Retry",
        "CircuitBreaker",
        "Timeouts",
        "MemoryStorage",
    ] {
        assert!(debug.contains(layer), "{layer} missing from {debug}");
    }
    assert_eq!(providers.metrics("m").unwrap().operations["put"].count, 1);
    assert_eq!(
        providers.breaker_state("m"),
        Some(storage_core::layers::BreakerState::Closed)
    );
}
