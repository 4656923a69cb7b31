//! The tenant registry in `public`: tenants, their hosts, and their lifecycle.
//! Every change here publishes a [`Notice::Registry`] so running servers drop their cached
//! view of it.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::Bool;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::changes::{self, Notice};
use super::{SchemaName, SchemaNameError, in_transaction, is_dns_name, normalize_host};
use crate::config::ServiceConfig;
use crate::db::is_unique_violation;
use crate::db::schema::{tenant_hosts, tenants};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TenantStatus {
    Active,
    Suspended,
}

crate::db::stored_as_text!(TenantStatus, default Active, {
    Active => "ACTIVE",
    Suspended => "SUSPENDED",
});

/// A tenant as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: i64,
    pub schema: SchemaName,
    pub name: String,
    pub status: TenantStatus,
    pub primary_host: Option<String>,
}

/// Where a tenant is reached, derived from the tenant itself and never stored or set by
/// it: the site its emails link to and the address they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSite {
    pub site_url: String,
    pub default_from_email: String,
}

impl Tenant {
    pub fn site(&self, config: &ServiceConfig) -> TenantSite {
        let host = self
            .primary_host
            .clone()
            .unwrap_or_else(|| format!("{}.invalid", self.schema));
        let port = config
            .public_url_port
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        TenantSite {
            site_url: format!("{}://{host}{port}", config.public_url_scheme),
            default_from_email: format!("no-reply@{host}"),
        }
    }
}

/// A tenant as the operator lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantListing {
    pub id: i64,
    pub schema: String,
    pub name: String,
    pub status: TenantStatus,
    pub hosts: Vec<String>,
    pub primary_host: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid schema name '{name}': {source}")]
    InvalidSchema { name: String, source: SchemaNameError },
    #[error("invalid host '{0}': use a DNS name such as acme.example.com")]
    InvalidHost(String),
    #[error("invalid tenant name: it must have 1 to 200 characters")]
    InvalidName,
    #[error("a tenant with schema '{0}' already exists")]
    DuplicateSchema(String),
    #[error("host '{0}' already belongs to a tenant")]
    DuplicateHost(String),
    #[error("a schema named '{0}' already exists in the database")]
    SchemaExists(String),
    #[error("no tenant with schema '{0}'")]
    UnknownTenant(String),
    #[error("host '{host}' does not belong to tenant '{schema}'")]
    UnknownHost { schema: String, host: String },
    #[error("host '{0}' is the tenant's primary host; make another host primary first")]
    PrimaryHost(String),
    #[error("database error: {0}")]
    Database(#[from] DieselError),
}

impl RegistryError {
    /// Errors caused by the operator's input, as opposed to the system failing.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Database(_))
    }
}

pub struct NewTenant {
    pub schema: SchemaName,
    pub name: String,
    pub host: String,
}

impl NewTenant {
    pub fn parse(schema: &str, name: &str, host: &str) -> Result<Self, RegistryError> {
        let schema = SchemaName::parse(schema).map_err(|source| RegistryError::InvalidSchema {
            name: schema.to_owned(),
            source,
        })?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(RegistryError::InvalidName);
        }
        Ok(Self {
            schema,
            name: name.to_owned(),
            host: parse_host(host)?,
        })
    }
}

pub fn parse_host(raw: &str) -> Result<String, RegistryError> {
    let host = normalize_host(raw).ok_or_else(|| RegistryError::InvalidHost(raw.to_owned()))?;
    if !is_dns_name(&host) || raw.contains(':') {
        return Err(RegistryError::InvalidHost(raw.to_owned()));
    }
    Ok(host)
}

type TenantRow = (i64, String, String, String);

fn tenant_from_row((id, schema, name, status): TenantRow, primary_host: Option<String>) -> Tenant {
    Tenant {
        id,
        // The table's check constraint holds the same rule, so a stored name always parses.
        schema: SchemaName::parse(&schema).expect("registry holds only valid schema names"),
        name,
        status: TenantStatus::from_db(&status),
        primary_host,
    }
}

/// The tenant served at `host` (already normalised), with its primary host.
pub async fn find_by_host(conn: &mut AsyncPgConnection, host: &str) -> QueryResult<Option<Tenant>> {
    let row: Option<TenantRow> = tenant_hosts::table
        .inner_join(tenants::table)
        .filter(tenant_hosts::host.eq(host))
        .select((tenants::id, tenants::schema_name, tenants::name, tenants::status))
        .first(conn)
        .await
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let primary = primary_host(conn, row.0).await?;
    Ok(Some(tenant_from_row(row, primary)))
}

