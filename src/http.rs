//! The HTTP surface: `/graphql` (GET and POST, per GraphQL over HTTP), `/graphiql`,
//! `/reports/billable-hours.csv`, `/metrics`, `/healthz`, `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::ServerError;
use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use diesel_async::SimpleAsyncConnection;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::tokens::JwtKeys;
use crate::billing::pdf::PdfFonts;
use crate::config::{Secret, ServiceConfig};
use crate::db::DbPool;
use crate::error::AppError;
use crate::files::FileStore;
use crate::graphql::{self, AppSchema, RequestContext, Services};
use crate::jobs::worker::WorkerStats;
use crate::tenancy::changes::{ChangeListener, Notice};
use crate::tenancy::{Access, TenantDb, TenantResolver};
use crate::{auth, settings};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the router's handlers share.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub pool: DbPool,
    pub resolver: Arc<TenantResolver>,
    pub services: Arc<Services>,
    /// Woken when jobs are enqueued anywhere; a worker in this process waits on it.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Counters of a worker running in this process, for `/metrics`.
    pub worker_stats: Arc<WorkerStats>,
    pub documents: Arc<Documents>,
}

/// GraphQL documents already parsed, by their text. Clients send the same few queries over
/// and over; each is parsed once, and later requests start from a copy of the parse. A
/// document is the query's text made into a tree: it holds no tenant's data, so one cache
/// serves every tenant. Validation still runs on every request.
pub struct Documents {
    parsed: moka::sync::Cache<String, Arc<ExecutableDocument>>,
}

impl Documents {
    /// Texts longer than this are parsed each time rather than kept.
    const MAX_TEXT: usize = 16 * 1024;

    fn new() -> Self {
        Self {
            // Weighed by text length; a parsed tree takes several times its text.
            parsed: moka::sync::Cache::builder()
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .max_capacity(1024 * 1024)
                .build(),
        }
    }

    /// Gives `request` its parsed document: a copy of the one kept for its text, else a fresh
    /// parse, then kept. A text that does not parse is left for execution to report; one
    /// too long to keep, for the parse that `operation_access` makes anyway.
    fn prepare(&self, request: &mut async_graphql::Request) {
        if let Some(document) = self.parsed.get(request.query.as_str()) {
            request.set_parsed_query(ExecutableDocument::clone(&document));
            return;
        }
        if request.query.len() > Self::MAX_TEXT {
            return;
        }
        let text = request.query.clone();
        if let Ok(document) = request.parsed_query() {
            self.parsed.insert(text, Arc::new(document.clone()));
        }
    }
}

impl AppState {
    /// Everything a server runs with, and the listener that keeps its caches true to the
    /// database.
    pub fn new(pool: DbPool, config: ServiceConfig, database_url: Secret) -> anyhow::Result<Self> {
        let resolver = TenantResolver::new(pool.clone());
        let settings = Arc::new(settings::settings_cache());
        let actors = Arc::new(auth::actor_cache());
        let jobs_wake = Arc::new(tokio::sync::Notify::new());
        let mut listener = ChangeListener::default();
        {
            let resolver = Arc::clone(&resolver);
            let settings = Arc::clone(&settings);
            let actors = Arc::clone(&actors);
            let jobs_wake = Arc::clone(&jobs_wake);
            listener.subscribe(move |notice| match notice {
                Notice::Registry(_) => {
                    resolver.invalidate_all();
                    // A resumed tenant's jobs may run now.
                    jobs_wake.notify_waiters();
                }
                Notice::Settings(tenant_id) => settings.invalidate(&tenant_id),
                Notice::Auth(_) => actors.invalidate_all(),
                Notice::Jobs => jobs_wake.notify_waiters(),
                Notice::Missed => {
                    resolver.invalidate_all();
                    settings.invalidate_all();
                    actors.invalidate_all();
                    jobs_wake.notify_waiters();
                }
                Notice::Ping => {}
            });
        }
        listener.spawn(database_url, pool.clone());
        let services = Arc::new(Services {
            jwt: JwtKeys::new(&config)?,
            files: FileStore::open(&config.file_store, config.file_max_bytes)?,
            pdf: Arc::new(PdfFonts::new(&config.pdf_font, &config.pdf_font_bold)),
            config,
            settings,
            actors,
            pages: Default::default(),
        });
        Ok(Self {
            schema: graphql::build_schema(&services.config),
            pool,
            resolver,
            services,
            jobs_wake,
            worker_stats: Arc::default(),
            documents: Arc::new(Documents::new()),
        })
    }
}

