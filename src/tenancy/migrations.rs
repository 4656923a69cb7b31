//! Schema migrations: `migrations/public` once, `migrations/tenant` in every tenant schema.
//!
//! Each schema records what it has applied in its own `schema_migrations` table, so a tenant
//! schema moved elsewhere (`pg_dump -n`) carries its history along. A schema is migrated in
//! one transaction under an advisory lock: two concurrent runs never apply a migration twice,
//! and a failed migration leaves that schema exactly as it was.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;

use super::pool::DbPool;
use super::{SchemaName, enter_schema, in_transaction, registry};

/// One migration: a folder `migrations/<set>/<version>/` with `up.sql` and maybe `down.sql`.
#[derive(Debug)]
pub struct Migration {
    pub version: &'static str,
    pub up: &'static str,
    pub down: Option<&'static str>,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration {version} failed: {source}")]
    Failed {
        version: &'static str,
        source: diesel::result::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("no database connection: {0}")]
    Connection(String),
}

const HISTORY_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Keeps migrations of one schema from running twice at once (key space: this app).
/// Also bounds how long a migration may wait for a lock or run: across many tenants a stuck
/// migration must fail (and be reported) rather than hold up everything behind it.
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtext('crowdminder.migrate.' || current_schema()));
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min'";

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = Array<Text>)]
    versions: Vec<String>,
}

async fn applied_versions(conn: &mut AsyncPgConnection) -> QueryResult<HashSet<String>> {
    let row: Applied =
        diesel::sql_query("SELECT coalesce(array_agg(version), '{}') AS versions FROM schema_migrations")
            .get_result(conn)
            .await?;
    Ok(row.versions.into_iter().collect())
}

/// Applies whatever of `set` the current schema lacks. Runs inside the caller's transaction,
/// with `search_path` already pointing at the schema.
async fn apply_pending(
    conn: &mut AsyncPgConnection,
    set: &'static [Migration],
) -> Result<Vec<&'static str>, MigrationError> {
    conn.batch_execute(LOCK_SQL).await?;
    let applied = applied_versions(conn).await?;
    let mut done = Vec::new();
    for migration in set.iter().filter(|m| !applied.contains(m.version)) {
        conn.batch_execute(migration.up)
            .await
            .map_err(|source| MigrationError::Failed {
                version: migration.version,
                source,
            })?;
        diesel::sql_query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind::<Text, _>(migration.version)
            .execute(conn)
            .await?;
        done.push(migration.version);
    }
    Ok(done)
}

/// Brings `public` up to date.
pub async fn migrate_public(conn: &mut AsyncPgConnection) -> Result<Vec<&'static str>, MigrationError> {
    in_transaction(conn, async |c| {
        // The shared tables are named `public.x` in the files; the path is for the history.
        c.batch_execute("SELECT set_config('search_path', 'public', true)")
            .await?;
        c.batch_execute(HISTORY_TABLE).await?;
        apply_pending(c, PUBLIC_MIGRATIONS).await
    })
    .await
}

/// Creates the history table and every tenant migration in a schema just created, inside
/// the caller's transaction whose path already points at it.
pub(crate) async fn install_tenant(conn: &mut AsyncPgConnection) -> Result<(), MigrationError> {
    conn.batch_execute(HISTORY_TABLE).await?;
    apply_pending(conn, TENANT_MIGRATIONS).await?;
    Ok(())
}

/// Brings one tenant schema up to date. Cheap when nothing is pending: one read, no lock.
pub async fn migrate_tenant(
    conn: &mut AsyncPgConnection,
    schema: &SchemaName,
) -> Result<Vec<&'static str>, MigrationError> {
    let pending = in_transaction(conn, async |c| {
        enter_schema(c, schema).await?;
        let applied = applied_versions(c).await?;
        Ok::<_, MigrationError>(TENANT_MIGRATIONS.iter().any(|m| !applied.contains(m.version)))
    })
    .await?;
    if !pending {
        return Ok(Vec::new());
    }
    in_transaction(conn, async |c| {
        enter_schema(c, schema).await?;
        apply_pending(c, TENANT_MIGRATIONS).await
    })
    .await
}

/// What happened to one tenant in [`migrate_all`].
#[derive(Debug)]
pub struct TenantOutcome {
    pub schema: SchemaName,
    pub result: Result<Vec<&'static str>, MigrationError>,
}

/// Migrates `public`, then every tenant (or just `only`), at most `jobs` at a time. A failed
/// tenant is reported and the others go on. `progress` sees each tenant as it finishes.
pub async fn migrate_all(
    pool: &DbPool,
    jobs: usize,
    only: Option<&SchemaName>,
    progress: impl Fn(usize, usize, &TenantOutcome),
) -> Result<(Vec<&'static str>, Vec<TenantOutcome>), MigrationError> {
    let mut conn = pool
        .checkout()
        .await
        .map_err(|e| MigrationError::Connection(e.to_string()))?;
    let public = migrate_public(&mut conn).await?;
    let mut schemas = registry::all_schemas(&mut conn).await?;
    drop(conn);
    if let Some(only) = only {
        schemas.retain(|s| s == only);
    }
    let total = schemas.len();
    let finished = AtomicUsize::new(0);
    let started = Instant::now();
    let outcomes: Vec<TenantOutcome> = futures_util::stream::iter(schemas)
        .map(|schema| async move {
            let result = match pool.checkout().await {
                Ok(mut conn) => migrate_tenant(&mut conn, &schema).await,
                Err(e) => Err(MigrationError::Connection(e.to_string())),
            };
            TenantOutcome { schema, result }
        })
        .buffer_unordered(jobs.max(1))
        .inspect(|outcome| progress(finished.fetch_add(1, Ordering::Relaxed) + 1, total, outcome))
        .collect()
        .await;
    tracing::debug!(
        tenants = total,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "tenant migrations done"
    );
    Ok((public, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_unique() {
        for set in [PUBLIC_MIGRATIONS, TENANT_MIGRATIONS] {
            assert!(!set.is_empty());
            let versions: Vec<&str> = set.iter().map(|m| m.version).collect();
            let mut sorted = versions.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(versions, sorted);
        }
    }

    #[test]
    fn tenant_migrations_never_name_public() {
        for m in TENANT_MIGRATIONS {
            assert!(
                !m.up.to_lowercase().contains("public."),
                "{} reaches into public",
                m.version
            );
        }
    }
}
