//! Tenant schema names: validated once, then always used quoted.

use std::fmt;

/// A validated tenant schema name: `^[a-z][a-z0-9_]{0,62}$`, never `public`, `pg_*` or
/// `information_schema`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaNameError {
    #[error("a schema name must not be empty")]
    Empty,
    #[error("a schema name has at most 63 characters")]
    TooLong,
    #[error("a schema name starts with a lowercase letter and holds only a-z, 0-9 and _")]
    BadCharacters,
    #[error("'{0}' is reserved by PostgreSQL")]
    Reserved(String),
}

impl SchemaName {
    pub fn parse(raw: &str) -> Result<Self, SchemaNameError> {
        if raw.is_empty() {
            return Err(SchemaNameError::Empty);
        }
        if raw.len() > 63 {
            return Err(SchemaNameError::TooLong);
        }
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok {
            return Err(SchemaNameError::BadCharacters);
        }
        if raw == "public" || raw == "information_schema" || raw.starts_with("pg_") {
            return Err(SchemaNameError::Reserved(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier. Validation already excludes quotes; quoting still
    /// matters for names that are SQL keywords (`user`, `select`).
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in ["acme", "a", "acme_2", "select", &"a".repeat(63)] {
            assert_eq!(SchemaName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(SchemaName::parse(""), Err(SchemaNameError::Empty));
        assert_eq!(SchemaName::parse(&"a".repeat(64)), Err(SchemaNameError::TooLong));
        for bad in ["Acme", "1acme", "_acme", "a;drop", "a-b", "a b", "a\"b", "ácme"] {
            assert_eq!(
                SchemaName::parse(bad),
                Err(SchemaNameError::BadCharacters),
                "{bad}"
            );
        }
        for reserved in ["public", "pg_x", "pg_catalog", "information_schema"] {
            assert!(matches!(
                SchemaName::parse(reserved),
                Err(SchemaNameError::Reserved(_))
            ));
        }
    }

    #[test]
    fn quotes_keywords() {
        assert_eq!(SchemaName::parse("user").unwrap().quoted(), "\"user\"");
    }
}
