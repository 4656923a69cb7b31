//! Tenant settings, like django-constance: typed, with defaults in code and only the
//! overrides stored (table `settings` of the tenant's schema), validated on every change.
//! `SITE_URL` and `DEFAULT_FROM_EMAIL` derive from the tenant's primary host and cannot be
//! set by a tenant.

pub mod currency;
pub mod graphql;

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc, Weekday};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::cache::CoherentCache;
use crate::db::schema::settings;
use crate::error::{AppError, AppResult};
use crate::tenancy::TenantDb;
use crate::tenancy::changes::{self, Notice};

/// The settings a tenant can change. The stored key is the SCREAMING_SNAKE_CASE name.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettingKey {
    TimeZone,
    TimecaptureIntervalMinutes,
    BillableHoursInWorkingDay,
    WorkWeek,
    Currency,
    DefaultTaxRate,
    InvoiceDueDays,
    InvoiceNumberFormat,
    LeaveYearStartMonth,
}

impl SettingKey {
    pub const ALL: [SettingKey; 9] = [
        Self::TimeZone,
        Self::TimecaptureIntervalMinutes,
        Self::BillableHoursInWorkingDay,
        Self::WorkWeek,
        Self::Currency,
        Self::DefaultTaxRate,
        Self::InvoiceDueDays,
        Self::InvoiceNumberFormat,
        Self::LeaveYearStartMonth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TimeZone => "TIME_ZONE",
            Self::TimecaptureIntervalMinutes => "TIMECAPTURE_INTERVAL_MINUTES",
            Self::BillableHoursInWorkingDay => "BILLABLE_HOURS_IN_WORKING_DAY",
            Self::WorkWeek => "WORK_WEEK",
            Self::Currency => "CURRENCY",
            Self::DefaultTaxRate => "DEFAULT_TAX_RATE",
            Self::InvoiceDueDays => "INVOICE_DUE_DAYS",
            Self::InvoiceNumberFormat => "INVOICE_NUMBER_FORMAT",
            Self::LeaveYearStartMonth => "LEAVE_YEAR_START_MONTH",
        }
    }

    fn from_stored(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The GraphQL input field that sets this key, for error messages.
    pub fn input_field(self) -> &'static str {
        match self {
            Self::TimeZone => "input.timeZone",
            Self::TimecaptureIntervalMinutes => "input.timecaptureIntervalMinutes",
            Self::BillableHoursInWorkingDay => "input.billableHoursInWorkingDay",
            Self::WorkWeek => "input.workWeek",
            Self::Currency => "input.currency",
            Self::DefaultTaxRate => "input.defaultTaxRate",
            Self::InvoiceDueDays => "input.invoiceDueDays",
            Self::InvoiceNumberFormat => "input.invoiceNumberFormat",
            Self::LeaveYearStartMonth => "input.leaveYearStartMonth",
        }
    }
}

/// A tenant's effective settings: defaults with its overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    pub time_zone: Tz,
    pub timecapture_interval_minutes: i32,
    pub billable_hours_in_working_day: Decimal,
    /// Working days, Monday first.
    pub work_week: Vec<Weekday>,
    pub currency: String,
    /// Percent, e.g. 15 for 15 %.
    pub default_tax_rate: Decimal,
    pub invoice_due_days: i32,
    pub invoice_number_format: String,
    pub leave_year_start_month: i32,
    pub overridden: Vec<SettingKey>,
}

impl TenantSettings {
    /// A moment as the tenant's people read it (emails): date, time and zone.
    pub fn local_time(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.time_zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            timecapture_interval_minutes: 15,
            billable_hours_in_working_day: Decimal::from(8),
            work_week: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            currency: "USD".to_owned(),
            default_tax_rate: Decimal::ZERO,
            invoice_due_days: 30,
            invoice_number_format: "INV-{YYYY}-{SEQ:4}".to_owned(),
            leave_year_start_month: 1,
            overridden: Vec::new(),
        }
    }
}

/// One change to apply: a validated value for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    TimeZone(Tz),
    TimecaptureIntervalMinutes(i32),
    BillableHoursInWorkingDay(Decimal),
    WorkWeek(Vec<Weekday>),
    Currency(String),
    DefaultTaxRate(Decimal),
    InvoiceDueDays(i32),
    InvoiceNumberFormat(String),
    LeaveYearStartMonth(i32),
}

