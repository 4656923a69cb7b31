//! GraphQL for the catalog: clients, projects, tasks, project members. Everyone signed in
//! reads it; admins and managers change it.

use async_graphql::parser::types::Field;
use async_graphql::{Context, ContextSelectionSet, ID, InputObject, Lookahead, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::auth::Role;
use crate::auth::graphql::{RequestActor, UserNode};
use crate::auth::users::User;
use crate::db::columns::{Partial, Picked};
use crate::error::AppResult;
use crate::graphql::support::direct::{self, Json};
use crate::graphql::support::{
    ById, ContextExt, DirectNode, DirectPage, FetchById, FetchGrouped, Grouped, NodeType, Page, PageArgs,
    expect_global_id, global_id, prefetch,
};
use crate::time::catalog::{
    self, Client, ClientChanges, ClientFilter, NewProject, Project, ProjectChanges, ProjectFilter,
    ProjectMember, Task,
};

macro_rules! fetch_by_id {
    ($row:ty, $fetch:path) => {
        impl FetchById for $row {
            fn id(&self) -> i64 {
                self.id
            }

            async fn fetch(conn: &mut diesel_async::AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<Self>> {
                $fetch(conn, ids).await
            }
        }
    };
}

fetch_by_id!(Client, catalog::clients_by_ids);
fetch_by_id!(Project, catalog::projects_by_ids);
fetch_by_id!(Task, catalog::tasks_by_ids);

impl FetchGrouped for Task {
    fn group(&self) -> i64 {
        self.project_id
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, projects: &[i64]) -> AppResult<Vec<Self>> {
        catalog::tasks_of_projects(conn, projects).await
    }
}

impl FetchGrouped for ProjectMember {
    fn group(&self) -> i64 {
        self.project_id
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, projects: &[i64]) -> AppResult<Vec<Self>> {
        catalog::members_of_projects(conn, projects).await
    }
}

const EDITORS: &[Role] = &[Role::Admin, Role::Manager];
const EDITORS_ONLY: &str = "only admins and managers may change clients and projects";

pub struct ClientNode(pub Client);

#[Object(name = "Client")]
impl ClientNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::Client, self.0.id)
    }
    /// Unique ignoring case; kept as typed.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where invoices are sent; null to members, who do not bill.
    async fn billing_email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let actor = ctx.request().actor().await?;
        Ok(self
            .0
            .billing_email
            .as_deref()
            .filter(|_| sees_billing(actor.role)))
    }
    async fn archived(&self) -> bool {
        self.0.archived
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

impl ClientNode {
    /// A field's value written directly ([`direct`]), as the resolvers above give it;
    /// `None` for a field that needs its resolver.
    pub fn direct_field(client: Partial<'_, Client>, field: &Field, out: &mut Json) -> Option<()> {
        let name = direct::name(field);
        // A field whose columns were not read is the resolvers'.
        let client = client.for_field(name)?;
        match name {
            "id" => out.id(NodeType::Client, client.id),
            "name" => out.str(&client.name),
            // A member's page comes with the billing email already taken out
            // (`as_seen_by`), as the resolver would answer.
            "billingEmail" => out.nullable_str(client.billing_email.as_deref()),
            "archived" => out.bool(client.archived),
            "createdAt" => out.scalar(&client.created_at),
            _ => return None,
        }
        Some(())
    }

    pub async fn load(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        req.actor().await?;
        Ok(req.load::<ById<Client>>(id).await?.map(Self))
    }
}

/// Whether `role` sees where clients are billed (members do not bill).
fn sees_billing(role: Role) -> bool {
    role != Role::Member
}

/// `clients` as `role` may see them: without the billing email for a member, as
/// `Client.billingEmail` answers, so that a page written directly answers alike.
pub fn as_seen_by<'c>(role: Role, clients: impl IntoIterator<Item = &'c mut Client>) {
    if !sees_billing(role) {
        clients.into_iter().for_each(|c| c.billing_email = None);
    }
}

impl DirectNode for ClientNode {
    fn direct_field(&self, _ctx: &ContextSelectionSet<'_>, field: &Field, out: &mut Json) -> Option<()> {
        Self::direct_field(
            Partial {
                row: &self.0,
                picked: Picked::all(),
            },
            field,
            out,
        )
    }
}

pub struct ProjectNode(pub Project);

