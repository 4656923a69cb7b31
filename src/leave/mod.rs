//! Leave: types with their allowances, public holidays, requests and their decisions, and
//! balances computed from them.
//!
//! Working days follow the tenant's work week and holidays; a half day at either end of a
//! request counts one half. Leave years start in `LEAVE_YEAR_START_MONTH` and are named by
//! the calendar year they start in. Accrual is `UPFRONT` (the whole allowance from the
//! year's first day) or `MONTHLY` (a twelfth at the end of each month). Unused days carry
//! into the next year up to the type's cap. Nothing of a balance is stored: a changed
//! allowance or a cancelled request shows at once.

pub mod emails;
pub mod graphql;

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc, Weekday};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::auth::{Actor, Role};
use crate::db::functions::lower;
use crate::db::schema::{holidays, leave_requests, leave_types, users};
use crate::db::unique_conflict;
use crate::db::{Keyset, keyset_page};
use crate::error::{AppError, AppResult};
use crate::jobs::{self, registry::Letter};
use crate::settings::TenantSettings;
use crate::text;
use emails::LeaveEmail;

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accrual {
    /// The whole allowance from the leave year's first day.
    Upfront,
    /// A twelfth of the allowance at the end of each month of the leave year.
    Monthly,
}

crate::db::stored_as_text!(Accrual, default Upfront, {
    Upfront => "UPFRONT",
    Monthly => "MONTHLY",
});

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

crate::db::stored_as_text!(LeaveStatus, default Pending, {
    Pending => "PENDING",
    Approved => "APPROVED",
    Rejected => "REJECTED",
    Cancelled => "CANCELLED",
});

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = leave_types)]
pub struct LeaveType {
    pub id: i64,
    pub name: String,
    pub yearly_allowance_days: Decimal,
    pub accrual: String,
    pub carry_over_cap_days: Decimal,
    pub half_days_allowed: bool,
    pub attachment_required_after_days: Option<Decimal>,
    pub allow_negative: bool,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The leave types of `ids` that exist.
pub async fn types_by_ids(conn: &mut AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<LeaveType>> {
    Ok(leave_types::table
        .filter(leave_types::id.eq_any(ids))
        .select(LeaveType::as_select())
        .load(conn)
        .await?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = holidays)]
pub struct Holiday {
    pub id: i64,
    pub day: NaiveDate,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = leave_requests)]
pub struct LeaveRequest {
    pub id: i64,
    pub user_id: i64,
    pub leave_type_id: i64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub half_day_start: bool,
    pub half_day_end: bool,
    pub working_days: Decimal,
    pub reason: String,
    pub status: String,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl LeaveRequest {
    pub fn status(&self) -> LeaveStatus {
        LeaveStatus::from_db(&self.status)
    }

    fn span(&self) -> Span {
        Span {
            first: self.first_day,
            last: self.last_day,
            half_start: self.half_day_start,
            half_end: self.half_day_end,
        }
    }
}

/// The days a request covers.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub half_start: bool,
    pub half_end: bool,
}

/// Which days are worked: the work week less the holidays.
pub struct Calendar {
    pub work_week: Vec<Weekday>,
    pub holidays: HashSet<NaiveDate>,
}

impl Calendar {
    pub fn is_working(&self, day: NaiveDate) -> bool {
        self.work_week.contains(&day.weekday()) && !self.holidays.contains(&day)
    }

    /// Working days of `span` that fall between `from` and `to` (both included); a half
    /// day at either end counts one half.
    pub fn working_days(&self, span: &Span, from: NaiveDate, to: NaiveDate) -> Decimal {
        let mut halves: i64 = 0;
        let mut day = span.first.max(from);
        let end = span.last.min(to);
        while day <= end {
            if self.is_working(day) {
                let mut h = 2;
                if day == span.first && span.half_start {
                    h -= 1;
                }
                if day == span.last && span.half_end {
                    h -= 1;
                }
                halves += h;
            }
            day += Duration::days(1);
        }
        Decimal::new(halves * 5, 1)
    }

    /// Working days between `from` and `to`, both included.
    pub fn days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        let mut days = 0;
        let mut day = from;
        while day <= to {
            if self.is_working(day) {
                days += 1;
            }
            day += Duration::days(1);
        }
        days
    }
}

