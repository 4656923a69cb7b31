//! What each tenant uses (active users, time entries, storage), recorded nightly into
//! `public.usage_snapshots` by a scheduled job per tenant: the figures plans and limits
//! are measured against. It reads across the domains' tables and belongs to none of them.

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use serde::Deserialize;

use crate::db::schema::{time_entries, usage_snapshots, users};
use crate::jobs::registry::{JobContext, JobKind};

/// Records what the job's tenant uses on the day of its slot (today without one).
#[derive(Deserialize, Default)]
pub struct UsageSnapshot {
    /// The schedule's slot, RFC 3339, as the fan-out writes it.
    #[serde(default)]
    pub slot: Option<String>,
}

#[derive(QueryableByName)]
struct Storage {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

impl JobKind for UsageSnapshot {
    const KIND: &'static str = "usage_snapshot";

    /// A slot that does not read as one means today, as a payload without one does.
    fn from_payload(payload: &serde_json::Value) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(payload.clone()).unwrap_or_default())
    }

    async fn run(self, ctx: JobContext) -> anyhow::Result<()> {
        let taken_on = self
            .slot
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|s| s.date_naive())
            .unwrap_or_else(|| Utc::now().date_naive());
        let mut conn = ctx.db.conn().await?;
        let active_users: i64 = users::table
            .filter(users::active.eq(true))
            .count()
            .get_result(&mut *conn)
            .await?;
        let entries: i64 = time_entries::table.count().get_result(&mut *conn).await?;
        let storage: Storage = diesel::sql_query(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')",
        )
        .bind::<Text, _>(ctx.db.tenant().schema.as_str())
        .get_result(&mut *conn)
        .await?;
        diesel::insert_into(usage_snapshots::table)
            .values((
                usage_snapshots::tenant_id.eq(ctx.db.tenant().id),
                usage_snapshots::taken_on.eq(taken_on),
                usage_snapshots::active_users.eq(active_users),
                usage_snapshots::time_entries.eq(entries),
                usage_snapshots::storage_bytes.eq(storage.bytes),
            ))
            .on_conflict((usage_snapshots::tenant_id, usage_snapshots::taken_on))
            .do_update()
            .set((
                usage_snapshots::active_users.eq(active_users),
                usage_snapshots::time_entries.eq(entries),
                usage_snapshots::storage_bytes.eq(storage.bytes),
                usage_snapshots::taken_at.eq(diesel::dsl::now),
            ))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
