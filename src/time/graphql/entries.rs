//! GraphQL for time entries, timers, timesheets and reports. Members see and change only
//! their own time; managers and admins everyone's.

use std::collections::HashMap;

use async_graphql::connection::{CursorType, OpaqueCursor};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SelectionField, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::catalog::{ClientNode, ProjectNode, TaskNode};
use super::entry_page::EntryPage;
use crate::auth::graphql::{RequestActor, UserNode, own_or_asked};
use crate::auth::users::User;
use crate::auth::{Actor, Role};
use crate::db::columns::{Picked, ReadInPart};
use crate::error::{AppError, AppResult};
use crate::graphql::support::{
    ById, ContextExt, NodeType, Page, PageArgs, expect_global_id, global_id, prefetch,
};
use crate::settings;
use crate::settings::graphql::RequestSettings;
use crate::time::catalog::{Client, Project, Task};
use crate::time::entries::{self, EntryChanges, EntryStatus, NewEntry, TimeEntry};
use crate::time::entry_pages::{self, EntryFilter, PageRead, Relations};
use crate::time::reports::{self, GroupBy, ReportFilter, ReportRequest, ReportRow};
use crate::time::timers::{self, NewTimer};
use crate::time::timesheets::{self, Timesheet, TimesheetFilter, TimesheetMinutes, TimesheetStatus};

const MANAGERS: &[Role] = &[Role::Admin, Role::Manager];

/// The user an entry is for: the actor, or (for managers and admins) whoever they name.
fn entry_user(actor: &Actor, user_id: Option<&ID>) -> AppResult<i64> {
    match user_id {
        None => Ok(actor.user_id),
        Some(id) => {
            let id = expect_global_id("input.userId", id, NodeType::User)?;
            if !actor.may_see(id) {
                return Err(AppError::Forbidden("members record only their own time"));
            }
            Ok(id)
        }
    }
}

fn ids(field: &str, ids: Option<Vec<ID>>, node_type: NodeType) -> AppResult<Option<Vec<i64>>> {
    ids.map(|ids| {
        ids.iter()
            .map(|id| expect_global_id(field, id, node_type))
            .collect()
    })
    .transpose()
}

pub struct TimeEntryNode(pub TimeEntry);

#[Object(name = "TimeEntry")]
impl TimeEntryNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::TimeEntry, self.0.id)
    }
    /// Null when the signed-in user may not see them.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.user_id).await?)
    }
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<ProjectNode> {
        Ok(ProjectNode(
            ctx.request()
                .load_existing::<ById<Project>>(self.0.project_id, "project")
                .await?,
        ))
    }
    async fn task(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TaskNode>> {
        let Some(task_id) = self.0.task_id else {
            return Ok(None);
        };
        let task = ctx.request().load::<ById<Task>>(task_id).await?;
        Ok(task.map(TaskNode))
    }
    /// The day worked, in the tenant's time zone.
    async fn date(&self) -> NaiveDate {
        self.0.work_date
    }
    /// Null for an entry given as a duration.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }
    /// Null for a duration, and while the timer runs.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }
    /// A multiple of the tenant's capture interval; null while the timer runs.
    async fn minutes(&self) -> Option<i32> {
        self.0.minutes
    }
    /// Minutes / 60, to two places.
    async fn hours(&self) -> Option<Decimal> {
        self.0.minutes.map(|m| reports::hours(i64::from(m)))
    }
    async fn running(&self) -> bool {
        self.0.running()
    }
    async fn notes(&self) -> &str {
        &self.0.notes
    }
    async fn billable(&self) -> bool {
        self.0.billable
    }
    /// Per hour, fixed when the entry was made: the member's rate on the project, else the
    /// project's. Null when neither had one.
    async fn rate(&self) -> Option<Decimal> {
        self.0.hourly_rate.map(|r| r.normalize())
    }
    /// Hours x rate, rounded half-up to the currency's minor unit; 0 when not billable;
    /// null while running or without a rate.
    async fn amount(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Decimal>> {
        let settings = ctx.request().settings().await?;
        let minor = settings::currency::minor_units(&settings.currency).unwrap_or(2);
        Ok(self.0.amount(minor))
    }
    async fn status(&self) -> EntryStatus {
        self.0.status()
    }
    /// The reference an import gave it; creating again with it returns this entry.
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

impl TimeEntryNode {
    pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        let entry = entries::find(&mut conn, id).await?;
        Ok(entry.filter(|e| actor.may_see(e.user_id)).map(Self))
    }
}

pub struct TimesheetNode(pub Timesheet);

#[Object(name = "Timesheet")]
impl TimesheetNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::Timesheet, self.0.id)
    }
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.user_id).await?)
    }
    /// The first day of the week (the tenant's week starts after its days off).
    async fn week_start(&self) -> NaiveDate {
        self.0.week_start
    }
    async fn week_end(&self) -> NaiveDate {
        self.0.week_end()
    }
    async fn status(&self) -> TimesheetStatus {
        self.0.status()
    }
    async fn submitted_at(&self) -> DateTime<Utc> {
        self.0.submitted_at
    }
    async fn decided_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        match self.0.decided_by {
            Some(id) => Ok(UserNode::visible(ctx, id).await?),
            None => Ok(None),
        }
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    async fn rejection_reason(&self) -> Option<&str> {
        self.0.rejection_reason.as_deref()
    }
    /// Minutes its user logged in the week.
    async fn minutes(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let minutes = ctx.request().load::<TimesheetMinutes>(self.0.id).await?;
        Ok(minutes.unwrap_or(0))
    }
}