#[Object(name = "Project")]
impl ProjectNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::Project, self.0.id)
    }
    /// Short code, unique ignoring case across the tenant.
    async fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// Unique within its client, ignoring case.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<ClientNode> {
        Ok(ClientNode(
            ctx.request()
                .load_existing::<ById<Client>>(self.0.client_id, "client")
                .await?,
        ))
    }
    /// Whether new time on it is billable by default.
    async fn billable(&self) -> bool {
        self.0.billable
    }
    /// Per hour, in the tenant's currency; members may have their own rate.
    async fn hourly_rate(&self) -> Option<Decimal> {
        self.0.hourly_rate.map(|r| r.normalize())
    }
    async fn budget_hours(&self) -> Option<Decimal> {
        self.0.budget_hours.map(|b| b.normalize())
    }
    async fn archived(&self) -> bool {
        self.0.archived
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn tasks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TaskNode>> {
        let tasks = ctx.request().load::<Grouped<Task>>(self.0.id).await?;
        Ok(tasks.unwrap_or_default().into_iter().map(TaskNode).collect())
    }
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectMemberNode>> {
        let members = ctx.request().load::<Grouped<ProjectMember>>(self.0.id).await?;
        Ok(members
            .unwrap_or_default()
            .into_iter()
            .map(ProjectMemberNode)
            .collect())
    }
}

impl ProjectNode {
    /// A field's value written directly ([`direct`]) for `project` of `client`, as the
    /// resolvers above give it; `None` for a field that needs its resolver (tasks, members,
    /// the client when it is not at hand).
    pub fn direct_field<'a>(
        ctx: &ContextSelectionSet<'a>,
        project: Partial<'_, Project>,
        client: Option<Partial<'_, Client>>,
        field: &'a Field,
        out: &mut Json,
    ) -> Option<()> {
        let name = direct::name(field);
        let project = project.for_field(name)?;
        match name {
            "id" => out.id(NodeType::Project, project.id),
            "code" => out.nullable_str(project.code.as_deref()),
            "name" => out.str(&project.name),
            "client" => {
                let client = client?;
                direct::object(
                    ctx,
                    &field.selection_set.node,
                    NodeType::Client.name(),
                    out,
                    |f, out| ClientNode::direct_field(client, f, out),
                )?
            }
            "billable" => out.bool(project.billable),
            "hourlyRate" => out.nullable_decimal(project.hourly_rate.map(|r| r.normalize()).as_ref()),
            "budgetHours" => out.nullable_decimal(project.budget_hours.map(|b| b.normalize()).as_ref()),
            "archived" => out.bool(project.archived),
            "createdAt" => out.scalar(&project.created_at),
            _ => return None,
        }
        Some(())
    }

    pub async fn load(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        req.actor().await?;
        Ok(req.load::<ById<Project>>(id).await?.map(Self))
    }
}

pub struct TaskNode(pub Task);

#[Object(name = "Task")]
impl TaskNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::Task, self.0.id)
    }
    /// Unique within its project, ignoring case.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Null: as its project.
    async fn billable(&self) -> Option<bool> {
        self.0.billable
    }
    async fn archived(&self) -> bool {
        self.0.archived
    }
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<ProjectNode> {
        Ok(ProjectNode(
            ctx.request()
                .load_existing::<ById<Project>>(self.0.project_id, "project")
                .await?,
        ))
    }
}

impl TaskNode {
    /// A field's value written directly ([`direct`]), as the resolvers above give it, for
    /// `task` of `project` (its project is written only when it is that one, with `client`;
    /// else its resolver loads it).
    pub fn direct_field<'a>(
        ctx: &ContextSelectionSet<'a>,
        task: Partial<'_, Task>,
        project: Option<Partial<'_, Project>>,
        client: Option<Partial<'_, Client>>,
        field: &'a Field,
        out: &mut Json,
    ) -> Option<()> {
        let name = direct::name(field);
        let task = task.for_field(name)?;
        match name {
            "id" => out.id(NodeType::Task, task.id),
            "name" => out.str(&task.name),
            "billable" => match task.billable {
                Some(billable) => out.bool(billable),
                None => out.null(),
            },
            "archived" => out.bool(task.archived),
            "project" => {
                let project = project.filter(|p| p.row.id == task.project_id)?;
                direct::object(
                    ctx,
                    &field.selection_set.node,
                    NodeType::Project.name(),
                    out,
                    |f, out| ProjectNode::direct_field(ctx, project, client, f, out),
                )?
            }
            _ => return None,
        }
        Some(())
    }

    pub async fn load(ctx: &Context<'_>, id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        req.actor().await?;
        Ok(req.load::<ById<Task>>(id).await?.map(Self))
    }
}

/// A user working on a project, with their own rate if they have one.
pub struct ProjectMemberNode(pub ProjectMember);

