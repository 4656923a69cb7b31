//! Relay connections ordered by id: `first` / `after` and the page they make.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor};

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