pub async fn calendar(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Calendar> {
    let days: Vec<NaiveDate> = holidays::table
        .filter(holidays::day.between(from, to))
        .select(holidays::day)
        .load(conn)
        .await?;
    Ok(Calendar {
        work_week: settings.work_week.clone(),
        holidays: days.into_iter().collect(),
    })
}

/// First and last day of leave year `year` (named by the calendar year it starts in).
pub fn leave_year(year: i32, start_month: i32) -> (NaiveDate, NaiveDate) {
    let month = u32::try_from(start_month.clamp(1, 12)).unwrap_or(1);
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
    let last = first
        .checked_add_months(Months::new(12))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first);
    (first, last)
}

/// The leave year holding `day`.
pub fn leave_year_of(day: NaiveDate, start_month: i32) -> i32 {
    if (day.month() as i32) >= start_month.clamp(1, 12) {
        day.year()
    } else {
        day.year() - 1
    }
}

/// What a type grants by `as_of` in the leave year from `first` to `last`.
pub fn accrued(leave_type: &LeaveType, first: NaiveDate, last: NaiveDate, as_of: NaiveDate) -> Decimal {
    let allowance = leave_type.yearly_allowance_days;
    if as_of < first {
        return Decimal::ZERO;
    }
    match Accrual::from_db(&leave_type.accrual) {
        Accrual::Upfront => allowance,
        Accrual::Monthly => {
            if as_of >= last {
                return allowance;
            }
            // Months whose last day has passed by `as_of`.
            let mut months = 0;
            let mut month_end = first
                .checked_add_months(Months::new(1))
                .and_then(|d| d.pred_opt())
                .unwrap_or(first);
            while month_end <= as_of && months < 12 {
                months += 1;
                month_end = first
                    .checked_add_months(Months::new(months + 1))
                    .and_then(|d| d.pred_opt())
                    .unwrap_or(last);
            }
            (allowance * Decimal::from(months) / Decimal::from(12)).round_dp(2)
        }
    }
}

/// One leave type's balance for one user and leave year.
#[derive(Debug, Clone)]
pub struct Balance {
    pub leave_type: LeaveType,
    pub year: i32,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub entitled: Decimal,
    pub accrued: Decimal,
    pub carried_over: Decimal,
    pub taken: Decimal,
    pub pending: Decimal,
}

impl Balance {
    pub fn remaining(&self) -> Decimal {
        self.accrued + self.carried_over - self.taken - self.pending
    }
}

/// Balances of `user_id` in leave year `year` as of `as_of`, for every type (or one).
pub async fn balances(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    user_id: i64,
    year: i32,
    as_of: NaiveDate,
    only: Option<i64>,
) -> AppResult<Vec<Balance>> {
    let mut all = balances_of(conn, settings, &[user_id], year, as_of, only).await?;
    all.remove(&user_id).ok_or(AppError::NotFound { what: "user" })
}

