//! `tenants ...` and `migrate`: the registry and the schemas, for operators.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use super::{Failure, TenantsCommand, connect};
use crate::app::{self, FirstAdmin};
use crate::config::DatabaseConfig;
use crate::tenancy::registry::{self, NewTenant, RegistryError, TenantStatus};
use crate::tenancy::{self, SchemaName, migrations};

pub(super) async fn migrate(
    mut db: DatabaseConfig,
    jobs: usize,
    schema: Option<String>,
) -> Result<(), Failure> {
    let only = match schema {
        Some(raw) => Some(
            SchemaName::parse(&raw).map_err(|source| RegistryError::InvalidSchema { name: raw, source })?,
        ),
        None => None,
    };
    let jobs = jobs.max(1);
    db.pool_size = jobs + 1;
    let pool = tenancy::build_pool(&db.direct_only())?;
    let started = Instant::now();
    let (public, outcomes) =
        migrations::migrate_all(
            &pool,
            jobs,
            only.as_ref(),
            |done, total, outcome| match &outcome.result {
                Ok(applied) if applied.is_empty() => {
                    if done == total || done % 100 == 0 {
                        eprintln!("[{done}/{total}] tenants checked");
                    }
                }
                Ok(applied) => eprintln!(
                    "[{done}/{total}] {}: applied {}",
                    outcome.schema,
                    applied.join(", ")
                ),
                Err(e) => eprintln!("[{done}/{total}] {}: FAILED: {e}", outcome.schema),
            },
        )
        .await
        .map_err(|e| Failure {
            code: 1,
            message: format!("migrating public: {e}"),
        })?;
    if !public.is_empty() {
        eprintln!("public: applied {}", public.join(", "));
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.schema.as_str())
        .collect();
    let changed = outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_ok_and(|a| !a.is_empty()))
        .count();
    eprintln!(
        "{} tenants: {changed} migrated, {} up to date, {} failed ({:.2} s)",
        outcomes.len(),
        outcomes.len() - changed - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(only) = &only
        && outcomes.is_empty()
    {
        return Err(RegistryError::UnknownTenant(only.to_string()).into());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: format!("migration failed for: {}", failed.join(", ")),
        })
    }
}

pub(super) async fn tenants(command: TenantsCommand) -> Result<(), Failure> {
    match command {
        TenantsCommand::Create {
            db,
            schema,
            host,
            name,
            admin_email,
            admin_name,
            admin_password,
            if_not_exists,
        } => {
            let new = NewTenant::parse(&schema, &name, &host)?;
            let mut conn = connect(&db).await?;
            migrations::migrate_public(&mut conn)
                .await
                .map_err(anyhow::Error::from)?;
            if if_not_exists
                && registry::find_by_schema(&mut conn, new.schema.as_str())
                    .await
                    .map_err(anyhow::Error::from)?
                    .is_some()
            {
                eprintln!("tenant {} already exists", new.schema);
                return Ok(());
            }
            let started = Instant::now();
            let admin = FirstAdmin {
                email: admin_email,
                name: admin_name,
                password: admin_password,
            };
            let tenant = app::create_tenant(&mut conn, &new, admin).await?;
            eprintln!(
                "created tenant {} ({}) at {} in {} ms",
                tenant.schema,
                tenant.name,
                new.host,
                started.elapsed().as_millis()
            );
            Ok(())
        }
        TenantsCommand::List { db, json } => {
            let mut conn = connect(&db).await?;
            let tenants = registry::list(&mut conn).await.map_err(anyhow::Error::from)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&tenants).map_err(anyhow::Error::from)?
                );
            } else {
                println!(
                    "{:<24} {:<10} {:<30} {:<30} HOSTS",
                    "SCHEMA", "STATUS", "NAME", "PRIMARY HOST"
                );
                for t in tenants {
                    println!(
                        "{:<24} {:<10} {:<30} {:<30} {}",
                        t.schema,
                        t.status.as_str(),
                        t.name,
                        t.primary_host.as_deref().unwrap_or("-"),
                        t.hosts.join(",")
                    );
                }
            }
            Ok(())
        }
        TenantsCommand::Suspend { db, schema } => {
            registry::set_status(&mut connect(&db).await?, &schema, TenantStatus::Suspended).await?;
            eprintln!("tenant {schema} suspended");
            Ok(())
        }
        TenantsCommand::Resume { db, schema } => {
            registry::set_status(&mut connect(&db).await?, &schema, TenantStatus::Active).await?;
            eprintln!("tenant {schema} resumed");
            Ok(())
        }
        TenantsCommand::Delete { db, schema, yes } => {
            if !yes
                && !confirm(
                    &format!("Delete tenant '{schema}' and ALL its data? Type the schema name to confirm: "),
                    &schema,
                )
            {
                return Err(Failure {
                    code: 2,
                    message: "not confirmed; nothing deleted".to_owned(),
                });
            }
            registry::delete(&mut connect(&db).await?, &schema).await?;
            eprintln!("tenant {schema} deleted");
            Ok(())
        }
        TenantsCommand::AddHost {
            db,
            schema,
            host,
            primary,
        } => {
            let host = registry::add_host(&mut connect(&db).await?, &schema, &host, primary).await?;
            eprintln!("tenant {schema} now serves {host}");
            Ok(())
        }
        TenantsCommand::MoveHost {
            db,
            host,
            to,
            primary,
        } => {
            registry::move_host(&mut connect(&db).await?, &host, &to, primary).await?;
            eprintln!("host {host} now serves {to}");
            Ok(())
        }
        TenantsCommand::RemoveHost { db, schema, host } => {
            registry::remove_host(&mut connect(&db).await?, &schema, &host).await?;
            eprintln!("tenant {schema} no longer serves {host}");
            Ok(())
        }
    }
}

/// Asks on the terminal; without one (a script, CI) the answer is no.
fn confirm(prompt: &str, expected: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim() == expected
}
