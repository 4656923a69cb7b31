//! Each tenant's effective settings, cached in the process: nearly every request needs them
//! and they rarely change. A change publishes a notice on commit and every server drops its
//! copy; the server that made it drops its own right after commit as well.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use super::TenantSettings;

pub struct SettingsCache {
    entries: Cache<i64, Arc<TenantSettings>>,
    /// Bumped by every invalidation. A copy read from the database is kept only if no
    /// invalidation happened since the read began, so a read racing a change never leaves
    /// the old values behind.
    epoch: AtomicU64,
}

impl Default for SettingsCache {
    fn default() -> Self {
        Self {
            // The time-to-live bounds staleness should change notices stop arriving.
            entries: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            epoch: AtomicU64::new(0),
        }
    }
}

impl SettingsCache {
    pub fn get(&self, tenant_id: i64) -> Option<Arc<TenantSettings>> {
        self.entries.get(&tenant_id)
    }

    /// Take this before reading the settings from the database, and hand it to
    /// [`SettingsCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn insert(&self, tenant_id: i64, read_at_epoch: u64, settings: Arc<TenantSettings>) {
        if self.epoch() == read_at_epoch {
            self.entries.insert(tenant_id, settings);
            // An invalidation may have slipped in between the check and the insert.
            if self.epoch() != read_at_epoch {
                self.entries.invalidate(&tenant_id);
            }
        }
    }

    pub fn invalidate(&self, tenant_id: i64) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(&tenant_id);
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}
