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

use crate::common::{TestApp, assert_error, test_config};

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
