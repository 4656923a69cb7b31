//! The connection pool and the diesel table definitions.
//!
//! Every pooled connection starts, and is handed out again, with an empty `search_path`: a
//! tenant table resolves only inside a [`crate::tenancy::TenantDb`] transaction that named
//! its schema, and shared tables are always written `public.x`.

pub mod schema;

/// SQL functions used in queries.
pub mod functions {
    use diesel::sql_types::Text;

    #[diesel::declare_sql_function]
    extern "SQL" {
        fn lower(x: Text) -> Text;
    }
}

use diesel::ConnectionResult;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::config::DatabaseConfig;

pub type DbPool = Pool<AsyncPgConnection>;
pub type PooledConn = Object<AsyncPgConnection>;

/// An `ILIKE` pattern matching `raw` anywhere, its own `%`, `_` and `\` taken literally.
pub fn contains_pattern(raw: &str) -> String {
    format!(
        "%{}%",
        raw.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

/// Resets the session's `search_path`; run when a connection is made and at every checkout.
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
    // The pool already discards a connection left inside a transaction; this query is the
    // second line of defence, and it also proves the connection is alive. Sent as a simple
    // query: one round trip, nothing prepared.
    manager_config.recycling_method =
        RecyclingMethod::CustomFunction(Box::new(|conn| conn.batch_execute(RESET_SEARCH_PATH).boxed()));
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
    Ok(pool)
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(super::contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
