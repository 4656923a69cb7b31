//! Pages of time entries in date order (then id), each with its project, the project's
//! client and its task, in one statement that each connection keeps prepared (one per page
//! size: the limit is written in, see [`crate::db::OrderedLimit`]).

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::catalog::{Client, Project, Task};
use super::entries::{EntryStatus, TimeEntry};
use crate::auth::users::User;
use crate::db::schema::{clients, projects, tasks, time_entries, users};
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

/// [`page_on`] with each entry's user, joined in the same statement.
pub async fn page_with_users_on(
    mut conn: &AsyncPgConnection,
    filter: &EntryFilter,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> QueryResult<Vec<(EntryRow, User)>> {
    let rows: Vec<(TimeEntry, Project, Client, Option<Task>, User)> =
        page_with_users_query(filter, after, limit)
            .load(&mut conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(entry, project, client, task, user)| ((entry, project, client, task), user))
        .collect())
}

/// The statement [`page`] sends, with `$n` placeholders, and its parameters: for running
/// the same SQL outside the service (the benchmark times it in psql).
pub fn page_sql(filter: &EntryFilter, after: Option<(NaiveDate, i64)>, limit: i64) -> String {
    diesel::debug_query::<diesel::pg::Pg, _>(&page_query(filter, after, limit)).to_string()
}

/// The page's filters, cursor and order on a boxed query of entries joined with their
/// projects (and more).
macro_rules! filtered_page {
    ($query:expr, $filter:expr, $after:expr, $limit:expr) => {{
        let filter: &EntryFilter = $filter;
        let mut query = $query
            .order(crate::db::OrderedLimit {
                order: (time_entries::work_date, time_entries::id),
                limit: $limit,
            })
            .into_boxed();
        if let Some((date, id)) = $after {
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
    }};
}

/// Entries joined with their projects, the projects' clients, and their tasks.
macro_rules! with_relations {
    () => {
        time_entries::table
            .inner_join(projects::table.inner_join(clients::table))
            .left_join(tasks::table.on(tasks::id.nullable().eq(time_entries::task_id)))
    };
}

fn page_query(
    filter: &EntryFilter,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> impl for<'a> diesel_async::methods::LoadQuery<'static, &'a AsyncPgConnection, EntryRow>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ Send
+ 'static {
    filtered_page!(
        with_relations!().select((
            TimeEntry::as_select(),
            Project::as_select(),
            Client::as_select(),
            Option::<Task>::as_select(),
        )),
        filter,
        after,
        limit
    )
}

fn page_with_users_query(
    filter: &EntryFilter,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> impl for<'a> diesel_async::methods::LoadQuery<
    'static,
    &'a AsyncPgConnection,
    (TimeEntry, Project, Client, Option<Task>, User),
> + diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ Send
+ 'static {
    filtered_page!(
        with_relations!()
            .inner_join(users::table.on(users::id.eq(time_entries::user_id)))
            .select((
                TimeEntry::as_select(),
                Project::as_select(),
                Client::as_select(),
                Option::<Task>::as_select(),
                User::as_select(),
            )),
        filter,
        after,
        limit
    )
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
        assert!(
            sql.contains(r#"ORDER BY "time_entries"."work_date", "time_entries"."id" LIMIT 101"#),
            "{sql}"
        );
        assert!(sql.ends_with("-- binds: [2026-06-01, 182, [3]]"), "{sql}");
    }
}
