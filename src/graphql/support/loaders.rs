//! Request loaders: each request builds its own on first use (see
//! [`super::RequestContext::loader`]), so no cache of one tenant's rows can serve another.
//! [`ById`] and [`Grouped`] load any row type that says how it is fetched; a domain with a
//! batch of another shape implements async-graphql's `Loader` itself.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_graphql::dataloader::Loader as BatchFn;
use diesel_async::AsyncPgConnection;
use futures_util::FutureExt;
use tokio::sync::oneshot;

use super::batch::Batcher;
use crate::error::{AppError, AppResult};
use crate::tenancy::TenantDb;

/// A key a request's loaders look rows up by.
pub trait Key: Send + Sync + std::hash::Hash + Eq + Clone + 'static {}
impl<K: Send + Sync + std::hash::Hash + Eq + Clone + 'static> Key for K {}

/// A request loader's batch function, failing as the service's loaders do.
pub trait BatchLoader<K: Key>: BatchFn<K, Error = Arc<AppError>> {}
impl<K: Key, T: BatchFn<K, Error = Arc<AppError>>> BatchLoader<K> for T {}

/// A request's loader of rows by key: caching what it loaded for the rest of the request,
/// so a resolver can load a whole page's relations in one batch and each row then finds its
/// own. Keys asked for while the request runs go in one batch when it next waits
/// ([`super::batch`]).
pub struct Loader<T: BatchLoader<K>, K: Key = i64> {
    batch: T,
    batcher: Arc<Batcher>,
    state: Mutex<LoaderState<K, T::Value>>,
}

type Loaded<V> = Result<Option<V>, Arc<AppError>>;

struct LoaderState<K, V> {
    /// What was loaded or fed. A key with no row is not kept: a later field of the
    /// request (after a mutation, say) asks again.
    found: HashMap<K, V>,
    /// Who waits for each key being loaded or queued.
    waiting: HashMap<K, Vec<oneshot::Sender<Loaded<V>>>>,
    /// Keys asked for and not yet in a batch.
    queued: Vec<K>,
}

impl<T: BatchLoader<K>, K: Key> Loader<T, K> {
    pub(super) fn new(batch: T, batcher: Arc<Batcher>) -> Self {
        Self {
            batch,
            batcher,
            state: Mutex::new(LoaderState {
                found: HashMap::new(),
                waiting: HashMap::new(),
                queued: Vec::new(),
            }),
        }
    }

    /// The batch function itself, for a caller that has every key at hand.
    pub fn loader(&self) -> &T {
        &self.batch
    }

    /// The row under `key`, from this request's cache or the next batch.
    pub async fn load_one(self: &Arc<Self>, key: K) -> Loaded<T::Value> {
        if !self.batcher.is_driven() {
            if let Some(found) = self.state().found.get(&key) {
                return Ok(Some(found.clone()));
            }
            let mut rows = self.batch.load(std::slice::from_ref(&key)).await?;
            let row = rows.remove(&key);
            if let Some(row) = &row {
                self.state().found.insert(key, row.clone());
            }
            return Ok(row);
        }
        let receiver = {
            let mut state = self.state();
            if let Some(found) = state.found.get(&key) {
                return Ok(Some(found.clone()));
            }
            let (sender, receiver) = oneshot::channel();
            let first_queued = state.queued.is_empty();
            match state.waiting.get_mut(&key) {
                Some(waiters) => waiters.push(sender),
                None => {
                    state.waiting.insert(key.clone(), vec![sender]);
                    state.queued.push(key);
                    if first_queued {
                        let loader = Arc::clone(self);
                        self.batcher
                            .make_due(Box::new(move || loader.run_batch().boxed()));
                    }
                }
            }
            receiver
        };
        receiver.await.unwrap_or_else(|_| {
            Err(Arc::new(AppError::internal(anyhow::anyhow!(
                "a batch was dropped"
            ))))
        })
    }

    /// Leaves rows already at hand in the cache (and with anyone waiting for them).
    pub fn feed_many(&self, rows: impl IntoIterator<Item = (K, T::Value)>) {
        let mut state = self.state();
        for (key, value) in rows {
            for waiter in state.waiting.remove(&key).into_iter().flatten() {
                let _ = waiter.send(Ok(Some(value.clone())));
            }
            state.found.insert(key, value);
        }
    }

