//! Time entries: rows, rules and statements.
//!
//! An entry is one of three shapes: a duration on a date, a timed entry (start and end) or
//! a running timer (start only). Durations are multiples of the tenant's capture interval;
//! a user's timed entries never overlap (an exclusion constraint holds that under
//! concurrency, a check before it names the entry in the way); a user has at most one
//! running timer (a partial unique index). `work_date` is the start's date in the tenant's
//! zone. The rate is fixed when the entry is made: the member's override on the project,
//! else the project's rate.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::catalog::{Project, Task};
use crate::auth::Actor;
use crate::db::schema::{project_members, projects, tasks, time_entries, timesheets, users};
use crate::db::{constraint_of, unique_conflict};
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;
use crate::{money, text};

/// The longest single entry.
pub const MAX_MINUTES: i32 = 24 * 60;

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryStatus {
    /// Editable by its user.
    Draft,
    /// In a submitted timesheet, waiting for a manager.
    Submitted,
    /// Approved: locked.
    Approved,
    /// On an invoice: locked.
    Invoiced,
}

crate::db::stored_as_text!(EntryStatus, default Draft, {
    Draft => "DRAFT",
    Submitted => "SUBMITTED",
    Approved => "APPROVED",
    Invoiced => "INVOICED",
});

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = time_entries)]
pub struct TimeEntry {
    pub id: i64,
    pub user_id: i64,
    pub project_id: i64,
    pub task_id: Option<i64>,
    pub work_date: NaiveDate,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub minutes: Option<i32>,
    pub notes: String,
    pub billable: bool,
    pub hourly_rate: Option<Decimal>,
    pub status: String,
    pub external_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// The columns a page of entries reads, by the fields that read them (see
// `crate::db::columns`); the keys and the date are always read, for the cursor.
crate::db::columns::read_in_part!(TimeEntry, "e", "time_entries", blank: TimeEntry {
    id: 0,
    user_id: 0,
    project_id: 0,
    task_id: None,
    work_date: NaiveDate::default(),
    started_at: None,
    ended_at: None,
    minutes: None,
    notes: String::new(),
    billable: false,
    hourly_rate: None,
    status: String::new(),
    external_ref: None,
    created_at: DateTime::UNIX_EPOCH,
    updated_at: DateTime::UNIX_EPOCH,
}, {
    id: BigInt => key,
    user_id: BigInt => key,
    project_id: BigInt => key,
    task_id: Nullable<BigInt> => key,
    work_date: Date => key,
    started_at: Nullable<Timestamptz> => ["startedAt", "running"],
    ended_at: Nullable<Timestamptz> => ["endedAt", "running"],
    minutes: Nullable<Integer> => ["minutes", "hours", "amount"],
    notes: Text => ["notes"],
    billable: Bool => ["billable", "amount"],
    hourly_rate: Nullable<Numeric> => ["rate", "amount"],
    status: Text => ["status"],
    external_ref: Nullable<Text> => ["externalRef"],
    created_at: Timestamptz => ["createdAt"],
    updated_at: Timestamptz => ["updatedAt"],
});

impl TimeEntry {
    pub fn status(&self) -> EntryStatus {
        EntryStatus::from_db(&self.status)
    }

    pub fn running(&self) -> bool {
        self.started_at.is_some() && self.ended_at.is_none()
    }

