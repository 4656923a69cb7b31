//! Which tenant a request is for, from its `Host` header.
//!
//! A `Host` that is not a DNS name a tenant could have (too long, other characters, a port
//! that is not a number) is refused before anything is looked up or kept. Answers are
//! cached per host: tenants found in one cache, hosts that name no tenant in another,
//! bounded by the bytes of the names it keeps, so a flood of made-up hosts costs a lookup
//! each and a bounded amount of memory, and never pushes out the tenants. A registry change
//! anywhere (this process or the CLI) publishes a [`super::changes::Notice`] that empties
//! both; a time-to-live bounds staleness should the listening connection be down.

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

/// How long a host that names no tenant is remembered as such.
const UNKNOWN_TTL: Duration = Duration::from_secs(60);

/// Bytes of host names the cache of unknown hosts keeps at most.
const UNKNOWN_BYTES: u64 = 1024 * 1024;

/// The longest DNS name, and the longest `Host` header that may carry one (with `:65535`).
const MAX_NAME: usize = 253;
const MAX_HEADER: usize = MAX_NAME + 6;

/// Whether `host` (lower-cased, without port or trailing dot) is a DNS name a tenant may
/// have: labels of letters, digits and inner hyphens, at most 63 bytes each, 253 in all.
pub fn is_dns_name(host: &str) -> bool {
    host.len() <= MAX_NAME
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Lower-cases a `Host` header and strips its port and any trailing dot. `None` when there is
/// nothing left that could name a host.
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > MAX_HEADER {
        return None;
    }
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
    known: Cache<String, Arc<Tenant>>,
    unknown: Cache<String, ()>,
}

impl TenantResolver {
    pub fn new(pool: DbPool) -> Arc<Self> {
        Arc::new(Self {
            pool,
            known: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            unknown: Cache::builder()
                .weigher(|host: &String, _| u32::try_from(host.len() + 64).unwrap_or(u32::MAX))
                .max_capacity(UNKNOWN_BYTES)
                .time_to_live(UNKNOWN_TTL)
                .build(),
        })
    }

    /// The active tenant at `host_header`, or `TENANT_NOT_FOUND` / `TENANT_SUSPENDED`.
    /// Only `public` is read: an unknown host touches no tenant schema, and a header that
    /// cannot be a tenant's host touches nothing.
    pub async fn resolve(&self, host_header: &str) -> AppResult<Arc<Tenant>> {
        let host = normalize_host(host_header)
            .filter(|host| is_dns_name(host))
            .ok_or(AppError::TenantNotFound)?;
        if self.unknown.contains_key(&host) {
            return Err(AppError::TenantNotFound);
        }
        // Concurrent first requests for one host share one look-up.
        let tenant = self
            .known
            .try_get_with(host.clone(), async {
                let found = self
                    .pool
                    .transaction(async |conn| Ok(registry::find_by_host(conn, &host).await?))
                    .await?;
                match found {
                    Some(tenant) => Ok(Arc::new(tenant)),
                    None => {
                        self.unknown.insert(host.clone(), ()).await;
                        Err(AppError::TenantNotFound)
                    }
                }
            })
            .await
            .map_err(|e: Arc<AppError>| match &*e {
                AppError::Unavailable => AppError::Unavailable,
                AppError::TenantNotFound => AppError::TenantNotFound,
                other => AppError::internal(anyhow::anyhow!("resolving tenant: {other:?}")),
            })?;
        if tenant.status == TenantStatus::Suspended {
            return Err(AppError::TenantSuspended);
        }
        Ok(tenant)
    }

    pub fn invalidate_all(&self) {
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::{is_dns_name, normalize_host};

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
        assert_eq!(normalize_host(&"a".repeat(300_000)).as_deref(), None);
    }

    #[test]
    fn only_dns_names_can_be_tenant_hosts() {
        for good in [
            "acme.example.com",
            "a",
            "x-1.test",
            &format!("{}.com", "a".repeat(63)),
        ] {
            assert!(is_dns_name(good), "{good}");
        }
        let long = vec!["a".repeat(60); 5].join(".");
        for bad in [
            "",
            "[::1]",
            "a..b",
            "-a.com",
            "a-.com",
            "a_b.com",
            "a b",
            "acme\u{0}.com",
            "ü.com",
            &format!("{}.com", "a".repeat(64)),
            &long,
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }
}
