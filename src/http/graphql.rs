//! `/graphql` (GET and POST, per GraphQL over HTTP) and `/graphiql`.

use std::net::IpAddr;
use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::body::Body;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{AppState, bearer, client_address, error_response, request_error};
use crate::auth;
use crate::error::AppError;
use crate::graphql::AppSchema;
use crate::graphql::support::{RequestContext, batched};
use crate::tenancy::{Access, TenantDb};

/// GraphQL documents already parsed, by their text, and requests already validated.
/// Clients send the same few queries over and over; each is parsed once, and later
/// requests start from a copy of the parse. A document is the query's text made into a
/// tree: it holds no tenant's data, so one cache serves every tenant.
///
/// Validation reads a request's document, operation name and variables, and the schema:
/// a request with the same three as one that passed every rule passes them again. Such a
/// request runs on the same schema checking only its size ([`build_revalidating_schema`]),
/// which a request's variables can change, and so is checked every time. The three are
/// kept as a keyed hash (random keys per process, so no client can make two requests
/// collide on purpose).
///
/// [`build_revalidating_schema`]: crate::graphql::build_revalidating_schema
pub struct Documents {
    parsed: moka::sync::Cache<String, Arc<ExecutableDocument>>,
    validated: moka::sync::Cache<u64, ()>,
    hashing: std::hash::RandomState,
    revalidating: AppSchema,
    /// Requests run on `revalidating`.
    revalidated: std::sync::atomic::AtomicU64,
}

impl Documents {
    /// Texts longer than this are parsed and validated each time rather than kept.
    const MAX_TEXT: usize = 16 * 1024;

    pub fn new(revalidating: AppSchema) -> Self {
        Self {
            // Weighed by text length; a parsed tree takes several times its text.
            parsed: moka::sync::Cache::builder()
                .weigher(|text: &String, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .max_capacity(1024 * 1024)
                .build(),
            validated: moka::sync::Cache::new(20_000),
            hashing: std::hash::RandomState::new(),
            revalidating,
            revalidated: Default::default(),
        }
    }

    /// What validation reads of `request`, hashed; `None` for a text too long to keep.
    fn validation_key(&self, request: &async_graphql::Request) -> Option<u64> {
        use std::hash::{BuildHasher, Hash, Hasher};
        if request.query.len() > Self::MAX_TEXT {
            return None;
        }
        /// Writes go into a hash.
        struct Hashing<'a, H>(&'a mut H);
        impl<H: Hasher> std::io::Write for Hashing<'_, H> {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.write(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut hasher = self.hashing.build_hasher();
        (&request.query, &request.operation_name).hash(&mut hasher);
        serde_json::to_writer(Hashing(&mut hasher), &request.variables).ok()?;
        Some(hasher.finish())
    }

    /// The schema to run `request` on: the one checking only its size when the same
    /// request passed validation before (see [`Documents`]), else `strict`.
    fn schema_for<'s>(&'s self, strict: &'s AppSchema, key: Option<u64>) -> (&'s AppSchema, bool) {
        match key {
            Some(key) if self.validated.contains_key(&key) => {
                self.revalidated
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (&self.revalidating, true)
            }
            _ => (strict, false),
        }
    }

    /// How many requests ran without validation again.
    pub fn revalidated(&self) -> u64 {
        self.revalidated.load(std::sync::atomic::Ordering::Relaxed)
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

pub(super) async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

pub(super) async fn post(State(state): State<AppState>, request: Request) -> Response {
    // Read the body under the limit and the body timeout first, so an oversized one is a
    // 413 however it is sent (with a length or chunked) and a slow one a 408. Multipart
    // requests (file uploads, per the GraphQL multipart request spec) go their own way.
    let peer = super::peer_address(&request);
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let multipart = content_type.as_deref().is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
    });
    if multipart {
        return upload(&state, &parts.headers, peer, content_type, body).await;
    }
    let config = &state.services.config;
    let bytes = match super::read_body(body, config.max_body_bytes, config.body_timeout()).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal,
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let headers = request.headers().clone();
    match GraphQLRequest::<GraphQLRejection>::from_request(request, &()).await {
        Ok(req) => execute(&state, &headers, peer, req.into_inner(), Method::POST).await,
        Err(rejection) => refuse(rejection.0),
    }
}

