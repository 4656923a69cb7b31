//! Time tracking. So far the catalog that time is tracked against: clients, projects, tasks
//! and project members with their rate overrides.

pub mod catalog;
pub mod graphql;
