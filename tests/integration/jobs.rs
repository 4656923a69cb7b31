//! Background jobs and the email outbox, against PostgreSQL: workers in-process and as a
//! real process that is killed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{JWT_SECRET, TestApp, TestTenant, fast_config, temp_dir, worker};
use chrono::NaiveTime;
use crowdminder::jobs::registry::JobContext;
use crowdminder::jobs::schedule::{Every, Schedule};
use crowdminder::jobs::worker::Shutdown;
use crowdminder::jobs::{self, NewJob};
use crowdminder::mail::MailConfig;
use crowdminder::tenancy::registry::{self, TenantStatus};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;

/// What a probe job saw: the tenant it was enqueued for, the schema its unit ran in, and
/// the client names it read there.
#[derive(Debug, Clone)]
struct Seen {
    job: i64,
    tenant_id: i64,
    schema: String,
    clients: Vec<String>,
    attempt: i64,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A registry with the standard kinds and `probe`, which records what it sees.
fn registry_with_probe(log: &Log, pause: Duration) -> crowdminder::jobs::registry::Registry {
    let mut registry = crowdminder::app::jobs();
    let log = Arc::clone(log);
    registry.register("probe", move |ctx: JobContext| {
        let log = Arc::clone(&log);
        Box::pin(async move {
            let clients: Vec<String> = {
                let mut conn = ctx.db.conn().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
                crowdminder::db::schema::clients::table
                    .select(crowdminder::db::schema::clients::name)
                    .order(crowdminder::db::schema::clients::id)
                    .load(&mut *conn)
                    .await?
            };
            tokio::time::sleep(pause).await;
            log.lock().unwrap().push(Seen {
                job: ctx.job.id,
                tenant_id: ctx.job.tenant_id,
                schema: ctx.db.tenant().schema.as_str().to_owned(),
                clients,
                attempt: ctx.job.attempts,
            });
            Ok(())
        })
    });
    registry
}

async fn enqueue(app: &TestApp, job: NewJob) -> i64 {
    let mut conn = app.raw_conn().await;
    jobs::enqueue(&mut conn, job).await.unwrap()
}

async fn queue_len(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM public.jobs").await
}

/// Waits up to `limit` for `check`.
async fn until<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not done within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_job_exists_if_and_only_if_its_transaction_commits() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let tenant_id = t.tenant.id;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin).client("Globex").await;

    // Rolled back: never there, never run.
    let mut conn = app.raw_conn().await;
    let rolled_back = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            jobs::enqueue(conn, NewJob::new("probe", tenant_id, json!({"n": 1})))
                .await
                .unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    conn.transaction::<(), diesel::result::Error, _>(async |conn| {
        jobs::enqueue(conn, NewJob::new("probe", tenant_id, json!({"n": 2})))
            .await
            .unwrap();
        Ok(())
    })
    .await
    .unwrap();

    // Through the API: a created user's welcome email is queued with the user; a refused
    // creation (the same email in other casing) leaves no email behind.
    let admin = app.login_admin(&t).await;
    app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            "mutation { createUser(input: {email: \"DEV@acme.example\", role: MEMBER, password: \"a-good-long-password\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM public.jobs WHERE kind = 'send_email'")
            .await,
        1
    );
    assert_eq!(queue_len(&app).await, 2);

    let log: Log = Arc::default();
    let outbox = temp_dir("outbox");
    let (stop, rx) = Shutdown::new();
    let handle = worker(
        &app,
        registry_with_probe(&log, Duration::ZERO),
        fast_config(2),
        MailConfig::files(&outbox),
        3,
        Vec::new(),
    )
    .spawn(rx);
    until(Duration::from_secs(10), || async { queue_len(&app).await == 0 }).await;
    stop.trigger();
    handle.await.unwrap();
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "only the committed probe ran: {seen:?}");
    assert_eq!(seen[0].clients, vec!["Globex".to_owned()]);
    let emails: Vec<_> = std::fs::read_dir(&outbox).unwrap().collect();
    assert_eq!(emails.len(), 1);
    let _ = std::fs::remove_dir_all(&outbox);
}