    /// What the entry bills: hours x rate, rounded half-up to the currency's minor unit;
    /// zero when not billable; `None` while running or without a rate.
    pub fn amount(&self, minor_units: u32) -> Option<Decimal> {
        if !self.billable {
            return Some(Decimal::ZERO);
        }
        Some(amount(self.minutes?, self.hourly_rate?, minor_units))
    }
}

/// `minutes` at `rate` per hour, rounded half away from zero to `minor_units` decimals (as
/// PostgreSQL's `round(numeric, n)` does, so reports agree with entries).
pub fn amount(minutes: i32, rate: Decimal, minor_units: u32) -> Decimal {
    money::time_amount(i64::from(minutes), rate, minor_units).normalize()
}

/// The day weeks start on: the first working day after a day off (Monday when every day is
/// worked). Monday for Monday to Friday, Sunday for Sunday to Thursday.
pub fn week_start_day(work_week: &[Weekday]) -> Weekday {
    let mut day = Weekday::Mon;
    for _ in 0..7 {
        if work_week.contains(&day) && !work_week.contains(&day.pred()) {
            return day;
        }
        day = day.succ();
    }
    Weekday::Mon
}

/// The first day of the week holding `date`.
pub fn week_of(date: NaiveDate, start: Weekday) -> NaiveDate {
    let back = (date.weekday().num_days_from_monday() + 7 - start.num_days_from_monday()) % 7;
    date - Duration::days(i64::from(back))
}

pub fn local_date(at: DateTime<Utc>, zone: Tz) -> NaiveDate {
    at.with_timezone(&zone).date_naive()
}

fn whole_minute(field: &str, at: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    if at.second() != 0 || at.nanosecond() != 0 {
        return Err(AppError::bad_input(field, "times are whole minutes"));
    }
    Ok(at)
}

fn check_minutes(field: &str, minutes: i32, interval: i32) -> AppResult<()> {
    if minutes <= 0 || minutes > MAX_MINUTES {
        return Err(AppError::bad_input(
            field,
            format!("an entry lasts more than 0 and at most {MAX_MINUTES} minutes"),
        ));
    }
    if minutes % interval != 0 {
        return Err(AppError::bad_input(
            field,
            format!(
                "durations are multiples of {interval} minutes (TIMECAPTURE_INTERVAL_MINUTES); {minutes} is not"
            ),
        ));
    }
    Ok(())
}

/// Where an entry is booked and at which rate, checked.
pub(super) struct Target {
    project: Project,
    task: Option<Task>,
    rate: Option<Decimal>,
}

impl Target {
    pub(super) fn default_billable(&self) -> bool {
        self.task
            .as_ref()
            .and_then(|t| t.billable)
            .unwrap_or(self.project.billable)
    }
}

pub(super) async fn target(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    project_id: i64,
    task_id: Option<i64>,
) -> AppResult<Target> {
    let project: Project = projects::table
        .find(project_id)
        .select(Project::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| AppError::bad_input("input.projectId", "no such project"))?;
    if project.archived {
        return Err(AppError::bad_input(
            "input.projectId",
            format!("project {} is archived and takes no new time", project.name),
        ));
    }
    let task = match task_id {
        None => None,
        Some(task_id) => {
            let task: Task = tasks::table
                .find(task_id)
                .select(Task::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| AppError::bad_input("input.taskId", "no such task"))?;
            if task.project_id != project.id {
                return Err(AppError::bad_input(
                    "input.taskId",
                    format!("task {} belongs to another project", task.name),
                ));
            }
            if task.archived {
                return Err(AppError::bad_input(
                    "input.taskId",
                    format!("task {} is archived", task.name),
                ));
            }
            Some(task)
        }
    };
    let (active, override_rate): (bool, Option<Decimal>) = users::table
        .find(user_id)
        .left_join(
            project_members::table.on(project_members::user_id
                .eq(users::id)
                .and(project_members::project_id.eq(project.id))),
        )
        .select((users::active, project_members::hourly_rate.nullable()))
        .first::<(bool, Option<Decimal>)>(conn)
        .await
        .optional()?
        .ok_or_else(|| AppError::bad_input("input.userId", "no such user"))?;
    if !active {
        return Err(AppError::bad_input("input.userId", "this user is deactivated"));
    }
    let rate = override_rate.or(project.hourly_rate);
    Ok(Target { project, task, rate })
}

/// Refuses changes to a week its user has submitted or that was approved.
pub(super) async fn ensure_week_open(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    user_id: i64,
    date: NaiveDate,
) -> AppResult<()> {
    let week = week_of(date, week_start_day(&settings.work_week));
    let status: Option<String> = timesheets::table
        .filter(timesheets::user_id.eq(user_id))
        .filter(timesheets::week_start.eq(week))
        .filter(timesheets::status.ne("REJECTED"))
        .select(timesheets::status)
        .first(conn)
        .await
        .optional()?;
    match status.as_deref() {
        Some("APPROVED") => Err(AppError::conflict(
            Some("input.date"),
            format!("the timesheet of the week of {week} is approved and locked"),
        )),
        Some(_) => Err(AppError::conflict(
            Some("input.date"),
            format!("the timesheet of the week of {week} is submitted; it can change only once rejected"),
        )),
        None => Ok(()),
    }
}

/// Refuses to change an entry that is no longer a draft, saying why.
pub fn ensure_editable(entry: &TimeEntry) -> AppResult<()> {
    let why = match entry.status() {
        EntryStatus::Draft => return Ok(()),
        EntryStatus::Submitted => "this entry is in a submitted timesheet; it can change only once rejected",
        EntryStatus::Approved => "this entry is approved and locked",
        EntryStatus::Invoiced => "this entry is invoiced and locked",
    };
    Err(AppError::conflict(None, why))
}

/// Refuses a timed span that overlaps another of the user's entries, naming it.
pub(super) async fn ensure_no_overlap(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    except: Option<i64>,
) -> AppResult<()> {
    let mut query = time_entries::table
        .filter(time_entries::user_id.eq(user_id))
        .filter(time_entries::started_at.is_not_null())
        .filter(
            time_entries::ended_at
                .is_null()
                .or(time_entries::ended_at.gt(start)),
        )
        .select((time_entries::started_at, time_entries::ended_at))
        .into_boxed();
    if let Some(end) = end {
        query = query.filter(time_entries::started_at.lt(end));
    }
    if let Some(except) = except {
        query = query.filter(time_entries::id.ne(except));
    }
    type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let clash: Option<Bounds> = query.first(conn).await.optional()?;
    match clash {
        None => Ok(()),
        Some((Some(s), Some(e))) => Err(AppError::conflict(
            Some("input.startedAt"),
            format!("overlaps this user's entry from {s} to {e}"),
        )),
        Some((s, _)) => Err(AppError::conflict(
            Some("input.startedAt"),
            format!(
                "overlaps this user's running timer, started at {}",
                s.map(|s| s.to_string()).unwrap_or_default()
            ),
        )),
    }
}

/// Turns the constraints' refusals (lost races) into the conflicts the checks would give.
pub(super) fn constraint_error(e: DieselError) -> AppError {
    match constraint_of(&e) {
        Some("time_entries_no_overlap") => {
            AppError::conflict(Some("input.startedAt"), "overlaps another entry of this user")
        }
        Some("time_entries_one_timer_key") => {
            AppError::conflict(None, "a timer is already running for this user")
        }
        _ => unique_conflict(
            e,
            Some("time_entries_external_ref_key"),
            Some("input.externalRef"),
            || "an entry with this external reference already exists".to_owned(),
        ),
    }
}

/// The span an input describes, checked against the grid.
struct Span {
    date: NaiveDate,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    minutes: i32,
}

fn span(
    settings: &TenantSettings,
    date: Option<NaiveDate>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    minutes: Option<i32>,
) -> AppResult<Span> {
    let interval = settings.timecapture_interval_minutes;
    match (started_at, ended_at) {
        (Some(start), Some(end)) => {
            let start = whole_minute("input.startedAt", start)?;
            let end = whole_minute("input.endedAt", end)?;
            if end <= start {
                return Err(AppError::bad_input(
                    "input.endedAt",
                    "the end comes after the start",
                ));
            }
            let length = i32::try_from((end - start).num_minutes()).unwrap_or(i32::MAX);
            if minutes.is_some_and(|m| m != length) {
                return Err(AppError::bad_input(
                    "input.minutes",
                    format!("the start and end span {length} minutes"),
                ));
            }
            check_minutes("input.endedAt", length, interval)?;
            let local = local_date(start, settings.time_zone);
            if date.is_some_and(|d| d != local) {
                return Err(AppError::bad_input(
                    "input.date",
                    format!("a timed entry's date is its start's date in the tenant's zone, {local}"),
                ));
            }
            Ok(Span {
                date: local,
                started_at: Some(start),
                ended_at: Some(end),
                minutes: length,
            })
        }
        (Some(_), None) => Err(AppError::bad_input(
            "input.endedAt",
            "give a start and an end, or a date and minutes (startTimer runs a timer)",
        )),
        (None, Some(_)) => Err(AppError::bad_input(
            "input.startedAt",
            "give a start and an end, or a date and minutes",
        )),
        (None, None) => {
            let minutes = minutes
                .ok_or_else(|| AppError::bad_input("input.minutes", "give minutes, or a start and an end"))?;
            check_minutes("input.minutes", minutes, interval)?;
            let date = date.ok_or_else(|| AppError::bad_input("input.date", "give the date worked"))?;
            Ok(Span {
                date,
                started_at: None,
                ended_at: None,
                minutes,
            })
        }
    }
}

pub struct NewEntry {
    pub user_id: i64,
    pub project_id: i64,
    pub task_id: Option<i64>,
    pub date: Option<NaiveDate>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub minutes: Option<i32>,
    pub notes: Option<String>,
    pub billable: Option<bool>,
    pub external_ref: Option<String>,
}

/// Creates an entry; with an external reference already used, returns that entry instead
/// (so imports can be re-run), provided it is the same user's.
pub async fn create(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    input: NewEntry,
) -> AppResult<TimeEntry> {
    let external_ref = match input.external_ref.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(r) if r.chars().count() > 200 => {
            return Err(AppError::bad_input(
                "input.externalRef",
                "an external reference has at most 200 characters",
            ));
        }
        Some(r) => Some(r.to_owned()),
    };
    if let Some(external_ref) = &external_ref {
        let existing: Option<TimeEntry> = time_entries::table
            .filter(time_entries::external_ref.eq(external_ref))
            .select(TimeEntry::as_select())
            .first(conn)
            .await
            .optional()?;
        if let Some(existing) = existing {
            if existing.user_id != input.user_id {
                return Err(AppError::conflict(
                    Some("input.externalRef"),
                    "another user's entry has this external reference",
                ));
            }
            return Ok(existing);
        }
    }
    let span = span(
        settings,
        input.date,
        input.started_at,
        input.ended_at,
        input.minutes,
    )?;
    let notes = text::notes("input.notes", input.notes.as_deref().unwrap_or_default())?;
    let target = target(conn, input.user_id, input.project_id, input.task_id).await?;
    ensure_week_open(conn, settings, input.user_id, span.date).await?;
    if let Some(start) = span.started_at {
        ensure_no_overlap(conn, input.user_id, start, span.ended_at, None).await?;
    }
    let billable = input.billable.unwrap_or_else(|| target.default_billable());
    let row = Row {
        user_id: input.user_id,
        date: span.date,
        started_at: span.started_at,
        ended_at: span.ended_at,
        minutes: Some(span.minutes),
        notes,
        billable,
        external_ref,
    };
    insert(conn, &target, row).await
}

