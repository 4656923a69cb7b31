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

use super::entries::EntryRow;
use super::graphql::{ProjectNode, TaskNode};
use super::graphql_entries::TimeEntryNode;
use super::reports;
use crate::auth::graphql::UserNode;
use crate::auth::users::User;
use crate::graphql::{RequestContext, direct, feed};

type Cursor = OpaqueCursor<(NaiveDate, i64)>;
type EntryConnection = Connection<Cursor, TimeEntryNode, EmptyFields, EmptyFields>;
type EntryEdge = Edge<Cursor, TimeEntryNode, EmptyFields>;

/// One page of entries with what its fields need.
pub struct EntryPage {
    /// Each entry with its project, client and task.
    pub rows: Vec<EntryRow>,
    /// The users the signed-in user may see among the page's, by id; `None` when no `user`
    /// was selected, and none were loaded.
    pub users: Option<HashMap<i64, User>>,
    /// Decimals of the tenant's currency, for amounts.
    pub minor_units: u32,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

fn cursor((entry, ..): &EntryRow) -> Value {
    Value::String(OpaqueCursor((entry.work_date, entry.id)).encode_cursor())
}

impl EntryPage {
    /// The page's value, or `None` when its selection needs the resolvers.
    fn direct(&self, ctx: &ContextSelectionSet<'_>) -> Option<Value> {
        let edge = EntryEdge::type_name();
        direct::object(
            ctx,
            &ctx.item.node,
            &EntryConnection::type_name(),
            |f| match direct::name(f) {
                "edges" => direct::list(&self.rows, |row| {
                    direct::object(ctx, &f.selection_set.node, &edge, |e| match direct::name(e) {
                        "cursor" => Some(cursor(row)),
                        "node" => self.entry(ctx, row, e),
                        _ => None,
                    })
                }),
                "nodes" => direct::list(&self.rows, |row| self.entry(ctx, row, f)),
                "pageInfo" => direct::object(ctx, &f.selection_set.node, "PageInfo", |p| {
                    Some(match direct::name(p) {
                        "hasPreviousPage" => Value::Boolean(self.has_previous_page),
                        "hasNextPage" => Value::Boolean(self.has_next_page),
                        "startCursor" => self.rows.first().map_or(Value::Null, cursor),
                        "endCursor" => self.rows.last().map_or(Value::Null, cursor),
                        _ => return None,
                    })
                }),
                _ => None,
            },
        )
    }

    /// One entry, as [`TimeEntryNode`]'s resolvers give it.
    fn entry<'a>(&self, ctx: &ContextSelectionSet<'a>, row: &EntryRow, field: &'a Field) -> Option<Value> {
        let (entry, project, client, task) = row;
        direct::object(ctx, &field.selection_set.node, "TimeEntry", |f| {
            let set = &f.selection_set.node;
            Some(match direct::name(f) {
                "id" => direct::id("TimeEntry", entry.id),
                "user" => match self.users.as_ref()?.get(&entry.user_id) {
                    Some(user) => direct::object(ctx, set, "User", |u| UserNode::direct_field(user, u))?,
                    None => Value::Null,
                },
                "project" => direct::object(ctx, set, "Project", |p| {
                    ProjectNode::direct_field(ctx, project, client, p)
                })?,
                "task" => match task {
                    Some(task) => direct::object(ctx, set, "Task", |t| {
                        TaskNode::direct_field(ctx, task, project, client, t)
                    })?,
                    None => Value::Null,
                },
                "date" => direct::date(&entry.work_date),
                "startedAt" => direct::nullable(entry.started_at.as_ref()),
                "endedAt" => direct::nullable(entry.ended_at.as_ref()),
                "minutes" => entry.minutes.map_or(Value::Null, |m| Value::Number(m.into())),
                "hours" => direct::nullable(entry.minutes.map(|m| reports::hours(i64::from(m))).as_ref()),
                "running" => Value::Boolean(entry.running()),
                "notes" => direct::string(&entry.notes),
                "billable" => Value::Boolean(entry.billable),
                "rate" => direct::nullable(entry.hourly_rate.map(|r| r.normalize()).as_ref()),
                "amount" => direct::nullable(entry.amount(self.minor_units).as_ref()),
                "status" => direct::enumeration(&entry.status()),
                "externalRef" => direct::nullable_string(entry.external_ref.as_deref()),
                "createdAt" => direct::scalar(&entry.created_at),
                "updatedAt" => direct::scalar(&entry.updated_at),
                _ => return None,
            })
        })
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
        if let Some(value) = self.direct(ctx) {
            req.services.pages.entries_direct.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        req.services.pages.entries_general.fetch_add(1, Ordering::Relaxed);
        // The resolvers find the page's relations in the request's loaders.
        req.projects
            .feed_many(self.rows.iter().map(|(_, p, _, _)| (p.id, p.clone())))
            .await;
        req.clients
            .feed_many(self.rows.iter().map(|(_, _, c, _)| (c.id, c.clone())))
            .await;
        req.tasks
            .feed_many(
                self.rows
                    .iter()
                    .filter_map(|(_, _, _, t)| t.clone())
                    .map(|t| (t.id, t)),
            )
            .await;
        if let Some(users) = &self.users {
            feed(&req.users, users).await;
        }
        let mut connection = EntryConnection::new(self.has_previous_page, self.has_next_page);
        connection.edges.extend(
            self.rows
                .iter()
                .map(|(e, ..)| Edge::new(OpaqueCursor((e.work_date, e.id)), TimeEntryNode(e.clone()))),
        );
        connection.resolve(ctx, field).await
    }
}