#[tokio::test]
async fn two_workers_never_run_a_job_twice() {
    let app = TestApp::new().await;
    let mut tenants = Vec::new();
    for schema in ["t_one", "t_two", "t_three"] {
        tenants.push(app.create_tenant(schema).await);
    }
    let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let in_flight: Arc<Mutex<std::collections::HashSet<i64>>> = Arc::default();
    let overlaps = Arc::new(Mutex::new(0usize));
    let mut registry = crowdminder::app::jobs();
    {
        let (runs, in_flight, overlaps) = (runs.clone(), in_flight.clone(), overlaps.clone());
        registry.register("count", move |ctx: JobContext| {
            let (runs, in_flight, overlaps) = (runs.clone(), in_flight.clone(), overlaps.clone());
            Box::pin(async move {
                if !in_flight.lock().unwrap().insert(ctx.job.id) {
                    *overlaps.lock().unwrap() += 1;
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
                *runs.lock().unwrap().entry(ctx.job.id).or_default() += 1;
                in_flight.lock().unwrap().remove(&ctx.job.id);
                Ok(())
            })
        });
    }
    let mut ids = Vec::new();
    for i in 0..300 {
        let t = &tenants[i % tenants.len()];
        ids.push(enqueue(&app, NewJob::new("count", t.tenant.id, json!({ "i": i }))).await);
    }
    let mut handles = Vec::new();
    let (stop, rx) = Shutdown::new();
    for _ in 0..2 {
        let w = worker(
            &app,
            registry.clone(),
            fast_config(4),
            MailConfig::files(temp_dir("unused")),
            5,
            Vec::new(),
        );
        handles.push(w.spawn(rx.clone()));
    }
    until(Duration::from_secs(60), || async { queue_len(&app).await == 0 }).await;
    stop.trigger();
    for h in handles {
        h.await.unwrap();
    }
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 300);
    assert!(ids.iter().all(|id| runs.get(id) == Some(&1)), "a job ran twice");
    assert_eq!(*overlaps.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_killed_worker_leaves_its_job_to_run_again_after_the_lease() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let id = enqueue(
        &app,
        NewJob::new("noop", t.tenant.id, json!({ "sleep_ms": 60_000 })),
    )
    .await;
    let outbox = temp_dir("killed");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_crowdminder"))
        .args(["worker", "--concurrency", "1"])
        .env("DATABASE_URL", app.db.pool_url())
        .env("DATABASE_DIRECT_URL", &app.db.url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("JOB_LEASE_SECONDS", "2")
        .env("EMAIL_DIR", &outbox)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    until(Duration::from_secs(20), || async {
        app.count(&format!(
            "SELECT count(*) AS n FROM public.jobs WHERE id = {id} AND status = 'RUNNING' \
             AND locked_by LIKE '%:{pid}:%'"
        ))
        .await
            == 1
    })
    .await;
    // The process, not a flag: SIGKILL, no chance to release anything.
    child.kill().await.unwrap();
    let killed_at = chrono::Utc::now();

    let log: Log = Arc::default();
    let mut registry = registry_with_probe(&log, Duration::ZERO);
    {
        let log = Arc::clone(&log);
        // This worker's noop records its run instead of sleeping.
        registry.register("noop", move |ctx: JobContext| {
            let log = Arc::clone(&log);
            Box::pin(async move {
                log.lock().unwrap().push(Seen {
                    job: ctx.job.id,
                    tenant_id: ctx.job.tenant_id,
                    schema: ctx.db.tenant().schema.as_str().to_owned(),
                    clients: Vec::new(),
                    attempt: ctx.job.attempts,
                });
                Ok(())
            })
        });
    }
    let (stop, rx) = Shutdown::new();
    let handle = worker(
        &app,
        registry,
        fast_config(1),
        MailConfig::files(&outbox),
        2,
        Vec::new(),
    )
    .spawn(rx);
    until(Duration::from_secs(20), || async { queue_len(&app).await == 0 }).await;
    let ran_at = chrono::Utc::now();
    stop.trigger();
    handle.await.unwrap();
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].job, seen[0].attempt),
        (id, 2),
        "the second attempt ran it"
    );
    // Not before the dead worker's lease (renewed every 2/3 s, 2 s long) ran out.
    assert!(ran_at - killed_at >= chrono::Duration::milliseconds(1300));
    let _ = std::fs::remove_dir_all(&outbox);
}

