//! Time tracking at size: one tenant with 1,000,000 entries (50 users, 200 projects of 40
//! clients, a year of dates). Times, through the API (the release server, over loopback)
//! and as the same SQL sent directly on one connection:
//! - `billableHours` grouped by client and month over the year;
//! - a 100-row page of `timeEntries` with project, client, task and user, mid-year.
//!
//! Run with `scripts/bench.sh time`, or by hand with `BENCH_DATABASE_URL` pointing at an
//! empty database and the release binary built: `cargo bench --bench time`.
//! `BENCH_ENTRIES` (default 1000000) and `BENCH_RUNS` (default 30) adjust the run.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use chrono::NaiveDate;
use common::{
    PASSWORD, Route, database_url, env_or, median, pooler_url, prepare, run_wrk, runtime, start_server,
    tenant, write_wrk_script,
};
use crowdminder::settings::TenantSettings;
use crowdminder::time::entry_pages::{self, EntryFilter};
use crowdminder::time::reports::{self, GroupBy, ReportFilter, ReportRequest};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

const PORT: u16 = 18_182;
const HOST: &str = "big.bench.localhost";

async fn graphql(client: &reqwest::Client, token: Option<&str>, query: &str, variables: Value) -> Value {
    timed_graphql(client, token, query, variables).await.1
}

