//! Timers: one running timer per user (a partial unique index), started now to the minute
//! and stopped with its length rounded up to the capture interval.

use chrono::{DateTime, Duration, Timelike, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::entries::{
    MAX_MINUTES, Row, TimeEntry, constraint_error, ensure_no_overlap, ensure_week_open, insert, local_date,
    target,
};
use crate::db::schema::time_entries;
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;
use crate::text;

pub async fn running_timer(conn: &mut AsyncPgConnection, user_id: i64) -> AppResult<Option<TimeEntry>> {
    Ok(time_entries::table
        .filter(time_entries::user_id.eq(user_id))
        .filter(time_entries::started_at.is_not_null())
        .filter(time_entries::ended_at.is_null())
        .select(TimeEntry::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub struct NewTimer {
    pub user_id: i64,
    pub project_id: i64,
    pub task_id: Option<i64>,
    pub notes: Option<String>,
    pub billable: Option<bool>,
}

/// Starts the user's timer now (to the minute), or where their last entry ends when a
/// rounded-up stop left it ending later than now.
pub async fn start_timer(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    input: NewTimer,
    now: DateTime<Utc>,
) -> AppResult<TimeEntry> {
    if running_timer(conn, input.user_id).await?.is_some() {
        return Err(AppError::conflict(
            None,
            "a timer is already running; stop it first",
        ));
    }
    let now = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    let notes = text::notes("input.notes", input.notes.as_deref().unwrap_or_default())?;
    let target = target(conn, input.user_id, input.project_id, input.task_id).await?;
    let latest_end: Option<DateTime<Utc>> = time_entries::table
        .filter(time_entries::user_id.eq(input.user_id))
        .filter(time_entries::started_at.le(now))
        .filter(time_entries::ended_at.gt(now))
        .select(diesel::dsl::max(time_entries::ended_at))
        .first(conn)
        .await?;
    let start = latest_end.unwrap_or(now).max(now);
    let date = local_date(start, settings.time_zone);
    ensure_week_open(conn, settings, input.user_id, date).await?;
    ensure_no_overlap(conn, input.user_id, start, None, None).await?;
    let billable = input.billable.unwrap_or_else(|| target.default_billable());
    let row = Row {
        user_id: input.user_id,
        date,
        started_at: Some(start),
        ended_at: None,
        minutes: None,
        notes,
        billable,
        external_ref: None,
    };
    insert(conn, &target, row).await
}

/// Minutes a timer that ran `elapsed` counts: rounded up to the interval, at least one.
pub fn timer_minutes(elapsed: Duration, interval: i32) -> i64 {
    let seconds = elapsed.num_seconds().max(0);
    let step = i64::from(interval) * 60;
    let steps = ((seconds + step - 1) / step).max(1);
    steps * i64::from(interval)
}

/// Stops the user's running timer, rounding its length up to the capture interval.
pub async fn stop_timer(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    user_id: i64,
    now: DateTime<Utc>,
) -> AppResult<TimeEntry> {
    let entry: TimeEntry = time_entries::table
        .filter(time_entries::user_id.eq(user_id))
        .filter(time_entries::started_at.is_not_null())
        .filter(time_entries::ended_at.is_null())
        .select(TimeEntry::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound {
            what: "running timer",
        })?;
    let start = entry.started_at.unwrap_or(now);
    let minutes = timer_minutes(now - start, settings.timecapture_interval_minutes);
    if minutes > i64::from(MAX_MINUTES) {
        return Err(AppError::conflict(
            None,
            "the timer has run for more than 24 hours: correct its start with updateTimeEntry, or delete it",
        ));
    }
    let end = start + Duration::minutes(minutes);
    diesel::update(time_entries::table.find(entry.id))
        .set((
            time_entries::ended_at.eq(end),
            time_entries::minutes.eq(minutes as i32),
            time_entries::updated_at.eq(diesel::dsl::now),
        ))
        .returning(TimeEntry::as_returning())
        .get_result(conn)
        .await
        .map_err(constraint_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_round_up_to_the_interval() {
        assert_eq!(timer_minutes(Duration::seconds(0), 15), 15);
        assert_eq!(timer_minutes(Duration::seconds(60), 15), 15);
        assert_eq!(timer_minutes(Duration::minutes(15), 15), 15);
        assert_eq!(timer_minutes(Duration::seconds(15 * 60 + 1), 15), 30);
        assert_eq!(timer_minutes(Duration::minutes(61), 1), 61);
    }
}
