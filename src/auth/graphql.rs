//! GraphQL for identity: login, the current user, users, API tokens.

use crate::graphql::support::DirectPage;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::emails::AuthEmail;
use super::throttle::CredentialThrottle;
use super::tokens::new_api_token;
use super::tokens::{JwtKeys, TokenSubject};
use super::users::{self, NewUser, User, UserFilter};
use super::{Actor, ActorCache, Identity, Role, announce_auth_change, identify_client, password};
use crate::config::Secret;
use crate::db::schema::{api_tokens, users as users_table};
use crate::error::{AppError, AppResult};
use crate::graphql::support::{
    ById, ContextExt, FetchById, NodeType, PageArgs, RequestContext, expect_global_id, global_id,
};
use crate::jobs::registry::Letter;

/// The signed-in actor of a request, worked out once, on first need.
pub trait RequestActor {
    fn actor(&self) -> impl Future<Output = AppResult<Actor>> + Send;
    /// The actor with its user's row, as read when its credential was checked.
    fn identity(&self) -> impl Future<Output = AppResult<Identity>> + Send;
}

/// The request's identity once known, or why its credential was refused: a credential is
/// checked (and a failure counted) once per request, however many fields ask.
struct SignedIn(tokio::sync::OnceCell<Result<Identity, &'static str>>);

impl RequestActor for RequestContext {
    async fn actor(&self) -> AppResult<Actor> {
        Ok(self.identity().await?.actor)
    }

    async fn identity(&self) -> AppResult<Identity> {
        let signed_in = self.kept(|| SignedIn(tokio::sync::OnceCell::new()));
        let outcome = signed_in
            .0
            .get_or_try_init(|| async {
                match identify_client(&self.db, &self.services, self.bearer.as_deref(), self.client).await {
                    Ok(identity) => Ok(Ok(identity)),
                    Err(AppError::Unauthenticated(why)) => Ok(Err(why)),
                    Err(other) => Err(other),
                }
            })
            .await?;
        outcome.clone().map_err(AppError::Unauthenticated)
    }
}

/// The user a list is narrowed to: members always see only themselves; managers and admins
/// see the user asked for (a global `User` id in `field`), or everyone.
pub fn own_or_asked(actor: &Actor, field: &str, asked: Option<ID>) -> AppResult<Option<i64>> {
    let asked = asked
        .map(|id| expect_global_id(field, &id, NodeType::User))
        .transpose()?;
    Ok(actor
        .narrow(asked.map(|id| vec![id]))
        .and_then(|ids| ids.into_iter().next()))
}

impl FetchById for User {
    fn id(&self) -> i64 {
        self.id
    }

    async fn fetch(conn: &mut diesel_async::AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<Self>> {
        users::by_ids(conn, ids).await
    }
}

/// A person in this tenant.
pub struct UserNode(pub User);

#[Object(name = "User")]
impl UserNode {
    pub async fn id(&self) -> ID {
        global_id(NodeType::User, self.0.id)
    }
    /// As typed at creation; unique ignoring case.
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Role {
        self.0.role.0
    }
    /// Deactivated users cannot sign in and their tokens stop working.
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

impl UserNode {
    /// A field's value written directly ([`crate::graphql::support::direct`]), as the resolvers
    /// above give it.
    pub fn direct_field(
        user: crate::db::columns::Partial<'_, User>,
        field: &async_graphql::parser::types::Field,
        out: &mut crate::graphql::support::direct::Json,
    ) -> Option<()> {
        let name = crate::graphql::support::direct::name(field);
        // A field whose columns were not read is the resolvers'.
        let user = user.for_field(name)?;
        match name {
            "id" => out.id(NodeType::User, user.id),
            "email" => out.str(&user.email),
            "name" => out.str(&user.name),
            "role" => out.enumeration(&user.role.0),
            "active" => out.bool(user.active),
            "createdAt" => out.scalar(&user.created_at),
            "updatedAt" => out.scalar(&user.updated_at),
            _ => return None,
        }
        Some(())
    }

    /// The user, when `actor` may see them: admins and managers see everyone, members
    /// themselves.
    pub async fn visible(ctx: &Context<'_>, user_id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        if !actor.may_see(user_id) {
            return Ok(None);
        }
        Ok(req.load::<ById<User>>(user_id).await?.map(Self))
    }
}

impl crate::graphql::support::DirectNode for UserNode {
    fn direct_field(
        &self,
        _ctx: &async_graphql::ContextSelectionSet<'_>,
        field: &async_graphql::parser::types::Field,
        out: &mut crate::graphql::support::direct::Json,
    ) -> Option<()> {
        Self::direct_field(
            crate::db::columns::Partial {
                row: &self.0,
                picked: crate::db::columns::Picked::all(),
            },
            field,
            out,
        )
    }
}

/// A long-lived credential for scripts and reporting tools. The secret is shown only once,
/// when the token is created.
#[derive(SimpleObject, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
#[graphql(complex)]
pub struct ApiToken {
    #[graphql(skip)]
    pub id: i64,
    #[graphql(skip)]
    pub user_id: i64,
    pub name: String,
    /// The first characters of the secret, to recognise it by.
    #[diesel(column_name = token_prefix)]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[async_graphql::ComplexObject]
impl ApiToken {
    pub async fn id(&self) -> ID {
        global_id(NodeType::ApiToken, self.id)
    }
    /// The user the token acts as.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        Ok(UserNode::visible(ctx, self.user_id).await?)
    }
}

impl ApiToken {
    pub async fn visible(ctx: &Context<'_>, token_id: i64) -> AppResult<Option<Self>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        let token: Option<ApiToken> = api_tokens::table
            .find(token_id)
            .select(ApiToken::as_select())
            .first(&mut *conn)
            .await
            .optional()?;
        Ok(token.filter(|t| t.user_id == actor.user_id || actor.role == Role::Admin))
    }
}

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// Send as `Authorization: Bearer <token>`; valid on this tenant's hosts only.
    token: String,
    expires_at: DateTime<Utc>,
    user: UserNode,
}

impl LoginPayload {
    /// A fresh login token for `user`, under their current token version.
    fn issue(req: &RequestContext, user: User) -> async_graphql::Result<Self> {
        let subject = TokenSubject {
            user_id: user.id,
            version: user.token_version,
        };
        let (token, expires_at) = req.services.get::<JwtKeys>().issue(req.db.tenant().id, subject)?;
        Ok(Self {
            token,
            expires_at,
            user: UserNode(user),
        })
    }
}

#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    api_token: ApiToken,
    /// The token itself. It is not stored and cannot be shown again.
    secret: String,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    email: String,
    #[graphql(default)]
    name: String,
    role: Role,
    /// At least 10 characters.
    #[graphql(secret)]
    password: String,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    name: Option<String>,
    role: Option<Role>,
    active: Option<bool>,
}

