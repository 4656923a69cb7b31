//! Which tenant a request is for, from its `Host` header.
//!
//! Answers (found or not) are cached per host. A registry change anywhere (this process or
//! the CLI) publishes a [`super::changes::Notice`] that empties the cache; a time-to-live
//! bounds staleness should the listening connection be down.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use super::Tenant;
use super::pool::DbPool;
use super::registry::{self, TenantStatus};
use crate::error::{AppError, AppResult};

/// A backstop only: change notices invalidate, and a listener that may have missed one
/// flushes everything.
const CACHE_TTL: Duration = Duration::from_secs(600);

/// Lower-cases a `Host` header and strips its port and any trailing dot. `None` when there is
/// nothing left that could name a host.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let without_port = if let Some(rest) = raw.strip_prefix('[') {
        // An IPv6 literal: keep the brackets, drop the port.
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = without_port.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

pub struct TenantResolver {
    pool: DbPool,
    cache: Cache<String, Option<Arc<Tenant>>>,
}

impl TenantResolver {
    pub fn new(pool: DbPool) -> Arc<Self> {
        Arc::new(Self {
            pool,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
        })
    }

    /// The active tenant at `host_header`, or `TENANT_NOT_FOUND` / `TENANT_SUSPENDED`.
    /// Only `public` is read: an unknown host touches no tenant schema.
    pub async fn resolve(&self, host_header: &str) -> AppResult<Arc<Tenant>> {
        let host = normalize_host(host_header).ok_or(AppError::TenantNotFound)?;
        let pool = self.pool.clone();
        let found = self
            .cache
            .try_get_with(host.clone(), async move {
                let tenant = pool
                    .transaction(async |conn| Ok(registry::find_by_host(conn, &host).await?))
                    .await?;
                Ok::<_, AppError>(tenant.map(Arc::new))
            })
            .await
            .map_err(|e: Arc<AppError>| match &*e {
                AppError::Unavailable => AppError::Unavailable,
                other => AppError::internal(anyhow::anyhow!("resolving tenant: {other:?}")),
            })?;
        match found {
            None => Err(AppError::TenantNotFound),
            Some(t) if t.status == TenantStatus::Suspended => Err(AppError::TenantSuspended),
            Some(t) => Ok(t),
        }
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_host;

    #[test]
    fn strips_port_case_and_trailing_dot() {
        assert_eq!(
            normalize_host("Demo.LocalHost:8080").as_deref(),
            Some("demo.localhost")
        );
        assert_eq!(
            normalize_host("acme.example.com.").as_deref(),
            Some("acme.example.com")
        );
        assert_eq!(normalize_host("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(normalize_host("").as_deref(), None);
        assert_eq!(normalize_host("a:b").as_deref(), None);
    }
}
