//! The connection pool. All pooled work runs in transactions that set their own
//! `search_path`: a tenant unit ([`TenantDb`]) names its tenant's schema, shared work
//! ([`DbPool::transaction`]) names none, so shared tables are always written `public.x` and
//! no tenant table resolves there. Nothing is left on a session, which is what makes the pool
//! safe behind a transaction-mode pooler (pgbouncer), where the next transaction may run on
//! another server connection, shared with other clients. Behind one (see
//! [`DatabaseConfig::caches_statements`]), connections also keep no prepared statements:
//! each statement is prepared and closed inside the transaction that runs it.
//!
//! [`TenantDb`]: super::TenantDb

use diesel::ConnectionResult;
use diesel::connection::CacheSize;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DatabaseConfig;
use crate::error::{AppError, AppResult};

pub type PooledConn = Object<AsyncPgConnection>;

/// The connection pool.
#[derive(Clone)]
pub struct DbPool {
    inner: Pool<AsyncPgConnection>,
    statement_timeout_ms: u64,
    /// The statements that put a unit under the report timeout and back under its own.
    report_sql: Arc<(String, String)>,
    shares: Arc<TenantShares>,
}

/// What each tenant may hold of the pool at once: a semaphore per tenant of `share`
/// permits. A unit holds one from its first connection to its end, so one tenant's burst
/// waits on its own share while the rest of the pool serves the others.
struct TenantShares {
    share: usize,
    wait: Duration,
    tenants: std::sync::Mutex<Semaphores>,
}

/// Each tenant's semaphore, kept only while a unit holds or awaits one of its permits (a
/// tenant with none gets a whole one anew), so no tenant ever has two at once.
struct Semaphores {
    by_tenant: std::collections::HashMap<i64, std::sync::Weak<Semaphore>>,
    /// When the map reaches this many entries, those of tenants gone quiet are dropped.
    sweep_at: usize,
}

impl TenantShares {
    fn semaphore(&self, tenant: i64) -> Arc<Semaphore> {
        let mut semaphores = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(semaphore) = semaphores
            .by_tenant
            .get(&tenant)
            .and_then(std::sync::Weak::upgrade)
        {
            return semaphore;
        }
        if semaphores.by_tenant.len() >= semaphores.sweep_at {
            semaphores.by_tenant.retain(|_, s| s.strong_count() > 0);
            semaphores.sweep_at = (semaphores.by_tenant.len() * 2).max(1024);
        }
        let semaphore = Arc::new(Semaphore::new(self.share));
        semaphores.by_tenant.insert(tenant, Arc::downgrade(&semaphore));
        semaphore
    }
}

/// A tenant unit's place in its tenant's share of the pool.
pub type SharePermit = OwnedSemaphorePermit;

impl DbPool {
    /// Runs `work` in a transaction of its own on a pooled connection, with no schema on
    /// its path (shared tables only, written `public.x`): committed when `work` succeeds,
    /// rolled back when it fails. A connection that cannot end its transaction is closed.
    pub async fn transaction<T, F>(&self, work: F) -> AppResult<T>
    where
        for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> AppResult<T>
            + ConnWork<&'c mut AsyncPgConnection, AppResult<T>, Fut: Send>
            + Send,
        T: Send,
    {
        let mut conn = self.begun(&self.begin_sql("BEGIN", ""), |_| {}).await?;
        let outcome = work(&mut conn).await;
        let ended = match outcome {
            Ok(_) => AnsiTransactionManager::commit_transaction(&mut *conn).await,
            Err(_) => AnsiTransactionManager::rollback_transaction(&mut *conn).await,
        };
        if ended.is_err() {
            drop(Object::take(conn));
        }
        let value = outcome?;
        ended?;
        Ok(value)
    }

    /// `mode` (`BEGIN`, `BEGIN READ ONLY`) and the transaction's own settings in one round
    /// trip: `path` (a quoted schema, or empty) as its `search_path`, and the pool's
    /// statement timeout. Both end with the transaction, whatever the session holds.
    pub(super) fn begin_sql(&self, mode: &str, path: &str) -> String {
        format!(
            "{mode}; SELECT set_config('search_path', '{path}', true), set_config('statement_timeout', '{}', true)",
            self.statement_timeout_ms
        )
    }

