//! Tenancy at scale: what 1,000 tenants cost.
//!
//! Run with `scripts/bench.sh tenancy` (it builds the release binary, starts a private
//! PostgreSQL and installs wrk), or by hand with `BENCH_DATABASE_URL` pointing at an empty
//! database: `cargo bench --bench tenancy`. `BENCH_TENANTS` (default 1000),
//! `BENCH_SECONDS` (each wrk run, default 10), `BENCH_PAIRS` (default 6) and
//! `BENCH_WARMUP_SECONDS` (default 45) adjust the run.
//!
//! It measures:
//! - `tenants create`, through the command line (process start included) and in-process;
//! - `migrate` with nothing pending, over every tenant;
//! - throughput of an authenticated `tenantSettings` query from wrk on loopback, all on one
//!   tenant against round-robin over every tenant: runs alternate (one, spread, one, ...)
//!   so drift on a shared machine hits both alike, and medians are compared; with the
//!   server's CPU time per request, which load on other tenants of the host disturbs less;
//! - the server's resident memory after that load.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Instant;

use common::{
    JWT_SECRET, PASSWORD, Route, binary, cpu_ticks, database_url, env_or, median, memory, percentile,
    pooler_url, run_wrk, start_server, tenant, write_wrk_script,
};
use crowdminder::auth::tokens::{JwtKeys, TokenSubject};
use crowdminder::config::ServiceConfig;
use crowdminder::tenancy;
use crowdminder::tenancy::migrations;

const PORT: u16 = 18_181;
const QUERY: &str = r#"{"query":"{ tenantSettings { timeZone timecaptureIntervalMinutes billableHoursInWorkingDay currency siteUrl } }"}"#;

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label:<44} n={:<5} median {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms",
        ms.len(),
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        ms[ms.len() - 1]
    );
}

fn host(i: usize) -> String {
    format!("t{i:04}.bench.localhost")
}

