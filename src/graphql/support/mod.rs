//! What every domain's GraphQL builds on, below the domains and naming none of them: the
//! request context, Relay pagination, node ids, generic loaders and when their batches go, and
//! the direct JSON writer.

mod batch;
mod context;
pub mod cost;
pub mod direct;
mod ids;
mod loaders;
mod pagination;

pub use batch::{Batched, Batcher, batched};
pub use context::{ContextExt, RequestContext};
pub use ids::{NodeType, decode_global_id, expect_global_id, global_id};
pub use loaders::{
    BatchLoader, ById, FetchById, FetchGrouped, Grouped, Key, Loader, feed, load_all, loader_error, prefetch,
};
pub use pagination::{DirectNode, DirectPage, Page, PageArgs};

use std::sync::atomic::AtomicU64;

/// How pages of entries and lists were answered, for `/metrics`: a client whose queries
/// keep falling to the general executor pays for it in time.
#[derive(Default)]
pub struct PageStats {
    /// `timeEntries` pages written directly (see [`direct`]).
    pub entries_direct: AtomicU64,
    /// `timeEntries` pages resolved field by field.
    pub entries_general: AtomicU64,
    /// Pages of other lists ([`DirectPage`]) written directly, and resolved field by field.
    pub lists_direct: AtomicU64,
    pub lists_general: AtomicU64,
}