impl SettingValue {
    pub fn key(&self) -> SettingKey {
        match self {
            Self::TimeZone(_) => SettingKey::TimeZone,
            Self::TimecaptureIntervalMinutes(_) => SettingKey::TimecaptureIntervalMinutes,
            Self::BillableHoursInWorkingDay(_) => SettingKey::BillableHoursInWorkingDay,
            Self::WorkWeek(_) => SettingKey::WorkWeek,
            Self::Currency(_) => SettingKey::Currency,
            Self::DefaultTaxRate(_) => SettingKey::DefaultTaxRate,
            Self::InvoiceDueDays(_) => SettingKey::InvoiceDueDays,
            Self::InvoiceNumberFormat(_) => SettingKey::InvoiceNumberFormat,
            Self::LeaveYearStartMonth(_) => SettingKey::LeaveYearStartMonth,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::TimeZone(tz) => json!(tz.name()),
            Self::TimecaptureIntervalMinutes(n) | Self::InvoiceDueDays(n) | Self::LeaveYearStartMonth(n) => {
                json!(n)
            }
            Self::BillableHoursInWorkingDay(d) | Self::DefaultTaxRate(d) => json!(d.normalize().to_string()),
            Self::WorkWeek(days) => json!(days.iter().map(|d| weekday_name(*d)).collect::<Vec<_>>()),
            Self::Currency(s) | Self::InvoiceNumberFormat(s) => json!(s),
        }
    }

    /// Reads a stored value back, checking it as if it were new.
    fn from_json(key: SettingKey, value: &Value) -> Result<Self, String> {
        let as_str = || value.as_str().ok_or_else(|| "expected a string".to_owned());
        let as_int = || {
            value
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| "expected an integer".to_owned())
        };
        let as_decimal = || Decimal::from_str(as_str()?).map_err(|e| e.to_string());
        match key {
            SettingKey::TimeZone => parse_time_zone(as_str()?),
            SettingKey::TimecaptureIntervalMinutes => check_interval(as_int()?),
            SettingKey::BillableHoursInWorkingDay => check_hours(as_decimal()?),
            SettingKey::WorkWeek => {
                let days = value
                    .as_array()
                    .ok_or("expected a list")?
                    .iter()
                    .map(|d| {
                        d.as_str()
                            .and_then(parse_weekday)
                            .ok_or_else(|| "unknown weekday".to_owned())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                check_work_week(days)
            }
            SettingKey::Currency => check_currency(as_str()?),
            SettingKey::DefaultTaxRate => check_tax_rate(as_decimal()?),
            SettingKey::InvoiceDueDays => check_due_days(as_int()?),
            SettingKey::InvoiceNumberFormat => check_number_format(as_str()?),
            SettingKey::LeaveYearStartMonth => check_month(as_int()?),
        }
    }

    fn apply(self, to: &mut TenantSettings) {
        match self {
            Self::TimeZone(v) => to.time_zone = v,
            Self::TimecaptureIntervalMinutes(v) => to.timecapture_interval_minutes = v,
            Self::BillableHoursInWorkingDay(v) => to.billable_hours_in_working_day = v,
            Self::WorkWeek(v) => to.work_week = v,
            Self::Currency(v) => to.currency = v,
            Self::DefaultTaxRate(v) => to.default_tax_rate = v,
            Self::InvoiceDueDays(v) => to.invoice_due_days = v,
            Self::InvoiceNumberFormat(v) => to.invoice_number_format = v,
            Self::LeaveYearStartMonth(v) => to.leave_year_start_month = v,
        }
    }
}

pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MONDAY",
        Weekday::Tue => "TUESDAY",
        Weekday::Wed => "WEDNESDAY",
        Weekday::Thu => "THURSDAY",
        Weekday::Fri => "FRIDAY",
        Weekday::Sat => "SATURDAY",
        Weekday::Sun => "SUNDAY",
    }
}

fn parse_weekday(raw: &str) -> Option<Weekday> {
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .into_iter()
    .find(|d| weekday_name(*d) == raw)
}

pub fn parse_time_zone(raw: &str) -> Result<SettingValue, String> {
    Tz::from_str(raw.trim())
        .map(SettingValue::TimeZone)
        .map_err(|_| format!("'{raw}' is not an IANA time zone such as Africa/Johannesburg"))
}

pub fn check_interval(minutes: i32) -> Result<SettingValue, String> {
    if (1..=60).contains(&minutes) && 60 % minutes == 0 {
        Ok(SettingValue::TimecaptureIntervalMinutes(minutes))
    } else {
        Err("the interval is between 1 and 60 minutes and divides 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)".to_owned())
    }
}