#[tokio::test]
async fn jobs_of_20_tenants_on_a_small_pool_each_see_their_own_tenant() {
    let app = TestApp::new().await;
    let mut tenants = Vec::new();
    for i in 0..20 {
        let t = app.create_tenant(&format!("tenant_{i:02}")).await;
        let admin = app.login_admin(&t).await;
        app.as_user(&t, &admin)
            .client(&format!("Client of tenant {i:02}"))
            .await;
        tenants.push(t);
    }
    // The last tenant is suspended: its jobs wait.
    let mut conn = app.raw_conn().await;
    registry::set_status(&mut conn, "tenant_19", TenantStatus::Suspended)
        .await
        .unwrap();
    for round in 0..5 {
        for t in &tenants {
            enqueue(&app, NewJob::new("probe", t.tenant.id, json!({ "round": round }))).await;
        }
    }
    let log: Log = Arc::default();
    let (stop, rx) = Shutdown::new();
    // 8 jobs at once through 3 connections.
    let handle = worker(
        &app,
        registry_with_probe(&log, Duration::from_millis(5)),
        fast_config(8),
        MailConfig::files(temp_dir("unused")),
        3,
        Vec::new(),
    )
    .spawn(rx);
    until(Duration::from_secs(60), || async { queue_len(&app).await == 5 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM public.jobs j JOIN public.tenants t ON t.id = j.tenant_id \
                   WHERE t.schema_name = 'tenant_19' AND j.status = 'PENDING' AND j.attempts = 0"
        )
        .await,
        5,
        "the suspended tenant's jobs wait, untried"
    );
    registry::set_status(&mut conn, "tenant_19", TenantStatus::Active)
        .await
        .unwrap();
    until(Duration::from_secs(20), || async { queue_len(&app).await == 0 }).await;
    stop.trigger();
    handle.await.unwrap();

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 100);
    for s in &seen {
        let t = tenants.iter().find(|t| t.tenant.id == s.tenant_id).unwrap();
        assert_eq!(s.schema, t.schema, "job of {} ran in {}", t.schema, s.schema);
        let number = &t.schema["tenant_".len()..];
        assert_eq!(s.clients, vec![format!("Client of tenant {number}")]);
    }
}

#[tokio::test]
async fn a_due_schedule_runs_once_per_tenant_with_two_workers_up() {
    let app = TestApp::new().await;
    let mut tenants = Vec::new();
    for schema in ["s_one", "s_two", "s_three"] {
        let t = app.create_tenant(schema).await;
        let admin = app.login_admin(&t).await;
        app.as_user(&t, &admin).client(&format!("Client {schema}")).await;
        tenants.push(t);
    }
    let mut conn = app.raw_conn().await;
    registry::set_status(&mut conn, "s_three", TenantStatus::Suspended)
        .await
        .unwrap();
    let schedule = Schedule {
        name: "test_daily_probe".to_owned(),
        every: Every::Day(NaiveTime::from_hms_opt(0, 0, 0).unwrap()),
        kind: "probe".to_owned(),
        max_attempts: 3,
    };
    let log: Log = Arc::default();
    let (stop, rx) = Shutdown::new();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let w = worker(
            &app,
            registry_with_probe(&log, Duration::ZERO),
            fast_config(2),
            MailConfig::files(temp_dir("unused")),
            3,
            vec![schedule.clone()],
        );
        handles.push(w.spawn(rx.clone()));
    }
    until(Duration::from_secs(20), || async {
        log.lock().unwrap().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.trigger();
    for h in handles {
        h.await.unwrap();
    }
    let mut seen: Vec<String> = log.lock().unwrap().iter().map(|s| s.schema.clone()).collect();
    seen.sort();
    assert_eq!(seen, ["s_one", "s_two"], "once per active tenant");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM public.schedule_runs WHERE schedule = 'test_daily_probe'")
            .await,
        1
    );
    assert_eq!(queue_len(&app).await, 0);
}

