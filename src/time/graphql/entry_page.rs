//! A page of `timeEntries` as the API answers it: written directly from the page's rows
//! when its selection is made of plain fields ([`direct`]), else handed, as a Relay
//! connection, to the general executor and its resolvers. Both answer alike; the tests
//! compare them field by field.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor};
use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use chrono::NaiveDate;

use super::catalog::{ProjectNode, TaskNode};
use super::entries::TimeEntryNode;
use crate::auth::graphql::UserNode;
use crate::auth::users::User;
use crate::db::columns::{Partial, Picked};
use crate::graphql::support::direct::{self, Json};
use crate::graphql::support::{ById, NodeType, PageStats, RequestContext, feed};
use crate::time::catalog::{Client, Project, Task};
use crate::time::entries;
use crate::time::entry_pages::{EntryRow, PageRead};
use crate::time::reports;

type Cursor = OpaqueCursor<(NaiveDate, i64)>;
type EntryConnection = Connection<Cursor, TimeEntryNode, EmptyFields, EmptyFields>;
type EntryEdge = Edge<Cursor, TimeEntryNode, EmptyFields>;

/// One page of entries with what its fields need.
pub struct EntryPage {
    /// Each entry with the relations the selection reads; its user is in `users`.
    pub rows: Vec<EntryRow>,
    /// Which of the entries' and their relations' columns were read; the others hold
    /// placeholders.
    pub read: PageRead,
    /// The users the signed-in user may see among the page's, by id; `None` when no `user`
    /// was selected, and none were loaded.
    pub users: Option<HashMap<i64, User>>,
    /// Decimals of the tenant's currency, for amounts.
    pub minor_units: u32,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

fn cursor(row: &EntryRow) -> String {
    OpaqueCursor((row.entry.work_date, row.entry.id)).encode_cursor()
}

impl EntryPage {
    /// The page written as JSON text, or `None` when its selection needs the resolvers.
    fn direct(&self, ctx: &ContextSelectionSet<'_>) -> Option<Json> {
        // Some 300 bytes an entry with a few relations; grown as needed.
        let mut out = Json::with_capacity(512 + 320 * self.rows.len());
        direct::connection(
            ctx,
            &ctx.item.node,
            &EntryConnection::type_name(),
            &EntryEdge::type_name(),
            &self.rows,
            cursor,
            (self.has_previous_page, self.has_next_page),
            &mut out,
            |row, f, out| self.entry(ctx, row, f, out),
        )?;
        Some(out)
    }

    /// One entry, as [`TimeEntryNode`]'s resolvers give it.
    fn entry<'a>(
        &self,
        ctx: &ContextSelectionSet<'a>,
        row: &EntryRow,
        field: &'a Field,
        out: &mut Json,
    ) -> Option<()> {
        let relations = &self.read.relations;
        let entry = Partial {
            row: &row.entry,
            picked: self.read.columns,
        };
        let project = row.project.as_ref().zip(relations.project);
        let project = project.map(|(row, picked)| Partial { row, picked });
        let client = row.client.as_ref().zip(relations.client);
        let client = client.map(|(row, picked)| Partial { row, picked });
        direct::object(
            ctx,
            &field.selection_set.node,
            NodeType::TimeEntry.name(),
            out,
            |f, out| {
                let set = &f.selection_set.node;
                let name = direct::name(f);
                // A field whose columns were not read is the resolvers'.
                let entry = entry.for_field(name)?;
                match name {
                    "id" => out.id(NodeType::TimeEntry, entry.id),
                    "user" => match self.users.as_ref()?.get(&entry.user_id) {
                        Some(user) => {
                            let user = Partial {
                                row: user,
                                picked: relations.user?,
                            };
                            direct::object(ctx, set, NodeType::User.name(), out, |u, out| {
                                UserNode::direct_field(user, u, out)
                            })?
                        }
                        None => out.null(),
                    },
                    "project" => direct::object(ctx, set, NodeType::Project.name(), out, |p, out| {
                        ProjectNode::direct_field(ctx, project?, client, p, out)
                    })?,
                    "task" => match (&row.task, entry.task_id) {
                        (Some(task), _) => {
                            let task = Partial {
                                row: task,
                                picked: relations.task?,
                            };
                            direct::object(ctx, set, NodeType::Task.name(), out, |t, out| {
                                TaskNode::direct_field(ctx, task, project, client, t, out)
                            })?
                        }
                        (None, None) => out.null(),
                        // Not joined: the resolvers load it.
                        (None, Some(_)) => return None,
                    },
                    "date" => out.date(&entry.work_date),
                    "startedAt" => out.nullable(entry.started_at.as_ref()),
                    "endedAt" => out.nullable(entry.ended_at.as_ref()),
                    "minutes" => match entry.minutes {
                        Some(minutes) => out.int(minutes.into()),
                        None => out.null(),
                    },
                    "hours" => {
                        out.nullable_decimal(entry.minutes.map(|m| reports::hours(i64::from(m))).as_ref())
                    }
                    "running" => out.bool(entry.running()),
                    "notes" => out.str(&entry.notes),
                    "billable" => out.bool(entry.billable),
                    "rate" => out.nullable_decimal(entry.hourly_rate.map(|r| r.normalize()).as_ref()),
                    "amount" => out.nullable_decimal(entry.amount(self.minor_units).as_ref()),
                    "status" => out.enumeration(&entry.status()),
                    "externalRef" => out.nullable_str(entry.external_ref.as_deref()),
                    "createdAt" => out.scalar(&entry.created_at),
                    "updatedAt" => out.scalar(&entry.updated_at),
                    _ => return None,
                }
                Some(())
            },
        )
    }
}

