//! GraphQL for tenant settings.

use async_graphql::{Context, InputObject, Object};
use std::sync::Arc;

use rust_decimal::Decimal;

use super::{
    SettingKey, SettingValue, SettingsCache, TenantSettings, check_currency, check_due_days, check_hours,
    check_interval, check_month, check_number_format, check_tax_rate, check_work_week, invalid,
    parse_time_zone,
};
use crate::auth::graphql::RequestActor;
use crate::error::AppResult;
use crate::graphql::support::{ContextExt, RequestContext};
use crate::tenancy::TenantSite;

/// A day of the week.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkDay {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<chrono::Weekday> for WorkDay {
    fn from(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Self::Monday,
            chrono::Weekday::Tue => Self::Tuesday,
            chrono::Weekday::Wed => Self::Wednesday,
            chrono::Weekday::Thu => Self::Thursday,
            chrono::Weekday::Fri => Self::Friday,
            chrono::Weekday::Sat => Self::Saturday,
            chrono::Weekday::Sun => Self::Sunday,
        }
    }
}

impl From<WorkDay> for chrono::Weekday {
    fn from(d: WorkDay) -> Self {
        match d {
            WorkDay::Monday => Self::Mon,
            WorkDay::Tuesday => Self::Tue,
            WorkDay::Wednesday => Self::Wed,
            WorkDay::Thursday => Self::Thu,
            WorkDay::Friday => Self::Fri,
            WorkDay::Saturday => Self::Sat,
            WorkDay::Sunday => Self::Sun,
        }
    }
}

/// This tenant's settings: its own values where set, the defaults otherwise.
pub struct TenantSettingsObject {
    settings: Arc<TenantSettings>,
    derived: TenantSite,
}

#[Object(name = "TenantSettings")]
impl TenantSettingsObject {
    /// IANA time zone in which days, weeks and months are counted.
    async fn time_zone(&self) -> &str {
        self.settings.time_zone.name()
    }
    /// Durations are captured in multiples of this many minutes.
    async fn timecapture_interval_minutes(&self) -> i32 {
        self.settings.timecapture_interval_minutes
    }
    /// Hours in a working day, for utilisation and leave in hours.
    async fn billable_hours_in_working_day(&self) -> Decimal {
        self.settings.billable_hours_in_working_day
    }
    /// Working days, Monday first.
    async fn work_week(&self) -> Vec<WorkDay> {
        self.settings
            .work_week
            .iter()
            .map(|d| WorkDay::from(*d))
            .collect()
    }
    /// ISO 4217 code of invoices and rates.
    async fn currency(&self) -> &str {
        &self.settings.currency
    }
    /// Percent applied to new invoices.
    async fn default_tax_rate(&self) -> Decimal {
        self.settings.default_tax_rate
    }
    /// Days from issue to due date.
    async fn invoice_due_days(&self) -> i32 {
        self.settings.invoice_due_days
    }
    /// E.g. `INV-{YYYY}-{SEQ:4}`.
    async fn invoice_number_format(&self) -> &str {
        &self.settings.invoice_number_format
    }
    /// Month (1-12) on whose first day the leave year starts.
    async fn leave_year_start_month(&self) -> i32 {
        self.settings.leave_year_start_month
    }
    /// The tenant's address, from its primary host. Not editable.
    async fn site_url(&self) -> &str {
        &self.derived.site_url
    }
    /// Sender of the tenant's emails, from its primary host. Not editable.
    async fn default_from_email(&self) -> &str {
        &self.derived.default_from_email
    }
    /// The settings this tenant has set; all others are defaults.
    async fn overridden(&self) -> &[SettingKey] {
        &self.settings.overridden
    }
}

/// Fields left out are left as they are.
#[derive(InputObject, Default)]
pub struct UpdateTenantSettingsInput {
    time_zone: Option<String>,
    timecapture_interval_minutes: Option<i32>,
    billable_hours_in_working_day: Option<Decimal>,
    work_week: Option<Vec<WorkDay>>,
    currency: Option<String>,
    default_tax_rate: Option<Decimal>,
    invoice_due_days: Option<i32>,
    invoice_number_format: Option<String>,
    leave_year_start_month: Option<i32>,
}

