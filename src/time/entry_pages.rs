//! Pages of time entries in date order (then id), each with the relations its selection
//! reads (project, client, task, user), in one statement that each connection keeps
//! prepared (one per page size and relations: both are written in, see
//! [`crate::db::OrderedLimit`] and [`Relations`]).

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

/// Which of an entry's relations a page joins in: those its selection reads (a client
/// filter needs the project). Each is joined on a condition written `true` or `false` into
/// the statement, so a relation left out costs PostgreSQL nothing (the join's condition is
/// false once, for the whole plan) and the page is one kind of row whatever it joins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relations {
    pub project: bool,
    /// The project's client (with the project).
    pub client: bool,
    pub task: bool,
    pub user: bool,
}

impl Relations {
    pub const ALL: Relations = Relations {
        project: true,
        client: true,
        task: true,
        user: true,
    };

    /// What a page under `filter` must join besides: its client filter reads projects.
    fn for_filter(self, filter: &EntryFilter) -> Self {
        let client = self.client || filter.client_ids.is_some();
        Self {
            project: self.project || client,
            client: self.client,
            ..self
        }
    }
}

/// One entry of a page with the relations it was joined with (`None` when not joined, or
/// an entry with no task).
#[derive(Debug, Clone)]
pub struct EntryRow {
    pub entry: TimeEntry,
    pub project: Option<Project>,
    pub client: Option<Client>,
    pub task: Option<Task>,
    pub user: Option<User>,
}

/// A page's row as the statement gives it.
type JoinedRow = (
    TimeEntry,
    Option<Project>,
    Option<Client>,
    Option<Task>,
    Option<User>,
);

/// A join condition's switch, written into the statement as `true` or `false`. Its query id
/// is not static, so each combination is its own prepared statement with its own plan.
#[derive(Debug, Clone, Copy, diesel::expression::ValidGrouping)]
struct Joined(bool);

impl diesel::query_builder::QueryId for Joined {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::expression::Expression for Joined {
    type SqlType = diesel::sql_types::Bool;
}

impl<QS> diesel::expression::AppearsOnTable<QS> for Joined {}

impl<QS> diesel::expression::SelectableExpression<QS> for Joined {}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for Joined {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql(if self.0 { "true" } else { "false" });
        Ok(())
    }
}

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
    relations: Relations,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> AppResult<Vec<EntryRow>> {
    Ok(page_on(conn, filter, relations, after, limit).await?)
}

/// [`page`] on a shared connection, so that it can go out pipelined behind what was sent
/// before it ([`crate::tenancy::TenantDb::read`]).
pub async fn page_on(
    mut conn: &AsyncPgConnection,
    filter: &EntryFilter,
    relations: Relations,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> QueryResult<Vec<EntryRow>> {
    let rows: Vec<JoinedRow> = page_query(filter, relations, after, limit)
        .load(&mut conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(entry, project, client, task, user)| EntryRow {
            entry,
            project,
            client,
            task,
            user,
        })
        .collect())
}

/// The statement [`page`] sends, with `$n` placeholders, and its parameters: for running
/// the same SQL outside the service (the benchmarks time it in psql and pgbench).
pub fn page_sql(
    filter: &EntryFilter,
    relations: Relations,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> String {
    diesel::debug_query::<diesel::pg::Pg, _>(&page_query(filter, relations, after, limit)).to_string()
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

fn page_query(
    filter: &EntryFilter,
    relations: Relations,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> impl for<'a> diesel_async::methods::LoadQuery<'static, &'a AsyncPgConnection, JoinedRow>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ Send
+ 'static {
    let joined = relations.for_filter(filter);
    filtered_page!(
        time_entries::table
            .left_join(
                projects::table.on(projects::id
                    .eq(time_entries::project_id)
                    .and(Joined(joined.project))),
            )
            .left_join(clients::table.on(clients::id.eq(projects::client_id).and(Joined(joined.client))))
            .left_join(
                tasks::table.on(tasks::id
                    .nullable()
                    .eq(time_entries::task_id)
                    .and(Joined(joined.task)))
            )
            .left_join(users::table.on(users::id.eq(time_entries::user_id).and(Joined(joined.user))))
            .select((
                TimeEntry::as_select(),
                Option::<Project>::as_select(),
                Option::<Client>::as_select(),
                Option::<Task>::as_select(),
                Option::<User>::as_select(),
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
        let query = page_query(&filter, Relations::ALL, Some((date, 182)), 101);
        assert!(query.is_safe_to_cache_prepared(&diesel::pg::Pg).unwrap());
        let sql = page_sql(&filter, Relations::ALL, Some((date, 182)), 101);
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

    #[test]
    fn relations_left_out_are_joined_on_false_and_a_client_filter_joins_projects() {
        let sql = page_sql(&EntryFilter::default(), Relations::default(), None, 21);
        assert_eq!(sql.matches(" AND false)").count(), 4, "{sql}");
        let only_user = Relations {
            user: true,
            ..Relations::default()
        };
        let sql = page_sql(&EntryFilter::default(), only_user, None, 21);
        assert_eq!(sql.matches(" AND false)").count(), 3, "{sql}");
        assert!(
            sql.contains(r#"("users"."id" = "time_entries"."user_id") AND true)"#),
            "{sql}"
        );
        let by_client = EntryFilter {
            client_ids: Some(vec![4]),
            ..EntryFilter::default()
        };
        let sql = page_sql(&by_client, Relations::default(), None, 21);
        assert!(
            sql.contains(r#"("projects"."id" = "time_entries"."project_id") AND true)"#),
            "{sql}"
        );
        assert_eq!(sql.matches(" AND false)").count(), 3, "{sql}");
    }
}
