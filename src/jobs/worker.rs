//! The worker: claims due jobs up to its concurrency, runs each in its tenant's unit with a
//! renewed lease, retries failures with backoff, fans out schedules, and on shutdown lets
//! running jobs finish within a grace period, then hands back (releases) what is left.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::registry::{JobContext, Registry};
use super::schedule::{self, Schedule};
use super::{Job, claim, complete, fail, next_due, release, renew, requeue_abandoned};
use crate::error::AppError;
use crate::services::Services;
use crate::tenancy::Tenant;
use crate::tenancy::registry::{self, TenantStatus};
use crate::tenancy::{Access, DbPool, TenantDb};

#[derive(clap::Args, Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs one worker process runs at once.
    #[arg(long = "concurrency", env = "WORKER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// How long a claimed job stays leased without renewal; a worker renews a third of the
    /// way through, so a dead worker's job is free again within this time.
    #[arg(long = "job-lease-seconds", env = "JOB_LEASE_SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,
    /// Fallback poll when no notice arrives, in milliseconds.
    #[arg(long = "job-poll-ms", env = "JOB_POLL_MS", default_value_t = 5_000)]
    pub poll_ms: u64,
    /// First retry delay in milliseconds; doubled per attempt, at most an hour.
    #[arg(long = "job-backoff-ms", env = "JOB_BACKOFF_MS", default_value_t = 10_000)]
    pub backoff_ms: u64,
    /// On shutdown, how long running jobs may take to finish before they are released.
    #[arg(long = "job-grace-seconds", env = "JOB_GRACE_SECONDS", default_value_t = 30)]
    pub grace_seconds: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease_seconds: 60,
            poll_ms: 5_000,
            backoff_ms: 10_000,
            grace_seconds: 30,
        }
    }
}

impl WorkerConfig {
    /// The wait before retry `attempt` (1-based): the base doubled per attempt, capped.
    pub fn backoff(&self, attempt: i64) -> Duration {
        let exponent = attempt.clamp(1, 20) as u32 - 1;
        let ms = self.backoff_ms.saturating_mul(1u64 << exponent);
        Duration::from_millis(ms.min(3_600_000))
    }
}

/// Counters since the process started, for `/metrics`.
#[derive(Default)]
pub struct WorkerStats {
    pub succeeded: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub released: AtomicU64,
}

pub struct Worker {
    pub id: String,
    pub pool: DbPool,
    pub registry: Arc<Registry>,
    pub services: Arc<Services>,
    pub config: WorkerConfig,
    pub schedules: Vec<Schedule>,
    /// Woken by job notices (see [`crate::tenancy::changes::Notice::Jobs`]).
    pub wake: Arc<Notify>,
    pub stats: Arc<WorkerStats>,
}

/// Stops a worker: it claims nothing more, lets running jobs finish within the grace
/// period and releases the rest.
#[derive(Clone)]
pub struct Shutdown(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (Self(tx), rx)
    }

    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

/// A worker id unique across processes and machines.
pub fn worker_id(n: usize) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}:{}:{n}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

