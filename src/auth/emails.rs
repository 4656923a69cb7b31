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
}

impl Letter for AuthEmail {
    const TEMPLATES: &'static [&'static str] = &["welcome"];

    async fn render(self, ctx: &JobContext) -> anyhow::Result<Option<Email>> {
        let Self::Welcome { user_id } = self;
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
        let body = format!(
            "an account was made for you at {} on Crowdminder.\n\
             Sign in as {email} at {}/login with the password you were given.\n",
            tenant.name,
            site.site_url.trim_end_matches('/'),
        );
        let subject = format!("Your account at {}", tenant.name);
        Ok(Some(Email::letter(
            site.default_from_email,
            tenant.name.clone(),
            (email, name),
            subject,
            &body,
        )))
    }
}