/// What an insert writes besides its target.
pub(super) struct Row {
    pub(super) user_id: i64,
    pub(super) date: NaiveDate,
    pub(super) started_at: Option<DateTime<Utc>>,
    pub(super) ended_at: Option<DateTime<Utc>>,
    pub(super) minutes: Option<i32>,
    pub(super) notes: String,
    pub(super) billable: bool,
    pub(super) external_ref: Option<String>,
}

pub(super) async fn insert(conn: &mut AsyncPgConnection, target: &Target, row: Row) -> AppResult<TimeEntry> {
    diesel::insert_into(time_entries::table)
        .values((
            time_entries::user_id.eq(row.user_id),
            time_entries::project_id.eq(target.project.id),
            time_entries::task_id.eq(target.task.as_ref().map(|t| t.id)),
            time_entries::work_date.eq(row.date),
            time_entries::started_at.eq(row.started_at),
            time_entries::ended_at.eq(row.ended_at),
            time_entries::minutes.eq(row.minutes),
            time_entries::notes.eq(row.notes),
            time_entries::billable.eq(row.billable),
            time_entries::hourly_rate.eq(target.rate),
            time_entries::external_ref.eq(row.external_ref),
        ))
        .returning(TimeEntry::as_returning())
        .get_result(conn)
        .await
        .map_err(constraint_error)
}