impl TimesheetNode {
    pub async fn visible(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        let sheet = timesheets::find(&mut conn, id).await?;
        Ok(sheet.filter(|s| actor.may_see(s.user_id)).map(Self))
    }
}

#[derive(InputObject)]
pub struct CreateTimeEntryInput {
    /// Whose time; left out: the signed-in user's. Managers and admins may name anyone.
    user_id: Option<ID>,
    project_id: ID,
    task_id: Option<ID>,
    /// With `minutes`, for an entry given as a duration.
    date: Option<NaiveDate>,
    /// With `endedAt`, for a timed entry; whole minutes.
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    /// A multiple of the tenant's capture interval.
    minutes: Option<i32>,
    notes: Option<String>,
    /// Left out: the task's setting, else the project's.
    billable: Option<bool>,
    /// An importer's own key: creating again with it returns the existing entry.
    external_ref: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateTimeEntryInput {
    project_id: Option<ID>,
    /// Null removes the task.
    task_id: MaybeUndefined<ID>,
    date: Option<NaiveDate>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    minutes: Option<i32>,
    notes: Option<String>,
    billable: Option<bool>,
}

#[derive(InputObject)]
pub struct StartTimerInput {
    project_id: ID,
    task_id: Option<ID>,
    notes: Option<String>,
    billable: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct TimeEntryFilterInput {
    /// First day, included.
    from: Option<NaiveDate>,
    /// Last day, included.
    to: Option<NaiveDate>,
    /// Ignored for members, who see only their own.
    user_ids: Option<Vec<ID>>,
    client_ids: Option<Vec<ID>>,
    project_ids: Option<Vec<ID>>,
    task_ids: Option<Vec<ID>>,
    billable: Option<bool>,
    statuses: Option<Vec<EntryStatus>>,
    running: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct TimesheetFilterInput {
    /// Ignored for members, who see only their own.
    user_id: Option<ID>,
    status: Option<TimesheetStatus>,
    /// Weeks starting on or after.
    from: Option<NaiveDate>,
    /// Weeks starting on or before.
    to: Option<NaiveDate>,
}

#[derive(InputObject, Default)]
pub struct ReportFilterInput {
    /// Ignored for members, whose reports cover only their own time.
    user_ids: Option<Vec<ID>>,
    client_ids: Option<Vec<ID>>,
    project_ids: Option<Vec<ID>>,
    task_ids: Option<Vec<ID>>,
    billable: Option<bool>,
    statuses: Option<Vec<EntryStatus>>,
}

impl ReportFilterInput {
    pub fn into_filter(self, actor: &Actor) -> AppResult<ReportFilter> {
        Ok(ReportFilter {
            user_ids: actor.narrow(ids("filter.userIds", self.user_ids, NodeType::User)?),
            client_ids: ids("filter.clientIds", self.client_ids, NodeType::Client)?,
            project_ids: ids("filter.projectIds", self.project_ids, NodeType::Project)?,
            task_ids: ids("filter.taskIds", self.task_ids, NodeType::Task)?,
            billable: self.billable,
            statuses: self.statuses,
        })
    }
}

/// One row of a billable-hours report.
pub struct ReportRowNode {
    row: ReportRow,
    currency: String,
}

#[Object(name = "BillableHoursRow")]
impl ReportRowNode {
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ClientNode>> {
        let Some(id) = self.row.client_id else {
            return Ok(None);
        };
        let client = ctx.request().load::<ById<Client>>(id).await?;
        Ok(client.map(ClientNode))
    }
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProjectNode>> {
        let Some(id) = self.row.project_id else {
            return Ok(None);
        };
        let project = ctx.request().load::<ById<Project>>(id).await?;
        Ok(project.map(ProjectNode))
    }
    /// Null when grouping by task: the entries without a task.
    async fn task(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TaskNode>> {
        let Some(id) = self.row.task_id else {
            return Ok(None);
        };
        let task = ctx.request().load::<ById<Task>>(id).await?;
        Ok(task.map(TaskNode))
    }
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        match self.row.user_id {
            Some(id) => Ok(UserNode::visible(ctx, id).await?),
            None => Ok(None),
        }
    }
    async fn day(&self) -> Option<NaiveDate> {
        self.row.day
    }
    /// The week's first day.
    async fn week(&self) -> Option<NaiveDate> {
        self.row.week
    }
    /// The month's first day.
    async fn month(&self) -> Option<NaiveDate> {
        self.row.month
    }
    async fn billable_minutes(&self) -> i64 {
        self.row.billable_minutes
    }
    async fn non_billable_minutes(&self) -> i64 {
        self.row.non_billable_minutes
    }
    /// To two places; the minutes are exact.
    async fn billable_hours(&self) -> Decimal {
        reports::hours(self.row.billable_minutes)
    }
    async fn non_billable_hours(&self) -> Decimal {
        reports::hours(self.row.non_billable_minutes)
    }
    /// The sum of the entries' amounts.
    async fn amount(&self) -> Decimal {
        self.row.amount.normalize()
    }
    async fn currency(&self) -> &str {
        &self.currency
    }
    async fn entries(&self) -> i64 {
        self.row.entries
    }
}

#[derive(SimpleObject)]
pub struct BillableHoursReport {
    from: NaiveDate,
    to: NaiveDate,
    group_by: Vec<GroupBy>,
    rows: Vec<ReportRowNode>,
    /// Over every entry the report covers.
    totals: ReportRowNode,
}

/// Billable hours of one user against what they could bill.
#[derive(SimpleObject)]
pub struct UtilizationRow {
    user: Option<UserNode>,
    billable_hours: Decimal,
    non_billable_hours: Decimal,
    /// Approved leave in the range, in hours.
    leave_hours: Decimal,
    /// (Working days in the range - days on approved leave) x BILLABLE_HOURS_IN_WORKING_DAY.
    available_hours: Decimal,
    /// Billable over available, 0 to 1 (more with overtime); null when nothing is available.
    utilization: Option<Decimal>,
}

#[derive(SimpleObject)]
pub struct UtilizationReport {
    from: NaiveDate,
    to: NaiveDate,
    /// Days of the tenant's work week in the range, less its public holidays.
    working_days: i64,
    rows: Vec<UtilizationRow>,
}

/// What an entry's selection (an edge's `node`, or one of `nodes`) reads: its own columns
/// and its relations', added to `read`.
fn read_entry(read: &mut PageRead, node: SelectionField<'_>) {
    for field in node.selection_set() {
        read.columns = read.columns.and_field(field.name());
        match field.name() {
            "project" => read_project(&mut read.relations, field),
            "task" => {
                read.relations.task = Some(picked_by(read.relations.task, field));
                field
                    .selection_set()
                    .filter(|f| f.name() == "project")
                    .for_each(|project| read_project(&mut read.relations, project));
            }
            "user" => read.relations.user = Some(picked_by(read.relations.user, field)),
            _ => {}
        }
    }
}

fn read_project(relations: &mut Relations, project: SelectionField<'_>) {
    relations.project = Some(picked_by(relations.project, project));
    for client in project.selection_set().filter(|f| f.name() == "client") {
        relations.client = Some(picked_by(relations.client, client));
    }
}

/// `picked` (the keys, if nothing yet) and the columns the fields `field` selects read.
fn picked_by<T: ReadInPart>(picked: Option<Picked<T>>, field: SelectionField<'_>) -> Picked<T> {
    field
        .selection_set()
        .fold(picked.unwrap_or_else(Picked::keys), |p, f| p.and_field(f.name()))
}

#[derive(Default)]
pub struct TimeQuery;

#[Object]
impl TimeQuery {
    /// Time entries by date, then id (oldest first). Members see only their own.
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn time_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<TimeEntryFilterInput>,
    ) -> async_graphql::Result<EntryPage> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let page = PageArgs::parse(first, None)?;
        let after = after
            .map(|c| {
                OpaqueCursor::<(NaiveDate, i64)>::decode_cursor(&c)
                    .map(|c| c.0)
                    .map_err(|_| AppError::bad_input("after", "not a valid cursor"))
            })
            .transpose()?;
        let f = filter.unwrap_or_default();
        let filter = EntryFilter {
            from: f.from,
            to: f.to,
            user_ids: actor.narrow(ids("filter.userIds", f.user_ids, NodeType::User)?),
            client_ids: ids("filter.clientIds", f.client_ids, NodeType::Client)?,
            project_ids: ids("filter.projectIds", f.project_ids, NodeType::Project)?,
            task_ids: ids("filter.taskIds", f.task_ids, NodeType::Task)?,
            billable: f.billable,
            statuses: f.statuses,
            running: f.running,
        };
        // Usually the request's first statement: it goes out together with the BEGIN. The
        // columns and relations the selection reads (on edges' nodes or on nodes) come in it.
        let limit = page.keyset().limit;
        let filter = &filter;
        let mut read = PageRead {
            columns: Picked::keys(),
            relations: Relations::default(),
            tenant_id: req.db.tenant().id,
        };
        for part in ctx.field().selection_set() {
            match part.name() {
                "edges" => part
                    .selection_set()
                    .filter(|f| f.name() == "node")
                    .for_each(|node| read_entry(&mut read, node)),
                "nodes" => read_entry(&mut read, part),
                _ => {}
            }
        }
        let mut rows = req
            .db
            .read(async |conn| entry_pages::page_on(conn, filter, read, after, limit).await)
            .await?;
        let has_next_page = rows.len() > page.first;
        rows.truncate(page.first);
        // The users the actor may see, once each; members do not see where clients are
        // billed (as `Client.billingEmail` answers).
        let users = read.relations.user.map(|_| {
            let mut users = HashMap::new();
            for row in &mut rows {
                if let Some(user) = row.user.take()
                    && actor.may_see(user.id)
                {
                    users.entry(user.id).or_insert(user);
                }
            }
            users
        });
        super::catalog::as_seen_by(actor.role, rows.iter_mut().filter_map(|row| row.client.as_mut()));
        let settings = req.settings().await?;
        Ok(EntryPage {
            rows,
            read,
            users,
            minor_units: settings::currency::minor_units(&settings.currency).unwrap_or(2),
            has_previous_page: after.is_some(),
            has_next_page,
        })
    }