/// A multipart request: only on a tenant's host and with a credential that holds, both
/// checked before a byte of the body is read; then the body is read within the body
/// timeout, each file within `FILE_MAX_BYTES` and at most `MAX_FILES_PER_REQUEST` of them.
async fn upload(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    content_type: Option<String>,
    body: Body,
) -> Response {
    use futures_util::TryStreamExt;

    let host = host_of(headers);
    // Refused with the status of the reason: 404 for no tenant, 401 for no credential,
    // 429 (with its Retry-After) when throttled, 503 when the database is away.
    let refusal = |e: AppError| match e {
        AppError::Throttled { .. } | AppError::Unavailable => answer(request_error(e)),
        e => error_response(super::status_of(&e), e),
    };
    let tenant = match state.resolver.resolve(host).await {
        Ok(tenant) => tenant,
        Err(e) => return refusal(e),
    };
    let client = client_address(&state.services.config.trusted_proxies, peer, headers);
    let db = TenantDb::new(state.pool.clone(), tenant, Access::ReadOnly);
    let actor = auth::authenticate(&db, &state.services, bearer(headers).as_deref(), client).await;
    let _ = db.commit().await;
    if let Err(e) = actor {
        return refusal(e);
    }
    let config = &state.services.config;
    let options = async_graphql::http::MultipartOptions::default()
        .max_file_size(config.file_max_bytes)
        .max_num_files(crate::files::MAX_FILES_PER_REQUEST);
    let reader = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .into_async_read();
    let timeout = config.body_timeout();
    let received = tokio::time::timeout(
        timeout,
        async_graphql::http::receive_body(content_type, reader, options),
    )
    .await;
    match received {
        Err(_) => super::too_slow(timeout),
        Ok(Err(async_graphql::ParseRequestError::PayloadTooLarge)) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BadRequest(format!(
                "a file or the operations part is over {} bytes (FILE_MAX_BYTES)",
                config.file_max_bytes
            )),
        ),
        Ok(Err(e)) => refuse(e),
        Ok(Ok(request)) if request.query.len() > config.max_body_bytes => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the operation exceeds {} bytes", config.max_body_bytes),
        )
            .into_response(),
        Ok(Ok(request)) => execute(state, headers, peer, request, Method::POST).await,
    }
}

/// The `Host` header, or nothing.
fn host_of(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
}

/// A body that is not a GraphQL request: 413 when too large, else 400 with a GraphQL
/// error (`BAD_REQUEST`) saying what is wrong with it in plain words.
fn refuse(error: async_graphql::ParseRequestError) -> Response {
    use async_graphql::ParseRequestError as E;
    let why = match &error {
        E::PayloadTooLarge => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body or a file in it is too large",
            )
                .into_response();
        }
        E::InvalidRequest(cause) => format!("the body is not a GraphQL request: {cause}"),
        E::InvalidFilesMap(cause) => format!("the multipart map is not valid: {cause}"),
        E::InvalidMultipart(cause) => format!("the multipart body is not valid: {cause}"),
        E::MissingOperatorsPart => "the multipart body has no operations part".to_owned(),
        E::MissingMapPart => "the multipart body has no map part".to_owned(),
        E::NotUpload => "the multipart body is not an upload".to_owned(),
        E::MissingFiles => "the multipart body lacks a file its map names".to_owned(),
        E::UnsupportedBatch => "batches of operations are not accepted".to_owned(),
        E::Io(_) => "the body could not be read".to_owned(),
        _ => "the body is not a GraphQL request".to_owned(),
    };
    error_response(StatusCode::BAD_REQUEST, AppError::BadRequest(why))
}

/// The parameters of a GET request that the GraphQL extractor reads under another name.
#[derive(serde::Deserialize)]
struct GetParams {
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

pub(super) async fn get(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let peer = super::peer_address(&request);
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
            execute(&state, &headers, peer, req, Method::GET).await
        }
        Err(rejection) => refuse(rejection.0),
    }
}

/// The operation a request selects: its only one, or the one it names.
fn selected_operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next().map(|op| &op.node),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Visits every field of `roots`, through inline fragments and each named fragment once,
/// and into a field's own selection when `visit` says so.
fn each_field<'d>(
    document: &'d ExecutableDocument,
    roots: impl IntoIterator<Item = &'d SelectionSet>,
    mut visit: impl FnMut(&'d Field) -> bool,
) {
    let mut seen = std::collections::HashSet::new();
    let mut pending: Vec<&SelectionSet> = roots.into_iter().collect();
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if visit(&field.node) {
                        pending.push(&field.node.selection_set.node);
                    }
                }
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.insert(name)
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
}

/// Whether the operation the request selects is a mutation (and so may write). The parsed
/// document stays in the request, so execution does not parse it again.
fn operation_access(request: &mut async_graphql::Request) -> Access {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return Access::ReadOnly;
    };
    match selected_operation(document, name.as_deref()) {
        Some(op) if op.ty == OperationType::Mutation => Access::ReadWrite,
        _ => Access::ReadOnly,
    }
}

