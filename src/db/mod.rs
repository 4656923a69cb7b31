//! The SQL vocabulary every layer above shares: the diesel table definitions, SQL
//! functions, and the helpers for patterns and constraint violations. It holds no
//! connection: the pool, which keeps every connection free of any tenant's `search_path`,
//! is [`crate::tenancy::DbPool`].

pub mod columns;
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

/// A statement as diesel shows it (`SQL -- binds: [...]`) without its bound values, which
/// may be anything a client sent or a password hash: only the SQL text is logged.
pub fn without_binds(shown: &str) -> &str {
    shown.rfind(" -- binds: ").map_or(shown, |at| &shown[..at])
}

/// An `ILIKE` pattern matching `raw` anywhere, its own `%`, `_` and `\` taken literally.
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
/// holds the limit, so two page sizes never share a prepared statement. A statement whose
/// shape is not [`kept_prepared`] is marked so that no connection keeps it.
#[derive(Debug, Clone, Copy)]
pub struct OrderedLimit<O> {
    pub order: O,
    pub limit: i64,
    pub keep_prepared: bool,
}

/// How many shapes of statement (what varies in a page's text: its filters, size, columns
/// and relations) connections keep prepared, and how many of them one tenant's requests
/// may bring in.
pub const KEPT_SHAPES: usize = 256;
pub const TENANT_SHAPES: usize = 32;

/// Whether connections may keep statements of `shape`, asked for by tenant `tenant_id`,
/// prepared: the first [`KEPT_SHAPES`] shapes this process meets, at most
/// [`TENANT_SHAPES`] of them brought in by any one tenant. Each prepared statement holds
/// PostgreSQL memory for the connection's life, and a client can vary a page's filters,
/// sizes and selection into thousands of texts: past the caps, a new shape is parsed and
/// planned each time it runs, which costs that client time and nobody memory, and one
/// tenant cannot take every place.
pub fn kept_prepared(tenant_id: i64, shape: u64) -> bool {
    static SHAPES: std::sync::LazyLock<Shapes> =
        std::sync::LazyLock::new(|| Shapes::new(KEPT_SHAPES, TENANT_SHAPES));
    SHAPES.admit(tenant_id, shape)
}

/// Shapes admitted, up to a cap in all and one per tenant.
struct Shapes {
    kept: std::sync::Mutex<(
        std::collections::HashSet<u64>,
        std::collections::HashMap<i64, usize>,
    )>,
    cap: usize,
    per_tenant: usize,
}

impl Shapes {
    fn new(cap: usize, per_tenant: usize) -> Self {
        Self {
            kept: Default::default(),
            cap,
            per_tenant,
        }
    }

    fn admit(&self, tenant_id: i64, shape: u64) -> bool {
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (shapes, brought) = &mut *kept;
        if shapes.contains(&shape) {
            return true;
        }
        let by_tenant = brought.entry(tenant_id).or_default();
        if shapes.len() >= self.cap || *by_tenant >= self.per_tenant {
            return false;
        }
        *by_tenant += 1;
        shapes.insert(shape);
        true
    }
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
        if !self.keep_prepared {
            out.unsafe_to_cache_prepared();
        }
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
                // A list's pages have a handful of shapes (its filters, five sizes).
                keep_prepared: true,
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

    #[test]
    fn shapes_past_the_caps_are_not_kept_and_those_kept_stay_kept_for_everyone() {
        let shapes = super::Shapes::new(5, 3);
        // Tenant 1 brings in three shapes, and no more.
        assert!((1..=3).all(|s| shapes.admit(1, s)));
        assert!(!shapes.admit(1, 4));
        // Tenant 2 still may, until the cap in all.
        assert!(shapes.admit(2, 4));
        assert!(shapes.admit(2, 5));
        assert!(!shapes.admit(2, 6), "five in all");
        assert!(!shapes.admit(3, 6));
        // What is kept is kept for every tenant.
        assert!((1..=5).all(|s| shapes.admit(3, s) && shapes.admit(1, s)));
    }
}
