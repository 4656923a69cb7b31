//! Reports over time entries, computed in SQL on the tenant's dates: billable and
//! non-billable minutes and amounts grouped by any of client, project, task, user, day,
//! week and month, with totals (the rows summed); and utilisation per user.
//!
//! Amounts are each entry's amount rounded half-up to the currency's minor unit, summed,
//! so a report always equals the sum of the entries it covers.

use chrono::NaiveDate;
use diesel::sql_types::{Array, BigInt, Bool, Date, Nullable, Numeric, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::entries::{EntryStatus, week_start_day};
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;

/// The longest range a report covers.
pub const MAX_REPORT_DAYS: i64 = 366 * 5;

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Client,
    Project,
    Task,
    User,
    Day,
    Week,
    Month,
}

impl GroupBy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "CLIENT" => Some(Self::Client),
            "PROJECT" => Some(Self::Project),
            "TASK" => Some(Self::Task),
            "USER" => Some(Self::User),
            "DAY" => Some(Self::Day),
            "WEEK" => Some(Self::Week),
            "MONTH" => Some(Self::Month),
            _ => None,
        }
    }

    /// The column this key is selected as.
    fn column(self) -> &'static str {
        match self {
            Self::Client => "client_id",
            Self::Project => "project_id",
            Self::Task => "task_id",
            Self::User => "user_id",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The expression it groups by. `week_start` is the ISO number of the week's first day.
    fn expression(self, week_start: u32) -> String {
        match self {
            Self::Client => "p.client_id".to_owned(),
            Self::Project => "e.project_id".to_owned(),
            Self::Task => "e.task_id".to_owned(),
            Self::User => "e.user_id".to_owned(),
            Self::Day => "e.work_date".to_owned(),
            // Date arithmetic on integers: several times cheaper than date_trunc, which
            // goes through timestamps, over a million rows.
            Self::Week => {
                format!("(e.work_date - ((date_part('isodow', e.work_date)::int - {week_start} + 7) % 7))")
            }
            Self::Month => "(e.work_date - (date_part('day', e.work_date)::int - 1))".to_owned(),
        }
    }

    fn is_nullable_id(self) -> bool {
        matches!(self, Self::Client | Self::Project | Self::Task | Self::User)
    }
}

#[derive(Debug, Default, Clone)]
pub struct ReportFilter {
    pub user_ids: Option<Vec<i64>>,
    pub client_ids: Option<Vec<i64>>,
    pub project_ids: Option<Vec<i64>>,
    pub task_ids: Option<Vec<i64>>,
    pub billable: Option<bool>,
    pub statuses: Option<Vec<EntryStatus>>,
}

/// What a report is asked for, checked.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: Vec<GroupBy>,
    pub filter: ReportFilter,
}

impl ReportRequest {
    pub fn new(
        from: NaiveDate,
        to: NaiveDate,
        group_by: Vec<GroupBy>,
        filter: ReportFilter,
    ) -> AppResult<Self> {
        if to < from {
            return Err(AppError::bad_input("to", "the range ends before it starts"));
        }
        if (to - from).num_days() >= MAX_REPORT_DAYS {
            return Err(AppError::bad_input(
                "to",
                format!("a report covers at most {MAX_REPORT_DAYS} days"),
            ));
        }
        let mut unique = Vec::with_capacity(group_by.len());
        for key in group_by {
            if unique.contains(&key) {
                return Err(AppError::bad_input("groupBy", format!("{key:?} is named twice")));
            }
            unique.push(key);
        }
        Ok(Self {
            from,
            to,
            group_by: unique,
            filter,
        })
    }
}

/// One row of a report, or its totals (all keys null).
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct ReportRow {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub client_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub project_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub task_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    #[diesel(sql_type = Nullable<Date>)]
    pub day: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub week: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub month: Option<NaiveDate>,
    #[diesel(sql_type = BigInt)]
    pub billable_minutes: i64,
    #[diesel(sql_type = BigInt)]
    pub non_billable_minutes: i64,
    #[diesel(sql_type = Numeric)]
    pub amount: Decimal,
    #[diesel(sql_type = BigInt)]
    pub entries: i64,
    #[diesel(sql_type = Bool)]
    pub is_total: bool,
}

/// Hours of `minutes`, to two decimals (minutes are the exact figure).
pub fn hours(minutes: i64) -> Decimal {
    (Decimal::from(minutes) / Decimal::from(60))
        .round_dp(2)
        .normalize()
}

