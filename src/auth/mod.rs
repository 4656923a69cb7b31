//! Identity within a tenant: users and roles, passwords, login tokens, API tokens, and the
//! [`Actor`] a request acts as.

pub mod emails;
pub mod graphql;
pub mod password;
pub mod throttle;
pub mod tokens;
pub mod users;

use diesel::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::cache::CoherentCache;
use crate::db::schema::{api_tokens, users as users_table};
use crate::error::{AppError, AppResult};
use crate::services::Services;
use crate::tenancy::TenantDb;
use crate::tenancy::changes::{self, Notice};
use throttle::CredentialThrottle;
use tokens::{API_TOKEN_PREFIX, JwtKeys, TokenSubject, hash_api_token};
use users::User;

#[derive(
    async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Settings, users and billing.
    Admin,
    /// Approves leave and timesheets; sees everyone's time.
    Manager,
    /// Their own time and leave.
    Member,
}

crate::db::stored_as_text!(Role, default Member, {
    Admin => "ADMIN",
    Manager => "MANAGER",
    Member => "MEMBER",
});

/// How the request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Login,
    ApiToken { token_id: i64 },
}

/// The user a request acts as, with their role at the time of the request.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user_id: i64,
    pub role: Role,
    pub credential: Credential,
}

impl Actor {
    pub fn require_admin(&self) -> AppResult<()> {
        self.require(&[Role::Admin], "only an admin may do this")
    }

    /// Whether this actor may see `user_id`'s own things (their time, leave, profile):
    /// members only their own, managers and admins everyone's.
    pub fn may_see(&self, user_id: i64) -> bool {
        self.role != Role::Member || self.user_id == user_id
    }

    /// The users whose things a list shows: members only themselves, managers and admins
    /// those asked for (`None`: everyone).
    pub fn narrow(&self, asked: Option<Vec<i64>>) -> Option<Vec<i64>> {
        if self.role == Role::Member {
            Some(vec![self.user_id])
        } else {
            asked
        }
    }

    pub fn require(&self, roles: &[Role], message: &'static str) -> AppResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden(message))
        }
    }
}

/// A credential as the actor cache knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialKey {
    /// A valid login token's user and token version.
    User(TokenSubject),
    /// The SHA-256 of an API token.
    ApiToken(Vec<u8>),
}

/// Who a credential was found to be: the actor, and its user's row as read with it (what
/// `me` answers).
#[derive(Debug, Clone)]
pub struct Identity {
    pub actor: Actor,
    pub user: Arc<User>,
}

/// Who a credential was found to be, by tenant id and credential; see [`crate::cache`].
/// Only successful look-ups are kept. Whatever changes a user's row, or revokes a token,
/// must publish [`Notice::Auth`] and drop the cache after commit, as
/// [`announce_auth_change`] does.
pub type ActorCache = CoherentCache<(i64, CredentialKey), Identity>;

pub fn actor_cache() -> ActorCache {
    CoherentCache::new(Duration::from_secs(600))
}

/// Publishes a change of users or tokens (in the unit's transaction) and drops this
/// server's cached actors once it commits; other servers drop theirs on the notice.
pub async fn announce_auth_change(
    db: &TenantDb,
    conn: &mut AsyncPgConnection,
    cache: &Arc<ActorCache>,
) -> AppResult<()> {
    changes::publish(conn, Notice::Auth(db.tenant().id)).await?;
    let cache = Arc::clone(cache);
    db.after_commit(move || cache.invalidate_all());
    Ok(())
}

/// Why a credential that might be a guess was refused: these count against the client's
/// budget of failed credential checks. An expired token, one of another tenant or of a
/// deactivated user was issued by us, and does not.
pub const FORGED_TOKEN: &str = "the token is invalid";
pub const UNKNOWN_API_TOKEN: &str = "the API token is unknown or revoked";
/// A login token issued before its user signed out, changed their password or was
/// deactivated.
pub const SIGNED_OUT: &str = "the token was ended by a sign-out, a password change or a deactivation";

/// Works out the actor from an `Authorization: Bearer` credential, in the tenant of `db`,
/// sent from `client`. A credential of another tenant fails here: JWTs name their tenant,
/// and API tokens are looked up only in this tenant's schema (and cached under this
/// tenant's id). A forged or unknown credential counts against the client's budget of
/// failures, and while the client is over it nothing it sends is checked (`THROTTLED`).
pub async fn authenticate(
    db: &TenantDb,
    services: &Services,
    bearer: Option<&str>,
    client: Option<IpAddr>,
) -> AppResult<Actor> {
    Ok(identify_client(db, services, bearer, client).await?.actor)
}

/// [`authenticate`], with the user's row.
pub async fn identify_client(
    db: &TenantDb,
    services: &Services,
    bearer: Option<&str>,
    client: Option<IpAddr>,
) -> AppResult<Identity> {
    let bearer = bearer.ok_or(AppError::Unauthenticated("sign in or send an API token"))?;
    let throttle = services.get::<CredentialThrottle>();
    let tenant_id = db.tenant().id;
    throttle.admit(tenant_id, None, client)?;
    let found = identify(db, services, bearer).await;
    if let Err(AppError::Unauthenticated(why)) = &found
        && (*why == FORGED_TOKEN || *why == UNKNOWN_API_TOKEN)
    {
        throttle.failed(tenant_id, None, client)?;
    }
    found
}

async fn identify(db: &TenantDb, services: &Services, bearer: &str) -> AppResult<Identity> {
    let keys = services.get::<JwtKeys>();
    let cache = services.get::<ActorCache>();
    let tenant_id = db.tenant().id;
    let credential = if bearer.starts_with(API_TOKEN_PREFIX) {
        CredentialKey::ApiToken(hash_api_token(bearer))
    } else {
        CredentialKey::User(keys.verify(bearer, tenant_id)?)
    };
    let key = (tenant_id, credential);
    if let Some(identity) = cache.get(&key) {
        return Ok(identity);
    }
    let epoch = cache.epoch();
    let identity = look_up(db, &key.1).await?;
    cache.insert(key, epoch, identity.clone());
    Ok(identity)
}

async fn look_up(db: &TenantDb, credential: &CredentialKey) -> AppResult<Identity> {
    let mut conn = db.conn().await?;
    let (user, credential) = match credential {
        CredentialKey::ApiToken(hash) => {
            let found: Option<(i64, User)> = api_tokens::table
                .inner_join(users_table::table)
                .filter(api_tokens::token_hash.eq(hash))
                .filter(api_tokens::revoked_at.is_null())
                .filter(users_table::active.eq(true))
                .select((api_tokens::id, User::as_select()))
                .first(&mut *conn)
                .await
                .optional()?;
            let (token_id, user) = found.ok_or(AppError::Unauthenticated(UNKNOWN_API_TOKEN))?;
            (user, Credential::ApiToken { token_id })
        }
        CredentialKey::User(subject) => {
            let user: User = users_table::table
                .find(subject.user_id)
                .filter(users_table::active.eq(true))
                .select(User::as_select())
                .first(&mut *conn)
                .await
                .optional()?
                .ok_or(AppError::Unauthenticated(
                    "the user no longer exists or is deactivated",
                ))?;
            if user.token_version != subject.version {
                return Err(AppError::Unauthenticated(SIGNED_OUT));
            }
            (user, Credential::Login)
        }
    };
    Ok(Identity {
        actor: Actor {
            user_id: user.id,
            role: user.role.0,
            credential,
        },
        user: Arc::new(user),
    })
}