pub fn router(state: AppState) -> Router {
    // The handlers hold each kind of body to its own limit; this is the outer bound.
    let max_body = state.services.config.max_upload_body_bytes();
    let mut router = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/reports/billable-hours.csv", get(billable_hours_csv))
        .route("/files/{id}", get(download_file))
        .route("/invoices/{file}", get(invoice_pdf))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz));
    if state.services.config.graphiql {
        router = router.route("/graphiql", get(graphiql));
    }
    router
        .with_state(state)
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

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        let mut conn = state.pool.get().await.ok()?;
        conn.batch_execute("SELECT 1").await.ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Some(())) => (StatusCode::OK, "ready").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response(),
    }
}

async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    // Read the body under the limit first, so an oversized one is a 413 however it is sent
    // (with a length or chunked). Multipart requests (file uploads, per the GraphQL
    // multipart request spec) may carry files besides the operation.
    let (parts, body) = request.into_parts();
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let config = &state.services.config;
    let limit = if multipart {
        config.max_upload_body_bytes()
    } else {
        config.max_body_bytes
    };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let message = format!("the body exceeds {limit} bytes");
            return (StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let headers = request.headers().clone();
    match GraphQLRequest::<GraphQLRejection>::from_request(request, &()).await {
        Ok(req) => execute(&state, &headers, req.into_inner(), Method::POST).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// The parameters of a GET request that the GraphQL extractor reads under another name.
#[derive(serde::Deserialize)]
struct GetParams {
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

async fn graphql_get(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    // GraphQL over HTTP names the operation `operationName` in the URL too; the extractor
    // only reads `operation_name`.
    let operation = axum::extract::Query::<GetParams>::try_from_uri(request.uri())
        .ok()
        .and_then(|q| q.0.operation_name);
    match GraphQLRequest::<GraphQLRejection>::from_request(request, &()).await {
        Ok(req) => {
            let mut req = req.into_inner();
            if req.operation_name.is_none() {
                req.operation_name = operation;
            }
            execute(&state, &headers, req, Method::GET).await
        }
        Err(rejection) => rejection.into_response(),
    }
}

/// Whether the operation the request selects is a mutation (and so may write). The parsed
/// document stays in the request, so execution does not parse it again.
fn operation_access(request: &mut async_graphql::Request) -> Access {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return Access::ReadOnly;
    };
    let ty = match (&document.operations, name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    if ty == Some(OperationType::Mutation) {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// An error about the request as a whole: no location, no path.
fn request_error(error: AppError) -> async_graphql::Response {
    let error: async_graphql::Error = error.into();
    let mut server_error = ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    async_graphql::Response::from_errors(vec![server_error])
}

fn error_response(status: StatusCode, error: AppError) -> Response {
    (status, GraphQLResponse::from(request_error(error))).into_response()
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    mut request: async_graphql::Request,
    method: Method,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let tenant = match state.resolver.resolve(host).await {
        Ok(tenant) => tenant,
        Err(e) => return error_response(StatusCode::OK, e),
    };
    tracing::Span::current().record("tenant", tenant.schema.as_str());
    state.documents.prepare(&mut request);
    let access = operation_access(&mut request);
    if method == Method::GET && access == Access::ReadWrite {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            AppError::bad_input("query", "mutations are sent with POST"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, "POST".parse().expect("static header"));
        return response;
    }
    let db = Arc::new(TenantDb::new(state.pool.clone(), tenant, access));
    let context = RequestContext::new(Arc::clone(&db), Arc::clone(&state.services), bearer(headers));
    let mut response = state.schema.execute(request.data(context)).await;
    tracing::Span::current().record("statements", db.statements());
    if access == Access::ReadOnly {
        // A read-only unit has read all it will, from one snapshot: its answer stands
        // whatever its COMMIT says. The COMMIT, which hands the connection back to the
        // pool, goes on while the answer is sent.
        tokio::spawn(async move {
            if let Err(e) = db.commit().await {
                tracing::warn!(error = ?e, "ending a read-only unit failed");
            }
        });
    } else if let Err(e) = db.commit().await {
        // Each mutation already kept or undid its own savepoint; what is left is committed.
        response = request_error(e);
    }
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "GRAPHQL_VALIDATION_FAILED");
        }
    }
    GraphQLResponse::from(response).into_response()
}

fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound { .. } | AppError::TenantNotFound => StatusCode::NOT_FOUND,
        AppError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::TenantSuspended => StatusCode::FORBIDDEN,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// For the plain HTTP routes: the tenant of the Host header, a read-only unit of work in
/// it, and the actor of the Bearer token.
async fn read_unit(state: &AppState, headers: &HeaderMap) -> Result<(Arc<TenantDb>, auth::Actor), AppError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let tenant = state.resolver.resolve(host).await?;
    tracing::Span::current().record("tenant", tenant.schema.as_str());
    let db = Arc::new(TenantDb::new(state.pool.clone(), tenant, Access::ReadOnly));
    let actor = auth::authenticate(
        &db,
        &state.services.jwt,
        &state.services.actors,
        bearer(headers).as_deref(),
    )
    .await?;
    Ok((db, actor))
}

/// The billable-hours report as CSV (see `crate::time::csv` for the parameters). Errors
/// before the first byte are the GraphQL error shape with a fitting HTTP status.
async fn billable_hours_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let started = async {
        let (db, actor) = read_unit(&state, &headers).await?;
        let request = crate::time::csv::CsvRequest::parse(&params, &actor)?;
        let settings = settings::effective(&db, &state.services.settings).await?;
        Ok::<_, AppError>((db, settings, request))
    }
    .await;
    let (db, settings, request) = match started {
        Ok(started) => started,
        Err(e) => return error_response(status_of(&e), e),
    };
    let mut chunks = crate::time::csv::stream(db, settings, request);
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx)));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"billable-hours.csv\"",
            ),
        ],
        body,
    )
        .into_response()
}

