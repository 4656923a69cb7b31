//! The GraphQL schema: each domain's queries and mutations merged, the Relay `Node`
//! interface, limits, and what every resolver can reach of its request.

pub mod direct;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor};
use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{
    Context, EmptySubscription, ID, Interface, MergedObject, Object, OutputType, Schema, SchemaBuilder,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::OnceCell;

use crate::auth::graphql::{ApiToken, AuthMutation, AuthQuery, UserNode};
use crate::auth::tokens::JwtKeys;
use crate::auth::users::UserLoader;
use crate::auth::{Actor, ActorCache, authenticate};
use crate::billing::graphql::{BillingMutation, BillingQuery, InvoiceNode};
use crate::config::ServiceConfig;
use crate::error::{AppError, AppResult};
use crate::leave::graphql::{FileNode, LeaveMutation, LeaveQuery, LeaveRequestNode, LeaveTypeNode};
use crate::settings::SettingsCache;
use crate::settings::graphql::{SettingsMutation, SettingsQuery};
use crate::tenancy::TenantDb;
use crate::time::catalog::{ById, Client, OfProject, Project, ProjectMember, Task};
use crate::time::graphql::{CatalogMutation, CatalogQuery, ClientNode, ProjectNode, TaskNode};
use crate::time::graphql_entries::{TimeEntryNode, TimeMutation, TimeQuery, TimesheetNode};
use crate::time::timesheets::TimesheetMinutes;

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// What lives as long as the service: shared by every request, holding nothing of a tenant.
pub struct Services {
    pub config: ServiceConfig,
    pub jwt: JwtKeys,
    pub settings: Arc<SettingsCache>,
    pub actors: Arc<ActorCache>,
    pub files: crate::files::FileStore,
    pub pdf: Arc<crate::billing::pdf::PdfFonts>,
    pub pages: PageStats,
}

/// How pages of entries were answered, for `/metrics`: a client whose queries keep falling
/// to the general executor pays for it in time.
#[derive(Default)]
pub struct PageStats {
    /// `timeEntries` pages written directly (see [`direct`]).
    pub entries_direct: AtomicU64,
    /// `timeEntries` pages resolved field by field.
    pub entries_general: AtomicU64,
}

/// What one request carries: its tenant unit, its credential, its loaders.
/// Built per request, so no cache of one tenant's rows can serve another.
pub struct RequestContext {
    pub db: Arc<TenantDb>,
    pub services: Arc<Services>,
    bearer: Option<String>,
    actor: OnceCell<Actor>,
    pub users: Loader<UserLoader>,
    pub clients: Loader<ById<Client>>,
    pub projects: Loader<ById<Project>>,
    pub tasks: Loader<ById<Task>>,
    pub project_tasks: Loader<OfProject<Task>>,
    pub project_members: Loader<OfProject<ProjectMember>>,
    pub timesheet_minutes: Loader<TimesheetMinutes>,
    pub leave_types: Loader<ById<crate::leave::LeaveType>>,
    pub leave_files: Loader<crate::files::LeaveRequestFiles>,
    pub invoice_lines: Loader<crate::billing::LinesOf>,
    pub invoice_payments: Loader<crate::billing::PaymentsOf>,
    pub line_entries: Loader<crate::billing::EntriesOfLine>,
}

/// A request's loader, caching what it loaded for the rest of the request, so a resolver
/// can load a whole page's relations in one batch and each row then finds its own.
pub type Loader<T> = DataLoader<T, HashMapCache>;

fn loader<T: Send + Sync + 'static>(loader: T) -> Loader<T> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
}

impl RequestContext {
    pub fn new(db: Arc<TenantDb>, services: Arc<Services>, bearer: Option<String>) -> Self {
        Self {
            users: loader(UserLoader { db: Arc::clone(&db) }),
            clients: loader(ById::new(Arc::clone(&db))),
            projects: loader(ById::new(Arc::clone(&db))),
            tasks: loader(ById::new(Arc::clone(&db))),
            project_tasks: loader(OfProject::new(Arc::clone(&db))),
            project_members: loader(OfProject::new(Arc::clone(&db))),
            timesheet_minutes: loader(TimesheetMinutes { db: Arc::clone(&db) }),
            leave_types: loader(ById::new(Arc::clone(&db))),
            leave_files: loader(crate::files::LeaveRequestFiles { db: Arc::clone(&db) }),
            invoice_lines: loader(crate::billing::LinesOf { db: Arc::clone(&db) }),
            invoice_payments: loader(crate::billing::PaymentsOf { db: Arc::clone(&db) }),
            line_entries: loader(crate::billing::EntriesOfLine { db: Arc::clone(&db) }),
            db,
            services,
            bearer,
            actor: OnceCell::new(),
        }
    }

