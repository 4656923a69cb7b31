//! The GraphQL schema: each domain's queries and mutations merged, the Relay `Node`
//! interface over every domain's entities, and the limits.

use async_graphql::{Context, EmptySubscription, ID, Interface, MergedObject, Object, Schema, SchemaBuilder};

use super::support::{NodeType, decode_global_id};
use crate::auth::graphql::{ApiToken, AuthMutation, AuthQuery, UserNode};
use crate::billing::graphql::{BillingMutation, BillingQuery, InvoiceNode};
use crate::config::ServiceConfig;
use crate::error::AppError;
use crate::leave::graphql::{FileNode, LeaveMutation, LeaveQuery, LeaveRequestNode, LeaveTypeNode};
use crate::settings::graphql::{SettingsMutation, SettingsQuery};
use crate::time::graphql::{
    CatalogMutation, CatalogQuery, ClientNode, ProjectNode, TaskNode, TimeEntryNode, TimeMutation, TimeQuery,
    TimesheetNode,
};

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

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
        let (Some(node_type), row_id) = decode_global_id("id", &id)? else {
            return Ok(None);
        };
        Ok(match node_type {
            NodeType::User => UserNode::visible(ctx, row_id).await?.map(Node::User),
            NodeType::ApiToken => ApiToken::visible(ctx, row_id).await?.map(Node::ApiToken),
            NodeType::Client => ClientNode::load(ctx, row_id).await?.map(Node::Client),
            NodeType::Project => ProjectNode::load(ctx, row_id).await?.map(Node::Project),
            NodeType::Task => TaskNode::load(ctx, row_id).await?.map(Node::Task),
            NodeType::TimeEntry => TimeEntryNode::visible(ctx, row_id).await?.map(Node::TimeEntry),
            NodeType::Timesheet => TimesheetNode::visible(ctx, row_id).await?.map(Node::Timesheet),
            NodeType::LeaveType => LeaveTypeNode::load(ctx, row_id).await?.map(Node::LeaveType),
            NodeType::LeaveRequest => LeaveRequestNode::visible(ctx, row_id)
                .await?
                .map(Node::LeaveRequest),
            NodeType::File => FileNode::visible(ctx, row_id).await?.map(Node::File),
            NodeType::Invoice => match InvoiceNode::visible(ctx, row_id).await {
                Ok(invoice) => invoice.map(Node::Invoice),
                // Like any node one may not see: null.
                Err(AppError::Forbidden(_)) => None,
                Err(e) => return Err(e.into()),
            },
            // Parts of another node, not fetched on their own.
            NodeType::Holiday | NodeType::InvoiceLine | NodeType::Payment => None,
        })
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

fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// The served schema, with its limits.
pub fn build_schema(config: &ServiceConfig) -> AppSchema {
    build_with(config, async_graphql::ValidationMode::Strict)
}

/// The served schema checking of a request only its size (depth, complexity, fragment
/// cycles): for a request whose document, operation and variables passed every rule of
/// [`build_schema`]'s already, which would pass them again (the rules read nothing else).
pub fn build_revalidating_schema(config: &ServiceConfig) -> AppSchema {
    build_with(config, async_graphql::ValidationMode::Fast)
}

fn build_with(config: &ServiceConfig, mode: async_graphql::ValidationMode) -> AppSchema {
    let builder = schema_builder()
        .validation_mode(mode)
        .limit_depth(config.graphql_max_depth)
        .limit_complexity(config.graphql_max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(50);
    // The schema is public in `schema.graphql`; introspection answers only where GraphiQL
    // is served (development), not to anyone who asks a production server.
    if config.graphiql {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The SDL of the schema, as `export-schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
