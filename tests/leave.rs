//! Leave types, holidays, requests, balances and decisions through the API, against
//! PostgreSQL.

mod common;

use common::{TestApp, TestTenant};
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
    let (code, error) = app
        .gql_error(
            &t.host,
            Some(&member),
            REQUEST,
            request(&vacation, "2026-12-12", "2026-12-13"),
        )
        .await;
    assert_eq!(
        (code.as_str(), error["extensions"]["field"].as_str()),
        ("BAD_USER_INPUT", Some("input.firstDay"))
    );
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
    let (code, error) = app
        .gql_error(
            &t.host,
            Some(&admin),
            CREATE_TYPE,
            json!({ "i": { "name": "SMALL", "yearlyAllowanceDays": "1" } }),
        )
        .await;
    assert_eq!(
        (code.as_str(), error["extensions"]["field"].as_str()),
        ("CONFLICT", Some("input.name"))
    );
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
        let (got, error) = app
            .gql_error(&t.host, Some(&member), REQUEST, input.clone())
            .await;
        assert_eq!(
            (got.as_str(), error["extensions"]["field"].as_str()),
            (code, Some(field)),
            "{input}"
        );
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
            "{ leaveRequests { edges { node { user { email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["leaveRequests"]["edges"].as_array().unwrap().len(), 1);
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
    let member = app.create_user(&t, &admin, "dev@acme.example", "MEMBER").await;
    let vacation = leave_type(
        &app,
        &t,
        &admin,
        json!({ "name": "Vacation", "yearlyAllowanceDays": "25" }),
    )
    .await;
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
