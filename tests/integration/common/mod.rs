//! The test harness: every test gets its own database, copied from a template that holds the
//! migrated `public` schema, and tenants made exactly as production makes them.
//!
//! Databases are dropped `WITH (FORCE)` when a test ends, pass or fail; those left by a
//! crashed run (named after a process that no longer exists) are swept at the next start.
#![allow(dead_code)]

mod build;
pub mod peers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use crowdminder::app::{App, FirstAdmin, create_tenant};
use crowdminder::config::{DatabaseConfig, Secret, ServiceConfig, Switch};
use crowdminder::graphql::support::RequestContext;
use crowdminder::jobs::registry::Registry;
use crowdminder::jobs::schedule::Schedule;
use crowdminder::jobs::worker::{Worker, WorkerConfig};
use crowdminder::mail::MailConfig;
use crowdminder::tenancy::migrations::{self, PUBLIC_MIGRATIONS};
use crowdminder::tenancy::registry::NewTenant;
use crowdminder::tenancy::{self, DbPool};
use crowdminder::tenancy::{Access, Tenant, TenantDb, TenantResolver};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The test server's URL (any database on it), from `TEST_DATABASE_URL`.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL is not set: run the tests with `scripts/dev.sh test`, which starts PostgreSQL",
    )
}

/// The same server, another database.
pub fn database_url(database: &str) -> String {
    let server = server_url();
    let (base, _) = server.rsplit_once('/').expect("a URL ending in /<database>");
    format!("{base}/{database}")
}

/// The pooler in front of the test server (`TEST_POOLER_URL`, any database), when the suite
/// runs behind one (`scripts/dev.sh test` runs it both ways). Then every pool a test makes
/// goes through it, and only what needs a session of its own (LISTEN, the harness's set-up
/// and checks) goes straight to PostgreSQL.
pub fn pooler_url() -> Option<String> {
    std::env::var("TEST_POOLER_URL").ok().filter(|u| !u.is_empty())
}

async fn admin_conn() -> AsyncPgConnection {
    tenancy::connect(&database_url("postgres"))
        .await
        .expect("connect to the test server")
}

