//! The composition root: the one place that knows every part of the service and wires
//! them together. `serve`, `worker`, the tests and the benchmarks all build the service
//! here, so what runs in production is what they run.
//!
//! It makes the shared parts ([`Services`]: keys, caches, file store, PDF fonts, page
//! counters), starts the change listener that keeps the caches true to the database,
//! builds the GraphQL schema and the HTTP state, and lists the job kinds, emails and
//! schedules each domain brings.

use std::sync::Arc;

use axum::Router;
use chrono::NaiveTime;
use diesel_async::AsyncPgConnection;
use tokio::sync::Notify;

use crate::auth::emails::AuthEmail;
use crate::auth::throttle::CredentialThrottle;
use crate::auth::tokens::JwtKeys;
use crate::auth::users::{self, NewUser};
use crate::auth::{self, ActorCache, Role};
use crate::billing::emails::BillingEmail;
use crate::billing::pdf::PdfFonts;
use crate::config::{DatabaseConfig, Secret, ServiceConfig};
use crate::files::FileStore;
use crate::graphql::support::PageStats;
use crate::graphql::{self, AppSchema};
use crate::http::{self, AppState, Documents};
use crate::jobs::registry::{JobKind, Registry};
use crate::jobs::schedule::{Every, Schedule};
use crate::jobs::worker::{Worker, WorkerConfig, WorkerStats, worker_id};
use crate::leave::emails::LeaveEmail;
use crate::mail::{MailConfig, Mailer};
use crate::services::Services;
use crate::settings::{self, SettingsCache};
use crate::tenancy::changes::{ChangeListener, Notice};
use crate::tenancy::provision::{self, ProvisionError};
use crate::tenancy::registry::NewTenant;
use crate::tenancy::{self, DbPool, Tenant, TenantResolver};
use crate::time::emails::TimeEmail;
use crate::usage::UsageSnapshot;

/// One running service: what its requests and jobs share.
#[derive(Clone)]
pub struct App {
    pub pool: DbPool,
    pub resolver: Arc<TenantResolver>,
    pub services: Arc<Services>,
    pub schema: AppSchema,
    /// Woken when jobs are enqueued anywhere; a worker in this process waits on it.
    pub jobs_wake: Arc<Notify>,
    /// Counters of a worker running in this process, for `/metrics`.
    pub worker_stats: Arc<WorkerStats>,
    /// Documents parsed and requests validated, shared by every request.
    pub documents: Arc<Documents>,
}

impl App {
    /// Everything a server runs with, and the listener (on its own connection straight to
    /// PostgreSQL, `direct_url`: LISTEN needs a session no pooler shares) that keeps its
    /// caches true to the database.
    pub fn new(pool: DbPool, config: ServiceConfig, direct_url: Secret) -> anyhow::Result<Self> {
        auth::password::configure(config.password_hash_threads, config.password_hash_queue);
        let resolver = TenantResolver::new(pool.clone());
        let settings = Arc::new(settings::settings_cache());
        let actors = Arc::new(auth::actor_cache());
        let jobs_wake = Arc::new(Notify::new());
        let mut listener = ChangeListener::default();
        {
            let resolver = Arc::clone(&resolver);
            let settings = Arc::clone(&settings);
            let actors = Arc::clone(&actors);
            let jobs_wake = Arc::clone(&jobs_wake);
            listener.subscribe(move |notice| match notice {
                Notice::Registry(_) => {
                    resolver.invalidate_all();
                    // A resumed tenant's jobs may run now.
                    jobs_wake.notify_waiters();
                }
                Notice::Settings(tenant_id) => settings.invalidate(&tenant_id),
                Notice::Auth(_) => actors.invalidate_all(),
                Notice::Jobs => jobs_wake.notify_waiters(),
                Notice::Missed => {
                    resolver.invalidate_all();
                    settings.invalidate_all();
                    actors.invalidate_all();
                    jobs_wake.notify_waiters();
                }
                Notice::Ping => {}
            });
        }
        listener.spawn(direct_url, pool.clone());
        let services = Services::new(config.clone())
            .with(JwtKeys::new(&config)?)
            .with(FileStore::open(&config.file_store, config.file_max_bytes)?)
            .with(PdfFonts::new(&config.pdf_font, &config.pdf_font_bold))
            .with(PageStats::default())
            .with(CredentialThrottle::new(
                config.login_failures_per_account,
                config.credential_failures_per_address,
            ))
            .with_shared::<SettingsCache>(settings)
            .with_shared::<ActorCache>(actors);
        Ok(Self {
            schema: graphql::build_schema(&config),
            pool,
            resolver,
            services: Arc::new(services),
            jobs_wake,
            worker_stats: Arc::default(),
            documents: Arc::new(Documents::new(graphql::build_revalidating_schema(&config))),
        })
    }

    /// What the HTTP handlers share.
    pub fn http_state(&self) -> AppState {
        AppState {
            schema: self.schema.clone(),
            pool: self.pool.clone(),
            resolver: Arc::clone(&self.resolver),
            services: Arc::clone(&self.services),
            worker_stats: Arc::clone(&self.worker_stats),
            documents: Arc::clone(&self.documents),
        }
    }

