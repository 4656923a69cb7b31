//! More than one process on one database, as operators deploy it: two `serve --no-worker`
//! processes and `crowdminder worker` processes beside them (through the pooler when the
//! suite runs behind one). What one process changes, the other serves within a second; a
//! job is run by one worker only.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::peers::TestMailbox;
use crate::common::{TestApp, crowdminder_process, serve_process};

/// A `serve` process and a client of its own.
struct Server {
    _process: tokio::process::Child,
    port: u16,
    client: reqwest::Client,
}

impl Server {
    async fn start(app: &TestApp) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (process, port) = serve_process(app, &[]).await;
        Self {
            _process: process,
            port,
            client: reqwest::Client::new(),
        }
    }

    /// The whole answer to one GraphQL request.
    async fn post(&self, host: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("http://127.0.0.1:{}/graphql", self.port))
            .header("host", host)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// The data of a request that must succeed.
    async fn gql(&self, host: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.post(host, token, query, variables).await;
        assert!(body["errors"].is_null(), "{body}");
        body["data"].clone()
    }

    /// The error code a request is refused with (`None` when it is answered).
    async fn refusal(&self, host: &str, token: Option<&str>, query: &str) -> Option<String> {
        let body = self.post(host, token, query, json!({})).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    }
}

/// Waits for `check` to hold, failing when it takes a second or more; counts from the call,
/// made once the change is committed.
async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: not seen within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The operator's command, straight to PostgreSQL as operators run it; must succeed.
async fn operator(app: &TestApp, args: &[&str]) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_crowdminder"))
        .args(args)
        .env("DATABASE_URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const ME: &str = "{ me { email } }";
const TIME_ZONE: &str = "{ tenantSettings { timeZone } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_server_process_changes_the_other_serves_within_a_second() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let other = app.create_tenant("globex").await;
    let (a, b) = tokio::join!(Server::start(&app), Server::start(&app));
    let admin = app.login_admin(&t).await;
    let other_admin = app.login_admin(&other).await;

    // Both have the defaults cached.
    for server in [&a, &b] {
        let data = server.gql(&t.host, Some(&admin), TIME_ZONE, json!({})).await;
        assert_eq!(data["tenantSettings"]["timeZone"], "UTC");
    }

    // A setting changed through one.
    a.gql(
        &t.host,
        Some(&admin),
        "mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) { timeZone } }",
        json!({ "i": { "timeZone": "Europe/Paris" } }),
    )
    .await;
    within_a_second("the settings change", || async {
        b.gql(&t.host, Some(&admin), TIME_ZONE, json!({})).await["tenantSettings"]["timeZone"]
            == "Europe/Paris"
    })
    .await;
    // ...and only that tenant's.
    let data = b.gql(&other.host, Some(&other_admin), TIME_ZONE, json!({})).await;
    assert_eq!(data["tenantSettings"]["timeZone"], "UTC");

    // A user made through one signs in on the other; deactivated through one, their
    // token is refused by the other.
    let created = a
        .gql(
            &t.host,
            Some(&admin),
            "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
            json!({ "i": { "email": "wile@acme.example", "role": "MEMBER", "password": "long-enough-pw" } }),
        )
        .await;
    let member_id = created["createUser"]["id"].clone();
    let login = b
        .gql(
            &t.host,
            None,
            "mutation { login(email: \"wile@acme.example\", password: \"long-enough-pw\") { token } }",
            json!({}),
        )
        .await;
    let member = login["login"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        b.gql(&t.host, Some(&member), ME, json!({})).await["me"]["email"],
        "wile@acme.example"
    );
    a.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { updateUser(id: $id, input: {active: false}) { active } }",
        json!({ "id": member_id }),
    )
    .await;
    within_a_second("the deactivation", || async {
        b.refusal(&t.host, Some(&member), ME).await.as_deref() == Some("UNAUTHENTICATED")
    })
    .await;

    // An API token revoked through one.
    let made = a
        .gql(
            &t.host,
            Some(&admin),
            "mutation { createApiToken(name: \"reports\") { secret apiToken { id } } }",
            json!({}),
        )
        .await;
    let secret = made["createApiToken"]["secret"].as_str().unwrap().to_owned();
    let token_id = made["createApiToken"]["apiToken"]["id"].clone();
    assert_eq!(
        b.gql(&t.host, Some(&secret), ME, json!({})).await["me"]["email"],
        t.admin_email.as_str()
    );
    a.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }",
        json!({ "id": token_id }),
    )
    .await;
    within_a_second("the revocation", || async {
        b.refusal(&t.host, Some(&secret), ME).await.as_deref() == Some("UNAUTHENTICATED")
    })
    .await;

    // The operator's commands, on both at once: a suspension, a resumption, a host added
    // and taken away.
    operator(&app, &["tenants", "suspend", "acme"]).await;
    for server in [&a, &b] {
        within_a_second("the suspension", || async {
            server.refusal(&t.host, Some(&admin), ME).await.as_deref() == Some("TENANT_SUSPENDED")
        })
        .await;
        assert_eq!(server.refusal(&other.host, Some(&other_admin), ME).await, None);
    }
    operator(&app, &["tenants", "resume", "acme"]).await;
    for server in [&a, &b] {
        within_a_second("the resumption", || async {
            server.refusal(&t.host, Some(&admin), ME).await.is_none()
        })
        .await;
    }
    let extra = "books.acme.example";
    for server in [&a, &b] {
        assert_eq!(
            server.refusal(extra, Some(&admin), ME).await.as_deref(),
            Some("TENANT_NOT_FOUND")
        );
    }
    operator(&app, &["tenants", "add-host", "acme", extra]).await;
    for server in [&a, &b] {
        within_a_second("the new host", || async {
            server.refusal(extra, Some(&admin), ME).await.is_none()
        })
        .await;
    }
    operator(&app, &["tenants", "remove-host", "acme", extra]).await;
    for server in [&a, &b] {
        within_a_second("the removed host", || async {
            server.refusal(extra, Some(&admin), ME).await.as_deref() == Some("TENANT_NOT_FOUND")
        })
        .await;
    }
}

