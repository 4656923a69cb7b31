//! Pages of time entries in date order (then id), each with its project, the project's
//! client and its task, in one statement that each connection keeps prepared.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::catalog::{Client, Project, Task};
use super::entries::{EntryStatus, TimeEntry};
use crate::db::schema::{clients, projects, tasks, time_entries};
use crate::error::AppResult;

#[derive(Debug, Default, Clone)]
pub struct EntryFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub user_ids: Option<Vec<i64>>,
    pub client_ids: Option<Vec<i64>>,
    pub project_ids: Option<Vec<i64>>,
    pub task_ids: Option<Vec<i64>>,
    pub billable: Option<bool>,
    pub statuses: Option<Vec<EntryStatus>>,
    pub running: Option<bool>,
}

/// A page of entries in date order (then id), each with its project, the project's client
/// and its task, in one statement.
pub type EntryRow = (TimeEntry, Project, Client, Option<Task>);

/// `(work_date, id) > ($date, $id)`: the entries after a page's cursor. A row comparison,
/// which an index on (work_date, id) answers directly (the equivalent OR of two conditions
/// makes PostgreSQL scan). Written as its own expression rather than an SQL literal so the
/// page's statement stays cacheable: prepared once per connection, not parsed and planned
/// on every page.
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId, diesel::expression::ValidGrouping)]
struct AfterCursor {
    date: NaiveDate,
    id: i64,
}

impl diesel::expression::Expression for AfterCursor {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> diesel::expression::AppearsOnTable<QS> for AfterCursor where
    time_entries::id: diesel::expression::AppearsOnTable<QS>
{
}

impl<QS> diesel::expression::SelectableExpression<QS> for AfterCursor where
    time_entries::id: diesel::expression::SelectableExpression<QS>
{
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AfterCursor {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("(");
        time_entries::work_date.walk_ast(out.reborrow())?;
        out.push_sql(", ");
        time_entries::id.walk_ast(out.reborrow())?;
        out.push_sql(") > (");
        out.push_bind_param::<diesel::sql_types::Date, _>(&self.date)?;
        out.push_sql(", ");
        out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.id)?;
        out.push_sql(")");
        Ok(())
    }
}

pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &EntryFilter,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> AppResult<Vec<EntryRow>> {
    Ok(page_on(conn, filter, after, limit).await?)
}

/// [`page`] on a shared connection, so that it can go out pipelined behind what was sent
/// before it ([`crate::tenancy::TenantDb::read`]).
pub async fn page_on(
    mut conn: &AsyncPgConnection,
    filter: &EntryFilter,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> QueryResult<Vec<EntryRow>> {
    page_query(filter, after, limit).load(&mut conn).await
}

/// The statement [`page`] sends, with `$n` placeholders, and its parameters: for running
/// the same SQL outside the service (the benchmark times it in psql).
pub fn page_sql(filter: &EntryFilter, after: Option<(NaiveDate, i64)>, limit: i64) -> String {
    diesel::debug_query::<diesel::pg::Pg, _>(&page_query(filter, after, limit)).to_string()
}

fn page_query(
    filter: &EntryFilter,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> impl for<'a> diesel_async::methods::LoadQuery<'static, &'a AsyncPgConnection, EntryRow>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ Send
+ 'static {
    let mut query = time_entries::table
        .inner_join(projects::table.inner_join(clients::table))
        .left_join(tasks::table.on(tasks::id.nullable().eq(time_entries::task_id)))
        .select((
            TimeEntry::as_select(),
            Project::as_select(),
            Client::as_select(),
            Option::<Task>::as_select(),
        ))
        .order((time_entries::work_date, time_entries::id))
        .limit(limit)
        .into_boxed();
    if let Some((date, id)) = after {
        query = query.filter(AfterCursor { date, id });
    }
    if let Some(from) = filter.from {
        query = query.filter(time_entries::work_date.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(time_entries::work_date.le(to));
    }
    if let Some(ids) = &filter.user_ids {
        query = query.filter(time_entries::user_id.eq_any(ids.clone()));
    }
    if let Some(ids) = &filter.client_ids {
        query = query.filter(projects::client_id.eq_any(ids.clone()));
    }
    if let Some(ids) = &filter.project_ids {
        query = query.filter(time_entries::project_id.eq_any(ids.clone()));
    }
    if let Some(ids) = &filter.task_ids {
        query = query.filter(time_entries::task_id.eq_any(ids.clone()));
    }
    if let Some(billable) = filter.billable {
        query = query.filter(time_entries::billable.eq(billable));
    }
    if let Some(statuses) = &filter.statuses {
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(time_entries::status.eq_any(statuses));
    }
    match filter.running {
        Some(true) => {
            query = query.filter(
                time_entries::started_at
                    .is_not_null()
                    .and(time_entries::ended_at.is_null()),
            )
        }
        Some(false) => query = query.filter(time_entries::minutes.is_not_null()),
        None => {}
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_after_a_cursor_is_a_statement_the_connection_can_keep_prepared() {
        use diesel::query_builder::QueryFragment;
        let date = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let filter = EntryFilter {
            user_ids: Some(vec![3]),
            ..EntryFilter::default()
        };
        let query = page_query(&filter, Some((date, 182)), 101);
        assert!(query.is_safe_to_cache_prepared(&diesel::pg::Pg).unwrap());
        let sql = page_sql(&filter, Some((date, 182)), 101);
        assert!(
            sql.contains(r#"("time_entries"."work_date", "time_entries"."id") > ($1, $2)"#),
            "{sql}"
        );
        assert!(sql.ends_with("-- binds: [2026-06-01, 182, [3], 101]"), "{sql}");
    }
}