impl Worker {
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.config.concurrency.max(1)));
        let running: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let mut tasks = JoinSet::new();
        let poll = Duration::from_millis(this.config.poll_ms.max(10));
        let mut next_schedule_check = tokio::time::Instant::now();
        let mut next_abandoned_check = tokio::time::Instant::now();
        let abandoned_every = Duration::from_secs((this.config.lease_seconds / 2).clamp(1, 30));
        tracing::info!(worker = %this.id, concurrency = this.config.concurrency, "worker started");
        loop {
            while tasks.try_join_next().is_some() {}
            if *shutdown.borrow() {
                break;
            }
            if tokio::time::Instant::now() >= next_schedule_check {
                this.check_schedules().await;
                next_schedule_check = tokio::time::Instant::now() + Duration::from_secs(30);
            }
            if tokio::time::Instant::now() >= next_abandoned_check {
                this.requeue_abandoned().await;
                next_abandoned_check = tokio::time::Instant::now() + abandoned_every;
            }
            // Wait for one free slot, then take every other free one: one claim fills them.
            let first = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = stopped(&mut shutdown) => break,
            };
            let mut permits = vec![first];
            while let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
                permits.push(permit);
            }
            // Listen before looking, so a notice between the look and the wait is not lost.
            let notified = this.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match this.claim(permits.len()).await {
                Ok(claimed) if !claimed.is_empty() => {
                    for (job, tenant) in claimed {
                        let Some(permit) = permits.pop() else { break };
                        running.lock().unwrap_or_else(|e| e.into_inner()).insert(job.id);
                        let worker = Arc::clone(&this);
                        let running = Arc::clone(&running);
                        tasks.spawn(async move {
                            let id = job.id;
                            worker.run_job(job, tenant).await;
                            running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                            drop(permit);
                        });
                    }
                    // A full batch means more may be waiting: look again at once.
                }
                Ok(_) => {
                    drop(permits);
                    let wait = this.idle_wait(poll).await;
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = stopped(&mut shutdown) => break,
                    }
                }
                Err(e) => {
                    drop(permits);
                    tracing::warn!(worker = %this.id, error = ?e, "cannot claim jobs");
                    tokio::select! {
                        _ = tokio::time::sleep(poll.min(Duration::from_secs(1))) => {}
                        _ = stopped(&mut shutdown) => break,
                    }
                }
            }
        }
        this.drain(tasks, running).await;
    }

    /// Claims up to `slots` jobs, each with its tenant (read in one more statement).
    async fn claim(&self, slots: usize) -> Result<Vec<(Job, Tenant)>, AppError> {
        let lease = self.config.lease_seconds as i64;
        let (jobs, tenants) = self
            .pool
            .transaction(async |conn| {
                let jobs = claim(conn, &self.id, lease, slots as i64).await?;
                if jobs.is_empty() {
                    return Ok((jobs, Default::default()));
                }
                let ids: Vec<i64> = jobs.iter().map(|j| j.tenant_id).collect();
                let tenants = registry::find_by_ids(conn, &ids).await?;
                Ok((jobs, tenants))
            })
            .await?;
        // A tenant deleted meanwhile took its jobs with it.
        Ok(jobs
            .into_iter()
            .filter_map(|job| tenants.get(&job.tenant_id).cloned().map(|t| (job, t)))
            .collect())
    }

    async fn requeue_abandoned(&self) {
        let requeued = self
            .pool
            .transaction(async |conn| requeue_abandoned(conn).await)
            .await;
        match requeued {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "jobs of workers that stopped are back in the queue"),
            Err(e) => tracing::warn!(error = ?e, "cannot requeue abandoned jobs"),
        }
    }

    /// How long to sleep with nothing to do: until the next job falls due, at most `poll`.
    async fn idle_wait(&self, poll: Duration) -> Duration {
        let due = self.pool.transaction(async |conn| next_due(conn).await).await;
        match due {
            Ok(Some(due)) => (due - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), poll),
            _ => poll,
        }
    }

    async fn check_schedules(&self) {
        for schedule in &self.schedules {
            let fanned = self
                .pool
                .transaction(async |conn| schedule::fan_out(conn, schedule, chrono::Utc::now()).await)
                .await;
            match fanned {
                Ok(Some(jobs)) => tracing::info!(schedule = %schedule.name, jobs, "schedule fanned out"),
                Ok(None) => {}
                Err(e) => tracing::warn!(schedule = %schedule.name, error = ?e, "schedule not fanned out"),
            }
        }
    }

    /// Runs one claimed job to its end: done (removed with its work), failed (retried or
    /// kept), or released when its tenant was suspended meanwhile.
    async fn run_job(self: &Arc<Self>, job: Job, tenant: Tenant) {
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind, tenant = %tenant.schema, attempt = job.attempts);
        self.run_job_in_span(job, tenant).instrument(span).await
    }

    async fn run_job_in_span(self: &Arc<Self>, job: Job, tenant: Tenant) {
        let renewal = self.keep_leased(job.id);
        let outcome = self.attempt(&job, tenant).await;
        renewal.abort();
        match outcome {
            Attempt::Done => {
                self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Attempt::Release => {
                self.stats.released.fetch_add(1, Ordering::Relaxed);
                let released = self
                    .pool
                    .transaction(async |conn| release(conn, &[job.id], &self.id).await)
                    .await;
                if let Err(e) = released {
                    tracing::warn!(error = ?e, "cannot release the job; its lease will end");
                }
            }
            Attempt::Failed(error) => {
                self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let retry_in = self.config.backoff(job.attempts);
                tracing::warn!(error = %error, last = job.attempts >= job.max_attempts, "job failed");
                let recorded = self
                    .pool
                    .transaction(async |conn| fail(conn, &job, &self.id, &error, retry_in).await)
                    .await;
                if let Err(e) = recorded {
                    tracing::warn!(error = ?e, "cannot record the failure; the lease will end");
                }
            }
        }
    }

    async fn attempt(&self, job: &Job, tenant: Tenant) -> Attempt {
        // Claimed while active; suspended since, it waits.
        if tenant.status != TenantStatus::Active {
            return Attempt::Release;
        }
        let Some(handler) = self.registry.get(&job.kind) else {
            return Attempt::Failed(format!("no handler for jobs of kind {}", job.kind));
        };
        let db = Arc::new(TenantDb::new(
            self.pool.clone(),
            Arc::new(tenant),
            Access::ReadWrite,
        ));
        let context = JobContext {
            job: job.clone(),
            db: Arc::clone(&db),
            services: Arc::clone(&self.services),
        };
        let ran = std::panic::AssertUnwindSafe(handler(context))
            .catch_unwind()
            .await;
        let error = match ran {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(_) => Some("the job panicked".to_owned()),
        };
        if let Some(error) = error {
            let _ = db.rollback().await;
            return Attempt::Failed(error);
        }
        // The job's removal commits with its work, or neither does.
        let finished = async {
            let mut conn = db.conn().await?;
            let held = complete(&mut conn, job.id, &self.id).await?;
            drop(conn);
            if held {
                db.commit().await?;
            }
            Ok::<_, AppError>(held)
        }
        .await;
        match finished {
            Ok(true) => Attempt::Done,
            Ok(false) => {
                let _ = db.rollback().await;
                tracing::warn!("the lease was lost while the job ran; its work is undone");
                Attempt::Failed("the lease was lost while the job ran".to_owned())
            }
            Err(e) => {
                let _ = db.rollback().await;
                Attempt::Failed(format!("committing: {e:?}"))
            }
        }
    }

    /// Renews the job's lease every third of it while the job runs.
    fn keep_leased(self: &Arc<Self>, id: i64) -> tokio::task::JoinHandle<()> {
        let worker = Arc::clone(self);
        tokio::spawn(async move {
            let lease = worker.config.lease_seconds.max(1);
            let every = Duration::from_millis(lease * 1000 / 3);
            loop {
                tokio::time::sleep(every).await;
                let renewed = worker
                    .pool
                    .transaction(async |conn| renew(conn, id, &worker.id, lease as i64).await)
                    .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job = id, error = ?e, "lease not renewed"),
                }
            }
        })
    }

    /// Lets running jobs finish within the grace period; then stops them (their units
    /// roll back) and hands their jobs back.
    async fn drain(&self, mut tasks: JoinSet<()>, running: Arc<Mutex<HashSet<i64>>>) {
        let grace = tokio::time::sleep(Duration::from_secs(self.config.grace_seconds));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                next = tasks.join_next() => if next.is_none() { break },
                _ = &mut grace => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
            }
        }
        let left: Vec<i64> = running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if !left.is_empty() {
            let released = self
                .pool
                .transaction(async |conn| release(conn, &left, &self.id).await)
                .await;
            match released {
                Ok(n) => tracing::info!(jobs = n, "released unfinished jobs"),
                Err(e) => tracing::warn!(error = ?e, "cannot release jobs; their leases will end"),
            }
        }
        tracing::info!(worker = %self.id, "worker stopped");
    }
}

enum Attempt {
    Done,
    Failed(String),
    Release,
}
