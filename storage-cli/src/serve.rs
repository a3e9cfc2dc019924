//! `storage serve`: the local backend's presigned GET/PUT server.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;
use storage::config::{Config, Providers, Registry};
use storage_local::LocalStorage;

/// `GET /health`: each configured provider, its backend type, whether a
/// probe answered, and its circuit breaker's state; 503 if any is down.
async fn health(
    State(served): State<Arc<(Config, Providers)>>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let (config, providers) = &*served;
    let mut all_up = true;
    let mut report = Vec::new();
    for (name, provider) in providers.iter() {
        let probe = provider.health().await;
        all_up &= probe.is_ok();
        report.push(json!({
            "name": name,
            "backend": config.provider_type(name),
            "state": if probe.is_ok() { "up" } else { "down" },
            "error": probe.err().map(|e| e.to_string()),
            "breaker": providers.breaker_state(name).map(|s| format!("{s:?}").to_lowercase()),
        }));
    }
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if all_up { "up" } else { "degraded" }, "providers": report });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
}

/// Serves the presigned URLs of the local provider `name` (default: the
/// default provider) until Ctrl-C.
pub(crate) async fn serve(
    config: &Config,
    registry: &Registry,
    name: Option<String>,
    listen: Option<String>,
) -> Result<(), String> {
    let name = name.unwrap_or_else(|| config.default_provider().to_owned());
    match config.provider_type(&name) {
        Some("local") => {}
        Some(other) => {
            return Err(format!(
                "provider {name:?} is of type {other:?}; only local providers are served (other backends serve their own URLs)"
            ));
        }
        None => return Err(format!("no provider named {name:?} is configured")),
    }
    let local = config
        .with_provider(&name, storage_local::config_from)
        .map_err(|e| e.to_string())?;
    let Some(public_url) = local.public_url.clone() else {
        return Err(format!(
            "provider {name:?} has no public_url and signing_secret; add both to its table to serve presigned URLs"
        ));
    };
    let address = match listen {
        Some(address) => address,
        None => {
            let host = public_url.host_str().unwrap_or("127.0.0.1").to_owned();
            let port = public_url.port_or_known_default().unwrap_or(8080);
            format!("{host}:{port}")
        }
    };
    let store = tokio::task::spawn_blocking(move || LocalStorage::open(local))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let providers = registry
        .build_all(config)
        .await
        .map_err(|e| e.to_string())?;
    let health_route = axum::Router::new()
        .route("/health", get(health))
        .with_state(Arc::new((config.clone(), providers)));
    let app = storage_local::router(store)
        .map_err(|e| e.to_string())?
        .merge(health_route);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    eprintln!(
        "serving presigned URLs of {name:?} under {public_url} (listening on {address}); Ctrl-C stops"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}