/// A stored file (`/files/<File id>`), for the requester of the leave it belongs to and
/// the tenant's managers and admins. Anything else, including a file of another tenant, is
/// a 404: whether a file exists is not told to those who may not have it.
async fn download_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let found = async {
        let (db, actor) = read_unit(&state, &headers).await?;
        let not_found = || AppError::NotFound { what: "file" };
        let id = graphql::expect_global_id("id", &async_graphql::ID(id), "File").map_err(|_| not_found())?;
        let file = {
            let mut conn = db.conn().await?;
            crate::leave::visible_file(&mut conn, &actor, id).await?
        };
        db.commit().await?;
        file.ok_or_else(not_found)
    }
    .await;
    let file = match found {
        Ok(file) => file,
        Err(e) => return error_response(status_of(&e), e),
    };
    let stream = match state.services.files.stream(&file.storage_key).await {
        Ok(stream) => stream,
        Err(e) => return error_response(status_of(&e), e),
    };
    let disposition = content_disposition(&file.filename);
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, file.content_type.clone()),
        (header::CONTENT_LENGTH, file.size_bytes.to_string()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (
            header::CONTENT_SECURITY_POLICY,
            "sandbox; default-src 'none'".to_owned(),
        ),
    ] {
        if let Ok(value) = value.parse() {
            h.insert(name, value);
        }
    }
    response
}

