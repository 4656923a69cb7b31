//! Billing at size: one tenant, a client with 10,000 approved billable entries in a month
//! (50 people, 20 projects, 2 tasks each) and another with 500.
//! - `createInvoice` over the 10,000 (grouped by project, and one line per entry) through
//!   HTTP on loopback, against the same rows selected in bare SQL on one connection;
//! - the PDF of a 500-line invoice (`GET /invoices/{id}.pdf`).
//!
//! Run with `scripts/bench.sh billing`, or by hand with `BENCH_DATABASE_URL` pointing at an
//! empty database: `cargo bench --bench billing`. `BENCH_RUNS` (default 7).

mod common;

use std::time::Instant;

use common::{JWT_SECRET, PASSWORD, database_url, env_or, median, prepare, runtime, tenant};
use crowdminder::app::App;
use crowdminder::config::{DatabaseConfig, Secret, ServiceConfig};
use crowdminder::graphql::support::{NodeType, global_id};
use crowdminder::tenancy;
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

const HOST: &str = "bill.bench.localhost";

const FILL: &str = "
INSERT INTO bill.users (email, name, role)
  SELECT 'u' || i || '@bill.example', 'Consultant ' || i, 'MEMBER' FROM generate_series(1, 50) i;
INSERT INTO bill.clients (name, billing_email) VALUES ('Big Client AG', 'ap@big.example'), ('Small Client Ltd', 'ap@small.example');
INSERT INTO bill.projects (client_id, code, name, hourly_rate)
  SELECT 1, 'B' || i, 'Big project ' || i, 90 + i * 7.35 FROM generate_series(1, 20) i;
INSERT INTO bill.projects (client_id, code, name, hourly_rate) VALUES (2, 'S1', 'Small project', 133.33);
INSERT INTO bill.tasks (project_id, name)
  SELECT p, t FROM generate_series(1, 21) p, unnest(ARRAY['Build', 'Review']) t;
INSERT INTO bill.time_entries (user_id, project_id, task_id, work_date, minutes, notes, billable, hourly_rate, status)
  SELECT 2 + i % 50, 1 + i % 20, 2 * (i % 20) + 1 + (i / 20) % 2, date '2026-10-01' + i % 31,
         15 * (1 + i % 12), 'Work item ' || i, true, 90 + (1 + i % 20) * 7.35, 'APPROVED'
  FROM generate_series(0, 9999) i;
INSERT INTO bill.time_entries (user_id, project_id, task_id, work_date, minutes, notes, billable, hourly_rate, status)
  SELECT 2 + i % 50, 21, 41 + i % 2, date '2026-10-01' + i % 31, 7 + i % 50,
         'Übersetzung und Prüfung, Teil ' || i, true, 133.33, 'APPROVED'
  FROM generate_series(0, 499) i;
ANALYZE bill.time_entries; ANALYZE bill.projects; ANALYZE bill.users; ANALYZE bill.tasks;
";

/// The rows createInvoice gathers, as one statement.
const BARE_SQL: &str = "
SELECT te.id, te.user_id, u.name, te.project_id, p.code, p.name, te.task_id, t.name, te.work_date,
       te.minutes, te.hourly_rate, te.notes
FROM time_entries te
JOIN projects p ON p.id = te.project_id
JOIN users u ON u.id = te.user_id
LEFT JOIN tasks t ON t.id = te.task_id
WHERE p.client_id = 1 AND te.status = 'APPROVED' AND te.billable AND te.minutes IS NOT NULL
  AND te.hourly_rate IS NOT NULL AND te.work_date BETWEEN '2026-10-01' AND '2026-10-31'
  AND NOT te.id IN (SELECT time_entry_id FROM invoice_entries WHERE live)
ORDER BY te.work_date, te.id";

