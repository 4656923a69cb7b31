//! The `crowdminder` command: serve the API, run background jobs, migrate, manage tenants
//! and jobs, export the schema. `main` parses the command line and calls [`run`].

mod jobs;
mod serve;
mod tenants;

use clap::{Parser, Subcommand};

use crate::config::{BindConfig, DatabaseConfig, Secret, ServiceConfig};
use crate::graphql;
use crate::jobs::worker::WorkerConfig;
use crate::mail::MailConfig;
use crate::tenancy;
use crate::tenancy::provision::ProvisionError;
use crate::tenancy::registry::RegistryError;

#[derive(Parser)]
#[command(
    name = "crowdminder",
    version,
    about = "Time tracking, leave and billing for consulting companies, one schema per tenant"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the GraphQL API, with a background worker unless --no-worker.
    Serve {
        #[command(flatten)]
        db: DatabaseConfig,
        #[command(flatten)]
        service: ServiceConfig,
        #[command(flatten)]
        bind: BindConfig,
        #[command(flatten)]
        mail: MailConfig,
        #[command(flatten)]
        worker: WorkerConfig,
        /// Serve requests only; leave jobs to `crowdminder worker` processes.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run background jobs (and schedules) without serving requests.
    Worker {
        #[command(flatten)]
        db: DatabaseConfig,
        #[command(flatten)]
        service: ServiceConfig,
        #[command(flatten)]
        mail: MailConfig,
        #[command(flatten)]
        worker: WorkerConfig,
    },
    /// Inspect the job queue; retry or cancel jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Migrate `public`, then every tenant schema (or one, with --schema).
    Migrate {
        #[command(flatten)]
        db: DatabaseConfig,
        /// Tenant schemas migrated at once.
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        /// Migrate only this tenant (after `public`).
        #[arg(long)]
        schema: Option<String>,
    },
    /// Create, list, suspend and delete tenants; manage their hosts.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Print the GraphQL schema (SDL); `schema.graphql` is this output.
    ExportSchema,
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// List queued, running and failed jobs (oldest first).
    List {
        #[command(flatten)]
        db: DatabaseConfig,
        /// Only jobs that failed for good.
        #[arg(long)]
        failed: bool,
        /// Only this tenant's jobs.
        #[arg(long)]
        tenant: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Run a failed (or waiting) job again now, with its attempts reset.
    Retry {
        #[command(flatten)]
        db: DatabaseConfig,
        id: i64,
    },
    /// Remove a job that is not running.
    Cancel {
        #[command(flatten)]
        db: DatabaseConfig,
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant: its schema, fully migrated, its primary host and its first admin.
    Create {
        #[command(flatten)]
        db: DatabaseConfig,
        /// Schema name: lowercase letters, digits and _, starting with a letter.
        schema: String,
        /// Primary host, e.g. acme.crowdminder.example.
        #[arg(long)]
        host: String,
        /// Company name.
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value = "")]
        admin_name: String,
        /// The admin's password (at least 10 characters).
        #[arg(long, env = "CROWDMINDER_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Secret,
        /// Succeed without change when the schema is already a tenant.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List tenants and their hosts.
    List {
        #[command(flatten)]
        db: DatabaseConfig,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Refuse every request to a tenant until it is resumed.
    Suspend {
        #[command(flatten)]
        db: DatabaseConfig,
        schema: String,
    },
    /// Serve a suspended tenant again.
    Resume {
        #[command(flatten)]
        db: DatabaseConfig,
        schema: String,
    },
    /// Delete a tenant and all its data.
    Delete {
        #[command(flatten)]
        db: DatabaseConfig,
        schema: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Serve a tenant at one more host.
    AddHost {
        #[command(flatten)]
        db: DatabaseConfig,
        schema: String,
        host: String,
        /// Make it the primary host (used for SITE_URL and emails).
        #[arg(long)]
        primary: bool,
    },
    /// Move a host from its tenant to another.
    MoveHost {
        #[command(flatten)]
        db: DatabaseConfig,
        host: String,
        /// The tenant that gets the host.
        #[arg(long)]
        to: String,
        #[arg(long)]
        primary: bool,
    },
    /// Stop serving a tenant at a host (not its primary one).
    RemoveHost {
        #[command(flatten)]
        db: DatabaseConfig,
        schema: String,
        host: String,
    },
}

/// A failure and the exit code it deserves: 2 for bad input, 1 for everything else.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        Self {
            code: if e.is_user_error() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

impl From<ProvisionError> for Failure {
    fn from(e: ProvisionError) -> Self {
        Self {
            code: if e.is_user_error() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self {
            code: 1,
            message: format!("{e:#}"),
        }
    }
}

pub(super) async fn connect(db: &DatabaseConfig) -> Result<diesel_async::AsyncPgConnection, Failure> {
    tenancy::connect(db.direct().expose()).await.map_err(|e| Failure {
        code: 1,
        message: format!("cannot connect to the database: {e}"),
    })
}

/// Runs one command.
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve {
            db,
            service,
            bind,
            mail,
            worker,
            no_worker,
        } => serve::serve(db, service, bind, (!no_worker).then_some((mail, worker))).await,
        Command::Worker {
            db,
            service,
            mail,
            worker,
        } => serve::work(db, service, mail, worker).await,
        Command::Jobs { command } => jobs::jobs_command(command).await,
        Command::Migrate { db, jobs, schema } => tenants::migrate(db, jobs, schema).await,
        Command::ExportSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Tenants { command } => tenants::tenants(command).await,
    }
}
