//! What one request carries: its tenant unit, the service's shared parts, its credential,
//! and what its resolvers work out once and keep for the rest of it (loaders, the signed-in
//! actor). Built per request, so nothing kept in it can serve another tenant.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use async_graphql::dataloader::Loader as BatchFn;

use super::batch::Batcher;
use super::loaders::{Loader, loader_error};
use crate::error::{AppError, AppResult};
use crate::services::Services;
use crate::tenancy::TenantDb;

pub struct RequestContext {
    pub db: Arc<TenantDb>,
    pub services: Arc<Services>,
    /// The `Authorization: Bearer` credential, as sent.
    pub bearer: Option<String>,
    /// The client's address (see `TRUSTED_PROXIES`), when known.
    pub client: Option<IpAddr>,
    kept: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    batcher: Arc<Batcher>,
}

impl RequestContext {
    pub fn new(db: Arc<TenantDb>, services: Arc<Services>, bearer: Option<String>) -> Self {
        Self {
            db,
            services,
            bearer,
            client: None,
            kept: Mutex::new(HashMap::new()),
            batcher: Arc::default(),
        }
    }

    /// The same, from the client at `client`.
    #[must_use]
    pub fn from_client(mut self, client: Option<IpAddr>) -> Self {
        self.client = client;
        self
    }

    /// The request's one value of type `T`, made by `make` on first need. Domains keep
    /// per-request state here without this type naming them.
    pub fn kept<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let value = kept
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(make()) as Arc<dyn Any + Send + Sync>);
        Arc::clone(value)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("kept values are stored under their own type"))
    }

    /// What starts the request's batches: the request is to be run under
    /// [`super::batched`] with it, else each load is sent on its own.
    pub fn batcher(&self) -> Arc<Batcher> {
        Arc::clone(&self.batcher)
    }

    /// The request's loader of `T`, made on first use from the request's tenant unit.
    pub fn loader<T>(&self) -> Arc<Loader<T>>
    where
        T: From<Arc<TenantDb>> + BatchFn<i64, Error = Arc<AppError>> + Send + Sync + 'static,
    {
        self.kept(|| Loader::new(T::from(Arc::clone(&self.db)), Arc::clone(&self.batcher)))
    }

    /// The row under `key` through the request's loader of `T`, `None` when there is none.
    pub async fn load<T>(&self, key: i64) -> AppResult<Option<T::Value>>
    where
        T: From<Arc<TenantDb>> + BatchFn<i64, Error = Arc<AppError>> + Send + Sync + 'static,
    {
        self.loader::<T>().load_one(key).await.map_err(loader_error)
    }

    /// The row under `key`, which must exist: `NOT_FOUND` (of `what`) when it does not.
    pub async fn load_existing<T>(&self, key: i64, what: &'static str) -> AppResult<T::Value>
    where
        T: From<Arc<TenantDb>> + BatchFn<i64, Error = Arc<AppError>> + Send + Sync + 'static,
    {
        self.load::<T>(key).await?.ok_or(AppError::NotFound { what })
    }
}

/// Shorthand for resolvers.
pub trait ContextExt {
    fn request(&self) -> &RequestContext;
}

impl ContextExt for Context<'_> {
    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }
}