/// The report's statement with its values bound. Only the filters asked for appear in it
/// (rather than `$n IS NULL OR ...` for each), so PostgreSQL plans the query it will run,
/// in parallel over a large table.
pub fn report_query(
    settings: &TenantSettings,
    request: &ReportRequest,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    let minor = crate::settings::currency::minor_units(&settings.currency).unwrap_or(2);
    let week_start = week_start_day(&settings.work_week).number_from_monday();
    let mut select = Vec::new();
    for key in [
        GroupBy::Client,
        GroupBy::Project,
        GroupBy::Task,
        GroupBy::User,
        GroupBy::Day,
        GroupBy::Week,
        GroupBy::Month,
    ] {
        let ty = if key.is_nullable_id() { "bigint" } else { "date" };
        if request.group_by.contains(&key) {
            select.push(format!("{} AS {}", key.expression(week_start), key.column()));
        } else {
            select.push(format!("NULL::{ty} AS {}", key.column()));
        }
    }
    let f = &request.filter;
    let mut conditions = vec![
        "e.work_date BETWEEN $1 AND $2".to_owned(),
        "e.minutes IS NOT NULL".to_owned(),
    ];
    let mut next = 3;
    let mut placeholder = |condition: &str| {
        conditions.push(condition.replace('?', &format!("${next}")));
        next += 1;
    };
    for (ids, column) in [
        (&f.user_ids, "e.user_id"),
        (&f.client_ids, "p.client_id"),
        (&f.project_ids, "e.project_id"),
        (&f.task_ids, "e.task_id"),
    ] {
        if ids.is_some() {
            placeholder(&format!("{column} = ANY(?)"));
        }
    }
    if f.billable.is_some() {
        placeholder("e.billable = ?");
    }
    if f.statuses.is_some() {
        placeholder("e.status = ANY(?)");
    }
    let mut sql = format!(
        "SELECT {}, \
         coalesce(sum(e.minutes) FILTER (WHERE e.billable), 0)::bigint AS billable_minutes, \
         coalesce(sum(e.minutes) FILTER (WHERE NOT e.billable), 0)::bigint AS non_billable_minutes, \
         coalesce(sum(round(e.minutes * e.hourly_rate / 60, {minor})) FILTER (WHERE e.billable), 0)::numeric AS amount, \
         count(*) AS entries, {} AS is_total \
         FROM time_entries e JOIN projects p ON p.id = e.project_id WHERE {}",
        select.join(", "),
        request.group_by.is_empty(),
        conditions.join(" AND ")
    );
    if !request.group_by.is_empty() {
        let expressions: Vec<String> = request
            .group_by
            .iter()
            .map(|k| k.expression(week_start))
            .collect();
        let columns: Vec<&str> = request.group_by.iter().map(|k| k.column()).collect();
        sql.push_str(&format!(
            " GROUP BY {} ORDER BY {}",
            expressions.join(", "),
            columns
                .iter()
                .map(|c| format!("{c} NULLS LAST"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Date, _>(request.from)
        .bind::<Date, _>(request.to);
    for ids in [&f.user_ids, &f.client_ids, &f.project_ids, &f.task_ids]
        .into_iter()
        .flatten()
    {
        query = query.bind::<Array<BigInt>, _>(ids.clone());
    }
    if let Some(billable) = f.billable {
        query = query.bind::<Bool, _>(billable);
    }
    if let Some(statuses) = &f.statuses {
        let statuses: Vec<String> = statuses.iter().map(|s| s.as_str().to_owned()).collect();
        query = query.bind::<Array<Text>, _>(statuses);
    }
    query
}

/// The report's rows, then its totals (the last row, `is_total`): the rows summed, which
/// is exact (integers and decimals), and with no keys the one row the statement returns.
pub async fn billable_hours(
    conn: &mut AsyncPgConnection,
    settings: &TenantSettings,
    request: &ReportRequest,
) -> AppResult<Vec<ReportRow>> {
    let mut rows: Vec<ReportRow> = report_query(settings, request).load(conn).await?;
    if !request.group_by.is_empty() {
        rows.push(totals(&rows));
    }
    Ok(rows)
}

/// The sum of report rows, as a totals row.
pub fn totals(rows: &[ReportRow]) -> ReportRow {
    ReportRow {
        client_id: None,
        project_id: None,
        task_id: None,
        user_id: None,
        day: None,
        week: None,
        month: None,
        billable_minutes: rows.iter().map(|r| r.billable_minutes).sum(),
        non_billable_minutes: rows.iter().map(|r| r.non_billable_minutes).sum(),
        amount: rows.iter().map(|r| r.amount).sum(),
        entries: rows.iter().map(|r| r.entries).sum(),
        is_total: true,
    }
}

#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct UserMinutes {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = BigInt)]
    pub billable_minutes: i64,
    #[diesel(sql_type = BigInt)]
    pub non_billable_minutes: i64,
}

/// Logged minutes per active user (and any user with time in the range) between `from` and
/// `to`; users without time show zeros.
pub async fn minutes_per_user(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
    user_ids: Option<Vec<i64>>,
) -> AppResult<Vec<UserMinutes>> {
    Ok(diesel::sql_query(
        "SELECT u.id AS user_id, \
         coalesce(sum(e.minutes) FILTER (WHERE e.billable), 0)::bigint AS billable_minutes, \
         coalesce(sum(e.minutes) FILTER (WHERE NOT e.billable), 0)::bigint AS non_billable_minutes \
         FROM users u \
         LEFT JOIN time_entries e ON e.user_id = u.id AND e.work_date BETWEEN $1 AND $2 \
          AND e.minutes IS NOT NULL \
         WHERE ($3::bigint[] IS NULL OR u.id = ANY($3)) \
         GROUP BY u.id \
         HAVING bool_or(u.active) OR count(e.id) > 0 \
         ORDER BY u.id",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .bind::<Nullable<Array<BigInt>>, _>(user_ids)
    .load(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_to_two_places() {
        assert_eq!(hours(90), Decimal::new(15, 1));
        assert_eq!(hours(7), Decimal::new(12, 2));
    }
}