#[Object(name = "ProjectMember")]
impl ProjectMemberNode {
    /// Null when the signed-in user may not see them.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.0.user_id).await?)
    }
    /// Overrides the project's rate for this member; null: the project's rate applies. A
    /// member sees only their own (colleagues' rates are null to them).
    async fn hourly_rate(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Decimal>> {
        let actor = ctx.request().actor().await?;
        if actor.role == Role::Member && actor.user_id != self.0.user_id {
            return Ok(None);
        }
        Ok(self.0.hourly_rate.map(|r| r.normalize()))
    }
}

#[derive(InputObject)]
pub struct CreateClientInput {
    name: String,
    billing_email: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateClientInput {
    name: Option<String>,
    /// Null removes it.
    billing_email: MaybeUndefined<String>,
    archived: Option<bool>,
}

#[derive(InputObject)]
pub struct CreateProjectInput {
    client_id: ID,
    name: String,
    code: Option<String>,
    #[graphql(default = true)]
    billable: bool,
    hourly_rate: Option<Decimal>,
    budget_hours: Option<Decimal>,
}

#[derive(InputObject)]
pub struct UpdateProjectInput {
    name: Option<String>,
    code: MaybeUndefined<String>,
    billable: Option<bool>,
    hourly_rate: MaybeUndefined<Decimal>,
    budget_hours: MaybeUndefined<Decimal>,
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    project_id: ID,
    name: String,
    /// Null or left out: as the project.
    billable: Option<bool>,
}

#[derive(InputObject)]
pub struct AddProjectMemberInput {
    project_id: ID,
    user_id: ID,
    /// The member's own rate on this project; left out: the project's rate.
    hourly_rate: Option<Decimal>,
}

#[derive(InputObject, Default)]
pub struct ClientFilterInput {
    /// Part of the name, ignoring case.
    search: Option<String>,
    #[graphql(default)]
    include_archived: bool,
}

#[derive(InputObject, Default)]
pub struct ProjectFilterInput {
    client_id: Option<ID>,
    /// Part of the name or code, ignoring case.
    search: Option<String>,
    /// The whole name, ignoring case.
    name: Option<String>,
    #[graphql(default)]
    include_archived: bool,
}

fn into_change<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Loads the relations a query selects on a page of projects, each kind in one batch for
/// the whole page, so the statements a page costs do not depend on its size. Each row's
/// resolver then finds its relation in the request's loader cache.
async fn load_relations(ctx: &Context<'_>, node: Lookahead<'_>, projects: &[Project]) -> AppResult<()> {
    let req = ctx.request();
    let ids: Vec<i64> = projects.iter().map(|p| p.id).collect();
    req.loader::<ById<Project>>()
        .feed_many(projects.iter().map(|p| (p.id, p.clone())));
    if node.field("client").exists() {
        prefetch(
            &req.loader::<ById<Client>>(),
            projects.iter().map(|p| p.client_id),
        )
        .await?;
    }
    if node.field("tasks").exists() {
        prefetch(&req.loader::<Grouped<Task>>(), ids.iter().copied()).await?;
    }
    let members = node.field("members");
    if members.exists() {
        let by_project = prefetch(&req.loader::<Grouped<ProjectMember>>(), ids.iter().copied()).await?;
        if members.field("user").exists() {
            prefetch(
                &req.loader::<ById<User>>(),
                by_project.values().flatten().map(|m| m.user_id),
            )
            .await?;
        }
    }
    Ok(())
}

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Clients by id; archived ones only when asked.
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn clients(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<ClientFilterInput>,
    ) -> async_graphql::Result<DirectPage<ClientNode>> {
        let req = ctx.request();
        let actor = req.actor().await?;
        let page = PageArgs::parse(first, after)?;
        let filter = filter.unwrap_or_default();
        let filter = ClientFilter {
            search: filter.search,
            include_archived: filter.include_archived,
        };
        // Usually the request's first statement: it goes out together with the BEGIN.
        let (keyset, filter) = (page.keyset(), &filter);
        let mut rows = req
            .db
            .read(async |conn| catalog::client_page(conn, filter, keyset).await)
            .await?;
        as_seen_by(actor.role, &mut rows);
        Ok(DirectPage(page.connection(rows, |c| c.id, ClientNode)))
    }

