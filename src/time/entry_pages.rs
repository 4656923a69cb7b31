//! Pages of time entries in date order (then id), with the columns and relations their
//! selection reads (project, client, task, user), in one statement that each connection
//! keeps prepared (one per page size, columns and relations: all are written in, see
//! [`crate::db::OrderedLimit`], [`EntryColumns`] and [`Relations`]).

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

/// Which of an entry's own columns a page reads besides its keys (id, user, project, task,
/// date), named by the fields that read them. A column left out is written into the
/// statement as a constant of its type (`NULL`, `''`, `false`, the epoch), which the page's
/// writer never reads: it writes a field only when its columns were read, and the
/// resolvers read the page's entries again whole (see `EntryPage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryColumns {
    /// `started_at`, `ended_at`, `minutes`.
    pub timing: bool,
    pub notes: bool,
    /// `billable`, `hourly_rate`.
    pub billing: bool,
    pub status: bool,
    pub external_ref: bool,
    /// `created_at`, `updated_at`.
    pub stamps: bool,
}

impl EntryColumns {
    pub const ALL: EntryColumns = EntryColumns {
        timing: true,
        notes: true,
        billing: true,
        status: true,
        external_ref: true,
        stamps: true,
    };

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }

    /// The `TimeEntry` fields that read columns beyond the keys.
    pub const FIELDS: [&'static str; 13] = [
        "startedAt",
        "endedAt",
        "minutes",
        "hours",
        "running",
        "notes",
        "billable",
        "rate",
        "amount",
        "status",
        "externalRef",
        "createdAt",
        "updatedAt",
    ];

    /// The columns the `TimeEntry` field `name` reads (none for the keys' fields and for
    /// relations): one mapping for what a page reads and for what its writer may write.
    pub fn of_field(name: &str) -> Self {
        let none = Self::default();
        match name {
            "startedAt" | "endedAt" | "minutes" | "hours" | "running" => Self { timing: true, ..none },
            "notes" => Self { notes: true, ..none },
            "billable" | "rate" => Self {
                billing: true,
                ..none
            },
            "amount" => Self {
                timing: true,
                billing: true,
                ..none
            },
            "status" => Self { status: true, ..none },
            "externalRef" => Self {
                external_ref: true,
                ..none
            },
            "createdAt" | "updatedAt" => Self { stamps: true, ..none },
            _ => none,
        }
    }

    /// Both sets of columns.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self {
            timing: self.timing || other.timing,
            notes: self.notes || other.notes,
            billing: self.billing || other.billing,
            status: self.status || other.status,
            external_ref: self.external_ref || other.external_ref,
            stamps: self.stamps || other.stamps,
        }
    }

    /// Whether every column of `other` is here.
    pub fn covers(self, other: Self) -> bool {
        self.with(other) == self
    }
}

/// A selected column, or in its place a constant of its type: kept or not, the row has the
/// same shape. Its query id is not static, so each combination is its own statement.
#[derive(Debug, Clone, Copy)]
struct Kept<C> {
    column: C,
    kept: bool,
}

fn kept<C>(column: C, kept: bool) -> Kept<C> {
    Kept { column, kept }
}

/// The constant that stands in for a column of this type that was not read.
trait StandIn {
    const SQL: &'static str;
}

impl StandIn for diesel::sql_types::Text {
    const SQL: &'static str = "''";
}

impl StandIn for diesel::sql_types::Bool {
    const SQL: &'static str = "false";
}

impl StandIn for diesel::sql_types::Timestamptz {
    const SQL: &'static str = "'epoch'::timestamptz";
}

impl<T: diesel::sql_types::SqlType> StandIn for diesel::sql_types::Nullable<T> {
    const SQL: &'static str = "NULL";
}

impl<C> diesel::query_builder::QueryId for Kept<C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C: diesel::Expression> diesel::Expression for Kept<C> {
    type SqlType = C::SqlType;
}

impl<C: diesel::AppearsOnTable<QS>, QS> diesel::AppearsOnTable<QS> for Kept<C> {}

impl<C: diesel::SelectableExpression<QS>, QS> diesel::SelectableExpression<QS> for Kept<C> {}

impl<C: diesel::expression::ValidGrouping<G>, G> diesel::expression::ValidGrouping<G> for Kept<C> {
    type IsAggregate = C::IsAggregate;
}

impl<C> diesel::query_builder::QueryFragment<diesel::pg::Pg> for Kept<C>
where
    C: diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::Expression,
    C::SqlType: StandIn,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        if self.kept {
            self.column.walk_ast(out)
        } else {
            out.push_sql(<C::SqlType as StandIn>::SQL);
            Ok(())
        }
    }
}

