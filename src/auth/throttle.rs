//! Throttling of credential checks: wrong passwords per account and failed credentials per
//! client address, counted with governor's GCRA limiters. While an account or an address is
//! over its budget, a check is refused as `THROTTLED` (HTTP 429, `Retry-After`) without
//! being tried, so guessing goes no faster than the budget whatever the concurrency.
//!
//! Only failures count: an office behind one address signing in all at once is not slowed,
//! and a right password is never refused unless the account or the address was already
//! over its budget of wrong ones. Each account has one password check under way at a
//! time ([`CredentialThrottle::admit_password`]), so guesses sent at once cannot all pass
//! before the first failure is counted.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{AppError, AppResult};

/// An email longer than this names no account: its failures count on the address only.
pub const MAX_EMAIL_BYTES: usize = 320;

/// Whose failures one key counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// A tenant's account, by its email in lower case.
    Account(i64, String),
    Address(IpAddr),
}

/// The budgets, and who is over theirs until when.
pub struct CredentialThrottle {
    accounts: DefaultKeyedRateLimiter<Key>,
    addresses: DefaultKeyedRateLimiter<Key>,
    /// Keys over their budget, with the instant they may try again. Entries outlive their
    /// instant by at most the longest wait, then go.
    blocked: moka::sync::Cache<Key, Instant>,
    clock: DefaultClock,
    failures: AtomicU64,
    /// Accounts with a password check under way: one at a time each, so that every failure
    /// is counted before the next guess is tried, however many are sent at once.
    checking: std::sync::Mutex<std::collections::HashSet<Key>>,
}

/// An account's password check under way; the account is free again when it drops.
pub struct Checking<'a> {
    throttle: &'a CredentialThrottle,
    key: Option<Key>,
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.throttle.checking_accounts().remove(&key);
        }
    }
}

/// What limits the limiters' memory: every so many failures, keys whose budget is whole
/// again are dropped.
const SWEEP_EVERY: u64 = 1024;

impl CredentialThrottle {
    /// `per_account` wrong passwords per minute for one account (in one tenant), and
    /// `per_address` failed credential checks per minute from one client address; each may
    /// be spent at once, then comes back evenly over the minute.
    pub fn new(per_account: u32, per_address: u32) -> Self {
        let per_account = NonZeroU32::new(per_account).unwrap_or(NonZeroU32::MIN);
        let per_address = NonZeroU32::new(per_address).unwrap_or(NonZeroU32::MIN);
        Self {
            accounts: RateLimiter::keyed(Quota::per_minute(per_account)),
            addresses: RateLimiter::keyed(Quota::per_minute(per_address)),
            blocked: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            clock: DefaultClock::default(),
            failures: AtomicU64::new(0),
            checking: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    fn checking_accounts(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<Key>> {
        self.checking
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before a password check of an account: [`CredentialThrottle::admit`], and then the
    /// account's one check at a time, held until the returned guard drops (after the
    /// failure, if any, is counted). A second check of the same account meanwhile is
    /// `THROTTLED` for a second.
    pub fn admit_password(
        &self,
        tenant_id: i64,
        email: &str,
        address: Option<IpAddr>,
    ) -> AppResult<Checking<'_>> {
        self.admit(tenant_id, Some(email), address)?;
        let key = Self::keys(tenant_id, Some(email), None).into_iter().next();
        if let Some(key) = &key
            && !self.checking_accounts().insert(key.clone())
        {
            return Err(throttled(Duration::from_secs(1)));
        }
        Ok(Checking { throttle: self, key })
    }

    fn keys(tenant_id: i64, email: Option<&str>, address: Option<IpAddr>) -> Vec<Key> {
        let mut keys = Vec::with_capacity(2);
        if let Some(email) = email.map(str::trim).filter(|e| e.len() <= MAX_EMAIL_BYTES) {
            keys.push(Key::Account(tenant_id, email.to_lowercase()));
        }
        if let Some(address) = address {
            keys.push(Key::Address(address));
        }
        keys
    }

    /// Before a check: `THROTTLED` while the account (when an email is given) or the
    /// address is over its budget.
    pub fn admit(&self, tenant_id: i64, email: Option<&str>, address: Option<IpAddr>) -> AppResult<()> {
        let now = Instant::now();
        let wait = Self::keys(tenant_id, email, address)
            .iter()
            .filter_map(|key| self.blocked.get(key))
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => Err(throttled(wait)),
            None => Ok(()),
        }
    }

    /// After a failed check: counts it, and answers `THROTTLED` when it was one more than
    /// the account or the address may have.
    pub fn failed(&self, tenant_id: i64, email: Option<&str>, address: Option<IpAddr>) -> AppResult<()> {
        if self.failures.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.accounts.retain_recent();
            self.addresses.retain_recent();
        }
        let mut longest: Option<Duration> = None;
        for key in Self::keys(tenant_id, email, address) {
            let limiter = match key {
                Key::Account(..) => &self.accounts,
                Key::Address(_) => &self.addresses,
            };
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(self.clock.now());
                self.blocked.insert(key, Instant::now() + wait);
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
            }
        }
        match longest {
            Some(wait) => Err(throttled(wait)),
            None => Ok(()),
        }
    }
}