    /// A connection inside a transaction begun with `begin_sql` (the path included), with
    /// `prepare` applied first. A connection that fails to begin (closed by the server
    /// since the pool last saw it) is closed, and one more is tried.
    pub(super) async fn begun(
        &self,
        begin_sql: &str,
        prepare: impl Fn(&mut PooledConn),
    ) -> AppResult<PooledConn> {
        let mut retried = false;
        loop {
            let mut conn = self.checkout().await.map_err(pool_error)?;
            prepare(&mut conn);
            match AnsiTransactionManager::begin_transaction_sql(&mut *conn, begin_sql).await {
                Ok(()) => return Ok(conn),
                Err(e) if retried => {
                    drop(Object::take(conn));
                    return Err(e.into());
                }
                Err(e) => {
                    tracing::debug!(error = ?e, "a pooled connection failed to begin; trying another");
                    drop(Object::take(conn));
                    retried = true;
                }
            }
        }
    }

    /// A connection as the pool holds it, with no statement sent: for a tenant unit, which
    /// begins its own transaction, and for tests that check what units leave behind. The
    /// pool has already dropped connections that were closed or left inside a transaction.
    pub async fn checkout(&self) -> Result<PooledConn, PoolError> {
        self.inner.get().await
    }

    /// Connections the pool may hold.
    pub fn max_size(&self) -> usize {
        self.inner.status().max_size
    }

    /// A place in `tenant`'s share of the pool, waited for as long as a connection would
    /// be (`DB_WAIT_TIMEOUT_MS`), then `Unavailable`.
    pub(super) async fn share_of(&self, tenant: i64) -> AppResult<SharePermit> {
        let shares = &self.shares;
        let semaphore = shares.semaphore(tenant);
        match tokio::time::timeout(shares.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(AppError::Unavailable),
            Err(_) => {
                tracing::warn!(
                    tenant,
                    share = shares.share,
                    "a tenant's share of the pool stayed taken"
                );
                Err(AppError::Unavailable)
            }
        }
    }

    /// The statement that gives a report's statements their own timeout, and the one that
    /// gives the rest of the unit its own back (both for this transaction only).
    pub fn report_timeout_sql(&self) -> (&str, &str) {
        (&self.report_sql.0, &self.report_sql.1)
    }
}

/// An async closure over a connection whose future is `Send`, which `AsyncFnOnce` alone
/// cannot require yet: the closure is also an `FnOnce` naming its future.
pub trait ConnWork<C, R>: AsyncFnOnce(C) -> R + FnOnce(C) -> <Self as ConnWork<C, R>>::Fut {
    type Fut: Future<Output = R>;
}

impl<F, C, Fut, R> ConnWork<C, R> for F
where
    F: AsyncFnOnce(C) -> R + FnOnce(C) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

/// No connection in time, or none to be made (the server is down): `Unavailable`.
pub(super) fn pool_error(e: PoolError) -> AppError {
    use diesel_async::pooled_connection::PoolError as Backend;
    match e {
        PoolError::Timeout(_) => AppError::Unavailable,
        PoolError::Backend(Backend::ConnectionError(e)) => {
            tracing::warn!(error = %e, "cannot connect to the database");
            AppError::Unavailable
        }
        PoolError::Backend(Backend::QueryError(e)) => e.into(),
        other => AppError::internal(anyhow::anyhow!("database pool: {other}")),
    }
}

/// Empties the session's `search_path`: on connections straight to PostgreSQL.
pub const RESET_SEARCH_PATH: &str = "SELECT set_config('search_path', '', false)";

