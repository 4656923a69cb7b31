//! Users, login, tokens, settings and the GraphQL endpoint's rules, against PostgreSQL.

use crate::common::{TestApp, assert_error, assert_error_for, eventually};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::json;

const CREATE_USER: &str = "mutation($i: CreateUserInput!) { createUser(input: $i) { id email role } }";
const UPDATE_SETTINGS: &str =
    "mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) { timeZone overridden } }";
const SETTINGS: &str = "{ tenantSettings { timeZone timecaptureIntervalMinutes billableHoursInWorkingDay workWeek currency defaultTaxRate invoiceDueDays invoiceNumberFormat leaveYearStartMonth siteUrl defaultFromEmail overridden } }";

#[tokio::test]
async fn login_ignores_email_case_and_refuses_wrong_credentials_alike() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let token = app
        .login(&t.host, &t.admin_email.to_uppercase(), &t.admin_password)
        .await;
    let me = app
        .gql(&t.host, Some(&token), "{ me { email role name } }", json!({}))
        .await;
    assert_eq!(
        me["me"]["email"],
        t.admin_email.as_str(),
        "the casing typed at creation is kept"
    );
    assert_eq!(me["me"]["role"], "ADMIN");

    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    let (code_wrong, wrong) = app
        .gql_error(
            &t.host,
            None,
            login,
            json!({ "e": t.admin_email, "p": "not-the-password" }),
        )
        .await;
    let (code_unknown, unknown) = app
        .gql_error(
            &t.host,
            None,
            login,
            json!({ "e": "nobody@acme.example", "p": "not-the-password" }),
        )
        .await;
    assert_eq!(code_wrong, "UNAUTHENTICATED");
    assert_eq!(code_unknown, "UNAUTHENTICATED");
    assert_eq!(
        wrong["message"], unknown["message"],
        "an unknown email must not be told apart"
    );

    let (code, _) = app.gql_error(&t.host, None, "{ me { email } }", json!({})).await;
    assert_eq!(code, "UNAUTHENTICATED");
    let (code, _) = app
        .gql_error(&t.host, Some("not-a-token"), "{ me { email } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn emails_are_unique_ignoring_case() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let input = |email: &str| json!({ "i": { "email": email, "name": "Ann", "role": "MEMBER", "password": "long-enough-pw" } });
    app.gql(&t.host, Some(&admin), CREATE_USER, input("Ann@Acme.example"))
        .await;
    let (_, error) = app
        .gql_error(&t.host, Some(&admin), CREATE_USER, input("ann@ACME.EXAMPLE"))
        .await;
    assert_error(&error, "CONFLICT", Some("input.email"));
    assert!(
        !error["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("insert"),
        "no SQL in errors"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.users WHERE lower(email) = 'ann@acme.example'")
            .await,
        1
    );

    // The same email is free in another tenant.
    let other = app.create_tenant("other").await;
    let other_admin = app.login_admin(&other).await;
    app.gql(
        &other.host,
        Some(&other_admin),
        CREATE_USER,
        input("ann@acme.example"),
    )
    .await;

    // Bad input is refused with its field, and nothing is written.
    let bad = json!({ "i": { "email": "not-an-email", "role": "MEMBER", "password": "long-enough-pw" } });
    let (_, error) = app.gql_error(&t.host, Some(&admin), CREATE_USER, bad).await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.email"));
    let short = json!({ "i": { "email": "bo@acme.example", "role": "MEMBER", "password": "short" } });
    let (_, error) = app.gql_error(&t.host, Some(&admin), CREATE_USER, short).await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.password"));
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.users").await, 2);
}

#[tokio::test]
async fn only_admins_manage_users_and_settings() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "member@acme.example", "MEMBER").await;
    let manager = app
        .create_user(&t, &admin, "manager@acme.example", "MANAGER")
        .await;

    let input = json!({ "i": { "email": "x@acme.example", "role": "ADMIN", "password": "long-enough-pw" } });
    for token in [&member, &manager] {
        let (code, _) = app
            .gql_error(&t.host, Some(token), CREATE_USER, input.clone())
            .await;
        assert_eq!(code, "FORBIDDEN");
        let (code, _) = app
            .gql_error(
                &t.host,
                Some(token),
                UPDATE_SETTINGS,
                json!({ "i": { "timeZone": "Europe/Paris" } }),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
    }
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            "{ users { edges { node { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let listed = app
        .gql(
            &t.host,
            Some(&manager),
            "{ users { edges { node { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["users"]["edges"].as_array().unwrap().len(), 3);

    // Nothing changed.
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.users").await, 3);
    let settings = app.gql(&t.host, Some(&member), SETTINGS, json!({})).await;
    assert_eq!(settings["tenantSettings"]["timeZone"], "UTC");
    assert_eq!(settings["tenantSettings"]["overridden"], json!([]));

    // A deactivated user is locked out at once, token and all, on every server.
    let other_server = app.second_server();
    let member_id = other_server
        .gql(&t.host, Some(&member), "{ me { id } }", json!({}))
        .await["me"]["id"]
        .clone();
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { updateUser(id: $id, input: {active: false}) { active } }",
        json!({ "id": member_id }),
    )
    .await;
    let (code, _) = app
        .gql_error(&t.host, Some(&member), "{ me { id } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");

    // An admin cannot demote themselves.
    let admin_id = app.gql(&t.host, Some(&admin), "{ me { id } }", json!({})).await["me"]["id"].clone();
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { updateUser(id: $id, input: {role: MEMBER}) { role } }",
            json!({ "id": admin_id }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
}

#[tokio::test]
async fn tokens_of_one_tenant_are_refused_on_another() {
    let app = TestApp::new().await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;
    let a_jwt = app.login_admin(&a).await;
    let created = app
        .gql(
            &a.host,
            Some(&a_jwt),
            "mutation { createApiToken(name: \"reports\") { secret apiToken { id prefix } } }",
            json!({}),
        )
        .await;
    let a_api = created["createApiToken"]["secret"].as_str().unwrap().to_owned();
    assert!(a_api.starts_with(created["createApiToken"]["apiToken"]["prefix"].as_str().unwrap()));

    // Both kinds work at home; users have the same id (1) in both tenants.
    for token in [&a_jwt, &a_api] {
        let me = app.gql(&a.host, Some(token), "{ me { email } }", json!({})).await;
        assert_eq!(me["me"]["email"], a.admin_email.as_str());
        let (code, _) = app
            .gql_error(&b.host, Some(token), "{ me { email } }", json!({}))
            .await;
        assert_eq!(code, "UNAUTHENTICATED");
        let (code, _) = app
            .gql_error(&b.host, Some(token), "{ tenantSettings { timeZone } }", json!({}))
            .await;
        assert_eq!(code, "UNAUTHENTICATED");
    }
}

/// Documents are parsed once and kept by their text, across tenants: every later request
/// with the same text must still answer as its own (its operation, its variables, its
/// tenant), and a text that does not parse must keep failing.
#[tokio::test]
async fn a_document_kept_parsed_answers_each_request_as_its_own() {
    let app = TestApp::new().await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;
    let a_jwt = app.login_admin(&a).await;
    let b_jwt = app.login_admin(&b).await;
    let document = "query Me { me { email } } \
                    mutation Mint($name: String!) { createApiToken(name: $name) { apiToken { name } } }";
    let send = |host: &str, token: &str, operation: &str, name: &str| {
        let body = json!({ "query": document, "operationName": operation, "variables": { "name": name } })
            .to_string();
        Request::post("/graphql")
            .header("host", host)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap()
    };
    for round in 0..2 {
        // The same text picks its operation each time: a query, then a mutation that
        // writes (so it ran read-write), with this request's variables.
        let (_, body) = app.send(send(&a.host, &a_jwt, "Me", "")).await;
        assert_eq!(body["data"]["me"]["email"], a.admin_email.as_str(), "{body}");
        let name = format!("token {round}");
        let (_, body) = app.send(send(&a.host, &a_jwt, "Mint", &name)).await;
        assert_eq!(
            body["data"]["createApiToken"]["apiToken"]["name"],
            name.as_str(),
            "{body}"
        );
        // Another tenant, same text: its own user.
        let (_, body) = app.send(send(&b.host, &b_jwt, "Me", "")).await;
        assert_eq!(body["data"]["me"]["email"], b.admin_email.as_str(), "{body}");
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM alpha.api_tokens").await, 2);
    assert_eq!(app.count("SELECT count(*) AS n FROM beta.api_tokens").await, 0);
    // Over GET (`operationName` in the URL, as GraphQL over HTTP has it) the query runs,
    // and the mutation is still refused once its text is known.
    let get = Request::get(format!("/graphql?query={}&operationName=Me", urlencode(document)))
        .header("host", &b.host)
        .header("authorization", format!("Bearer {b_jwt}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = app.send(get).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["me"]["email"], b.admin_email.as_str(), "{body}");
    let get = Request::get(format!(
        "/graphql?query={}&operationName=Mint",
        urlencode(document)
    ))
    .header("host", &a.host)
    .header("authorization", format!("Bearer {a_jwt}"))
    .body(Body::empty())
    .unwrap();
    let (status, body) = app.send(get).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    // A text that does not parse fails every time, and nothing is written.
    for _ in 0..2 {
        let (code, error) = app
            .gql_error(&a.host, Some(&a_jwt), "{ me { email }", json!({}))
            .await;
        assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{error}");
    }
}

#[tokio::test]
async fn api_tokens_are_stored_hashed_and_revocable() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let created = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation { createApiToken(name: \"import script\") { secret apiToken { id name revokedAt } } }",
            json!({}),
        )
        .await;
    let secret = created["createApiToken"]["secret"].as_str().unwrap().to_owned();
    let id = created["createApiToken"]["apiToken"]["id"].clone();

    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Text)]
        stored: String,
    }
    let mut conn = app.raw_conn().await;
    let rows: Vec<Stored> = diesel::sql_query(
        "SELECT encode(token_hash, 'escape') || token_prefix || name AS stored FROM acme.api_tokens",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].stored.contains(&secret),
        "the secret itself is never stored"
    );

    let listed = app
        .gql(
            &t.host,
            Some(&secret),
            "{ apiTokens { id name } me { email } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["apiTokens"][0]["id"], id);
    assert_eq!(listed["me"]["email"], t.admin_email.as_str());

    let revoked = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }",
            json!({ "id": id }),
        )
        .await;
    assert!(revoked["revokeApiToken"]["revokedAt"].is_string());
    let (code, _) = app
        .gql_error(&t.host, Some(&secret), "{ me { email } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");

    // Someone else's token cannot be revoked by a member.
    let member = app.create_user(&t, &admin, "m@acme.example", "MEMBER").await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            "mutation($id: ID!) { revokeApiToken(id: $id) { revokedAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}