#[derive(InputObject, Default)]
pub struct UserFilterInput {
    role: Option<Role>,
    active: Option<bool>,
    /// Part of the email or name, ignoring case.
    search: Option<String>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<UserNode> {
        // The row read when the credential was checked, kept with it until the user or
        // their tokens change (see `ActorCache`).
        let identity = ctx.request().identity().await?;
        Ok(UserNode(User::clone(&identity.user)))
    }

    /// Users of this tenant, by id (admins and managers).
    #[graphql(complexity = "crate::graphql::support::cost::page(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        filter: Option<UserFilterInput>,
    ) -> async_graphql::Result<DirectPage<UserNode>> {
        let req = ctx.request();
        req.actor().await?.require(
            &[Role::Admin, Role::Manager],
            "only admins and managers may list users",
        )?;
        let page = PageArgs::parse(first, after)?;
        let filter = filter.unwrap_or_default();
        let filter = UserFilter {
            role: filter.role,
            active: filter.active,
            search: filter.search,
        };
        // Usually the request's first statement: it goes out together with the BEGIN.
        let (keyset, filter) = (page.keyset(), &filter);
        let rows = req
            .db
            .read(async |conn| users::page(conn, filter, keyset).await)
            .await?;
        Ok(DirectPage(page.connection(rows, |u| u.id, UserNode)))
    }

    /// The signed-in user's API tokens, newest first.
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiToken>> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let mut conn = req.db.conn().await?;
        Ok(api_tokens::table
            .filter(api_tokens::user_id.eq(actor.user_id))
            .order(api_tokens::id.desc())
            .select(ApiToken::as_select())
            .load(&mut *conn)
            .await
            .map_err(AppError::from)?)
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in with email (any casing) and password. The token works on this tenant only.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        #[graphql(secret)] password: String,
    ) -> async_graphql::Result<LoginPayload> {
        let req = ctx.request();
        let email = email.trim();
        let tenant_id = req.db.tenant().id;
        let throttle = req.services.get::<CredentialThrottle>();
        let _checking = throttle.admit_password(tenant_id, email, req.client)?;
        let found = {
            let mut conn = req.db.conn().await?;
            users::find_for_login(&mut conn, email).await?
        };
        let (user, hash) = match found {
            Some((user, hash)) if user.active => (Some(user), hash),
            _ => (None, None),
        };
        // Verifying takes tens of milliseconds of CPU: no connection is held meanwhile.
        req.db.commit().await?;
        let matches = password::verify(hash, Secret::new(password)).await?;
        let user = match (user, matches) {
            (Some(user), true) => user,
            _ => {
                throttle.failed(tenant_id, Some(email), req.client)?;
                return Err(AppError::Unauthenticated("wrong email or password").into());
            }
        };
        LoginPayload::issue(req, user)
    }

    /// Signs the user out everywhere: every login token of theirs stops working at once,
    /// this one too, on every server. Their API tokens are untouched (see
    /// `revokeApiToken`).
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let req = ctx.request();
        let actor = req.actor().await?;
        req.db
            .in_savepoint(async |conn| {
                diesel::update(users_table::table.find(actor.user_id))
                    .set(users_table::token_version.eq(users_table::token_version + 1))
                    .execute(conn)
                    .await?;
                announce_auth_change(&req.db, conn, &req.services.shared::<ActorCache>()).await
            })
            .await?;
        Ok(true)
    }

    /// Changes the signed-in user's password, given the current one (wrong ones count as
    /// failed sign-ins of the account). Every login token of theirs issued before stops
    /// working; the answer carries a fresh one. The user is emailed a notice.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] current_password: String,
        #[graphql(secret)] new_password: String,
    ) -> async_graphql::Result<LoginPayload> {
        let req = ctx.request();
        let actor = req.actor().await?;
        let new_password = Secret::new(new_password);
        password::validate_new_password("newPassword", &new_password)?;
        if new_password.expose() == current_password {
            return Err(AppError::bad_input("newPassword", "the new password is the current one").into());
        }
        let tenant_id = req.db.tenant().id;
        let (email, hash, version) = {
            let mut conn = req.db.conn().await?;
            users_table::table
                .find(actor.user_id)
                .select((
                    users_table::email,
                    users_table::password_hash,
                    users_table::token_version,
                ))
                .first::<(String, Option<String>, i64)>(&mut *conn)
                .await?
        };
        let throttle = req.services.get::<CredentialThrottle>();
        let _checking = throttle.admit_password(tenant_id, &email, req.client)?;
        // Verifying and hashing take tens of milliseconds each: no connection is held.
        req.db.commit().await?;
        if !password::verify(hash, Secret::new(current_password)).await? {
            throttle.failed(tenant_id, Some(&email), req.client)?;
            return Err(AppError::bad_input("currentPassword", "the current password is wrong").into());
        }
        let new_hash = password::hash(new_password).await?;
        let user = req
            .db
            .in_savepoint(async |conn| {
                // Only if nothing changed since the current password was checked: another
                // password change, a sign-out or a deactivation meanwhile moved the version
                // on, and this change must not undo it.
                let user = diesel::update(
                    users_table::table
                        .find(actor.user_id)
                        .filter(users_table::token_version.eq(version))
                        .filter(users_table::active.eq(true)),
                )
                .set((
                    users_table::password_hash.eq(&new_hash),
                    users_table::token_version.eq(users_table::token_version + 1),
                    users_table::updated_at.eq(diesel::dsl::now),
                ))
                .returning(User::as_returning())
                .get_result(conn)
                .await
                .optional()?
                .ok_or(AppError::Unauthenticated(super::SIGNED_OUT))?;
                let notice = AuthEmail::PasswordChanged { user_id: user.id };
                crate::jobs::enqueue(conn, notice.job(tenant_id)).await?;
                announce_auth_change(&req.db, conn, &req.services.shared::<ActorCache>()).await?;
                Ok(user)
            })
            .await?;
        LoginPayload::issue(req, user)
    }

    /// Adds a user to this tenant (admins) and emails them an invitation to sign in.
    /// Emails are unique ignoring case.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<UserNode> {
        let req = ctx.request();
        req.actor().await?.require_admin()?;
        // Hashing the password is slow: no connection is held meanwhile.
        req.db.commit().await?;
        let prepared = users::prepare(
            NewUser {
                email: input.email,
                name: input.name,
                role: input.role,
                password: Secret::new(input.password),
            },
            "input.",
        )
        .await?;
        let tenant_id = req.db.tenant().id;
        let value = req
            .db
            .in_savepoint(async |conn| {
                let user = users::insert(conn, &prepared).await?;
                let welcome = AuthEmail::Welcome { user_id: user.id };
                crate::jobs::enqueue(conn, welcome.job(tenant_id)).await?;
                Ok(user)
            })
            .await?;
        Ok(UserNode(value))
    }

    /// Changes a user's name, role or active flag (admins). An admin cannot demote or
    /// deactivate themselves, so a tenant always keeps one. Deactivating a user ends their
    /// login tokens and revokes their API tokens; reactivating them revives neither.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
    ) -> async_graphql::Result<UserNode> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        actor.require_admin()?;
        let user_id = expect_global_id("id", &id, NodeType::User)?;
        if user_id == actor.user_id
            && (input.role.is_some_and(|r| r != Role::Admin) || input.active == Some(false))
        {
            return Err(AppError::conflict(Some("input"), "you cannot demote or deactivate yourself").into());
        }
        let name = input
            .name
            .map(|n| crate::auth::users::normalize_name("input.name", &n))
            .transpose()?;
        let user = req
            .db
            .in_savepoint(async |conn| {
                let deactivating = input.active == Some(false);
                let changes = (
                    name.map(|n| users_table::name.eq(n)),
                    input.role.map(|r| users_table::role.eq(r.as_str())),
                    input.active.map(|a| users_table::active.eq(a)),
                    deactivating.then_some(users_table::token_version.eq(users_table::token_version + 1)),
                    users_table::updated_at.eq(diesel::dsl::now),
                );
                let user = diesel::update(users_table::table.find(user_id))
                    .set(changes)
                    .returning(User::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?
                    .ok_or(AppError::NotFound { what: "user" })?;
                if deactivating {
                    diesel::update(
                        api_tokens::table
                            .filter(api_tokens::user_id.eq(user_id))
                            .filter(api_tokens::revoked_at.is_null()),
                    )
                    .set(api_tokens::revoked_at.eq(diesel::dsl::now))
                    .execute(conn)
                    .await?;
                }
                announce_auth_change(&req.db, conn, &req.services.shared::<ActorCache>()).await?;
                Ok(user)
            })
            .await?;
        Ok(UserNode(user))
    }

    /// Creates an API token acting as the signed-in user. The secret is returned only here.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<CreateApiTokenPayload> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::bad_input("name", "a token name has 1 to 100 characters").into());
        }
        let token = new_api_token();
        let api_token = req
            .db
            .in_savepoint(async |conn| {
                // The user stays active until the token is in: a deactivation waits for
                // this, and then revokes it with the rest.
                users_table::table
                    .find(actor.user_id)
                    .filter(users_table::active.eq(true))
                    .select(users_table::id)
                    .for_share()
                    .first::<i64>(conn)
                    .await
                    .optional()?
                    .ok_or(AppError::Unauthenticated(
                        "the user no longer exists or is deactivated",
                    ))?;
                Ok(diesel::insert_into(api_tokens::table)
                    .values((
                        api_tokens::user_id.eq(actor.user_id),
                        api_tokens::name.eq(&name),
                        api_tokens::token_hash.eq(&token.hash),
                        api_tokens::token_prefix.eq(&token.display_prefix),
                    ))
                    .returning(ApiToken::as_returning())
                    .get_result(conn)
                    .await?)
            })
            .await?;
        Ok(CreateApiTokenPayload {
            api_token,
            secret: token.secret,
        })
    }

    /// Revokes an API token at once. Your own, or anyone's for admins.
    async fn revoke_api_token(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiToken> {
        let req = ctx.request();
        let actor = &req.actor().await?;
        let token_id = expect_global_id("id", &id, NodeType::ApiToken)?;
        let token = req
            .db
            .in_savepoint(async |conn| {
                let token: ApiToken = api_tokens::table
                    .find(token_id)
                    .select(ApiToken::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?
                    .filter(|t| t.user_id == actor.user_id || actor.role == Role::Admin)
                    .ok_or(AppError::NotFound { what: "API token" })?;
                if token.revoked_at.is_some() {
                    return Ok(token);
                }
                let token = diesel::update(api_tokens::table.find(token_id))
                    .set(api_tokens::revoked_at.eq(diesel::dsl::now))
                    .returning(ApiToken::as_returning())
                    .get_result(conn)
                    .await?;
                announce_auth_change(&req.db, conn, &req.services.shared::<ActorCache>()).await?;
                Ok(token)
            })
            .await?;
        Ok(token)
    }
}
