//! The HTTP surface, one file per kind of route: [`graphql`] (`/graphql` per GraphQL over
//! HTTP, `/graphiql`), [`downloads`] (stored files, invoice PDFs), [`reports`] (the
//! billable-hours CSV) and [`metrics`]; `/healthz` and `/readyz` here.
//!
//! A request's tenant comes from its `Host` header, its actor from its Bearer token; the
//! domains below never see either header.

mod downloads;
mod graphql;
mod metrics;
mod reports;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::ServerError;
use async_graphql_axum::GraphQLResponse;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use diesel_async::SimpleAsyncConnection;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth;
use crate::config::ProxyRange;
use crate::error::AppError;
use crate::graphql::AppSchema;
use crate::jobs::worker::WorkerStats;
use crate::services::Services;
use crate::tenancy::{Access, DbPool, TenantDb, TenantResolver};

pub use graphql::Documents;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the router's handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub pool: DbPool,
    pub resolver: Arc<TenantResolver>,
    pub services: Arc<Services>,
    /// Counters of a worker running in this process, for `/metrics`.
    pub worker_stats: Arc<WorkerStats>,
    pub documents: Arc<Documents>,
}

pub fn router(state: AppState) -> Router {
    // The handlers hold each kind of body to its own limit; this is the outer bound.
    let max_body = state.services.config.max_upload_body_bytes();
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/reports/billable-hours.csv", get(reports::billable_hours_csv))
        .route("/files/{id}", get(downloads::file))
        .route("/invoices/{file}", get(downloads::invoice_pdf))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if state.services.config.graphiql {
        router = router.route("/graphiql", get(graphql::graphiql));
    }
    router
        .with_state(state)
        .layer(axum::middleware::map_response(retry_after))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %request_id,
                tenant = tracing::field::Empty,
                statements = tracing::field::Empty,
            )
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `/metrics` alone, for its own address (`METRICS_BIND`), apart from the API.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// A request's body read whole, within `limit` bytes (else 413) and within the body timeout
/// (else 408), so a body sent slowly holds nothing for long.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
    timeout: Duration,
) -> Result<bytes::Bytes, Response> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {limit} bytes"),
        )
            .into_response()),
        Err(_) => Err(too_slow(timeout)),
    }
}

/// The answer to a body that did not arrive within `timeout`.
pub(crate) fn too_slow(timeout: Duration) -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        format!("the body did not arrive within {} seconds", timeout.as_secs()),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        state
            .pool
            .transaction(async |conn| Ok(conn.batch_execute("SELECT 1").await?))
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Some(())) => (StatusCode::OK, "ready").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The client's address: the peer's, or when the peer is a trusted proxy
/// (`TRUSTED_PROXIES`), the nearest address in `X-Forwarded-For` that is not one of them.
/// Each proxy appends the address it was reached from, so the header is read from the
/// right; what a client wrote into it itself, further left, is never believed.
pub(crate) fn client_address(
    trusted: &[ProxyRange],
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted.iter().any(|range| range.contains(&client)) {
        return Some(client);
    }
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !trusted.iter().any(|range| range.contains(&client)) {
            break;
        }
    }
    Some(client)
}

/// The peer's address, when the server was started to record it.
pub(crate) fn peer_address(request: &Request) -> Option<IpAddr> {
    peer_of(request.extensions())
}

fn peer_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The peer's address as an extractor; `None` when it was not recorded (in-process calls).
pub(crate) struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(peer_of(&parts.extensions)))
    }
}

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Seconds a client is told to wait before trying again when the database is away.
const RETRY_AFTER_SECONDS: &str = "2";

/// Every 503 says when to try again.
async fn retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(header::HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    response
}

/// An error about the request as a whole: no location, no path.
pub(crate) fn request_error(error: AppError) -> async_graphql::Response {
    let error: async_graphql::Error = error.into();
    let mut server_error = ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    async_graphql::Response::from_errors(vec![server_error])
}

pub(crate) fn error_response(status: StatusCode, error: AppError) -> Response {
    (status, GraphQLResponse::from(request_error(error))).into_response()
}

pub(crate) fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } | AppError::TenantNotFound => StatusCode::NOT_FOUND,
        AppError::BadUserInput { .. } | AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::TenantSuspended => StatusCode::FORBIDDEN,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// For the plain HTTP routes: the tenant of the Host header, a read-only unit of work in
/// it, and the actor of the Bearer token (sent from `peer`).
pub(crate) async fn read_unit(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<(Arc<TenantDb>, auth::Actor), AppError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let tenant = state.resolver.resolve(host).await?;
    tracing::Span::current().record("tenant", tenant.schema.as_str());
    let db = Arc::new(TenantDb::new(state.pool.clone(), tenant, Access::ReadOnly));
    let client = client_address(&state.services.config.trusted_proxies, peer, headers);
    let actor = auth::authenticate(&db, &state.services, bearer(headers).as_deref(), client).await?;
    Ok((db, actor))
}