fn template_name() -> String {
    let mut hasher = Sha256::new();
    for m in PUBLIC_MIGRATIONS {
        hasher.update(m.version.as_bytes());
        hasher.update(m.up.as_bytes());
    }
    let digest = hasher.finalize();
    format!(
        "cmtest_template_{}",
        digest
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Makes the template once per migration set, under a lock shared by all test processes,
/// and sweeps databases left by runs that died.
async fn prepare_server(admin: &mut AsyncPgConnection) -> String {
    let template = template_name();
    admin
        .batch_execute("SELECT pg_advisory_lock(727274)")
        .await
        .unwrap();
    let existing: Vec<String> = list_databases(admin).await;
    for name in &existing {
        let stale_template = name.starts_with("cmtest_template_") && *name != template;
        let dead_owner = name
            .strip_prefix("cmtest_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if stale_template || dead_owner {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
    if !existing.contains(&template) {
        let building = format!("{template}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{building}\""))
            .await
            .unwrap();
        {
            let mut conn = tenancy::connect(&database_url(&building)).await.unwrap();
            migrations::migrate_public(&mut conn).await.unwrap();
        }
        admin
            .batch_execute(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""))
            .await
            .unwrap();
    }
    admin
        .batch_execute("SELECT pg_advisory_unlock(727274)")
        .await
        .unwrap();
    template
}

async fn list_databases(conn: &mut AsyncPgConnection) -> Vec<String> {
    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let rows: Vec<Row> =
        diesel::sql_query("SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'cmtest%'")
            .load(conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.datname).collect()
}

/// A database of this test's own, with `public` migrated.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let mut admin = admin_conn().await;
        let template = prepare_server(&mut admin).await;
        let name = format!(
            "cmtest_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""))
            .await
            .unwrap();
        Self {
            url: database_url(&name),
            name,
        }
    }
}

impl TestDatabase {
    /// The URL a service's pool uses: through the pooler when the suite runs behind one.
    pub fn pool_url(&self) -> String {
        match pooler_url() {
            Some(pooler) => {
                let (base, _) = pooler.rsplit_once('/').expect("a URL ending in /<database>");
                format!("{base}/{}", self.url.rsplit_once('/').unwrap().1)
            }
            None => self.url.clone(),
        }
    }

    /// The settings of a service's pool of `size`: through the pooler, with this database's
    /// own URL as the direct one, when the suite runs behind one. `DB_STATEMENT_CACHE`
    /// (`on` or `off`) applies as it does to the service.
    pub fn pool_config(&self, size: usize) -> DatabaseConfig {
        let mut config = DatabaseConfig::new(self.pool_url(), size).with_direct_url(self.url.clone());
        config.statement_cache = std::env::var("DB_STATEMENT_CACHE")
            .ok()
            .map(|v| <Switch as clap::ValueEnum>::from_str(&v, true).expect("DB_STATEMENT_CACHE: on or off"));
        config
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return; // a second handle on a database another owns
        }
        let name = self.name.clone();
        // Drop runs inside the test's runtime, so the clean-up gets a thread and runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut admin = admin_conn().await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// A GraphQL multipart request (operations, map, then the files as `(variable path, file
/// name, content type, bytes)`): its content type and body.
pub fn multipart_body(
    query: &str,
    variables: Value,
    files: &[(&str, &str, &str, &[u8])],
) -> (String, Vec<u8>) {
    let boundary = "crowdminder-test-boundary-7d1f";
    let mut body: Vec<u8> = Vec::new();
    let mut part = |headers: String, content: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    let operations = json!({ "query": query, "variables": variables }).to_string();
    part(
        "Content-Disposition: form-data; name=\"operations\"".to_owned(),
        operations.as_bytes(),
    );
    let map: serde_json::Map<String, Value> = files
        .iter()
        .enumerate()
        .map(|(i, (path, ..))| (i.to_string(), json!([path])))
        .collect();
    part(
        "Content-Disposition: form-data; name=\"map\"".to_owned(),
        Value::Object(map).to_string().as_bytes(),
    );
    for (i, (_, filename, content_type, bytes)) in files.iter().enumerate() {
        part(
            format!(
                "Content-Disposition: form-data; name=\"{i}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}"
            ),
            bytes,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The `crowdminder` command with `args` as a process on `app`'s database: pooled work
/// through the pooler when the suite runs behind one, sessions straight to PostgreSQL,
/// with `env` added to its settings. Killed when dropped.
pub fn crowdminder_process(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_crowdminder"))
        .args(args)
        .env("DATABASE_URL", app.db.pool_url())
        .env("DATABASE_DIRECT_URL", &app.db.url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// A loopback port nothing listens on (at the moment of asking).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port nothing listens on, outside the kernel's range of ports for outgoing
/// connections: a server that stops and starts again on it (a crash test) cannot find it
/// taken meanwhile by some test's client socket.
pub fn port_for_a_restartable_server() -> u16 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range.split_whitespace().map(|n| n.parse::<u16>().ok());
    let (low, high) = match (bounds.next().flatten(), bounds.next().flatten()) {
        (Some(low), Some(high)) => (low, high),
        _ => (32_768, 60_999),
    };
    let candidates: Vec<u16> = if high < 65_000 {
        (high + 1..=65_535).collect()
    } else {
        (10_000..low.max(10_001)).collect()
    };
    let start = std::process::id() as usize % candidates.len();
    candidates[start..]
        .iter()
        .chain(&candidates[..start])
        .copied()
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port outside the ephemeral range")
}

/// `serve` as a process (without a worker) on `app`'s database, with `env` added to its
/// settings; waits until it answers.
pub async fn serve_process(app: &TestApp, env: &[(&str, &str)]) -> (tokio::process::Child, u16) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut settings = vec![("BIND_ADDR", bind.as_str())];
    settings.extend_from_slice(env);
    let server = crowdminder_process(app, &["serve", "--no-worker"], &settings);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (server, port)
}

/// A tenant made for a test, with its first admin's credentials.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub tenant: Tenant,
    pub schema: String,
    pub host: String,
    pub admin_email: String,
    pub admin_password: String,
}

/// The service on a test database, called in-process through its router.
pub struct TestApp {
    pub state: App,
    pub pool: DbPool,
    pub router: Router,
    pub resolver: Arc<TenantResolver>,
    pub db: TestDatabase,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_pool_size(4).await
    }

    pub async fn with_pool_size(size: usize) -> Self {
        Self::with_config(size, test_config()).await
    }

    pub async fn with_config(pool_size: usize, config: ServiceConfig) -> Self {
        Self::with_database(pool_size, config, |_| {}).await
    }

    /// The service with its pool's settings (timeouts, say) changed by `change`.
    pub async fn with_database(
        pool_size: usize,
        config: ServiceConfig,
        change: impl FnOnce(&mut DatabaseConfig),
    ) -> Self {
        let db = TestDatabase::create().await;
        let mut db_config = db.pool_config(pool_size);
        change(&mut db_config);
        let pool = tenancy::build_pool(&db_config).unwrap();
        let state = App::new(pool.clone(), config, Secret::new(db.url.clone())).unwrap();
        let resolver = Arc::clone(&state.resolver);
        let router = state.router();
        Self {
            state,
            pool,
            router,
            resolver,
            db,
        }
    }

    /// Another server on the same database, with caches of its own (as a second process).
    pub fn second_server(&self) -> TestApp {
        let mut config = ServiceConfig::with_secret(JWT_SECRET);
        config.file_store = self.state.services.config.file_store.clone();
        let state = App::new(self.pool.clone(), config, Secret::new(self.db.url.clone())).unwrap();
        TestApp {
            pool: self.pool.clone(),
            resolver: Arc::clone(&state.resolver),
            router: state.router(),
            state,
            db: TestDatabase {
                name: String::new(),
                url: self.db.url.clone(),
            },
        }
    }

    /// Runs a query in-process as one request would, and counts the SQL statements it sent.
    pub async fn execute_counted(&self, tenant: &TestTenant, token: &str, query: &str) -> (Value, usize) {
        let db = Arc::new(TenantDb::new(
            self.pool.clone(),
            Arc::new(tenant.tenant.clone()),
            Access::ReadOnly,
        ));
        let context = RequestContext::new(
            Arc::clone(&db),
            Arc::clone(&self.state.services),
            Some(token.to_owned()),
        );
        let batcher = context.batcher();
        let response = crowdminder::graphql::support::batched(
            batcher,
            self.state
                .schema
                .execute(async_graphql::Request::new(query).data(context)),
        )
        .await;
        db.commit().await.unwrap();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        (serde_json::to_value(&response.data).unwrap(), db.statements())
    }

    /// The `n` a counting statement returns (`SELECT count(*) AS n ...`), read directly.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.raw_conn().await;
        let row: Count = diesel_async::RunQueryDsl::get_result(diesel::sql_query(sql), &mut conn)
            .await
            .unwrap();
        row.n
    }

    /// Runs `sql` (one or more statements) on a connection of its own, as the owner.
    pub async fn exec(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        self.raw_conn().await.batch_execute(sql).await.unwrap();
    }

    /// A raw connection to the test database, for setting up and checking what the API cannot.
    pub async fn raw_conn(&self) -> AsyncPgConnection {
        tenancy::connect(&self.db.url).await.unwrap()
    }

    pub async fn create_tenant(&self, schema: &str) -> TestTenant {
        let host = format!("{}.test.localhost", schema.replace('_', "-"));
        let admin_email = format!("Admin@{}.example", schema.replace('_', "-"));
        let admin_password = format!("password-of-{schema}");
        let mut conn = self.raw_conn().await;
        let tenant = create_tenant(
            &mut conn,
            &NewTenant::parse(schema, &format!("Company {schema}"), &host).unwrap(),
            FirstAdmin {
                email: admin_email.clone(),
                name: format!("Admin of {schema}"),
                password: Secret::new(admin_password.clone()),
            },
        )
        .await
        .unwrap();
        TestTenant {
            tenant,
            schema: schema.to_owned(),
            host,
            admin_email,
            admin_password,
        }
    }

    /// POSTs a GraphQL request and returns the status and JSON body.
    pub async fn post(
        &self,
        host: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::post("/graphql")
            .header("host", host)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        request = request.header("content-length", body.len());
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// POSTs a GraphQL multipart request (file uploads): `files` are (variable path,
    /// file name, content type, bytes), the variables holding null where each goes.
    pub async fn post_multipart(
        &self,
        host: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
        files: &[(&str, &str, &str, &[u8])],
    ) -> (StatusCode, Value) {
        let (content_type, body) = multipart_body(query, variables, files);
        let mut request = Request::post("/graphql")
            .header("host", host)
            .header("content-type", content_type)
            .header("content-length", body.len());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// A GET answered with anything: status, headers and the raw body.
    pub async fn get_raw(
        &self,
        host: &str,
        token: Option<&str>,
        path: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut request = Request::get(path).header("host", host);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, bytes.to_vec())
    }

    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.send_raw(request).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }));
        (status, value)
    }

    /// The router's response as it is, headers included.
    pub async fn send_raw(&self, request: Request<Body>) -> axum::response::Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// The JSON body of a GraphQL request that must succeed.
    pub async fn gql(&self, host: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(host, token, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The `extensions.code` of the first error of a request that must fail.
    /// Pages through the list `list` twice over, with `direct` and with `general` (the same
    /// query, the cursor as `$a`, the second sent to the resolvers): each page answered
    /// alike, `counts` (pages written directly, and through the resolvers) counting one of
    /// each. The pages.
    pub async fn pages_alike(
        &self,
        host: &str,
        token: &str,
        list: &str,
        (direct, general): (&str, &str),
        counts: impl Fn() -> (u64, u64),
    ) -> Vec<Value> {
        let mut after = Value::Null;
        let mut pages = Vec::new();
        loop {
            let before = counts();
            let a = self.gql(host, Some(token), direct, json!({ "a": after })).await;
            assert_eq!(counts(), (before.0 + 1, before.1), "{list} written directly");
            let b = self.gql(host, Some(token), general, json!({ "a": after })).await;
            assert_eq!(
                counts(),
                (before.0 + 1, before.1 + 1),
                "{list} through the resolvers"
            );
            assert_eq!(a, b, "{list}");
            let next = a[list]["pageInfo"]["hasNextPage"] == json!(true);
            after = a[list]["pageInfo"]["endCursor"].clone();
            pages.push(a);
            if !next {
                return pages;
            }
        }
    }

    pub async fn gql_error(
        &self,
        host: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (String, Value) {
        let (_, body) = self.post(host, token, query, variables).await;
        let error = body["errors"][0].clone();
        assert!(!error.is_null(), "expected an error: {body}");
        (
            error["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            error,
        )
    }

    pub async fn login(&self, host: &str, email: &str, password: &str) -> String {
        let data = self
            .gql(
                host,
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        data["login"]["token"].as_str().unwrap().to_owned()
    }

    pub async fn login_admin(&self, tenant: &TestTenant) -> String {
        self.login(&tenant.host, &tenant.admin_email, &tenant.admin_password)
            .await
    }

    /// Creates a user through the API (as the tenant's admin) and returns a login token.
    pub async fn create_user(
        &self,
        tenant: &TestTenant,
        admin_token: &str,
        email: &str,
        role: &str,
    ) -> String {
        let password = "a-good-long-password";
        self.gql(
            &tenant.host,
            Some(admin_token),
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "email": email, "name": "Someone", "role": role, "password": password } }),
        )
        .await;
        self.login(&tenant.host, email, password).await
    }
}

/// Asserts that `error` (one entry of a response's `errors`) carries `code` and, in
/// `extensions.field`, `field` (or no field).
#[track_caller]
pub fn assert_error(error: &Value, code: &str, field: Option<&str>) {
    assert_error_for("", error, code, field);
}

/// [`assert_error`] for one case of many, named by `case` (its input, say) when it fails.
#[track_caller]
pub fn assert_error_for(case: impl std::fmt::Display, error: &Value, code: &str, field: Option<&str>) {
    assert_eq!(
        (
            error["extensions"]["code"].as_str(),
            error["extensions"]["field"].as_str()
        ),
        (Some(code), field),
        "{case} {error}"
    );
}

/// Retries `check` for up to two seconds: for effects that travel through LISTEN/NOTIFY.
pub async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..40 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("condition not met within 2 s");
}

