//! `serve` and `worker`: the service, and its background worker, until a signal stops them.

use super::Failure;
use crate::app::App;
use crate::config::{BindConfig, DatabaseConfig, ServiceConfig};
use crate::jobs::worker::{Shutdown, WorkerConfig};
use crate::mail::MailConfig;
use crate::tenancy;

pub(super) async fn serve(
    db: DatabaseConfig,
    service: ServiceConfig,
    bind: BindConfig,
    worker: Option<(MailConfig, WorkerConfig)>,
) -> Result<(), Failure> {
    let pool = tenancy::build_pool(&db)?;
    let app = App::new(pool, service, db.direct().clone())?;
    let listener = tokio::net::TcpListener::bind(bind.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", bind.bind))?;
    let (stop_worker, worker) = match worker {
        Some((mail, config)) => {
            let (shutdown, rx) = Shutdown::new();
            let handle = app.standard_worker(&db, &mail, config)?.spawn(rx);
            (Some(shutdown), Some(handle))
        }
        None => (None, None),
    };
    tracing::info!(addr = %bind.bind, worker = worker.is_some(), "serving GraphQL at /graphql");
    // On a signal the server stops accepting and lets requests in flight finish, for at most
    // the grace period; the metrics listener stops with it.
    let (signalled, on_signal) = tokio::sync::watch::channel(false);
    let metrics = match bind.metrics_bind {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {address} for metrics: {e}"))?;
            tracing::info!(addr = %address, "serving /metrics");
            let mut stopped = on_signal.clone();
            let metrics_limits = crate::http::server::Limits {
                max_connections: 16,
                ..limits(&bind)
            };
            Some(tokio::spawn(crate::http::server::serve(
                listener,
                app.metrics_router(),
                metrics_limits,
                async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                },
                std::time::Duration::from_secs(1),
            )))
        }
        None => None,
    };
    let grace = std::time::Duration::from_secs(bind.shutdown_grace_seconds);
    let finished = crate::http::server::serve(
        listener,
        app.router(),
        limits(&bind),
        async move {
            shutdown_signal().await;
            let _ = signalled.send(true);
        },
        grace,
    )
    .await;
    if !finished {
        tracing::warn!(
            grace_seconds = bind.shutdown_grace_seconds,
            "requests still running after the grace period are cut off"
        );
    }
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    // The worker finishes or hands back its jobs within its own grace (JOB_GRACE_SECONDS).
    if let (Some(stop), Some(handle)) = (stop_worker, worker) {
        stop.trigger();
        let _ = handle.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// What the HTTP server allows its clients, from the settings.
fn limits(bind: &BindConfig) -> crate::http::server::Limits {
    crate::http::server::Limits {
        max_connections: bind.max_connections.max(1),
        header_timeout: std::time::Duration::from_secs(bind.header_timeout_seconds.max(1)),
        max_header_bytes: bind.max_header_bytes,
    }
}

pub(super) async fn work(
    db: DatabaseConfig,
    service: ServiceConfig,
    mail: MailConfig,
    config: WorkerConfig,
) -> Result<(), Failure> {
    let pool = tenancy::build_pool(&DatabaseConfig {
        pool_size: 2,
        ..db.clone()
    })?;
    let app = App::new(pool, service, db.direct().clone())?;
    let (shutdown, rx) = Shutdown::new();
    let handle = app.standard_worker(&db, &mail, config)?.spawn(rx);
    shutdown_signal().await;
    shutdown.trigger();
    let _ = handle.await;
    Ok(())
}

pub(super) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
