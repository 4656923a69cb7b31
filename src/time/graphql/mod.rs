//! GraphQL for time: the catalog (clients, projects, tasks, members), and time entries,
//! timers, timesheets and reports, whose pages of entries [`entry_page`] answers.

mod catalog;
mod entries;
mod entry_page;

pub use catalog::{CatalogMutation, CatalogQuery, ClientNode, ProjectNode, TaskNode};
pub use entries::{TimeEntryNode, TimeMutation, TimeQuery, TimesheetNode};