/// A request and the milliseconds until the last byte of its answer arrived (as psql's
/// `\timing` runs until the last row is in); the body is parsed after the clock stops.
async fn timed_graphql(
    client: &reqwest::Client,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (f64, Value) {
    let start = Instant::now();
    let mut request = client
        .post(format!("http://127.0.0.1:{PORT}/graphql"))
        .header("Host", HOST)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let bytes = request.send().await.unwrap().bytes().await.unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    (ms, body["data"].clone())
}

/// One kept-alive HTTP/1.1 connection to the server, spoken plainly and blocking: the
/// lightest client, as psql is to PostgreSQL, so a quick page's time is the service's and
/// not a client library's scheduling.
struct PlainHttp {
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl PlainHttp {
    fn connect() -> Self {
        let stream = std::net::TcpStream::connect(("127.0.0.1", PORT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: std::io::BufReader::new(stream),
        }
    }

    /// Posts a GraphQL request; the milliseconds to the last byte of the answer, and its data.
    fn graphql(&mut self, token: &str, query: &str, variables: Value) -> (f64, Value) {
        use std::io::{BufRead, Read, Write};
        let body = serde_json::to_vec(&json!({ "query": query, "variables": variables })).unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let start = Instant::now();
        let socket = self.stream.get_mut();
        socket.write_all(&[head.as_bytes(), &body].concat()).unwrap();
        let mut length = None;
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let mut answer = vec![0; length.expect("a sized answer")];
        self.stream.read_exact(&mut answer).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert!(answer.get("errors").is_none(), "{answer}");
        (ms, answer["data"].clone())
    }
}

/// Fills the tenant `big` in SQL: users, clients, projects, tasks and entries.
async fn fill(conn: &mut AsyncPgConnection, entries: i64) {
    conn.batch_execute(&format!(
        "INSERT INTO big.users (email, name, role, password_hash)
           SELECT 'user' || i || '@big.example', 'User ' || i, 'MEMBER', NULL FROM generate_series(2, 50) i;
         INSERT INTO big.clients (name) SELECT 'Client ' || i FROM generate_series(1, 40) i;
         INSERT INTO big.projects (client_id, code, name, hourly_rate)
           SELECT 1 + (i - 1) % 40, 'P' || i, 'Project ' || i, 80 + (i % 9) * 12.5 FROM generate_series(1, 200) i;
         INSERT INTO big.tasks (project_id, name)
           SELECT p, t FROM generate_series(1, 200) p, unnest(ARRAY['Build', 'Meetings']) t;
         INSERT INTO big.time_entries (user_id, project_id, task_id, work_date, minutes, notes,
                                       billable, hourly_rate, status)
           SELECT 1 + i % 50, 1 + (i * 7) % 200, 2 * ((i * 7) % 200) + 1 + i % 2,
                  date '2025-12-01' + (i % 365), 15 * (1 + i % 16), 'Entry ' || i,
                  i % 5 <> 0, 80 + (i % 9) * 12.5, 'APPROVED'
           FROM generate_series(1, {entries}) i;
         ANALYZE big.projects; ANALYZE big.clients; ANALYZE big.users; ANALYZE big.tasks;"
    ))
    .await
    .unwrap();
    // Vacuumed now, so autovacuum does not visit the fresh million rows (and take a core)
    // while the timings run, and index scans find the visibility map and hint bits set.
    conn.batch_execute("VACUUM (ANALYZE) big.time_entries")
        .await
        .unwrap();
}

fn main() {
    let url = database_url();
    let entries: i64 = env_or("BENCH_ENTRIES", 1_000_000);
    let runs: usize = env_or("BENCH_RUNS", 30);
    let rt = runtime();
    rt.block_on(async move {
        let mut conn = prepare(&url).await;
        tenant(&mut conn, "big", "Big Consulting", HOST, "admin@big.example").await;
        let started = Instant::now();
        fill(&mut conn, entries).await;
        println!(
            "== one tenant, {entries} entries, 50 users, 200 projects (filled in {:.1} s)",
            started.elapsed().as_secs_f64()
        );

        let mut server = start_server(PORT, 4, &url, &Route::Straight);
        let client = reqwest::Client::new();
        let login = graphql(
            &client,
            None,
            "mutation($p: String!) { login(email: \"admin@big.example\", password: $p) { token } }",
            json!({ "p": PASSWORD }),
        )
        .await;
        let token = login["login"]["token"].as_str().unwrap().to_owned();

        // The direct connection runs in the tenant's schema, as the server's unit does.
        conn.batch_execute("SET search_path = big").await.unwrap();
        let from = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let settings = TenantSettings::default();

        // billableHours by client and month over the year.
        let report_query = "query($from: NaiveDate!, $to: NaiveDate!) { billableHours(from: $from, to: $to, groupBy: [CLIENT, MONTH]) { \
            rows { client { name } month billableMinutes nonBillableMinutes amount } totals { billableMinutes amount } } }";
        let request = ReportRequest::new(from, to, vec![GroupBy::Client, GroupBy::Month], ReportFilter::default()).unwrap();
        let mut api = Vec::new();
        let mut sql = Vec::new();
        let mut rows = 0;
        for _ in 0..runs {
            let (ms, data) = timed_graphql(&client, Some(&token), report_query, json!({ "from": from, "to": to })).await;
            api.push(ms);
            rows = data["billableHours"]["rows"].as_array().unwrap().len();
            let t = Instant::now();
            let direct = reports::billable_hours(&mut conn, &settings, &request).await.unwrap();
            sql.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(direct.len(), rows + 1);
        }
        let (api_ms, sql_ms) = (median(api), median(sql));
        println!(
            "billableHours by client and month, a year   API {api_ms:>7.1} ms   SQL {sql_ms:>7.1} ms   x{:.2}  ({rows} rows)",
            api_ms / sql_ms
        );

        // A 100-row page of entries, mid-year, with project, client, task and user.
        let cursor_date = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let cursor_id: i64 = crowdminder::db::schema::time_entries::table
            .filter(crowdminder::db::schema::time_entries::work_date.eq(cursor_date))
            .select(diesel::dsl::min(crowdminder::db::schema::time_entries::id))
            .first::<Option<i64>>(&mut conn)
            .await
            .unwrap()
            .unwrap();
        let after = base64_cursor(cursor_date, cursor_id);
        let page_query = "query($after: String) { timeEntries(first: 100, after: $after) { edges { node { \
            date minutes amount notes project { name client { name } } task { name } user { email } } } } }";
        let filter = EntryFilter::default();
        // The same statement for psql, as \timing reports it: prepared (PREPARE / EXECUTE, as
        // the service runs it) and with the values written in (planned each time).
        let relations = entry_pages::PageRead::all(0);
        let page_sql = entry_pages::page_sql(&filter, relations, Some((cursor_date, cursor_id)), 101);
        // Each way runs as a block of back-to-back requests after five unmeasured ones, as
        // psql runs its statements: a page this quick is otherwise timed partly on waking
        // threads and caches that the other side's turn left cold. The blocks take turns,
        // five rounds, so a drift of the machine's speed falls on all alike.
        let (mut api, mut sql, mut prepared, mut literal) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut http = PlainHttp::connect();
        let mut round_ratios = Vec::new();
        for _round in 0..5 {
            for run in 0..runs + 5 {
                let (ms, data) = http.graphql(&token, page_query, json!({ "after": after }));
                assert_eq!(data["timeEntries"]["edges"].as_array().unwrap().len(), 100);
                if run >= 5 {
                    api.push(ms);
                }
            }
            for run in 0..runs + 5 {
                let t = Instant::now();
                let page = entry_pages::page(&mut conn, &filter, relations, Some((cursor_date, cursor_id)), 101)
                    .await
                    .unwrap();
                assert_eq!(page.len(), 101);
                if run >= 5 {
                    sql.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            prepared.extend(psql_times(&url, &page_sql, runs, true));
            literal.extend(psql_times(&url, &page_sql, runs, false));
            // This round's own ratio against psql prepared, to show how far rounds drift.
            let last = |v: &[f64]| median(v[v.len() - runs..].to_vec());
            round_ratios.push(last(&api) / last(&prepared));
        }
        let (api_ms, sql_ms) = (median(api), median(sql));
        let (prepared, literal) = (median(prepared), median(literal));
        println!(
            "timeEntries(first: 100) with relations      API {api_ms:>7.1} ms   SQL {sql_ms:>7.1} ms   x{:.2}",
            api_ms / sql_ms
        );
        println!("  (SQL: the page joined with its projects, clients, tasks and users, sent from Rust");
        println!("   on one warm connection as the service sends them, prepared and decoded; the API adds");
        println!("   BEGIN (a query's COMMIT follows its answer), authentication, GraphQL and HTTP on");
        println!("   loopback, from a plain HTTP/1.1 client on one kept-alive connection to the last byte");
        println!("   of the answer; medians of 5 x {runs})");
        println!(
            "  the same SQL in psql:  prepared {prepared:>5.2} ms  (API x{:.2})   values written in {literal:>5.2} ms  (API x{:.2})",
            api_ms / prepared,
            api_ms / literal
        );
        println!(
            "  API over psql prepared, round by round: {}",
            round_ratios
                .iter()
                .map(|r| format!("x{r:.2}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
        let _ = server.kill();
        let _ = server.wait();

        // Throughput of a page: wrk (8 connections) against a server straight to PostgreSQL,
        // one preparing each statement in its transaction, and with BENCH_POOLER_URL one
        // through pgbouncer: all up at once, measured in turn.
        let mut routes = vec![Route::Straight, Route::StraightUncached];
        routes.extend(pooler_url().map(Route::Pooler));
        let servers: Vec<(Route, u16, Child)> = routes
            .into_iter()
            .enumerate()
            .map(|(i, route)| {
                let port = PORT + 1 + i as u16;
                let child = start_server(port, 4, &url, &route);
                (route, port, child)
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("crowdminder-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = json!({ "query": page_query, "variables": { "after": after } }).to_string();
        let script = write_wrk_script(&dir.join("page.lua"), &[(HOST.to_owned(), token.clone())], &body, "\"edges\"");
        let seconds = env_or("BENCH_SECONDS", 10);
        for (_, port, _) in &servers {
            run_wrk(&script, 5, 8, *port);
        }
        let mut rates = vec![Vec::new(); servers.len()];
        for _round in 0..3 {
            for (i, (_, port, _)) in servers.iter().enumerate() {
                rates[i].push(run_wrk(&script, seconds, 8, *port).0);
            }
        }
        let straight = median(rates[0].clone());
        for ((route, _, mut child), rates) in servers.into_iter().zip(rates) {
            let rps = median(rates.clone());
            println!(
                "timeEntries(first: 100) page, wrk -c8, {:<34} {rates:.0?} req/s, median {rps:.0}  (x{:.2})",
                route.label(),
                rps / straight
            );
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// Runs the page statement and then the users statement `runs` times in psql (in the tenant's
/// schema, results discarded) and returns their summed `\timing` of each run. `sql` is
/// diesel's rendering: the text with `$n` placeholders, then `-- binds: [...]`.
fn psql_times(url: &str, page: &str, runs: usize, prepared: bool) -> Vec<f64> {
    let split = |sql: &str| -> (String, Vec<String>) {
        let (text, binds) = sql.split_once(" -- binds: ").expect("diesel's debug rendering");
        let binds = binds.trim();
        let binds = binds
            .strip_prefix('[')
            .and_then(|b| b.strip_suffix(']'))
            .expect("a list");
        // The page's binds are a date and an id.
        let values = binds.split(", ").map(|v| format!("'{v}'")).collect();
        (text.to_owned(), values)
    };
    let statements = [split(page)];
    let mut script = String::from("SET search_path = big;\n\\o /dev/null\n");
    if prepared {
        for (i, (text, _)) in statements.iter().enumerate() {
            script.push_str(&format!("PREPARE s{i} AS {text};\n"));
        }
    }
    script.push_str("\\timing on\n");
    for _ in 0..runs + 5 {
        for (i, (text, values)) in statements.iter().enumerate() {
            if prepared {
                script.push_str(&format!("EXECUTE s{i}({});\n", values.join(", ")));
            } else {
                let mut sql = text.clone();
                for (n, value) in values.iter().enumerate().rev() {
                    sql = sql.replace(&format!("${}", n + 1), value);
                }
                script.push_str(&format!("{sql};\n"));
            }
        }
    }
    let output = Command::new("psql")
        .args([url, "-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .expect("psql");
    assert!(output.status.success(), "psql failed");
    let times: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Time: "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 2 * (runs + 5), "one time per statement");
    // The first five runs warm the cache (and let PostgreSQL settle on a generic plan).
    times[10..].chunks(2).map(|pair| pair[0] + pair[1]).collect()
}

/// The opaque cursor the API gives for an entry: base64 of the JSON `[date, id]`.
fn base64_cursor(date: NaiveDate, id: i64) -> String {
    use async_graphql::connection::{CursorType, OpaqueCursor};
    OpaqueCursor((date, id)).encode_cursor()
}
