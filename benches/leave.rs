//! Leave balances of a team: one tenant with 200 members and 5 leave types (upfront and
//! monthly accrual, carry-over caps), three years of requests in every state and a year of
//! holidays. `teamLeaveBalances` for 20 and for 200 users:
//! - SQL statements per request (run in-process, counted by the request's unit);
//! - time through HTTP on loopback (the optimised service in this process), median of runs.
//!
//! Run with `scripts/bench.sh leave`, or by hand with `BENCH_DATABASE_URL` pointing at an
//! empty database: `cargo bench --bench leave`. `BENCH_RUNS` (default 30).

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{JWT_SECRET, PASSWORD, database_url, env_or, median, prepare, runtime, tenant};
use crowdminder::app::App;
use crowdminder::config::{DatabaseConfig, Secret, ServiceConfig};
use crowdminder::graphql::support::{NodeType, RequestContext, global_id};
use crowdminder::tenancy;
use crowdminder::tenancy::{Access, TenantDb};
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

const HOST: &str = "team.bench.localhost";

fn p95(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64 * 0.95).ceil() as usize).min(ms.len()) - 1]
}

/// 200 members since 2023; 5 types; holidays; per member 12 requests over 2024-2026:
/// approved, pending, rejected and cancelled, spread over the types.
const FILL: &str = "
INSERT INTO team.users (email, name, role, created_at)
  SELECT 'u' || i || '@team.example', 'User ' || i, 'MEMBER', timestamptz '2023-01-01' + (i % 90) * interval '1 day'
  FROM generate_series(1, 200) i;
INSERT INTO team.leave_types (name, yearly_allowance_days, accrual, carry_over_cap_days, attachment_required_after_days)
  VALUES ('Vacation', 25, 'UPFRONT', 5, NULL), ('Sick', 10, 'UPFRONT', 0, 3),
         ('Training', 5, 'MONTHLY', 0, NULL), ('Family', 3, 'UPFRONT', 0, NULL),
         ('Overtime', 12, 'MONTHLY', 10, NULL);
INSERT INTO team.holidays (day, name)
  SELECT d, 'Holiday ' || to_char(d, 'MM-DD')
  FROM unnest(ARRAY[date '2024-01-01', '2024-05-01', '2024-12-25', '2025-01-01', '2025-05-01',
                    '2025-12-25', '2026-01-01', '2026-04-03', '2026-04-06', '2026-05-01',
                    '2026-05-14', '2026-05-25', '2026-10-03', '2026-12-25', '2026-12-26']) d;
INSERT INTO team.leave_requests (user_id, leave_type_id, first_day, last_day, working_days, status)
  SELECT u.id, 1 + (u.id + k) % 5,
         date '2024-01-08' + k * 91 + (u.id % 7)::int * 7,
         date '2024-01-08' + k * 91 + (u.id % 7)::int * 7 + 2,
         3,
         CASE WHEN k % 6 = 5 THEN 'CANCELLED' WHEN k % 6 = 4 THEN 'REJECTED'
              WHEN k >= 10 THEN 'PENDING' ELSE 'APPROVED' END
  FROM team.users u, generate_series(0, 11) k
  WHERE u.email LIKE 'u%';
ANALYZE team.users; ANALYZE team.leave_types; ANALYZE team.leave_requests; ANALYZE team.holidays;
";

fn query(ids: &[String]) -> String {
    format!(
        "{{ teamLeaveBalances(year: 2026, asOf: \"2026-09-30\", userIds: {}) {{ user {{ email }} \
           balances {{ leaveType {{ name }} year entitled accrued carriedOver taken pending remaining }} }} }}",
        serde_json::to_string(ids).unwrap()
    )
}

