//! The emails about leave: a new request and a cancelled one, to each approver; a
//! decision, to the requester.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::LeaveRequest;
use crate::auth::users;
use crate::db::schema::{leave_requests, leave_types, users as users_table};
use crate::jobs::registry::{JobContext, Letter};
use crate::mail::Email;
use crate::settings::{self, SettingsCache};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum LeaveEmail {
    /// A new leave request, to one approver.
    LeaveRequested { request_id: i64, to_user_id: i64 },
    /// A leave request approved or rejected, to its requester.
    LeaveDecided { request_id: i64 },
    /// A leave request cancelled by its requester, to one approver.
    LeaveCancelled { request_id: i64, to_user_id: i64 },
}

impl Letter for LeaveEmail {
    const TEMPLATES: &'static [&'static str] = &["leave_requested", "leave_decided", "leave_cancelled"];

    async fn render(self, ctx: &JobContext) -> anyhow::Result<Option<Email>> {
        let tenant = ctx.db.tenant();
        let site = ctx.site();
        let settings = settings::effective(&ctx.db, ctx.services.get::<SettingsCache>()).await?;
        let mut conn = ctx.db.conn().await?;
        let site_url = site.site_url.trim_end_matches('/');
        let link = |request_id: i64| format!("{site_url}/leave/requests/{request_id}");
        let (to, subject, body) = match self {
            Self::LeaveRequested {
                request_id,
                to_user_id,
            }
            | Self::LeaveCancelled {
                request_id,
                to_user_id,
            } => {
                let Some(leave) = summary(&mut conn, request_id).await? else {
                    return Ok(None);
                };
                let Some(to) = users::contact(&mut conn, to_user_id).await? else {
                    return Ok(None);
                };
                let (subject, body) = if matches!(self, Self::LeaveCancelled { .. }) {
                    (
                        format!("{} cancelled {} leave", leave.requester, leave.type_name),
                        format!(
                            "{} cancelled their {} leave from {} to {} ({} working days).\n\n{}\n",
                            leave.requester,
                            leave.type_name,
                            leave.first,
                            leave.last,
                            leave.days,
                            link(request_id)
                        ),
                    )
                } else {
                    (
                        format!("{} asks for {} leave", leave.requester, leave.type_name),
                        format!(
                            "{} asks for {} leave from {} to {} ({} working days).\n{}\n\
                             Approve or reject it: {}\n",
                            leave.requester,
                            leave.type_name,
                            leave.first,
                            leave.last,
                            leave.days,
                            if leave.reason.is_empty() {
                                String::new()
                            } else {
                                format!("Reason: {}\n", leave.reason)
                            },
                            link(request_id)
                        ),
                    )
                };
                (to, subject, body)
            }
            Self::LeaveDecided { request_id } => {
                let Some(leave) = summary(&mut conn, request_id).await? else {
                    return Ok(None);
                };
                let Some(to) = users::contact(&mut conn, leave.user_id).await? else {
                    return Ok(None);
                };
                let when = leave
                    .decided_at
                    .map(|t| settings.local_time(t))
                    .unwrap_or_default();
                let (subject, body) = match leave.status.as_str() {
                    "APPROVED" => (
                        format!("Your {} leave from {} is approved", leave.type_name, leave.first),
                        format!(
                            "Your {} leave from {} to {} ({} working days) was approved on {when}.\n",
                            leave.type_name, leave.first, leave.last, leave.days
                        ),
                    ),
                    "REJECTED" => (
                        format!("Your {} leave from {} is rejected", leave.type_name, leave.first),
                        format!(
                            "Your {} leave from {} to {} was rejected on {when}:\n\n  {}\n",
                            leave.type_name,
                            leave.first,
                            leave.last,
                            leave.note.unwrap_or_default()
                        ),
                    ),
                    _ => return Ok(None),
                };
                (to, subject, format!("{body}\n{}\n", link(request_id)))
            }
        };
        Ok(Some(Email::letter(
            site.default_from_email.clone(),
            tenant.name.clone(),
            to,
            subject,
            &body,
        )))
    }
}

/// What a leave email says of its request.
struct Summary {
    user_id: i64,
    requester: String,
    type_name: String,
    first: NaiveDate,
    last: NaiveDate,
    days: Decimal,
    reason: String,
    status: String,
    note: Option<String>,
    decided_at: Option<DateTime<Utc>>,
}

async fn summary(conn: &mut AsyncPgConnection, request_id: i64) -> anyhow::Result<Option<Summary>> {
    let found: Option<(LeaveRequest, String, String, String)> = leave_requests::table
        .inner_join(leave_types::table)
        .inner_join(users_table::table.on(users_table::id.eq(leave_requests::user_id)))
        .filter(leave_requests::id.eq(request_id))
        .select((
            LeaveRequest::as_select(),
            leave_types::name,
            users_table::name,
            users_table::email,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(r, type_name, name, email)| Summary {
        user_id: r.user_id,
        requester: if name.is_empty() { email } else { name },
        type_name,
        first: r.first_day,
        last: r.last_day,
        days: r.working_days.normalize(),
        reason: r.reason,
        status: r.status,
        note: r.decision_note,
        decided_at: r.decided_at,
    }))
}
