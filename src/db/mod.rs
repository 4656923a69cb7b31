//! The SQL vocabulary every layer above shares: the diesel table definitions, SQL
//! functions, and the helpers for patterns and constraint violations. It holds no
//! connection: the pool, which keeps every connection free of any tenant's `search_path`,
//! is [`crate::tenancy::DbPool`].

pub mod schema;

/// SQL functions used in queries.
pub mod functions {
    use diesel::sql_types::Text;

    #[diesel::declare_sql_function]
    extern "SQL" {
        fn lower(x: Text) -> Text;
    }
}

/// An `ILIKE` pattern matching `raw` anywhere, its own `%`, `_` and `\` taken literally.
pub fn contains_pattern(raw: &str) -> String {
    format!(
        "%{}%",
        raw.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(super::contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
