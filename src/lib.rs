//! Crowdminder: time tracking, leave and billing for consulting companies, served to many
//! companies (tenants) at once, each in its own PostgreSQL schema, through one GraphQL API.
//!
//! The layers, each importing only from those before it (a test keeps this true):
//! 1. the core: [`error`], [`config`], [`cache`], [`telemetry`], [`money`], [`text`],
//!    [`services`];
//! 2. [`db`]: the diesel schema and SQL helpers;
//! 3. [`tenancy`]: the pool, the registry, `TenantDb` (the only place `search_path` is
//!    written), migrations, provisioning;
//! 4. [`files`] and [`mail`]; then [`jobs`], the queue and worker, knowing no domain;
//! 5. [`graphql::support`]: the request context, pagination, ids, loaders;
//! 6. the domains, in order: [`auth`] < [`settings`] < [`leave`] < [`time`] < [`billing`],
//!    and [`usage`] beside them;
//! 7. [`graphql`]'s schema, then [`http`], then [`app`] (the composition root), then
//!    [`cli`].

pub mod app;
pub mod auth;
pub mod billing;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod leave;
pub mod mail;
pub mod money;
pub mod services;
pub mod settings;
pub mod telemetry;
pub mod tenancy;
pub mod text;
pub mod time;
pub mod usage;

pub use error::AppError;
