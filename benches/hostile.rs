//! Hostile clients against a release server (`scripts/bench.sh hostile`):
//!
//! 1. 200 logins at once on a fresh server, each its own user with the right password:
//!    peak resident memory, and how many signed in or were told to retry;
//! 2. the same 200 clients signing in again and again for a while (retrying when told to):
//!    correct logins a second under that load, against what one client alone gets;
//! 3. another tenant's `{ me { email } }`, one at a time, idle and while a member of the
//!    first sends the most expensive request the cost limit allows (four five-year
//!    billable-hours reports by client, user and day over 150,000 entries) back to back
//!    from 8 connections: p50 and p99.
//!
//! BENCH_SECONDS=10 BENCH_SAMPLES=200

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Route, env_or, memory, percentile, start_server};
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

const ACME: &str = "acme.hostile.localhost";
const GLOBEX: &str = "globex.hostile.localhost";
const LOGINS: usize = 200;
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// 200 members who sign in with the benchmark password (their hash is the admin's), and
/// five years of one member's time.
const FILL: &str = "
INSERT INTO acme.users (email, name, role, password_hash)
  SELECT 'u' || i || '@acme.bench', 'Consultant ' || i, 'MEMBER',
         (SELECT password_hash FROM acme.users WHERE email = 'admin@acme.bench')
  FROM generate_series(1, 200) i;
INSERT INTO acme.clients (name) VALUES ('Globex');
INSERT INTO acme.projects (client_id, code, name, hourly_rate) VALUES (1, 'WEB', 'Website', 100);
INSERT INTO acme.time_entries (user_id, project_id, work_date, minutes, billable, hourly_rate)
  SELECT (SELECT id FROM acme.users WHERE email = 'u1@acme.bench'), 1,
         date '2022-01-01' + (i % 1795), 15 + (i % 8) * 15, true, 100
  FROM generate_series(1, 150000) i;
ANALYZE acme.users; ANALYZE acme.time_entries;
";

async fn post(
    client: &reqwest::Client,
    port: u16,
    host: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = client
        .post(format!("http://127.0.0.1:{port}/graphql"))
        .header("host", host)
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login(client: &reqwest::Client, port: u16, host: &str, email: &str) -> (u16, Option<String>) {
    let body = json!({ "query": LOGIN, "variables": { "e": email, "p": common::PASSWORD } });
    let (status, body) = post(client, port, host, None, &body).await;
    (status, body["data"]["login"]["token"].as_str().map(str::to_owned))
}

/// `me` of `token` at `host`, `samples` times one after another: (p50, p99) in ms.
async fn me_latency(port: u16, host: &str, token: &str, samples: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let body = json!({ "query": "{ me { email } }" });
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let (status, answer) = post(&client, port, host, Some(token), &body).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200, "{answer}");
        assert!(answer["data"]["me"]["email"].is_string(), "{answer}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let samples: usize = env_or("BENCH_SAMPLES", 200);
    common::runtime().block_on(async {
        let url = common::database_url();
        let mut conn = common::prepare(&url).await;
        common::tenant(&mut conn, "acme", "Acme", ACME, "admin@acme.bench").await;
        common::tenant(&mut conn, "globex", "Globex", GLOBEX, "admin@globex.bench").await;
        conn.batch_execute(FILL).await.unwrap();
        let port = 18_471;
        let mut server = start_server(port, 16, &url, &Route::Straight);
        let pid = server.id();
        let (resident, _) = memory(pid);

        // 1. 200 logins at once on the fresh server.
        let client = reqwest::Client::new();
        let started = Instant::now();
        let outcomes = futures_util::future::join_all(
            (1..=LOGINS).map(|i| {
                let client = client.clone();
                async move { login(&client, port, ACME, &format!("u{i}@acme.bench")).await }
            }),
        )
        .await;
        let took = started.elapsed();
        let signed_in = outcomes.iter().filter(|(s, t)| *s == 200 && t.is_some()).count();
        let retry = outcomes.iter().filter(|(s, _)| *s == 503).count();
        assert_eq!(signed_in + retry, LOGINS, "every login signed in or was told to retry");
        let (_, peak) = memory(pid);
        println!(
            "200 logins at once: {signed_in} signed in, {retry} told to retry (503), in {:.2} s; \
             resident {:.0} MB before, peak {:.0} MB",
            took.as_secs_f64(),
            resident as f64 / 1024.0,
            peak as f64 / 1024.0
        );

        // 2. Correct logins a second: one client alone, then 200 retrying clients.
        let rate = |clients: usize| async move {
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicUsize::new(0));
            let refused = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (1..=clients)
                .map(|i| {
                    let (stop, done, refused) = (Arc::clone(&stop), Arc::clone(&done), Arc::clone(&refused));
                    tokio::spawn(async move {
                        let client = reqwest::Client::new();
                        let email = format!("u{i}@acme.bench");
                        while !stop.load(Ordering::Relaxed) {
                            match login(&client, port, ACME, &email).await {
                                (200, Some(_)) => done.fetch_add(1, Ordering::Relaxed),
                                (503, _) => refused.fetch_add(1, Ordering::Relaxed),
                                (status, _) => panic!("login answered {status}"),
                            };
                        }
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            for task in tasks {
                task.await.unwrap();
            }
            let per_second = done.load(Ordering::Relaxed) as f64 / seconds as f64;
            (per_second, refused.load(Ordering::Relaxed))
        };
        let (alone, _) = rate(1).await;
        let (loaded, refused) = rate(LOGINS).await;
        let (_, peak) = memory(pid);
        println!(
            "correct logins: {alone:.1}/s from one client; {loaded:.1}/s from 200 clients at once \
             ({refused} answers told to retry), peak resident {:.0} MB",
            peak as f64 / 1024.0
        );

        // 3. Another tenant's `me`, idle and under the most expensive allowed load.
        let (_, other) = login(&client, port, GLOBEX, "admin@globex.bench").await;
        let other = other.unwrap();
        let (_, member) = login(&client, port, ACME, "u1@acme.bench").await;
        let member = member.unwrap();
        let report = "billableHours(from: \"2022-01-01\", to: \"2026-12-01\", groupBy: [CLIENT, USER, DAY]) { totals { entries } }";
        let fields: Vec<String> = (0..4).map(|i| format!("r{i}: {report}")).collect();
        let most = json!({ "query": format!("{{ {} }}", fields.join(" ")) });
        let (status, answer) = post(&client, port, ACME, Some(&member), &most).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["r3"]["totals"]["entries"], 150_000, "{answer}");
        let (idle50, idle99) = me_latency(port, GLOBEX, &other, samples).await;
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let load: Vec<_> = (0..8)
            .map(|_| {
                let (stop, answered, most, member) =
                    (Arc::clone(&stop), Arc::clone(&answered), most.clone(), member.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let (status, _) = post(&client, port, ACME, Some(&member), &most).await;
                        answered.fetch_add(usize::from(status == 200), Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let (load50, load99) = me_latency(port, GLOBEX, &other, samples).await;
        let window = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for task in load {
            task.await.unwrap();
        }
        println!(
            "another tenant's me: idle p50 {idle50:.2} ms, p99 {idle99:.2} ms; while 8 connections \
             send the most expensive allowed request ({:.1} answered/s): p50 {load50:.2} ms, p99 {load99:.2} ms",
            answered.load(Ordering::Relaxed) as f64 / window
        );
        let _ = server.kill();
        let _ = server.wait();
    });
}