/// Users invited through two servers while two worker processes share the queue: every
/// invitation is delivered once, none twice, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_send_each_email_once() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let mailbox = TestMailbox::new();
    let smtp = mailbox.smtp_url(&format!("pw-{}", mailbox.login));
    let worker = || {
        crowdminder_process(
            &app,
            &["worker"],
            &[("SMTP_URL", smtp.as_str()), ("WORKER_CONCURRENCY", "3")],
        )
    };
    let _workers = [worker(), worker()];
    let (a, b) = tokio::join!(Server::start(&app), Server::start(&app));
    let admin = app.login_admin(&t).await;

    const USERS: usize = 24;
    let invite = |i: usize| {
        let server = if i.is_multiple_of(2) { &a } else { &b };
        let admin = admin.clone();
        let host = t.host.clone();
        async move {
            server
                .gql(
                    &host,
                    Some(&admin),
                    "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                    json!({ "i": { "email": format!("user{i}@acme.example"), "role": "MEMBER", "password": "long-enough-pw" } }),
                )
                .await
        }
    };
    futures_util::future::join_all((0..USERS).map(invite)).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    // A job is deleted once it has run.
    while app.count("SELECT count(*) AS n FROM public.jobs").await > 0 {
        assert!(Instant::now() < deadline, "the workers did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A second worker sending a job again would do so within its poll; give it the time.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut recipients: Vec<String> = mailbox
        .messages()
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("To: "))
                .expect("a To header")
                .rsplit(['<', '>'])
                .find(|part| part.contains('@'))
                .unwrap()
                .to_owned()
        })
        .collect();
    recipients.sort();
    let mut expected: Vec<String> = (0..USERS).map(|i| format!("user{i}@acme.example")).collect();
    expected.sort();
    assert_eq!(recipients, expected);
}