/// Something to put in the way of a migration in `schema`, and how to take it away: a table
/// of the name of the first table it creates, or else the first column it adds.
pub fn obstruction(schema: &str, up_sql: &str) -> (String, String) {
    let word_after = |marker: &str| {
        up_sql.split(marker).nth(1).map(|rest| {
            rest.split(|c: char| c.is_whitespace() || c == '(')
                .find(|w| !w.is_empty())
                .unwrap()
                .to_owned()
        })
    };
    if let Some(table) = word_after("CREATE TABLE ") {
        return (
            format!("CREATE TABLE {schema}.{table} (x int)"),
            format!("DROP TABLE {schema}.{table}"),
        );
    }
    let table = word_after("ALTER TABLE ").expect("the migration creates or alters a table");
    let column = word_after("ADD COLUMN ").expect("the migration adds a column");
    (
        format!("ALTER TABLE {schema}.{table} ADD COLUMN {column} int"),
        format!("ALTER TABLE {schema}.{table} DROP COLUMN {column}"),
    )
}

/// Worker settings for tests: short lease, fast polls and retries.
pub fn fast_config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        lease_seconds: 10,
        poll_ms: 200,
        backoff_ms: 50,
        grace_seconds: 5,
    }
}

/// A background worker on its own pool of `pool_size`, woken by `app`'s change listener.
pub fn worker(
    app: &TestApp,
    registry: Registry,
    config: WorkerConfig,
    mail: MailConfig,
    pool_size: usize,
    schedules: Vec<Schedule>,
) -> Worker {
    let pool = tenancy::build_pool(&app.db.pool_config(pool_size)).unwrap();
    app.state
        .worker(pool, registry, schedules, &mail, config)
        .unwrap()
}

