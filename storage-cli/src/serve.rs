//! `storage serve`: the local backend's presigned GET/PUT server.

use storage::config::Config;
use storage_local::LocalStorage;

/// Serves the presigned URLs of the local provider `name` (default: the
/// default provider) until Ctrl-C.
pub(crate) async fn serve(
    config: &Config,
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
    let app = storage_local::router(store).map_err(|e| e.to_string())?;
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
