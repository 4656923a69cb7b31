//! Weekly timesheets: a user submits a week of entries, a manager approves (locking them)
//! or rejects it with a reason (returning them to drafts).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::emails::TimeEmail;
use super::entries::{EntryStatus, week_of, week_start_day};
use crate::auth::{Actor, Role};
use crate::db::schema::{time_entries, timesheets};
use crate::db::{Keyset, keyset_page};
use crate::error::{AppError, AppResult};
use crate::jobs::{self, registry::Letter};
use crate::settings::TenantSettings;

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimesheetStatus {
    Submitted,
    Approved,
    Rejected,
}

crate::db::stored_as_text!(TimesheetStatus, default Submitted, {
    Submitted => "SUBMITTED",
    Approved => "APPROVED",
    Rejected => "REJECTED",
});

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = timesheets)]
pub struct Timesheet {
    pub id: i64,
    pub user_id: i64,
    pub week_start: NaiveDate,
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
}

impl Timesheet {
    pub fn status(&self) -> TimesheetStatus {
        TimesheetStatus::from_db(&self.status)
    }

    pub fn week_end(&self) -> NaiveDate {
        self.week_start + Duration::days(6)
    }
}

/// Moves the user's entries of a week from one status to another.
async fn move_entries(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    week_start: NaiveDate,
    from: EntryStatus,
    to: EntryStatus,
) -> AppResult<usize> {
    Ok(diesel::update(
        time_entries::table
            .filter(time_entries::user_id.eq(user_id))
            .filter(time_entries::work_date.ge(week_start))
            .filter(time_entries::work_date.lt(week_start + Duration::days(7)))
            .filter(time_entries::status.eq(from.as_str())),
    )
    .set((
        time_entries::status.eq(to.as_str()),
        time_entries::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?)
}

/// Submits `user_id`'s week starting `week_start` (the tenant's week start day).
pub async fn submit(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    user_id: i64,
    week_start: NaiveDate,
) -> AppResult<Timesheet> {
    let start_day = week_start_day(&settings.work_week);
    if week_of(week_start, start_day) != week_start {
        return Err(AppError::bad_input(
            "weekStart",
            format!("weeks start on {start_day} in this tenant"),
        ));
    }
    let running: bool = diesel::select(diesel::dsl::exists(
        time_entries::table
            .filter(time_entries::user_id.eq(user_id))
            .filter(time_entries::work_date.ge(week_start))
            .filter(time_entries::work_date.lt(week_start + Duration::days(7)))
            .filter(time_entries::started_at.is_not_null())
            .filter(time_entries::ended_at.is_null()),
    ))
    .get_result(conn)
    .await?;
    if running {
        return Err(AppError::conflict(
            Some("weekStart"),
            "a timer is running in this week; stop it first",
        ));
    }
    let existing: Option<Timesheet> = timesheets::table
        .filter(timesheets::user_id.eq(user_id))
        .filter(timesheets::week_start.eq(week_start))
        .select(Timesheet::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let sheet = match existing {
        Some(sheet) if sheet.status() != TimesheetStatus::Rejected => {
            return Err(AppError::conflict(
                Some("weekStart"),
                format!(
                    "the week of {week_start} is already {}",
                    sheet.status.to_lowercase()
                ),
            ));
        }
        Some(sheet) => {
            diesel::update(timesheets::table.find(sheet.id))
                .set((
                    timesheets::status.eq(TimesheetStatus::Submitted.as_str()),
                    timesheets::submitted_at.eq(diesel::dsl::now),
                    timesheets::decided_by.eq(None::<i64>),
                    timesheets::decided_at.eq(None::<DateTime<Utc>>),
                    timesheets::rejection_reason.eq(None::<String>),
                ))
                .returning(Timesheet::as_returning())
                .get_result(conn)
                .await?
        }
        None => {
            diesel::insert_into(timesheets::table)
                .values((
                    timesheets::user_id.eq(user_id),
                    timesheets::week_start.eq(week_start),
                    timesheets::status.eq(TimesheetStatus::Submitted.as_str()),
                ))
                .returning(Timesheet::as_returning())
                .get_result(conn)
                .await?
        }
    };
    move_entries(
        conn,
        user_id,
        week_start,
        EntryStatus::Draft,
        EntryStatus::Submitted,
    )
    .await?;
    Ok(sheet)
}

/// A submitted timesheet, locked for a decision by `actor`: a manager or admin, and never
/// a manager deciding their own week.
async fn load_for_decision(conn: &mut AsyncPgConnection, actor: &Actor, id: i64) -> AppResult<Timesheet> {
    actor.require(
        &[Role::Admin, Role::Manager],
        "only managers and admins decide timesheets",
    )?;
    let sheet: Timesheet = timesheets::table
        .find(id)
        .select(Timesheet::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound { what: "timesheet" })?;
    if sheet.user_id == actor.user_id && actor.role != Role::Admin {
        return Err(AppError::Forbidden("a manager cannot decide their own timesheet"));
    }
    if sheet.status() != TimesheetStatus::Submitted {
        return Err(AppError::conflict(
            Some("id"),
            format!(
                "this timesheet is {}, not waiting for a decision",
                sheet.status.to_lowercase()
            ),
        ));
    }
    Ok(sheet)
}

pub async fn approve(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    actor: &Actor,
    id: i64,
) -> AppResult<Timesheet> {
    decide(conn, tenant_id, actor, id, TimesheetStatus::Approved, None).await
}

pub async fn reject(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> AppResult<Timesheet> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(AppError::bad_input(
            "reason",
            "give a reason of 1 to 2000 characters",
        ));
    }
    decide(
        conn,
        tenant_id,
        actor,
        id,
        TimesheetStatus::Rejected,
        Some(reason),
    )
    .await
}

/// Approves (entries locked) or rejects (entries back to drafts) a submitted timesheet,
/// and emails its user once that commits.
async fn decide(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    actor: &Actor,
    id: i64,
    decision: TimesheetStatus,
    reason: Option<&str>,
) -> AppResult<Timesheet> {
    let sheet = load_for_decision(conn, actor, id).await?;
    let entries_become = if decision == TimesheetStatus::Approved {
        EntryStatus::Approved
    } else {
        EntryStatus::Draft
    };
    move_entries(
        conn,
        sheet.user_id,
        sheet.week_start,
        EntryStatus::Submitted,
        entries_become,
    )
    .await?;
    let decided = diesel::update(timesheets::table.find(sheet.id))
        .set((
            timesheets::status.eq(decision.as_str()),
            timesheets::decided_by.eq(actor.user_id),
            timesheets::decided_at.eq(diesel::dsl::now),
            timesheets::rejection_reason.eq(reason),
        ))
        .returning(Timesheet::as_returning())
        .get_result(conn)
        .await?;
    let email = TimeEmail::TimesheetDecided {
        timesheet_id: decided.id,
    };
    jobs::enqueue(conn, email.job(tenant_id)).await?;
    Ok(decided)
}

#[derive(Debug, Default, Clone)]
pub struct TimesheetFilter {
    pub user_id: Option<i64>,
    pub status: Option<TimesheetStatus>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// Timesheets by id.
pub async fn page(
    mut conn: &AsyncPgConnection,
    filter: &TimesheetFilter,
    keyset: Keyset,
) -> QueryResult<Vec<Timesheet>> {
    let mut query = keyset_page!(timesheets, Timesheet, keyset);
    if let Some(user_id) = filter.user_id {
        query = query.filter(timesheets::user_id.eq(user_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(timesheets::status.eq(status.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(timesheets::week_start.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(timesheets::week_start.le(to));
    }
    query.load(&mut conn).await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<Timesheet>> {
    Ok(timesheets::table
        .find(id)
        .select(Timesheet::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Minutes logged in each timesheet's week by its user, by timesheet id, for one request.
pub struct TimesheetMinutes {
    db: std::sync::Arc<crate::tenancy::TenantDb>,
}

impl From<std::sync::Arc<crate::tenancy::TenantDb>> for TimesheetMinutes {
    fn from(db: std::sync::Arc<crate::tenancy::TenantDb>) -> Self {
        Self { db }
    }
}

#[derive(QueryableByName)]
struct SheetMinutes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    minutes: i64,
}

impl async_graphql::dataloader::Loader<i64> for TimesheetMinutes {
    type Value = i64;
    type Error = std::sync::Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<std::collections::HashMap<i64, i64>, Self::Error> {
        let mut conn = self.db.conn().await?;
        let rows: Vec<SheetMinutes> = diesel::sql_query(
            "SELECT t.id, coalesce(sum(e.minutes), 0)::bigint AS minutes \
             FROM timesheets t \
             LEFT JOIN time_entries e ON e.user_id = t.user_id \
              AND e.work_date >= t.week_start AND e.work_date < t.week_start + 7 \
             WHERE t.id = ANY($1) GROUP BY t.id",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(keys)
        .load(&mut *conn)
        .await
        .map_err(AppError::from)?;
        Ok(rows.into_iter().map(|r| (r.id, r.minutes)).collect())
    }
}