    /// The tenant's effective settings (cached across requests; see [`crate::settings`]).
    pub async fn settings(&self) -> AppResult<Arc<crate::settings::TenantSettings>> {
        crate::settings::effective(&self.db, &self.services.settings).await
    }

    /// The authenticated actor, worked out once per request on first need.
    pub async fn actor(&self) -> AppResult<&Actor> {
        self.actor
            .get_or_try_init(|| {
                authenticate(
                    &self.db,
                    &self.services.jwt,
                    &self.services.actors,
                    self.bearer.as_deref(),
                )
            })
            .await
    }
}

/// A key a request's loaders look rows up by.
pub trait Key: Send + Sync + std::hash::Hash + Eq + Clone + 'static {}
impl<K: Send + Sync + std::hash::Hash + Eq + Clone + 'static> Key for K {}

/// A request loader's batch function, failing as the service's loaders do.
pub trait BatchLoader<K: Key>: async_graphql::dataloader::Loader<K, Error = Arc<AppError>> {}
impl<K: Key, T: async_graphql::dataloader::Loader<K, Error = Arc<AppError>>> BatchLoader<K> for T {}

/// Loads `keys` through `loader`'s batch function at once, each key once. For a resolver
/// that already knows every key its page needs: `load_many` would first wait out the
/// loader's batching delay (a millisecond or more) to gather keys that are all here already.
pub async fn load_all<K: Key, T: BatchLoader<K>>(
    loader: &Loader<T>,
    keys: impl IntoIterator<Item = K>,
) -> AppResult<std::collections::HashMap<K, T::Value>> {
    let mut keys: Vec<K> = keys.into_iter().collect();
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.retain(|k| seen.insert(k.clone()));
    if keys.is_empty() {
        return Ok(Default::default());
    }
    loader.loader().load(&keys).await.map_err(loader_error)
}

/// [`load_all`], leaving what it found in the request's cache for each row's resolver.
pub async fn prefetch<K: Key, T: BatchLoader<K>>(
    loader: &Loader<T>,
    keys: impl IntoIterator<Item = K>,
) -> AppResult<std::collections::HashMap<K, T::Value>> {
    let found = load_all(loader, keys).await?;
    feed(loader, &found).await;
    Ok(found)
}

/// Leaves rows already loaded in the request's cache for each row's resolver.
pub async fn feed<K: Key, T: BatchLoader<K>>(
    loader: &Loader<T>,
    found: &std::collections::HashMap<K, T::Value>,
) {
    loader
        .feed_many(found.iter().map(|(k, v)| (k.clone(), v.clone())))
        .await;
}

/// A failed batch load, as resolvers report it (the cause is logged, not shown).
pub fn loader_error(e: Arc<AppError>) -> AppError {
    AppError::internal(anyhow::anyhow!("a batch load failed: {e:?}"))
}

/// Shorthand for resolvers.
pub trait ContextExt {
    fn request(&self) -> &RequestContext;
}

impl ContextExt for Context<'_> {
    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }
}

const MAX_PAGE: i32 = 100;

/// `first` / `after` of a Relay connection ordered by id.
pub struct PageArgs {
    pub after: Option<i64>,
    pub first: usize,
}

impl PageArgs {
    pub fn parse(first: i32, after: Option<String>) -> AppResult<Self> {
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("first must be between 0 and {MAX_PAGE}"),
            ));
        }
        let after = match after {
            Some(cursor) => Some(
                OpaqueCursor::<i64>::decode_cursor(&cursor)
                    .map_err(|_| AppError::bad_input("after", "not a valid cursor"))?
                    .0,
            ),
            None => None,
        };
        Ok(Self {
            after,
            first: first as usize,
        })
    }

    /// Rows to fetch: one more than asked, to tell whether a next page exists.
    pub fn limit(&self) -> i64 {
        self.first as i64 + 1
    }

    /// A connection of `rows` (fetched with [`PageArgs::limit`]), each keyed by its id.
    pub fn connection<R, N: OutputType>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> i64,
        node: impl Fn(R) -> N,
    ) -> Connection<OpaqueCursor<i64>, N, EmptyFields, EmptyFields> {
        let has_next = rows.len() > self.first;
        rows.truncate(self.first);
        let mut connection = Connection::new(self.after.is_some(), has_next);
        connection
            .edges
            .extend(rows.into_iter().map(|r| Edge::new(OpaqueCursor(id(&r)), node(r))));
        connection
    }
}

