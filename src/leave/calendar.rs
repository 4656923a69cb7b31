//! Which days are worked: the tenant's work week less its public holidays, and the leave
//! years (starting in `LEAVE_YEAR_START_MONTH`, named by the calendar year they start in).

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc, Weekday};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use crate::db::schema::holidays;
use crate::db::unique_conflict;
use crate::error::{AppError, AppResult};
use crate::settings::TenantSettings;
use crate::text;
use std::collections::HashSet;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = holidays)]
pub struct Holiday {
    pub id: i64,
    pub day: NaiveDate,
    pub name: String,
    pub created_at: DateTime<Utc>,
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