/// Where a request carries a NUL character in a string, which PostgreSQL cannot store in
/// text: the variable's path (`variables.i.notes`), or the argument written in the query
/// (`notes`). Found before anything runs, so it is a client's error, never a failed unit.
fn text_with_nul(request: &mut async_graphql::Request) -> Option<String> {
    use async_graphql::Value;
    fn find(value: &Value, path: &str) -> Option<String> {
        match value {
            Value::String(s) if s.contains('\0') => Some(path.to_owned()),
            Value::List(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| find(item, &format!("{path}.{i}"))),
            Value::Object(fields) => fields
                .iter()
                .find_map(|(name, item)| find(item, &format!("{path}.{name}"))),
            _ => None,
        }
    }
    for (name, value) in request.variables.iter() {
        if let Some(path) = find(value, &format!("variables.{name}")) {
            return Some(path);
        }
    }
    if !request.query.contains('\0')
        && !request.query.contains("\\u0000")
        && !request.query.contains("\\u{0}")
    {
        return None;
    }
    // Written into the query itself: name the argument when it can be found.
    let Ok(document) = request.parsed_query() else {
        return Some("query".to_owned());
    };
    let mut found = None;
    let roots = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .chain(document.fragments.values().map(|f| &f.node.selection_set.node));
    each_field(document, roots, |field| {
        for (name, value) in &field.arguments {
            if let Ok(value) = value.node.clone().into_const_with(|_| Err::<Value, ()>(()))
                && let Some(path) = find(&value, &name.node)
            {
                found.get_or_insert(path);
            }
        }
        true
    });
    Some(found.unwrap_or_else(|| "query".to_owned()))
}

/// The mutations that check a password: each may be asked once per request, unaliased.
const PASSWORD_CHECKS: [&str; 2] = ["login", "changePassword"];

/// The password-checking field that the mutation the request selects asks for more than
/// once, or under an alias (or beside the other): each would be another password tried in
/// one request, past the throttle's count. Fragments are followed, each once.
fn repeats_password_check(request: &mut async_graphql::Request) -> Option<&'static str> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let operation = selected_operation(document, name.as_deref())?;
    let mut checks = 0;
    let mut aliased = false;
    let mut last = None;
    each_field(document, [&operation.selection_set.node], |field| {
        if let Some(check) = PASSWORD_CHECKS.iter().find(|c| field.name.node == **c) {
            checks += 1;
            aliased |= field.alias.is_some();
            last = Some(*check);
        }
        false
    });
    if checks > 1 || aliased { last } else { None }
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    mut request: async_graphql::Request,
    method: Method,
) -> Response {
    let host = host_of(headers);
    let tenant = match state.resolver.resolve(host).await {
        Ok(tenant) => tenant,
        Err(e) => return answer(request_error(e)),
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
    if let Some(field) = text_with_nul(&mut request) {
        return error_response(
            StatusCode::BAD_REQUEST,
            AppError::bad_input(field, "text may not contain NUL characters"),
        );
    }
    if access == Access::ReadWrite
        && let Some(field) = repeats_password_check(&mut request)
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            AppError::bad_input(
                field,
                "login and changePassword are asked once per request, alone and without an alias",
            ),
        );
    }
    let db = Arc::new(TenantDb::new(state.pool.clone(), tenant, access));
    let client = client_address(&state.services.config.trusted_proxies, peer, headers);
    let context = RequestContext::new(Arc::clone(&db), Arc::clone(&state.services), bearer(headers))
        .from_client(client);
    let batcher = context.batcher();
    let key = state.documents.validation_key(&request);
    let (schema, validated) = state.documents.schema_for(&state.schema, key);
    let mut response = batched(batcher, schema.execute(request.data(context))).await;
    // A request refused by validation has no data; one with data passed it.
    if let Some(key) = key
        && !validated
        && response.data != async_graphql::Value::Null
    {
        state.documents.validated.insert(key, ());
    }
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
    answer(response)
}

/// A GraphQL answer over HTTP: 200; 503 when the database was away for it or a queue was
/// full (the client should come back, not read on); 429 with the longest `Retry-After` when
/// a credential check was throttled.
fn answer(response: async_graphql::Response) -> Response {
    let codes = || {
        response
            .errors
            .iter()
            .filter_map(|error| error.extensions.as_ref().and_then(|ext| ext.get("code")))
    };
    let unavailable = codes().any(|code| *code == async_graphql::Value::from("UNAVAILABLE"));
    let throttled = codes().any(|code| *code == async_graphql::Value::from("THROTTLED"));
    let retry_after = response
        .errors
        .iter()
        .filter_map(|error| error.extensions.as_ref().and_then(|ext| ext.get("retryAfter")))
        .filter_map(|value| match value {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
        .max();
    let mut http = GraphQLResponse::from(response).into_response();
    if unavailable {
        *http.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    } else if throttled {
        *http.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Some(seconds) = retry_after {
            http.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
    }
    http
}
