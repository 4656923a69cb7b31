//! The emails about users.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::schema::users;
use crate::jobs::registry::{JobContext, Letter};
use crate::mail::Email;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum AuthEmail {
    /// A new user's invitation to sign in.
    Welcome { user_id: i64 },
    /// A notice that the user's password was changed and their other sessions ended.
    PasswordChanged { user_id: i64 },
}

impl Letter for AuthEmail {
    const TEMPLATES: &'static [&'static str] = &["welcome", "password_changed"];

    async fn render(self, ctx: &JobContext) -> anyhow::Result<Option<Email>> {
        let user_id = match self {
            Self::Welcome { user_id } | Self::PasswordChanged { user_id } => user_id,
        };
        let tenant = ctx.db.tenant();
        let site = ctx.site();
        let user: Option<(String, String)> = {
            let mut conn = ctx.db.conn().await?;
            users::table
                .find(user_id)
                .select((users::email, users::name))
                .first(&mut *conn)
                .await
                .optional()?
        };
        let Some((email, name)) = user else {
            return Ok(None);
        };
        let site_url = site.site_url.trim_end_matches('/');
        let (subject, body) = match self {
            Self::Welcome { .. } => (
                format!("Your account at {}", tenant.name),
                format!(
                    "an account was made for you at {} on Crowdminder.\n\
                     Sign in as {email} at {site_url}/login with the password you were given.\n",
                    tenant.name,
                ),
            ),
            Self::PasswordChanged { .. } => (
                format!("Your password at {} was changed", tenant.name),
                format!(
                    "the password of {email} at {} on Crowdminder was just changed, and every \
                     other session of yours was signed out.\n\
                     If this was not you, tell an admin of {} at once.\n",
                    tenant.name, tenant.name,
                ),
            ),
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
