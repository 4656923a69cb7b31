//! Pages of time entries in date order (then id), with the columns and relations their
//! selection reads (project, client, task, user), in one statement. Its text holds only
//! what varies with the request (the page size, the filters given, the columns and joins
//! the selection reads; see [`PageRead`]), each value bound, so each connection keeps it
//! prepared with a plan made for it (within [`crate::db::kept_prepared`]'s caps). Its rows
//! are read by column name ([`crate::db::columns`]): a column left out is a placeholder in
//! the row, which the page's writer never shows, and the resolvers read the page's
//! entries again whole (see `EntryPage`).

use std::hash::{Hash, Hasher};

use chrono::NaiveDate;
use diesel::deserialize;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::row::{Field as _, NamedRow};
use diesel::sql_types::{Array, BigInt, Bool, Date, Text, Untyped};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::catalog::{Client, Project, Task};
use super::entries::{EntryStatus, TimeEntry};
use crate::auth::users::User;
use crate::db::columns::{Picked, ReadInPart};
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

/// Which of an entry's relations a page joins in, and which of their columns it reads:
/// those its selection reads (`None`: not joined). The project, its client and the user
/// are joined inner (every entry has them), the task on the left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relations {
    pub project: Option<Picked<Project>>,
    /// The project's client (joined with the project).
    pub client: Option<Picked<Client>>,
    pub task: Option<Picked<Task>>,
    pub user: Option<Picked<User>>,
}

impl Relations {
    /// Every relation, whole.
    pub fn all() -> Self {
        Self {
            project: Some(Picked::all()),
            client: Some(Picked::all()),
            task: Some(Picked::all()),
            user: Some(Picked::all()),
        }
    }

    /// What a page under `filter` joins: a client (or a client filter) needs the project.
    fn joined(self, filter: &EntryFilter) -> Self {
        let needs_project = self.client.is_some() || filter.client_ids.is_some();
        match self.project {
            None if needs_project => Self {
                project: Some(Picked::keys()),
                ..self
            },
            _ => self,
        }
    }
}

/// One entry of a page with the relations it was joined with (`None` when not joined, or
/// an entry with no task), each read in the columns its [`PageRead`] says.
#[derive(Debug, Clone)]
pub struct EntryRow {
    pub entry: TimeEntry,
    pub project: Option<Project>,
    pub client: Option<Client>,
    pub task: Option<Task>,
    pub user: Option<User>,
}

impl QueryableByName<Pg> for EntryRow {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let mut entry = TimeEntry::blank();
        let (mut project, mut client, mut task, mut user) = (None, None, None, None);
        // Named `<alias><index>` (see `Picked::write_select`), the entry's own first.
        for i in 0..row.field_count() {
            let field = diesel::row::Row::get(row, i).ok_or("a row shorter than its statement")?;
            let name = field.field_name().ok_or("a column without a name")?;
            let (alias, index) = name.split_at_checked(1).ok_or("a column without a name")?;
            let index: usize = index.parse()?;
            let value = field.value();
            match alias {
                TimeEntry::ALIAS => entry.set(index, value)?,
                Project::ALIAS => project.get_or_insert_with(Project::blank).set(index, value)?,
                Client::ALIAS => client.get_or_insert_with(Client::blank).set(index, value)?,
                // Joined on the left: for an entry without a task, every column is NULL.
                Task::ALIAS if entry.task_id.is_none() => {}
                Task::ALIAS => task.get_or_insert_with(Task::blank).set(index, value)?,
                User::ALIAS => user.get_or_insert_with(User::blank).set(index, value)?,
                _ => return Err(format!("a column of no table the page reads: {name}").into()),
            }
        }
        Ok(Self {
            entry,
            project,
            client,
            task,
            user,
        })
    }
}

/// What a page reads, for which tenant (whose requests bring in the statement's shape, see
/// [`crate::db::kept_prepared`]).
#[derive(Debug, Clone, Copy)]
pub struct PageRead {
    /// The entries' own columns.
    pub columns: Picked<TimeEntry>,
    pub relations: Relations,
    pub tenant_id: i64,
}

