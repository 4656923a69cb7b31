//! Leave types: what each grants a year, how it accrues, what carries over, and whether
//! half days and negative balances are allowed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::db::functions::lower;
use crate::db::schema::leave_types;
use crate::db::unique_conflict;
use crate::error::{AppError, AppResult};
use crate::text;

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
