//! Relay connections ordered by id: `first` / `after` and the page they make.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor};

use diesel_async::AsyncPgConnection;

use crate::db::Keyset;
use crate::error::{AppError, AppResult};
use crate::tenancy::TenantDb;

const MAX_PAGE: i32 = 100;

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

    /// The rows to fetch: one more than asked, to tell whether a next page exists.
    pub fn keyset(&self) -> Keyset {
        Keyset {
            after: self.after,
            limit: self.first as i64 + 1,
        }
    }

    /// The page's rows as `fetch` reads them on the request's connection.
    pub async fn rows<R>(
        &self,
        db: &TenantDb,
        fetch: impl AsyncFnOnce(&mut AsyncPgConnection, Keyset) -> AppResult<Vec<R>>,
    ) -> AppResult<Vec<R>> {
        let mut conn = db.conn().await?;
        fetch(&mut conn, self.keyset()).await
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
