//! Time tracking: the catalog that time is tracked against (clients, projects, tasks,
//! project members with their rate overrides), time entries and timers, weekly timesheets,
//! and the reports tools pull billable hours from.

pub mod catalog;
pub mod csv;
pub mod emails;
pub mod entries;
pub mod entry_pages;
pub mod graphql;
pub mod reports;
pub mod timers;
pub mod timesheets;
