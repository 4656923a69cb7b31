//! Leave requests: asked for by a user, decided by a manager or admin (never their own),
//! cancelled by the requester, with files attached where the type needs them.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;

use super::balances::balances;
use super::calendar::{Span, calendar, leave_year, leave_year_of};
use super::emails::LeaveEmail;
use super::types::LeaveType;
use crate::auth::{Actor, Role};
use crate::db::schema::{leave_requests, leave_types, users};
use crate::db::{Keyset, keyset_page};
use crate::error::{AppError, AppResult};
use crate::jobs::{self, registry::Letter};
use crate::settings::TenantSettings;

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

    pub(super) fn span(&self) -> Span {
        Span {
            first: self.first_day,
            last: self.last_day,
            half_start: self.half_day_start,
            half_end: self.half_day_end,
        }
    }
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
        // A member does not learn that another's request exists.
        if !actor.may_see(request.user_id) {
            return Err(AppError::NotFound {
                what: "leave request",
            });
        }
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
    mut conn: &AsyncPgConnection,
    filter: &RequestFilter,
    keyset: Keyset,
) -> QueryResult<Vec<LeaveRequest>> {
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
    query.load(&mut conn).await
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
