//! Tenant isolation, tenant resolution and migrations across schemas, against PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestApp, TestTenant, assert_error, eventually, pooler_url};
use crowdminder::tenancy::DbPool;
use crowdminder::tenancy::migrations::{self, TENANT_MIGRATIONS};
use crowdminder::tenancy::registry::{self, TenantStatus};
use crowdminder::tenancy::{Access, SchemaName, TenantDb};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;

const ZONES: [&str; 24] = [
    "Africa/Johannesburg",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "Africa/Nairobi",
    "Asia/Singapore",
    "Europe/Paris",
    "Asia/Dubai",
    "America/Toronto",
    "Europe/Madrid",
    "Asia/Seoul",
    "Africa/Lagos",
    "Europe/Oslo",
    "Asia/Jakarta",
    "America/Mexico_City",
    "Pacific/Honolulu",
];
const CURRENCIES: [&str; 24] = [
    "ZAR", "GBP", "EUR", "USD", "CAD", "AUD", "NZD", "JPY", "INR", "CHF", "SEK", "NOK", "DKK", "KES", "SGD",
    "AED", "BRL", "MXN", "KRW", "NGN", "PLN", "IDR", "CZK", "HUF",
];

const SETTINGS_QUERY: &str = "{ me { email } tenantSettings { timeZone billableHoursInWorkingDay currency invoiceDueDays timecaptureIntervalMinutes } }";

struct Configured {
    tenant: TestTenant,
    token: String,
    zone: &'static str,
    hours: String,
    currency: &'static str,
}

/// Tenants whose settings all differ, each with an admin token.
async fn configured_tenants(app: &TestApp, count: usize) -> Vec<Arc<Configured>> {
    let mut out = Vec::new();
    for i in 0..count {
        let tenant = app.create_tenant(&format!("tenant_{i:02}")).await;
        let token = app.login_admin(&tenant).await;
        let hours = format!("{}", 4.0 + i as f64 * 0.25);
        app.gql(
            &tenant.host,
            Some(&token),
            "mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) { timeZone } }",
            json!({ "i": { "timeZone": ZONES[i], "billableHoursInWorkingDay": hours, "currency": CURRENCIES[i] } }),
        )
        .await;
        out.push(Arc::new(Configured {
            tenant,
            token,
            zone: ZONES[i],
            hours,
            currency: CURRENCIES[i],
        }));
    }
    out
}

fn assert_own_settings(t: &Configured, settings: &serde_json::Value) {
    assert_eq!(settings["timeZone"], t.zone, "{} got {settings}", t.tenant.schema);
    assert_eq!(
        settings["billableHoursInWorkingDay"],
        t.hours.as_str(),
        "{} got {settings}",
        t.tenant.schema
    );
    assert_eq!(
        settings["currency"], t.currency,
        "{} got {settings}",
        t.tenant.schema
    );
}

#[derive(QueryableByName)]
struct SearchPath {
    #[diesel(sql_type = Text)]
    search_path: String,
}

async fn search_path(conn: &mut AsyncPgConnection) -> String {
    let row: SearchPath = diesel::sql_query("SELECT current_setting('search_path') AS search_path")
        .get_result(conn)
        .await
        .unwrap();
    row.search_path
}

/// Every idle connection in the pool must come back with no tenant on its path: the empty
/// path it was made with, or behind a pooler (where a new connection sets nothing on its
/// session) the server's default.
async fn assert_pool_clean(pool: &DbPool) {
    let expected = if pooler_url().is_some() {
        "\"$user\", public"
    } else {
        ""
    };
    let mut held = Vec::new();
    for _ in 0..pool.max_size() {
        // As the pool holds it, outside any unit.
        let mut conn = pool.checkout().await.unwrap();
        // Read in a transaction, which behind a pooler keeps the statement on one server
        // connection; the session's path is what it reads.
        let path = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| Ok(search_path(conn).await))
            .await
            .unwrap();
        assert_eq!(path, expected);
        held.push(conn);
    }
}

