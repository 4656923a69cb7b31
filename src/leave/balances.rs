//! Balances: what each type granted (accrued, plus what carried over) less what was taken,
//! worked out from the requests each time, never stored.

use chrono::{DateTime, Months, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::calendar::{Calendar, calendar, leave_year, leave_year_of};
use super::requests::{LeaveRequest, LeaveStatus};
use super::types::{Accrual, LeaveType};
use crate::db::schema::{leave_requests, leave_types, users};
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;

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
