//! Tenant-aware background jobs: one queue in `public.jobs`, each job carrying its tenant
//! and run inside that tenant's context exactly as a request is (a [`TenantDb`] unit).
//!
//! - A job is enqueued in the caller's transaction ([`enqueue`]): it exists if and only if
//!   the work that asked for it committed. The same transaction notifies idle workers.
//! - Workers ([`worker`]) claim with `FOR UPDATE SKIP LOCKED`, as many jobs at once as they
//!   have free slots, and hold a lease they renew while the job runs. A job's work and its removal from the queue commit together, so a job
//!   is never half-done: a worker that dies leaves its job to be claimed again once the
//!   lease ends, and the dead run's writes were never committed.
//! - Failures are retried with exponential backoff up to the job's `max_attempts`, then
//!   kept as `FAILED` with the error, for `crowdminder jobs list --failed` and `jobs retry`.
//! - Jobs of a suspended tenant wait; a deleted tenant's jobs go with it.
//! - Recurring work is declared in [`schedule`] and fanned out, one job per tenant.

pub mod registry;
pub mod schedule;
pub mod worker;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::db::schema::{jobs, tenants};
use crate::error::{AppError, AppResult};
use crate::tenancy::changes::{self, Notice};

/// Attempts a job gets unless its kind says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, serde::Serialize)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub tenant_id: i64,
    pub payload: Value,
    pub status: String,
    pub run_at: DateTime<Utc>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub tenant_id: i64,
    pub payload: Value,
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i64,
}

