//! The job queue at work: no-op jobs spread over 100 tenants, drained by workers of 2 and
//! of 8 concurrent jobs, and the delay from a job's commit to its start when a worker waits
//! on LISTEN/NOTIFY.
//!
//! Run with `scripts/bench.sh jobs` (a private PostgreSQL), or by hand with
//! `BENCH_DATABASE_URL` pointing at an empty database: `cargo bench --bench jobs`.
//! `BENCH_TENANTS` (default 100), `BENCH_JOBS` (default 5000) and `BENCH_LATENCY_JOBS`
//! (default 500) adjust the run.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{JWT_SECRET, database_url, env_or, percentile, prepare, runtime, tenant};
use crowdminder::app::App;
use crowdminder::config::{DatabaseConfig, Secret, ServiceConfig};
use crowdminder::jobs::registry::{JobContext, Registry};
use crowdminder::jobs::worker::{Shutdown, Worker, WorkerConfig};
use crowdminder::jobs::{self, NewJob};
use crowdminder::mail::MailConfig;
use crowdminder::tenancy;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncConnection, RunQueryDsl};

fn worker(url: &str, state: &App, registry: Registry, concurrency: usize) -> Worker {
    let pool = tenancy::build_pool(&DatabaseConfig::new(url, concurrency + 2)).unwrap();
    let mail = MailConfig::files(std::env::temp_dir().join("crowdminder-bench-mail"));
    let config = WorkerConfig {
        concurrency,
        lease_seconds: 60,
        poll_ms: 5_000,
        backoff_ms: 1_000,
        grace_seconds: 10,
    };
    state.worker(pool, registry, Vec::new(), &mail, config).unwrap()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn queue_len(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM public.jobs")
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

fn main() {
    let url = database_url();
    let tenants: usize = env_or("BENCH_TENANTS", 100);
    let job_count: i32 = env_or("BENCH_JOBS", 5000);
    let latency_jobs: usize = env_or("BENCH_LATENCY_JOBS", 500);
    let rt = runtime();
    rt.block_on(async move {
        let mut conn = prepare(&url).await;
        for i in 0..tenants {
            let schema = format!("j{i:03}");
            tenant(&mut conn, &schema, &schema, &format!("{schema}.jobs.localhost"), "admin@bench.example").await;
        }
        println!("== {tenants} tenants");
        let pool = tenancy::build_pool(&DatabaseConfig::new(url.clone(), 2)).unwrap();
        let state = App::new(pool, ServiceConfig::with_secret(JWT_SECRET), Secret::new(url.clone())).unwrap();
        // Let the change listener connect before anything is timed.
        tokio::time::sleep(Duration::from_millis(500)).await;

        for concurrency in [2, 8] {
            // The jobs first, round-robin over the tenants, then the worker drains them.
            diesel::sql_query(
                "INSERT INTO public.jobs (kind, tenant_id) \
                 SELECT 'noop', t.id FROM generate_series(1, $1) i \
                 JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM public.tenants) t \
                   ON t.n = i % (SELECT count(*) FROM public.tenants)",
            )
            .bind::<Integer, _>(job_count)
            .execute(&mut conn)
            .await
            .unwrap();
            // A queue in service has statistics; a table just filled has none yet.
            diesel::sql_query("ANALYZE public.jobs")
                .execute(&mut conn)
                .await
                .unwrap();
            let (stop, rx) = Shutdown::new();
            let started = Instant::now();
            let handle = worker(&url, &state, crowdminder::app::jobs(), concurrency).spawn(rx);
            while queue_len(&mut conn).await > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let elapsed = started.elapsed().as_secs_f64();
            stop.trigger();
            handle.await.unwrap();
            println!(
                "no-op jobs over {tenants} tenants, {concurrency} at once   {job_count} in {elapsed:.2} s: {:.0} jobs/s",
                f64::from(job_count) / elapsed
            );
        }

        // Commit to start: one job at a time into an idle worker woken by NOTIFY.
        let starts: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
        let mut registry = crowdminder::app::jobs();
        {
            let starts = Arc::clone(&starts);
            registry.register("stamp", move |ctx: JobContext| {
                let now = Instant::now();
                starts.lock().unwrap().insert(ctx.job.id, now);
                Box::pin(async { Ok(()) })
            });
        }
        let (stop, rx) = Shutdown::new();
        let handle = worker(&url, &state, registry, 8).spawn(rx);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tenant_ids: Vec<i64> = {
            use diesel::QueryDsl;
            crowdminder::db::schema::tenants::table
                .select(crowdminder::db::schema::tenants::id)
                .load(&mut conn)
                .await
                .unwrap()
        };
        let mut committed = HashMap::new();
        for i in 0..latency_jobs {
            let tenant_id = tenant_ids[i % tenant_ids.len()];
            // Timed from just before COMMIT is sent: the delay includes the commit itself.
            let (id, at) = conn
                .transaction::<_, diesel::result::Error, _>(async |c| {
                    let id = jobs::enqueue(c, NewJob::new("stamp", tenant_id, serde_json::json!({})))
                        .await
                        .unwrap();
                    Ok((id, Instant::now()))
                })
                .await
                .unwrap();
            committed.insert(id, at);
            // Idle between jobs, as a quiet queue is.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while queue_len(&mut conn).await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.trigger();
        handle.await.unwrap();
        let starts = starts.lock().unwrap();
        let mut delays: Vec<f64> = committed
            .iter()
            .filter_map(|(id, at)| starts.get(id).map(|s| s.saturating_duration_since(*at).as_secs_f64() * 1000.0))
            .collect();
        delays.sort_by(f64::total_cmp);
        println!(
            "commit to start (LISTEN/NOTIFY, idle worker)  n={}  median {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            delays.len(),
            percentile(&delays, 0.5),
            percentile(&delays, 0.99),
            delays[delays.len() - 1]
        );
    });
}