    async fn time_entry(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<TimeEntryNode>> {
        let id = expect_global_id("id", &id, NodeType::TimeEntry)?;
        Ok(TimeEntryNode::visible(ctx, id).await?)
    }

    /// The signed-in user's running timer, if any.
    async fn running_timer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TimeEntryNode>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        Ok(timers::running_timer(&mut conn, actor.user_id)
            .await?
            .map(TimeEntryNode))
    }

    /// Timesheets by id. Members see only their own.
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn timesheets(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<TimesheetFilterInput>,
    ) -> async_graphql::Result<Page<TimesheetNode>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let page = PageArgs::parse(first, after)?;
        let f = filter.unwrap_or_default();
        let filter = TimesheetFilter {
            user_id: own_or_asked(actor, "filter.userId", f.user_id)?,
            status: f.status,
            from: f.from,
            to: f.to,
        };
        // Usually the request's first statement: it goes out together with the BEGIN.
        let (keyset, filter) = (page.keyset(), &filter);
        let rows = req
            .db
            .read(async |conn| timesheets::page(conn, filter, keyset).await)
            .await?;
        Ok(page.connection(rows, |s| s.id, TimesheetNode))
    }

    async fn timesheet(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<TimesheetNode>> {
        let id = expect_global_id("id", &id, NodeType::Timesheet)?;
        Ok(TimesheetNode::visible(ctx, id).await?)
    }

    /// Billable and non-billable time and amounts from `from` to `to` (both included, the
    /// tenant's dates), grouped by the keys in order, with totals. Members get their own.
    #[graphql(
        complexity = "crate::graphql::support::cost::report(from, to, group_by.len(), child_complexity)"
    )]
    async fn billable_hours(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
        #[graphql(default)] group_by: Vec<GroupBy>,
        filter: Option<ReportFilterInput>,
    ) -> async_graphql::Result<BillableHoursReport> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let filter = filter.unwrap_or_default().into_filter(actor)?;
        let request = ReportRequest::new(from, to, group_by, filter)?;
        let settings = req.settings().await?;
        let (settings_ref, request_ref) = (&settings, &request);
        let mut rows = req
            .db
            .report(async |conn| reports::billable_hours(conn, settings_ref, request_ref).await)
            .await?;
        let totals = match rows.pop() {
            Some(row) if row.is_total => row,
            _ => return Err(AppError::internal(anyhow::anyhow!("report without totals")).into()),
        };
        let node = |row| ReportRowNode {
            row,
            currency: settings.currency.clone(),
        };
        Ok(BillableHoursReport {
            from,
            to,
            group_by: request.group_by.clone(),
            rows: rows.into_iter().map(node).collect(),
            totals: node(totals),
        })
    }

    /// Per user: billable hours over the hours they could bill: working days in the range
    /// (the work week less holidays), less approved leave, x BILLABLE_HOURS_IN_WORKING_DAY.
    /// Members get their own.
    #[graphql(complexity = "crate::graphql::support::cost::report(from, to, 1, child_complexity)")]
    async fn utilization(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
        user_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<UtilizationReport> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        ReportRequest::new(from, to, Vec::new(), ReportFilter::default())?;
        let users = actor.narrow(ids("userIds", user_ids, NodeType::User)?);
        let settings = req.settings().await?;
        let per_day = settings.billable_hours_in_working_day;
        let settings_ref = &settings;
        let (working_days, rows, leave) = req
            .db
            .report(async |conn| {
                let calendar = crate::leave::calendar(conn, settings_ref, from, to).await?;
                let rows = reports::minutes_per_user(conn, from, to, users).await?;
                let leave = crate::leave::approved_days(conn, &calendar, from, to).await?;
                Ok((calendar.days_between(from, to), rows, leave))
            })
            .await?;
        prefetch(&req.loader::<ById<User>>(), rows.iter().map(|r| r.user_id)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let billable = Decimal::from(row.billable_minutes) / Decimal::from(60);
            let leave_days = leave.get(&row.user_id).copied().unwrap_or_default();
            let available = ((Decimal::from(working_days) - leave_days) * per_day).max(Decimal::ZERO);
            out.push(UtilizationRow {
                user: UserNode::visible(ctx, row.user_id).await?,
                billable_hours: billable.round_dp(2).normalize(),
                non_billable_hours: reports::hours(row.non_billable_minutes),
                leave_hours: (leave_days * per_day).normalize(),
                available_hours: available.normalize(),
                utilization: (!available.is_zero()).then(|| (billable / available).round_dp(4).normalize()),
            });
        }
        Ok(UtilizationReport {
            from,
            to,
            working_days,
            rows: out,
        })
    }
}