fn main() {
    let url = database_url();
    let tenants: usize = env_or("BENCH_TENANTS", 1000);
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let bin = binary();
    let rt = tokio::runtime::Runtime::new().unwrap();

    println!(
        "== {tenants} tenants, database {}",
        url.rsplit('/').next().unwrap_or_default()
    );
    let cli = |args: &[&str]| {
        let started = Instant::now();
        let out = Command::new(&bin)
            .args(args)
            .env("DATABASE_URL", &url)
            .env("CROWDMINDER_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        started.elapsed().as_secs_f64() * 1000.0
    };
    cli(&["migrate"]);

    // The first tenants through the command line, one at a time, as an operator would.
    let through_cli = tenants.min(20);
    let cli_times: Vec<f64> = (0..through_cli)
        .map(|i| {
            let schema = format!("t{i:04}");
            cli(&[
                "tenants",
                "create",
                &schema,
                "--host",
                &host(i),
                "--name",
                &schema,
                "--admin-email",
                "admin@bench.example",
            ])
        })
        .collect();
    summary("tenants create (CLI process, sequential)", cli_times);

    // The rest in-process, four at a time.
    let in_process: Vec<f64> = rt.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(through_cli));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let url = url.clone();
            let next = Arc::clone(&next);
            workers.push(tokio::spawn(async move {
                let mut conn = tenancy::connect(&url).await.unwrap();
                let mut times = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= tenants {
                        break times;
                    }
                    let schema = format!("t{i:04}");
                    let started = Instant::now();
                    tenant(&mut conn, &schema, &schema, &host(i), "admin@bench.example").await;
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap());
        }
        all
    });
    if !in_process.is_empty() {
        summary("tenants create (in-process, 4 at a time)", in_process);
    }

    // migrate with nothing pending.
    let migrate_times: Vec<f64> = (0..3).map(|_| cli(&["migrate", "--jobs", "8"])).collect();
    summary(
        &format!("migrate, nothing pending, {tenants} tenants"),
        migrate_times,
    );
    rt.block_on(async {
        let mut conn = tenancy::connect(&url).await.unwrap();
        let started = Instant::now();
        let schemas = crowdminder::tenancy::registry::all_schemas(&mut conn)
            .await
            .unwrap();
        for s in &schemas {
            assert!(migrations::migrate_tenant(&mut conn, s).await.unwrap().is_empty());
        }
        println!(
            "{:<44} {:.0} ms over one connection",
            "  (check of every tenant, in-process)",
            started.elapsed().as_secs_f64() * 1000.0
        );
    });

    // Throughput: wrk against the release server.
    let keys = JwtKeys::new(&ServiceConfig::with_secret(JWT_SECRET)).unwrap();
    let registry = rt.block_on(async {
        let mut conn = tenancy::connect(&url).await.unwrap();
        crowdminder::tenancy::registry::list(&mut conn).await.unwrap()
    });
    let targets: Vec<(String, String)> = registry
        .iter()
        .map(|t| {
            (
                t.primary_host.clone().unwrap(),
                keys.issue(
                    t.id,
                    TokenSubject {
                        user_id: 1,
                        version: 0,
                    },
                )
                .unwrap()
                .0,
            )
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("crowdminder-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let expect = "\"timeZone\"";
    let one_script = write_wrk_script(&dir.join("one.lua"), &targets[..1], QUERY, expect);
    let spread_script = write_wrk_script(&dir.join("spread.lua"), &targets, QUERY, expect);

    // One server straight to PostgreSQL and, with BENCH_POOLER_URL, one through pgbouncer,
    // both up for the whole run and measured in turn, so drift hits both alike.
    let mut routes = vec![Route::Straight];
    routes.extend(pooler_url().map(Route::Pooler));
    let mut servers: Vec<Served> = routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| Served {
            port: PORT + i as u16,
            child: start_server(PORT + i as u16, 8, &url, &route),
            route,
            one: Vec::new(),
            spread: Vec::new(),
        })
        .collect();
    // Warm up until every pooled connection's backend has met every tenant (its catalog
    // caches warm, as in a long-running server), and every host is resolved once.
    for server in &servers {
        run_wrk(
            &spread_script,
            env_or("BENCH_WARMUP_SECONDS", 45),
            32,
            server.port,
        );
        run_wrk(&one_script, 5, 32, server.port);
    }
    let pairs = env_or("BENCH_PAIRS", 6);
    for _ in 0..pairs {
        for server in &mut servers {
            let pid = server.child.id();
            server.one.push(measure(&one_script, seconds, pid, server.port));
            server
                .spread
                .push(measure(&spread_script, seconds, pid, server.port));
        }
    }
    let rps = |runs: &[Run]| runs.iter().map(|r| r.rps).collect::<Vec<_>>();
    let cpu = |runs: &[Run]| runs.iter().map(|r| r.cpu_us).collect::<Vec<_>>();
    let mut straight = None;
    for server in &mut servers {
        let rss = memory(server.child.id());
        let _ = server.child.kill();
        let _ = server.child.wait();
        let (one, spread) = (&server.one, &server.spread);
        let (one_rps, spread_rps) = (median(rps(one)), median(rps(spread)));
        let (one_cpu, spread_cpu) = (median(cpu(one)), median(cpu(spread)));
        println!("-- {}", server.route.label());
        println!(
            "tenantSettings, one tenant                   {:.0?} req/s, median {one_rps:.0}",
            rps(one)
        );
        println!(
            "tenantSettings, round-robin over {tenants:<5}      {:.0?} req/s, median {spread_rps:.0}",
            rps(spread)
        );
        println!(
            "  cost of the spread (throughput medians)    {:.1} %",
            (1.0 - spread_rps / one_rps) * 100.0
        );
        println!(
            "server CPU per request, one / spread         {one_cpu:.0} / {spread_cpu:.0} us (medians; each run {:.0?} / {:.0?})",
            cpu(one),
            cpu(spread)
        );
        println!(
            "  cost of the spread (CPU medians)           {:.1} %",
            (spread_cpu / one_cpu - 1.0) * 100.0
        );
        println!(
            "server memory after the load                 VmRSS {} MB, VmHWM {} MB",
            rss.0 / 1024,
            rss.1 / 1024
        );
        match straight {
            None => straight = Some((one_rps, spread_rps)),
            Some((s_one, s_spread)) => println!(
                "  against straight, one / spread             x{:.2} / x{:.2} (throughput medians)",
                one_rps / s_one,
                spread_rps / s_spread
            ),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server under measurement, and its runs.
struct Served {
    route: Route,
    port: u16,
    child: Child,
    one: Vec<Run>,
    spread: Vec<Run>,
}

struct Run {
    rps: f64,
    /// Server CPU time (user + system) per request, in microseconds.
    cpu_us: f64,
}

fn measure(script: &Path, seconds: u64, server: u32, port: u16) -> Run {
    let ticks_per_second = 100.0;
    let before = cpu_ticks(server);
    let (rps, requests) = run_wrk(script, seconds, 32, port);
    let used = (cpu_ticks(server) - before) / ticks_per_second;
    Run {
        rps,
        cpu_us: used * 1e6 / requests,
    }
}