/// Balances of many users at once, in four statements however many users: their join
/// dates, the leave types, their requests in the years that matter, the holidays. Carry-over
/// is worked out year by year from the leave year each user joined in (at most ten back).
pub async fn balances_of(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    user_ids: &[i64],
    year: i32,
    as_of: NaiveDate,
    only: Option<i64>,
) -> AppResult<std::collections::HashMap<i64, Vec<Balance>>> {
    let start_month = settings.leave_year_start_month;
    let joined: Vec<(i64, DateTime<Utc>)> = users::table
        .filter(users::id.eq_any(user_ids))
        .select((users::id, users::created_at))
        .load(conn)
        .await?;
    let first_year_of = |joined: DateTime<Utc>| {
        leave_year_of(joined.date_naive(), start_month)
            .min(year)
            .max(year - 10)
    };
    let earliest = joined
        .iter()
        .map(|(_, j)| first_year_of(*j))
        .min()
        .unwrap_or(year);
    let (range_first, _) = leave_year(earliest, start_month);
    let (_, range_last) = leave_year(year, start_month);
    let mut types_query = leave_types::table
        .select(LeaveType::as_select())
        .order(leave_types::id)
        .into_boxed();
    if let Some(id) = only {
        types_query = types_query.filter(leave_types::id.eq(id));
    }
    let types: Vec<LeaveType> = types_query.load(conn).await?;
    let requests: Vec<LeaveRequest> = leave_requests::table
        .filter(leave_requests::user_id.eq_any(user_ids))
        .filter(leave_requests::status.eq_any(["PENDING", "APPROVED"]))
        .filter(leave_requests::last_day.ge(range_first))
        .filter(leave_requests::first_day.le(range_last))
        .select(LeaveRequest::as_select())
        .load(conn)
        .await?;
    let calendar = calendar(conn, settings, range_first, range_last).await?;
    let mut by_user: std::collections::HashMap<i64, Vec<&LeaveRequest>> = std::collections::HashMap::new();
    for r in &requests {
        by_user.entry(r.user_id).or_default().push(r);
    }
    let mut out = std::collections::HashMap::with_capacity(joined.len());
    for (user_id, joined) in joined {
        let requests = by_user.remove(&user_id).unwrap_or_default();
        let first_year = first_year_of(joined);
        let mut balances = Vec::with_capacity(types.len());
        for leave_type in &types {
            let mut carried = Decimal::ZERO;
            for y in first_year..=year {
                let (first, last) = leave_year(y, start_month);
                let mut taken = Decimal::ZERO;
                let mut pending = Decimal::ZERO;
                for r in requests.iter().filter(|r| r.leave_type_id == leave_type.id) {
                    let days = calendar.working_days(&r.span(), first, last);
                    match r.status() {
                        LeaveStatus::Approved => taken += days,
                        LeaveStatus::Pending => pending += days,
                        _ => {}
                    }
                }
                if y == year {
                    balances.push(Balance {
                        year,
                        first_day: first,
                        last_day: last,
                        entitled: leave_type.yearly_allowance_days,
                        accrued: accrued(leave_type, first, last, as_of),
                        carried_over: carried,
                        taken,
                        pending,
                        leave_type: leave_type.clone(),
                    });
                } else {
                    let unused = leave_type.yearly_allowance_days + carried - taken;
                    carried = unused.max(Decimal::ZERO).min(leave_type.carry_over_cap_days);
                }
            }
        }
        out.insert(user_id, balances);
    }
    Ok(out)
}

/// Every active user's id, in id order.
pub async fn active_users(conn: &mut AsyncPgConnection) -> AppResult<Vec<i64>> {
    Ok(users::table
        .filter(users::active.eq(true))
        .order(users::id)
        .select(users::id)
        .load(conn)
        .await?)
}

fn check_days(field: &str, days: Decimal) -> AppResult<Decimal> {
    if days < Decimal::ZERO || days > Decimal::from(366) || days.normalize().scale() > 2 {
        return Err(AppError::bad_input(
            field,
            "days are 0 to 366, with at most 2 decimals",
        ));
    }
    Ok(days.normalize())
}

pub struct LeaveTypeInput {
    pub name: Option<String>,
    pub yearly_allowance_days: Option<Decimal>,
    pub accrual: Option<Accrual>,
    pub carry_over_cap_days: Option<Decimal>,
    pub half_days_allowed: Option<bool>,
    pub attachment_required_after_days: Option<Option<Decimal>>,
    pub allow_negative: Option<bool>,
    pub archived: Option<bool>,
}

fn name_conflict(e: DieselError, name: &str) -> AppError {
    unique_conflict(e, None, Some("input.name"), || {
        format!("a leave type named {name} already exists")
    })
}

pub async fn create_type(conn: &mut AsyncPgConnection, input: LeaveTypeInput) -> AppResult<LeaveType> {
    let name = text::name("input.name", input.name.as_deref().unwrap_or_default(), 100)?;
    let allowance = check_days(
        "input.yearlyAllowanceDays",
        input.yearly_allowance_days.unwrap_or_default(),
    )?;
    let cap = check_days(
        "input.carryOverCapDays",
        input.carry_over_cap_days.unwrap_or_default(),
    )?;
    let attachment = input
        .attachment_required_after_days
        .flatten()
        .map(|d| check_days("input.attachmentRequiredAfterDays", d))
        .transpose()?;
    diesel::insert_into(leave_types::table)
        .values((
            leave_types::name.eq(&name),
            leave_types::yearly_allowance_days.eq(allowance),
            leave_types::accrual.eq(input.accrual.unwrap_or(Accrual::Upfront).as_str()),
            leave_types::carry_over_cap_days.eq(cap),
            leave_types::half_days_allowed.eq(input.half_days_allowed.unwrap_or(true)),
            leave_types::attachment_required_after_days.eq(attachment),
            leave_types::allow_negative.eq(input.allow_negative.unwrap_or(false)),
        ))
        .returning(LeaveType::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| name_conflict(e, &name))
}