pub fn check_hours(hours: Decimal) -> Result<SettingValue, String> {
    if hours > Decimal::ZERO && hours <= Decimal::from(24) && hours.normalize().scale() <= 2 {
        Ok(SettingValue::BillableHoursInWorkingDay(hours.normalize()))
    } else {
        Err(
            "billable hours in a working day are more than 0 and at most 24, with at most 2 decimals"
                .to_owned(),
        )
    }
}

pub fn check_work_week(mut days: Vec<Weekday>) -> Result<SettingValue, String> {
    let count = days.len();
    days.sort_by_key(|d| d.num_days_from_monday());
    days.dedup();
    if days.is_empty() {
        return Err("the work week has at least one day".to_owned());
    }
    if days.len() != count {
        return Err("the work week names each day at most once".to_owned());
    }
    Ok(SettingValue::WorkWeek(days))
}

pub fn check_currency(raw: &str) -> Result<SettingValue, String> {
    let code = raw.trim();
    currency::minor_units(code)
        .map(|_| SettingValue::Currency(code.to_owned()))
        .ok_or_else(|| format!("'{raw}' is not an ISO 4217 currency code such as ZAR or EUR"))
}

pub fn check_tax_rate(rate: Decimal) -> Result<SettingValue, String> {
    if rate >= Decimal::ZERO && rate <= Decimal::from(100) && rate.normalize().scale() <= 3 {
        Ok(SettingValue::DefaultTaxRate(rate.normalize()))
    } else {
        Err("the tax rate is a percentage from 0 to 100 with at most 3 decimals".to_owned())
    }
}

pub fn check_due_days(days: i32) -> Result<SettingValue, String> {
    if (0..=365).contains(&days) {
        Ok(SettingValue::InvoiceDueDays(days))
    } else {
        Err("invoices fall due 0 to 365 days after issue".to_owned())
    }
}

pub fn check_month(month: i32) -> Result<SettingValue, String> {
    if (1..=12).contains(&month) {
        Ok(SettingValue::LeaveYearStartMonth(month))
    } else {
        Err("the leave year starts in a month from 1 to 12".to_owned())
    }
}

/// Invoice numbers: literal text with `{YYYY}`, `{YY}`, `{MM}` and exactly one `{SEQ}` or
/// `{SEQ:n}` (zero-padded to n digits, n from 1 to 10).
pub fn check_number_format(raw: &str) -> Result<SettingValue, String> {
    let bad = |why: &str| Err(format!("invalid invoice number format: {why}"));
    if raw.is_empty() || raw.len() > 50 {
        return bad("it has 1 to 50 characters");
    }
    let mut seq = 0;
    let mut rest = raw;
    while let Some(open) = rest.find('{') {
        let literal = &rest[..open];
        if literal.contains('}') {
            return bad("a '}' has no '{'");
        }
        let Some(close) = rest[open..].find('}') else {
            return bad("a '{' is not closed");
        };
        let token = &rest[open + 1..open + close];
        match token {
            "YYYY" | "YY" | "MM" => {}
            "SEQ" => seq += 1,
            t if t.starts_with("SEQ:") => match t[4..].parse::<u32>() {
                Ok(1..=10) => seq += 1,
                _ => return bad("{SEQ:n} pads to 1 to 10 digits"),
            },
            other => return bad(&format!("unknown placeholder {{{other}}}")),
        }
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return bad("a '}' has no '{'");
    }
    if seq != 1 {
        return bad("it holds exactly one {SEQ} or {SEQ:n}");
    }
    if raw.chars().any(|c| c.is_control()) {
        return bad("it holds no control characters");
    }
    Ok(SettingValue::InvoiceNumberFormat(raw.to_owned()))
}

/// The tenant's effective settings, read in the current tenant context. A stored value that
/// no longer passes validation is ignored (and logged) in favour of the default.
pub async fn load(conn: &mut AsyncPgConnection) -> AppResult<TenantSettings> {
    let rows: Vec<(String, Value)> = settings::table
        .select((settings::key, settings::value))
        .load(conn)
        .await?;
    let mut effective = TenantSettings::default();
    for (raw_key, value) in rows {
        let Some(key) = SettingKey::from_stored(&raw_key) else {
            tracing::warn!(key = raw_key, "ignoring an unknown stored setting");
            continue;
        };
        match SettingValue::from_json(key, &value) {
            Ok(v) => {
                v.apply(&mut effective);
                effective.overridden.push(key);
            }
            Err(why) => tracing::warn!(key = raw_key, why, "ignoring an invalid stored setting"),
        }
    }
    Ok(effective)
}

