//! Creating a tenant ready to use: its registry row and primary host, its schema with every
//! migration, then whatever the layers above seed it with (the first admin), all in one
//! transaction. Any failure leaves nothing behind. The CLI and the tests both come through
//! here (by way of [`crate::app::create_tenant`]).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use super::migrations::{self, MigrationError};
use super::registry::{self, NewTenant, RegistryError, Tenant, TenantStatus};
use super::{enter_schema, in_transaction};
use crate::db::schema::tenants;
use crate::error::AppError;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("setting up the tenant failed: {}", .0.message())]
    Seed(AppError),
}

impl From<DieselError> for ProvisionError {
    fn from(e: DieselError) -> Self {
        Self::Registry(RegistryError::Database(e))
    }
}

impl ProvisionError {
    /// Errors caused by the operator's input, as opposed to the system failing.
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Registry(e) => e.is_user_error(),
            Self::Migration(_) => false,
            Self::Seed(e) => matches!(e, AppError::BadUserInput { .. } | AppError::Conflict { .. }),
        }
    }
}

/// Creates the tenant `new`, then runs `seed` inside its schema, in one transaction.
pub async fn create_tenant<F>(
    conn: &mut AsyncPgConnection,
    new: &NewTenant,
    seed: F,
) -> Result<Tenant, ProvisionError>
where
    F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<(), AppError>,
{
    in_transaction(conn, async |conn| {
        let schema_taken: bool = diesel::select(diesel::dsl::exists(
            tenants::table.filter(tenants::schema_name.eq(new.schema.as_str())),
        ))
        .get_result(conn)
        .await?;
        if schema_taken {
            return Err(RegistryError::DuplicateSchema(new.schema.to_string()).into());
        }
        let id: i64 = diesel::insert_into(tenants::table)
            .values((
                tenants::schema_name.eq(new.schema.as_str()),
                tenants::name.eq(&new.name),
            ))
            .returning(tenants::id)
            .get_result(conn)
            .await
            .map_err(|e| {
                registry::unique_violation(e, || RegistryError::DuplicateSchema(new.schema.to_string()))
            })?;
        registry::insert_host(conn, id, &new.host, true).await?;
        conn.batch_execute(&format!("CREATE SCHEMA {}", new.schema.quoted()))
            .await
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                    if info.message().contains("already exists") =>
                {
                    RegistryError::SchemaExists(new.schema.to_string())
                }
                other => RegistryError::Database(other),
            })?;
        enter_schema(conn, &new.schema).await?;
        migrations::install_tenant(conn).await?;
        seed(conn).await.map_err(ProvisionError::Seed)?;
        registry::notify(conn, id).await?;
        Ok(Tenant {
            id,
            schema: new.schema.clone(),
            name: new.name.clone(),
            status: TenantStatus::Active,
            primary_host: Some(new.host.clone()),
        })
    })
    .await
}
