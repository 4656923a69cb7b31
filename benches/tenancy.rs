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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{JWT_SECRET, PASSWORD, binary, database_url, env_or, median, percentile, tenant};
use crowdminder::auth::tokens::JwtKeys;
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
        .map(|t| (t.primary_host.clone().unwrap(), keys.issue(t.id, 1).unwrap().0))
        .collect();
    let dir = std::env::temp_dir().join(format!("crowdminder-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let one_script = write_wrk_script(&dir.join("one.lua"), &targets[..1]);
    let spread_script = write_wrk_script(&dir.join("spread.lua"), &targets);

    let mut server = start_server(&bin, &url);
    wait_ready();
    // Warm up until every pooled connection's backend has met every tenant (its catalog
    // caches warm, as in a long-running server), and every host is resolved once.
    run_wrk(&spread_script, env_or("BENCH_WARMUP_SECONDS", 45));
    run_wrk(&one_script, 5);
    let pairs = env_or("BENCH_PAIRS", 6);
    let mut one = Vec::new();
    let mut spread = Vec::new();
    for _ in 0..pairs {
        one.push(measure(&one_script, seconds, server.id()));
        spread.push(measure(&spread_script, seconds, server.id()));
    }
    let rss = memory(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let rps = |runs: &[Run]| runs.iter().map(|r| r.rps).collect::<Vec<_>>();
    let cpu = |runs: &[Run]| runs.iter().map(|r| r.cpu_us).collect::<Vec<_>>();
    let (one_rps, spread_rps) = (median(rps(&one)), median(rps(&spread)));
    let (one_cpu, spread_cpu) = (median(cpu(&one)), median(cpu(&spread)));
    println!(
        "tenantSettings, one tenant                   {:.0?} req/s, median {one_rps:.0}",
        rps(&one)
    );
    println!(
        "tenantSettings, round-robin over {tenants:<5}      {:.0?} req/s, median {spread_rps:.0}",
        rps(&spread)
    );
    println!(
        "  cost of the spread (throughput medians)    {:.1} %",
        (1.0 - spread_rps / one_rps) * 100.0
    );
    println!(
        "server CPU per request, one / spread         {one_cpu:.0} / {spread_cpu:.0} us (medians; each run {:.0?} / {:.0?})",
        cpu(&one),
        cpu(&spread)
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
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_wrk_script(path: &Path, targets: &[(String, String)]) -> PathBuf {
    let mut lua = String::from("local targets = {\n");
    for (host, token) in targets {
        lua.push_str(&format!("  {{\"{host}\", \"Bearer {token}\"}},\n"));
    }
    lua.push_str(&format!(
        "}}\nlocal body = [[{QUERY}]]\nlocal i = math.random(#targets)\n\
         request = function()\n  i = i % #targets + 1\n  local t = targets[i]\n  \
         return wrk.format(\"POST\", \"/graphql\", {{[\"Host\"] = t[1], [\"Authorization\"] = t[2], [\"Content-Type\"] = \"application/json\"}}, body)\nend\n\
         response = function(status, headers, body)\n  if status ~= 200 or not body:find('\"timeZone\"', 1, true) then\n    error(\"bad response: \" .. status .. \" \" .. body)\n  end\nend\n"
    ));
    std::fs::write(path, lua).unwrap();
    path.to_owned()
}

fn start_server(bin: &Path, url: &str) -> Child {
    Command::new(bin)
        .args(["serve", "--no-worker", "--bind", &format!("127.0.0.1:{PORT}")])
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("DB_POOL_SIZE", "8")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_ready() {
    for _ in 0..100 {
        if let Ok(out) = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{PORT}/readyz")])
            .output()
            && out.status.success()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server did not become ready");
}

struct Run {
    rps: f64,
    /// Server CPU time (user + system) per request, in microseconds.
    cpu_us: f64,
}

/// CPU time a process has used, in clock ticks (utime + stime).
fn cpu_ticks(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()
}

fn measure(script: &Path, seconds: u64, server: u32) -> Run {
    let ticks_per_second = 100.0;
    let before = cpu_ticks(server);
    let (rps, requests) = run_wrk_counted(script, seconds);
    let used = (cpu_ticks(server) - before) / ticks_per_second;
    Run {
        rps,
        cpu_us: used * 1e6 / requests,
    }
}

/// Requests per second from one wrk run (2 threads, 32 connections).
fn run_wrk(script: &Path, seconds: u64) -> f64 {
    run_wrk_counted(script, seconds).0
}

/// Requests per second and requests completed in one wrk run.
fn run_wrk_counted(script: &Path, seconds: u64) -> (f64, f64) {
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{PORT}/graphql"))
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx") && !text.contains("bad response"),
        "errors under load:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no throughput in wrk output:\n{text}"));
    // "  123456 requests in 10.00s, ..."
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    (rps, requests)
}

/// (VmRSS, VmHWM) of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
