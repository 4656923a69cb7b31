//! The `crowdminder` command, run as a process against PostgreSQL.

use std::process::Output;

use crate::common::TestDatabase;
use crowdminder::tenancy;
use crowdminder::tenancy::migrations::TENANT_MIGRATIONS;
use diesel_async::SimpleAsyncConnection;
use serde_json::Value;

async fn run(db: &TestDatabase, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_crowdminder"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("CROWDMINDER_ADMIN_PASSWORD", "a-long-admin-password")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn create(db: &TestDatabase, schema: &str, host: &str) -> Output {
    run(
        db,
        &[
            "tenants",
            "create",
            schema,
            "--host",
            host,
            "--name",
            "Some Company",
            "--admin-email",
            "boss@example.com",
        ],
    )
    .await
}

async fn listed(db: &TestDatabase) -> Vec<Value> {
    let out = run(db, &["tenants", "list", "--json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

#[tokio::test]
async fn export_schema_matches_the_committed_schema_file() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_crowdminder"))
        .arg("export-schema")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        String::from_utf8(out.stdout).unwrap() == committed,
        "schema.graphql is out of date: run `cargo run -- export-schema > schema.graphql`"
    );
}

#[tokio::test]
async fn bad_schema_names_and_duplicate_hosts_are_refused_with_exit_code_2() {
    let db = TestDatabase::create().await;
    let long = "a".repeat(64);
    for bad in [
        "Acme",
        "pg_x",
        "public",
        "a;drop",
        "information_schema",
        "1abc",
        long.as_str(),
    ] {
        let out = create(&db, bad, "x.example.com").await;
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("schema name"), "{bad}: {}", stderr(&out));
    }
    let out = create(&db, "acme", "acme.example.com").await;
    assert!(out.status.success(), "{}", stderr(&out));
    for (schema, host) in [("other", "ACME.example.com"), ("acme", "new.example.com")] {
        let out = create(&db, schema, host).await;
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("already"), "{}", stderr(&out));
    }
    let out = create(&db, "badhost", "not a host").await;
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &db,
        &[
            "tenants",
            "create",
            "weak",
            "--host",
            "weak.example.com",
            "--name",
            "W",
            "--admin-email",
            "a@b.example",
            "--admin-password",
            "short",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("password"));

    let tenants = listed(&db).await;
    assert_eq!(tenants.len(), 1, "only the valid tenant exists: {tenants:?}");
    assert_eq!(tenants[0]["schema"], "acme");
}

#[tokio::test]
async fn tenants_go_through_their_lifecycle_from_the_command_line() {
    let db = TestDatabase::create().await;
    let out = create(&db, "acme", "acme.example.com").await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = create(&db, "acme", "acme.example.com").await;
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &db,
        &[
            "tenants",
            "create",
            "acme",
            "--host",
            "acme.example.com",
            "--name",
            "A",
            "--admin-email",
            "a@b.example",
            "--if-not-exists",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&db, &["tenants", "add-host", "acme", "Acme.Example.ORG"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = create(&db, "beta", "beta.example.com").await;
    assert!(out.status.success());
    let out = run(&db, &["tenants", "add-host", "beta", "acme.example.org"]).await;
    assert_eq!(out.status.code(), Some(2), "a host serves one tenant");
    let out = run(&db, &["tenants", "move-host", "acme.example.org", "--to", "beta"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&db, &["tenants", "suspend", "acme"]).await;
    assert!(out.status.success());
    let out = run(&db, &["tenants", "suspend", "nobody"]).await;
    assert_eq!(out.status.code(), Some(2));

    let tenants = listed(&db).await;
    let acme = tenants.iter().find(|t| t["schema"] == "acme").unwrap();
    let beta = tenants.iter().find(|t| t["schema"] == "beta").unwrap();
    assert_eq!(acme["status"], "SUSPENDED");
    assert_eq!(acme["hosts"], serde_json::json!(["acme.example.com"]));
    assert_eq!(
        beta["hosts"],
        serde_json::json!(["beta.example.com", "acme.example.org"])
    );
    let table = run(&db, &["tenants", "list"]).await;
    assert!(String::from_utf8_lossy(&table.stdout).contains("SUSPENDED"));

    // Deleting asks; with no one to answer, nothing is deleted.
    let out = run(&db, &["tenants", "delete", "acme"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(listed(&db).await.len(), 2);
    let out = run(&db, &["tenants", "delete", "acme", "--yes"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let tenants = listed(&db).await;
    assert_eq!(tenants.len(), 1);
    let mut conn = tenancy::connect(&db.url).await.unwrap();
    assert!(
        conn.batch_execute("SELECT 1 FROM acme.users").await.is_err(),
        "the schema is gone"
    );
    // Its host is free again.
    let out = create(&db, "acme2", "acme.example.com").await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn migrate_reports_each_failed_tenant_and_exits_non_zero() {
    let db = TestDatabase::create().await;
    for (schema, host) in [("good", "good.example.com"), ("broken", "broken.example.com")] {
        assert!(create(&db, schema, host).await.status.success());
    }
    let last = TENANT_MIGRATIONS.last().unwrap();
    let mut conn = tenancy::connect(&db.url).await.unwrap();
    for schema in ["good", "broken"] {
        conn.batch_execute(&format!(
            "BEGIN; SET LOCAL search_path = {schema}; {} DELETE FROM schema_migrations WHERE version = '{}'; COMMIT;",
            last.down.unwrap(),
            last.version
        ))
        .await
        .unwrap();
    }
    let (put, take_away) = crate::common::obstruction("broken", last.up);
    conn.batch_execute(&put).await.unwrap();

    let out = run(&db, &["migrate", "--jobs", "2"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("broken: FAILED"), "{err}");
    assert!(err.contains(&format!("good: applied {}", last.version)), "{err}");
    assert!(err.contains("migration failed for: broken"), "{err}");

    conn.batch_execute(&take_away).await.unwrap();
    let out = run(&db, &["migrate", "--schema", "broken"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&db, &["migrate"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 tenants: 0 migrated, 2 up to date, 0 failed"),
        "{}",
        stderr(&out)
    );
}
