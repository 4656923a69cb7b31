//! The SQL vocabulary every layer above shares: the diesel table definitions, SQL
//! functions, and the helpers for patterns and constraint violations. It holds no
//! connection: the pool, which keeps every connection free of any tenant's `search_path`,
//! is [`crate::tenancy::DbPool`].

pub mod schema;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::error::AppError;

/// SQL functions used in queries.
pub mod functions {
    use diesel::sql_types::Text;

    #[diesel::declare_sql_function]
    extern "SQL" {
        fn lower(x: Text) -> Text;
    }
}

/// An `ILIKE` pattern matching `raw` anywhere, its own `%`, `_` and `\` taken literally.
/// A statement as diesel shows it (`SQL -- binds: [...]`) without its bound values, which
/// may be anything a client sent or a password hash: only the SQL text is logged.
pub fn without_binds(shown: &str) -> &str {
    shown.rfind(" -- binds: ").map_or(shown, |at| &shown[..at])
}

pub fn contains_pattern(raw: &str) -> String {
    format!(
        "%{}%",
        raw.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

/// Gives an enum stored as a text column its `as_str` (the stored word) and `from_db`
/// (the variant of a stored word; `default` for one it does not know, which the column's
/// CHECK constraint never lets in).
macro_rules! stored_as_text {
    ($name:ident, default $default:ident, { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            pub fn from_db(raw: &str) -> Self {
                match raw {
                    $($word => Self::$variant,)+
                    _ => Self::$default,
                }
            }
        }
    };
}
pub(crate) use stored_as_text;

/// One page of rows in id order: those after `after`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    pub after: Option<i64>,
    pub limit: i64,
}

/// `ORDER BY <order> LIMIT <limit>` with the limit written into the statement rather than
/// bound. PostgreSQL keeps one plan per prepared statement once it trusts a generic one,
/// and a generic plan cannot know a bound LIMIT: it assumes a tenth of the table, or plans
/// every execution afresh. Written in, each page size is its own statement with a plan
/// made for it. Diesel binds whatever `.limit()` is given, so the limit rides at the end of
/// the ORDER BY clause; nothing may be ordered after it.
///
/// Its query id is not static: diesel then keys its statement cache by the SQL text, which
/// holds the limit, so two page sizes never share a prepared statement.
#[derive(Debug, Clone, Copy)]
pub struct OrderedLimit<O> {
    pub order: O,
    pub limit: i64,
}

impl<O> diesel::query_builder::QueryId for OrderedLimit<O> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<O: diesel::Expression> diesel::Expression for OrderedLimit<O> {
    type SqlType = O::SqlType;
}

impl<O: diesel::AppearsOnTable<QS>, QS> diesel::AppearsOnTable<QS> for OrderedLimit<O> {}

impl<O: diesel::expression::ValidGrouping<G>, G> diesel::expression::ValidGrouping<G> for OrderedLimit<O> {
    type IsAggregate = O::IsAggregate;
}

impl<O: diesel::query_builder::QueryFragment<diesel::pg::Pg>>
    diesel::query_builder::QueryFragment<diesel::pg::Pg> for OrderedLimit<O>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        self.order.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}", self.limit.max(0)));
        Ok(())
    }
}

/// The query of one [`Keyset`] page of `$table`'s `$row`s, boxed for the filters a rule
/// file adds.
macro_rules! keyset_page {
    ($table:ident, $row:ty, $keyset:expr) => {{
        let keyset: $crate::db::Keyset = $keyset;
        let mut query = $table::table
            .select(<$row>::as_select())
            .order($crate::db::OrderedLimit {
                order: $table::id,
                limit: keyset.limit,
            })
            .into_boxed();
        if let Some(after) = keyset.after {
            query = query.filter($table::id.gt(after));
        }
        query
    }};
}
pub(crate) use keyset_page;

/// The constraint a refused statement broke, if it names one.
pub fn constraint_of(e: &DieselError) -> Option<&str> {
    match e {
        DieselError::DatabaseError(_, info) => info.constraint_name(),
        _ => None,
    }
}

/// Whether `e` is a unique violation (of `constraint`, when one is given).
pub fn is_unique_violation(e: &DieselError, constraint: Option<&str>) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    ) && constraint.is_none_or(|c| constraint_of(e) == Some(c))
}

/// The one mapping of a unique violation (of `constraint`, when one is given) to the
/// error a client sees: `CONFLICT` on `field`, saying `message`. Any other error stays
/// what it is (an internal error, logged and not shown).
pub fn unique_conflict(
    e: DieselError,
    constraint: Option<&str>,
    field: Option<&str>,
    message: impl FnOnce() -> String,
) -> AppError {
    if is_unique_violation(&e, constraint) {
        AppError::conflict(field, message())
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(super::contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
