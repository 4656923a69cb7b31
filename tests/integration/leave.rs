//! Leave types, holidays, requests, balances and decisions through the API, against
//! PostgreSQL.

use crate::common::peers::TestBucket;
use crate::common::{TestApp, TestTenant, assert_error, assert_error_for, multipart_body, serve_process};
use serde_json::{Value, json};

const CREATE_TYPE: &str = "mutation($i: CreateLeaveTypeInput!) { createLeaveType(input: $i) { id name } }";
const REQUEST: &str =
    "mutation($i: RequestLeaveInput!) { requestLeave(input: $i) { id workingDays hours status } }";
const BALANCES: &str = "query($u: ID, $y: Int, $a: NaiveDate) { leaveBalances(userId: $u, year: $y, asOf: $a) { \
    leaveType { name } entitled accrued carriedOver taken pending remaining } }";

async fn leave_type(app: &TestApp, t: &TestTenant, admin: &str, input: Value) -> Value {
    app.gql(&t.host, Some(admin), CREATE_TYPE, json!({ "i": input }))
        .await["createLeaveType"]["id"]
        .clone()
}

async fn holiday(app: &TestApp, t: &TestTenant, admin: &str, day: &str) {
    app.gql(
        &t.host,
        Some(admin),
        "mutation($d: NaiveDate!) { createHoliday(day: $d, name: \"Holiday\") { id } }",
        json!({ "d": day }),
    )
    .await;
}

/// A member, and a leave type "Vacation" of `allowance` days a year.
async fn member_and_vacation(
    app: &TestApp,
    t: &TestTenant,
    admin: &str,
    email: &str,
    allowance: &str,
) -> (String, Value) {
    let member = app.create_user(t, admin, email, "MEMBER").await;
    let vacation = leave_type(
        app,
        t,
        admin,
        json!({ "name": "Vacation", "yearlyAllowanceDays": allowance }),
    )
    .await;
    (member, vacation)
}

fn request(type_id: &Value, first: &str, last: &str) -> Value {
    json!({ "i": { "leaveTypeId": type_id, "firstDay": first, "lastDay": last } })
}

async fn requests_state(app: &TestApp, schema: &str) -> i64 {
    app.count(&format!(
        "SELECT count(*) + coalesce(sum(working_days * 10), 0)::bigint AS n FROM {schema}.leave_requests \
         WHERE status IN ('PENDING', 'APPROVED')"
    ))
    .await
}

async fn balance(app: &TestApp, t: &TestTenant, token: &str, year: i32, as_of: &str) -> Vec<Value> {
    app.gql(&t.host, Some(token), BALANCES, json!({ "y": year, "a": as_of }))
        .await["leaveBalances"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn working_days_follow_weekends_holidays_half_days_and_the_work_week() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let vacation = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Vacation", "yearlyAllowanceDays": "100" }),
    )
    .await;
    holiday(&app, &t, &admin, "2026-12-02").await;

    // Monday to Sunday with a Wednesday holiday: 4 days of 8 hours.
    let week = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2026-11-30", "2026-12-06"),
        )
        .await;
    assert_eq!(week["requestLeave"]["workingDays"], "4");
    assert_eq!(week["requestLeave"]["hours"], "32");
    // Half days at both ends: Monday afternoon to Friday morning, holiday Wednesday.
    let halves = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            json!({ "i": { "leaveTypeId": vacation, "firstDay": "2026-12-07", "lastDay": "2026-12-11",
                            "halfDayStart": true, "halfDayEnd": true } }),
        )
        .await;
    assert_eq!(halves["requestLeave"]["workingDays"], "4");
    // A weekend alone holds no working day.
    let before = requests_state(&app, "acme").await;
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2026-12-12", "2026-12-13"),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.firstDay"));
    assert_eq!(requests_state(&app, "acme").await, before);

    // A Sunday-to-Thursday week: that weekend is Friday and Saturday.
    app.gql(
        &t.host,
        Some(&admin),
        "mutation { updateTenantSettings(input: {workWeek: [SUNDAY, MONDAY, TUESDAY, WEDNESDAY, THURSDAY]}) { workWeek } }",
        json!({}),
    )
    .await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2026-12-18", "2026-12-19"),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let sunday_week = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2026-12-20", "2026-12-26"),
        )
        .await;
    assert_eq!(sunday_week["requestLeave"]["workingDays"], "5");
}

