//! Hostile clients against a running server: floods of logins, and what they may take of
//! memory. Each test reproduces an attack on a `serve` process and asserts the defence.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestApp, serve_process};

/// A memory figure of process `pid` from /proc, in bytes: `VmHWM` (the peak so far) or
/// `VmRSS` (now).
fn memory(pid: u32, figure: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(figure)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{figure} in /proc status"))
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

fn peak_resident(pid: u32) -> u64 {
    memory(pid, "VmHWM")
}

const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// One request: the HTTP status, the `Retry-After` header and the body.
async fn post(
    client: &reqwest::Client,
    port: u16,
    host: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut request = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("host", host)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("")
}

/// A started server process, its port and a client.
async fn server(app: &TestApp, env: &[(&str, &str)]) -> (tokio::process::Child, u16, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (process, port) = serve_process(app, env).await;
    (process, port, reqwest::Client::new())
}

/// One login: the HTTP status, the `Retry-After` header and the body.
async fn login(
    client: &reqwest::Client,
    port: u16,
    host: &str,
    email: &str,
    password: &str,
) -> (u16, Option<String>, Value) {
    let response = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("host", host)
        .json(&json!({ "query": LOGIN, "variables": { "e": email, "p": password } }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_logins_keep_memory_bounded_and_the_rest_are_told_to_retry() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let (server, port) = serve_process(
        &app,
        &[("PASSWORD_HASH_THREADS", "2"), ("PASSWORD_HASH_QUEUE", "16")],
    )
    .await;
    let pid = server.id().unwrap();
    let client = reqwest::Client::new();
    // Warm: one login, so the figure below is what the storm adds.
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!(status, 200, "{body}");
    let before = peak_resident(pid);
    // 200 accounts (one password check runs at a time per account), each with the
    // admin's password.
    app.exec(
        "INSERT INTO acme.users (email, name, role, password_hash)
         SELECT 'user' || i || '@acme.test', 'User ' || i, 'MEMBER', (SELECT password_hash FROM acme.users WHERE id = 1)
         FROM generate_series(1, 200) i",
    )
    .await;

    let storm = (0..200).map(|n| {
        let client = client.clone();
        let (host, email, password) = (
            t.host.clone(),
            format!("user{}@acme.test", n + 1),
            t.admin_password.clone(),
        );
        tokio::spawn(async move { login(&client, port, &host, &email, &password).await })
    });
    let answers = futures_util::future::join_all(storm).await;
    let peak = peak_resident(pid);

    let (mut signed_in, mut refused) = (0, 0);
    for answer in answers {
        let (status, retry_after, body) = answer.unwrap();
        if status == 200 && body["data"]["login"]["token"].is_string() {
            signed_in += 1;
        } else {
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
            assert!(retry_after.is_some(), "a refused login says when to retry");
            refused += 1;
        }
    }
    assert_eq!(signed_in + refused, 200);
    // Two threads and 16 waiting: those sign in, the rest are told to come back.
    assert!(signed_in >= 2, "{signed_in} signed in");
    assert!(refused > 0, "200 at once are more than the queue holds");
    assert!(
        peak < 200 * 1024 * 1024,
        "peak resident memory {} MB (before the storm {} MB)",
        peak / (1024 * 1024),
        before / (1024 * 1024)
    );
    eprintln!(
        "200 concurrent logins: {signed_in} signed in, {refused} told to retry; peak resident {} MB (before {} MB)",
        peak / (1024 * 1024),
        before / (1024 * 1024)
    );

    // Once the storm is over, logins go through again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_999_aliased_logins_is_refused_before_any_password_is_tried() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let (_server, port, client) = server(&app, &[]).await;
    // 998 wrong guesses and the right password, each under its own alias.
    let mut fields: Vec<String> = (0..998)
        .map(|n| format!("a{n}: login(email: $e, password: \"guess-number-{n}\") {{ token }}"))
        .collect();
    fields.push("right: login(email: $e, password: $p) { token }".to_owned());
    let query = format!("mutation($e: String!, $p: String!) {{ {} }}", fields.join(" "));
    let started = std::time::Instant::now();
    let (status, _, body) = post(
        &client,
        port,
        &t.host,
        &[],
        json!({ "query": query, "variables": { "e": t.admin_email, "p": t.admin_password } }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "login");
    assert!(body["data"].is_null(), "nothing executed: {body}");
    assert!(!body.to_string().contains("token\":\""), "no token handed out");
    // Refused before hashing: far below one password check per alias.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Two logins reached through fragments, and one login under an alias, are refused too.
    for query in [
        "mutation($e: String!, $p: String!) { ...A ...B } \
         fragment A on Mutation { login(email: $e, password: $p) { token } } \
         fragment B on Mutation { other: login(email: $e, password: \"x\") { token } }",
        "mutation($e: String!, $p: String!) { mine: login(email: $e, password: $p) { token } }",
    ] {
        let (status, _, body) = post(
            &client,
            port,
            &t.host,
            &[],
            json!({ "query": query, "variables": { "e": t.admin_email, "p": t.admin_password } }),
        )
        .await;
        assert_eq!((status, code(&body)), (400, "BAD_USER_INPUT"), "{query}: {body}");
    }
    // One plain login, as clients send it, signs in.
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["login"]["token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sixth_wrong_password_in_a_minute_is_throttled_while_another_account_signs_in() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let other = app.create_tenant("globex").await;
    let admin = app.login_admin(&t).await;
    app.create_user(&t, &admin, "bob@acme.test", "MEMBER").await;
    let (_server, port, client) = server(&app, &[]).await;

    for n in 0..5 {
        let (status, _, body) = login(
            &client,
            port,
            &t.host,
            &t.admin_email,
            &format!("wrong-{n}-password"),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (200, "UNAUTHENTICATED"),
            "attempt {n}: {body}"
        );
    }
    let (status, retry_after, body) = login(&client, port, &t.host, &t.admin_email, "wrong-6-password").await;
    assert_eq!((status, code(&body)), (429, "THROTTLED"), "{body}");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=12).contains(&seconds), "Retry-After {seconds}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], seconds);
    // The right password, in another casing of the email, is refused too while it lasts.
    let shouted = t.admin_email.to_uppercase();
    let (status, _, body) = login(&client, port, &t.host, &shouted, &t.admin_password).await;
    assert_eq!((status, code(&body)), (429, "THROTTLED"), "{body}");

    // Another account of the tenant, and the same email in another tenant, sign in.
    let (status, _, body) = login(&client, port, &t.host, "bob@acme.test", "a-good-long-password").await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = login(
        &client,
        port,
        &other.host,
        &other.admin_email,
        &other.admin_password,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Once the wait is over the account signs in with its password.
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_sent_at_once_get_no_more_tries_than_the_budget() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let (_server, port, client) = server(&app, &[]).await;
    // 40 wrong passwords for one account at once, from 40 connections.
    let attempts = (0..40).map(|n| {
        let (client, host, email) = (client.clone(), t.host.clone(), t.admin_email.clone());
        async move { login(&client, port, &host, &email, &format!("guess-{n}-password")).await }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let tried = answers
        .iter()
        .filter(|(_, _, body)| code(body) == "UNAUTHENTICATED")
        .count();
    let refused = answers
        .iter()
        .filter(|(status, _, body)| *status == 429 && code(body) == "THROTTLED")
        .count();
    assert_eq!(tried + refused, 40, "{answers:?}");
    assert!(tried <= 5, "{tried} passwords were tried, past the budget of 5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_credentials_from_one_address_are_throttled_and_forwarded_for_is_believed_only_from_trusted_proxies()
 {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let budget = [("CREDENTIAL_FAILURES_PER_ADDRESS", "4")];

    // Straight from clients: spraying one password over many accounts, and forged tokens,
    // spend the address's budget; a made-up X-Forwarded-For changes nothing.
    let (_server, port, client) = server(&app, &budget).await;
    for n in 0..3 {
        let forged = format!("10.9.0.{n}");
        let (status, _, body) = post(
            &client,
            port,
            &t.host,
            &[("x-forwarded-for", forged.as_str())],
            json!({ "query": LOGIN, "variables": { "e": format!("user{n}@acme.test"), "p": "Summer2026!!" } }),
        )
        .await;
        assert_eq!((status, code(&body)), (200, "UNAUTHENTICATED"), "{body}");
    }
    // The claims of a real token under a signature of the attacker's.
    let forged_jwt = format!("{}.c2lnbmVkLWJ5LW5vYm9keQ", &admin[..admin.rfind('.').unwrap()]);
    let (status, _, body) = post(
        &client,
        port,
        &t.host,
        &[("authorization", &format!("Bearer {forged_jwt}"))],
        json!({ "query": "{ me { email } a: me { email } b: me { email } }" }),
    )
    .await;
    assert_eq!((status, code(&body)), (200, "UNAUTHENTICATED"), "{body}");
    // That was the fourth failure (three fields, one check), the last the budget had: the
    // fifth is throttled, and after it no credential from the address is even checked.
    let (status, retry_after, body) = post(
        &client,
        port,
        &t.host,
        &[("authorization", "Bearer cmt_not-a-real-api-token")],
        json!({ "query": "{ me { email } }" }),
    )
    .await;
    assert_eq!((status, code(&body)), (429, "THROTTLED"), "{body}");
    assert!(retry_after.is_some());
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!((status, code(&body)), (429, "THROTTLED"), "{body}");
    // A request without a credential is not a credential check.
    let (status, _, body) = post(
        &client,
        port,
        &t.host,
        &[],
        json!({ "query": "{ tenantSettings { timeZone } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Behind a trusted proxy, each client is its own address.
    let trusted = [
        ("CREDENTIAL_FAILURES_PER_ADDRESS", "4"),
        ("TRUSTED_PROXIES", "127.0.0.0/8, ::1"),
    ];
    let (_proxied, port, client) = server(&app, &trusted).await;
    let forwarded = |hops: String, email: String, password: String| {
        let client = client.clone();
        let host = t.host.clone();
        async move {
            let (status, _, body) = post(
                &client,
                port,
                &host,
                &[("x-forwarded-for", hops.as_str())],
                json!({ "query": LOGIN, "variables": { "e": email, "p": password } }),
            )
            .await;
            (status, code(&body).to_owned(), body)
        }
    };
    let guess = |n: u32| (format!("spray{n}@acme.test"), "Summer2026!!".to_owned());
    for n in 0..8 {
        let (status, code, body) = forwarded(
            format!("203.0.113.{n}, 127.0.0.1"),
            format!("user{n}@acme.test"),
            "Summer2026!!".to_owned(),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (200, "UNAUTHENTICATED"),
            "client {n}: {body}"
        );
    }
    // One client past its budget is throttled; the others are not.
    for n in 0..4 {
        let (email, password) = guess(n);
        let (status, code, body) = forwarded("198.51.100.7".to_owned(), email, password).await;
        assert_eq!((status, code.as_str()), (200, "UNAUTHENTICATED"), "{body}");
    }
    let (email, password) = guess(9);
    let (status, code, body) = forwarded("198.51.100.7".to_owned(), email, password).await;
    assert_eq!((status, code.as_str()), (429, "THROTTLED"), "{body}");
    // What the client wrote left of the proxy's entry is not believed: this is still
    // 198.51.100.7, throttled.
    let admin = || (t.admin_email.clone(), t.admin_password.clone());
    let (email, password) = admin();
    let (status, code, body) = forwarded("192.0.2.1, 198.51.100.7".to_owned(), email, password).await;
    assert_eq!((status, code.as_str()), (429, "THROTTLED"), "{body}");
    let (email, password) = admin();
    let (status, _, body) = forwarded("192.0.2.1".to_owned(), email, password).await;
    assert_eq!(status, 200, "{body}");
}

/// Made-up hosts, each a look-up the server could be made to remember, and thousands of
/// different `Host` headers of 16 KB: every one is `TENANT_NOT_FOUND`, headers of 300 KB are
/// 431, and the server's memory stays where it was.
#[tokio::test]
async fn floods_of_unknown_and_huge_hosts_leave_memory_flat() {
    use futures_util::StreamExt;

    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let (server, port, client) = server(&app, &[]).await;
    let pid = server.id().unwrap();
    let settings = json!({ "query": "{ tenantSettings { timeZone } }" });
    let refused = |host: String| {
        let (client, settings) = (client.clone(), settings.clone());
        async move {
            let (status, _, body) = post(&client, port, &host, &[], settings).await;
            assert_eq!(code(&body), "TENANT_NOT_FOUND", "{status} {body}");
        }
    };
    // Warm: the allocator's and the runtime's first growth is not the flood's.
    futures_util::stream::iter(0..500)
        .for_each_concurrent(8, |n| refused(format!("warm-{n}.example.test")))
        .await;
    let before = memory(pid, "VmRSS");
    let run = uuid::Uuid::new_v4().simple().to_string();
    futures_util::stream::iter(0..5_000)
        .for_each_concurrent(8, |n| refused(format!("host-{n}-{run}.example.test")))
        .await;
    // Under the header limit but far past any DNS name: refused before the cache.
    let long = "a".repeat(16 * 1024);
    futures_util::stream::iter(0..4_000)
        .for_each_concurrent(8, |n| refused(format!("{n}-{long}.example.test")))
        .await;
    // Past the header limit: refused by the server itself, 431, before the router.
    let huge = "a".repeat(300 * 1024);
    for n in 0..50 {
        let response = client
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .header("host", format!("{n}-{huge}.example.test"))
            .json(&settings)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 431);
    }
    let after = memory(pid, "VmRSS");
    eprintln!(
        "5,000 unknown hosts, 4,000 of 16 KB and 50 of 300 KB: resident {} MB before, {} MB after",
        before / 1_000_000,
        after / 1_000_000
    );
    assert!(
        after < before + 24 * 1024 * 1024,
        "resident memory grew from {before} to {after} bytes"
    );
    // The tenant is served as before.
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}

/// Raw bytes to a server, then how long until it closes the connection and what it said.
async fn held_until_closed(port: u16, sent: &[u8]) -> (Duration, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "still open after 30 s");
    (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

/// Slow headers, idle connections and slow bodies are cut off at their timeouts; past the
/// connection cap new connections wait, and are served once the held ones are cut.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_at_their_timeouts_and_capped() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let limits = [
        ("HTTP_HEADER_TIMEOUT_SECONDS", "2"),
        ("HTTP_BODY_TIMEOUT_SECONDS", "2"),
        ("MAX_CONNECTIONS", "20"),
    ];
    let (_server, port, client) = server(&app, &limits).await;

    // Half a header, then nothing: closed at the header timeout, with nothing run.
    let (after, answer) = held_until_closed(port, b"POST /graphql HTTP/1.1\r\nHost: x\r\n").await;
    assert!(
        after >= Duration::from_millis(1_500) && after < Duration::from_secs(5),
        "{after:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    // An idle connection: the same.
    let (after, _) = held_until_closed(port, b"").await;
    assert!(
        after >= Duration::from_millis(1_500) && after < Duration::from_secs(5),
        "{after:?}"
    );
    // A whole header, a tenth of the body it announced: 408 at the body timeout.
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"query\":",
        t.host
    );
    let (after, answer) = held_until_closed(port, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(after < Duration::from_secs(5), "{after:?}");

    // Twenty idle connections take every place: a request on a new one waits, and is
    // served once the header timeout has closed them.
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        waited >= Duration::from_millis(1_200),
        "served at once past the cap: {waited:?}"
    );
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    drop(held);
}

/// `/metrics` is not on the API's address; it is served on `METRICS_BIND`.
#[tokio::test]
async fn metrics_are_served_only_on_their_own_address() {
    let app = TestApp::new().await;
    let metrics_port = crate::common::free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let (_server, port, client) = server(&app, &[("METRICS_BIND", metrics_bind.as_str())]).await;
    let api = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 404);
    let metrics = client
        .get(format!("http://{metrics_bind}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE crowdminder_jobs gauge"), "{text}");
    // Nothing of the API there.
    let graphql = client
        .post(format!("http://{metrics_bind}/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(graphql.status().as_u16(), 404);
}

/// The head of a multipart POST announcing `length` bytes, then the first bytes of its body.
fn multipart_head(host: &str, token: Option<&str>, length: usize) -> Vec<u8> {
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /graphql HTTP/1.1\r\nHost: {host}\r\n{authorization}\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: {length}\r\n\r\n\
         --XYZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{{\"query\": \""
    )
    .into_bytes()
}

/// A multipart body announced at 20 MB is answered before it is sent when the host is not
/// a tenant's or the token does not hold; with a good token it is read, each file held to
/// FILE_MAX_BYTES. A body that is not JSON is a plain GraphQL error.
#[tokio::test]
async fn uploads_are_refused_before_their_body_without_a_tenant_or_a_valid_token() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    // At the default FILE_MAX_BYTES (10 MiB), 20 MB is within what an upload may carry.
    let (_server, port, _) = server(&app, &[]).await;
    let twenty_mb = 20 * 1024 * 1024;
    for (host, token, status, code) in [
        (t.host.as_str(), None, "401", "UNAUTHENTICATED"),
        (
            t.host.as_str(),
            Some("cmt_not-a-real-api-token"),
            "401",
            "UNAUTHENTICATED",
        ),
        ("nobody.example.test", None, "404", "TENANT_NOT_FOUND"),
    ] {
        let (after, answer) = held_until_closed(port, &multipart_head(host, token, twenty_mb)).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(answer.contains(code), "{answer}");
        // Answered at once, not after 20 MB or the body timeout.
        assert!(after < Duration::from_secs(5), "{after:?}");
    }

    // Signed in, an upload is read; a file over FILE_MAX_BYTES is 413.
    let (_small, port, client) = server(&app, &[("FILE_MAX_BYTES", "4096")]).await;
    let (_, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    let token = body["data"]["login"]["token"].as_str().unwrap().to_owned();
    let upload = |bytes: Vec<u8>| {
        let (content_type, body) = crate::common::multipart_body(
            "mutation($f: Upload!) { __typename }",
            json!({ "f": null }),
            &[("variables.f", "note.txt", "text/plain", &bytes)],
        );
        client
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .header("host", &t.host)
            .header("content-type", content_type)
            .bearer_auth(&token)
            .body(body)
            .send()
    };
    let response = upload(vec![b'x'; 4000]).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = upload(vec![b'x'; 5000]).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "BAD_REQUEST", "{body}");

    // Not JSON: 400 and a GraphQL error in plain words, nothing of the server's insides.
    for text in ["{ this is not json", "\"a string\"", "{\"query\": 5}"] {
        let response = client
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .header("host", &t.host)
            .header("content-type", "application/json")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{text}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "BAD_REQUEST", "{text}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            !message.contains("InvalidRequest") && !message.contains("Error("),
            "{message}"
        );
    }
}

/// Latency figures of a sample, in milliseconds: the median and the 99th percentile.
fn percentiles(mut sample: Vec<f64>) -> (f64, f64) {
    sample.sort_by(f64::total_cmp);
    let at = |q: f64| sample[((sample.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// A report over five years by client, user and day costs by its span and grouping: 660 of
/// them in one request are refused before anything runs, four pass. While a member of one
/// tenant sends the most expensive request allowed from 16 connections at once (more than
/// the pool would give one tenant), another tenant's `me` is answered within 100 ms. A
/// report past DB_REPORT_STATEMENT_TIMEOUT_MS is cancelled as TIMEOUT.
#[tokio::test]
async fn one_tenants_expensive_reports_are_bounded_by_cost_and_cannot_stall_another() {
    let app = TestApp::new().await;
    let a = app.create_tenant("acme").await;
    let b = app.create_tenant("globex").await;
    let admin = app.login_admin(&a).await;
    app.as_user(&a, &admin).catalog("100").await;
    let member = app.create_user(&a, &admin, "member@acme.example", "MEMBER").await;
    // Five years of a member's time: 150,000 entries.
    app.exec(
        "INSERT INTO acme.time_entries (user_id, project_id, work_date, minutes, billable, hourly_rate) \
         SELECT (SELECT id FROM acme.users WHERE email = 'member@acme.example'), \
                (SELECT min(id) FROM acme.projects), \
                date '2022-01-01' + (i % 1795), 15 + (i % 8) * 15, true, 100 \
         FROM generate_series(1, 150000) i; ANALYZE acme.time_entries",
    )
    .await;
    // Through a pooler the pool that counts is the pooler's (4 server connections in the
    // tests): the service's is sized to it, so a tenant's share is half of those.
    let pool = if crate::common::pooler_url().is_some() {
        "4"
    } else {
        "16"
    };
    let (_server, port, client) = server(&app, &[("DB_POOL_SIZE", pool)]).await;
    let report = "billableHours(from: \"2022-01-01\", to: \"2026-12-01\", groupBy: [CLIENT, USER, DAY]) { totals { entries } }";
    let aliased = |n: usize| {
        let fields: Vec<String> = (0..n).map(|i| format!("r{i}: {report}")).collect();
        json!({ "query": format!("{{ {} }}", fields.join(" ")) })
    };
    let bearer = format!("Bearer {member}");
    let as_member = [("authorization", bearer.as_str())];

    let started = std::time::Instant::now();
    let (status, _, body) = post(&client, port, &a.host, &as_member, aliased(660)).await;
    assert_eq!(
        (status, code(&body)),
        (200, "GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    assert!(body["data"].is_null(), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (_, _, body) = post(&client, port, &a.host, &as_member, aliased(5)).await;
    assert_eq!(
        code(&body),
        "GRAPHQL_VALIDATION_FAILED",
        "five are past the limit: {body}"
    );
    let most = aliased(4);
    let (status, _, body) = post(&client, port, &a.host, &as_member, most.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["r3"]["totals"]["entries"], 150_000, "{body}");

    // Sixteen connections of the member, each sending the most expensive request allowed
    // back to back, and the other tenant signed in meanwhile.
    let other = app.login_admin(&b).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..16 {
        let (client, host, most, bearer, stop) = (
            reqwest::Client::new(),
            a.host.clone(),
            most.clone(),
            bearer.clone(),
            std::sync::Arc::clone(&stop),
        );
        load.push(tokio::spawn(async move {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, _, _) = post(
                    &client,
                    port,
                    &host,
                    &[("authorization", bearer.as_str())],
                    most.clone(),
                )
                .await;
                answered += usize::from(status == 200);
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other_bearer = format!("Bearer {other}");
    let mut latencies = Vec::new();
    for _ in 0..40 {
        let started = std::time::Instant::now();
        let (status, _, body) = post(
            &client,
            port,
            &b.host,
            &[("authorization", other_bearer.as_str())],
            json!({ "query": "{ me { email } }" }),
        )
        .await;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["me"]["email"].is_string(), "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reports = 0;
    for task in load {
        reports += task.await.unwrap();
    }
    let (p50, p99) = percentiles(latencies);
    eprintln!(
        "another tenant's me under 16 connections of the most expensive allowed request: p50 {p50:.1} ms, p99 {p99:.1} ms ({reports} requests of 4 five-year reports answered meanwhile)"
    );
    assert!(reports > 0, "the load did not run");
    assert!(p50 < 100.0, "p50 {p50:.1} ms");

    // A report past its own timeout is cancelled; the rest of the service is not.
    let (_strict, port, client) = server(&app, &[("DB_REPORT_STATEMENT_TIMEOUT_MS", "1")]).await;
    let (status, _, body) = post(&client, port, &a.host, &as_member, aliased(1)).await;
    assert_eq!(code(&body), "TIMEOUT", "{status} {body}");
    let (status, _, body) = post(
        &client,
        port,
        &a.host,
        &as_member,
        json!({ "query": "{ me { email } }" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["email"], "member@acme.example");
}

/// The status of `GET /graphiql` on a server.
async fn graphiql_status(client: &reqwest::Client, port: u16, host: &str) -> u16 {
    let response = client
        .get(format!("http://127.0.0.1:{port}/graphiql"))
        .header("host", host)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

/// Introspection and GraphiQL answer only with GRAPHIQL=true; trace logs show each
/// statement's SQL but none of its bound values (the email, the password hash).
#[tokio::test]
async fn introspection_is_off_by_default_and_logs_hold_no_bound_values() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let log = crate::common::temp_dir("trace-log").join("serve.log");
    let port = crate::common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut settings: Vec<(&str, &str)> = vec![("BIND_ADDR", bind.as_str())];
    settings.push(("RUST_LOG", "crowdminder=trace"));
    let _server = tokio::process::Command::new(env!("CARGO_BIN_EXE_crowdminder"))
        .args(["serve", "--no-worker"])
        .env("DATABASE_URL", app.db.pool_url())
        .env("DATABASE_DIRECT_URL", &app.db.url)
        .env("JWT_SECRET", crate::common::JWT_SECRET)
        .envs(settings.iter().copied())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let introspect = json!({ "query": "{ __schema { types { name } } }" });
    let (status, _, body) = post(&client, port, &t.host, &[], introspect.clone()).await;
    assert_eq!(status, 200);
    assert!(
        body["data"].is_null() || body["data"]["__schema"].is_null(),
        "{body}"
    );
    assert!(!body.to_string().contains("TimeEntry"), "{body}");
    assert_eq!(graphiql_status(&client, port, &t.host).await, 404);

    let (status, _, body) = login(&client, port, &t.host, &t.admin_email, &t.admin_password).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written =
        std::fs::read_to_string(&log).unwrap() + &std::fs::read_to_string(log.with_extension("err")).unwrap();
    assert!(
        written.contains("statement"),
        "trace logs show statements: {written}"
    );
    #[derive(diesel::QueryableByName)]
    struct Hash {
        #[diesel(sql_type = diesel::sql_types::Text)]
        password_hash: String,
    }
    let mut conn = app.raw_conn().await;
    let hash: Hash = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT password_hash FROM acme.users LIMIT 1"),
        &mut conn,
    )
    .await
    .unwrap();
    for secret in [
        hash.password_hash.as_str(),
        &t.admin_password,
        &t.admin_email.to_lowercase(),
    ] {
        assert!(
            !written.contains(secret),
            "the log holds a bound value or secret: {secret}"
        );
    }

    // With GRAPHIQL=true (development), both answer.
    let (_dev, port, client) = server(&app, &[("GRAPHIQL", "true")]).await;
    let (_, _, body) = post(&client, port, &t.host, &[], introspect).await;
    assert!(body["data"]["__schema"]["types"].is_array(), "{body}");
    assert_eq!(graphiql_status(&client, port, &t.host).await, 200);
}

/// A NUL in any text is BAD_USER_INPUT naming where it was, before anything runs; control
/// characters are refused in names.
#[tokio::test]
async fn nul_and_control_characters_are_refused_as_bad_input_and_nothing_is_written() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let c = app.as_user(&t, &admin).catalog("100").await;
    let entries = "SELECT count(*) AS n FROM acme.time_entries";
    let create = "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { id } }";
    let (status, body) = app
        .post(
            &t.host,
            Some(&admin),
            create,
            json!({ "i": { "projectId": c.project, "date": "2026-11-02", "minutes": 15, "notes": "a\u{0}b" } }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    crate::common::assert_error(&body["errors"][0], "BAD_USER_INPUT", Some("variables.i.notes"));
    let inline = format!(
        "mutation {{ createTimeEntry(input: {{projectId: \"{}\", date: \"2026-11-02\", minutes: 15, notes: \"a\\u0000b\"}}) {{ id }} }}",
        c.project.as_str().unwrap()
    );
    let (status, body) = app.post(&t.host, Some(&admin), &inline, json!({})).await;
    assert_eq!(status, 400, "{body}");
    crate::common::assert_error(&body["errors"][0], "BAD_USER_INPUT", Some("input.notes"));
    assert_eq!(app.count(entries).await, 0);

    for (query, input, field) in [
        (
            "mutation($i: CreateClientInput!) { createClient(input: $i) { id } }",
            json!({ "name": "Evil\nCorp" }),
            "input.name",
        ),
        (
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "email": "bell@acme.example", "name": "Bell\u{7}", "role": "MEMBER", "password": "a-good-long-password" }),
            "input.name",
        ),
        (
            "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { id } }",
            json!({ "projectId": c.project, "date": "2026-11-02", "minutes": 15, "notes": "\u{1b}[2J" }),
            "input.notes",
        ),
    ] {
        let (code, error) = app
            .gql_error(&t.host, Some(&admin), query, json!({ "i": input }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{error}");
        assert_eq!(error["extensions"]["field"], field, "{error}");
    }
    assert_eq!(app.count(entries).await, 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.clients WHERE name LIKE 'Evil%'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.users WHERE email = 'bell@acme.example'")
            .await,
        0
    );
    // Notes keep their line breaks and tabs.
    let kept = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { notes } }",
            json!({ "i": { "projectId": c.project, "date": "2026-11-02", "minutes": 15, "notes": "line one\n\tline two" } }),
        )
        .await;
    assert_eq!(kept["createTimeEntry"]["notes"], "line one\n\tline two");
}

/// Members see neither where clients are billed nor colleagues' rates, on any path (the
/// page of entries written directly, or field by field); admins see both.
#[tokio::test]
async fn members_see_no_billing_emails_and_no_colleagues_rates() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let build = app.as_user(&t, &admin);
    let client = build
        .client_with(json!({ "name": "Globex", "billingEmail": "ap@globex.example" }))
        .await;
    let project = build.project(&client, "Website", "100").await;
    let member = app.create_user(&t, &admin, "m@acme.example", "MEMBER").await;
    let colleague = app.create_user(&t, &admin, "c@acme.example", "MEMBER").await;
    let member_id = app.as_user(&t, &member).my_id().await;
    let colleague_id = app.as_user(&t, &colleague).my_id().await;
    build.member(&project, &member_id, Some("80")).await;
    build.member(&project, &colleague_id, Some("95")).await;
    app.as_user(&t, &member).log(&project, "2026-11-02", 60).await;

    let query = "query($p: ID!) { \
        node(id: $p) { ... on Project { client { billingEmail } members { user { email } hourlyRate } } } \
        timeEntries(first: 5) { edges { node { project { client { billingEmail } } } } } }";
    let seen = |token: String| {
        let (app, t, project) = (&app, &t, project.clone());
        async move {
            app.gql(&t.host, Some(&token), query, json!({ "p": project }))
                .await
        }
    };
    let as_member = seen(member.clone()).await;
    assert!(
        as_member["node"]["client"]["billingEmail"].is_null(),
        "{as_member}"
    );
    let edges = as_member["timeEntries"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert!(
        edges[0]["node"]["project"]["client"]["billingEmail"].is_null(),
        "{as_member}"
    );
    let rates: Vec<(Value, Value)> = as_member["node"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user"]["email"].clone(), m["hourlyRate"].clone()))
        .collect();
    assert!(
        rates.contains(&(json!("m@acme.example"), json!("80"))),
        "own rate: {rates:?}"
    );
    assert!(
        rates.iter().all(|(_, rate)| *rate != json!("95")),
        "a colleague's rate: {rates:?}"
    );

    let as_admin = seen(admin.clone()).await;
    assert_eq!(as_admin["node"]["client"]["billingEmail"], "ap@globex.example");
    assert_eq!(
        as_admin["timeEntries"]["edges"][0]["node"]["project"]["client"]["billingEmail"],
        "ap@globex.example"
    );
    let rates: Vec<Value> = as_admin["node"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hourlyRate"].clone())
        .collect();
    assert!(
        rates.contains(&json!("95")) && rates.contains(&json!("80")),
        "{rates:?}"
    );
}

/// A login token signed with the service's secret, with the claims given.
fn signed_token(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::common::JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

const ME: &str = "{ me { email } }";
const CHANGE_PASSWORD: &str = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token user { email } } }";

#[tokio::test]
async fn logout_password_changes_and_deactivation_end_earlier_tokens_and_nbf_is_checked() {
    let app = TestApp::new().await;
    let other_server = app.second_server();
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let email = "m@acme.example";
    let first = app.create_user(&t, &admin, email, "MEMBER").await;
    let password = "a-good-long-password";
    let second = app.login(&t.host, email, password).await;
    assert_ne!(first, second, "each login is a token of its own");
    for token in [&first, &second] {
        assert_eq!(
            app.gql(&t.host, Some(token), ME, json!({})).await["me"]["email"],
            email
        );
        assert_eq!(
            other_server.gql(&t.host, Some(token), ME, json!({})).await["me"]["email"],
            email
        );
    }

    // Signing out with one token ends both, on both servers; the admin stays signed in.
    let out = app
        .gql(&t.host, Some(&first), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["logout"], true);
    for token in [&first, &second] {
        let (code, error) = app.gql_error(&t.host, Some(token), ME, json!({})).await;
        assert_eq!(code, "UNAUTHENTICATED", "{error}");
        crate::common::eventually(|| async {
            let (status, body) = other_server.post(&t.host, Some(token), ME, json!({})).await;
            status == axum::http::StatusCode::UNAUTHORIZED
                || body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        })
        .await;
    }
    assert!(app.gql(&t.host, Some(&admin), ME, json!({})).await["me"]["email"].is_string());

    // A password change needs the right current password and a valid new one, ends the
    // earlier tokens, and answers with a token that works.
    let before = app.login(&t.host, email, password).await;
    let version = |n: i64| {
        format!("SELECT count(*) AS n FROM acme.users WHERE email = '{email}' AND token_version = {n}")
    };
    assert_eq!(app.count(&version(1)).await, 1);
    for (current, new, field) in [
        ("not-the-password", "another-long-password", "currentPassword"),
        (password, "short", "newPassword"),
        (password, password, "newPassword"),
    ] {
        let (_, body) = app
            .post(
                &t.host,
                Some(&before),
                CHANGE_PASSWORD,
                json!({ "c": current, "n": new }),
            )
            .await;
        crate::common::assert_error_for(field, &body["errors"][0], "BAD_USER_INPUT", Some(field));
    }
    assert_eq!(app.count(&version(1)).await, 1, "nothing changed");
    assert!(app.gql(&t.host, Some(&before), ME, json!({})).await["me"]["email"].is_string());
    let changed = app
        .gql(
            &t.host,
            Some(&before),
            CHANGE_PASSWORD,
            json!({ "c": password, "n": "a-new-long-password" }),
        )
        .await;
    let fresh = changed["changePassword"]["token"].as_str().unwrap().to_owned();
    assert_eq!(changed["changePassword"]["user"]["email"], email);
    assert_eq!(app.count(&version(2)).await, 1);
    let (code, _) = app.gql_error(&t.host, Some(&before), ME, json!({})).await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(
        app.gql(&t.host, Some(&fresh), ME, json!({})).await["me"]["email"],
        email
    );
    let (code, _) = app
        .gql_error(&t.host, None, LOGIN, json!({ "e": email, "p": password }))
        .await;
    assert_eq!(code, "UNAUTHENTICATED", "the old password no longer signs in");
    let current = app.login(&t.host, email, "a-new-long-password").await;
    let emails = crate::common::drain_outbox(&app).await;
    assert!(
        emails
            .iter()
            .any(|e| e.contains("Subject: Your password at Company acme was changed") && e.contains(email)),
        "the user is told: {emails:?}"
    );

    // Two password changes in one request are refused before either is tried.
    let (_, body) = app
        .post(
            &t.host,
            Some(&current),
            "mutation { a: changePassword(currentPassword: \"x\", newPassword: \"yyyyyyyyyyyy\") { token } b: changePassword(currentPassword: \"z\", newPassword: \"yyyyyyyyyyyy\") { token } }",
            json!({}),
        )
        .await;
    crate::common::assert_error(&body["errors"][0], "BAD_USER_INPUT", Some("changePassword"));
    assert_eq!(app.count(&version(2)).await, 1);

    // nbf is checked: a token not valid for another hour is refused, the same token valid
    // from now is taken.
    let user_id: i64 = app
        .count(&format!("SELECT id AS n FROM acme.users WHERE email = '{email}'"))
        .await;
    let now = chrono::Utc::now().timestamp();
    let claims = |nbf: i64| {
        json!({ "sub": user_id.to_string(), "tid": t.tenant.id, "iat": now, "nbf": nbf,
                "exp": now + 3600, "iss": "crowdminder", "ver": 2, "jti": "x" })
    };
    let (code, error) = app
        .gql_error(&t.host, Some(&signed_token(claims(now + 3600))), ME, json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
    assert!(
        error["message"].as_str().unwrap().contains("not valid yet"),
        "{error}"
    );
    assert_eq!(
        app.gql(&t.host, Some(&signed_token(claims(now))), ME, json!({}))
            .await["me"]["email"],
        email
    );

    // Deactivation ends login and API tokens, and reactivation revives neither.
    let api = app
        .gql(
            &t.host,
            Some(&current),
            "mutation { createApiToken(name: \"script\") { secret } }",
            json!({}),
        )
        .await["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.gql(&t.host, Some(&api), ME, json!({})).await["me"]["email"],
        email
    );
    let id = app.gql(&t.host, Some(&current), "{ me { id } }", json!({})).await["me"]["id"].clone();
    for active in [false, true] {
        app.gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!, $a: Boolean!) { updateUser(id: $id, input: {active: $a}) { active } }",
            json!({ "id": id, "a": active }),
        )
        .await;
    }
    for token in [&current, &api] {
        let (code, error) = app.gql_error(&t.host, Some(token), ME, json!({})).await;
        assert_eq!(code, "UNAUTHENTICATED", "{error}");
    }
    let back = app.login(&t.host, email, "a-new-long-password").await;
    assert_eq!(
        app.gql(&t.host, Some(&back), ME, json!({})).await["me"]["email"],
        email
    );

    // Wrong current passwords count as failed sign-ins of the account: two were spent above
    // (a wrong current password, the old password), so three more reach the budget of five.
    let mut refused = 0;
    loop {
        let (code, _) = app
            .gql_error(
                &t.host,
                Some(&back),
                CHANGE_PASSWORD,
                json!({ "c": "wrong-wrong", "n": "a-third-long-password" }),
            )
            .await;
        if code != "BAD_USER_INPUT" {
            assert_eq!(code, "THROTTLED");
            break;
        }
        refused += 1;
        assert!(refused <= 5, "wrong current passwords are never throttled");
    }
    assert_eq!(refused, 3);
    let (code, _) = app
        .gql_error(
            &t.host,
            None,
            LOGIN,
            json!({ "e": email, "p": "a-new-long-password" }),
        )
        .await;
    assert_eq!(code, "THROTTLED");
}

/// Runs `request` while `other` holds a transaction open, committing it after `held`: the
/// request's answer, and whether it came after the commit was sent. (The lock goes when the
/// commit is done on the server, so the service may answer before `other` has read that
/// the commit is done; what matters is that the answer waited for the commit.)
async fn racing_a_commit<T>(
    other: &mut diesel_async::AsyncPgConnection,
    held: Duration,
    request: impl Future<Output = T>,
) -> (T, bool) {
    use diesel_async::SimpleAsyncConnection;
    let started = std::time::Instant::now();
    let ((answer, answered_at), commit_sent_at) = tokio::join!(
        async {
            let answer = request.await;
            (answer, started.elapsed())
        },
        async {
            tokio::time::sleep(held).await;
            let sent_at = started.elapsed();
            other.batch_execute("COMMIT").await.unwrap();
            sent_at
        }
    );
    (answer, answered_at >= commit_sent_at)
}

#[tokio::test]
async fn an_api_token_or_a_password_change_racing_a_deactivation_or_sign_out_loses() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let email = "m@acme.example";
    let member = app.create_user(&t, &admin, email, "MEMBER").await;
    let held = Duration::from_millis(400);

    // A sign-out of the member commits while their password change is under way: the
    // change waits for it and is refused; the password is the old one.
    let mut other = app.raw_conn().await;
    other
        .batch_execute(&format!(
            "BEGIN; UPDATE acme.users SET token_version = token_version + 1 WHERE email = '{email}'"
        ))
        .await
        .unwrap();
    let change = app.gql_error(
        &t.host,
        Some(&member),
        CHANGE_PASSWORD,
        json!({ "c": "a-good-long-password", "n": "a-new-long-password" }),
    );
    let ((refused, error), after_commit) = racing_a_commit(&mut other, held, change).await;
    assert_eq!(refused, "UNAUTHENTICATED", "{error}");
    assert!(after_commit, "the change waited for the sign-out");
    app.login(&t.host, email, "a-good-long-password").await;

    // A deactivation commits while the member creates an API token: the token is refused
    // and none is left that a reactivation could revive.
    let member = app.login(&t.host, email, "a-good-long-password").await;
    other
        .batch_execute(&format!(
            "BEGIN; UPDATE acme.users SET active = false, token_version = token_version + 1 WHERE email = '{email}'"
        ))
        .await
        .unwrap();
    let create = app.post(
        &t.host,
        Some(&member),
        "mutation { createApiToken(name: \"late\") { secret } }",
        json!({}),
    );
    let ((_, body), after_commit) = racing_a_commit(&mut other, held, create).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert!(after_commit, "the token waited for the deactivation");
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.api_tokens").await, 0);
}

/// A client that varies a page's selection into hundreds of statement texts cannot make a
/// connection keep a prepared statement for each, nor take every place for the shapes of
/// other tenants: past its share, new shapes are planned each time they run, and still
/// answer.
#[tokio::test]
async fn pages_of_hundreds_of_shapes_leave_a_connection_a_bounded_number_of_prepared_statements() {
    use diesel::QueryableByName;
    use diesel_async::RunQueryDsl;
    let app = TestApp::with_pool_size(1).await;
    let caching = app.db.pool_config(1).caches_statements();
    let (a, b) = (app.create_tenant("acme").await, app.create_tenant("globex").await);
    let mut admins = Vec::new();
    for t in [&a, &b] {
        let admin = app.login_admin(t).await;
        let _ = app.as_user(t, &admin).catalog("100").await;
        app.exec(&format!(
            "INSERT INTO {}.time_entries (user_id, project_id, work_date, minutes, billable, notes)
             SELECT 1, 1, date '2026-11-01' + i % 9, 15, true, 'e' || i FROM generate_series(1, 20) i",
            t.tenant.schema
        ))
        .await;
        admins.push(admin);
    }
    let parts = [
        "minutes",
        "notes",
        "billable",
        "status",
        "externalRef",
        "createdAt",
        "project { name }",
        "project { client { name } }",
        "task { name }",
        "user { email }",
    ];
    let query = |i: usize| {
        let selection: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|(bit, _)| i & (1 << bit) != 0)
            .map(|(_, part)| *part)
            .collect();
        format!(
            "{{ timeEntries(first: 5) {{ edges {{ node {{ id {} }} }} }} }}",
            selection.join(" ")
        )
    };
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let kept = async || {
        let mut conn = app.pool.checkout().await.unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements")
            .get_result::<Count>(&mut *conn)
            .await
            .unwrap()
            .n
    };
    let shapes = crowdminder::db::KEPT_SHAPES + 64;
    for i in 0..shapes {
        let page = app.gql(&a.host, Some(&admins[0]), &query(i), json!({})).await;
        assert_eq!(
            page["timeEntries"]["edges"].as_array().unwrap().len(),
            5,
            "{}",
            query(i)
        );
    }
    let after_flood = kept().await;
    // The tenant's share of the pages' shapes, at most, and the few fixed statements of
    // signing in and settings.
    let share = i64::try_from(crowdminder::db::TENANT_SHAPES).unwrap();
    assert!(
        after_flood <= share + 20,
        "{after_flood} statements kept after {shapes} shapes"
    );
    // Another tenant's new shape is still kept: every part but `project { name }` (beside
    // `project { client { name } }`, the page would go to the resolvers, whose loaders read
    // the relations a page reads in part with statements of their own).
    let page = app
        .gql(&b.host, Some(&admins[1]), &query(1023 - 64), json!({}))
        .await;
    assert_eq!(page["timeEntries"]["edges"].as_array().unwrap().len(), 5);
    assert_eq!(kept().await - after_flood, i64::from(caching));
}

/// A request that passed validation is not validated again when it comes back with the same
/// document, operation and variables; its size is still checked each time, and the same
/// document with other variables, or a document that failed, is validated afresh.
#[tokio::test]
async fn a_request_validated_once_still_has_its_size_and_new_variables_checked() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let revalidated = || app.state.documents.revalidated();
    // Fifty pages of `$n` entries: cheap for one, past the complexity limit for a hundred.
    let pages: String = (0..50)
        .map(|i| format!("p{i}: timeEntries(first: $n) {{ edges {{ node {{ id notes }} }} }} "))
        .collect();
    let query = format!("query($n: Int!) {{ {pages} }}");
    let before = revalidated();
    for _ in 0..3 {
        let data = app.gql(&t.host, Some(&admin), &query, json!({ "n": 1 })).await;
        assert!(data["p49"]["edges"].is_array(), "{data}");
    }
    assert_eq!(
        revalidated(),
        before + 2,
        "the second and third are not validated again"
    );
    for _ in 0..2 {
        let (_, body) = app.post(&t.host, Some(&admin), &query, json!({ "n": 100 })).await;
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(body["errors"][0]["message"], "Query is too complex.", "{body}");
        let (_, body) = app
            .post(&t.host, Some(&admin), &query, json!({ "n": "one" }))
            .await;
        assert_eq!(
            body["data"],
            Value::Null,
            "refused whole, not field by field: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with("Invalid value for argument"), "{body}");
        let (code, error) = app
            .gql_error(
                &t.host,
                Some(&admin),
                "{ timeEntries(first: 1) { edges { node { id noSuchField } } } }",
                json!({}),
            )
            .await;
        assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
        assert!(
            error["message"].as_str().unwrap().contains("noSuchField"),
            "{error}"
        );
    }
    assert_eq!(revalidated(), before + 2, "none of those skipped validation");
}