    pub fn router(&self) -> Router {
        http::router(self.http_state())
    }

    /// `/metrics`, for its own address.
    pub fn metrics_router(&self) -> Router {
        http::metrics_router(self.http_state())
    }

    /// A worker on `pool` (its own, so jobs never starve requests of connections) running
    /// `registry`'s kinds and `schedules`, sending email through `mail`, sharing this
    /// service's caches and its change listener's wake-ups.
    pub fn worker(
        &self,
        pool: DbPool,
        registry: Registry,
        schedules: Vec<Schedule>,
        mail: &MailConfig,
        config: WorkerConfig,
    ) -> anyhow::Result<Worker> {
        let services = self.services.extended().with(Mailer::new(mail)?);
        Ok(Worker {
            id: worker_id(pool.max_size()),
            pool,
            registry: Arc::new(registry),
            services: Arc::new(services),
            config,
            schedules,
            wake: Arc::clone(&self.jobs_wake),
            stats: Arc::clone(&self.worker_stats),
        })
    }

    /// The service's own worker: its pool sized to `config`'s concurrency, every job kind
    /// and schedule.
    pub fn standard_worker(
        &self,
        db: &DatabaseConfig,
        mail: &MailConfig,
        config: WorkerConfig,
    ) -> anyhow::Result<Worker> {
        let mut worker_db = db.clone();
        worker_db.pool_size = config.concurrency.max(1) + 2;
        worker_db.statement_timeout_ms = db.job_statement_timeout_ms;
        let pool = tenancy::build_pool(&worker_db)?;
        let mut worker = self.worker(pool, jobs(), schedules(), mail, config)?;
        worker.id = worker_id(0);
        Ok(worker)
    }
}

/// The first admin of a new tenant.
pub struct FirstAdmin {
    pub email: String,
    pub name: String,
    pub password: Secret,
}

/// Creates a tenant ready to use: registry entry, migrated schema and first admin, in one
/// transaction (see [`provision`]). The CLI and the tests both come through here.
pub async fn create_tenant(
    conn: &mut AsyncPgConnection,
    tenant: &NewTenant,
    admin: FirstAdmin,
) -> Result<Tenant, ProvisionError> {
    // Hashing is slow, so it happens before the transaction opens.
    let admin = users::prepare(
        NewUser {
            email: admin.email,
            name: admin.name,
            role: Role::Admin,
            password: admin.password,
        },
        "admin-",
    )
    .await
    .map_err(ProvisionError::Seed)?;
    provision::create_tenant(conn, tenant, async |c| users::insert(c, &admin).await.map(|_| ())).await
}

/// Every job kind and email the service runs, each registered by the domain it is about.
pub fn jobs() -> Registry {
    let mut registry = Registry::new();
    registry
        .kind::<UsageSnapshot>()
        .letter::<AuthEmail>()
        .letter::<TimeEmail>()
        .letter::<LeaveEmail>()
        .letter::<BillingEmail>();
    registry
}

/// The schedules this service runs.
pub fn schedules() -> Vec<Schedule> {
    vec![Schedule {
        name: "nightly_usage_snapshot".to_owned(),
        every: Every::Day(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default()),
        kind: UsageSnapshot::KIND.to_owned(),
        max_attempts: 5,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::registry::Letter;

    fn template(letter: &impl serde::Serialize) -> String {
        serde_json::to_value(letter).unwrap()["template"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Each email's variants are tagged as its `TEMPLATES` say, and every one has a renderer.
    #[test]
    fn every_email_the_domains_enqueue_is_rendered() {
        let registry = jobs();
        let sent = [
            (template(&AuthEmail::Welcome { user_id: 1 }), AuthEmail::TEMPLATES),
            (
                template(&AuthEmail::PasswordChanged { user_id: 1 }),
                AuthEmail::TEMPLATES,
            ),
            (
                template(&TimeEmail::TimesheetDecided { timesheet_id: 1 }),
                TimeEmail::TEMPLATES,
            ),
            (
                template(&LeaveEmail::LeaveRequested {
                    request_id: 1,
                    to_user_id: 2,
                }),
                LeaveEmail::TEMPLATES,
            ),
            (
                template(&LeaveEmail::LeaveDecided { request_id: 1 }),
                LeaveEmail::TEMPLATES,
            ),
            (
                template(&LeaveEmail::LeaveCancelled {
                    request_id: 1,
                    to_user_id: 2,
                }),
                LeaveEmail::TEMPLATES,
            ),
            (
                template(&BillingEmail::InvoiceSent { invoice_id: 1 }),
                BillingEmail::TEMPLATES,
            ),
        ];
        for (name, templates) in sent {
            assert!(
                templates.contains(&name.as_str()),
                "{name} is not in its TEMPLATES"
            );
            assert!(registry.renders(&name), "no renderer for {name}");
        }
        assert!(!registry.renders("no_such_template"));
        for kind in ["noop", "usage_snapshot", "send_email"] {
            assert!(registry.get(kind).is_some(), "no handler for {kind}");
        }
    }
}
