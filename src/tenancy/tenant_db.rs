//! [`TenantDb`]: one unit of tenant work (a GraphQL request, a job) on one connection, in one
//! transaction, with the tenant's `search_path` set once.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::QueryResult;
use diesel::connection::{InstrumentationEvent, TransactionDepthChange};

use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, SimpleAsyncConnection, TransactionManager,
};
use tokio::sync::{Mutex, MutexGuard};

use super::Tenant;
use super::pool::{ConnWork, DbPool, PooledConn, SharePermit, pool_error};
use crate::error::{AppError, AppResult};

/// Whether the unit may write. Queries run read-only; mutations read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

enum Slot {
    /// No transaction open: no connection is held.
    Idle,
    /// A connection inside the unit's open transaction.
    Open(Box<PooledConn>),
}

/// The database side of one unit of tenant work.
///
/// It takes a connection only when first asked for one, opens one transaction that starts
/// with the tenant's `search_path`, and lends that connection to every resolver and loader
/// of the unit in turn. [`TenantDb::commit`] ends the transaction and gives the connection
/// back; work after that opens a new one. Dropped while still open (a client
/// that hung up, a panic), it throws its connection away rather than returning it to the
/// pool mid-transaction; the server then rolls the transaction back.
pub struct TenantDb {
    pool: DbPool,
    tenant: Arc<Tenant>,
    access: Access,
    slot: Mutex<Slot>,
    /// The unit's place in its tenant's share of the pool, held while a connection is.
    share: std::sync::Mutex<Option<SharePermit>>,
    after_commit: std::sync::Mutex<Vec<AfterCommit>>,
    statements: Arc<AtomicUsize>,
}

type AfterCommit = Box<dyn FnOnce() + Send>;

/// A borrowed connection inside the unit's transaction. Hold it only for the statements at
/// hand: never across a DataLoader await, which needs the connection itself.
pub struct TenantConn<'a> {
    guard: MutexGuard<'a, Slot>,
}

