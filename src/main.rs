//! The `crowdminder` command: serve the API, run background jobs, migrate, manage tenants
//! and jobs, export the schema.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use crowdminder::config::{BindConfig, DatabaseConfig, Secret, ServiceConfig};
use crowdminder::graphql;
use crowdminder::http::{self, AppState};
use crowdminder::jobs::handlers::{JobServices, Registry};
use crowdminder::jobs::schedule;
use crowdminder::jobs::worker::{Shutdown, Worker, WorkerConfig, worker_id};
use crowdminder::mail::{MailConfig, Mailer};
use crowdminder::provision::{self, FirstAdmin};
use crowdminder::tenancy::registry::{self, NewTenant, RegistryError, TenantStatus};
use crowdminder::tenancy::{SchemaName, migrations};
use crowdminder::{AppError, db, jobs, telemetry};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "crowdminder",
    version,
    about = "Time tracking, leave and billing for consulting companies, one schema per tenant"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
enum JobsCommand {
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
enum TenantsCommand {
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
struct Failure {
    code: u8,
    message: String,
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
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

fn main() -> ExitCode {
    // A missing .env is normal; the environment may hold everything.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn connect(db: &DatabaseConfig) -> Result<diesel_async::AsyncPgConnection, Failure> {
    db::connect(db.url.expose()).await.map_err(|e| Failure {
        code: 1,
        message: format!("cannot connect to the database: {e}"),
    })
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Serve {
            db,
            service,
            bind,
            mail,
            worker,
            no_worker,
        } => serve(db, service, bind, (!no_worker).then_some((mail, worker))).await,
        Command::Worker {
            db,
            service,
            mail,
            worker,
        } => work(db, service, mail, worker).await,
        Command::Jobs { command } => jobs_command(command).await,
        Command::Migrate { db, jobs, schema } => migrate(db, jobs, schema).await,
        Command::ExportSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Tenants { command } => tenants(command).await,
    }
}

async fn serve(
    db: DatabaseConfig,
    service: ServiceConfig,
    bind: BindConfig,
    worker: Option<(MailConfig, WorkerConfig)>,
) -> Result<(), Failure> {
    let pool = db::build_pool(&db)?;
    let state = AppState::new(pool, service, db.url.clone())?;
    let listener = tokio::net::TcpListener::bind(bind.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", bind.bind))?;
    let (stop_worker, worker) = match worker {
        Some((mail, config)) => {
            let (shutdown, rx) = Shutdown::new();
            let handle = start_worker(&db, &state, &mail, config)?.spawn(rx);
            (Some(shutdown), Some(handle))
        }
        None => (None, None),
    };
    tracing::info!(addr = %bind.bind, worker = worker.is_some(), "serving GraphQL at /graphql");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(anyhow::Error::from)?;
    if let (Some(stop), Some(handle)) = (stop_worker, worker) {
        stop.trigger();
        let _ = handle.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// A worker with its own pool (so jobs never starve requests of connections), sharing the
/// server's change listener (its wake-ups) and settings cache.
fn start_worker(
    db: &DatabaseConfig,
    state: &AppState,
    mail: &MailConfig,
    config: WorkerConfig,
) -> Result<Worker, Failure> {
    let mut worker_db = db.clone();
    worker_db.pool_size = config.concurrency.max(1) + 2;
    let pool = db::build_pool(&worker_db)?;
    let services = Arc::new(JobServices {
        config: state.services.config.clone(),
        settings: Arc::clone(&state.services.settings),
        mailer: Mailer::new(mail)?,
        pdf: Arc::clone(&state.services.pdf),
    });
    Ok(Worker {
        id: worker_id(0),
        pool,
        registry: Arc::new(Registry::standard()),
        services,
        config,
        schedules: schedule::standard(),
        wake: Arc::clone(&state.jobs_wake),
        stats: Arc::clone(&state.worker_stats),
    })
}

async fn work(
    db: DatabaseConfig,
    service: ServiceConfig,
    mail: MailConfig,
    config: WorkerConfig,
) -> Result<(), Failure> {
    let pool = db::build_pool(&DatabaseConfig::new(db.url.expose(), 2))?;
    let state = AppState::new(pool, service, db.url.clone())?;
    let (shutdown, rx) = Shutdown::new();
    let handle = start_worker(&db, &state, &mail, config)?.spawn(rx);
    shutdown_signal().await;
    shutdown.trigger();
    let _ = handle.await;
    Ok(())
}

async fn jobs_command(command: JobsCommand) -> Result<(), Failure> {
    let app_error = |e: AppError| Failure {
        code: if matches!(e, AppError::NotFound { .. } | AppError::Conflict { .. }) {
            2
        } else {
            1
        },
        message: e.message(),
    };
    match command {
        JobsCommand::List {
            db,
            failed,
            tenant,
            limit,
            json,
        } => {
            let mut conn = connect(&db).await?;
            let listed = jobs::list(&mut conn, failed, tenant.as_deref(), limit.clamp(1, 10_000))
                .await
                .map_err(app_error)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&listed).map_err(anyhow::Error::from)?
                );
                return Ok(());
            }
            println!(
                "{:>8}  {:<20} {:<16} {:<8} {:>8}  {:<20}  LAST ERROR",
                "ID", "TENANT", "KIND", "STATUS", "ATTEMPTS", "RUN AT"
            );
            for l in listed {
                let error: String = l.job.last_error.unwrap_or_default().chars().take(60).collect();
                println!(
                    "{:>8}  {:<20} {:<16} {:<8} {:>8}  {:<20}  {}",
                    l.job.id,
                    l.tenant,
                    l.job.kind,
                    l.job.status,
                    format!("{}/{}", l.job.attempts, l.job.max_attempts),
                    l.job.run_at.format("%Y-%m-%d %H:%M:%S"),
                    error.replace('\n', " ")
                );
            }
            Ok(())
        }
        JobsCommand::Retry { db, id } => {
            let mut conn = connect(&db).await?;
            jobs::retry(&mut conn, id).await.map_err(app_error)?;
            eprintln!("job {id} will run again");
            Ok(())
        }
        JobsCommand::Cancel { db, id } => {
            let mut conn = connect(&db).await?;
            jobs::cancel(&mut conn, id).await.map_err(app_error)?;
            eprintln!("job {id} cancelled");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn migrate(mut db: DatabaseConfig, jobs: usize, schema: Option<String>) -> Result<(), Failure> {
    let only = match schema {
        Some(raw) => Some(
            SchemaName::parse(&raw).map_err(|source| RegistryError::InvalidSchema { name: raw, source })?,
        ),
        None => None,
    };
    let jobs = jobs.max(1);
    db.pool_size = jobs + 1;
    let pool = db::build_pool(&db)?;
    let started = Instant::now();
    let (public, outcomes) =
        migrations::migrate_all(
            &pool,
            jobs,
            only.as_ref(),
            |done, total, outcome| match &outcome.result {
                Ok(applied) if applied.is_empty() => {
                    if done == total || done % 100 == 0 {
                        eprintln!("[{done}/{total}] tenants checked");
                    }
                }
                Ok(applied) => eprintln!(
                    "[{done}/{total}] {}: applied {}",
                    outcome.schema,
                    applied.join(", ")
                ),
                Err(e) => eprintln!("[{done}/{total}] {}: FAILED: {e}", outcome.schema),
            },
        )
        .await
        .map_err(|e| Failure {
            code: 1,
            message: format!("migrating public: {e}"),
        })?;
    if !public.is_empty() {
        eprintln!("public: applied {}", public.join(", "));
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.schema.as_str())
        .collect();
    let changed = outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_ok_and(|a| !a.is_empty()))
        .count();
    eprintln!(
        "{} tenants: {changed} migrated, {} up to date, {} failed ({:.2} s)",
        outcomes.len(),
        outcomes.len() - changed - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(only) = &only
        && outcomes.is_empty()
    {
        return Err(RegistryError::UnknownTenant(only.to_string()).into());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: format!("migration failed for: {}", failed.join(", ")),
        })
    }
}

async fn tenants(command: TenantsCommand) -> Result<(), Failure> {
    match command {
        TenantsCommand::Create {
            db,
            schema,
            host,
            name,
            admin_email,
            admin_name,
            admin_password,
            if_not_exists,
        } => {
            let new = NewTenant::parse(&schema, &name, &host)?;
            let mut conn = connect(&db).await?;
            migrations::migrate_public(&mut conn)
                .await
                .map_err(anyhow::Error::from)?;
            if if_not_exists
                && registry::find_by_schema(&mut conn, new.schema.as_str())
                    .await
                    .map_err(anyhow::Error::from)?
                    .is_some()
            {
                eprintln!("tenant {} already exists", new.schema);
                return Ok(());
            }
            let started = Instant::now();
            let admin = FirstAdmin {
                email: admin_email,
                name: admin_name,
                password: admin_password,
            };
            let tenant = provision::create_tenant(&mut conn, &new, admin).await?;
            eprintln!(
                "created tenant {} ({}) at {} in {} ms",
                tenant.schema,
                tenant.name,
                new.host,
                started.elapsed().as_millis()
            );
            Ok(())
        }
        TenantsCommand::List { db, json } => {
            let mut conn = connect(&db).await?;
            let tenants = registry::list(&mut conn).await.map_err(anyhow::Error::from)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&tenants).map_err(anyhow::Error::from)?
                );
            } else {
                println!(
                    "{:<24} {:<10} {:<30} {:<30} HOSTS",
                    "SCHEMA", "STATUS", "NAME", "PRIMARY HOST"
                );
                for t in tenants {
                    println!(
                        "{:<24} {:<10} {:<30} {:<30} {}",
                        t.schema,
                        t.status.as_str(),
                        t.name,
                        t.primary_host.as_deref().unwrap_or("-"),
                        t.hosts.join(",")
                    );
                }
            }
            Ok(())
        }
        TenantsCommand::Suspend { db, schema } => {
            registry::set_status(&mut connect(&db).await?, &schema, TenantStatus::Suspended).await?;
            eprintln!("tenant {schema} suspended");
            Ok(())
        }
        TenantsCommand::Resume { db, schema } => {
            registry::set_status(&mut connect(&db).await?, &schema, TenantStatus::Active).await?;
            eprintln!("tenant {schema} resumed");
            Ok(())
        }
        TenantsCommand::Delete { db, schema, yes } => {
            if !yes
                && !confirm(
                    &format!("Delete tenant '{schema}' and ALL its data? Type the schema name to confirm: "),
                    &schema,
                )
            {
                return Err(Failure {
                    code: 2,
                    message: "not confirmed; nothing deleted".to_owned(),
                });
            }
            registry::delete(&mut connect(&db).await?, &schema).await?;
            eprintln!("tenant {schema} deleted");
            Ok(())
        }
        TenantsCommand::AddHost {
            db,
            schema,
            host,
            primary,
        } => {
            let host = registry::add_host(&mut connect(&db).await?, &schema, &host, primary).await?;
            eprintln!("tenant {schema} now serves {host}");
            Ok(())
        }
        TenantsCommand::MoveHost {
            db,
            host,
            to,
            primary,
        } => {
            registry::move_host(&mut connect(&db).await?, &host, &to, primary).await?;
            eprintln!("host {host} now serves {to}");
            Ok(())
        }
        TenantsCommand::RemoveHost { db, schema, host } => {
            registry::remove_host(&mut connect(&db).await?, &schema, &host).await?;
            eprintln!("tenant {schema} no longer serves {host}");
            Ok(())
        }
    }
}

/// Asks on the terminal; without one (a script, CI) the answer is no.
fn confirm(prompt: &str, expected: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim() == expected
}