fn throttled(wait: Duration) -> AppError {
    // Whole seconds, rounded up: a client that waits as told is admitted.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    AppError::Throttled {
        retry_after_seconds: seconds.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_in_a_minute_is_throttled_and_blocks_the_account_only() {
        let throttle = CredentialThrottle::new(5, 100);
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..5 {
            throttle.admit(1, Some("Ann@Example.com"), address).unwrap();
            throttle.failed(1, Some("Ann@Example.com"), address).unwrap();
        }
        let sixth = throttle.failed(1, Some("ann@example.com "), address).unwrap_err();
        assert!(
            matches!(sixth, AppError::Throttled { retry_after_seconds } if (1..=12).contains(&retry_after_seconds))
        );
        // The same account, any casing: refused before it is tried.
        assert!(throttle.admit(1, Some("ANN@example.com"), address).is_err());
        // Another account, the same account in another tenant, and the address alone.
        throttle.admit(1, Some("bob@example.com"), address).unwrap();
        throttle.admit(2, Some("ann@example.com"), address).unwrap();
        throttle.admit(1, None, address).unwrap();
    }

    #[test]
    fn an_account_has_one_password_check_under_way_at_a_time() {
        let throttle = CredentialThrottle::new(5, 100);
        let first = throttle.admit_password(1, "ann@example.com", None).unwrap();
        assert!(matches!(
            throttle.admit_password(1, "ANN@example.com", None),
            Err(AppError::Throttled {
                retry_after_seconds: 1
            })
        ));
        // Another account, or the same email in another tenant, is not held up.
        let other = throttle.admit_password(1, "bob@example.com", None).unwrap();
        let elsewhere = throttle.admit_password(2, "ann@example.com", None).unwrap();
        drop((first, other, elsewhere));
        throttle.admit_password(1, "ann@example.com", None).unwrap();
    }

    #[test]
    fn an_address_over_its_budget_is_throttled_for_any_account() {
        let throttle = CredentialThrottle::new(5, 3);
        let address = Some(IpAddr::from([10, 0, 0, 2]));
        for n in 0..3 {
            throttle
                .failed(1, Some(&format!("user{n}@example.com")), address)
                .unwrap();
        }
        assert!(throttle.failed(1, Some("user9@example.com"), address).is_err());
        assert!(throttle.admit(1, Some("someone@example.com"), address).is_err());
        throttle
            .admit(1, Some("someone@example.com"), Some(IpAddr::from([10, 0, 0, 3])))
            .unwrap();
    }

    #[test]
    fn an_overlong_email_counts_on_the_address_only() {
        let throttle = CredentialThrottle::new(1, 100);
        let long = "a".repeat(MAX_EMAIL_BYTES + 1);
        for _ in 0..3 {
            throttle.failed(1, Some(&long), None).unwrap();
        }
    }
}