    /// Projects by id; archived ones only when asked.
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<ProjectFilterInput>,
    ) -> async_graphql::Result<Page<ProjectNode>> {
        let req = ctx.request();
        req.actor().await?;
        let page = PageArgs::parse(first, after)?;
        let filter = filter.unwrap_or_default();
        let filter = ProjectFilter {
            client_id: filter
                .client_id
                .map(|id| expect_global_id("filter.clientId", &id, NodeType::Client))
                .transpose()?,
            search: filter.search,
            name: filter.name,
            include_archived: filter.include_archived,
        };
        // Usually the request's first statement: it goes out together with the BEGIN.
        let (keyset, filter) = (page.keyset(), &filter);
        let rows = req
            .db
            .read(async |conn| catalog::project_page(conn, filter, keyset).await)
            .await?;
        load_relations(ctx, ctx.look_ahead().field("edges").field("node"), &rows).await?;
        Ok(page.connection(rows, |p| p.id, ProjectNode))
    }

    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ProjectNode>> {
        let id = expect_global_id("id", &id, NodeType::Project)?;
        Ok(ProjectNode::load(ctx, id).await?)
    }

    async fn client(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<ClientNode>> {
        let id = expect_global_id("id", &id, NodeType::Client)?;
        Ok(ClientNode::load(ctx, id).await?)
    }
}

#[derive(Default)]
pub struct CatalogMutation;

#[Object]
impl CatalogMutation {
    async fn create_client(
        &self,
        ctx: &Context<'_>,
        input: CreateClientInput,
    ) -> async_graphql::Result<ClientNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let value = req
            .db
            .in_savepoint(async |conn| {
                catalog::create_client(conn, &input.name, input.billing_email.as_deref()).await
            })
            .await?;
        Ok(ClientNode(value))
    }

    async fn update_client(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateClientInput,
    ) -> async_graphql::Result<ClientNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let id = expect_global_id("id", &id, NodeType::Client)?;
        let changes = ClientChanges {
            name: input.name,
            billing_email: into_change(input.billing_email),
            archived: input.archived,
        };
        let value = req
            .db
            .in_savepoint(async |conn| catalog::update_client(conn, id, changes).await)
            .await?;
        Ok(ClientNode(value))
    }

    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> async_graphql::Result<ProjectNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let new = NewProject {
            client_id: expect_global_id("input.clientId", &input.client_id, NodeType::Client)?,
            code: input.code,
            name: input.name,
            billable: input.billable,
            hourly_rate: input.hourly_rate,
            budget_hours: input.budget_hours,
        };
        let value = req
            .db
            .in_savepoint(async |conn| catalog::create_project(conn, new).await)
            .await?;
        Ok(ProjectNode(value))
    }

    async fn update_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProjectInput,
    ) -> async_graphql::Result<ProjectNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let id = expect_global_id("id", &id, NodeType::Project)?;
        let changes = ProjectChanges {
            code: into_change(input.code),
            name: input.name,
            billable: input.billable,
            hourly_rate: into_change(input.hourly_rate),
            budget_hours: into_change(input.budget_hours),
            archived: None,
        };
        let value = req
            .db
            .in_savepoint(async |conn| catalog::update_project(conn, id, changes).await)
            .await?;
        Ok(ProjectNode(value))
    }

    /// Archives a project (or brings it back): it leaves default lists and takes no new time.
    async fn archive_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = true)] archived: bool,
    ) -> async_graphql::Result<ProjectNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let id = expect_global_id("id", &id, NodeType::Project)?;
        let changes = ProjectChanges {
            code: None,
            name: None,
            billable: None,
            hourly_rate: None,
            budget_hours: None,
            archived: Some(archived),
        };
        let value = req
            .db
            .in_savepoint(async |conn| catalog::update_project(conn, id, changes).await)
            .await?;
        Ok(ProjectNode(value))
    }

    async fn create_task(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskInput,
    ) -> async_graphql::Result<TaskNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let project_id = expect_global_id("input.projectId", &input.project_id, NodeType::Project)?;
        let value = req
            .db
            .in_savepoint(async |conn| {
                catalog::create_task(conn, project_id, &input.name, input.billable).await
            })
            .await?;
        Ok(TaskNode(value))
    }

    /// Adds a user to a project, or changes their rate on it.
    async fn add_project_member(
        &self,
        ctx: &Context<'_>,
        input: AddProjectMemberInput,
    ) -> async_graphql::Result<ProjectNode> {
        let req = ctx.request();
        req.actor().await?.require(EDITORS, EDITORS_ONLY)?;
        let project_id = expect_global_id("input.projectId", &input.project_id, NodeType::Project)?;
        let user_id = expect_global_id("input.userId", &input.user_id, NodeType::User)?;
        req.db
            .in_savepoint(async |conn| {
                catalog::put_member(conn, project_id, user_id, input.hourly_rate).await
            })
            .await?;
        Ok(ProjectNode(
            req.load_existing::<ById<Project>>(project_id, "project").await?,
        ))
    }
}
