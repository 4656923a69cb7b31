//! The API's reads against PostgreSQL's own floor, in the same run.
//!
//! A release server (`serve --no-worker`, a pool of 8) on loopback, and wrk with 8
//! connections, 10 s a run, each read and its floor taking turns over three rounds. For
//! each read it prints the medians of req/s, p50 and p99, and the CPU per request of the
//! server and of PostgreSQL (from /proc: the CPU used over the run over the requests
//! answered); then pgbench (prepared, 8 clients) running the leanest correct SQL for the
//! same read as one transaction (`BEGIN READ ONLY`, `set_config`, the statement, `COMMIT`):
//! its tps and PostgreSQL CPU per transaction. Then each read's latency with one
//! connection, and the server's resident memory after the load and after a spread over
//! every tenant.
//!
//! Data: the tenant `acme` with 50 users, 5 clients, 20 projects, 2,000 entries, 500
//! timesheets, 500 leave requests of 2 types and 200 invoices (the pages); the tenant `big` with 100,000 entries over a year (the report); and empty tenants
//! up to `BENCH_TENANTS` (default 1,000) for the spread.
//!
//! Run with `scripts/bench.sh api`. `BENCH_SECONDS` (10), `BENCH_ROUNDS` (3),
//! `BENCH_TENANTS` (1000) adjust it; `BENCH_READS` (a comma-separated list of parts of
//! the reads' names) runs only the reads it names.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{
    JWT_SECRET, Route, WrkRun, cpu_ticks, database_url, env_or, median, memory, prepare, runtime,
    start_server, stat_ticks, tenant, write_wrk_script, wrk_run,
};
use crowdminder::auth::tokens::{JwtKeys, TokenSubject};
use crowdminder::config::ServiceConfig;
use crowdminder::graphql::support::{NodeType, global_id};
use crowdminder::settings::TenantSettings;
use crowdminder::tenancy;
use crowdminder::time::reports::{self, GroupBy, ReportFilter, ReportRequest};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};

const PORT: u16 = 18_190;
const ACME: &str = "acme.bench.localhost";
const BIG: &str = "big.bench.localhost";

/// One read: its GraphQL, the host it is asked on, the text every answer holds, and the
/// leanest correct SQL that answers it (in the tenant's schema).
struct Read {
    name: &'static str,
    host: &'static str,
    query: String,
    expect: &'static str,
    schema: &'static str,
    floor: String,
}

