//! The HTTP/1.1 server under the router, with the limits a public endpoint needs: at most
//! `max_connections` connections at once (past them new ones wait in the listen queue),
//! a request's headers within `header_timeout` of the connection opening or of its
//! previous answer (so an idle keep-alive connection is closed after it too), and headers
//! of at most `max_header_bytes`. The body's own deadline is the handlers' (see
//! [`super::read_body`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// What one listener allows its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
}

/// Serves `router` on `listener` until `stop` resolves; then stops accepting, asks each
/// connection to close after the request it is on, and waits for them for at most
/// `grace`. Returns whether every connection closed within it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> bool {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Dropped to tell every connection to finish.
    let (closing, closed) = watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let mut stop = pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    router
                        .oneshot(request.map(Body::new))
                        .await
                        .unwrap_or_else(|e| match e {}),
                )
            }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            tokio::select! {
                served = connection.as_mut() => log_end(peer, served),
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    log_end(peer, connection.await);
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    drop(closing);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_ok()
}

fn log_end(peer: SocketAddr, served: hyper::Result<()>) {
    if let Err(e) = served {
        if e.is_timeout() {
            tracing::debug!(%peer, "connection closed: no whole request within the header timeout");
        } else {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}
