//! What each kind of job does. A handler gets its job and the job's tenant unit (a
//! [`TenantDb`], as a request has); what it writes there commits together with the job's
//! removal from the queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Job, NewJob};
use crate::config::ServiceConfig;
use crate::db::schema::{time_entries, timesheets, usage_snapshots, users};
use crate::mail::{Email, Mailer};
use crate::settings::{self, SettingsCache};
use crate::tenancy::TenantDb;
use crate::time::timesheets::Timesheet;

/// What handlers share: configuration for derived settings, the settings cache, the mailer.
pub struct JobServices {
    pub config: ServiceConfig,
    pub settings: Arc<SettingsCache>,
    pub mailer: Mailer,
    pub pdf: Arc<crate::billing::pdf::PdfFonts>,
}

/// One run of one job.
pub struct JobContext {
    pub job: Job,
    pub db: Arc<TenantDb>,
    pub services: Arc<JobServices>,
}

pub type Handler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Handler>,
}

impl Registry {
    /// The kinds this service runs.
    pub fn standard() -> Self {
        let mut registry = Self::default();
        registry.register(NOOP, |ctx| Box::pin(noop(ctx)));
        registry.register(USAGE_SNAPSHOT, |ctx| Box::pin(usage_snapshot(ctx)));
        registry.register(SEND_EMAIL, |ctx| Box::pin(send_email(ctx)));
        registry
    }

    pub fn register(
        &mut self,
        kind: &str,
        handler: impl Fn(JobContext) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync + 'static,
    ) {
        self.handlers.insert(kind.to_owned(), Arc::new(handler));
    }

    pub fn get(&self, kind: &str) -> Option<Handler> {
        self.handlers.get(kind).cloned()
    }
}

/// Does nothing (after an optional pause): for benchmarks and checks of the queue itself.
pub const NOOP: &str = "noop";
/// Records what a tenant uses into `public.usage_snapshots`.
pub const USAGE_SNAPSHOT: &str = "usage_snapshot";
/// Renders and sends one email.
pub const SEND_EMAIL: &str = "send_email";

#[derive(Deserialize, Default)]
struct NoopPayload {
    #[serde(default)]
    sleep_ms: u64,
}

