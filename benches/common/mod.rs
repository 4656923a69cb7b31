//! What the benchmarks share: their settings from the environment, the figures they
//! print, and the set-up of a benchmark database (run them with `scripts/bench.sh NAME`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crowdminder::app::{FirstAdmin, create_tenant};
use crowdminder::config::Secret;
use crowdminder::tenancy::registry::NewTenant;
use crowdminder::tenancy::{self, Tenant, migrations};
use diesel_async::AsyncPgConnection;

pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-42";
/// Every benchmark tenant's admin signs in with this.
pub const PASSWORD: &str = "bench-admin-password";

/// A setting from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The (empty) database a benchmark fills, from `BENCH_DATABASE_URL`.
pub fn database_url() -> String {
    std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL: an empty database to fill")
}

/// The runtime a benchmark runs in. reqwest is built without a default TLS provider in
/// this project: ring is installed here.
pub fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A connection to the benchmark database, `public` migrated.
pub async fn prepare(url: &str) -> AsyncPgConnection {
    let mut conn = tenancy::connect(url).await.unwrap();
    migrations::migrate_public(&mut conn).await.unwrap();
    conn
}

/// A tenant made as production makes one, its admin `admin_email` with [`PASSWORD`].
pub async fn tenant(
    conn: &mut AsyncPgConnection,
    schema: &str,
    name: &str,
    host: &str,
    admin_email: &str,
) -> Tenant {
    create_tenant(
        conn,
        &NewTenant::parse(schema, name, host).unwrap(),
        FirstAdmin {
            email: admin_email.into(),
            name: "Admin".into(),
            password: Secret::new(PASSWORD),
        },
    )
    .await
    .unwrap()
}

/// The release binary, which the benchmarks that time a server process run.
pub fn binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/crowdminder");
    assert!(
        path.exists(),
        "build the release binary first: cargo build --release"
    );
    path
}

/// The middle value (of an even count, the mean of the two in the middle).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The value at fraction `p` of `sorted`, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The benchmark database through pgbouncer in transaction mode, from `BENCH_POOLER_URL`
/// (`scripts/bench.sh` starts one), for the figures that compare the two.
pub fn pooler_url() -> Option<String> {
    std::env::var("BENCH_POOLER_URL").ok().filter(|u| !u.is_empty())
}

/// How a benchmark's server reaches PostgreSQL.
pub enum Route {
    /// Straight, with the default statement handling (kept per connection).
    Straight,
    /// Straight, with each statement prepared in its own transaction
    /// (`DB_STATEMENT_CACHE=off`, what a pooler needs).
    StraightUncached,
    /// Pooled work through this pooler URL; the listener straight to PostgreSQL.
    Pooler(String),
}

impl Route {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Straight => "straight",
            Self::StraightUncached => "straight, DB_STATEMENT_CACHE=off",
            Self::Pooler(_) => "through pgbouncer",
        }
    }
}

/// The release server (no worker, a pool of `pool_size`) on `port` of loopback, on the
/// database `url` by `route`; it inherits the environment. Waits until it is ready.
pub fn start_server(port: u16, pool_size: usize, url: &str, route: &Route) -> Child {
    let mut command = Command::new(binary());
    command
        .args(["serve", "--no-worker", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("DB_POOL_SIZE", pool_size.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    match route {
        Route::Straight => {}
        Route::StraightUncached => {
            command.env("DB_STATEMENT_CACHE", "off");
        }
        Route::Pooler(pooler) => {
            command
                .env("DATABASE_URL", pooler)
                .env("DATABASE_DIRECT_URL", url);
        }
    }
    let mut child = command.spawn().unwrap();
    for _ in 0..200 {
        if let Ok(out) = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/readyz")])
            .output()
            && out.status.success()
        {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server on port {port} did not become ready");
}

/// Requests per second and requests completed in one wrk run of `script` (2 threads,
/// `connections` connections) against the server on `port`; fails on any error answer.
pub fn run_wrk(script: &Path, seconds: u64, connections: usize, port: u16) -> (f64, f64) {
    let run = wrk_run(script, seconds, connections, port);
    (run.rps, run.requests)
}

/// One wrk run's figures.
pub struct WrkRun {
    pub rps: f64,
    pub requests: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One wrk run of `script` with `--latency` (at most 2 threads, `connections`
/// connections) against the server on `port`; fails on any error answer.
pub fn wrk_run(script: &Path, seconds: u64, connections: usize, port: u16) -> WrkRun {
    let threads = connections.min(2);
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/graphql"))
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
    // "     50%    1.23ms" in the latency distribution.
    let at = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .map(|v| duration_ms(v.trim()))
            .unwrap_or_else(|| panic!("no {p} latency in wrk output:\n{text}"))
    };
    WrkRun {
        rps,
        requests,
        p50_ms: at("50%"),
        p99_ms: at("99%"),
    }
}

/// wrk's "1.23ms", "456.00us", "1.02s" in milliseconds.
fn duration_ms(text: &str) -> f64 {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        panic!("a wrk duration: {text}")
    };
    number.parse::<f64>().unwrap() * factor
}

/// A wrk script posting `body` with each of `targets` (host, bearer token) in turn; an
/// answer that is not 200 or lacks `expect` is an error.
pub fn write_wrk_script(path: &Path, targets: &[(String, String)], body: &str, expect: &str) -> PathBuf {
    let mut lua = String::from("local targets = {\n");
    for (host, token) in targets {
        lua.push_str(&format!("  {{\"{host}\", \"Bearer {token}\"}},\n"));
    }
    lua.push_str(&format!(
        "}}\nlocal body = [[{body}]]\nlocal i = math.random(#targets)\n\
         request = function()\n  i = i % #targets + 1\n  local t = targets[i]\n  \
         return wrk.format(\"POST\", \"/graphql\", {{[\"Host\"] = t[1], [\"Authorization\"] = t[2], [\"Content-Type\"] = \"application/json\"}}, body)\nend\n\
         response = function(status, headers, body)\n  if status ~= 200 or not body:find([[{expect}]], 1, true) then\n    error(\"bad response: \" .. status .. \" \" .. body)\n  end\nend\n"
    ));
    std::fs::write(path, lua).unwrap();
    path.to_owned()
}

/// CPU time a process has used, in clock ticks (utime + stime).
pub fn cpu_ticks(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat_ticks(&stat)[..2].iter().sum()
}

/// utime, stime, cutime and cstime of a `/proc/PID/stat` line, in clock ticks.
pub fn stat_ticks(stat: &str) -> [f64; 4] {
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    std::array::from_fn(|i| fields[11 + i].parse::<f64>().unwrap())
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub fn memory(pid: u32) -> (u64, u64) {
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
