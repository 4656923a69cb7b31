//! The connection pool. Every pooled connection starts, and is handed out again, with an
//! empty `search_path`: a tenant table resolves only inside a [`TenantDb`] transaction
//! that named its schema, and shared tables are always written `public.x`. [`DbPool::get`]
//! resets the path at every checkout. A tenant unit takes its connection with
//! [`DbPool::get_unreset`]: it sets the path for its own transaction only, which no session
//! setting can outlast.
//!
//! [`TenantDb`]: super::TenantDb

use diesel::ConnectionResult;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::config::DatabaseConfig;

pub type PooledConn = Object<AsyncPgConnection>;

/// The connection pool. Connections come out of it with an empty `search_path`.
#[derive(Clone)]
pub struct DbPool {
    inner: Pool<AsyncPgConnection>,
}

impl DbPool {
    /// A connection, its session's `search_path` reset (one round trip). A connection that
    /// fails the reset is closed, and one more is tried.
    pub async fn get(&self) -> Result<PooledConn, PoolError> {
        let mut retried = false;
        loop {
            let mut conn = self.inner.get().await?;
            match conn.batch_execute(RESET_SEARCH_PATH).await {
                Ok(()) => return Ok(conn),
                Err(e) if retried => {
                    drop(Object::take(conn));
                    return Err(PoolError::Backend(
                        diesel_async::pooled_connection::PoolError::QueryError(e),
                    ));
                }
                Err(_) => {
                    drop(Object::take(conn));
                    retried = true;
                }
            }
        }
    }

    /// A connection as the pool holds it, with no statement sent: for a tenant unit, whose
    /// first round trip sets the path for its transaction ([`super::TenantDb`]), and
    /// for tests that check what units leave behind. The pool has already dropped connections that were
    /// closed or left inside a transaction.
    pub async fn get_unreset(&self) -> Result<PooledConn, PoolError> {
        self.inner.get().await
    }

    /// Connections the pool may hold.
    pub fn max_size(&self) -> usize {
        self.inner.status().max_size
    }
}

/// Resets the session's `search_path`; run when a connection is made and by [`DbPool::get`].
pub const RESET_SEARCH_PATH: &str = "SELECT set_config('search_path', '', false)";

/// Opens one connection outside the pool (for LISTEN and for the CLI's long jobs).
pub async fn connect(url: &str) -> ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    conn.batch_execute(RESET_SEARCH_PATH)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

fn setup_connection(url: &str) -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
    connect(url).boxed()
}

pub fn build_pool(config: &DatabaseConfig) -> anyhow::Result<DbPool> {
    let mut manager_config = ManagerConfig::default();
    manager_config.custom_setup = Box::new(setup_connection);
    // At checkout the pool drops a connection that is closed or was left inside a
    // transaction. The path is reset by `DbPool::get`, not here, so a tenant unit (which
    // sets its own path with its BEGIN) spends no round trip on it.
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        config.url.expose(),
        manager_config,
    );
    let pool = Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .wait_timeout(Some(config.wait_timeout()))
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?;
    Ok(DbPool { inner: pool })
}