#[tokio::test]
async fn the_nightly_usage_snapshot_counts_each_tenant() {
    let app = TestApp::new().await;
    let a = app.create_tenant("acme").await;
    let b = app.create_tenant("globex").await;
    let admin = app.login_admin(&a).await;
    app.create_user(&a, &admin, "dev@acme.example", "MEMBER").await;
    let (stop, rx) = Shutdown::new();
    let handle = worker(
        &app,
        crowdminder::app::jobs(),
        fast_config(2),
        MailConfig::files(temp_dir("snapshot")),
        3,
        crowdminder::app::schedules(),
    )
    .spawn(rx);
    until(Duration::from_secs(20), || async {
        app.count("SELECT count(*) AS n FROM public.usage_snapshots")
            .await
            == 2
    })
    .await;
    stop.trigger();
    handle.await.unwrap();
    let users = |t: &TestTenant| {
        format!(
            "SELECT active_users AS n FROM public.usage_snapshots WHERE tenant_id = {} AND storage_bytes > 0",
            t.tenant.id
        )
    };
    assert_eq!(app.count(&users(&a)).await, 2);
    assert_eq!(app.count(&users(&b)).await, 1);
}

#[tokio::test]
async fn emails_carry_their_tenants_address_and_site() {
    let app = TestApp::new().await;
    let a = app.create_tenant("acme").await;
    let b = app.create_tenant("globex").await;
    for t in [&a, &b] {
        let admin = app.login_admin(t).await;
        app.create_user(t, &admin, &format!("new@{}.example", t.schema), "MEMBER")
            .await;
    }
    // As .eml files here (the default without SMTP_URL); the billing and leave emails go
    // through the SMTP server.
    let mut emails = crate::common::drain_outbox_to_files(&app).await;
    emails.sort_by_key(|e| e.contains("globex"));
    assert_eq!(emails.len(), 2);
    for (email, t) in emails.iter().zip([&a, &b]) {
        assert!(
            email.contains(&format!("From: \"Company {}\" <no-reply@{}>", t.schema, t.host)),
            "{email}"
        );
        assert!(
            email.contains(&format!("To: Someone <new@{}.example>", t.schema)),
            "{email}"
        );
        assert!(email.contains(&format!("https://{}/login", t.host)), "{email}");
    }
    assert!(!emails[0].contains("globex") && !emails[1].contains("acme"));
}

/// Runs the standard jobs with `mail` until `count` (a `SELECT count(*) AS n`) is `n`.
async fn mail_until(app: &TestApp, mail: MailConfig, count: &str, n: i64) {
    let (stop, rx) = Shutdown::new();
    let handle = worker(app, crowdminder::app::jobs(), fast_config(1), mail, 2, Vec::new()).spawn(rx);
    until(Duration::from_secs(20), || async { app.count(count).await == n }).await;
    stop.trigger();
    handle.await.unwrap();
}