impl OutputType for EntryPage {
    fn type_name() -> Cow<'static, str> {
        EntryConnection::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        EntryConnection::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let req = ctx.data_unchecked::<RequestContext>();
        if let Some(json) = self.direct(ctx) {
            req.services
                .get::<PageStats>()
                .entries_direct
                .fetch_add(1, Ordering::Relaxed);
            return Ok(json.into_value());
        }
        req.services
            .get::<PageStats>()
            .entries_general
            .fetch_add(1, Ordering::Relaxed);
        // The resolvers find the page's relations in the request's loaders: those read
        // whole (one read in part would answer a later field with a placeholder).
        let relations = self.read.relations;
        if relations.project.is_some_and(Picked::is_all) {
            req.loader::<ById<Project>>().feed_many(
                self.rows
                    .iter()
                    .filter_map(|r| r.project.clone())
                    .map(|p| (p.id, p)),
            );
        }
        if relations.client.is_some_and(Picked::is_all) {
            req.loader::<ById<Client>>().feed_many(
                self.rows
                    .iter()
                    .filter_map(|r| r.client.clone())
                    .map(|c| (c.id, c)),
            );
        }
        if relations.task.is_some_and(Picked::is_all) {
            req.loader::<ById<Task>>()
                .feed_many(self.rows.iter().filter_map(|r| r.task.clone()).map(|t| (t.id, t)));
        }
        if let Some(users) = &self.users
            && relations.user.is_some_and(Picked::is_all)
        {
            feed(&req.loader::<ById<User>>(), users);
        }
        // The resolvers read any column: entries read in part are read again whole, in
        // one statement. One deleted in between is left out, as a page read after the
        // deletion would have it.
        let mut whole = if self.read.columns.is_all() {
            None
        } else {
            let ids: Vec<i64> = self.rows.iter().map(|r| r.entry.id).collect();
            let read = async {
                let mut conn = req.db.conn().await?;
                entries::by_ids(&mut conn, &ids).await
            };
            let entries = read
                .await
                .map_err(|e| async_graphql::Error::from(e).into_server_error(field.pos))?;
            Some(entries.into_iter().map(|e| (e.id, e)).collect::<HashMap<_, _>>())
        };
        let mut connection = EntryConnection::new(self.has_previous_page, self.has_next_page);
        connection.edges.extend(self.rows.iter().filter_map(|r| {
            let entry = match &mut whole {
                Some(whole) => whole.remove(&r.entry.id)?,
                None => r.entry.clone(),
            };
            // The cursor is where the page read the entry, as the direct writer gives it.
            Some(Edge::new(
                OpaqueCursor((r.entry.work_date, r.entry.id)),
                TimeEntryNode(entry),
            ))
        }));
        connection.resolve(ctx, field).await
    }
}