/// The user a list is narrowed to: members always see only themselves; managers and admins
/// see the user asked for (a global `User` id in `field`), or everyone.
pub fn own_or_asked(actor: &Actor, field: &str, asked: Option<ID>) -> AppResult<Option<i64>> {
    let asked = asked.map(|id| expect_global_id(field, &id, "User")).transpose()?;
    Ok(actor
        .narrow(asked.map(|id| vec![id]))
        .and_then(|ids| ids.first().copied()))
}

/// Opaque Relay ids: `base64url("<Type>:<id>")`.
pub fn global_id(type_name: &str, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}")))
}

/// Decodes a global id of any type into its type and row id.
pub fn decode_global_id(field: &str, id: &ID) -> AppResult<(String, i64)> {
    let invalid = || AppError::bad_input(field, "not a valid id");
    let raw = URL_SAFE_NO_PAD.decode(id.as_str()).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (type_name, row_id) = raw.split_once(':').ok_or_else(invalid)?;
    let row_id = row_id.parse().map_err(|_| invalid())?;
    Ok((type_name.to_owned(), row_id))
}

/// Decodes a global id that must be of `type_name`.
pub fn expect_global_id(field: &str, id: &ID, type_name: &str) -> AppResult<i64> {
    match decode_global_id(field, id)? {
        (t, row_id) if t == type_name => Ok(row_id),
        _ => Err(AppError::bad_input(field, format!("not the id of a {type_name}"))),
    }
}

/// Every entity, fetchable by its global id (Relay's Object Identification).
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "A global, opaque identifier."))]
pub enum Node {
    User(UserNode),
    ApiToken(ApiToken),
    Client(ClientNode),
    Project(ProjectNode),
    Task(TaskNode),
    TimeEntry(TimeEntryNode),
    Timesheet(TimesheetNode),
    LeaveType(LeaveTypeNode),
    LeaveRequest(LeaveRequestNode),
    File(FileNode),
    Invoice(InvoiceNode),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any entity by its global id, or null when it does not exist or is not visible.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let (type_name, row_id) = decode_global_id("id", &id)?;
        match type_name.as_str() {
            "User" => Ok(UserNode::visible(ctx, row_id).await?.map(Node::User)),
            "ApiToken" => Ok(ApiToken::visible(ctx, row_id).await?.map(Node::ApiToken)),
            "Client" => Ok(ClientNode::load(ctx, row_id).await?.map(Node::Client)),
            "Project" => Ok(ProjectNode::load(ctx, row_id).await?.map(Node::Project)),
            "Task" => Ok(TaskNode::load(ctx, row_id).await?.map(Node::Task)),
            "TimeEntry" => Ok(TimeEntryNode::visible(ctx, row_id).await?.map(Node::TimeEntry)),
            "Timesheet" => Ok(TimesheetNode::visible(ctx, row_id).await?.map(Node::Timesheet)),
            "LeaveType" => Ok(LeaveTypeNode::load(ctx, row_id).await?.map(Node::LeaveType)),
            "LeaveRequest" => Ok(LeaveRequestNode::visible(ctx, row_id)
                .await?
                .map(Node::LeaveRequest)),
            "File" => Ok(FileNode::visible(ctx, row_id).await?.map(Node::File)),
            "Invoice" => match InvoiceNode::visible(ctx, row_id).await {
                Ok(invoice) => Ok(invoice.map(Node::Invoice)),
                // Like any node one may not see: null.
                Err(AppError::Forbidden(_)) => Ok(None),
                Err(e) => Err(e.into()),
            },
            _ => Ok(None),
        }
    }
}

#[derive(MergedObject, Default)]
pub struct Query(
    NodeQuery,
    AuthQuery,
    SettingsQuery,
    CatalogQuery,
    TimeQuery,
    LeaveQuery,
    BillingQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AuthMutation,
    SettingsMutation,
    CatalogMutation,
    TimeMutation,
    LeaveMutation,
    BillingMutation,
);

pub fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// The served schema, with its limits.
pub fn build_schema(config: &ServiceConfig) -> AppSchema {
    schema_builder()
        .limit_depth(config.graphql_max_depth)
        .limit_complexity(config.graphql_max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(50)
        .finish()
}

/// The SDL of the schema, as `export-schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
