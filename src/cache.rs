//! In-process caches of tenant data that stay true to the database: every change publishes
//! a [`crate::tenancy::changes::Notice`] on commit, and each server drops the affected
//! entries when it arrives (the server that made the change drops them right after its
//! commit as well). A time-to-live bounds staleness should notices stop arriving.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

pub struct CoherentCache<K, V> {
    entries: Cache<K, V>,
    /// Bumped by every invalidation. A value read from the database is kept only if no
    /// invalidation happened since the read began, so a read racing a change never leaves
    /// the old value behind.
    epoch: AtomicU64,
}

impl<K, V> CoherentCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(time_to_live: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(time_to_live)
                .build(),
            epoch: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key)
    }

    /// Take this before reading the value from the database, and hand it to
    /// [`CoherentCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn insert(&self, key: K, read_at_epoch: u64, value: V) {
        if self.epoch() != read_at_epoch {
            return;
        }
        self.entries.insert(key.clone(), value);
        // An invalidation may have slipped in between the check and the insert.
        if self.epoch() != read_at_epoch {
            self.entries.invalidate(&key);
        }
    }

    pub fn invalidate(&self, key: &K) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(key);
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}