impl UpdateTenantSettingsInput {
    /// Every given field, validated; the first invalid one is reported with its field.
    fn validate(self) -> AppResult<Vec<SettingValue>> {
        let checks: [(SettingKey, Option<Result<SettingValue, String>>); 9] = [
            (
                SettingKey::TimeZone,
                self.time_zone.as_deref().map(parse_time_zone),
            ),
            (
                SettingKey::TimecaptureIntervalMinutes,
                self.timecapture_interval_minutes.map(check_interval),
            ),
            (
                SettingKey::BillableHoursInWorkingDay,
                self.billable_hours_in_working_day.map(check_hours),
            ),
            (
                SettingKey::WorkWeek,
                self.work_week
                    .map(|days| check_work_week(days.into_iter().map(Into::into).collect())),
            ),
            (SettingKey::Currency, self.currency.as_deref().map(check_currency)),
            (
                SettingKey::DefaultTaxRate,
                self.default_tax_rate.map(check_tax_rate),
            ),
            (
                SettingKey::InvoiceDueDays,
                self.invoice_due_days.map(check_due_days),
            ),
            (
                SettingKey::InvoiceNumberFormat,
                self.invoice_number_format.as_deref().map(check_number_format),
            ),
            (
                SettingKey::LeaveYearStartMonth,
                self.leave_year_start_month.map(check_month),
            ),
        ];
        checks
            .into_iter()
            .filter_map(|(key, check)| check.map(|r| r.map_err(|why| invalid(key, why))))
            .collect()
    }
}

/// The tenant's effective settings for a request (cached across requests; see
/// [`super::effective`]).
pub trait RequestSettings {
    fn settings(&self) -> impl Future<Output = AppResult<Arc<TenantSettings>>> + Send;
}

impl RequestSettings for RequestContext {
    async fn settings(&self) -> AppResult<Arc<TenantSettings>> {
        super::effective(&self.db, self.services.get::<SettingsCache>()).await
    }
}

fn object(ctx: &Context<'_>, settings: Arc<TenantSettings>) -> TenantSettingsObject {
    let req = ctx.request();
    TenantSettingsObject {
        settings,
        derived: req.db.tenant().site(&req.services.config),
    }
}

/// Stores a change in its own savepoint, then reads the settings back from this unit (the
/// cache cannot know of a change not yet committed). Every cached copy is dropped on commit.
async fn change(
    ctx: &Context<'_>,
    apply: impl AsyncFnOnce(&mut diesel_async::AsyncPgConnection, i64) -> AppResult<()>,
) -> AppResult<TenantSettingsObject> {
    let req = ctx.request();
    let tenant_id = req.db.tenant().id;
    let mut conn = req.db.conn().await?;
    conn.begin_savepoint().await?;
    let outcome = apply(&mut conn, tenant_id).await;
    conn.end_savepoint(outcome).await?;
    let settings = super::load(&mut conn).await?;
    let cache = req.services.shared::<SettingsCache>();
    req.db.after_commit(move || cache.invalidate(&tenant_id));
    Ok(object(ctx, Arc::new(settings)))
}

#[derive(Default)]
pub struct SettingsQuery;

#[Object]
impl SettingsQuery {
    /// This tenant's settings (any signed-in user).
    async fn tenant_settings(&self, ctx: &Context<'_>) -> async_graphql::Result<TenantSettingsObject> {
        let req = ctx.request();
        req.actor().await?;
        let settings = req.settings().await?;
        Ok(object(ctx, settings))
    }
}

#[derive(Default)]
pub struct SettingsMutation;

#[Object]
impl SettingsMutation {
    /// Changes settings (admins). All given fields are validated before any is stored.
    async fn update_tenant_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateTenantSettingsInput,
    ) -> async_graphql::Result<TenantSettingsObject> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        actor.require_admin()?;
        let changes = input.validate()?;
        let user_id = actor.user_id;
        Ok(change(ctx, async |conn, tenant_id| {
            super::store(conn, tenant_id, &changes, user_id).await
        })
        .await?)
    }

    /// Returns settings to their defaults (admins).
    async fn reset_tenant_settings(
        &self,
        ctx: &Context<'_>,
        keys: Vec<SettingKey>,
    ) -> async_graphql::Result<TenantSettingsObject> {
        let req = ctx.request();
        req.actor().await?.require_admin()?;
        Ok(change(ctx, async |conn, tenant_id| {
            super::reset(conn, tenant_id, &keys).await
        })
        .await?)
    }
}
