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

    let storm = (0..200).map(|_| {
        let client = client.clone();
        let (host, email, password) = (t.host.clone(), t.admin_email.clone(), t.admin_password.clone());
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

/// Made-up hosts, each a look-up the server could be made to remember, and 1,000 different
/// `Host` headers of 300 KB: every one is `TENANT_NOT_FOUND`, and the server's memory stays where it was.
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
    let huge = "a".repeat(300 * 1024);
    futures_util::stream::iter(0..1_000)
        .for_each_concurrent(8, |n| refused(format!("{n}-{huge}.example.test")))
        .await;
    let after = memory(pid, "VmRSS");
    eprintln!(
        "5,000 unknown hosts and 1,000 Host headers of 300 KB: resident {} MB before, {} MB after",
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