impl PageRead {
    /// Every column and relation.
    pub fn all(tenant_id: i64) -> Self {
        Self {
            columns: Picked::all(),
            relations: Relations::all(),
            tenant_id,
        }
    }
}

/// A page's statement: its text, with a placeholder for each value of the cursor and the
/// filters given, in [`QueryFragment::walk_ast`]'s order.
struct PageStatement {
    /// `SELECT` to the joins.
    head: String,
    after: Option<(NaiveDate, i64)>,
    filter: EntryFilter,
    statuses: Option<Vec<&'static str>>,
    limit: i64,
    keep_prepared: bool,
}

impl QueryId for PageStatement {
    type QueryId = ();
    // Keyed by its text in each connection's statement cache.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for PageStatement {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for PageStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if !self.keep_prepared {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(&self.head);
        let f = &self.filter;
        let mut w = Conditions {
            out: out.reborrow(),
            first: true,
        };
        // A row comparison, which the index on (work_date, id) answers directly (the
        // equivalent OR of two conditions makes PostgreSQL scan).
        if let Some((date, id)) = &self.after {
            w.bound::<Date, _>("(e.work_date, e.id) > (", date, ", ")?;
            w.out.push_bind_param::<BigInt, _>(id)?;
            w.out.push_sql(")");
        }
        if let Some(from) = &f.from {
            w.bound::<Date, _>("e.work_date >= ", from, "")?;
        }
        if let Some(to) = &f.to {
            w.bound::<Date, _>("e.work_date <= ", to, "")?;
        }
        for (any, ids) in [
            ("e.user_id = ANY(", &f.user_ids),
            ("p.client_id = ANY(", &f.client_ids),
            ("e.project_id = ANY(", &f.project_ids),
            ("e.task_id = ANY(", &f.task_ids),
        ] {
            if let Some(ids) = ids {
                w.bound::<Array<BigInt>, _>(any, ids, ")")?;
            }
        }
        if let Some(billable) = &f.billable {
            w.bound::<Bool, _>("e.billable = ", billable, "")?;
        }
        if let Some(statuses) = &self.statuses {
            w.bound::<Array<Text>, _>("e.status = ANY(", statuses, ")")?;
        }
        match f.running {
            Some(true) => w.and("e.started_at IS NOT NULL AND e.ended_at IS NULL"),
            Some(false) => w.and("e.minutes IS NOT NULL"),
            None => {}
        }
        // The limit is written in, not bound (see `crate::db::OrderedLimit`).
        out.push_sql(&format!(
            " ORDER BY e.work_date, e.id LIMIT {}",
            self.limit.max(0)
        ));
        Ok(())
    }
}

/// A statement's WHERE clause, one condition after another.
struct Conditions<'a, 'b> {
    out: AstPass<'a, 'b, Pg>,
    first: bool,
}

