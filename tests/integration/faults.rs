//! The database away, busy or slow: requests fail fast with a code a script can act on
//! (`UNAVAILABLE` with HTTP 503 and `Retry-After`, or `TIMEOUT`), and the service serves
//! again by itself once the database does.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use crowdminder::app::App;
use crowdminder::config::{DatabaseConfig, Secret};
use crowdminder::tenancy;
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{TestApp, assert_error, serve_process, test_config};

fn graphql(host: &str, token: Option<&str>, query: &str) -> Request<Body> {
    let body = json!({ "query": query }).to_string();
    let mut request = Request::post("/graphql")
        .header("host", host)
        .header("content-type", "application/json")
        .header("content-length", body.len());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(body)).unwrap()
}

async fn json_body(response: axum::response::Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
}

/// Asserts a 503 that says when to come back and, for GraphQL, why.
async fn assert_unavailable(response: axum::response::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    let body = json_body(response).await;
    assert_error(&body["errors"][0], "UNAVAILABLE", None);
    let text = body.to_string();
    assert!(!text.contains("127.0.0.1") && !text.contains("SELECT"), "{text}");
}

#[tokio::test]
async fn with_no_database_requests_fail_fast_as_unavailable_and_readyz_says_so() {
    // A port nothing listens on.
    let port = crate::common::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nowhere");
    let pool = tenancy::build_pool(&DatabaseConfig::new(url.clone(), 2)).unwrap();
    let app = App::new(pool, test_config(), Secret::new(url)).unwrap();
    let router = app.router();

    let started = Instant::now();
    let response = router
        .clone()
        .oneshot(graphql(
            "acme.test.localhost",
            None,
            "{ tenantSettings { timeZone } }",
        ))
        .await
        .unwrap();
    assert_unavailable(response).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let ready = router
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.headers()["retry-after"], "2");
}

#[tokio::test]
async fn with_every_connection_taken_a_request_is_unavailable_then_served_once_one_is_free() {
    let app = TestApp::with_database(1, test_config(), |db| db.wait_timeout_ms = 300).await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin).client("Globex").await;
    let query = "{ clients(first: 5) { edges { node { name } } } }";

    let held = app.pool.checkout().await.unwrap();
    let started = Instant::now();
    assert_unavailable(app.send_raw(graphql(&t.host, Some(&admin), query)).await).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // A mutation is refused the same way, and writes nothing.
    let create = "mutation { createClient(input: {name: \"Initech\"}) { id } }";
    assert_unavailable(app.send_raw(graphql(&t.host, Some(&admin), create)).await).await;
    drop(held);

    let data = app.gql(&t.host, Some(&admin), query, json!({})).await;
    assert_eq!(data["clients"]["edges"][0]["node"]["name"], "Globex");
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.clients").await, 1);
}

#[tokio::test]
async fn a_statement_past_the_timeout_is_stopped_and_its_connection_serves_on() {
    let app = TestApp::with_database(1, test_config(), |db| db.statement_timeout_ms = 300).await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin).client("Globex").await;
    let query = "{ clients(first: 5) { edges { node { name } } } }";
    app.gql(&t.host, Some(&admin), query, json!({})).await;

    // The clients table held by another session: the page's statement waits, and is cancelled.
    let mut locker = app.raw_conn().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE acme.clients IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let (status, body) = app.post(&t.host, Some(&admin), query, json!({})).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_error(&body["errors"][0], "TIMEOUT", None);
    assert!(!body.to_string().contains("SELECT"), "{body}");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();

    // The pool's one connection is fine for the next request.
    let data = app.gql(&t.host, Some(&admin), query, json!({})).await;
    assert_eq!(data["clients"]["edges"][0]["node"]["name"], "Globex");
}

/// A PostgreSQL cluster of this test's own (`scripts/pg.sh`), to stop like a crash and start
/// again without disturbing the other tests' server.
struct OwnServer {
    dir: std::path::PathBuf,
    port: u16,
}

