//! What each kind of job does, as the domains register it: a handler per kind, and the
//! emails, each rendered by the domain it is about. A handler gets its job and the job's
//! tenant unit (a [`TenantDb`], as a request has); what it writes there commits together
//! with the job's removal from the queue.
//!
//! This module knows no domain: the composition root ([`crate::app`]) registers every
//! domain's kinds and emails.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Job;
use super::NewJob;
use crate::mail::{Email, Mailer};
use crate::services::Services;
use crate::tenancy::{TenantDb, TenantSite};

/// One run of one job.
pub struct JobContext {
    pub job: Job,
    pub db: Arc<TenantDb>,
    /// The service's shared parts, with the worker's mailer.
    pub services: Arc<Services>,
}

impl JobContext {
    /// Where the job's tenant is reached: the links and sender of its emails.
    pub fn site(&self) -> TenantSite {
        self.db.tenant().site(&self.services.config)
    }
}

pub type Handler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// A kind of job with a typed payload.
pub trait JobKind: DeserializeOwned + Send + 'static {
    /// The kind's name in `public.jobs.kind`.
    const KIND: &'static str;

    fn run(self, ctx: JobContext) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// The payload as stored; a kind whose payload may be missing or loose overrides it.
    fn from_payload(payload: &Value) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(payload.clone())?)
    }
}

/// Renders and sends one email (see [`Letter`]).
pub const SEND_EMAIL: &str = "send_email";

/// An email a domain sends: a serde enum tagged `template`, whose variants carry the ids of
/// what the email is about. It is rendered when its job runs, from the data as it is then,
/// in the tenant's settings; `None` when what it is about is gone or no longer applies.
pub trait Letter: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The `template` tags of this type's variants.
    const TEMPLATES: &'static [&'static str];

    fn render(self, ctx: &JobContext) -> impl Future<Output = anyhow::Result<Option<Email>>> + Send;

    /// The job that sends this email for `tenant_id`.
    fn job(&self, tenant_id: i64) -> NewJob {
        NewJob::new(SEND_EMAIL, tenant_id, payload(self))
    }
}

fn payload(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

type Renderer = for<'a> fn(&'a JobContext, Value) -> BoxFuture<'a, anyhow::Result<Option<Email>>>;

fn render_as<L: Letter>(ctx: &JobContext, payload: Value) -> BoxFuture<'_, anyhow::Result<Option<Email>>> {
    Box::pin(async move {
        let letter: L = serde_json::from_value(payload)?;
        letter.render(ctx).await
    })
}

/// Handlers by job kind, and email renderers by template.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
    letters: HashMap<&'static str, Renderer>,
}

impl Registry {
    /// A registry with [`Noop`] only: the queue's own kind, for benchmarks and checks.
    pub fn new() -> Self {
        let mut registry = Self::default();
        registry.kind::<Noop>();
        registry
    }

    /// Registers a typed kind.
    pub fn kind<J: JobKind>(&mut self) -> &mut Self {
        self.register(J::KIND, |ctx| {
            Box::pin(async move {
                let job = J::from_payload(&ctx.job.payload)?;
                job.run(ctx).await
            })
        })
    }

    /// Registers a domain's emails, sent by [`SEND_EMAIL`] jobs.
    pub fn letter<L: Letter>(&mut self) -> &mut Self {
        for template in L::TEMPLATES {
            self.letters.insert(template, render_as::<L>);
        }
        let letters = Arc::new(self.letters.clone());
        self.register(SEND_EMAIL, move |ctx| {
            Box::pin(send_email(ctx, Arc::clone(&letters)))
        })
    }

    /// Registers a handler for `kind` by hand (tests register probes this way).
    pub fn register(
        &mut self,
        kind: &str,
        handler: impl Fn(JobContext) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.handlers.insert(kind.to_owned(), Arc::new(handler));
        self
    }

    pub fn get(&self, kind: &str) -> Option<Handler> {
        self.handlers.get(kind).cloned()
    }

    /// Whether an email of `template` can be rendered.
    pub fn renders(&self, template: &str) -> bool {
        self.letters.contains_key(template)
    }
}

async fn send_email(ctx: JobContext, letters: Arc<HashMap<&'static str, Renderer>>) -> anyhow::Result<()> {
    let template = ctx
        .job
        .payload
        .get("template")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let render = letters
        .get(template.as_str())
        .ok_or_else(|| anyhow::anyhow!("no email template {template:?}"))?;
    let Some(email) = render(&ctx, ctx.job.payload.clone()).await? else {
        tracing::info!(job = ctx.job.id, "email no longer applies; not sent");
        return Ok(());
    };
    let sent = ctx.services.get::<Mailer>().send(&email).await?;
    tracing::info!(job = ctx.job.id, tenant = %ctx.db.tenant().schema, to = %email.to, %sent, "email sent");
    Ok(())
}

/// Does nothing (after an optional pause): for benchmarks and checks of the queue itself.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub struct Noop {
    #[serde(default)]
    pub sleep_ms: u64,
}

impl JobKind for Noop {
    const KIND: &'static str = "noop";

    fn from_payload(payload: &Value) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(payload.clone()).unwrap_or_default())
    }

    async fn run(self, _ctx: JobContext) -> anyhow::Result<()> {
        if self.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.sleep_ms.min(600_000))).await;
        }
        Ok(())
    }
}