#[tokio::test]
async fn a_refusing_smtp_server_is_retried_then_recorded_as_failed() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    diesel::sql_query("UPDATE public.jobs SET max_attempts = 3")
        .execute(&mut app.raw_conn().await)
        .await
        .unwrap();

    // An SMTP server that refuses every connection at its greeting.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            *counted.lock().unwrap() += 1;
            let _ = socket
                .write_all(b"554 5.3.2 mail.test does not accept mail\r\n")
                .await;
        }
    });
    let mail = MailConfig {
        smtp_url: Some(crowdminder::config::Secret::new(format!(
            "smtp://127.0.0.1:{port}"
        ))),
        email_dir: temp_dir("unused"),
        smtp_timeout_seconds: 5,
    };
    mail_until(
        &app,
        mail,
        "SELECT count(*) AS n FROM public.jobs WHERE status = 'FAILED'",
        1,
    )
    .await;
    #[derive(QueryableByName)]
    struct Failed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        attempts: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        last_error: String,
    }
    let failed: Failed = diesel::sql_query("SELECT attempts, last_error FROM public.jobs")
        .get_result(&mut app.raw_conn().await)
        .await
        .unwrap();
    assert_eq!(failed.attempts, 3);
    assert!(failed.last_error.contains("554"), "{}", failed.last_error);
    assert_eq!(*connections.lock().unwrap(), 3, "one connection per attempt");
    // The user it was about is there all the same: a failed send undoes nothing.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.users WHERE email = 'dev@acme.example'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_wrong_smtp_password_fails_the_send_and_delivers_nothing() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    diesel::sql_query("UPDATE public.jobs SET max_attempts = 2")
        .execute(&mut app.raw_conn().await)
        .await
        .unwrap();
    let mailbox = crate::common::peers::TestMailbox::new();
    let mail = MailConfig {
        smtp_url: Some(crowdminder::config::Secret::new(
            mailbox.smtp_url("not-the-password"),
        )),
        ..mailbox.mail_config()
    };
    mail_until(
        &app,
        mail,
        "SELECT count(*) AS n FROM public.jobs WHERE status = 'FAILED'",
        1,
    )
    .await;
    let error: String = diesel::dsl::sql::<diesel::sql_types::Text>("SELECT last_error FROM public.jobs")
        .get_result(&mut app.raw_conn().await)
        .await
        .unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(mailbox.messages().is_empty());

    // Retried with the right password, it is delivered once, signed in, to the user.
    let id: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT id FROM public.jobs")
        .get_result(&mut app.raw_conn().await)
        .await
        .unwrap();
    jobs::retry(&mut app.raw_conn().await, id).await.unwrap();
    mail_until(
        &app,
        mailbox.mail_config(),
        "SELECT count(*) AS n FROM public.jobs",
        0,
    )
    .await;
    let messages = mailbox.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("To: Someone <dev@acme.example>"),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains(&format!("https://{}/login", t.host)),
        "{}",
        messages[0]
    );
}

#[tokio::test]
async fn shutdown_lets_short_jobs_finish_and_releases_long_ones_undone() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin).client("Globex").await;
    let mut registry = crowdminder::app::jobs();
    // A job that renames the client, then takes its time: half-done if it were cut short.
    registry.register("rename", move |ctx: JobContext| {
        Box::pin(async move {
            let pause: u64 = ctx.job.payload["pause_ms"].as_u64().unwrap_or(0);
            {
                let mut conn = ctx.db.conn().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
                diesel::sql_query("UPDATE clients SET name = name || ' (renamed)'")
                    .execute(&mut *conn)
                    .await?;
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
            Ok(())
        })
    });
    let short = enqueue(
        &app,
        NewJob::new("rename", t.tenant.id, json!({ "pause_ms": 300 })),
    )
    .await;
    let long = enqueue(
        &app,
        NewJob::new("rename", t.tenant.id, json!({ "pause_ms": 60_000 })),
    )
    .await;
    let mut config = fast_config(2);
    config.grace_seconds = 2;
    let (stop, rx) = Shutdown::new();
    let handle = worker(
        &app,
        registry,
        config,
        MailConfig::files(temp_dir("unused")),
        4,
        Vec::new(),
    )
    .spawn(rx);
    until(Duration::from_secs(10), || async {
        app.count("SELECT count(*) AS n FROM public.jobs WHERE status = 'RUNNING'")
            .await
            == 2
    })
    .await;
    let stopping = Instant::now();
    stop.trigger();
    handle.await.unwrap();
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped within the grace period: {took:?}"
    );
    // The short job finished; the long one is back in the queue, its attempt not counted,
    // and its rename undone with its transaction.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM public.jobs WHERE id = {short}"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM public.jobs WHERE id = {long} AND status = 'PENDING' AND attempts = 0 AND locked_by IS NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.clients WHERE name = 'Globex (renamed)'")
            .await,
        1,
        "one rename committed, the other rolled back"
    );
}
