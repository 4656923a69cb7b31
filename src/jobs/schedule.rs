//! Recurring jobs, declared in code and fanned out over every active tenant: each run of a
//! schedule (a slot) becomes one job per tenant, so one tenant's failure stops no other.
//! Every worker checks the schedules; the one that records a slot in
//! `public.schedule_runs` fans it out, and the others find it taken, so a run is never
//! duplicated however many workers and servers are up. A slot missed while nothing ran
//! (the latest one only) is fanned out when a worker next starts.

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::schema::schedule_runs;
use crate::error::{AppError, AppResult};
use crate::tenancy::changes::{self, Notice};

/// When a schedule runs, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Each day at this time.
    Day(NaiveTime),
    /// Each hour at this minute.
    Hour(u32),
    /// Every n minutes from midnight (n divides a day).
    Minutes(u32),
}

impl Every {
    /// The latest slot at or before `now`.
    pub fn latest_slot(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let midnight = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|m| m.and_utc())
            .unwrap_or(now);
        match self {
            Self::Day(at) => {
                let today = now.date_naive().and_time(at).and_utc();
                if today <= now {
                    today
                } else {
                    today - Duration::days(1)
                }
            }
            Self::Hour(minute) => {
                let hour = midnight + Duration::hours(i64::from(now.hour()));
                let slot = hour + Duration::minutes(i64::from(minute % 60));
                if slot <= now {
                    slot
                } else {
                    slot - Duration::hours(1)
                }
            }
            Self::Minutes(n) => {
                let n = i64::from(n.max(1));
                let since = (now - midnight).num_minutes();
                midnight + Duration::minutes(since - since % n)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub every: Every,
    pub kind: String,
    pub max_attempts: i64,
}

/// Fans out the latest slot of `schedule` unless some worker already did; returns the
/// number of jobs this call created (`None`: the slot was taken).
pub async fn fan_out(
    conn: &mut AsyncPgConnection,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> AppResult<Option<i64>> {
    let slot = schedule.every.latest_slot(now);
    conn.transaction::<_, AppError, _>(async |conn| {
        let won = diesel::insert_into(schedule_runs::table)
            .values((
                schedule_runs::schedule.eq(&schedule.name),
                schedule_runs::slot.eq(slot),
                schedule_runs::tenants.eq(0),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if won == 0 {
            return Ok(None);
        }
        let created = diesel::sql_query(
            "INSERT INTO public.jobs (kind, tenant_id, payload, max_attempts) \
             SELECT $1, t.id, jsonb_build_object('schedule', $2::text, 'slot', $3), $4 \
             FROM public.tenants t WHERE t.status = 'ACTIVE'",
        )
        .bind::<Text, _>(&schedule.kind)
        .bind::<Text, _>(&schedule.name)
        .bind::<Timestamptz, _>(slot)
        .bind::<BigInt, _>(schedule.max_attempts)
        .execute(conn)
        .await? as i64;
        diesel::update(
            schedule_runs::table
                .filter(schedule_runs::schedule.eq(&schedule.name))
                .filter(schedule_runs::slot.eq(slot)),
        )
        .set(schedule_runs::tenants.eq(created))
        .execute(conn)
        .await?;
        changes::publish(conn, Notice::Jobs).await?;
        Ok(Some(created))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn slots_are_the_latest_due() {
        let two = Every::Day(NaiveTime::from_hms_opt(2, 0, 0).unwrap());
        assert_eq!(
            two.latest_slot(at("2026-11-27T09:30:00Z")),
            at("2026-11-27T02:00:00Z")
        );
        assert_eq!(
            two.latest_slot(at("2026-11-27T01:59:59Z")),
            at("2026-11-26T02:00:00Z")
        );
        assert_eq!(
            two.latest_slot(at("2026-11-27T02:00:00Z")),
            at("2026-11-27T02:00:00Z")
        );
        let quarter = Every::Hour(15);
        assert_eq!(
            quarter.latest_slot(at("2026-11-27T09:10:00Z")),
            at("2026-11-27T08:15:00Z")
        );
        assert_eq!(
            quarter.latest_slot(at("2026-11-27T09:20:00Z")),
            at("2026-11-27T09:15:00Z")
        );
        let five = Every::Minutes(5);
        assert_eq!(
            five.latest_slot(at("2026-11-27T09:12:31Z")),
            at("2026-11-27T09:10:00Z")
        );
    }
}
