//! GraphQL: [`support`] below the domains (what each domain's resolvers build on), and
//! [`schema`] above them (the domains' types merged into one schema).

pub mod schema;
pub mod support;

pub use schema::{AppSchema, build_revalidating_schema, build_schema, sdl};