fn main() {
    let url = database_url();
    let runs: usize = env_or("BENCH_RUNS", 7);
    let rt = runtime();
    rt.block_on(async move {
        let mut conn = prepare(&url).await;
        tenant(&mut conn, "bill", "Bench Consulting", HOST, "admin@bill.example").await;
        conn.batch_execute(FILL).await.unwrap();
        conn.batch_execute("SET search_path = bill").await.unwrap();
        println!("== one tenant; a client with 10,000 approved billable entries in October, another with 500");

        let mut config = ServiceConfig::with_secret(JWT_SECRET);
        config.file_store = std::env::temp_dir()
            .join("crowdminder-bench-files")
            .to_string_lossy()
            .into_owned();
        let pool = tenancy::build_pool(&DatabaseConfig::new(url.clone(), 4)).unwrap();
        let state = App::new(pool, config, Secret::new(url.clone())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(axum::serve(listener, state.router()).into_future());
        let client = reqwest::Client::new();
        let post = |token: Option<String>, query: &str, variables: Value| {
            let request = client
                .post(format!("http://{addr}/graphql"))
                .header("Host", HOST)
                .json(&json!({ "query": query, "variables": variables }));
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            async move {
                let body: Value = request.send().await.unwrap().json().await.unwrap();
                assert!(body.get("errors").is_none(), "{body}");
                body["data"].clone()
            }
        };
        let login = post(
            None,
            "mutation($p: String!) { login(email: \"admin@bill.example\", password: $p) { token } }",
            json!({ "p": PASSWORD }),
        )
        .await;
        let token = login["login"]["token"].as_str().unwrap().to_owned();
        let big = global_id(NodeType::Client, 1).0;
        let small = global_id(NodeType::Client, 2).0;
        let create = "mutation($c: ID!, $g: InvoiceGroupBy!) { createInvoice(input: {clientId: $c, from: \"2026-10-01\", \
            to: \"2026-10-31\", groupBy: $g}) { id total lines { id } } }";
        let delete = "mutation($id: ID!) { deleteInvoice(id: $id) }";

        // Bare SQL: the rows createInvoice reads (nothing is on an invoice between runs).
        let mut sql = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            conn.batch_execute(BARE_SQL).await.unwrap();
            sql.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let sql_ms = median(sql);
        for group in ["PROJECT", "ENTRY"] {
            let mut api = Vec::new();
            let mut lines = 0;
            let mut total = Value::Null;
            for _ in 0..runs {
                let t = Instant::now();
                let data = post(Some(token.clone()), create, json!({ "c": big, "g": group })).await;
                api.push(t.elapsed().as_secs_f64() * 1000.0);
                lines = data["createInvoice"]["lines"].as_array().unwrap().len();
                total = data["createInvoice"]["total"].clone();
                post(Some(token.clone()), delete, json!({ "id": data["createInvoice"]["id"] })).await;
            }
            let api_ms = median(api);
            println!(
                "createInvoice, 10,000 entries by {group:<7} ({lines:>5} lines, total {total})   API {api_ms:>7.1} ms   \
                 bare SELECT {sql_ms:>6.1} ms   x{:.1}",
                api_ms / sql_ms
            );
        }
        println!("  (the API also writes the invoice, its lines and 10,000 entry links, and answers over HTTP)");

        // The PDF of a 500-line invoice.
        let draft = post(Some(token.clone()), create, json!({ "c": small, "g": "ENTRY" })).await;
        let id = draft["createInvoice"]["id"].as_str().unwrap().to_owned();
        assert_eq!(draft["createInvoice"]["lines"].as_array().unwrap().len(), 500);
        post(Some(token.clone()), "mutation($id: ID!) { issueInvoice(id: $id) { number } }", json!({ "id": id })).await;
        let mut ms = Vec::new();
        let mut size = 0;
        for _ in 0..runs + 1 {
            let t = Instant::now();
            let response = client
                .get(format!("http://{addr}/invoices/{id}.pdf"))
                .header("Host", HOST)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            let bytes = response.bytes().await.unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            size = bytes.len();
        }
        ms.remove(0);
        println!(
            "PDF of a 500-line invoice                     median {:>7.1} ms   ({} KiB)",
            median(ms),
            size / 1024
        );
    });
}