#[tokio::test]
async fn a_request_across_the_leave_year_counts_in_both() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    app.gql(
        &t.host,
        Some(&admin),
        "mutation { updateTenantSettings(input: {leaveYearStartMonth: 4}) { leaveYearStartMonth } }",
        json!({}),
    )
    .await;
    let vacation = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Vacation", "yearlyAllowanceDays": "20" }),
    )
    .await;
    // Monday 29 March to Friday 2 April 2027: three days in leave year 2026, two in 2027.
    let r = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2027-03-29", "2027-04-02"),
        )
        .await;
    assert_eq!(r["requestLeave"]["workingDays"], "5");
    let old = balance(&app, &t, &member, 2026, "2027-03-01").await;
    let new = balance(&app, &t, &member, 2027, "2027-04-01").await;
    assert_eq!(
        (old[0]["pending"].clone(), old[0]["remaining"].clone()),
        (json!("3"), json!("17"))
    );
    assert_eq!(
        (new[0]["pending"].clone(), new[0]["remaining"].clone()),
        (json!("2"), json!("18"))
    );
}

#[tokio::test]
async fn balances_accrue_carry_over_and_return_cancelled_days() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let manager = app.create_user(&t, &admin, "boss@acme.example", "MANAGER").await;
    // The member has been here since 2024.
    let mut conn = app.raw_conn().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE acme.users SET created_at = '2024-01-01' WHERE email = 'dev@acme.example'"),
        &mut conn,
    )
    .await
    .unwrap();
    let monthly = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Monthly", "yearlyAllowanceDays": "24", "accrual": "MONTHLY" }),
    )
    .await;
    let upfront = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Upfront", "yearlyAllowanceDays": "20", "carryOverCapDays": "5" }),
    )
    .await;
    // Half-way through 2026 (six months ended), the monthly type has granted half.
    let mid = balance(&app, &t, &member, 2026, "2026-07-01").await;
    let of = |b: &[Value], name: &str| b.iter().find(|x| x["leaveType"]["name"] == name).unwrap().clone();
    assert_eq!(of(&mid, "Monthly")["accrued"], "12");
    assert_eq!(of(&mid, "Monthly")["entitled"], "24");
    assert_eq!(of(&mid, "Upfront")["accrued"], "20");

    // 2025: 10 of 20 upfront days taken, so 10 unused, of which 5 carry over.
    let r = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&upfront, "2025-03-03", "2025-03-14"),
        )
        .await;
    assert_eq!(r["requestLeave"]["workingDays"], "10");
    app.gql(
        &t.host,
        Some(&manager),
        "mutation($id: ID!) { approveLeave(id: $id) { status decidedBy { email } } }",
        json!({ "id": r["requestLeave"]["id"] }),
    )
    .await;
    let year = balance(&app, &t, &member, 2026, "2026-07-01").await;
    assert_eq!(of(&year, "Upfront")["carriedOver"], "5");
    assert_eq!(of(&year, "Upfront")["remaining"], "25");

    // An approved request in 2026, then cancelled: the days come back at once.
    let r = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&upfront, "2026-08-03", "2026-08-07"),
        )
        .await;
    app.gql(
        &t.host,
        Some(&manager),
        "mutation($id: ID!) { approveLeave(id: $id) { status } }",
        json!({ "id": r["requestLeave"]["id"] }),
    )
    .await;
    let year = balance(&app, &t, &member, 2026, "2026-09-01").await;
    assert_eq!(
        (
            of(&year, "Upfront")["taken"].clone(),
            of(&year, "Upfront")["remaining"].clone()
        ),
        (json!("5"), json!("20"))
    );
    let cancelled = app
        .gql(
            &t.host,
            Some(&member),
            "mutation($id: ID!) { cancelLeave(id: $id) { status } }",
            json!({ "id": r["requestLeave"]["id"] }),
        )
        .await;
    assert_eq!(cancelled["cancelLeave"]["status"], "CANCELLED");
    let year = balance(&app, &t, &member, 2026, "2026-09-01").await;
    assert_eq!(
        (
            of(&year, "Upfront")["taken"].clone(),
            of(&year, "Upfront")["remaining"].clone()
        ),
        (json!("0"), json!("25"))
    );
    // A changed allowance shows at once.
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { updateLeaveType(id: $id, input: {yearlyAllowanceDays: \"22\"}) { id } }",
        json!({ "id": upfront }),
    )
    .await;
    let year = balance(&app, &t, &member, 2026, "2026-09-01").await;
    assert_eq!(of(&year, "Upfront")["remaining"], "27");
    let _ = monthly;
}

#[tokio::test]
async fn every_refusal_changes_nothing() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let manager = app.create_user(&t, &admin, "boss@acme.example", "MANAGER").await;
    let small = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Small", "yearlyAllowanceDays": "3", "halfDaysAllowed": false }),
    )
    .await;
    let (_, error) = app
        .gql_error(
            &t.host,
            Some(&admin),
            CREATE_TYPE,
            json!({ "i": { "name": "SMALL", "yearlyAllowanceDays": "1" } }),
        )
        .await;
    assert_error(&error, "CONFLICT", Some("input.name"));
    let first = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&small, "2026-12-07", "2026-12-08"),
        )
        .await;
    let before = requests_state(&app, "acme").await;
    let refused = [
        // Last day before the first.
        (
            request(&small, "2026-12-10", "2026-12-09"),
            "BAD_USER_INPUT",
            "input.lastDay",
        ),
        // An overlap with the member's own pending leave.
        (
            request(&small, "2026-12-08", "2026-12-08"),
            "CONFLICT",
            "input.firstDay",
        ),
        // More than the balance: 2 asked, 1 left.
        (
            request(&small, "2026-12-14", "2026-12-15"),
            "CONFLICT",
            "input.lastDay",
        ),
        // Half days of a type taken in whole days.
        (
            json!({ "i": { "leaveTypeId": small, "firstDay": "2026-12-16", "lastDay": "2026-12-16", "halfDayStart": true } }),
            "BAD_USER_INPUT",
            "input.halfDayStart",
        ),
        // Zero working days.
        (
            request(&small, "2026-12-19", "2026-12-20"),
            "BAD_USER_INPUT",
            "input.firstDay",
        ),
    ];
    for (input, code, field) in refused {
        let (_, error) = app
            .gql_error(&t.host, Some(&member), REQUEST, input.clone())
            .await;
        assert_error_for(&input, &error, code, Some(field));
        assert_eq!(
            requests_state(&app, "acme").await,
            before,
            "{input} changed something"
        );
    }
    // Nobody decides their own leave: not a member, not a manager.
    let approve = "mutation($id: ID!) { approveLeave(id: $id) { status } }";
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&member),
            approve,
            json!({ "id": first["requestLeave"]["id"] }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    let own = app
        .gql(
            &t.host,
            Some(&manager),
            REQUEST,
            request(&small, "2026-12-07", "2026-12-07"),
        )
        .await;
    let (code, _) = app
        .gql_error(
            &t.host,
            Some(&manager),
            approve,
            json!({ "id": own["requestLeave"]["id"] }),
        )
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM acme.leave_requests WHERE status = 'PENDING'")
            .await,
        2
    );
    // A member sees only their own requests.
    let mine = app
        .gql(
            &t.host,
            Some(&member),
            "{ leaveRequests { edges { node { user { email } leaveType { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["leaveRequests"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(
        mine["leaveRequests"]["edges"][0]["node"]["leaveType"]["name"],
        "Small"
    );
    // Requests notify the approvers: the member's reached the admin and the manager, the
    // manager's only the admin.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM public.jobs WHERE payload->>'template' = 'leave_requested'")
            .await,
        3
    );
}