/// An invoice as PDF (`/invoices/<Invoice id>.pdf`), for the tenant's managers and admins.
async fn invoice_pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let found = async {
        let (db, actor) = read_unit(&state, &headers).await?;
        crate::billing::may_see_invoices(&actor)?;
        let not_found = || AppError::NotFound { what: "invoice" };
        let id = file.strip_suffix(".pdf").ok_or_else(not_found)?;
        let id = graphql::expect_global_id("id", &async_graphql::ID(id.to_owned()), "Invoice")
            .map_err(|_| not_found())?;
        let document = {
            let mut conn = db.conn().await?;
            crate::billing::InvoiceDocument::load(&mut conn, id).await?
        };
        db.commit().await?;
        let document = document.ok_or_else(not_found)?;
        let fonts = Arc::clone(&state.services.pdf);
        let tenant_name = db.tenant().name.clone();
        // Laying out and subsetting fonts is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || {
            let bytes = document.render(&fonts, &tenant_name)?;
            Ok::<_, AppError>((document.file_name(), bytes))
        })
        .await
        .map_err(AppError::internal)?
    }
    .await;
    match found {
        Ok((name, bytes)) => {
            let mut response = Body::from(bytes).into_response();
            let h = response.headers_mut();
            for (name, value) in [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (header::CONTENT_DISPOSITION, content_disposition(&name)),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ] {
                if let Ok(value) = value.parse() {
                    h.insert(name, value);
                }
            }
            response
        }
        Err(e) => error_response(status_of(&e), e),
    }
}

/// `attachment` with an ASCII fallback name and the exact one in RFC 5987 form.
fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Prometheus text: the job queue (depth by status and kind, age of the oldest due job)
/// and this process's worker counters. Holds nothing of any tenant's data.
async fn metrics(State(state): State<AppState>) -> Response {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let depth = async {
        let mut conn = state.pool.get().await.ok()?;
        crate::jobs::depth(&mut conn).await.ok()
    };
    let Ok(Some(depth)) = tokio::time::timeout(Duration::from_secs(2), depth).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP crowdminder_jobs Jobs in the queue, by status and kind."
    );
    let _ = writeln!(out, "# TYPE crowdminder_jobs gauge");
    for d in &depth {
        let _ = writeln!(
            out,
            "crowdminder_jobs{{status=\"{}\",kind=\"{}\"}} {}",
            d.status.to_lowercase(),
            d.kind,
            d.jobs
        );
    }
    let _ = writeln!(
        out,
        "# HELP crowdminder_jobs_oldest_due_seconds How long the oldest due pending job has waited."
    );
    let _ = writeln!(out, "# TYPE crowdminder_jobs_oldest_due_seconds gauge");
    let oldest = depth
        .iter()
        .filter(|d| d.status == "PENDING")
        .map(|d| d.oldest_due_seconds)
        .fold(0.0, f64::max);
    let _ = writeln!(out, "crowdminder_jobs_oldest_due_seconds {oldest:.3}");
    let stats = &state.worker_stats;
    for (name, help, value) in [
        (
            "crowdminder_jobs_succeeded_total",
            "Jobs this process ran to the end.",
            &stats.succeeded,
        ),
        (
            "crowdminder_jobs_failed_attempts_total",
            "Job attempts that failed in this process.",
            &stats.failed_attempts,
        ),
        (
            "crowdminder_jobs_released_total",
            "Jobs this process handed back unrun.",
            &stats.released,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
    let pages = &state.services.pages;
    let _ = writeln!(
        out,
        "# HELP crowdminder_graphql_entry_pages_total Pages of timeEntries answered, by how: \
         written directly, or field by field (a selection the direct path does not cover)."
    );
    let _ = writeln!(out, "# TYPE crowdminder_graphql_entry_pages_total counter");
    for (path, value) in [
        ("direct", &pages.entries_direct),
        ("general", &pages.entries_general),
    ] {
        let _ = writeln!(
            out,
            "crowdminder_graphql_entry_pages_total{{path=\"{path}\"}} {}",
            value.load(Ordering::Relaxed)
        );
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
