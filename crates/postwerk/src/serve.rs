//! `postwerk serve`: open the store, start the delivery engine, the HTTP API and the
//! SMTP submission listeners, and shut down gracefully on Ctrl-C / SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use postwerk_api::AppState;
use postwerk_core::config::Config;
use postwerk_mta::engine::Engine;
use postwerk_services::context::{DEFAULT_TENANT, Services};

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
    if let Some(warning) = services.config.link_warning() {
        tracing::warn!("{warning}");
    }
    let purge = tokio::spawn(postwerk_privacy::retention::run(services.clone()));
    let webhooks = tokio::spawn(postwerk_mta::webhooks::dispatch::run(services.clone()));
    let breaker = tokio::spawn(postwerk_services::breaker::run(services.clone()));
    resume_imports(&services).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let smtp = start_smtp(&services, &engine, &stop_rx).await?;
    let state = AppState::new(services.clone(), engine.clone());
    let broadcasts = tokio::spawn(postwerk_api::expansion::schedule(state.clone()));
    let api = postwerk_api::router(state.clone());
    let app = postwerk_console::router(state.clone(), api.clone()).merge(api);
    let result = postwerk_api::serve(listener, &state, app, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    for task in smtp {
        let _ = task.await;
    }
    purge.abort();
    broadcasts.abort();
    breaker.abort();
    result.context("HTTP server failed")?;
    tracing::info!("shutting down: finishing deliveries in flight");
    engine.shutdown(SHUTDOWN_GRACE).await;
    // An interrupted post is retried when its lease expires (at-least-once).
    webhooks.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Binds and starts the enabled SMTP listeners: submission (STARTTLS and implicit
/// TLS) and the inbound MX. A port that cannot be bound is logged and skipped, so
/// the API still runs.
async fn start_smtp(
    services: &Arc<Services>,
    engine: &Arc<Engine>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use postwerk_smtpd::Mode;
    let smtp = &services.config.smtp;
    if !smtp.submission.enabled && !smtp.inbound.enabled {
        return Ok(Vec::new());
    }
    let prepared = postwerk_smtpd::prepare(services.clone(), engine.clone())
        .await
        .context("cannot prepare the SMTP servers")?;
    let mut listeners = Vec::new();
    if smtp.submission.enabled {
        let ctx = &prepared.submission;
        listeners.push((smtp.submission.listen, Mode::StartTls, ctx, "submission"));
        listeners.push((
            smtp.submission.listen_tls,
            Mode::ImplicitTls,
            ctx,
            "submission",
        ));
    }
    if smtp.inbound.enabled {
        listeners.push((
            smtp.inbound.listen,
            Mode::StartTls,
            &prepared.inbound,
            "inbound",
        ));
    }
    let mut tasks = Vec::new();
    for (addr, mode, ctx, role) in listeners {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(listen = %addr, role, error = %e, "cannot listen for SMTP");
                continue;
            }
        };
        tracing::info!(listen = %addr, role, mode = ?mode, "smtp listening");
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(postwerk_smtpd::run(
            listener,
            mode,
            Some(prepared.tls.clone()),
            ctx.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
    }
    Ok(tasks)
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

/// Imports a stop interrupted: those that were being written go on where their last
/// batch ended; those whose file was still being read fail (it is gone).
async fn resume_imports(services: &Arc<Services>) -> anyhow::Result<()> {
    use postwerk_privacy::audience::imports;
    let running = imports::interrupted(services)
        .await
        .map_err(|e| anyhow::anyhow!("cannot look for interrupted imports: {e}"))?;
    for (tenant_id, id) in running {
        tracing::info!(import = %id, "resuming an interrupted import");
        imports::spawn(services.clone(), tenant_id, id);
    }
    Ok(())
}