#[tokio::test]
async fn settings_have_defaults_validate_changes_and_derive_site_url() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;

    let s = app.gql(&t.host, Some(&admin), SETTINGS, json!({})).await["tenantSettings"].clone();
    assert_eq!(s["timeZone"], "UTC");
    assert_eq!(s["timecaptureIntervalMinutes"], 15);
    assert_eq!(s["billableHoursInWorkingDay"], "8");
    assert_eq!(
        s["workWeek"],
        json!(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"])
    );
    assert_eq!(s["siteUrl"], format!("https://{}", t.host));
    assert_eq!(s["defaultFromEmail"], format!("no-reply@{}", t.host));
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.settings").await,
        0,
        "defaults are not stored"
    );

    let invalid = [
        (json!({ "timeZone": "Mars/Olympus_Mons" }), "input.timeZone"),
        (
            json!({ "timecaptureIntervalMinutes": 7 }),
            "input.timecaptureIntervalMinutes",
        ),
        (
            json!({ "timecaptureIntervalMinutes": 0 }),
            "input.timecaptureIntervalMinutes",
        ),
        (
            json!({ "timecaptureIntervalMinutes": 90 }),
            "input.timecaptureIntervalMinutes",
        ),
        (
            json!({ "billableHoursInWorkingDay": "0" }),
            "input.billableHoursInWorkingDay",
        ),
        (
            json!({ "billableHoursInWorkingDay": "24.5" }),
            "input.billableHoursInWorkingDay",
        ),
        (json!({ "workWeek": [] }), "input.workWeek"),
        (json!({ "currency": "XYZ" }), "input.currency"),
        (json!({ "defaultTaxRate": "-1" }), "input.defaultTaxRate"),
        (
            json!({ "invoiceNumberFormat": "INV-{YYYY}" }),
            "input.invoiceNumberFormat",
        ),
        (json!({ "leaveYearStartMonth": 13 }), "input.leaveYearStartMonth"),
        // A valid field beside an invalid one: neither is stored.
        (
            json!({ "currency": "EUR", "timecaptureIntervalMinutes": 7 }),
            "input.timecaptureIntervalMinutes",
        ),
    ];
    for (input, field) in invalid {
        let (_, error) = app
            .gql_error(&t.host, Some(&admin), UPDATE_SETTINGS, json!({ "i": input }))
            .await;
        assert_error_for(&input, &error, "BAD_USER_INPUT", Some(field));
    }
    // Derived settings are not inputs at all.
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            UPDATE_SETTINGS,
            json!({ "i": { "siteUrl": "https://evil.example" } }),
        )
        .await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.settings").await, 0);

    let changed = app
        .gql(
            &t.host,
            Some(&admin),
            UPDATE_SETTINGS,
            json!({ "i": { "timeZone": "Asia/Jerusalem", "workWeek": ["THURSDAY", "SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY"], "billableHoursInWorkingDay": "7.50", "timecaptureIntervalMinutes": 6 } }),
        )
        .await;
    assert_eq!(changed["updateTenantSettings"]["timeZone"], "Asia/Jerusalem");
    let s = app.gql(&t.host, Some(&admin), SETTINGS, json!({})).await["tenantSettings"].clone();
    assert_eq!(
        s["workWeek"],
        json!(["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "SUNDAY"])
    );
    assert_eq!(s["billableHoursInWorkingDay"], "7.5");
    assert_eq!(s["timecaptureIntervalMinutes"], 6);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.settings").await,
        4,
        "only overrides are stored"
    );

    let reset = app
        .gql(
            &t.host,
            Some(&admin),
            "mutation { resetTenantSettings(keys: [TIME_ZONE]) { timeZone overridden } }",
            json!({}),
        )
        .await;
    assert_eq!(reset["resetTenantSettings"]["timeZone"], "UTC");
    assert_eq!(
        reset["resetTenantSettings"]["overridden"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn a_settings_change_reaches_every_server_and_is_read_back_at_once() {
    let app = TestApp::new().await;
    let other_server = app.second_server();
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let read = "{ tenantSettings { timeZone } }";

    // Both servers have cached the default.
    for server in [&app, &other_server] {
        assert_eq!(
            server.gql(&t.host, Some(&admin), read, json!({})).await["tenantSettings"]["timeZone"],
            "UTC"
        );
    }
    app.gql(
        &t.host,
        Some(&admin),
        UPDATE_SETTINGS,
        json!({ "i": { "timeZone": "Europe/Paris" } }),
    )
    .await;
    // The server that made the change reads it back at once...
    assert_eq!(
        app.gql(&t.host, Some(&admin), read, json!({})).await["tenantSettings"]["timeZone"],
        "Europe/Paris"
    );
    // ...and the other drops its copy when the change notice arrives.
    eventually(|| async {
        other_server.post(&t.host, Some(&admin), read, json!({})).await.1["data"]["tenantSettings"]["timeZone"] == "Europe/Paris"
    })
    .await;

    // A change that fails leaves every cache as it was.
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            UPDATE_SETTINGS,
            json!({ "i": { "timeZone": "Nowhere/Land" } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    for server in [&app, &other_server] {
        assert_eq!(
            server.gql(&t.host, Some(&admin), read, json!({})).await["tenantSettings"]["timeZone"],
            "Europe/Paris"
        );
    }
}

#[tokio::test]
async fn users_page_as_a_relay_connection_and_resolve_as_nodes() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    for i in 0..4 {
        app.gql(
            &t.host,
            Some(&admin),
            CREATE_USER,
            json!({ "i": { "email": format!("user{i}@acme.example"), "role": "MEMBER", "password": "long-enough-pw" } }),
        )
        .await;
    }
    let page = "query($after: String) { users(first: 2, after: $after) { edges { cursor node { id email } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let data = app
            .gql(&t.host, Some(&admin), page, json!({ "after": after }))
            .await;
        for edge in data["users"]["edges"].as_array().unwrap() {
            seen.push(edge["node"]["email"].as_str().unwrap().to_owned());
        }
        if !data["users"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = data["users"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], t.admin_email);
    let filtered = app
        .gql(
            &t.host,
            Some(&admin),
            "{ users(filter: {search: \"USER2\"}) { edges { node { id email } } } }",
            json!({}),
        )
        .await;
    let node = &filtered["users"]["edges"][0]["node"];
    assert_eq!(node["email"], "user2@acme.example");

    let fetched = app
        .gql(
            &t.host,
            Some(&admin),
            "query($id: ID!) { node(id: $id) { id ... on User { email } } }",
            json!({ "id": node["id"] }),
        )
        .await;
    assert_eq!(fetched["node"]["email"], "user2@acme.example");
    let (_, error) = app
        .gql_error(&t.host, Some(&admin), "{ node(id: \"%%%\") { id } }", json!({}))
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("id"));
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "{ users(first: 1000) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_endpoint_enforces_http_rules_and_limits() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;

    // GET runs queries, never mutations.
    let get = |query: &str| {
        Request::get(format!("/graphql?query={}", urlencode(query)))
            .header("host", &t.host)
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = app.send(get("{ me { email } }")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["me"]["email"], t.admin_email.as_str());
    let (status, body) = app
        .send(get("mutation { createApiToken(name: \"x\") { secret } }"))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.api_tokens").await, 0);

    // Too deep (the limit is 12 levels).
    let too_deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }";
    let (code, error) = app.gql_error(&t.host, Some(&admin), too_deep, json!({})).await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{error}");
    assert!(
        error["message"].as_str().unwrap().to_lowercase().contains("deep"),
        "{error}"
    );

    // Too complex (the limit is 2000): many aliased fields, each shallow.
    let wide = format!(
        "{{ {} }}",
        (0..700)
            .map(|i| format!("a{i}: me {{ email name }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (code, error) = app.gql_error(&t.host, Some(&admin), &wide, json!({})).await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex"),
        "{error}"
    );

    // Every response carries a request id: the caller's, or a new one.
    let traced = |id: Option<&str>| {
        let mut request = Request::get("/healthz");
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.body(Body::empty()).unwrap()
    };
    let response = tower::ServiceExt::oneshot(app.router.clone(), traced(Some("req-42")))
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let response = tower::ServiceExt::oneshot(app.router.clone(), traced(None))
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"].len(), 36, "a generated UUID");

    // Too big a body.
    let huge = format!("{{ me {{ email }} }} # {}", "x".repeat(2 * 1024 * 1024));
    let (status, _) = app.post(&t.host, Some(&admin), &huge, json!({})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Sent without a length (chunked), it is refused all the same.
    let unsized_body = Request::post("/graphql")
        .header("host", &t.host)
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(
            (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])),
        )))
        .unwrap();
    let (status, _) = app.send(unsized_body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Health.
    let (status, _) = app
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `me` is answered from the row read when the credential was checked: no statement of its
/// own once the credential is known. A change to the user is seen at once on the server
/// that made it and on another as soon as the change notice arrives.
#[tokio::test]
async fn me_is_answered_from_the_checked_credential_and_follows_changes_on_every_server() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let me = "{ me { id email name role } }";
    let (first, checked) = app.execute_counted(&t, &member, me).await;
    assert!(
        checked >= 1,
        "the first request reads the user with its credential"
    );
    let (again, statements) = app.execute_counted(&t, &member, me).await;
    assert_eq!(statements, 0, "later requests find it kept");
    assert_eq!(again, first);
    assert_eq!(again["me"]["email"], "dev@acme.example");
    assert_eq!(again["me"]["role"], "MEMBER");

    let other_server = app.second_server();
    assert_eq!(
        other_server.gql(&t.host, Some(&member), me, json!({})).await["me"]["role"],
        "MEMBER"
    );
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { updateUser(id: $id, input: {name: \"Dee Veloper\", role: MANAGER}) { name } }",
        json!({ "id": first["me"]["id"] }),
    )
    .await;
    let renamed = app.gql(&t.host, Some(&member), me, json!({})).await;
    assert_eq!(renamed["me"]["name"], "Dee Veloper");
    assert_eq!(renamed["me"]["role"], "MANAGER");
    eventually(|| async {
        let seen = other_server.post(&t.host, Some(&member), me, json!({})).await.1;
        seen["data"]["me"]["name"] == "Dee Veloper" && seen["data"]["me"]["role"] == "MANAGER"
    })
    .await;
}