impl TenantDb {
    pub fn new(pool: DbPool, tenant: Arc<Tenant>, access: Access) -> Self {
        Self {
            pool,
            tenant,
            access,
            slot: Mutex::new(Slot::Idle),
            share: std::sync::Mutex::new(None),
            after_commit: std::sync::Mutex::new(Vec::new()),
            statements: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// SQL statements sent so far by this unit (transaction control included): what the
    /// DataLoaders keep flat however many rows a query returns.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }

    /// The unit's connection, opening its transaction on first use.
    pub async fn conn(&self) -> AppResult<TenantConn<'_>> {
        let mut guard = self.slot.lock().await;
        match &*guard {
            Slot::Open(_) => {}
            Slot::Idle => {
                let conn = self.open().await?;
                *guard = Slot::Open(Box::new(conn));
            }
        }
        Ok(TenantConn { guard })
    }

    /// A connection from the pool inside a new transaction with the tenant's path, its
    /// statements counted for this unit.
    async fn open(&self) -> AppResult<PooledConn> {
        self.take_share().await?;
        let sql = self.begin_sql();
        self.pool.begun(&sql, |conn| self.count_statements(conn)).await
    }

    /// A connection from the pool, its statements counted for this unit.
    async fn checkout(&self) -> AppResult<PooledConn> {
        self.take_share().await?;
        let mut conn = self.pool.checkout().await.map_err(pool_error)?;
        self.count_statements(&mut conn);
        Ok(conn)
    }

    /// A place in the tenant's share of the pool, unless the unit holds one already.
    async fn take_share(&self) -> AppResult<()> {
        if self.shares().is_some() {
            return Ok(());
        }
        let permit = self.pool.share_of(self.tenant.id).await?;
        *self.shares() = Some(permit);
        Ok(())
    }

    fn shares(&self) -> std::sync::MutexGuard<'_, Option<SharePermit>> {
        self.share.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// BEGIN (read-only for queries) with the tenant's path and the pool's statement
    /// timeout, in one round trip. The path is the transaction's own: whatever the session
    /// holds, the unit's statements see only the tenant's schema, and the path is gone when
    /// the transaction ends. So a unit needs no reset at checkout, and sends none.
    fn begin_sql(&self) -> String {
        let mode = match self.access {
            Access::ReadOnly => "BEGIN READ ONLY",
            Access::ReadWrite => "BEGIN",
        };
        self.pool.begin_sql(mode, &self.tenant.schema.quoted())
    }

    fn count_statements(&self, conn: &mut PooledConn) {
        let statements = Arc::clone(&self.statements);
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                statements.fetch_add(1, Ordering::Relaxed);
                if tracing::enabled!(tracing::Level::TRACE) {
                    tracing::trace!(sql = %crate::db::without_binds(&query.to_string()), "statement");
                }
            }
        });
    }

    /// Runs `work` (reads) on the unit's connection, as [`TenantDb::conn`] would. When the
    /// unit has no transaction open yet, its BEGIN goes out together with `work`'s first
    /// statement (pipelined): PostgreSQL runs them in order, and the unit saves the round
    /// trip BEGIN takes alone. A connection that fails to begin is thrown away, and `work`
    /// runs again on one begun on its own.
    pub async fn read<T, W>(&self, work: W) -> AppResult<T>
    where
        for<'c> W: AsyncFnOnce(&'c AsyncPgConnection) -> QueryResult<T>
            + ConnWork<&'c AsyncPgConnection, QueryResult<T>, Fut: Send>
            + Clone
            + Send,
        T: Send,
    {
        let mut guard = self.slot.lock().await;
        if let Slot::Open(conn) = &*guard {
            return Ok(work(conn).await?);
        }
        let sql = self.begin_sql();
        // In the slot before anything is sent: should this future be dropped midway, the
        // unit throws the connection away (and a COMMIT finds no transaction the connection
        // knows of, fails, and throws it away too) rather than hand back one inside a
        // transaction.
        *guard = Slot::Open(Box::new(self.checkout().await?));
        let (begun, result) = {
            let Slot::Open(conn) = &*guard else {
                unreachable!("just opened")
            };
            let shared: &AsyncPgConnection = conn;
            let begin = async {
                let mut shared = shared;
                shared.batch_execute(&sql).await
            };
            futures_util::join!(begin, work.clone()(shared))
        };
        match begun {
            Ok(()) => {
                let Slot::Open(conn) = &mut *guard else {
                    unreachable!("just opened")
                };
                AnsiTransactionManager::transaction_manager_status_mut(&mut ***conn)
                    .transaction_state()?
                    .change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
                Ok(result?)
            }
            Err(e) => {
                tracing::debug!(error = ?e, "a pooled connection failed to begin; trying another");
                if let Slot::Open(conn) = std::mem::replace(&mut *guard, Slot::Idle) {
                    drop(Object::take(*conn));
                }
                drop(guard);
                let conn = self.conn().await?;
                Ok(work(&conn).await?)
            }
        }
    }

    /// Runs `action` once the unit's current transaction has committed (never if it rolls
    /// back): for effects outside the database that must follow the data, such as dropping
    /// a cached copy.
    pub fn after_commit(&self, action: impl FnOnce() + Send + 'static) {
        self.actions().push(Box::new(action));
    }

    fn actions(&self) -> std::sync::MutexGuard<'_, Vec<AfterCommit>> {
        self.after_commit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits the unit's work, if it did any, and returns the connection to the pool. Call
    /// it before slow work that needs no database (hashing a password), so the connection
    /// serves others meanwhile.
    pub async fn commit(&self) -> AppResult<()> {
        self.finish(true).await
    }

    /// Undoes the unit's work, if it did any, and returns the connection to the pool.
    pub async fn rollback(&self) -> AppResult<()> {
        self.finish(false).await
    }

    async fn finish(&self, commit: bool) -> AppResult<()> {
        let mut guard = self.slot.lock().await;
        let Slot::Open(mut conn) = std::mem::replace(&mut *guard, Slot::Idle) else {
            *self.shares() = None;
            return Ok(());
        };
        let outcome = if commit {
            AnsiTransactionManager::commit_transaction(&mut **conn).await
        } else {
            AnsiTransactionManager::rollback_transaction(&mut **conn).await
        };
        if outcome.is_err() {
            // A connection whose transaction could not be ended is not fit for anyone else.
            drop(Object::take(*conn));
        } else {
            drop(conn);
        }
        *self.shares() = None;
        let actions = std::mem::take(&mut *self.actions());
        if commit && outcome.is_ok() {
            actions.into_iter().for_each(|action| action());
        }
        outcome.map_err(AppError::from)
    }
}

