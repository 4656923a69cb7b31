//! Integration tests: the service, its command line and its background jobs against a real
//! PostgreSQL (`TEST_DATABASE_URL`). They are one test binary, so that the library and its
//! dependencies are linked once rather than once per area.

mod common;

mod billing;
mod catalog;
mod cli;
mod faults;
mod hardening;
mod identity;
mod jobs;
mod layering;
mod leave;
mod processes;
mod tenancy;
mod time;