/// Effective settings by tenant id; see [`crate::cache`].
pub type SettingsCache = CoherentCache<i64, Arc<TenantSettings>>;

pub fn settings_cache() -> SettingsCache {
    CoherentCache::new(std::time::Duration::from_secs(300))
}

/// The tenant's effective settings for a unit of work: from the cache, or read in the unit
/// (and cached).
pub async fn effective(db: &TenantDb, cache: &SettingsCache) -> AppResult<Arc<TenantSettings>> {
    let tenant_id = db.tenant().id;
    if let Some(settings) = cache.get(&tenant_id) {
        return Ok(settings);
    }
    let epoch = cache.epoch();
    let settings = {
        let mut conn = db.conn().await?;
        Arc::new(load(&mut conn).await?)
    };
    cache.insert(tenant_id, epoch, Arc::clone(&settings));
    Ok(settings)
}

/// Stores overrides (in the current tenant context and transaction) and announces the
/// change to every server's cache.
pub async fn store(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    changes: &[SettingValue],
    by_user: i64,
) -> AppResult<()> {
    for change in changes {
        diesel::insert_into(settings::table)
            .values((
                settings::key.eq(change.key().as_str()),
                settings::value.eq(change.to_json()),
                settings::updated_by.eq(by_user),
            ))
            .on_conflict(settings::key)
            .do_update()
            .set((
                settings::value.eq(change.to_json()),
                settings::updated_at.eq(diesel::dsl::now),
                settings::updated_by.eq(by_user),
            ))
            .execute(conn)
            .await?;
    }
    changes::publish(conn, Notice::Settings(tenant_id)).await?;
    Ok(())
}

/// Drops overrides so the defaults apply again, and announces the change.
pub async fn reset(conn: &mut AsyncPgConnection, tenant_id: i64, keys: &[SettingKey]) -> AppResult<()> {
    let names: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
    diesel::delete(settings::table.filter(settings::key.eq_any(names)))
        .execute(conn)
        .await?;
    changes::publish(conn, Notice::Settings(tenant_id)).await?;
    Ok(())
}

/// Turns a validation message into the error for `key`'s input field.
pub fn invalid(key: SettingKey, message: String) -> AppError {
    AppError::bad_input(key.input_field(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip() {
        let values = [
            parse_time_zone("Pacific/Auckland").unwrap(),
            check_interval(6).unwrap(),
            check_hours(Decimal::new(75, 1)).unwrap(),
            check_work_week(vec![Weekday::Sun, Weekday::Mon, Weekday::Thu]).unwrap(),
            check_currency("ZAR").unwrap(),
            check_tax_rate(Decimal::new(155, 1)).unwrap(),
            check_due_days(14).unwrap(),
            check_number_format("{YY}{MM}-{SEQ:5}").unwrap(),
            check_month(3).unwrap(),
        ];
        for v in values {
            assert_eq!(SettingValue::from_json(v.key(), &v.to_json()).unwrap(), v);
        }
    }

    #[test]
    fn refuses_bad_values() {
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(check_interval(7).is_err());
        assert!(check_interval(0).is_err());
        assert!(check_interval(120).is_err());
        assert!(check_hours(Decimal::ZERO).is_err());
        assert!(check_hours(Decimal::new(2401, 2)).is_err());
        assert!(check_hours(Decimal::new(8125, 3)).is_err());
        assert!(check_work_week(vec![]).is_err());
        assert!(check_work_week(vec![Weekday::Mon, Weekday::Mon]).is_err());
        assert!(check_currency("XYZ").is_err());
        assert!(check_tax_rate(Decimal::from(101)).is_err());
        assert!(check_due_days(-1).is_err());
        assert!(check_month(13).is_err());
        for bad in [
            "INV",
            "{SEQ}{SEQ}",
            "{SEQ:0}",
            "{SEQ:11}",
            "{FOO}{SEQ}",
            "{SEQ",
            "SEQ}",
            "{SEQ}}",
        ] {
            assert!(check_number_format(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn work_week_is_ordered_from_monday() {
        let SettingValue::WorkWeek(days) = check_work_week(vec![Weekday::Thu, Weekday::Sun]).unwrap() else {
            unreachable!()
        };
        assert_eq!(days, vec![Weekday::Thu, Weekday::Sun]);
    }
}