impl OwnServer {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg.sh")
    }

    /// Starts it (made on first use) and returns the URL of its `postgres` database.
    fn start(&self) -> String {
        // Durable commits (no synchronous_commit=off): a crash must not lose an acknowledged write.
        let out = std::process::Command::new(Self::script())
            .args([
                "start",
                self.dir.to_str().unwrap(),
                &self.port.to_string(),
                "-c",
                "fsync=off",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn stop(&self, mode: &str) {
        let status = std::process::Command::new(Self::script())
            .args(["stop", self.dir.to_str().unwrap(), mode])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One signed-in client of the service, over its router.
struct Caller {
    router: axum::Router,
    host: String,
    token: Option<String>,
}

impl Caller {
    async fn post(&self, query: &str, variables: Value) -> (StatusCode, Value) {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let mut request = Request::post("/graphql")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("content-length", body.len());
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(response.headers()["retry-after"], "2");
        }
        (status, json_body(response).await)
    }
}

/// PostgreSQL stops like a crash under eight writers and starts again two seconds later:
/// every write the API acknowledged is there afterwards, every failure meanwhile says
/// `UNAVAILABLE` (503), and the service writes again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_of_the_database_loses_no_acknowledged_write_and_the_service_recovers() {
    use crowdminder::app::{FirstAdmin, create_tenant};
    use crowdminder::tenancy::registry::NewTenant;
    use std::sync::{Arc, Mutex};

    let _ = tracing_subscriber::fmt()
        .with_env_filter("error,crowdminder=warn")
        .try_init();
    let server = OwnServer {
        dir: crate::common::temp_dir("own-pg"),
        port: crate::common::port_for_a_restartable_server(),
    };
    let admin_url = server.start();
    let mut admin = tenancy::connect(&admin_url).await.unwrap();
    admin.batch_execute("CREATE DATABASE faults").await.unwrap();
    let url = format!("{}/faults", admin_url.rsplit_once('/').unwrap().0);
    let mut conn = tenancy::connect(&url).await.unwrap();
    tenancy::migrations::migrate_public(&mut conn).await.unwrap();
    create_tenant(
        &mut conn,
        &NewTenant::parse("acme", "Acme", "acme.test.localhost").unwrap(),
        FirstAdmin {
            email: "admin@acme.example".to_owned(),
            name: "Admin".to_owned(),
            password: Secret::new("a-good-long-password"),
        },
    )
    .await
    .unwrap();
    drop((admin, conn));

    let mut db = DatabaseConfig::new(url.clone(), 4);
    db.wait_timeout_ms = 500;
    let app = App::new(
        tenancy::build_pool(&db).unwrap(),
        test_config(),
        Secret::new(url.clone()),
    )
    .unwrap();
    let mut caller = Caller {
        router: app.router(),
        host: "acme.test.localhost".to_owned(),
        token: None,
    };
    let (_, login) = caller
        .post(
            "mutation { login(email: \"admin@acme.example\", password: \"a-good-long-password\") { token } }",
            json!({}),
        )
        .await;
    caller.token = Some(login["data"]["login"]["token"].as_str().unwrap().to_owned());
    let (_, client) = caller
        .post(
            "mutation { createClient(input: {name: \"Globex\"}) { id } }",
            json!({}),
        )
        .await;
    let (_, project) = caller
        .post(
            "mutation($c: ID!) { createProject(input: {clientId: $c, name: \"Web\", hourlyRate: \"100\"}) { id } }",
            json!({ "c": client["data"]["createClient"]["id"] }),
        )
        .await;
    let project = project["data"]["createProject"]["id"].clone();
    assert!(project.is_string(), "{project}");

    let caller = Arc::new(caller);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refusals = Arc::new(Mutex::new(Vec::<(StatusCode, Value)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (caller, acknowledged, refusals, stop, project) = (
            Arc::clone(&caller),
            Arc::clone(&acknowledged),
            Arc::clone(&refusals),
            Arc::clone(&stop),
            project.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let notes = format!("writer {w} entry {i}");
                let (status, body) = caller
                    .post(
                        "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { notes } }",
                        json!({ "i": { "projectId": project, "date": "2026-11-23", "minutes": 15, "notes": notes } }),
                    )
                    .await;
                if status == StatusCode::OK && body["data"]["createTimeEntry"]["notes"] == notes.as_str() {
                    acknowledged.lock().unwrap().push(notes);
                } else {
                    refusals.lock().unwrap().push((status, body));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                i += 1;
            }
        }));
    }
    let acked = || acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_crash = acked();
    assert!(before_crash > 0, "no write got through before the crash");
    server.stop("immediate");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let while_down = acked();
    let restarted = server.start();
    assert_eq!(restarted, admin_url, "the server came back on another port");
    // Writes go through again by themselves.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked() < while_down + 50 {
        assert!(
            Instant::now() < deadline,
            "the service did not write again after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    let refusals = refusals.lock().unwrap().clone();
    assert!(
        !refusals.is_empty(),
        "the crash refused nothing: it did not happen under load"
    );
    for (status, body) in refusals.iter() {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_error(&body["errors"][0], "UNAVAILABLE", None);
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut check = tenancy::connect(&url).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Note {
        #[diesel(sql_type = diesel::sql_types::Text)]
        notes: String,
    }
    let stored: std::collections::HashSet<String> = diesel_async::RunQueryDsl::load::<Note>(
        diesel::sql_query("SELECT notes FROM acme.time_entries"),
        &mut check,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|n| n.notes)
    .collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    eprintln!(
        "crash under load: {} writes acknowledged ({before_crash} before the crash), {} refused as UNAVAILABLE, none lost",
        acknowledged.len(),
        refusals.len()
    );
}

fn terminate(server: &tokio::process::Child) {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// A tenant with a client, a signed-in admin, and a session holding the clients table, so
/// that a page of clients waits until `ROLLBACK` is sent on the returned connection.
async fn held_clients(app: &TestApp) -> (crate::common::TestTenant, String, diesel_async::AsyncPgConnection) {
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin).client("Globex").await;
    let mut locker = app.raw_conn().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE acme.clients IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    (t, admin, locker)
}

fn clients_page(
    port: u16,
    host: &str,
    token: &str,
) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("host", host)
        .bearer_auth(token)
        .json(&json!({ "query": "{ clients(first: 5) { edges { node { name } } } }" }))
        .send()
}

/// SIGTERM to `serve` while a request waits on the database: the request is answered in
/// full, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_server_finishes_the_request_in_flight_and_exits_cleanly() {
    let app = TestApp::new().await;
    let (server, port) = serve_process(&app, &[("SHUTDOWN_GRACE_SECONDS", "10")]).await;
    let mut server = server;
    let (t, admin, mut locker) = held_clients(&app).await;
    let in_flight = tokio::spawn(clients_page(port, &t.host, &admin));
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&server);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "the server left before its request was answered"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();

    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["data"]["clients"]["edges"][0]["node"]["name"], "Globex",
        "{body}"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("the server did not exit")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A request still running when `SHUTDOWN_GRACE_SECONDS` is over does not keep the server:
/// it exits 0 at the end of the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_server_waits_no_longer_than_its_grace() {
    let app = TestApp::new().await;
    let (mut server, port) = serve_process(&app, &[("SHUTDOWN_GRACE_SECONDS", "1")]).await;
    let (t, admin, mut locker) = held_clients(&app).await;
    let in_flight = tokio::spawn(clients_page(port, &t.host, &admin));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    terminate(&server);
    let status = tokio::time::timeout(Duration::from_secs(5), server.wait())
        .await
        .expect("the server outstayed its grace")
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= Duration::from_millis(900),
        "left before the grace was over: {took:?}"
    );
    // The request was cut off, not answered.
    assert!(in_flight.await.unwrap().is_err());
    locker.batch_execute("ROLLBACK").await.unwrap();
}