impl NewJob {
    pub fn new(kind: &str, tenant_id: i64, payload: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            tenant_id,
            payload,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// Enqueues a job in the connection's current transaction (`public.jobs` is named in full,
/// so this works inside a tenant's unit) and wakes idle workers when it commits.
pub async fn enqueue(conn: &mut AsyncPgConnection, job: NewJob) -> AppResult<i64> {
    let id = diesel::insert_into(jobs::table)
        .values((
            jobs::kind.eq(&job.kind),
            jobs::tenant_id.eq(job.tenant_id),
            jobs::payload.eq(&job.payload),
            jobs::run_at.eq(job.run_at.unwrap_or_else(Utc::now)),
            jobs::max_attempts.eq(job.max_attempts),
        ))
        .returning(jobs::id)
        .get_result(conn)
        .await?;
    changes::publish(conn, Notice::Jobs).await?;
    Ok(id)
}

/// Claims up to `limit` due jobs of active tenants, oldest first, leasing them to `worker`
/// for `lease_seconds`. One statement, answered from the pending jobs' index.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    worker: &str,
    lease_seconds: i64,
    limit: i64,
) -> AppResult<Vec<Job>> {
    Ok(diesel::sql_query(
        "WITH next AS ( \
           SELECT q.id FROM public.jobs q \
           WHERE q.status = 'PENDING' AND q.run_at <= now() \
             AND EXISTS (SELECT 1 FROM public.tenants t WHERE t.id = q.tenant_id AND t.status = 'ACTIVE') \
           ORDER BY q.run_at, q.id \
           LIMIT $3 \
           FOR UPDATE OF q SKIP LOCKED \
         ) \
         UPDATE public.jobs j \
         SET status = 'RUNNING', attempts = j.attempts + 1, locked_by = $1, \
             locked_until = now() + make_interval(secs => $2), updated_at = now() \
         FROM next WHERE j.id = next.id \
         RETURNING j.*",
    )
    .bind::<Text, _>(worker)
    .bind::<BigInt, _>(lease_seconds)
    .bind::<BigInt, _>(limit)
    .load::<Job>(conn)
    .await?)
}

/// Puts back in the queue the jobs whose worker stopped renewing its lease (it died): their
/// attempt counts. Those that were on their last attempt are kept as failed.
pub async fn requeue_abandoned(conn: &mut AsyncPgConnection) -> AppResult<usize> {
    let failed = fail_abandoned(conn).await?;
    let requeued = diesel::update(
        jobs::table
            .filter(jobs::status.eq("RUNNING"))
            .filter(jobs::locked_until.lt(diesel::dsl::now))
            .filter(jobs::attempts.lt(jobs::max_attempts)),
    )
    .set((
        jobs::status.eq("PENDING"),
        jobs::run_at.eq(diesel::dsl::now),
        jobs::locked_by.eq(None::<String>),
        jobs::locked_until.eq(None::<DateTime<Utc>>),
        jobs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(failed + requeued)
}

/// Extends the lease of a job `worker` holds; false when it holds it no more.
pub async fn renew(
    conn: &mut AsyncPgConnection,
    id: i64,
    worker: &str,
    lease_seconds: i64,
) -> AppResult<bool> {
    let renewed = diesel::sql_query(
        "UPDATE public.jobs SET locked_until = now() + make_interval(secs => $3) \
         WHERE id = $1 AND locked_by = $2 AND status = 'RUNNING'",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(worker)
    .bind::<BigInt, _>(lease_seconds)
    .execute(conn)
    .await?;
    Ok(renewed == 1)
}

/// Removes a job `worker` finished, in the transaction that did its work; false when the
/// lease was lost meanwhile (that transaction must then roll back).
pub async fn complete(conn: &mut AsyncPgConnection, id: i64, worker: &str) -> AppResult<bool> {
    let removed = diesel::delete(
        jobs::table
            .filter(jobs::id.eq(id))
            .filter(jobs::locked_by.eq(worker))
            .filter(jobs::status.eq("RUNNING")),
    )
    .execute(conn)
    .await?;
    Ok(removed == 1)
}

/// Records a failed attempt: retried after `retry_in`, or kept as failed when it was the
/// last.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    job: &Job,
    worker: &str,
    error: &str,
    retry_in: std::time::Duration,
) -> AppResult<()> {
    let error: String = error.chars().take(4000).collect();
    let retry_at = Utc::now() + chrono::Duration::from_std(retry_in).unwrap_or_default();
    let last = job.attempts >= job.max_attempts;
    diesel::update(
        jobs::table
            .filter(jobs::id.eq(job.id))
            .filter(jobs::locked_by.eq(worker)),
    )
    .set((
        jobs::status.eq(if last { "FAILED" } else { "PENDING" }),
        jobs::run_at.eq(if last { job.run_at } else { retry_at }),
        jobs::last_error.eq(error),
        jobs::locked_by.eq(None::<String>),
        jobs::locked_until.eq(None::<DateTime<Utc>>),
        jobs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Hands jobs back untouched (a worker shutting down, a tenant suspended meanwhile): the
/// attempt does not count.
pub async fn release(conn: &mut AsyncPgConnection, ids: &[i64], worker: &str) -> AppResult<usize> {
    Ok(diesel::update(
        jobs::table
            .filter(jobs::id.eq_any(ids))
            .filter(jobs::locked_by.eq(worker))
            .filter(jobs::status.eq("RUNNING")),
    )
    .set((
        jobs::status.eq("PENDING"),
        jobs::attempts.eq(jobs::attempts - 1),
        jobs::locked_by.eq(None::<String>),
        jobs::locked_until.eq(None::<DateTime<Utc>>),
        jobs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?)
}

/// Marks as failed the jobs whose worker died on their last attempt.
async fn fail_abandoned(conn: &mut AsyncPgConnection) -> AppResult<usize> {
    Ok(diesel::update(
        jobs::table
            .filter(jobs::status.eq("RUNNING"))
            .filter(jobs::locked_until.lt(diesel::dsl::now))
            .filter(jobs::attempts.ge(jobs::max_attempts)),
    )
    .set((
        jobs::status.eq("FAILED"),
        jobs::last_error.eq("the worker running the last attempt stopped before it ended"),
        jobs::locked_by.eq(None::<String>),
        jobs::locked_until.eq(None::<DateTime<Utc>>),
        jobs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?)
}

/// When the next pending job falls due, if any is waiting.
pub async fn next_due(conn: &mut AsyncPgConnection) -> AppResult<Option<DateTime<Utc>>> {
    Ok(jobs::table
        .filter(jobs::status.eq("PENDING"))
        .select(diesel::dsl::min(jobs::run_at))
        .first(conn)
        .await?)
}

/// A job with its tenant's schema, as operators list them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub job: Job,
    pub tenant: String,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    failed_only: bool,
    tenant: Option<&str>,
    limit: i64,
) -> AppResult<Vec<Listed>> {
    let mut query = jobs::table
        .inner_join(tenants::table)
        .select((Job::as_select(), tenants::schema_name))
        .order(jobs::id)
        .limit(limit)
        .into_boxed();
    if failed_only {
        query = query.filter(jobs::status.eq("FAILED"));
    }
    if let Some(tenant) = tenant {
        query = query.filter(tenants::schema_name.eq(tenant.to_owned()));
    }
    let rows: Vec<(Job, String)> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(job, tenant)| Listed { job, tenant })
        .collect())
}

/// Runs a failed (or waiting) job again as soon as a worker is free, with its attempts
/// reset.
pub async fn retry(conn: &mut AsyncPgConnection, id: i64) -> AppResult<()> {
    let updated = diesel::update(
        jobs::table
            .filter(jobs::id.eq(id))
            .filter(jobs::status.ne("RUNNING")),
    )
    .set((
        jobs::status.eq("PENDING"),
        jobs::attempts.eq(0),
        jobs::run_at.eq(diesel::dsl::now),
        jobs::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    if updated == 0 {
        return Err(running_or_missing(conn, id).await);
    }
    changes::publish(conn, Notice::Jobs).await?;
    Ok(())
}

/// Removes a job that is not running.
pub async fn cancel(conn: &mut AsyncPgConnection, id: i64) -> AppResult<()> {
    let removed = diesel::delete(
        jobs::table
            .filter(jobs::id.eq(id))
            .filter(jobs::status.ne("RUNNING")),
    )
    .execute(conn)
    .await?;
    if removed == 0 {
        return Err(running_or_missing(conn, id).await);
    }
    Ok(())
}

async fn running_or_missing(conn: &mut AsyncPgConnection, id: i64) -> AppError {
    let exists = diesel::select(diesel::dsl::exists(jobs::table.find(id)))
        .get_result::<bool>(conn)
        .await;
    match exists {
        Ok(true) => AppError::conflict(None, format!("job {id} is running; try again once it ends")),
        Ok(false) => AppError::NotFound { what: "job" },
        Err(e) => e.into(),
    }
}

/// Queue depth for `/metrics`: jobs by status and kind, and the age of the oldest due one.
#[derive(Debug, Clone, QueryableByName)]
pub struct Depth {
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = BigInt)]
    pub jobs: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub oldest_due_seconds: f64,
}

pub async fn depth(conn: &mut AsyncPgConnection) -> AppResult<Vec<Depth>> {
    Ok(diesel::sql_query(
        "SELECT status, kind, count(*) AS jobs, \
         coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now())), 0)::float8 \
           AS oldest_due_seconds \
         FROM public.jobs GROUP BY status, kind ORDER BY status, kind",
    )
    .load(conn)
    .await?)
}