impl Drop for TenantDb {
    fn drop(&mut self) {
        if let Slot::Open(conn) = std::mem::replace(self.slot.get_mut(), Slot::Idle) {
            tracing::debug!(schema = %self.tenant.schema, "tenant unit dropped mid-transaction; closing its connection");
            drop(Object::take(*conn));
        }
    }
}

impl Deref for TenantConn<'_> {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        match &*self.guard {
            Slot::Open(conn) => conn,
            Slot::Idle => unreachable!("a TenantConn exists only while its slot is open"),
        }
    }
}

impl DerefMut for TenantConn<'_> {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        match &mut *self.guard {
            Slot::Open(conn) => conn,
            Slot::Idle => unreachable!("a TenantConn exists only while its slot is open"),
        }
    }
}

impl TenantDb {
    /// Runs one mutation's work in a savepoint of the unit's transaction: kept when it
    /// succeeds, undone (and the error passed on) when it fails.
    pub async fn in_savepoint<T, F>(&self, work: F) -> AppResult<T>
    where
        for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> AppResult<T>
            + ConnWork<&'c mut AsyncPgConnection, AppResult<T>, Fut: Send>
            + Send,
        T: Send,
    {
        let mut conn = self.conn().await?;
        conn.begin_savepoint().await?;
        let outcome = work(&mut conn).await;
        conn.end_savepoint(outcome).await
    }
}

impl TenantDb {
    /// The statement that puts the rest of the unit's statements under the report timeout:
    /// for a report that is the unit's last work (the CSV, streamed to its end).
    pub fn report_limit_sql(&self) -> &str {
        self.pool.report_timeout_sql().0
    }

    /// Runs a report's statements under the report timeout (`DB_REPORT_STATEMENT_TIMEOUT_MS`),
    /// then gives the unit's later statements their own timeout back. A report cancelled
    /// at its timeout is `TIMEOUT`, and the unit's transaction ends with it.
    pub async fn report<T, F>(&self, work: F) -> AppResult<T>
    where
        for<'c> F: AsyncFnOnce(&'c mut AsyncPgConnection) -> AppResult<T>
            + ConnWork<&'c mut AsyncPgConnection, AppResult<T>, Fut: Send>
            + Send,
        T: Send,
    {
        let (limit, restore) = self.pool.report_timeout_sql();
        let mut conn = self.conn().await?;
        conn.batch_execute(limit).await?;
        let value = work(&mut conn).await?;
        conn.batch_execute(restore).await?;
        Ok(value)
    }
}

impl TenantConn<'_> {
    /// Starts a savepoint inside the unit's transaction: one mutation's own sub-transaction.
    /// Pair it with [`TenantConn::end_savepoint`].
    pub async fn begin_savepoint(&mut self) -> AppResult<()> {
        AnsiTransactionManager::begin_transaction(&mut **self).await?;
        Ok(())
    }

    /// Keeps the savepoint's work when `outcome` is `Ok`, undoes it otherwise, and passes
    /// `outcome` on. One failed mutation thus undoes only itself.
    pub async fn end_savepoint<T>(&mut self, outcome: AppResult<T>) -> AppResult<T> {
        match outcome {
            Ok(value) => {
                AnsiTransactionManager::commit_transaction(&mut **self).await?;
                Ok(value)
            }
            Err(e) => {
                AnsiTransactionManager::rollback_transaction(&mut **self).await?;
                Err(e)
            }
        }
    }
}