fn main() {
    let url = database_url();
    let runs: usize = env_or("BENCH_RUNS", 30);
    let rt = runtime();
    rt.block_on(async move {
        let mut conn = prepare(&url).await;
        let tenant = tenant(&mut conn, "team", "Team Consulting", HOST, "admin@team.example").await;
        conn.batch_execute(FILL).await.unwrap();

        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        let ids: Vec<String> = diesel_async::RunQueryDsl::load::<Id>(
            diesel::sql_query("SELECT id FROM team.users WHERE email LIKE 'u%' ORDER BY id"),
            &mut conn,
        )
        .await
            .unwrap()
            .into_iter()
            .map(|r| global_id(NodeType::User, r.id).0)
            .collect();
        let requests: Vec<Id> = diesel_async::RunQueryDsl::load(
            diesel::sql_query("SELECT count(*) AS id FROM team.leave_requests"),
            &mut conn,
        )
        .await
            .unwrap();
        println!(
            "== one tenant, {} members, 5 leave types, {} requests over 2024-2026, 15 holidays",
            ids.len(),
            requests[0].id
        );

        let mut config = ServiceConfig::with_secret(JWT_SECRET);
        config.public_url_scheme = "http".into();
        config.file_store = std::env::temp_dir()
            .join("crowdminder-bench-files")
            .to_string_lossy()
            .into_owned();
        let pool = tenancy::build_pool(&DatabaseConfig::new(url.clone(), 4)).unwrap();
        let state = App::new(pool.clone(), config, Secret::new(url.clone())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, state.router()).into_future());
        let client = reqwest::Client::new();
        let post = |token: Option<String>, body: Value| {
            let client = client.clone();
            async move {
                let mut request = client
                    .post(format!("http://{addr}/graphql"))
                    .header("Host", HOST)
                    .json(&body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let body: Value = request.send().await.unwrap().json().await.unwrap();
                assert!(body.get("errors").is_none(), "{body}");
                body["data"].clone()
            }
        };
        let login = post(
            None,
            json!({ "query": "mutation($p: String!) { login(email: \"admin@team.example\", password: $p) { token } }",
                    "variables": { "p": PASSWORD } }),
        )
        .await;
        let token = login["login"]["token"].as_str().unwrap().to_owned();
        let tenant = Arc::new(tenant);

        // The first request of a token reads its user; later ones find it cached.
        post(Some(token.clone()), json!({ "query": query(&ids[..1]) })).await;
        for n in [20, ids.len()] {
            let q = query(&ids[..n]);
            // Statements: in-process, counted by the request's unit of work.
            let unit = Arc::new(TenantDb::new(pool.clone(), Arc::clone(&tenant), Access::ReadOnly));
            let context = RequestContext::new(Arc::clone(&unit), Arc::clone(&state.services), Some(token.clone()));
            let batcher = context.batcher();
            let response = crowdminder::graphql::support::batched(
                batcher,
                state.schema.execute(async_graphql::Request::new(q.clone()).data(context)),
            )
            .await;
            unit.commit().await.unwrap();
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            let statements = unit.statements();
            // Time: through HTTP, after two warm-up requests.
            let mut ms = Vec::with_capacity(runs);
            let mut balances = 0;
            for i in 0..runs + 2 {
                let t = Instant::now();
                let data = post(Some(token.clone()), json!({ "query": q })).await;
                let elapsed = t.elapsed().as_secs_f64() * 1000.0;
                let rows = data["teamLeaveBalances"].as_array().unwrap();
                assert_eq!(rows.len(), n);
                balances = rows.iter().map(|r| r["balances"].as_array().unwrap().len()).sum();
                if i >= 2 {
                    ms.push(elapsed);
                }
            }
            println!(
                "teamLeaveBalances, {n:>3} users x 5 types ({balances:>4} balances)   {statements} statements   \
                 median {:>6.1} ms   p95 {:>6.1} ms",
                median(ms.clone()),
                p95(ms)
            );
        }
        println!("  (statements include BEGIN and COMMIT; time is the whole HTTP request on loopback,");
        println!("   authentication and JSON included, over {runs} runs)");
    });
}