/// Many concurrent requests over 24 tenants share a pool of `pool_size`: reads, failing
/// mutations and half-failing mutation documents interleave, and every answer is checked.
async fn isolation_under_load(pool_size: usize, rounds: usize) {
    let app = Arc::new(TestApp::with_pool_size(pool_size).await);
    let tenants = configured_tenants(&app, 24).await;
    assert!(rounds >= 4, "every tenant should see every kind of request");
    let mut tasks = Vec::new();
    for k in 0..tenants.len() * rounds {
        let app = Arc::clone(&app);
        let t = Arc::clone(&tenants[k % tenants.len()]);
        let due_days = (k % tenants.len()) as i64 + 1;
        tasks.push(tokio::spawn(async move {
            match (k / 24) % 4 {
                0 | 1 => {
                    let data = app.gql(&t.tenant.host, Some(&t.token), SETTINGS_QUERY, json!({})).await;
                    assert_own_settings(&t, &data["tenantSettings"]);
                    assert_eq!(data["me"]["email"], t.tenant.admin_email.as_str());
                }
                2 => {
                    let (_, error) = app
                        .gql_error(
                            &t.tenant.host,
                            Some(&t.token),
                            "mutation { updateTenantSettings(input: {timeZone: \"Nowhere/Land\", currency: \"EUR\"}) { timeZone } }",
                            json!({}),
                        )
                        .await;
                    assert_error(&error, "BAD_USER_INPUT", Some("input.timeZone"));
                }
                _ => {
                    let query = format!(
                        "mutation {{ a: updateTenantSettings(input: {{invoiceDueDays: {due_days}}}) {{ timeZone billableHoursInWorkingDay currency }} \
                         b: updateTenantSettings(input: {{currency: \"EUR\", timecaptureIntervalMinutes: 7}}) {{ timeZone }} }}"
                    );
                    let (_, body) = app.post(&t.tenant.host, Some(&t.token), &query, json!({})).await;
                    assert_own_settings(&t, &body["data"]["a"]);
                    assert!(body["data"]["b"].is_null(), "{body}");
                    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // What each tenant ends with: its own values, the successful half of the mixed documents,
    // and nothing from the failed mutations.
    for (i, t) in tenants.iter().enumerate() {
        let data = app
            .gql(&t.tenant.host, Some(&t.token), SETTINGS_QUERY, json!({}))
            .await;
        assert_own_settings(t, &data["tenantSettings"]);
        assert_eq!(data["tenantSettings"]["invoiceDueDays"], i as i64 + 1);
        assert_eq!(data["tenantSettings"]["timecaptureIntervalMinutes"], 15);
    }
    assert_pool_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_stay_isolated_under_load_through_a_small_pool() {
    isolation_under_load(2, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_stay_isolated_through_a_pool_of_one() {
    isolation_under_load(1, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cancelled_mid_query_leaks_nothing() {
    let app = TestApp::with_pool_size(1).await;
    let tenants = configured_tenants(&app, 2).await;
    let (a, b) = (&tenants[0], &tenants[1]);

    // Hold a lock that makes A's settings read wait, then give up on A's request mid-query.
    let mut locker = app.raw_conn().await;
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE \"{}\".settings IN ACCESS EXCLUSIVE MODE",
            a.tenant.schema
        ))
        .await
        .unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        app.post(&a.tenant.host, Some(&a.token), SETTINGS_QUERY, json!({})),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the request should still have been waiting on the lock"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();

    // The pool's only slot serves B next, with B's path and B's data.
    let data = app
        .gql(&b.tenant.host, Some(&b.token), SETTINGS_QUERY, json!({}))
        .await;
    assert_own_settings(b, &data["tenantSettings"]);
    let data = app
        .gql(&a.tenant.host, Some(&a.token), SETTINGS_QUERY, json!({}))
        .await;
    assert_own_settings(a, &data["tenantSettings"]);
    assert_pool_clean(&app.pool).await;
}

#[tokio::test]
async fn a_rolled_back_or_failed_unit_leaves_no_path_and_no_data() {
    let app = TestApp::with_pool_size(1).await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;

    // A unit writes, then rolls back.
    let unit = TenantDb::new(app.pool.clone(), Arc::new(a.tenant.clone()), Access::ReadWrite);
    {
        let mut conn = unit.conn().await.unwrap();
        assert_eq!(search_path(&mut conn).await, "\"alpha\"");
        conn.batch_execute("INSERT INTO settings (key, value) VALUES ('CURRENCY', '\"EUR\"')")
            .await
            .unwrap();
    }
    unit.rollback().await.unwrap();

    // A unit whose statement fails, then is dropped without being ended.
    let unit = TenantDb::new(app.pool.clone(), Arc::new(a.tenant.clone()), Access::ReadWrite);
    {
        let mut conn = unit.conn().await.unwrap();
        assert!(conn.batch_execute("SELECT * FROM no_such_table").await.is_err());
    }
    drop(unit);

    // A read-only unit cannot write at all.
    let unit = TenantDb::new(app.pool.clone(), Arc::new(a.tenant.clone()), Access::ReadOnly);
    {
        let mut conn = unit.conn().await.unwrap();
        assert!(conn.batch_execute("DELETE FROM settings").await.is_err());
    }
    drop(unit);

    // The next unit on the pool's one connection is B's, and sees only B.
    let unit = TenantDb::new(app.pool.clone(), Arc::new(b.tenant.clone()), Access::ReadOnly);
    {
        let mut conn = unit.conn().await.unwrap();
        assert_eq!(search_path(&mut conn).await, "\"beta\"");
    }
    unit.commit().await.unwrap();
    assert_pool_clean(&app.pool).await;

    let mut raw = app.raw_conn().await;
    let row: SearchPath = diesel::sql_query("SELECT count(*)::text AS search_path FROM alpha.settings")
        .get_result(&mut raw)
        .await
        .unwrap();
    assert_eq!(row.search_path, "0", "the rolled-back write must not exist");
}

#[tokio::test]
async fn without_a_tenant_no_tenant_table_resolves() {
    let app = TestApp::with_pool_size(1).await;
    app.create_tenant("gamma").await;
    // Shared work runs with no schema on its path.
    let shared = async || {
        app.pool
            .transaction(async |conn| {
                let path = search_path(conn).await;
                conn.batch_execute("SAVEPOINT probe").await?;
                let users = conn.batch_execute("SELECT * FROM users").await;
                conn.batch_execute("ROLLBACK TO SAVEPOINT probe").await?;
                Ok((path, users.is_ok()))
            })
            .await
            .unwrap()
    };
    assert_eq!(shared().await, (String::new(), false));
    // A path left on a session (no code of ours does this) does not reach shared work.
    let mut conn = app.pool.checkout().await.unwrap();
    conn.batch_execute("SET search_path = gamma; SELECT * FROM users")
        .await
        .unwrap();
    drop(conn);
    assert_eq!(shared().await, (String::new(), false));
}

#[tokio::test]
async fn hosts_resolve_ignoring_port_and_case_and_follow_registry_changes() {
    let app = TestApp::new().await;
    let t = app.create_tenant("delta").await;
    let token = app.login_admin(&t).await;
    let query = "{ me { email } }";

    let upper = format!("{}:8443", t.host.to_uppercase());
    let data = app.gql(&upper, Some(&token), query, json!({})).await;
    assert_eq!(data["me"]["email"], t.admin_email.as_str());

    let (code, error) = app
        .gql_error("nobody.test.localhost", Some(&token), query, json!({}))
        .await;
    assert_eq!(code, "TENANT_NOT_FOUND");
    assert!(error["message"].as_str().unwrap().contains("no tenant"));
    let (code, _) = app.gql_error("", None, query, json!({})).await;
    assert_eq!(code, "TENANT_NOT_FOUND");

    // A new host works once the registry says so (the cached "unknown" is dropped).
    let mut conn = app.raw_conn().await;
    registry::add_host(&mut conn, "delta", "Delta.Example.COM", false)
        .await
        .unwrap();
    eventually(|| async {
        app.post("delta.example.com", Some(&token), query, json!({}))
            .await
            .1["data"]["me"]["email"]
            == t.admin_email.as_str()
    })
    .await;

    registry::remove_host(&mut conn, "delta", "delta.example.com")
        .await
        .unwrap();
    eventually(|| async {
        app.post("delta.example.com", Some(&token), query, json!({}))
            .await
            .1["errors"][0]["extensions"]["code"]
            == "TENANT_NOT_FOUND"
    })
    .await;
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_until_resumed() {
    let app = TestApp::new().await;
    let t = app.create_tenant("epsilon").await;
    let other = app.create_tenant("zeta").await;
    let token = app.login_admin(&t).await;
    let other_token = app.login_admin(&other).await;
    let query = "{ me { email } }";
    let mut conn = app.raw_conn().await;

    registry::set_status(&mut conn, "epsilon", TenantStatus::Suspended)
        .await
        .unwrap();
    eventually(|| async {
        app.post(&t.host, Some(&token), query, json!({})).await.1["errors"][0]["extensions"]["code"]
            == "TENANT_SUSPENDED"
    })
    .await;
    let (code, _) = app
        .gql_error(
            &t.host,
            None,
            "mutation { login(email: \"x@y.z\", password: \"whatever\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "TENANT_SUSPENDED");
    // Other tenants are unaffected.
    app.gql(&other.host, Some(&other_token), query, json!({})).await;

    registry::set_status(&mut conn, "epsilon", TenantStatus::Active)
        .await
        .unwrap();
    eventually(|| async {
        app.post(&t.host, Some(&token), query, json!({})).await.1["data"]["me"]["email"]
            == t.admin_email.as_str()
    })
    .await;
}

/// Takes a tenant back to the state an older release left it in: later migrations undone.
async fn roll_back_to(conn: &mut AsyncPgConnection, schema: &str, keep: usize) {
    let mut sql = format!("BEGIN; SET LOCAL search_path = \"{schema}\";");
    for m in TENANT_MIGRATIONS[keep..].iter().rev() {
        sql.push_str(m.down.expect("tenant migrations have a down.sql"));
        sql.push_str(&format!(
            "DELETE FROM schema_migrations WHERE version = '{}';",
            m.version
        ));
    }
    sql.push_str("COMMIT;");
    conn.batch_execute(&sql).await.unwrap();
}

async fn applied(conn: &mut AsyncPgConnection, schema: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct V {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let rows: Vec<V> = diesel::sql_query(format!(
        "SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"
    ))
    .load(conn)
    .await
    .unwrap();
    rows.into_iter().map(|v| v.version).collect()
}

#[tokio::test]
async fn migrate_brings_tenants_at_different_versions_up_and_names_failures() {
    let app = TestApp::new().await;
    for schema in ["current", "one_behind", "far_behind", "broken"] {
        app.create_tenant(schema).await;
    }
    let mut conn = app.raw_conn().await;
    let all: Vec<String> = TENANT_MIGRATIONS.iter().map(|m| m.version.to_owned()).collect();
    roll_back_to(&mut conn, "one_behind", all.len() - 1).await;
    roll_back_to(&mut conn, "far_behind", 1).await;
    roll_back_to(&mut conn, "broken", all.len() - 1).await;
    // Something in the way of the last migration: it must fail for this tenant alone.
    let (put, take_away) = crate::common::obstruction("broken", TENANT_MIGRATIONS.last().unwrap().up);
    conn.batch_execute(&put).await.unwrap();
    assert_eq!(applied(&mut conn, "far_behind").await, all[..1]);

    let (_, outcomes) = migrations::migrate_all(&app.pool, 2, None, |_, _, _| {})
        .await
        .unwrap();
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.schema.as_str())
        .collect();
    assert_eq!(failed, ["broken"]);
    for schema in ["current", "one_behind", "far_behind"] {
        assert_eq!(applied(&mut conn, schema).await, all, "{schema}");
    }
    // The failed tenant is exactly as it was: nothing half-applied.
    assert_eq!(applied(&mut conn, "broken").await, all[..all.len() - 1]);

    conn.batch_execute(&take_away).await.unwrap();
    let (_, outcomes) = migrations::migrate_all(&app.pool, 2, None, |_, _, _| {})
        .await
        .unwrap();
    let changed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.result.as_ref().unwrap().is_empty())
        .map(|o| o.schema.as_str())
        .collect();
    assert_eq!(changed, ["broken"]);
    // Safe to re-run: nothing left to do anywhere.
    let (_, outcomes) = migrations::migrate_all(&app.pool, 2, None, |_, _, _| {})
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| o.result.as_ref().unwrap().is_empty()));

    // And the brought-up tenants work.
    let far = SchemaName::parse("far_behind").unwrap();
    let unit = TenantDb::new(
        app.pool.clone(),
        Arc::new(
            registry::find_by_schema(&mut conn, far.as_str())
                .await
                .unwrap()
                .unwrap(),
        ),
        Access::ReadOnly,
    );
    unit.conn()
        .await
        .unwrap()
        .batch_execute("SELECT key FROM settings")
        .await
        .unwrap();
    unit.commit().await.unwrap();
}

#[tokio::test]
async fn creating_a_tenant_is_all_or_nothing() {
    let app = TestApp::new().await;
    let t = app.create_tenant("first").await;
    let mut conn = app.raw_conn().await;
    // The host is taken: the registry row and the schema must not remain.
    let dup = registry::NewTenant::parse("second", "Second", &t.host).unwrap();
    let err = crowdminder::app::create_tenant(
        &mut conn,
        &dup,
        crowdminder::app::FirstAdmin {
            email: "a@second.example".into(),
            name: String::new(),
            password: crowdminder::config::Secret::new("long-enough-password"),
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            crowdminder::tenancy::provision::ProvisionError::Registry(
                registry::RegistryError::DuplicateHost(_)
            )
        ),
        "{err}"
    );
    assert!(
        registry::find_by_schema(&mut conn, "second")
            .await
            .unwrap()
            .is_none()
    );
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'second'")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n.n, 0);
}

/// The server closing the pool's connections (a restart, a failover, an operator's
/// `pg_terminate_backend`) costs no request: a connection found closed at checkout, or
/// failing its BEGIN, is thrown away and another taken.
#[tokio::test]
async fn connections_closed_by_the_server_are_replaced_without_a_failed_request() {
    // The tenant may take the whole pool (by default it would take half).
    let app = TestApp::with_database(2, crate::common::test_config(), |db| db.tenant_pool_share = 2).await;
    let t = app.create_tenant("kappa").await;
    let token = app.login_admin(&t).await;
    let query = "{ me { email } timeEntries(first: 5) { edges { node { minutes } } } }";
    for _ in 0..3 {
        // Two requests at once, so both of the pool's connections are in it.
        let (a, b) = tokio::join!(
            app.gql(&t.host, Some(&token), query, json!({})),
            app.gql(&t.host, Some(&token), query, json!({}))
        );
        for data in [a, b] {
            assert_eq!(data["me"]["email"], t.admin_email.as_str());
            assert_eq!(data["timeEntries"]["edges"], json!([]));
        }
        let closed = app
            .count(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                   AND backend_type = 'client backend'",
            )
            .await;
        assert!(closed >= 2, "the pool's connections were open: {closed}");
    }
}