    /// Loads the queued keys in one batch and answers their waiters. A failed batch fails
    /// each of them and is not cached: a later ask tries again.
    async fn run_batch(self: Arc<Self>) {
        let keys = std::mem::take(&mut self.state().queued);
        if keys.is_empty() {
            return;
        }
        let result = self.batch.load(&keys).await;
        let mut state = self.state();
        match result {
            Ok(mut rows) => {
                for key in keys {
                    let row = rows.remove(&key);
                    for waiter in state.waiting.remove(&key).into_iter().flatten() {
                        let _ = waiter.send(Ok(row.clone()));
                    }
                    if let Some(row) = row {
                        state.found.insert(key, row);
                    }
                }
            }
            Err(e) => {
                for key in keys {
                    for waiter in state.waiting.remove(&key).into_iter().flatten() {
                        let _ = waiter.send(Err(Arc::clone(&e)));
                    }
                }
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LoaderState<K, T::Value>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Loads `keys` through `loader`'s batch function at once, each key once. For a resolver
/// that already knows every key its page needs, which asking key by key would only
/// queue them for the request's next wait ([`super::batch`]), each behind the other.
pub async fn load_all<K: Key, T: BatchLoader<K>>(
    loader: &Loader<T, K>,
    keys: impl IntoIterator<Item = K>,
) -> AppResult<HashMap<K, T::Value>> {
    let mut keys: Vec<K> = keys.into_iter().collect();
    let mut seen = HashSet::with_capacity(keys.len());
    keys.retain(|k| seen.insert(k.clone()));
    if keys.is_empty() {
        return Ok(Default::default());
    }
    loader.loader().load(&keys).await.map_err(loader_error)
}

/// [`load_all`], leaving what it found in the request's cache for each row's resolver.
pub async fn prefetch<K: Key, T: BatchLoader<K>>(
    loader: &Loader<T, K>,
    keys: impl IntoIterator<Item = K>,
) -> AppResult<HashMap<K, T::Value>> {
    let found = load_all(loader, keys).await?;
    feed(loader, &found);
    Ok(found)
}

/// Leaves rows already loaded in the request's cache for each row's resolver.
pub fn feed<K: Key, T: BatchLoader<K>>(loader: &Loader<T, K>, found: &HashMap<K, T::Value>) {
    loader.feed_many(found.iter().map(|(k, v)| (k.clone(), v.clone())));
}

/// A failed batch load, as resolvers report it (the cause is logged, not shown).
pub fn loader_error(e: Arc<AppError>) -> AppError {
    AppError::internal(anyhow::anyhow!("a batch load failed: {e:?}"))
}

/// A row type a request loads by id: one statement per batch.
pub trait FetchById: Clone + Send + Sync + 'static {
    fn id(&self) -> i64;
    fn fetch(conn: &mut AsyncPgConnection, ids: &[i64]) -> impl Future<Output = AppResult<Vec<Self>>> + Send;
}

/// A row type a request loads by the id of what it belongs to (a project's tasks, an
/// invoice's lines), each group in the order fetched: one statement per batch.
pub trait FetchGrouped: Clone + Send + Sync + 'static {
    fn group(&self) -> i64;
    fn fetch(
        conn: &mut AsyncPgConnection,
        groups: &[i64],
    ) -> impl Future<Output = AppResult<Vec<Self>>> + Send;
}

/// Loads rows of `T` by id, in the request's transaction.
pub struct ById<T> {
    db: Arc<TenantDb>,
    rows: PhantomData<fn() -> T>,
}

impl<T> From<Arc<TenantDb>> for ById<T> {
    fn from(db: Arc<TenantDb>) -> Self {
        Self {
            db,
            rows: PhantomData,
        }
    }
}

impl<T: FetchById> async_graphql::dataloader::Loader<i64> for ById<T> {
    type Value = T;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, T>, Self::Error> {
        let mut conn = self.db.conn().await?;
        let rows = T::fetch(&mut conn, keys).await?;
        Ok(rows.into_iter().map(|r| (r.id(), r)).collect())
    }
}

/// Loads the rows of `T` of each group id, in the request's transaction.
pub struct Grouped<T> {
    db: Arc<TenantDb>,
    rows: PhantomData<fn() -> T>,
}

impl<T> From<Arc<TenantDb>> for Grouped<T> {
    fn from(db: Arc<TenantDb>) -> Self {
        Self {
            db,
            rows: PhantomData,
        }
    }
}

impl<T: FetchGrouped> async_graphql::dataloader::Loader<i64> for Grouped<T> {
    type Value = Vec<T>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<T>>, Self::Error> {
        let mut conn = self.db.conn().await?;
        let rows = T::fetch(&mut conn, keys).await?;
        let mut grouped: HashMap<i64, Vec<T>> = HashMap::new();
        for row in rows {
            grouped.entry(row.group()).or_default().push(row);
        }
        Ok(grouped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::support::batched;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Answers each key with its double (none for odd keys), noting every batch; fails
    /// while `failing` is set.
    #[derive(Default)]
    struct Doubles {
        batches: Mutex<Vec<Vec<i64>>>,
        failing: AtomicBool,
        /// How many more times each batch waits before it answers.
        slowness: usize,
    }

    impl BatchFn<i64> for Doubles {
        type Value = i64;
        type Error = Arc<AppError>;

        async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, i64>, Arc<AppError>> {
            self.batches.lock().unwrap().push(keys.to_vec());
            for _ in 0..=self.slowness {
                tokio::task::yield_now().await;
            }
            if self.failing.load(Ordering::Relaxed) {
                return Err(Arc::new(AppError::internal(anyhow::anyhow!("down"))));
            }
            Ok(keys.iter().filter(|k| *k % 2 == 0).map(|k| (*k, k * 2)).collect())
        }
    }

    fn batches(loader: &Loader<Doubles>) -> Vec<Vec<i64>> {
        loader.loader().batches.lock().unwrap().clone()
    }

    /// `future` polled to its end on this thread, with no runtime and no clock: a load that
    /// waited on a timer would never end here.
    fn polled_to_end<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..50 {
            if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
        }
        panic!("still waiting after 50 polls");
    }

    #[test]
    fn keys_asked_together_go_in_one_batch_at_once_and_a_lone_one_waits_for_no_timer() {
        let batcher = Arc::new(Batcher::default());
        let loader = Arc::new(Loader::new(Doubles::default(), Arc::clone(&batcher)));
        let (a, b, c, again) = polled_to_end(batched(Arc::clone(&batcher), async {
            futures_util::join!(
                loader.load_one(2),
                loader.load_one(3),
                loader.load_one(4),
                loader.load_one(2)
            )
        }));
        assert_eq!(
            (a.unwrap(), b.unwrap(), c.unwrap(), again.unwrap()),
            (Some(4), None, Some(8), Some(4))
        );
        assert_eq!(batches(&loader), vec![vec![2, 3, 4]]);
        let lone = polled_to_end(batched(Arc::clone(&batcher), loader.load_one(6)));
        assert_eq!(lone.unwrap(), Some(12));
        // What was found is not asked again, what was not found is; what was fed is never
        // asked.
        loader.feed_many([(10, 99)]);
        let cached = polled_to_end(batched(Arc::clone(&batcher), async {
            futures_util::join!(loader.load_one(3), loader.load_one(4), loader.load_one(10))
        }));
        assert_eq!(
            (cached.0.unwrap(), cached.1.unwrap(), cached.2.unwrap()),
            (None, Some(8), Some(99))
        );
        assert_eq!(batches(&loader), vec![vec![2, 3, 4], vec![6], vec![3]]);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_waiter_and_is_tried_again_later() {
        let batcher = Arc::new(Batcher::default());
        let loader = Arc::new(Loader::new(Doubles::default(), Arc::clone(&batcher)));
        loader.loader().failing.store(true, Ordering::Relaxed);
        let (a, b) = batched(Arc::clone(&batcher), async {
            tokio::join!(loader.load_one(2), loader.load_one(4))
        })
        .await;
        assert!(a.is_err() && b.is_err());
        loader.loader().failing.store(false, Ordering::Relaxed);
        let a = batched(Arc::clone(&batcher), loader.load_one(2)).await;
        assert_eq!(a.unwrap(), Some(4));
        assert_eq!(batches(&loader), vec![vec![2, 4], vec![2]]);
    }

    #[tokio::test]
    async fn a_load_from_a_task_the_request_spawned_or_outside_any_request_is_sent() {
        let batcher = Arc::new(Batcher::default());
        let loader = Arc::new(Loader::new(Doubles::default(), Arc::clone(&batcher)));
        // Nothing drives this batcher yet: the load is sent on its own.
        assert_eq!(loader.load_one(2).await.unwrap(), Some(4));
        let spawned = batched(Arc::clone(&batcher), {
            let loader = Arc::clone(&loader);
            async move {
                tokio::task::yield_now().await;
                tokio::spawn(async move { loader.load_one(8).await })
                    .await
                    .unwrap()
            }
        });
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), spawned)
            .await
            .expect("the driver was woken for the spawned task's batch");
        assert_eq!(answer.unwrap(), Some(16));
        assert_eq!(batches(&loader), vec![vec![2], vec![8]]);
    }

    #[test]
    fn a_request_that_ends_while_its_batch_runs_lets_the_batch_finish() {
        let batcher = Arc::new(Batcher::default());
        let doubles = Doubles {
            slowness: 3,
            ..Doubles::default()
        };
        let loader = Arc::new(Loader::new(doubles, Arc::clone(&batcher)));
        // One field asks for a row, its sibling fails a poll later: the request is over
        // while the batch is still under way.
        let failed = polled_to_end(batched(Arc::clone(&batcher), async {
            futures_util::future::try_join(async { loader.load_one(2).await.map_err(|_| ()) }, async {
                tokio::task::yield_now().await;
                Err::<(), ()>(())
            })
            .await
        }));
        assert!(failed.is_err());
        assert_eq!(batches(&loader), vec![vec![2]]);
        assert_eq!(loader.state().found.get(&2), Some(&4), "the batch ran to its end");
    }
}