#[tokio::test]
async fn two_concurrent_requests_over_the_balance_one_succeeds() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let five = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Five", "yearlyAllowanceDays": "5" }),
    )
    .await;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            app.post(
                &t.host,
                Some(&member),
                REQUEST,
                request(&five, "2026-12-07", "2026-12-09")
            ),
            app.post(
                &t.host,
                Some(&member),
                REQUEST,
                request(&five, "2026-12-14", "2026-12-16")
            ),
        );
        let ok = [&a.1, &b.1].iter().filter(|r| r.get("errors").is_none()).count();
        assert_eq!(ok, 1, "{a:?} {b:?}");
        let mut conn = app.raw_conn().await;
        diesel_async::RunQueryDsl::execute(diesel::sql_query("DELETE FROM acme.leave_requests"), &mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn approved_leave_reduces_available_hours_in_utilization() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let (member, vacation) = member_and_vacation(&app, &t, &admin, "dev@acme.example", "25").await;
    let r = app
        .gql(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2026-11-23", "2026-11-24"),
        )
        .await;
    app.gql(
        &t.host,
        Some(&admin),
        "mutation($id: ID!) { approveLeave(id: $id) { status } }",
        json!({ "id": r["requestLeave"]["id"] }),
    )
    .await;
    holiday(&app, &t, &admin, "2026-11-26").await;
    let u = app
        .gql(
            &t.host,
            Some(&member),
            "{ utilization(from: \"2026-11-23\", to: \"2026-11-29\") { workingDays rows { leaveHours availableHours } } }",
            json!({}),
        )
        .await;
    // Five weekdays less the holiday: 4 working days; 2 of them on leave.
    assert_eq!(u["utilization"]["workingDays"], 4);
    assert_eq!(u["utilization"]["rows"][0]["leaveHours"], "16");
    assert_eq!(u["utilization"]["rows"][0]["availableHours"], "16");
}