/// The entry `id`, locked for change, if `actor` may change it: their own, or anyone's for
/// managers and admins; and still a draft.
pub async fn load_for_change(conn: &mut AsyncPgConnection, actor: &Actor, id: i64) -> AppResult<TimeEntry> {
    let entry: TimeEntry = time_entries::table
        .find(id)
        .select(TimeEntry::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound { what: "time entry" })?;
    // Another's entry is to a member as one that does not exist: the same answer, so ids
    // cannot be probed.
    if !actor.may_see(entry.user_id) {
        return Err(AppError::NotFound { what: "time entry" });
    }
    ensure_editable(&entry)?;
    Ok(entry)
}

#[derive(Default)]
pub struct EntryChanges {
    pub project_id: Option<i64>,
    pub task_id: Option<Option<i64>>,
    pub date: Option<NaiveDate>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub minutes: Option<i32>,
    pub notes: Option<String>,
    pub billable: Option<bool>,
}

/// Changes a draft entry. A timed entry moves with its start (keeping its length unless an
/// end or minutes are given); a duration becomes timed when given a start. A new project or
/// task takes that project's rate and default billability, unless `billable` is given.
pub async fn update(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    entry: TimeEntry,
    changes: EntryChanges,
) -> AppResult<TimeEntry> {
    let interval = settings.timecapture_interval_minutes;
    let (date, started_at, ended_at, minutes) = if entry.running() {
        if changes.ended_at.is_some() || changes.minutes.is_some() {
            return Err(AppError::bad_input(
                "input.endedAt",
                "a running timer ends with stopTimer",
            ));
        }
        let start = whole_minute(
            "input.startedAt",
            changes.started_at.unwrap_or(entry.started_at.unwrap_or_default()),
        )?;
        if start > Utc::now() {
            return Err(AppError::bad_input(
                "input.startedAt",
                "a running timer started in the past",
            ));
        }
        if changes.date.is_some() {
            return Err(AppError::bad_input(
                "input.date",
                "a timer's date is its start's date",
            ));
        }
        (local_date(start, settings.time_zone), Some(start), None, None)
    } else {
        let start = changes.started_at.or(entry.started_at);
        let s = match start {
            Some(start) => {
                let end = changes
                    .ended_at
                    .or_else(|| changes.minutes.map(|m| start + Duration::minutes(i64::from(m))))
                    .or_else(|| {
                        if changes.started_at.is_some() {
                            entry.minutes.map(|m| start + Duration::minutes(i64::from(m)))
                        } else {
                            entry.ended_at
                        }
                    });
                span(settings, changes.date, Some(start), end, changes.minutes)?
            }
            None => {
                if changes.ended_at.is_some() {
                    return Err(AppError::bad_input(
                        "input.startedAt",
                        "give a start with the end",
                    ));
                }
                let minutes = changes.minutes.or(entry.minutes);
                let date = changes.date.unwrap_or(entry.work_date);
                span(settings, Some(date), None, None, minutes)?
            }
        };
        check_minutes("input.minutes", s.minutes, interval)?;
        (s.date, s.started_at, s.ended_at, Some(s.minutes))
    };
    let project_id = changes.project_id.unwrap_or(entry.project_id);
    let task_id = match changes.task_id {
        Some(task) => task,
        None => entry.task_id,
    };
    let retarget = project_id != entry.project_id || task_id != entry.task_id;
    let (rate, billable) = if retarget {
        let target = target(conn, entry.user_id, project_id, task_id).await?;
        let billable = changes.billable.unwrap_or_else(|| target.default_billable());
        (target.rate, billable)
    } else {
        (entry.hourly_rate, changes.billable.unwrap_or(entry.billable))
    };
    let notes = match changes.notes {
        Some(notes) => text::notes("input.notes", &notes)?,
        None => entry.notes.clone(),
    };
    if date != entry.work_date {
        ensure_week_open(conn, settings, entry.user_id, date).await?;
    }
    if let Some(start) = started_at {
        ensure_no_overlap(conn, entry.user_id, start, ended_at, Some(entry.id)).await?;
    }
    diesel::update(time_entries::table.find(entry.id))
        .set((
            time_entries::project_id.eq(project_id),
            time_entries::task_id.eq(task_id),
            time_entries::work_date.eq(date),
            time_entries::started_at.eq(started_at),
            time_entries::ended_at.eq(ended_at),
            time_entries::minutes.eq(minutes),
            time_entries::notes.eq(notes),
            time_entries::billable.eq(billable),
            time_entries::hourly_rate.eq(rate),
            time_entries::updated_at.eq(diesel::dsl::now),
        ))
        .returning(TimeEntry::as_returning())
        .get_result(conn)
        .await
        .map_err(constraint_error)
}