/// An entry's columns, in [`TimeEntry`]'s order, some stood in for.
type EntrySelect = (
    time_entries::id,
    time_entries::user_id,
    time_entries::project_id,
    time_entries::task_id,
    time_entries::work_date,
    Kept<time_entries::started_at>,
    Kept<time_entries::ended_at>,
    Kept<time_entries::minutes>,
    Kept<time_entries::notes>,
    Kept<time_entries::billable>,
    Kept<time_entries::hourly_rate>,
    Kept<time_entries::status>,
    Kept<time_entries::external_ref>,
    Kept<time_entries::created_at>,
    Kept<time_entries::updated_at>,
);

/// An entry's columns, in [`TimeEntry`]'s order, those not in `columns` stood in for.
fn entry_columns(columns: EntryColumns) -> EntrySelect {
    let c = columns;
    (
        time_entries::id,
        time_entries::user_id,
        time_entries::project_id,
        time_entries::task_id,
        time_entries::work_date,
        kept(time_entries::started_at, c.timing),
        kept(time_entries::ended_at, c.timing),
        kept(time_entries::minutes, c.timing),
        kept(time_entries::notes, c.notes),
        kept(time_entries::billable, c.billing),
        kept(time_entries::hourly_rate, c.billing),
        kept(time_entries::status, c.status),
        kept(time_entries::external_ref, c.external_ref),
        kept(time_entries::created_at, c.stamps),
        kept(time_entries::updated_at, c.stamps),
    )
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

/// What a page reads, for which tenant (whose requests bring in the statement's shape, see
/// [`crate::db::kept_prepared`]).
#[derive(Debug, Clone, Copy)]
pub struct PageRead {
    pub columns: EntryColumns,
    pub relations: Relations,
    pub tenant_id: i64,
}

impl PageRead {
    /// Every column and relation.
    pub fn all(tenant_id: i64) -> Self {
        Self {
            columns: EntryColumns::ALL,
            relations: Relations::ALL,
            tenant_id,
        }
    }
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
    read: PageRead,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> AppResult<Vec<EntryRow>> {
    Ok(page_on(conn, filter, read, after, limit).await?)
}

/// [`page`] on a shared connection, so that it can go out pipelined behind what was sent
/// before it ([`crate::tenancy::TenantDb::read`]).
pub async fn page_on(
    mut conn: &AsyncPgConnection,
    filter: &EntryFilter,
    read: PageRead,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> QueryResult<Vec<EntryRow>> {
    let rows: Vec<JoinedRow> = page_query(filter, read, after, limit).load(&mut conn).await?;
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
pub fn page_sql(filter: &EntryFilter, read: PageRead, after: Option<(NaiveDate, i64)>, limit: i64) -> String {
    diesel::debug_query::<diesel::pg::Pg, _>(&page_query(filter, read, after, limit)).to_string()
}

/// The page's filters, cursor and order on a boxed query of entries joined with their
/// projects (and more).
macro_rules! filtered_page {
    ($query:expr, $filter:expr, $after:expr, $limit:expr, $keep:expr) => {{
        let filter: &EntryFilter = $filter;
        let mut query = $query
            .order(crate::db::OrderedLimit {
                order: (time_entries::work_date, time_entries::id),
                limit: $limit,
                keep_prepared: $keep,
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
    read: PageRead,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> impl for<'a> diesel_async::methods::LoadQuery<'static, &'a AsyncPgConnection, JoinedRow>
+ diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ Send
+ 'static {
    let PageRead {
        columns,
        relations,
        tenant_id,
    } = read;
    let joined = relations.for_filter(filter);
    let keep = crate::db::kept_prepared(tenant_id, shape(filter, after.is_some(), columns, joined, limit));
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
                entry_columns(columns),
                Option::<Project>::as_select(),
                Option::<Client>::as_select(),
                Option::<Task>::as_select(),
                Option::<User>::as_select(),
            )),
        filter,
        after,
        limit,
        keep
    )
}

/// What varies in the text of a page's statement, as one number (see
/// [`crate::db::kept_prepared`]).
fn shape(filter: &EntryFilter, after: bool, columns: EntryColumns, relations: Relations, limit: i64) -> u64 {
    let f = filter;
    let bits = [
        f.from.is_some(),
        f.to.is_some(),
        f.user_ids.is_some(),
        f.client_ids.is_some(),
        f.project_ids.is_some(),
        f.task_ids.is_some(),
        f.billable.is_some(),
        f.statuses.is_some(),
        f.running == Some(true),
        f.running == Some(false),
        after,
        columns.timing,
        columns.notes,
        columns.billing,
        columns.status,
        columns.external_ref,
        columns.stamps,
        relations.project,
        relations.client,
        relations.task,
        relations.user,
    ];
    let flags = bits
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, bit)| acc | (u64::from(*bit) << i));
    // Page sizes are small; the flags take the low 21 bits.
    (u64::try_from(limit).unwrap_or(0) << 32) | flags
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
        let query = page_query(&filter, PageRead::all(1), Some((date, 182)), 101);
        assert!(query.is_safe_to_cache_prepared(&diesel::pg::Pg).unwrap());
        let sql = page_sql(&filter, PageRead::all(1), Some((date, 182)), 101);
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
        let sql = page_sql(
            &EntryFilter::default(),
            PageRead {
                relations: Relations::default(),
                ..PageRead::all(1)
            },
            None,
            21,
        );
        assert_eq!(sql.matches(" AND false)").count(), 4, "{sql}");
        let only_user = Relations {
            user: true,
            ..Relations::default()
        };
        let sql = page_sql(
            &EntryFilter::default(),
            PageRead {
                relations: only_user,
                ..PageRead::all(1)
            },
            None,
            21,
        );
        assert_eq!(sql.matches(" AND false)").count(), 3, "{sql}");
        assert!(
            sql.contains(r#"("users"."id" = "time_entries"."user_id") AND true)"#),
            "{sql}"
        );
        let by_client = EntryFilter {
            client_ids: Some(vec![4]),
            ..EntryFilter::default()
        };
        let sql = page_sql(
            &by_client,
            PageRead {
                relations: Relations::default(),
                ..PageRead::all(1)
            },
            None,
            21,
        );
        assert!(
            sql.contains(r#"("projects"."id" = "time_entries"."project_id") AND true)"#),
            "{sql}"
        );
        assert_eq!(sql.matches(" AND false)").count(), 3, "{sql}");
    }

    #[test]
    fn columns_left_out_are_stood_in_for_and_each_combination_is_its_own_shape() {
        let filter = EntryFilter::default();
        let lean = EntryColumns {
            timing: true,
            ..EntryColumns::default()
        };
        let sql = page_sql(
            &filter,
            PageRead {
                columns: lean,
                relations: Relations::default(),
                tenant_id: 1,
            },
            None,
            21,
        );
        assert!(sql.contains(r#""time_entries"."minutes", '', false, NULL, '', NULL, 'epoch'::timestamptz, 'epoch'::timestamptz"#), "{sql}");
        let all = page_sql(
            &filter,
            PageRead {
                relations: Relations::default(),
                ..PageRead::all(1)
            },
            None,
            21,
        );
        assert!(
            all.contains(r#""time_entries"."notes", "time_entries"."billable""#),
            "{all}"
        );
        let shapes: std::collections::HashSet<u64> = [
            shape(&filter, false, lean, Relations::default(), 21),
            shape(&filter, false, EntryColumns::ALL, Relations::default(), 21),
            shape(&filter, true, lean, Relations::default(), 21),
            shape(&filter, false, lean, Relations::ALL, 21),
            shape(&filter, false, lean, Relations::default(), 26),
        ]
        .into();
        assert_eq!(shapes.len(), 5);
        assert_eq!(
            shape(&filter, false, lean, Relations::default(), 21),
            shape(&filter, false, lean, Relations::default(), 21)
        );
    }

    #[test]
    fn each_field_names_its_columns_and_a_set_covers_only_what_it_holds() {
        for field in EntryColumns::FIELDS {
            assert_ne!(EntryColumns::of_field(field), EntryColumns::default(), "{field}");
        }
        for field in ["id", "date", "user", "project", "task", "__typename"] {
            assert_eq!(EntryColumns::of_field(field), EntryColumns::default(), "{field}");
        }
        let timing = EntryColumns::of_field("minutes");
        assert!(timing.covers(EntryColumns::of_field("running")));
        assert!(
            !timing.covers(EntryColumns::of_field("amount")),
            "amount needs the rate too"
        );
        let amount = timing.with(EntryColumns::of_field("rate"));
        assert!(amount.covers(EntryColumns::of_field("amount")));
        let all = EntryColumns::FIELDS
            .iter()
            .fold(EntryColumns::default(), |c, f| c.with(EntryColumns::of_field(f)));
        assert!(all.is_all());
    }
}