pub async fn update_type(
    conn: &mut AsyncPgConnection,
    id: i64,
    input: LeaveTypeInput,
) -> AppResult<LeaveType> {
    let name = input
        .name
        .as_deref()
        .map(|n| text::name("input.name", n, 100))
        .transpose()?;
    let allowance = input
        .yearly_allowance_days
        .map(|d| check_days("input.yearlyAllowanceDays", d))
        .transpose()?;
    let cap = input
        .carry_over_cap_days
        .map(|d| check_days("input.carryOverCapDays", d))
        .transpose()?;
    let attachment = match input.attachment_required_after_days {
        Some(Some(d)) => Some(Some(check_days("input.attachmentRequiredAfterDays", d)?)),
        other => other,
    };
    diesel::update(leave_types::table.find(id))
        .set((
            name.as_ref().map(|n| leave_types::name.eq(n)),
            allowance.map(|a| leave_types::yearly_allowance_days.eq(a)),
            input.accrual.map(|a| leave_types::accrual.eq(a.as_str())),
            cap.map(|c| leave_types::carry_over_cap_days.eq(c)),
            input
                .half_days_allowed
                .map(|h| leave_types::half_days_allowed.eq(h)),
            attachment.map(|a| leave_types::attachment_required_after_days.eq(a)),
            input.allow_negative.map(|a| leave_types::allow_negative.eq(a)),
            input.archived.map(|a| leave_types::archived.eq(a)),
            leave_types::updated_at.eq(diesel::dsl::now),
        ))
        .returning(LeaveType::as_returning())
        .get_result(conn)
        .await
        .optional()
        .map_err(|e| name_conflict(e, name.as_deref().unwrap_or_default()))?
        .ok_or(AppError::NotFound { what: "leave type" })
}

pub async fn types(conn: &mut AsyncPgConnection, include_archived: bool) -> AppResult<Vec<LeaveType>> {
    let mut query = leave_types::table
        .select(LeaveType::as_select())
        .order(lower(leave_types::name))
        .into_boxed();
    if !include_archived {
        query = query.filter(leave_types::archived.eq(false));
    }
    Ok(query.load(conn).await?)
}

pub async fn create_holiday(conn: &mut AsyncPgConnection, day: NaiveDate, name: &str) -> AppResult<Holiday> {
    let name = text::name("input.name", name, 100)?;
    diesel::insert_into(holidays::table)
        .values((holidays::day.eq(day), holidays::name.eq(&name)))
        .returning(Holiday::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| unique_conflict(e, None, Some("day"), || format!("{day} is already a holiday")))
}

pub async fn delete_holiday(conn: &mut AsyncPgConnection, id: i64) -> AppResult<()> {
    let removed = diesel::delete(holidays::table.find(id)).execute(conn).await?;
    if removed == 0 {
        return Err(AppError::NotFound { what: "holiday" });
    }
    Ok(())
}

