//! The emails about time: a timesheet's decision, to its user.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::timesheets::Timesheet;
use crate::db::schema::{timesheets, users};
use crate::jobs::registry::{JobContext, Letter};
use crate::mail::Email;
use crate::settings::{self, SettingsCache};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum TimeEmail {
    /// A timesheet approved or rejected, to its user.
    TimesheetDecided { timesheet_id: i64 },
}

impl Letter for TimeEmail {
    const TEMPLATES: &'static [&'static str] = &["timesheet_decided"];

    async fn render(self, ctx: &JobContext) -> anyhow::Result<Option<Email>> {
        let Self::TimesheetDecided { timesheet_id } = self;
        let tenant = ctx.db.tenant();
        let site = ctx.site();
        let settings = settings::effective(&ctx.db, ctx.services.get::<SettingsCache>()).await?;
        let mut conn = ctx.db.conn().await?;
        let sheet: Option<Timesheet> = timesheets::table
            .find(timesheet_id)
            .select(Timesheet::as_select())
            .first(&mut *conn)
            .await
            .optional()?;
        let Some(sheet) = sheet else {
            return Ok(None);
        };
        let (email, name): (String, String) = users::table
            .find(sheet.user_id)
            .select((users::email, users::name))
            .first(&mut *conn)
            .await?;
        let week = sheet.week_start;
        let when = sheet
            .decided_at
            .map(|t| settings.local_time(t))
            .unwrap_or_default();
        let link = format!("{}/timesheets/{week}", site.site_url.trim_end_matches('/'));
        let (subject, body) = match sheet.status.as_str() {
            "APPROVED" => (
                format!("Your timesheet for the week of {week} is approved"),
                format!("It was approved on {when}. Its entries are now locked.\n\n{link}\n"),
            ),
            "REJECTED" => (
                format!("Your timesheet for the week of {week} needs changes"),
                format!(
                    "It was returned on {when} with this reason:\n\n  {}\n\n\
                     Correct the entries and submit it again: {link}\n",
                    sheet.rejection_reason.unwrap_or_default()
                ),
            ),
            _ => return Ok(None),
        };
        Ok(Some(Email::letter(
            site.default_from_email,
            tenant.name.clone(),
            (email, name),
            subject,
            &body,
        )))
    }
}