fn reads(report_sql: String) -> Vec<Read> {
    vec![
        Read {
            name: "timeEntries(first: 20), project, user",
            host: ACME,
            query: "{ timeEntries(first: 20) { edges { node { id minutes startedAt project { name } user { name email } } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT e.id, e.minutes, e.started_at, e.work_date, p.name, u.name, u.email \
                    FROM time_entries e JOIN projects p ON p.id = e.project_id JOIN users u ON u.id = e.user_id \
                    ORDER BY e.work_date, e.id LIMIT 21;"
                .to_owned(),
        },
        Read {
            name: "timeEntries(first: 100), project, client, user",
            host: ACME,
            query: "{ timeEntries(first: 100) { edges { node { id date minutes project { name client { name } } user { name } } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT e.id, e.work_date, e.minutes, p.name, c.name, u.name \
                    FROM time_entries e JOIN projects p ON p.id = e.project_id JOIN clients c ON c.id = p.client_id \
                    JOIN users u ON u.id = e.user_id ORDER BY e.work_date, e.id LIMIT 101;"
                .to_owned(),
        },
        Read {
            name: "me { email }",
            host: ACME,
            query: "{ me { email } }".to_owned(),
            expect: "\"email\"",
            schema: "acme",
            floor: "SELECT email FROM users WHERE id = 1;".to_owned(),
        },
        Read {
            name: "tenantSettings",
            host: ACME,
            query: "{ tenantSettings { timeZone currency workWeek invoiceDueDays } }".to_owned(),
            expect: "\"timeZone\"",
            schema: "acme",
            floor: "SELECT key, value FROM settings;".to_owned(),
        },
        Read {
            name: "clients(first: 20)",
            host: ACME,
            query: "{ clients(first: 20) { edges { node { id name } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT id, name FROM clients ORDER BY id LIMIT 21;".to_owned(),
        },
        Read {
            name: "project(id), client",
            host: ACME,
            query: format!(
                "{{ project(id: \"{}\") {{ name client {{ name }} }} }}",
                global_id(NodeType::Project, 3).as_str()
            ),
            expect: "\"client\"",
            schema: "acme",
            floor: "SELECT p.name, c.name FROM projects p JOIN clients c ON c.id = p.client_id WHERE p.id = 3;"
                .to_owned(),
        },
        Read {
            name: "projects(first: 20), client",
            host: ACME,
            query: "{ projects(first: 20) { edges { node { id name client { name } } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT p.id, p.name, c.name FROM projects p JOIN clients c ON c.id = p.client_id \
                    ORDER BY p.id LIMIT 21;"
                .to_owned(),
        },
        Read {
            name: "users(first: 20)",
            host: ACME,
            query: "{ users(first: 20) { edges { node { id name email } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT id, name, email FROM users ORDER BY id LIMIT 21;".to_owned(),
        },
        Read {
            name: "timesheets(first: 20), user",
            host: ACME,
            query: "{ timesheets(first: 20) { edges { node { id weekStart status user { name } } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT t.id, t.week_start, t.status, u.name FROM timesheets t JOIN users u ON u.id = t.user_id \
                    ORDER BY t.id LIMIT 21;"
                .to_owned(),
        },
        Read {
            name: "leaveRequests(first: 20), type, user",
            host: ACME,
            query: "{ leaveRequests(first: 20) { edges { node { id firstDay lastDay workingDays status leaveType { name } user { name } } } } }"
                .to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT r.id, r.first_day, r.last_day, r.working_days, r.status, t.name, u.name \
                    FROM leave_requests r JOIN leave_types t ON t.id = r.leave_type_id JOIN users u ON u.id = r.user_id \
                    ORDER BY r.id LIMIT 21;"
                .to_owned(),
        },
        Read {
            name: "invoices(first: 20), client",
            host: ACME,
            query: "{ invoices(first: 20) { edges { node { id number status total client { name } } } } }".to_owned(),
            expect: "\"edges\"",
            schema: "acme",
            floor: "SELECT i.id, i.number, i.status, i.total, c.name FROM invoices i JOIN clients c ON c.id = i.client_id \
                    ORDER BY i.id LIMIT 21;"
                .to_owned(),
        },
        Read {
            name: "leaveBalances(year: 2026)",
            host: ACME,
            query: "{ leaveBalances(year: 2026) { leaveType { name } entitled taken pending remaining } }".to_owned(),
            expect: "\"remaining\"",
            schema: "acme",
            floor: "SELECT t.id, t.name, t.yearly_allowance_days, \
                    coalesce(sum(r.working_days) FILTER (WHERE r.status = 'APPROVED'), 0), \
                    coalesce(sum(r.working_days) FILTER (WHERE r.status = 'PENDING'), 0) \
                    FROM leave_types t LEFT JOIN leave_requests r ON r.leave_type_id = t.id AND r.user_id = 1 \
                    AND r.first_day <= '2026-12-31' AND r.last_day >= '2026-01-01' GROUP BY t.id ORDER BY t.id;"
                .to_owned(),
        },
        Read {
            name: "billableHours by client and month, a year",
            host: BIG,
            query: "{ billableHours(from: \"2025-12-01\", to: \"2026-11-30\", groupBy: [CLIENT, MONTH]) { rows { client { name } month billableMinutes amount } totals { billableMinutes amount } } }".to_owned(),
            expect: "\"rows\"",
            schema: "big",
            floor: report_sql,
        },
    ]
}