pub async fn find_by_schema(conn: &mut AsyncPgConnection, schema: &str) -> QueryResult<Option<Tenant>> {
    find(conn, Box::new(tenants::schema_name.eq(schema.to_owned()))).await
}

pub async fn find_by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Tenant>> {
    find(conn, Box::new(tenants::id.eq(id))).await
}

/// Tenants by id, with their primary hosts, in two statements.
pub async fn find_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, Tenant>> {
    let rows: Vec<TenantRow> = tenants::table
        .filter(tenants::id.eq_any(ids))
        .select((tenants::id, tenants::schema_name, tenants::name, tenants::status))
        .load(conn)
        .await?;
    let hosts: Vec<(i64, String)> = tenant_hosts::table
        .filter(tenant_hosts::tenant_id.eq_any(ids))
        .filter(tenant_hosts::is_primary.eq(true))
        .select((tenant_hosts::tenant_id, tenant_hosts::host))
        .load(conn)
        .await?;
    let hosts: std::collections::HashMap<i64, String> = hosts.into_iter().collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let primary = hosts.get(&row.0).cloned();
            (row.0, tenant_from_row(row, primary))
        })
        .collect())
}

/// The one tenant matching `predicate`, with its primary host.
async fn find(
    conn: &mut AsyncPgConnection,
    predicate: Box<dyn BoxableExpression<tenants::table, Pg, SqlType = Bool>>,
) -> QueryResult<Option<Tenant>> {
    let row: Option<TenantRow> = tenants::table
        .into_boxed()
        .filter(predicate)
        .select((tenants::id, tenants::schema_name, tenants::name, tenants::status))
        .first(conn)
        .await
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let primary = primary_host(conn, row.0).await?;
    Ok(Some(tenant_from_row(row, primary)))
}

async fn primary_host(conn: &mut AsyncPgConnection, tenant_id: i64) -> QueryResult<Option<String>> {
    tenant_hosts::table
        .filter(tenant_hosts::tenant_id.eq(tenant_id))
        .filter(tenant_hosts::is_primary.eq(true))
        .select(tenant_hosts::host)
        .first(conn)
        .await
        .optional()
}

/// Every tenant's schema, for work that visits them all.
pub async fn all_schemas(conn: &mut AsyncPgConnection) -> QueryResult<Vec<SchemaName>> {
    let names: Vec<String> = tenants::table
        .select(tenants::schema_name)
        .order(tenants::schema_name)
        .load(conn)
        .await?;
    Ok(names
        .iter()
        .map(|n| SchemaName::parse(n).expect("registry holds only valid schema names"))
        .collect())
}

pub async fn list(conn: &mut AsyncPgConnection) -> QueryResult<Vec<TenantListing>> {
    let rows: Vec<(i64, String, String, String, DateTime<Utc>)> = tenants::table
        .select((
            tenants::id,
            tenants::schema_name,
            tenants::name,
            tenants::status,
            tenants::created_at,
        ))
        .order(tenants::schema_name)
        .load(conn)
        .await?;
    let hosts: Vec<(i64, String, bool)> = tenant_hosts::table
        .select((
            tenant_hosts::tenant_id,
            tenant_hosts::host,
            tenant_hosts::is_primary,
        ))
        .order((
            tenant_hosts::tenant_id,
            tenant_hosts::is_primary.desc(),
            tenant_hosts::host,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, schema, name, status, created_at)| {
            let own: Vec<&(i64, String, bool)> = hosts.iter().filter(|h| h.0 == id).collect();
            TenantListing {
                id,
                schema,
                name,
                status: TenantStatus::from_db(&status),
                primary_host: own.iter().find(|h| h.2).map(|h| h.1.clone()),
                hosts: own.iter().map(|h| h.1.clone()).collect(),
                created_at,
            }
        })
        .collect())
}

pub(super) async fn insert_host(
    conn: &mut AsyncPgConnection,
    tenant_id: i64,
    host: &str,
    primary: bool,
) -> Result<(), RegistryError> {
    if primary {
        diesel::update(tenant_hosts::table.filter(tenant_hosts::tenant_id.eq(tenant_id)))
            .set(tenant_hosts::is_primary.eq(false))
            .execute(conn)
            .await?;
    }
    diesel::insert_into(tenant_hosts::table)
        .values((
            tenant_hosts::host.eq(host),
            tenant_hosts::tenant_id.eq(tenant_id),
            tenant_hosts::is_primary.eq(primary),
        ))
        .execute(conn)
        .await
        .map_err(|e| unique_violation(e, || RegistryError::DuplicateHost(host.to_owned())))?;
    Ok(())
}