impl<'b> Conditions<'_, 'b> {
    fn and(&mut self, condition: &str) {
        self.out.push_sql(if self.first { " WHERE " } else { " AND " });
        self.out.push_sql(condition);
        self.first = false;
    }

    /// A condition with one value bound: `before $n after`.
    fn bound<ST, U>(&mut self, before: &str, value: &'b U, after: &str) -> QueryResult<()>
    where
        U: diesel::serialize::ToSql<ST, Pg>,
        Pg: diesel::sql_types::HasSqlType<ST>,
    {
        self.and(before);
        self.out.push_bind_param::<ST, U>(value)?;
        self.out.push_sql(after);
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
    statement(filter, read, after, limit).load(&mut conn).await
}

/// The statement [`page`] sends, with `$n` placeholders, and its parameters: for running
/// the same SQL outside the service (the benchmarks time it in psql and pgbench).
pub fn page_sql(filter: &EntryFilter, read: PageRead, after: Option<(NaiveDate, i64)>, limit: i64) -> String {
    diesel::debug_query::<Pg, _>(&statement(filter, read, after, limit)).to_string()
}

fn statement(
    filter: &EntryFilter,
    read: PageRead,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
) -> PageStatement {
    let joined = read.relations.joined(filter);
    let mut head = String::with_capacity(512);
    head.push_str("SELECT ");
    read.columns.write_select(&mut head);
    if let Some(p) = joined.project {
        p.write_select(&mut head);
    }
    if let Some(c) = joined.client {
        c.write_select(&mut head);
    }
    if let Some(t) = joined.task {
        t.write_select(&mut head);
    }
    if let Some(u) = joined.user {
        u.write_select(&mut head);
    }
    head.push_str(" FROM time_entries e");
    if joined.project.is_some() {
        head.push_str(" JOIN projects p ON p.id = e.project_id");
    }
    if joined.client.is_some() {
        head.push_str(" JOIN clients c ON c.id = p.client_id");
    }
    if joined.task.is_some() {
        head.push_str(" LEFT JOIN tasks t ON t.id = e.task_id");
    }
    if joined.user.is_some() {
        head.push_str(" JOIN users u ON u.id = e.user_id");
    }
    let f = filter;
    let present = [
        after.is_some(),
        f.from.is_some(),
        f.to.is_some(),
        f.user_ids.is_some(),
        f.client_ids.is_some(),
        f.project_ids.is_some(),
        f.task_ids.is_some(),
        f.billable.is_some(),
        f.statuses.is_some(),
    ];
    // What varies in the statement's text, as one number (see `crate::db::kept_prepared`).
    let mut shape = std::hash::DefaultHasher::new();
    (&head, present, f.running, limit).hash(&mut shape);
    PageStatement {
        keep_prepared: crate::db::kept_prepared(read.tenant_id, shape.finish()),
        head,
        after,
        filter: filter.clone(),
        statuses: f
            .statuses
            .as_ref()
            .map(|s| s.iter().map(|s| s.as_str()).collect()),
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(filter: &EntryFilter, read: PageRead, after: Option<(NaiveDate, i64)>, limit: i64) -> u64 {
        let sql = page_sql(filter, read, after, limit);
        let mut h = std::hash::DefaultHasher::new();
        crate::db::without_binds(&sql).hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_page_after_a_cursor_is_a_statement_the_connection_can_keep_prepared() {
        let date = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let filter = EntryFilter {
            user_ids: Some(vec![3]),
            statuses: Some(vec![EntryStatus::Approved]),
            ..EntryFilter::default()
        };
        let statement = statement(&filter, PageRead::all(1), Some((date, 182)), 101);
        assert!(statement.is_safe_to_cache_prepared(&Pg).unwrap());
        let sql = page_sql(&filter, PageRead::all(1), Some((date, 182)), 101);
        assert!(
            sql.contains(
                " WHERE (e.work_date, e.id) > ($1, $2) AND e.user_id = ANY($3) AND e.status = ANY($4)"
            ),
            "{sql}"
        );
        assert!(
            sql.contains(" ORDER BY e.work_date, e.id LIMIT 101 -- binds: "),
            "{sql}"
        );
        assert!(
            sql.ends_with("-- binds: [2026-06-01, 182, [3], [\"APPROVED\"]]"),
            "{sql}"
        );
    }

    #[test]
    fn a_page_joins_only_the_relations_read_and_a_client_filter_joins_projects() {
        let bare = PageRead {
            columns: Picked::keys(),
            relations: Relations::default(),
            tenant_id: 1,
        };
        let sql = page_sql(&EntryFilter::default(), bare, None, 21);
        assert_eq!(
            sql,
            "SELECT e.id AS e0, e.user_id AS e1, e.project_id AS e2, e.task_id AS e3, e.work_date AS e4 \
             FROM time_entries e ORDER BY e.work_date, e.id LIMIT 21 -- binds: []"
        );
        let users = PageRead {
            relations: Relations {
                user: Some(Picked::<User>::of_field("email")),
                ..Relations::default()
            },
            ..bare
        };
        let sql = page_sql(&EntryFilter::default(), users, None, 21);
        assert!(
            sql.contains("e.work_date AS e4, u.id AS u0, u.email AS u1 FROM time_entries e JOIN users u ON u.id = e.user_id ORDER"),
            "{sql}"
        );
        let by_client = EntryFilter {
            client_ids: Some(vec![4]),
            ..EntryFilter::default()
        };
        let sql = page_sql(&by_client, bare, None, 21);
        assert!(
            sql.contains(", p.id AS p0, p.client_id AS p1 FROM time_entries e JOIN projects p ON p.id = e.project_id WHERE p.client_id = ANY($1) ORDER"),
            "{sql}"
        );
        let sql = page_sql(&EntryFilter::default(), PageRead::all(1), None, 21);
        assert!(
            sql.contains(
                " FROM time_entries e JOIN projects p ON p.id = e.project_id JOIN clients c ON c.id = p.client_id \
                 LEFT JOIN tasks t ON t.id = e.task_id JOIN users u ON u.id = e.user_id ORDER"
            ),
            "{sql}"
        );
        // A client alone brings its project's keys.
        let client = PageRead {
            relations: Relations {
                client: Some(Picked::of_field("name")),
                ..Relations::default()
            },
            ..bare
        };
        let sql = page_sql(&EntryFilter::default(), client, None, 21);
        assert!(
            sql.contains("p.id AS p0, p.client_id AS p1, c.id AS c0, c.name AS c1 FROM"),
            "{sql}"
        );
    }

    #[test]
    fn each_column_read_and_each_filter_given_is_its_own_shape() {
        let filter = EntryFilter::default();
        let lean = PageRead {
            columns: Picked::of_field("minutes"),
            relations: Relations::default(),
            tenant_id: 1,
        };
        let sql = page_sql(&filter, lean, None, 21);
        assert!(sql.starts_with("SELECT e.id AS e0, e.user_id AS e1, e.project_id AS e2, e.task_id AS e3, e.work_date AS e4, e.minutes AS e7 FROM"), "{sql}");
        let date = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let filtered = |filter: EntryFilter| shape_of(&filter, lean, None, 21);
        let shapes: std::collections::HashSet<u64> = [
            shape_of(&filter, lean, None, 21),
            shape_of(
                &filter,
                PageRead {
                    columns: Picked::all(),
                    ..lean
                },
                None,
                21,
            ),
            shape_of(&filter, lean, Some((date, 1)), 21),
            shape_of(
                &filter,
                PageRead {
                    relations: Relations::all(),
                    ..lean
                },
                None,
                21,
            ),
            shape_of(&filter, lean, None, 26),
            filtered(EntryFilter {
                running: Some(true),
                ..EntryFilter::default()
            }),
            filtered(EntryFilter {
                running: Some(false),
                ..EntryFilter::default()
            }),
            filtered(EntryFilter {
                from: Some(date),
                ..EntryFilter::default()
            }),
        ]
        .into();
        assert_eq!(shapes.len(), 8);
        // Values are bound: another cursor is the same statement.
        assert_eq!(
            crate::db::without_binds(&page_sql(&filter, lean, Some((date, 1)), 21)),
            crate::db::without_binds(&page_sql(&filter, lean, Some((date.succ_opt().unwrap(), 9)), 21)),
        );
    }

    #[test]
    fn every_field_of_an_entry_reads_a_column_beyond_the_keys_and_all_of_them_read_every_one() {
        let fields: Vec<&str> = TimeEntry::COLUMNS
            .iter()
            .flat_map(|c| c.fields.unwrap_or_default())
            .copied()
            .collect();
        assert!(fields.contains(&"notes") && fields.contains(&"externalRef"));
        for &field in &fields {
            assert_ne!(Picked::<TimeEntry>::of_field(field), Picked::keys(), "{field}");
        }
        for field in ["id", "date", "user", "project", "task", "__typename"] {
            assert_eq!(Picked::<TimeEntry>::of_field(field), Picked::keys(), "{field}");
        }
        let amount = Picked::<TimeEntry>::of_field("amount");
        assert!(amount.covers(Picked::of_field("hours")));
        assert!(!amount.covers(Picked::of_field("running")));
        assert!(
            fields
                .iter()
                .fold(Picked::<TimeEntry>::keys(), |p, f| p.and_field(f))
                .is_all()
        );
        // One letter each, to tell their columns apart.
        let aliases = [
            TimeEntry::ALIAS,
            Project::ALIAS,
            Client::ALIAS,
            Task::ALIAS,
            User::ALIAS,
        ];
        assert!(aliases.iter().all(|a| a.len() == 1));
        assert_eq!(aliases.iter().collect::<std::collections::HashSet<_>>().len(), 5);
    }
}
