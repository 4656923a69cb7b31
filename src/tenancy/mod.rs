//! Tenancy: the registry of tenants and hosts, resolving a request's tenant, and the tenant
//! context every piece of tenant work runs in.
//!
//! The context is a transaction whose first statement is
//! `SELECT set_config('search_path', '"<schema>"', true)`. The setting ends with the
//! transaction, so no commit, rollback or cancellation can carry one tenant's path into the
//! next use of the connection; the pool also resets the path at every checkout. Nothing
//! outside this module sets `search_path`.

pub mod changes;
pub mod migrations;
mod pool;
pub mod provision;
pub mod registry;
pub mod resolver;
mod schema_name;
mod tenant_db;

pub use pool::{ConnWork, DbPool, PooledConn, build_pool, connect};
pub use registry::{Tenant, TenantSite, TenantStatus};
pub use resolver::{TenantResolver, is_dns_name, normalize_host};
pub use schema_name::{SchemaName, SchemaNameError};
pub use tenant_db::{Access, TenantConn, TenantDb};

use diesel_async::{AnsiTransactionManager, AsyncPgConnection, SimpleAsyncConnection, TransactionManager};

/// Points the current transaction at `schema`. Must run inside a transaction: the setting is
/// transaction-local and vanishes at its end.
pub(crate) async fn enter_schema(
    conn: &mut AsyncPgConnection,
    schema: &SchemaName,
) -> diesel::QueryResult<()> {
    conn.batch_execute(&set_path_statement(schema)).await
}

/// `schema` is validated (no quotes of either kind), so it can stand in a literal.
fn set_path_statement(schema: &SchemaName) -> String {
    format!("SELECT set_config('search_path', '{}', true)", schema.quoted())
}

/// Runs `work` in a transaction of its own: committed when it returns `Ok`, rolled back
/// otherwise. For operator work (registry changes, migrations), outside any request.
pub(crate) async fn in_transaction<T, E>(
    conn: &mut AsyncPgConnection,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    AnsiTransactionManager::begin_transaction(conn).await?;
    match work(conn).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(conn).await?;
            Err(e)
        }
    }
}