#[derive(Default)]
pub struct TimeMutation;

#[Object]
impl TimeMutation {
    /// Logs time: a date and minutes, or a start and an end.
    async fn create_time_entry(
        &self,
        ctx: &Context<'_>,
        input: CreateTimeEntryInput,
    ) -> async_graphql::Result<TimeEntryNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let settings = req.settings().await?;
        let new = NewEntry {
            user_id: entry_user(actor, input.user_id.as_ref())?,
            project_id: expect_global_id("input.projectId", &input.project_id, NodeType::Project)?,
            task_id: input
                .task_id
                .map(|id| expect_global_id("input.taskId", &id, NodeType::Task))
                .transpose()?,
            date: input.date,
            started_at: input.started_at,
            ended_at: input.ended_at,
            minutes: input.minutes,
            notes: input.notes,
            billable: input.billable,
            external_ref: input.external_ref,
        };
        let entry = req
            .db
            .in_savepoint(async |conn| entries::create(conn, &settings, new).await)
            .await?;
        Ok(TimeEntryNode(entry))
    }

    /// Changes a draft entry (members: their own).
    async fn update_time_entry(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTimeEntryInput,
    ) -> async_graphql::Result<TimeEntryNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let id = expect_global_id("id", &id, NodeType::TimeEntry)?;
        let settings = req.settings().await?;
        let changes = EntryChanges {
            project_id: input
                .project_id
                .map(|id| expect_global_id("input.projectId", &id, NodeType::Project))
                .transpose()?,
            task_id: match input.task_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => {
                    Some(Some(expect_global_id("input.taskId", &id, NodeType::Task)?))
                }
            },
            date: input.date,
            started_at: input.started_at,
            ended_at: input.ended_at,
            minutes: input.minutes,
            notes: input.notes,
            billable: input.billable,
        };
        let entry = req
            .db
            .in_savepoint(async |conn| {
                let entry = entries::load_for_change(conn, actor, id).await?;
                entries::update(conn, &settings, entry, changes).await
            })
            .await?;
        Ok(TimeEntryNode(entry))
    }

    /// Deletes a draft entry (members: their own); returns its id.
    async fn delete_time_entry(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let row_id = expect_global_id("id", &id, NodeType::TimeEntry)?;
        req.db
            .in_savepoint(async |conn| {
                let entry = entries::load_for_change(conn, actor, row_id).await?;
                entries::delete(conn, &entry).await
            })
            .await?;
        Ok(id)
    }

    /// Starts the signed-in user's timer; refused while one runs.
    async fn start_timer(
        &self,
        ctx: &Context<'_>,
        input: StartTimerInput,
    ) -> async_graphql::Result<TimeEntryNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let settings = req.settings().await?;
        let timer = NewTimer {
            user_id: actor.user_id,
            project_id: expect_global_id("input.projectId", &input.project_id, NodeType::Project)?,
            task_id: input
                .task_id
                .map(|id| expect_global_id("input.taskId", &id, NodeType::Task))
                .transpose()?,
            notes: input.notes,
            billable: input.billable,
        };
        let value = req
            .db
            .in_savepoint(async |conn| timers::start_timer(conn, &settings, timer, Utc::now()).await)
            .await?;
        Ok(TimeEntryNode(value))
    }

    /// Stops the signed-in user's timer, its length rounded up to the capture interval.
    async fn stop_timer(&self, ctx: &Context<'_>) -> async_graphql::Result<TimeEntryNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let settings = req.settings().await?;
        let value = req
            .db
            .in_savepoint(async |conn| timers::stop_timer(conn, &settings, actor.user_id, Utc::now()).await)
            .await?;
        Ok(TimeEntryNode(value))
    }

    /// Submits the signed-in user's week for approval; its entries lock until a decision.
    async fn submit_timesheet(
        &self,
        ctx: &Context<'_>,
        week_start: NaiveDate,
    ) -> async_graphql::Result<TimesheetNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let settings = req.settings().await?;
        let value = req
            .db
            .in_savepoint(async |conn| timesheets::submit(conn, &settings, actor.user_id, week_start).await)
            .await?;
        Ok(TimesheetNode(value))
    }

    /// Approves a submitted timesheet (managers and admins; a manager not their own): its
    /// entries are locked.
    async fn approve_timesheet(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TimesheetNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        actor.require(MANAGERS, "only managers and admins decide timesheets")?;
        let id = expect_global_id("id", &id, NodeType::Timesheet)?;
        let value = req
            .db
            .in_savepoint(async |conn| timesheets::approve(conn, req.db.tenant().id, actor, id).await)
            .await?;
        Ok(TimesheetNode(value))
    }

    /// Rejects a submitted timesheet with a reason: its entries return to drafts.
    async fn reject_timesheet(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
    ) -> async_graphql::Result<TimesheetNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        actor.require(MANAGERS, "only managers and admins decide timesheets")?;
        let id = expect_global_id("id", &id, NodeType::Timesheet)?;
        let value = req
            .db
            .in_savepoint(async |conn| timesheets::reject(conn, req.db.tenant().id, actor, id, &reason).await)
            .await?;
        Ok(TimesheetNode(value))
    }
}
