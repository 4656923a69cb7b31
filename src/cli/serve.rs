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
    // the grace period.
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    // Each connection's peer address is kept, for throttling by client address.
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = signalled.send(());
    });
    let grace = std::time::Duration::from_secs(bind.shutdown_grace_seconds);
    let grace_over = async move {
        if on_signal.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served.map_err(anyhow::Error::from)?,
        () = grace_over => tracing::warn!(
            grace_seconds = bind.shutdown_grace_seconds,
            "requests still running after the grace period are cut off"
        ),
    }
    // The worker finishes or hands back its jobs within its own grace (JOB_GRACE_SECONDS).
    if let (Some(stop), Some(handle)) = (stop_worker, worker) {
        stop.trigger();
        let _ = handle.await;
    }
    tracing::info!("stopped");
    Ok(())
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
