//! Relay connections ordered by id: `first` / `after` and the page they make.

use std::borrow::Cow;

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor};
use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

use std::sync::atomic::Ordering;

use super::direct::{self, Json};
use super::{PageStats, RequestContext};

use crate::db::Keyset;
use crate::error::{AppError, AppResult};

const MAX_PAGE: i32 = 100;

/// The row counts pages are fetched in (the last one is `MAX_PAGE + 1`).
const FETCH_SIZES: [i64; 5] = [2, 11, 26, 51, MAX_PAGE as i64 + 1];

/// The smallest fetch size that holds `first` rows and one more.
fn fetch_size(first: usize) -> i64 {
    let wanted = first as i64 + 1;
    FETCH_SIZES
        .iter()
        .copied()
        .find(|size| *size >= wanted)
        .unwrap_or(wanted)
}

/// A Relay connection keyed by row id.
pub type Page<N> = Connection<OpaqueCursor<i64>, N, EmptyFields, EmptyFields>;

/// A node whose fields a page can write directly ([`direct`]), as its resolvers give them.
pub trait DirectNode: OutputType {
    /// Field `field` of the node; `None` for one that needs its resolver.
    fn direct_field(&self, ctx: &ContextSelectionSet<'_>, field: &Field, out: &mut Json) -> Option<()>;
}

/// A [`Page`] written directly as JSON text when its selection is made of plain fields its
/// nodes can write ([`direct::connection`]), else resolved as the Relay connection it is:
/// the same type in the schema, and the same answer (the tests compare the two).
pub struct DirectPage<N: OutputType>(pub Page<N>);

impl<N: DirectNode + Sync> OutputType for DirectPage<N> {
    fn type_name() -> Cow<'static, str> {
        Page::<N>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Page::<N>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let page = &self.0;
        let node_type = N::type_name();
        let mut out = Json::with_capacity(256 + 128 * page.edges.len());
        let written = direct::connection(
            ctx,
            &ctx.item.node,
            &Self::type_name(),
            &Edge::<OpaqueCursor<i64>, N, EmptyFields>::type_name(),
            &page.edges,
            |edge| edge.cursor.encode_cursor(),
            (page.has_previous_page, page.has_next_page),
            &mut out,
            |edge, f, out| {
                direct::object(ctx, &f.selection_set.node, &node_type, out, |n, out| {
                    edge.node.direct_field(ctx, n, out)
                })
            },
        );
        let stats = ctx.data_unchecked::<RequestContext>().services.get::<PageStats>();
        match written {
            Some(()) => {
                stats.lists_direct.fetch_add(1, Ordering::Relaxed);
                Ok(out.into_value())
            }
            None => {
                stats.lists_general.fetch_add(1, Ordering::Relaxed);
                page.resolve(ctx, field).await
            }
        }
    }
}

/// `first` / `after` of a Relay connection ordered by id.
pub struct PageArgs {
    pub after: Option<i64>,
    pub first: usize,
}

impl PageArgs {
    pub fn parse(first: i32, after: Option<String>) -> AppResult<Self> {
        if !(0..=MAX_PAGE).contains(&first) {
            return Err(AppError::bad_input(
                "first",
                format!("first must be between 0 and {MAX_PAGE}"),
            ));
        }
        let after = match after {
            Some(cursor) => Some(
                OpaqueCursor::<i64>::decode_cursor(&cursor)
                    .map_err(|_| AppError::bad_input("after", "not a valid cursor"))?
                    .0,
            ),
            None => None,
        };
        Ok(Self {
            after,
            first: first as usize,
        })
    }

    /// The rows to fetch: at least one more than asked, to tell whether a next page exists,
    /// rounded up to one of a few sizes. Page sizes are written into the statements (see
    /// [`crate::db::OrderedLimit`]), so each size is a statement every connection keeps
    /// prepared: a handful of sizes keeps that a handful per page shape, whatever `first`
    /// clients send.
    pub fn keyset(&self) -> Keyset {
        Keyset {
            after: self.after,
            limit: fetch_size(self.first),
        }
    }

    /// A connection of `rows` (fetched with [`PageArgs::keyset`]), each keyed by its id.
    pub fn connection<R, N: OutputType>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> i64,
        node: impl Fn(R) -> N,
    ) -> Page<N> {
        let has_next = rows.len() > self.first;
        rows.truncate(self.first);
        let mut connection = Connection::new(self.after.is_some(), has_next);
        connection
            .edges
            .extend(rows.into_iter().map(|r| Edge::new(OpaqueCursor(id(&r)), node(r))));
        connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_fetched_in_a_few_sizes_each_holding_one_more_row_than_asked() {
        let sizes: std::collections::BTreeSet<i64> = (0..=MAX_PAGE as usize).map(fetch_size).collect();
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), FETCH_SIZES);
        for first in 0..=MAX_PAGE as usize {
            assert!(fetch_size(first) > first as i64, "{first}");
        }
        assert_eq!(fetch_size(20), 26);
        assert_eq!(fetch_size(25), 26);
        assert_eq!(fetch_size(26), 51);
    }
}