/// Opens one connection outside the pool, straight to PostgreSQL, its session's path empty:
/// for LISTEN and for the operator commands.
pub async fn connect(url: &str) -> ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(RESET_SEARCH_PATH)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// A new connection through a transaction-mode pooler. The driver opens every connection
/// with two session settings (UTC, UTF-8), each sent as a prepared statement outside a
/// transaction, where the pooler may prepare on one server connection and execute on
/// another that knows no such statement. So the settings are made inside a transaction,
/// which the pooler keeps on one server connection; they outlast its COMMIT, and the pooler
/// carries them over to whichever server connection serves this client next.
async fn establish_through_pooler(url: &str) -> ConnectionResult<AsyncPgConnection> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    // Driven here until the client is dropped; its errors reach the client's calls.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "pooled connection ended");
        }
    });
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    let mut conn = AsyncPgConnection::try_from(client).await?;
    conn.batch_execute("COMMIT")
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

pub fn build_pool(config: &DatabaseConfig) -> anyhow::Result<DbPool> {
    let mut manager_config = ManagerConfig::default();
    let caches_statements = config.caches_statements();
    // Straight to PostgreSQL a new connection also empties its session's path, so even a
    // statement sent outside any unit finds no tenant table. Behind a pooler it sends
    // nothing: a session setting would land on whichever server connection the pooler
    // picked, and stay there for its other clients.
    let direct = !config.behind_pooler();
    manager_config.custom_setup = Box::new(move |url| {
        async move {
            let mut conn = if direct {
                AsyncPgConnection::establish(url).await?
            } else {
                establish_through_pooler(url).await?
            };
            if !caches_statements {
                conn.set_prepared_statement_cache_size(CacheSize::Disabled);
            }
            if direct {
                conn.batch_execute(RESET_SEARCH_PATH)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        }
        .boxed()
    });
    // At checkout the pool drops a connection that is closed or was left inside a
    // transaction; every unit then begins its own, path included, in its first round trip.
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        config.url.expose(),
        manager_config,
    );
    let pool = Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .wait_timeout(Some(config.wait_timeout()))
        // A server that does not answer fails the request as soon as a busy pool would.
        .create_timeout(Some(config.wait_timeout()))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?;
    Ok(DbPool {
        inner: pool,
        statement_timeout_ms: config.statement_timeout_ms,
        report_sql: Arc::new((
            format!(
                "SELECT set_config('statement_timeout', '{}', true)",
                config.report_timeout_ms()
            ),
            format!(
                "SELECT set_config('statement_timeout', '{}', true)",
                config.statement_timeout_ms
            ),
        )),
        shares: Arc::new(TenantShares {
            share: config.tenant_share(),
            wait: config.wait_timeout(),
            tenants: std::sync::Mutex::new(Semaphores {
                by_tenant: std::collections::HashMap::new(),
                sweep_at: 1024,
            }),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(share: usize) -> TenantShares {
        TenantShares {
            share,
            wait: Duration::from_millis(10),
            tenants: std::sync::Mutex::new(Semaphores {
                by_tenant: std::collections::HashMap::new(),
                sweep_at: 1024,
            }),
        }
    }

    #[test]
    fn a_tenant_has_one_semaphore_while_any_permit_is_held_and_quiet_ones_go() {
        let shares = shares(2);
        let first = shares.semaphore(1).try_acquire_owned().unwrap();
        let second = shares.semaphore(1).try_acquire_owned().unwrap();
        assert!(
            shares.semaphore(1).try_acquire_owned().is_err(),
            "the share is taken"
        );
        assert_eq!(
            shares.semaphore(2).available_permits(),
            2,
            "another tenant's is whole"
        );
        // However many tenants come and go meanwhile, the held one is kept, and the map
        // stays bounded.
        for tenant in 10..5_000 {
            drop(shares.semaphore(tenant).try_acquire_owned().unwrap());
        }
        assert!(
            shares.semaphore(1).try_acquire_owned().is_err(),
            "still one semaphore"
        );
        assert!(shares.tenants.lock().unwrap().by_tenant.len() <= 1024);
        drop(first);
        assert_eq!(shares.semaphore(1).available_permits(), 1);
        drop(second);
        assert_eq!(shares.semaphore(1).available_permits(), 2);
    }
}