pub(super) fn unique_violation(e: DieselError, conflict: impl FnOnce() -> RegistryError) -> RegistryError {
    if is_unique_violation(&e, None) {
        conflict()
    } else {
        RegistryError::Database(e)
    }
}

pub(super) async fn notify(conn: &mut AsyncPgConnection, tenant_id: i64) -> QueryResult<()> {
    changes::publish(conn, Notice::Registry(tenant_id)).await
}

/// The tenant's id and schema, its registry row locked until the transaction ends.
async fn lock_tenant(conn: &mut AsyncPgConnection, schema: &str) -> Result<(i64, SchemaName), RegistryError> {
    let id = tenants::table
        .filter(tenants::schema_name.eq(schema))
        .select(tenants::id)
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| RegistryError::UnknownTenant(schema.to_owned()))?;
    Ok((
        id,
        SchemaName::parse(schema).expect("registry holds only valid schema names"),
    ))
}

/// Suspends or reactivates a tenant. A suspended tenant's requests are refused.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    schema: &str,
    status: TenantStatus,
) -> Result<(), RegistryError> {
    in_transaction(conn, async |conn| {
        let (id, _) = lock_tenant(conn, schema).await?;
        let suspended_at = (status == TenantStatus::Suspended).then(Utc::now);
        diesel::update(tenants::table.find(id))
            .set((
                tenants::status.eq(status.as_str()),
                tenants::suspended_at.eq(suspended_at),
            ))
            .execute(conn)
            .await?;
        notify(conn, id).await?;
        Ok(())
    })
    .await
}

/// Drops the tenant's schema and everything in it, and its registry entry.
pub async fn delete(conn: &mut AsyncPgConnection, schema: &str) -> Result<(), RegistryError> {
    in_transaction(conn, async |conn| {
        let (id, name) = lock_tenant(conn, schema).await?;
        conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", name.quoted()))
            .await?;
        diesel::delete(tenants::table.find(id)).execute(conn).await?;
        notify(conn, id).await?;
        Ok(())
    })
    .await
}

/// Adds a host to a tenant (optionally as its new primary host).
pub async fn add_host(
    conn: &mut AsyncPgConnection,
    schema: &str,
    host: &str,
    primary: bool,
) -> Result<String, RegistryError> {
    let host = parse_host(host)?;
    in_transaction(conn, async |conn| {
        let (id, _) = lock_tenant(conn, schema).await?;
        insert_host(conn, id, &host, primary).await?;
        notify(conn, id).await?;
        Ok(host.clone())
    })
    .await
}

/// Moves an existing host to another tenant (it stops serving the old one at once).
pub async fn move_host(
    conn: &mut AsyncPgConnection,
    host: &str,
    to_schema: &str,
    primary: bool,
) -> Result<(), RegistryError> {
    let host = parse_host(host)?;
    in_transaction(conn, async |conn| {
        let (to, _) = lock_tenant(conn, to_schema).await?;
        let current: Option<(i64, bool)> = tenant_hosts::table
            .find(&host)
            .select((tenant_hosts::tenant_id, tenant_hosts::is_primary))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        match current {
            None => {
                return Err(RegistryError::UnknownHost {
                    schema: to_schema.to_owned(),
                    host: host.clone(),
                });
            }
            Some((_, true)) => return Err(RegistryError::PrimaryHost(host.clone())),
            Some(_) => {}
        }
        diesel::delete(tenant_hosts::table.find(&host))
            .execute(conn)
            .await?;
        insert_host(conn, to, &host, primary).await?;
        notify(conn, to).await?;
        Ok(())
    })
    .await
}

/// Removes a host from a tenant. The primary host cannot be removed.
pub async fn remove_host(
    conn: &mut AsyncPgConnection,
    schema: &str,
    host: &str,
) -> Result<(), RegistryError> {
    let host = parse_host(host)?;
    in_transaction(conn, async |conn| {
        let (id, _) = lock_tenant(conn, schema).await?;
        let is_primary: Option<bool> = tenant_hosts::table
            .filter(tenant_hosts::host.eq(&host))
            .filter(tenant_hosts::tenant_id.eq(id))
            .select(tenant_hosts::is_primary)
            .first(conn)
            .await
            .optional()?;
        match is_primary {
            None => {
                return Err(RegistryError::UnknownHost {
                    schema: schema.to_owned(),
                    host: host.clone(),
                });
            }
            Some(true) => return Err(RegistryError::PrimaryHost(host.clone())),
            Some(false) => {}
        }
        diesel::delete(tenant_hosts::table.find(&host))
            .execute(conn)
            .await?;
        notify(conn, id).await?;
        Ok(())
    })
    .await
}