/// Fills `acme` (pages) and `big` (the report) in SQL.
async fn fill(conn: &mut AsyncPgConnection) {
    conn.batch_execute(
        "INSERT INTO acme.users (email, name, role, password_hash)
           SELECT 'user' || i || '@acme.example', 'User ' || i, 'MEMBER', NULL FROM generate_series(2, 50) i;
         INSERT INTO acme.clients (name) SELECT 'Client ' || i FROM generate_series(1, 5) i;
         INSERT INTO acme.projects (client_id, code, name, hourly_rate)
           SELECT 1 + (i - 1) % 5, 'P' || i, 'Project ' || i, 90 + i FROM generate_series(1, 20) i;
         INSERT INTO acme.time_entries (user_id, project_id, work_date, minutes, notes, billable, hourly_rate, status)
           SELECT 1 + i % 50, 1 + (i * 7) % 20, date '2026-09-01' + (i % 60), 15 * (1 + i % 16), 'Entry ' || i,
                  i % 5 <> 0, 100, 'APPROVED'
           FROM generate_series(1, 2000) i;
         INSERT INTO acme.timesheets (user_id, week_start, status)
           SELECT 1 + i % 50, date '2026-06-01' + 7 * (i / 50), 'SUBMITTED' FROM generate_series(0, 499) i;
         INSERT INTO acme.leave_types (name, yearly_allowance_days) VALUES ('Vacation', 25), ('Sick', 10);
         INSERT INTO acme.leave_requests (user_id, leave_type_id, first_day, last_day, working_days, status)
           SELECT 1 + i % 50, 1 + i % 2, date '2026-01-05' + 7 * (i / 50), date '2026-01-05' + 7 * (i / 50), 1,
                  CASE WHEN i % 3 = 0 THEN 'PENDING' ELSE 'APPROVED' END
           FROM generate_series(0, 499) i;
         INSERT INTO acme.invoices (client_id, group_by, period_from, period_to, currency, created_by, status,
                                    number, number_year, number_seq, issue_date, due_date, subtotal, total)
           SELECT 1 + i % 5, 'PROJECT', date '2026-01-01', date '2026-01-31', 'EUR', 1, 'ISSUED',
                  'INV-' || i, 2026, i, date '2026-02-01', date '2026-03-01', 1000, 1000
           FROM generate_series(1, 200) i;
         INSERT INTO big.users (email, name, role, password_hash)
           SELECT 'user' || i || '@big.example', 'User ' || i, 'MEMBER', NULL FROM generate_series(2, 50) i;
         INSERT INTO big.clients (name) SELECT 'Client ' || i FROM generate_series(1, 40) i;
         INSERT INTO big.projects (client_id, code, name, hourly_rate)
           SELECT 1 + (i - 1) % 40, 'P' || i, 'Project ' || i, 80 + (i % 9) * 12.5 FROM generate_series(1, 200) i;
         INSERT INTO big.time_entries (user_id, project_id, work_date, minutes, notes, billable, hourly_rate, status)
           SELECT 1 + i % 50, 1 + (i * 7) % 200, date '2025-12-01' + (i % 365), 15 * (1 + i % 16), 'Entry ' || i,
                  i % 5 <> 0, 80 + (i % 9) * 12.5, 'APPROVED'
           FROM generate_series(1, 100000) i;",
    )
    .await
    .unwrap();
    conn.batch_execute(
        "VACUUM (ANALYZE) acme.time_entries, acme.users, acme.projects, acme.clients, acme.timesheets, \
         acme.leave_types, acme.leave_requests, acme.invoices, big.time_entries, big.projects, big.clients",
    )
    .await
    .unwrap();
}

/// CPU ticks used so far by PostgreSQL: every live PostgreSQL process's own, and what the
/// ones that ended left in their parent's count (pgbench's backends end with each run).
/// The benchmark's cluster is the only busy one on the machine.
fn postgres_ticks() -> f64 {
    let mut ticks = 0.0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat.contains("(postgres)") {
            ticks += stat_ticks(&stat).iter().sum::<f64>();
        }
    }
    ticks
}

const TICKS_PER_SECOND: f64 = 100.0;

/// One measured run: throughput, latency and CPU.
#[derive(Clone, Copy, Default)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_us: f64,
    postgres_us: f64,
}

fn measure_api(script: &Path, seconds: u64, connections: usize, server: u32, port: u16) -> Run {
    let (server_before, pg_before) = (cpu_ticks(server), postgres_ticks());
    let WrkRun {
        rps,
        requests,
        p50_ms,
        p99_ms,
    } = wrk_run(script, seconds, connections, port);
    let server_used = (cpu_ticks(server) - server_before) / TICKS_PER_SECOND;
    let pg_used = (postgres_ticks() - pg_before) / TICKS_PER_SECOND;
    Run {
        rps,
        p50_ms,
        p99_ms,
        server_us: server_used * 1e6 / requests,
        postgres_us: pg_used * 1e6 / requests,
    }
}