#[tokio::test]
async fn team_balances_cost_the_same_statements_for_20_or_200_users() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    for i in 0..5 {
        leave_type(
            &app,
            &t,
            &admin,
            json!({ "name": format!("Type {i}"), "yearlyAllowanceDays": "20", "carryOverCapDays": "5",
                    "accrual": if i % 2 == 0 { "UPFRONT" } else { "MONTHLY" } }),
        )
        .await;
    }
    holiday(&app, &t, &admin, "2026-05-01").await;
    // 200 members since 2024, each with approved leave in 2025 and a pending request in 2026.
    let mut conn = app.raw_conn().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "INSERT INTO acme.users (email, name, role, created_at)
           SELECT 'u' || i || '@acme.example', 'User ' || i, 'MEMBER', '2024-01-01' FROM generate_series(1, 200) i;
         INSERT INTO acme.leave_requests (user_id, leave_type_id, first_day, last_day, working_days, status)
           SELECT u.id, 1 + u.id % 5, date '2025-03-03', date '2025-03-07', 5, 'APPROVED'
           FROM acme.users u WHERE u.email LIKE 'u%';
         INSERT INTO acme.leave_requests (user_id, leave_type_id, first_day, last_day, working_days, status)
           SELECT u.id, 1 + u.id % 5, date '2026-04-27', date '2026-05-01', 4, 'PENDING'
           FROM acme.users u WHERE u.email LIKE 'u%';",
    )
    .await
    .unwrap();
    let row_ids: Vec<i64> = diesel_async::RunQueryDsl::load::<Row>(
        diesel::sql_query("SELECT id AS n FROM acme.users WHERE email LIKE 'u%' ORDER BY id"),
        &mut conn,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.n)
    .collect();
    let user_ids: Vec<String> = row_ids
        .iter()
        .map(|id| {
            crowdminder::graphql::support::global_id(crowdminder::graphql::support::NodeType::User, *id).0
        })
        .collect();
    assert_eq!(user_ids.len(), 200);
    let query = |ids: &[String]| {
        format!(
            "{{ teamLeaveBalances(year: 2026, asOf: \"2026-07-01\", userIds: {}) {{ user {{ email }} \
               balances {{ leaveType {{ name }} accrued carriedOver taken pending remaining }} }} }}",
            serde_json::to_string(ids).unwrap()
        )
    };
    app.execute_counted(&t, &admin, &query(&user_ids[..1])).await;
    let (few, twenty) = app.execute_counted(&t, &admin, &query(&user_ids[..20])).await;
    let (all, two_hundred) = app.execute_counted(&t, &admin, &query(&user_ids)).await;
    assert_eq!(few["teamLeaveBalances"].as_array().unwrap().len(), 20);
    let rows = all["teamLeaveBalances"].as_array().unwrap();
    assert_eq!(rows.len(), 200);
    assert_eq!(twenty, two_hundred, "statements must not grow with the users");
    // BEGIN, join dates, types, requests, holidays, users, COMMIT.
    assert_eq!(two_hundred, 7);
    // Each user: 5 balances; the type of their requests carries 5 over (capped; 20 - 5 = 15
    // unused in 2025) and has 4 pending (the holiday on 1 May does not count).
    for row in rows {
        let balances = row["balances"].as_array().unwrap();
        assert_eq!(balances.len(), 5);
        let with_leave: Vec<&Value> = balances.iter().filter(|b| b["pending"] != "0").collect();
        assert_eq!(with_leave.len(), 1, "{row}");
        assert_eq!(with_leave[0]["carriedOver"], "5");
        assert_eq!(with_leave[0]["pending"], "4");
    }
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn leave_emails_come_from_their_own_tenant() {
    let app = TestApp::new().await;
    let mut hosts = Vec::new();
    for schema in ["acme", "globex"] {
        let t = app.create_tenant(schema).await;
        let admin = app.login_admin(&t).await;
        let (member, vacation) =
            member_and_vacation(&app, &t, &admin, &format!("dev@{schema}.example"), "20").await;
        let r = app
            .gql(
                &t.host,
                Some(&member),
                REQUEST,
                request(&vacation, "2026-12-07", "2026-12-08"),
            )
            .await;
        app.gql(
            &t.host,
            Some(&admin),
            "mutation($id: ID!) { rejectLeave(id: $id, reason: \"Release week\") { status } }",
            json!({ "id": r["requestLeave"]["id"] }),
        )
        .await;
        hosts.push(t);
    }
    let emails = crate::common::drain_outbox(&app).await;
    // Per tenant: a welcome, the request to the admin, the rejection to the member.
    assert_eq!(emails.len(), 6);
    for t in &hosts {
        let other = hosts.iter().find(|o| o.schema != t.schema).unwrap();
        let request_mail = emails
            .iter()
            .find(|e| e.contains("asks for Vacation leave") && e.contains(&t.host))
            .unwrap();
        assert!(
            request_mail.contains(&format!("<no-reply@{}>", t.host)),
            "{request_mail}"
        );
        assert!(request_mail.contains(&format!("https://{}/leave/requests/", t.host)));
        assert!(!request_mail.contains(&other.host));
        let rejection = emails
            .iter()
            .find(|e| e.contains("is rejected") && e.contains(&t.host))
            .unwrap();
        assert!(rejection.contains(&format!("dev@{}.example", t.schema)));
        assert!(rejection.contains("Release week"));
        assert!(!rejection.contains(&other.host));
    }
}