pub async fn delete(conn: &mut AsyncPgConnection, entry: &TimeEntry) -> AppResult<()> {
    diesel::delete(time_entries::table.find(entry.id))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> AppResult<Option<TimeEntry>> {
    Ok(time_entries::table
        .find(id)
        .select(TimeEntry::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The entries of `ids` that exist, in no particular order.
pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<TimeEntry>> {
    Ok(time_entries::table
        .filter(time_entries::id.eq_any(ids))
        .select(TimeEntry::as_select())
        .load(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_after_the_weekend() {
        use Weekday::*;
        assert_eq!(week_start_day(&[Mon, Tue, Wed, Thu, Fri]), Mon);
        assert_eq!(week_start_day(&[Sun, Mon, Tue, Wed, Thu]), Sun);
        assert_eq!(week_start_day(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun]), Mon);
        assert_eq!(week_start_day(&[Tue, Wed, Thu, Fri, Sat]), Tue);
        let thursday = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(
            week_of(thursday, Mon),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        assert_eq!(
            week_of(thursday, Sun),
            NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
        );
        assert_eq!(week_of(thursday, Thu), thursday);
    }

    #[test]
    fn amounts_round_half_up() {
        // 7 minutes at 333.33 an hour: 38.8885 -> 38.89.
        let rate = Decimal::new(33333, 2);
        assert_eq!(amount(7, rate, 2), Decimal::new(3889, 2));
        // 30 minutes at 0.01: 0.005 -> 0.01.
        assert_eq!(amount(30, Decimal::new(1, 2), 2), Decimal::new(1, 2));
        assert_eq!(amount(90, Decimal::from(1000), 0), Decimal::from(1500));
    }
}
