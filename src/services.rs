//! What lives as long as the service and is shared by every request and job: the
//! configuration, and one value of each type that a layer above puts in (the signing keys,
//! the caches, the file store, the mailer, ...). The composition root ([`crate::app`]) fills
//! it once at start-up; the layers below it take out what they own by type, so none of them
//! needs to name another's.
//!
//! Nothing in it belongs to a tenant: per-tenant values live in caches keyed by tenant.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;

use crate::config::ServiceConfig;

pub struct Services {
    pub config: ServiceConfig,
    shared: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Services {
    pub fn new(config: ServiceConfig) -> Self {
        Self {
            config,
            shared: HashMap::new(),
        }
    }

    /// Adds (or replaces) the one value of its type.
    pub fn with<T: Any + Send + Sync>(self, value: T) -> Self {
        self.with_shared(Arc::new(value))
    }

    /// Adds (or replaces) a value that is shared with something else as well.
    pub fn with_shared<T: Any + Send + Sync>(mut self, value: Arc<T>) -> Self {
        self.shared.insert(TypeId::of::<T>(), value);
        self
    }

    /// The value of type `T`. The composition root puts in every type the service's parts
    /// take out, so a missing one is a wiring mistake that the first request touching it
    /// shows, not a condition to handle.
    pub fn get<T: Any + Send + Sync>(&self) -> &T {
        self.try_get()
            .unwrap_or_else(|| panic!("{} is not among the service's parts", type_name::<T>()))
    }

    /// The shared handle of the value of type `T` (see [`Services::get`]).
    pub fn shared<T: Any + Send + Sync>(&self) -> Arc<T> {
        self.shared
            .get(&TypeId::of::<T>())
            .and_then(|value| Arc::clone(value).downcast::<T>().ok())
            .unwrap_or_else(|| panic!("{} is not among the service's parts", type_name::<T>()))
    }

    pub fn try_get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.shared.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }

    /// A copy sharing every value, to add more to (a worker adds its mailer).
    pub fn extended(&self) -> Self {
        Self {
            config: self.config.clone(),
            shared: self.shared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_by_type() {
        let services = Services::new(ServiceConfig::with_secret("0123456789abcdef0123456789abcdef"))
            .with(7_u32)
            .with(String::from("files"));
        assert_eq!(*services.get::<u32>(), 7);
        assert_eq!(services.get::<String>(), "files");
        assert!(services.try_get::<u64>().is_none());
        let more = services.extended().with(9_u64);
        assert_eq!(*more.get::<u64>(), 9);
        assert_eq!(*more.get::<u32>(), 7);
        assert!(Arc::ptr_eq(
            &services.shared::<String>(),
            &more.shared::<String>()
        ));
    }
}