const REQUEST_WITH_FILES: &str = "mutation($i: RequestLeaveInput!) { requestLeave(input: $i) { id workingDays \
    attachments { id filename contentType size sha256 url uploadedBy { email } } } }";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";

async fn files_state(app: &TestApp, schema: &str) -> i64 {
    app.count(&format!("SELECT count(*) AS n FROM {schema}.files"))
        .await
}

/// Files under a folder, recursively.
fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(stored_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Where a test's attachments are kept: a folder, or a bucket on the S3 server.
enum Kept {
    Folder(std::path::PathBuf),
    Bucket(TestBucket, &'static str),
}

impl Kept {
    /// The keys of the files kept, relative to the store.
    async fn keys(&self) -> Vec<String> {
        match self {
            Self::Folder(folder) => stored_files(folder)
                .iter()
                .map(|p| p.strip_prefix(folder).unwrap().to_string_lossy().into_owned())
                .collect(),
            Self::Bucket(bucket, prefix) => bucket
                .keys()
                .await
                .into_iter()
                .map(|k| {
                    k.strip_prefix(&format!("{prefix}/"))
                        .unwrap_or_else(|| panic!("{k} is outside the store's prefix {prefix}"))
                        .to_owned()
                })
                .collect(),
        }
    }

    async fn count(&self) -> usize {
        self.keys().await.len()
    }
}

#[tokio::test]
async fn attachments_are_checked_stored_per_tenant_and_downloaded_only_by_those_allowed() {
    let config = crate::common::test_config();
    let folder = std::path::PathBuf::from(&config.file_store);
    attachments_in(config, Kept::Folder(folder)).await;
}

#[tokio::test]
async fn attachments_kept_in_an_s3_bucket_behave_the_same() {
    let bucket = TestBucket::create().await;
    let mut config = crate::common::test_config();
    config.file_store = bucket.store("crowdminder");
    attachments_in(config, Kept::Bucket(bucket, "crowdminder")).await;
}

async fn attachments_in(mut config: crowdminder::config::ServiceConfig, kept: Kept) {
    config.file_max_bytes = 4096;
    let app = TestApp::with_config(4, config).await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let mut tokens = Vec::new();
    for t in [&acme, &globex] {
        let admin = app.login_admin(t).await;
        let member = app
            .create_user(t, &admin, &format!("sick@{}.example", t.schema), "MEMBER")
            .await;
        let sick = leave_type(
            &app,
            t,
            &admin,
            json!({ "name": "Sick", "yearlyAllowanceDays": "20", "attachmentRequiredAfterDays": "2" }),
        )
        .await;
        tokens.push((admin, member, sick));
    }
    let (acme_admin, acme_member, acme_sick) = tokens[0].clone();
    let (_, globex_member, globex_sick) = tokens[1].clone();
    let other_member = app
        .create_user(&acme, &acme_admin, "other@acme.example", "MEMBER")
        .await;
    let three_days = |ty: &Value| json!({ "i": { "leaveTypeId": ty, "firstDay": "2026-12-01", "lastDay": "2026-12-03", "attachments": null } });

    // Three working days of a type that wants a note after two: refused without one.
    let (_, error) = app
        .gql_error(
            &acme.host,
            Some(&acme_member),
            REQUEST_WITH_FILES,
            three_days(&acme_sick),
        )
        .await;
    assert_error(&error, "BAD_USER_INPUT", Some("input.attachments"));
    // Two days need none.
    let two = app
        .gql(
            &acme.host,
            Some(&acme_member),
            REQUEST_WITH_FILES,
            json!({ "i": { "leaveTypeId": acme_sick, "firstDay": "2026-11-30", "lastDay": "2026-11-30" } }),
        )
        .await;
    assert_eq!(two["requestLeave"]["attachments"], json!([]));
    let requests_before = requests_state(&app, "acme").await;

    // Content that is not what it claims, and a file over the limit: refused, nothing kept.
    for (bytes, field) in [
        (
            b"<html><script>alert(1)</script></html>".to_vec(),
            "input.attachments.0",
        ),
        (Vec::new(), "input.attachments.0"),
    ] {
        let (status, body) = app
            .post_multipart(
                &acme.host,
                Some(&acme_member),
                REQUEST_WITH_FILES,
                json!({ "i": { "leaveTypeId": acme_sick, "firstDay": "2026-12-01", "lastDay": "2026-12-03",
                                "attachments": [null] } }),
                &[("variables.i.attachments.0", "note.pdf", "application/pdf", &bytes)],
            )
            .await;
        assert_eq!(status, 200);
        assert_error_for(&body, &body["errors"][0], "BAD_USER_INPUT", Some(field));
    }
    // A file over FILE_MAX_BYTES is refused as the body is read, 413, before anything runs.
    let (status, body) = app
        .post_multipart(
            &acme.host,
            Some(&acme_member),
            REQUEST_WITH_FILES,
            json!({ "i": { "leaveTypeId": acme_sick, "firstDay": "2026-12-01", "lastDay": "2026-12-03",
                            "attachments": [null] } }),
            &[(
                "variables.i.attachments.0",
                "note.pdf",
                "application/pdf",
                &[PDF, &[b' '; 5000]].concat(),
            )],
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_error_for(&body, &body["errors"][0], "BAD_REQUEST", None);
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("4096"),
        "{body}"
    );
    assert_eq!(requests_state(&app, "acme").await, requests_before);
    assert_eq!(files_state(&app, "acme").await, 0);
    assert_eq!(kept.count().await, 0);

    // A real note, with a name a browser must get back intact.
    let upload = |host: &str, token: &str, ty: &Value, bytes: &'static [u8]| {
        let (host, token, ty) = (host.to_owned(), token.to_owned(), ty.clone());
        let app = &app;
        async move {
            let (status, body) = app
                .post_multipart(
                    &host,
                    Some(&token),
                    REQUEST_WITH_FILES,
                    json!({ "i": { "leaveTypeId": ty, "firstDay": "2026-12-01", "lastDay": "2026-12-03",
                                    "attachments": [null] } }),
                    &[(
                        "variables.i.attachments.0",
                        "C:\\scans\\Arztzeugnis Müller.pdf",
                        "text/plain",
                        bytes,
                    )],
                )
                .await;
            assert_eq!(status, 200);
            assert!(body.get("errors").is_none(), "{body}");
            body["data"]["requestLeave"].clone()
        }
    };
    let acme_request = upload(&acme.host, &acme_member, &acme_sick, PDF).await;
    let file = &acme_request["attachments"][0];
    assert_eq!(file["filename"], "Arztzeugnis Müller.pdf");
    assert_eq!(file["contentType"], "application/pdf");
    assert_eq!(file["size"], PDF.len());
    assert_eq!(file["uploadedBy"]["email"], "sick@acme.example");
    let file_id = file["id"].as_str().unwrap().to_owned();
    let path = format!("/files/{file_id}");
    assert_eq!(file["url"], format!("https://{}{path}", acme.host));
    // Globex's first file has the same row id as Acme's.
    let globex_pdf: &'static [u8] = b"%PDF-1.4\nglobex's own note\n%%EOF\n";
    let globex_request = upload(&globex.host, &globex_member, &globex_sick, globex_pdf).await;
    assert_eq!(globex_request["attachments"][0]["id"], file_id);

    // Keys begin with the tenant's registry id, so they differ although the ids are equal.
    let acme_key = format!("tenants/{}/files/", acme.tenant.id);
    let globex_key = format!("tenants/{}/files/", globex.tenant.id);
    assert_ne!(acme_key, globex_key);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM acme.files WHERE storage_key LIKE '{acme_key}%'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM globex.files WHERE storage_key LIKE '{globex_key}%'"
        ))
        .await,
        1
    );
    let keys = kept.keys().await;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.starts_with(&acme_key)), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&globex_key)), "{keys:?}");
    if let Kept::Bucket(bucket, prefix) = &kept {
        let acme_object = keys.iter().find(|k| k.starts_with(&acme_key)).unwrap();
        assert_eq!(bucket.object(&format!("{prefix}/{acme_object}")).await, PDF);
    }

    // The requester and the admin download it; the bytes and the name come back.
    for token in [&acme_member, &acme_admin] {
        let (status, headers, bytes) = app.get_raw(&acme.host, Some(token), &path).await;
        assert_eq!(status, 200);
        assert_eq!(bytes, PDF);
        assert_eq!(headers["content-type"], "application/pdf");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(
            disposition.contains("filename*=UTF-8''Arztzeugnis%20M%C3%BCller.pdf"),
            "{disposition}"
        );
    }
    // The same path at Globex's host is Globex's file, for Globex's member.
    let (status, _, bytes) = app.get_raw(&globex.host, Some(&globex_member), &path).await;
    assert_eq!((status.as_u16(), bytes.as_slice()), (200, globex_pdf));
    // Another member of Acme, a Globex token at Acme's host, and no token get nothing.
    let (status, _, bytes) = app.get_raw(&acme.host, Some(&other_member), &path).await;
    assert_eq!(status, 404);
    assert!(!bytes.windows(4).any(|w| w == b"%PDF"));
    let (status, _, bytes) = app.get_raw(&acme.host, Some(&globex_member), &path).await;
    assert_eq!(status, 401);
    assert!(!bytes.windows(4).any(|w| w == b"%PDF"));
    let (status, _, _) = app.get_raw(&acme.host, None, &path).await;
    assert_eq!(status, 401);
    let (status, _, _) = app
        .get_raw(&acme.host, Some(&acme_admin), "/files/not-an-id")
        .await;
    assert_eq!(status, 404);
    // Nor does the other member see it through the API.
    let node = app
        .gql(
            &acme.host,
            Some(&other_member),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": file_id }),
        )
        .await;
    assert_eq!(node["node"], Value::Null);

    // The last note of a request that needs one cannot be removed; with a second it can,
    // and its bytes go.
    const REMOVE: &str = "mutation($id: ID!) { removeLeaveAttachment(id: $id) }";
    let (code, _) = app
        .gql_error(&acme.host, Some(&acme_member), REMOVE, json!({ "id": file_id }))
        .await;
    assert_eq!(code, "CONFLICT");
    assert_eq!(files_state(&app, "acme").await, 1);
    let request_id = acme_request["id"].clone();
    let (status, body) = app
        .post_multipart(
            &acme.host,
            Some(&acme_member),
            "mutation($r: ID!, $f: Upload!) { addLeaveAttachment(leaveRequestId: $r, file: $f) { filename contentType } }",
            json!({ "r": request_id, "f": null }),
            &[("variables.f", "scan.png", "image/png", PNG)],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["addLeaveAttachment"],
        json!({ "filename": "scan.png", "contentType": "image/png" }),
        "{body}"
    );
    // Not by another member.
    let (_, body) = app
        .post_multipart(
            &acme.host,
            Some(&other_member),
            "mutation($r: ID!, $f: Upload!) { addLeaveAttachment(leaveRequestId: $r, file: $f) { id } }",
            json!({ "r": request_id, "f": null }),
            &[("variables.f", "scan.png", "image/png", PNG)],
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
    assert_eq!(kept.count().await, 3);
    let removed = app
        .gql(&acme.host, Some(&acme_member), REMOVE, json!({ "id": file_id }))
        .await;
    assert_eq!(removed["removeLeaveAttachment"], file_id);
    let (status, _, _) = app.get_raw(&acme.host, Some(&acme_admin), &path).await;
    assert_eq!(status, 404);
    crate::common::eventually(|| async { kept.count().await == 2 }).await;
    let listed = app
        .gql(
            &acme.host,
            Some(&acme_admin),
            "query($id: ID!) { leaveRequest(id: $id) { attachments { filename } } }",
            json!({ "id": request_id }),
        )
        .await;
    assert_eq!(
        listed["leaveRequest"]["attachments"],
        json!([{ "filename": "scan.png" }])
    );

    // A cancelled request takes no more files.
    app.gql(
        &acme.host,
        Some(&acme_member),
        "mutation($id: ID!) { cancelLeave(id: $id) { status } }",
        json!({ "id": request_id }),
    )
    .await;
    let (_, body) = app
        .post_multipart(
            &acme.host,
            Some(&acme_member),
            "mutation($r: ID!, $f: Upload!) { addLeaveAttachment(leaveRequestId: $r, file: $f) { id } }",
            json!({ "r": request_id, "f": null }),
            &[("variables.f", "late.pdf", "application/pdf", PDF)],
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT", "{body}");
    assert_eq!(kept.count().await, 2);
}

/// The S3 server unreachable: an upload is refused at once as `UNAVAILABLE` (HTTP 503 with
/// `Retry-After`), telling the client nothing of the store, and leaves neither a request
/// nor a file row behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_file_store_refuses_uploads_as_unavailable_and_keeps_nothing() {
    let app = TestApp::new().await;
    let t = app.create_tenant("acme").await;
    let admin = app.login_admin(&t).await;
    let member = app.create_user(&t, &admin, "sick@acme.example", "MEMBER").await;
    let sick = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Sick", "yearlyAllowanceDays": "20", "attachmentRequiredAfterDays": "2" }),
    )
    .await;
    let nothing_listens = crate::common::free_port();
    let endpoint = format!("http://127.0.0.1:{nothing_listens}");
    let (_server, port) = serve_process(
        &app,
        &[
            ("FILE_STORE", "s3://cmtest-unreachable/files"),
            ("AWS_ENDPOINT", &endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "cmtest"),
            ("AWS_SECRET_ACCESS_KEY", "cmtest-secret"),
        ],
    )
    .await;
    let (content_type, body) = multipart_body(
        REQUEST_WITH_FILES,
        json!({ "i": { "leaveTypeId": sick, "firstDay": "2026-12-01", "lastDay": "2026-12-03", "attachments": [null] } }),
        &[("variables.i.attachments.0", "note.pdf", "application/pdf", PDF)],
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("host", &t.host)
        .bearer_auth(&member)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_error(&body["errors"][0], "UNAVAILABLE", None);
    assert!(body["data"]["requestLeave"].is_null(), "{body}");
    for secret in [endpoint.as_str(), "cmtest-unreachable", "tenants/"] {
        assert!(!body.to_string().contains(secret), "{body}");
    }
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(requests_state(&app, "acme").await, 0);
    assert_eq!(files_state(&app, "acme").await, 0);
}
