//! Request loaders: each request builds its own on first use (see
//! [`super::RequestContext::loader`]), so no cache of one tenant's rows can serve another.
//! [`ById`] and [`Grouped`] load any row type that says how it is fetched; a domain with a
//! batch of another shape implements async-graphql's `Loader` itself.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use diesel_async::AsyncPgConnection;

use crate::error::{AppError, AppResult};
use crate::tenancy::TenantDb;

/// A request's loader, caching what it loaded for the rest of the request, so a resolver
/// can load a whole page's relations in one batch and each row then finds its own.
pub type Loader<T> = DataLoader<T, HashMapCache>;

pub(super) fn loader<T: Send + Sync + 'static>(loader: T) -> Loader<T> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default())
}

/// A key a request's loaders look rows up by.
pub trait Key: Send + Sync + std::hash::Hash + Eq + Clone + 'static {}
impl<K: Send + Sync + std::hash::Hash + Eq + Clone + 'static> Key for K {}

/// A request loader's batch function, failing as the service's loaders do.
pub trait BatchLoader<K: Key>: async_graphql::dataloader::Loader<K, Error = Arc<AppError>> {}
impl<K: Key, T: async_graphql::dataloader::Loader<K, Error = Arc<AppError>>> BatchLoader<K> for T {}

/// Loads `keys` through `loader`'s batch function at once, each key once. For a resolver
/// that already knows every key its page needs: `load_many` would first wait out the
/// loader's batching delay (a millisecond or more) to gather keys that are all here already.
pub async fn load_all<K: Key, T: BatchLoader<K>>(
    loader: &Loader<T>,
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
    loader: &Loader<T>,
    keys: impl IntoIterator<Item = K>,
) -> AppResult<HashMap<K, T::Value>> {
    let found = load_all(loader, keys).await?;
    feed(loader, &found).await;
    Ok(found)
}

/// Leaves rows already loaded in the request's cache for each row's resolver.
pub async fn feed<K: Key, T: BatchLoader<K>>(loader: &Loader<T>, found: &HashMap<K, T::Value>) {
    loader
        .feed_many(found.iter().map(|(k, v)| (k.clone(), v.clone())))
        .await;
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
