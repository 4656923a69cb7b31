//! Users of one tenant: the rows, the rules, the statements.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Role;
use super::password;
use crate::config::Secret;
use crate::db::functions::lower;
use crate::db::schema::users;
use crate::db::{Keyset, keyset_page};
use crate::db::{contains_pattern, unique_conflict};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    #[diesel(deserialize_as = String)]
    pub role: RoleColumn,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The version this user's login tokens must carry.
    pub token_version: i64,
}

// The columns a page of entries reads of its entries' users, by the fields that read them
// (see `crate::db::columns`).
crate::db::columns::read_in_part!(User, "u", "users", blank: User {
    id: 0,
    email: String::new(),
    name: String::new(),
    role: RoleColumn(Role::Member),
    active: false,
    created_at: DateTime::UNIX_EPOCH,
    updated_at: DateTime::UNIX_EPOCH,
    token_version: 0,
}, {
    id: BigInt => key,
    email: Text => ["email"],
    name: Text => ["name"],
    role: Text as String => ["role"],
    active: Bool => ["active"],
    created_at: Timestamptz => ["createdAt"],
    updated_at: Timestamptz => ["updatedAt"],
    // No field shows it: read only with every column (a whole user).
    token_version: BigInt => [],
});

/// The `role` column read into a [`Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleColumn(pub Role);

impl From<String> for RoleColumn {
    fn from(raw: String) -> Self {
        Self(Role::from_db(&raw))
    }
}

pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: Secret,
}

/// Trims and checks an email address; the casing typed is kept.
pub fn normalize_email(field: &str, raw: &str) -> AppResult<String> {
    let email = raw.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(AppError::bad_input(field, "not a valid email address"));
    }
    Ok(email.to_owned())
}

/// A user's name trimmed: at most 200 characters, none of them control characters.
pub fn normalize_name(field: &str, raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.chars().count() > 200 {
        return Err(AppError::bad_input(field, "a name has at most 200 characters"));
    }
    crate::text::no_control_characters(field, name)?;
    Ok(name.to_owned())
}

/// Validates and hashes a new user's fields: all the slow work, done before any transaction.
pub async fn prepare(input: NewUser, field_prefix: &str) -> AppResult<PreparedUser> {
    let email = normalize_email(&format!("{field_prefix}email"), &input.email)?;
    let name = normalize_name(&format!("{field_prefix}name"), &input.name)?;
    password::validate_new_password(&format!("{field_prefix}password"), &input.password)?;
    let password_hash = password::hash(input.password).await?;
    Ok(PreparedUser {
        email,
        name,
        role: input.role,
        password_hash,
        email_field: format!("{field_prefix}email"),
    })
}

pub struct PreparedUser {
    email: String,
    name: String,
    role: Role,
    password_hash: String,
    email_field: String,
}

/// Inserts a prepared user in the current tenant. An email taken in any casing is a conflict.
pub async fn insert(conn: &mut AsyncPgConnection, user: &PreparedUser) -> AppResult<User> {
    diesel::insert_into(users::table)
        .values((
            users::email.eq(&user.email),
            users::name.eq(&user.name),
            users::role.eq(user.role.as_str()),
            users::password_hash.eq(&user.password_hash),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| {
            unique_conflict(e, None, Some(&user.email_field), || {
                format!("a user with email {} already exists", user.email)
            })
        })
}

/// The user with this email, ignoring case, with the stored password hash.
pub async fn find_for_login(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> AppResult<Option<(User, Option<String>)>> {
    Ok(users::table
        .filter(lower(users::email).eq(lower(email)))
        .select((User::as_select(), users::password_hash))
        .first(conn)
        .await
        .optional()?)
}

#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Matches email or name, ignoring case.
    pub search: Option<String>,
}

/// A page of users ordered by id, after `after_id`; one more than `limit` tells if more exist.
pub async fn page(
    mut conn: &AsyncPgConnection,
    filter: &UserFilter,
    keyset: Keyset,
) -> QueryResult<Vec<User>> {
    let mut query = keyset_page!(users, User, keyset);
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(active) = filter.active {
        query = query.filter(users::active.eq(active));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = contains_pattern(search);
        query = query.filter(users::email.ilike(pattern.clone()).or(users::name.ilike(pattern)));
    }
    query.load(&mut conn).await
}

/// The users of `ids` that exist.
pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[i64]) -> AppResult<Vec<User>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// An active user's address and name, to write to; `None` for one deactivated or gone.
pub async fn contact(conn: &mut AsyncPgConnection, user_id: i64) -> AppResult<Option<(String, String)>> {
    Ok(users::table
        .find(user_id)
        .filter(users::active.eq(true))
        .select((users::email, users::name))
        .first(conn)
        .await
        .optional()?)
}
