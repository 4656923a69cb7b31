//! Crowdminder: time tracking, leave and billing for consulting companies, served to many
//! companies (tenants) at once, each in its own PostgreSQL schema, through one GraphQL API.
//!
//! Data flows one way: [`http`] -> [`graphql`] -> the domains ([`auth`], [`settings`]) ->
//! [`tenancy::TenantDb`] -> PostgreSQL. Only [`tenancy`] ever sets `search_path`.

pub mod auth;
pub mod billing;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod leave;
pub mod mail;
pub mod provision;
pub mod settings;
pub mod telemetry;
pub mod tenancy;
pub mod time;

pub use error::AppError;