async fn noop(ctx: JobContext) -> anyhow::Result<()> {
    let payload: NoopPayload = serde_json::from_value(ctx.job.payload.clone()).unwrap_or_default();
    if payload.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(payload.sleep_ms.min(600_000))).await;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Storage {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

async fn usage_snapshot(ctx: JobContext) -> anyhow::Result<()> {
    let taken_on = ctx
        .job
        .payload
        .get("slot")
        .and_then(|s| s.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|s| s.date_naive())
        .unwrap_or_else(|| Utc::now().date_naive());
    let mut conn = ctx.db.conn().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let active_users: i64 = users::table
        .filter(users::active.eq(true))
        .count()
        .get_result(&mut *conn)
        .await?;
    let entries: i64 = time_entries::table.count().get_result(&mut *conn).await?;
    let storage: Storage = diesel::sql_query(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')",
    )
    .bind::<Text, _>(ctx.db.tenant().schema.as_str())
    .get_result(&mut *conn)
    .await?;
    diesel::insert_into(usage_snapshots::table)
        .values((
            usage_snapshots::tenant_id.eq(ctx.db.tenant().id),
            usage_snapshots::taken_on.eq(taken_on),
            usage_snapshots::active_users.eq(active_users),
            usage_snapshots::time_entries.eq(entries),
            usage_snapshots::storage_bytes.eq(storage.bytes),
        ))
        .on_conflict((usage_snapshots::tenant_id, usage_snapshots::taken_on))
        .do_update()
        .set((
            usage_snapshots::active_users.eq(active_users),
            usage_snapshots::time_entries.eq(entries),
            usage_snapshots::storage_bytes.eq(storage.bytes),
            usage_snapshots::taken_at.eq(diesel::dsl::now),
        ))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The emails the service sends; each is rendered when its job runs, from the data as it
/// is then, in the tenant's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum EmailTemplate {
    /// A new user's invitation to sign in.
    Welcome { user_id: i64 },
    /// A timesheet approved or rejected, to its user.
    TimesheetDecided { timesheet_id: i64 },
    /// A new leave request, to one approver.
    LeaveRequested { request_id: i64, to_user_id: i64 },
    /// A leave request approved or rejected, to its requester.
    LeaveDecided { request_id: i64 },
    /// A leave request cancelled by its requester, to one approver.
    LeaveCancelled { request_id: i64, to_user_id: i64 },
    /// An issued invoice with its PDF, to the client's billing address.
    InvoiceSent { invoice_id: i64 },
}

impl EmailTemplate {
    /// The job that sends this email.
    pub fn job(&self, tenant_id: i64) -> NewJob {
        NewJob::new(
            SEND_EMAIL,
            tenant_id,
            serde_json::to_value(self).unwrap_or_default(),
        )
    }
}

async fn send_email(ctx: JobContext) -> anyhow::Result<()> {
    let template: EmailTemplate = serde_json::from_value(ctx.job.payload.clone())?;
    let Some(email) = render(&ctx, &template).await? else {
        tracing::info!(job = ctx.job.id, "email no longer applies; not sent");
        return Ok(());
    };
    let sent = ctx.services.mailer.send(&email).await?;
    tracing::info!(job = ctx.job.id, tenant = %ctx.db.tenant().schema, to = %email.to, %sent, "email sent");
    Ok(())
}

/// Renders a template for the job's tenant; `None` when what it is about is gone.
pub async fn render(ctx: &JobContext, template: &EmailTemplate) -> anyhow::Result<Option<Email>> {
    let tenant = Arc::clone(ctx.db.tenant());
    let derived = settings::derived(&tenant, &ctx.services.config);
    let settings = settings::effective(&ctx.db, &ctx.services.settings)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut conn = ctx.db.conn().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let site = derived.site_url.trim_end_matches('/').to_owned();
    let from_name = tenant.name.clone();
    match template {
        EmailTemplate::Welcome { user_id } => {
            let user: Option<(String, String)> = users::table
                .find(user_id)
                .select((users::email, users::name))
                .first(&mut *conn)
                .await
                .optional()?;
            let Some((email, name)) = user else {
                return Ok(None);
            };
            let body = format!(
                "an account was made for you at {} on Crowdminder.\n\
                 Sign in as {email} at {site}/login with the password you were given.\n",
                tenant.name,
            );
            let subject = format!("Your account at {}", tenant.name);
            Ok(Some(letter(
                derived.default_from_email,
                from_name,
                (email, name),
                subject,
                &body,
            )))
        }
        EmailTemplate::TimesheetDecided { timesheet_id } => {
            let sheet: Option<Timesheet> = timesheets::table
                .find(timesheet_id)
                .select(Timesheet::as_select())
                .first(&mut *conn)
                .await
                .optional()?;
            let Some(sheet) = sheet else {
                return Ok(None);
            };
            let (user_id, week, reason, decided_at) = (
                sheet.user_id,
                sheet.week_start,
                sheet.rejection_reason.clone(),
                sheet.decided_at,
            );
            let status = sheet.status;
            let (email, name): (String, String) = users::table
                .find(user_id)
                .select((users::email, users::name))
                .first(&mut *conn)
                .await?;
            let when = decided_at
                .map(|t| {
                    t.with_timezone(&settings.time_zone)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_default();
            let link = format!("{site}/timesheets/{week}");
            let (subject, body) = match status.as_str() {
                "APPROVED" => (
                    format!("Your timesheet for the week of {week} is approved"),
                    format!("It was approved on {when}. Its entries are now locked.\n\n{link}\n"),
                ),
                "REJECTED" => (
                    format!("Your timesheet for the week of {week} needs changes"),
                    format!(
                        "It was returned on {when} with this reason:\n\n  {}\n\n\
                         Correct the entries and submit it again: {link}\n",
                        reason.unwrap_or_default()
                    ),
                ),
                _ => return Ok(None),
            };
            Ok(Some(letter(
                derived.default_from_email,
                from_name,
                (email, name),
                subject,
                &body,
            )))
        }
        EmailTemplate::LeaveRequested {
            request_id,
            to_user_id,
        }
        | EmailTemplate::LeaveCancelled {
            request_id,
            to_user_id,
        } => {
            let Some(leave) = leave_summary(&mut conn, *request_id).await? else {
                return Ok(None);
            };
            let Some((email, name)) = person(&mut conn, *to_user_id).await? else {
                return Ok(None);
            };
            let cancelled = matches!(template, EmailTemplate::LeaveCancelled { .. });
            let (subject, body) = if cancelled {
                (
                    format!("{} cancelled {} leave", leave.requester, leave.type_name),
                    format!(
                        "{} cancelled their {} leave from {} to {} ({} working days).\n\n{site}/leave/requests/{request_id}\n",
                        leave.requester, leave.type_name, leave.first, leave.last, leave.days
                    ),
                )
            } else {
                (
                    format!("{} asks for {} leave", leave.requester, leave.type_name),
                    format!(
                        "{} asks for {} leave from {} to {} ({} working days).\n{}\n\
                         Approve or reject it: {site}/leave/requests/{request_id}\n",
                        leave.requester,
                        leave.type_name,
                        leave.first,
                        leave.last,
                        leave.days,
                        if leave.reason.is_empty() {
                            String::new()
                        } else {
                            format!("Reason: {}\n", leave.reason)
                        }
                    ),
                )
            };
            Ok(Some(letter(
                derived.default_from_email,
                from_name,
                (email, name),
                subject,
                &body,
            )))
        }
        EmailTemplate::LeaveDecided { request_id } => {
            let Some(leave) = leave_summary(&mut conn, *request_id).await? else {
                return Ok(None);
            };
            let Some((email, name)) = person(&mut conn, leave.user_id).await? else {
                return Ok(None);
            };
            let when = leave
                .decided_at
                .map(|t| {
                    t.with_timezone(&settings.time_zone)
                        .format("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_default();
            let (subject, body) = match leave.status.as_str() {
                "APPROVED" => (
                    format!("Your {} leave from {} is approved", leave.type_name, leave.first),
                    format!(
                        "Your {} leave from {} to {} ({} working days) was approved on {when}.\n",
                        leave.type_name, leave.first, leave.last, leave.days
                    ),
                ),
                "REJECTED" => (
                    format!("Your {} leave from {} is rejected", leave.type_name, leave.first),
                    format!(
                        "Your {} leave from {} to {} was rejected on {when}:\n\n  {}\n",
                        leave.type_name,
                        leave.first,
                        leave.last,
                        leave.note.unwrap_or_default()
                    ),
                ),
                _ => return Ok(None),
            };
            let body = format!("{body}\n{site}/leave/requests/{request_id}\n");
            Ok(Some(letter(
                derived.default_from_email,
                from_name,
                (email, name),
                subject,
                &body,
            )))
        }
        EmailTemplate::InvoiceSent { invoice_id } => {
            use crate::billing::{InvoiceDocument, InvoiceStatus, pdf::format_amount};
            let Some(document) = InvoiceDocument::load(&mut conn, *invoice_id)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
            else {
                return Ok(None);
            };
            drop(conn);
            let invoice = &document.invoice;
            let (Some(number), Some(to)) = (invoice.number.clone(), document.client_email.clone()) else {
                return Ok(None);
            };
            if !matches!(invoice.status(), InvoiceStatus::Issued | InvoiceStatus::Paid) {
                return Ok(None);
            }
            let minor = invoice.minor_units();
            let due = invoice.due_date.map(|d| d.to_string()).unwrap_or_default();
            let body = format!(
                "please find attached invoice {number} from {} for the period {} to {}.\n\n\
                 Total: {} {}\nBalance due: {} {}\nDue date: {due}\n",
                tenant.name,
                invoice.period_from,
                invoice.period_to,
                format_amount(invoice.total, minor),
                invoice.currency,
                format_amount(invoice.balance_due(), minor),
                invoice.currency,
            );
            let subject = format!("Invoice {number} from {}", tenant.name);
            let fonts = Arc::clone(&ctx.services.pdf);
            let tenant_name = tenant.name.clone();
            let (filename, client_name, pdf) = tokio::task::spawn_blocking(move || {
                let bytes = document.render(&fonts, &tenant_name);
                (document.file_name(), document.client_name, bytes)
            })
            .await?;
            let pdf = pdf.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let mut email = letter(
                derived.default_from_email,
                from_name,
                (to, client_name),
                subject,
                &body,
            );
            email.attachments.push(crate::mail::EmailAttachment {
                filename,
                content_type: "application/pdf".to_owned(),
                bytes: pdf,
            });
            Ok(Some(email))
        }
    }
}

/// An email to one person, greeted by name (or address).
fn letter(
    from: String,
    from_name: String,
    (email, name): (String, String),
    subject: String,
    body: &str,
) -> Email {
    let greeting = if name.is_empty() {
        email.clone()
    } else {
        name.clone()
    };
    Email {
        from,
        from_name,
        to: email,
        to_name: name,
        subject,
        text: format!("Hello {greeting},\n\n{body}"),
        attachments: Vec::new(),
    }
}

async fn person(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
) -> anyhow::Result<Option<(String, String)>> {
    Ok(users::table
        .find(user_id)
        .filter(users::active.eq(true))
        .select((users::email, users::name))
        .first(conn)
        .await
        .optional()?)
}

struct LeaveSummary {
    user_id: i64,
    requester: String,
    type_name: String,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
    days: rust_decimal::Decimal,
    reason: String,
    status: String,
    note: Option<String>,
    decided_at: Option<chrono::DateTime<Utc>>,
}

async fn leave_summary(
    conn: &mut diesel_async::AsyncPgConnection,
    request_id: i64,
) -> anyhow::Result<Option<LeaveSummary>> {
    use crate::db::schema::{leave_requests, leave_types};
    use crate::leave::LeaveRequest;
    let found: Option<(LeaveRequest, String, String, String)> = leave_requests::table
        .inner_join(leave_types::table)
        .inner_join(users::table.on(users::id.eq(leave_requests::user_id)))
        .filter(leave_requests::id.eq(request_id))
        .select((
            LeaveRequest::as_select(),
            leave_types::name,
            users::name,
            users::email,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(r, type_name, name, email)| LeaveSummary {
        user_id: r.user_id,
        requester: if name.is_empty() { email } else { name },
        type_name,
        first: r.first_day,
        last: r.last_day,
        days: r.working_days.normalize(),
        reason: r.reason,
        status: r.status,
        note: r.decision_note,
        decided_at: r.decided_at,
    }))
}
