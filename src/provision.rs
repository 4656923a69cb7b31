//! Creating a tenant ready to use: registry entry, migrated schema and first admin, in one
//! transaction. The CLI and the tests both come through here.

use diesel_async::AsyncPgConnection;

use crate::auth::Role;
use crate::auth::users::{self, NewUser};
use crate::config::Secret;
use crate::tenancy::Tenant;
use crate::tenancy::registry::{self, NewTenant, RegistryError};

pub struct FirstAdmin {
    pub email: String,
    pub name: String,
    pub password: Secret,
}

pub async fn create_tenant(
    conn: &mut AsyncPgConnection,
    tenant: &NewTenant,
    admin: FirstAdmin,
) -> Result<Tenant, RegistryError> {
    // Hashing is slow, so it happens before the transaction opens.
    let admin = users::prepare(
        NewUser {
            email: admin.email,
            name: admin.name,
            role: Role::Admin,
            password: admin.password,
        },
        "admin-",
    )
    .await
    .map_err(RegistryError::Seed)?;
    registry::create(conn, tenant, async |c| users::insert(c, &admin).await.map(|_| ())).await
}