/// The service's settings for a test: its own folder of files.
pub fn test_config() -> ServiceConfig {
    let mut config = ServiceConfig::with_secret(JWT_SECRET);
    config.file_store = temp_dir("files").to_string_lossy().into_owned();
    config
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crowdminder-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a standard worker until the queue is empty, delivering through the real SMTP server
/// into a mailbox of this test's own; returns the messages the server accepted.
pub async fn drain_outbox(app: &TestApp) -> Vec<String> {
    let mailbox = peers::TestMailbox::new();
    run_jobs_until_done(app, mailbox.mail_config()).await;
    mailbox.messages()
}

/// The same, with emails written as `.eml` files (the service's default without `SMTP_URL`).
pub async fn drain_outbox_to_files(app: &TestApp) -> Vec<String> {
    let outbox = temp_dir("outbox");
    run_jobs_until_done(app, MailConfig::files(&outbox)).await;
    let emails = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let _ = std::fs::remove_dir_all(&outbox);
    emails
}

async fn run_jobs_until_done(app: &TestApp, mail: MailConfig) {
    let (stop, rx) = crowdminder::jobs::worker::Shutdown::new();
    let handle = worker(app, crowdminder::app::jobs(), fast_config(2), mail, 3, Vec::new()).spawn(rx);
    eventually(|| async { app.count("SELECT count(*) AS n FROM public.jobs").await == 0 }).await;
    stop.trigger();
    handle.await.unwrap();
}