pub async fn holidays_of(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Vec<Holiday>> {
    Ok(holidays::table
        .filter(holidays::day.between(from, to))
        .order(holidays::day)
        .select(Holiday::as_select())
        .load(conn)
        .await?)
}

pub struct NewRequest {
    pub user_id: i64,
    pub leave_type_id: i64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub half_day_start: bool,
    pub half_day_end: bool,
    pub reason: String,
    /// Files uploaded with the request (their rows are written by the caller).
    pub attachments: usize,
}

/// Requests leave: working days computed, refused when there are none, when it overlaps
/// the user's own pending or approved leave, when the balance of any leave year it touches
/// is too small (unless the type allows it), or when it asks half days of a type without
/// them. The user's requests are taken one at a time, so two at once cannot both spend
/// the same days.
pub async fn request(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    tenant_id: i64,
    input: NewRequest,
) -> AppResult<LeaveRequest> {
    if input.last_day < input.first_day {
        return Err(AppError::bad_input(
            "input.lastDay",
            "the last day comes before the first",
        ));
    }
    if (input.last_day - input.first_day).num_days() > 366 {
        return Err(AppError::bad_input(
            "input.lastDay",
            "a request covers at most a year",
        ));
    }
    let reason = input.reason.trim().to_owned();
    if reason.chars().count() > 2000 {
        return Err(AppError::bad_input(
            "input.reason",
            "a reason has at most 2000 characters",
        ));
    }
    // One request of a user at a time.
    let locked: Option<i64> = users::table
        .find(input.user_id)
        .filter(users::active.eq(true))
        .select(users::id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if locked.is_none() {
        return Err(AppError::bad_input("input.userId", "no such active user"));
    }
    let leave_type: LeaveType = leave_types::table
        .find(input.leave_type_id)
        .select(LeaveType::as_select())
        .first(conn)
        .await
        .optional()?
        .filter(|t| !t.archived)
        .ok_or_else(|| AppError::bad_input("input.leaveTypeId", "no such leave type"))?;
    if (input.half_day_start || input.half_day_end) && !leave_type.half_days_allowed {
        return Err(AppError::bad_input(
            if input.half_day_start {
                "input.halfDayStart"
            } else {
                "input.halfDayEnd"
            },
            format!("{} is taken in whole days", leave_type.name),
        ));
    }
    let span = Span {
        first: input.first_day,
        last: input.last_day,
        half_start: input.half_day_start,
        half_end: input.half_day_end,
    };
    let calendar = calendar(conn, settings, span.first, span.last).await?;
    let days = calendar.working_days(&span, span.first, span.last);
    if days <= Decimal::ZERO {
        return Err(AppError::bad_input(
            "input.firstDay",
            "these days hold no working day (weekends and holidays do not count)",
        ));
    }
    if let Some(after) = leave_type.attachment_required_after_days
        && days > after
        && input.attachments == 0
    {
        return Err(AppError::bad_input(
            "input.attachments",
            format!(
                "{} of more than {} working days needs an attachment (e.g. a doctor's note)",
                leave_type.name,
                after.normalize()
            ),
        ));
    }
    let overlapping: Option<(NaiveDate, NaiveDate)> = leave_requests::table
        .filter(leave_requests::user_id.eq(input.user_id))
        .filter(leave_requests::status.eq_any(["PENDING", "APPROVED"]))
        .filter(leave_requests::first_day.le(span.last))
        .filter(leave_requests::last_day.ge(span.first))
        .select((leave_requests::first_day, leave_requests::last_day))
        .first(conn)
        .await
        .optional()?;
    if let Some((first, last)) = overlapping {
        return Err(AppError::conflict(
            Some("input.firstDay"),
            format!("overlaps this user's leave from {first} to {last}"),
        ));
    }
    if !leave_type.allow_negative {
        let start_month = settings.leave_year_start_month;
        let mut y = leave_year_of(span.first, start_month);
        while y <= leave_year_of(span.last, start_month) {
            let (first, last) = leave_year(y, start_month);
            let needed = calendar.working_days(&span, first, last);
            if needed > Decimal::ZERO {
                let as_of = span.last.min(last);
                let balance = balances(conn, settings, input.user_id, y, as_of, Some(leave_type.id))
                    .await?
                    .pop();
                let available = balance.map(|b| b.remaining()).unwrap_or_default();
                if needed > available {
                    return Err(AppError::conflict(
                        Some("input.lastDay"),
                        format!(
                            "{} working days of {} asked in the leave year from {first}, {} available",
                            needed.normalize(),
                            leave_type.name,
                            available.normalize()
                        ),
                    ));
                }
            }
            y += 1;
        }
    }
    let created = diesel::insert_into(leave_requests::table)
        .values((
            leave_requests::user_id.eq(input.user_id),
            leave_requests::leave_type_id.eq(leave_type.id),
            leave_requests::first_day.eq(span.first),
            leave_requests::last_day.eq(span.last),
            leave_requests::half_day_start.eq(span.half_start),
            leave_requests::half_day_end.eq(span.half_end),
            leave_requests::working_days.eq(days),
            leave_requests::reason.eq(&reason),
        ))
        .returning(LeaveRequest::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| match &e {
            DieselError::DatabaseError(_, info)
                if info.constraint_name() == Some("leave_requests_no_overlap") =>
            {
                AppError::conflict(Some("input.firstDay"), "overlaps this user's other leave")
            }
            _ => e.into(),
        })?;
    notify_approvers(conn, tenant_id, &created, |request_id, to| {
        LeaveEmail::LeaveRequested {
            request_id,
            to_user_id: to,
        }
    })
    .await?;
    Ok(created)
}

/// Emails every active manager and admin but the requester.
async fn notify_approvers(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    request: &LeaveRequest,
    template: impl Fn(i64, i64) -> LeaveEmail,
) -> AppResult<()> {
    let approvers: Vec<i64> = users::table
        .filter(users::active.eq(true))
        .filter(users::role.eq_any(["ADMIN", "MANAGER"]))
        .filter(users::id.ne(request.user_id))
        .select(users::id)
        .load(conn)
        .await?;
    for to in approvers {
        jobs::enqueue(conn, template(request.id, to).job(tenant_id)).await?;
    }
    Ok(())
}

async fn load_locked(conn: &mut AsyncPgConnection, id: i64) -> AppResult<LeaveRequest> {
    leave_requests::table
        .find(id)
        .select(LeaveRequest::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound {
            what: "leave request",
        })
}

/// Approves or rejects a pending request: managers and admins, never their own.
pub async fn decide(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    actor: &Actor,
    id: i64,
    approve: bool,
    note: Option<&str>,
) -> AppResult<LeaveRequest> {
    actor.require(
        &[Role::Admin, Role::Manager],
        "only managers and admins decide leave",
    )?;
    let request = load_locked(conn, id).await?;
    if request.user_id == actor.user_id {
        return Err(AppError::Forbidden("nobody decides their own leave"));
    }
    if request.status() != LeaveStatus::Pending {
        return Err(AppError::conflict(
            Some("id"),
            format!("this request is {}, not pending", request.status.to_lowercase()),
        ));
    }
    let status = if approve {
        LeaveStatus::Approved
    } else {
        LeaveStatus::Rejected
    };
    let decided = diesel::update(leave_requests::table.find(id))
        .set((
            leave_requests::status.eq(status.as_str()),
            leave_requests::decided_by.eq(actor.user_id),
            leave_requests::decided_at.eq(diesel::dsl::now),
            leave_requests::decision_note.eq(note),
            leave_requests::updated_at.eq(diesel::dsl::now),
        ))
        .returning(LeaveRequest::as_returning())
        .get_result(conn)
        .await?;
    let email = LeaveEmail::LeaveDecided { request_id: id };
    jobs::enqueue(conn, email.job(tenant_id)).await?;
    Ok(decided)
}

/// Cancels the requester's own pending or approved request; an approved one returns its
/// days to the balance.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    actor: &Actor,
    id: i64,
) -> AppResult<LeaveRequest> {
    let request = load_locked(conn, id).await?;
    if request.user_id != actor.user_id {
        return Err(AppError::Forbidden("only the requester cancels a request"));
    }
    if !matches!(request.status(), LeaveStatus::Pending | LeaveStatus::Approved) {
        return Err(AppError::conflict(
            Some("id"),
            format!("this request is already {}", request.status.to_lowercase()),
        ));
    }
    let cancelled = diesel::update(leave_requests::table.find(id))
        .set((
            leave_requests::status.eq(LeaveStatus::Cancelled.as_str()),
            leave_requests::updated_at.eq(diesel::dsl::now),
        ))
        .returning(LeaveRequest::as_returning())
        .get_result(conn)
        .await?;
    notify_approvers(conn, tenant_id, &cancelled, |request_id, to| {
        LeaveEmail::LeaveCancelled {
            request_id,
            to_user_id: to,
        }
    })
    .await?;
    Ok(cancelled)
}

#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    pub user_id: Option<i64>,
    pub statuses: Option<Vec<LeaveStatus>>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

pub async fn page(
    conn: &mut AsyncPgConnection,
    filter: &RequestFilter,
    keyset: Keyset,
) -> AppResult<Vec<LeaveRequest>> {
    let mut query = keyset_page!(leave_requests, LeaveRequest, keyset);
    if let Some(user_id) = filter.user_id {
        query = query.filter(leave_requests::user_id.eq(user_id));
    }
    if let Some(statuses) = &filter.statuses {
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(leave_requests::status.eq_any(statuses));
    }
    if let Some(from) = filter.from {
        query = query.filter(leave_requests::last_day.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(leave_requests::first_day.le(to));
    }
    Ok(query.load(conn).await?)
}

/// A stored file of a leave request, if `actor` may have it: the requester, managers and
/// admins. The one rule for both the API and the download route.
pub async fn visible_file(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: i64,
) -> AppResult<Option<crate::files::StoredFile>> {
    let Some(file) = crate::files::find(conn, id).await? else {
        return Ok(None);
    };
    let owner = match file.leave_request_id {
        Some(request) => find(conn, request).await?.map(|r| r.user_id),
        None => None,
    };
    Ok(owner.filter(|&o| actor.may_see(o)).map(|_| file))
}

/// Locks a request to change its files: the requester, managers and admins, while it is
/// pending or approved.
pub async fn lock_for_files(conn: &mut AsyncPgConnection, actor: &Actor, id: i64) -> AppResult<LeaveRequest> {
    let request = load_locked(conn, id).await?;
    if !actor.may_see(request.user_id) {
        return Err(AppError::NotFound {
            what: "leave request",
        });
    }
    if !matches!(request.status(), LeaveStatus::Pending | LeaveStatus::Approved) {
        return Err(AppError::conflict(
            Some("leaveRequestId"),
            format!("the request is {}", request.status().as_str().to_lowercase()),
        ));
    }
    Ok(request)
}

/// Removes a file from a request, unless the request's type needs one and it is the last.
/// Returns the storage key, for the caller to delete once the removal is committed.
pub async fn remove_file(conn: &mut AsyncPgConnection, actor: &Actor, file_id: i64) -> AppResult<String> {
    let not_found = || AppError::NotFound { what: "file" };
    let file = crate::files::find(conn, file_id).await?.ok_or_else(not_found)?;
    let request_id = file.leave_request_id.ok_or_else(not_found)?;
    let request = lock_for_files(conn, actor, request_id)
        .await
        .map_err(|e| match e {
            AppError::NotFound { .. } => not_found(),
            AppError::Conflict { message, .. } => AppError::conflict(Some("id"), message),
            e => e,
        })?;
    let others = crate::files::of_leave_request(conn, request_id)
        .await?
        .into_iter()
        .filter(|f| f.id != file_id)
        .count();
    let leave_type: LeaveType = leave_types::table
        .find(request.leave_type_id)
        .select(LeaveType::as_select())
        .first(conn)
        .await?;
    if others == 0
        && leave_type
            .attachment_required_after_days
            .is_some_and(|after| request.working_days > after)
    {
        return Err(AppError::conflict(
            Some("id"),
            format!(
                "{} of {} working days needs an attachment: add another before removing this one",
                leave_type.name,
                request.working_days.normalize()
            ),
        ));
    }
    crate::files::delete_row(conn, file_id).await?;
    Ok(file.storage_key)
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<LeaveRequest>> {
    Ok(leave_requests::table
        .find(id)
        .select(LeaveRequest::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Approved leave days per user between `from` and `to`, for utilisation.
pub async fn approved_days(
    conn: &mut AsyncPgConnection,
    calendar: &Calendar,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<std::collections::HashMap<i64, Decimal>> {
    let requests: Vec<LeaveRequest> = leave_requests::table
        .filter(leave_requests::status.eq("APPROVED"))
        .filter(leave_requests::last_day.ge(from))
        .filter(leave_requests::first_day.le(to))
        .select(LeaveRequest::as_select())
        .load(conn)
        .await?;
    let mut days = std::collections::HashMap::new();
    for r in requests {
        *days.entry(r.user_id).or_insert(Decimal::ZERO) += calendar.working_days(&r.span(), from, to);
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn leave_years_start_in_their_month() {
        assert_eq!(leave_year(2026, 1), (d("2026-01-01"), d("2026-12-31")));
        assert_eq!(leave_year(2026, 4), (d("2026-04-01"), d("2027-03-31")));
        assert_eq!(leave_year_of(d("2027-03-31"), 4), 2026);
        assert_eq!(leave_year_of(d("2027-04-01"), 4), 2027);
    }
}
