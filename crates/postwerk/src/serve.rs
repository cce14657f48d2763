//! `postwerk serve`: open the store, start the delivery engine and the HTTP API,
//! and shut down gracefully on Ctrl-C / SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postwerk_api::AppState;
use postwerk_core::config::Config;
use postwerk_mta::context::{DEFAULT_TENANT, Services};
use postwerk_mta::engine::Engine;

/// How long in-flight deliveries may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.http.listen;
    let services = Arc::new(
        Services::open(config)
            .await
            .context("cannot open the store")?,
    );
    services
        .ensure_tenant(DEFAULT_TENANT)
        .await
        .context("cannot create the default tenant")?;
    let engine = Engine::start(services.clone())
        .await
        .context("cannot start delivery")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        http = %listen,
        store = services.store.backend_name(),
        data_dir = %services.config.data_dir.display(),
        "postwerk listening"
    );
    let state = AppState::new(services.clone(), engine.clone());
    postwerk_api::serve(listener, state, shutdown_signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("shutting down: finishing deliveries in flight");
    engine.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