/// pgbench running `script` (prepared, 8 clients) for `seconds`: (tps, PostgreSQL CPU
/// per transaction in us).
fn measure_floor(url: &str, script: &Path, seconds: u64) -> (f64, f64) {
    let pgbench = Path::new(
        &String::from_utf8(
            Command::new("sh")
                .args([
                    "-c",
                    "ls -d /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -n 1",
                ])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_owned(),
    )
    .to_owned();
    let before = postgres_ticks();
    let out = Command::new(&pgbench)
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            "8",
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(script)
        .arg(url)
        .output()
        .expect("pgbench");
    let used = (postgres_ticks() - before) / TICKS_PER_SECOND;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"));
    let transactions: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|v| v.split('/').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no transaction count in pgbench output:\n{text}"));
    (tps, used * 1e6 / transactions)
}

fn main() {
    let url = database_url();
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let tenants: usize = env_or("BENCH_TENANTS", 1000).max(2);
    let rt = runtime();
    let (registry, report_sql) = rt.block_on(async {
        let mut conn = prepare(&url).await;
        tenant(&mut conn, "acme", "Acme Consulting", ACME, "admin@acme.example").await;
        tenant(&mut conn, "big", "Big Consulting", BIG, "admin@big.example").await;
        fill(&mut conn).await;
        // The rest, empty, four at a time.
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(2));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (url, next) = (url.clone(), Arc::clone(&next));
            workers.push(tokio::spawn(async move {
                let mut conn = tenancy::connect(&url).await.unwrap();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= tenants {
                        break;
                    }
                    let schema = format!("t{i:04}");
                    let host = format!("t{i:04}.bench.localhost");
                    tenant(&mut conn, &schema, &schema, &host, "admin@bench.example").await;
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let request = ReportRequest::new(
            chrono::NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            vec![GroupBy::Client, GroupBy::Month],
            ReportFilter::default(),
        )
        .unwrap();
        let sql = diesel::debug_query::<diesel::pg::Pg, _>(&reports::report_query(
            &TenantSettings::default(),
            &request,
        ))
        .to_string();
        let text = sql.split_once(" -- binds: ").expect("diesel's debug rendering").0;
        let text = text.replace("$1", "'2025-12-01'").replace("$2", "'2026-11-30'");
        let registry = crowdminder::tenancy::registry::list(&mut conn).await.unwrap();
        (registry, format!("{text};"))
    });
    println!(
        "== {} tenants; acme: 50 users, 20 projects, 2,000 entries, 500 timesheets, 500 leave requests, 200 invoices; big: 100,000 entries over a year",
        registry.len()
    );

    let keys = JwtKeys::new(&ServiceConfig::with_secret(JWT_SECRET)).unwrap();
    let admin = TokenSubject {
        user_id: 1,
        version: 0,
    };
    let token_of = |host: &str| {
        let t = registry
            .iter()
            .find(|t| t.primary_host.as_deref() == Some(host))
            .expect("the tenant");
        keys.issue(t.id, admin).unwrap().0
    };
    let dir = std::env::temp_dir().join(format!("crowdminder-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let only = std::env::var("BENCH_READS").unwrap_or_default();
    let reads: Vec<Read> = reads(report_sql)
        .into_iter()
        .filter(|r| only.split(',').any(|part| r.name.contains(part.trim())))
        .collect();
    let scripts: Vec<(std::path::PathBuf, std::path::PathBuf)> = reads
        .iter()
        .enumerate()
        .map(|(i, read)| {
            let body = serde_json::json!({ "query": read.query }).to_string();
            let api = write_wrk_script(
                &dir.join(format!("read{i}.lua")),
                &[(read.host.to_owned(), token_of(read.host))],
                &body,
                read.expect,
            );
            let floor = dir.join(format!("floor{i}.sql"));
            std::fs::write(
                &floor,
                format!(
                    "BEGIN READ ONLY;\nSELECT set_config('search_path', '\"{}\"', true), set_config('statement_timeout', '5000', true);\n{}\nCOMMIT;\n",
                    read.schema, read.floor
                ),
            )
            .unwrap();
            (api, floor)
        })
        .collect();

    let server = start_server(PORT, 8, &url, &Route::Straight);
    let pid = server.id();
    // Warm-up: every read, and every floor, once.
    for (api, floor) in &scripts {
        wrk_run(api, 3, 8, PORT);
        measure_floor(&url, floor, 2);
    }
    let mut api_runs = vec![Vec::new(); reads.len()];
    let mut floor_runs = vec![Vec::new(); reads.len()];
    for _ in 0..rounds {
        for (i, (api, floor)) in scripts.iter().enumerate() {
            api_runs[i].push(measure_api(api, seconds, 8, pid, PORT));
            floor_runs[i].push(measure_floor(&url, floor, seconds));
        }
    }
    println!(
        "\n{:<48} {:>8} {:>8} {:>8} {:>9} {:>9} | {:>8} {:>9} | {:>6} {:>6}",
        "read (wrk -c8, medians)",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server us",
        "pg us",
        "floor tps",
        "floor pg",
        "% tps",
        "pg x"
    );
    for (i, read) in reads.iter().enumerate() {
        let m = |f: fn(&Run) -> f64| median(api_runs[i].iter().map(f).collect());
        let floor_tps = median(floor_runs[i].iter().map(|r| r.0).collect());
        let floor_pg = median(floor_runs[i].iter().map(|r| r.1).collect());
        let (rps, pg) = (m(|r| r.rps), m(|r| r.postgres_us));
        println!(
            "{:<48} {rps:>8.0} {:>8.2} {:>8.2} {:>9.0} {pg:>9.0} | {floor_tps:>9.0} {floor_pg:>9.0} | {:>5.0}% {:>6.2}",
            read.name,
            m(|r| r.p50_ms),
            m(|r| r.p99_ms),
            m(|r| r.server_us),
            rps / floor_tps * 100.0,
            pg / floor_pg,
        );
        println!(
            "  runs: {:.0?} req/s; floor {:.0?} tps",
            api_runs[i].iter().map(|r| r.rps).collect::<Vec<_>>(),
            floor_runs[i].iter().map(|r| r.0).collect::<Vec<_>>()
        );
    }

    // One connection: each read's latency, taking turns.
    let mut single = vec![Vec::new(); reads.len()];
    for _ in 0..rounds {
        for (i, (api, _)) in scripts.iter().enumerate() {
            single[i].push(wrk_run(api, 5, 1, PORT).p50_ms);
        }
    }
    println!("\none connection (wrk -c1), p50 ms, median of {rounds} runs of 5 s:");
    let singles: Vec<f64> = single.into_iter().map(median).collect();
    for (read, ms) in reads.iter().zip(&singles) {
        println!("  {:<46} {ms:.3}", read.name);
    }
    let single_of = |name: &str| {
        reads
            .iter()
            .position(|r| r.name.starts_with(name))
            .map(|i| singles[i])
    };
    if let (Some(me), Some(settings)) = (single_of("me "), single_of("tenantSettings")) {
        println!("  me over tenantSettings: {:+.3} ms", me - settings);
    }

    let after_load = memory(pid);
    // Every tenant in turn: me and tenantSettings over all of them.
    let targets: Vec<(String, String)> = registry
        .iter()
        .map(|t| {
            let host = t.primary_host.clone().unwrap();
            let token = keys.issue(t.id, admin).unwrap().0;
            (host, token)
        })
        .collect();
    let spread = write_wrk_script(
        &dir.join("spread.lua"),
        &targets,
        &serde_json::json!({ "query": "{ me { email } tenantSettings { timeZone } }" }).to_string(),
        "\"email\"",
    );
    let spread_run = measure_api(&spread, seconds * 3, 8, pid, PORT);
    let after_spread = memory(pid);
    println!(
        "\nme + tenantSettings round-robin over {} tenants: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        targets.len(),
        spread_run.rps,
        spread_run.p50_ms,
        spread_run.p99_ms
    );
    println!(
        "server memory: after the reads VmRSS {} MB; after the spread VmRSS {} MB, VmHWM {} MB",
        after_load.0 / 1024,
        after_spread.0 / 1024,
        after_spread.1 / 1024
    );
    let mut server = server;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
