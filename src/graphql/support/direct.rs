//! Response values written straight from rows a resolver already holds, as JSON text, for
//! the hottest pages.
//!
//! The general executor resolves every field of every row as a boxed future, gathers them
//! in a set and merges the results into a map: for a 100-row page of entries with their
//! project, client, task and user that is some 1,500 futures, and most of the request's
//! time. When a page's selection is made only of plain fields (fields, aliases,
//! `__typename`, fragments on the object's own type), its value can be written out
//! directly as JSON text, in selection order, with no future and no value tree at all: the
//! text goes into the response as it is ([`Json::into_value`]). Anything else (a custom
//! directive, field arguments, a fragment on an interface, one response key selected twice
//! with sub-selections, a field that needs its resolver) makes [`object`] answer `None`, and
//! the caller then hands the page to the general executor: the two must answer alike, which
//! the tests check field by field (`tests/integration/time.rs`).
//!
//! `@skip` and `@include` are applied before execution, so they never reach here. Schema
//! extensions (none are installed) would not see the fields written here.
//!
//! The text travels as async-graphql's raw value: an object whose only key is serde_json's
//! raw-value token. serde_json checks the text is JSON as it writes it out. No type in the
//! schema returns free-form JSON, so no client's data can take that shape; a `JSON` scalar
//! added later must not let a client's object through with that key.

use std::fmt::Write as _;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::{ContextSelectionSet, ID, Name, ScalarType, Value};
use async_graphql_value::RAW_VALUE_TOKEN;
use chrono::{Datelike, NaiveDate};

/// JSON text being written, one value after another.
pub struct Json(String);

impl Json {
    pub fn with_capacity(bytes: usize) -> Self {
        Self(String::with_capacity(bytes))
    }

    /// The text as a response value that is written out verbatim: an object whose one key
    /// is serde_json's raw-value token, which async-graphql serializes as the text itself.
    pub fn into_value(self) -> Value {
        let mut map = async_graphql::indexmap::IndexMap::with_capacity(1);
        map.insert(Name::new(RAW_VALUE_TOKEN), Value::String(self.0));
        Value::Object(map)
    }

    #[cfg(test)]
    fn as_str(&self) -> &str {
        &self.0
    }

    pub fn null(&mut self) {
        self.0.push_str("null");
    }

    pub fn bool(&mut self, value: bool) {
        self.0.push_str(if value { "true" } else { "false" });
    }

    pub fn int(&mut self, value: i64) {
        let _ = write!(self.0, "{value}");
    }

    /// A JSON string, escaped as JSON requires.
    pub fn str(&mut self, value: &str) {
        let needs_escape = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
        self.0.reserve(value.len() + 2);
        self.0.push('"');
        let mut rest = value;
        // Most text has nothing to escape: copy each plain run whole.
        while let Some(at) = rest.as_bytes().iter().position(needs_escape) {
            self.0.push_str(&rest[..at]);
            let byte = rest.as_bytes()[at];
            match byte {
                b'"' => self.0.push_str("\\\""),
                b'\\' => self.0.push_str("\\\\"),
                b'\n' => self.0.push_str("\\n"),
                b'\r' => self.0.push_str("\\r"),
                b'\t' => self.0.push_str("\\t"),
                0x08 => self.0.push_str("\\b"),
                0x0c => self.0.push_str("\\f"),
                _ => {
                    let _ = write!(self.0, "\\u{byte:04x}");
                }
            }
            // The byte is ASCII, so the next one starts a character.
            rest = &rest[at + 1..];
        }
        self.0.push_str(rest);
        self.0.push('"');
    }

    pub fn nullable_str(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.str(value),
            None => self.null(),
        }
    }

    /// A value as async-graphql would serialize it (the scalars' usual strings, enums and
    /// booleans written here; anything else through serde_json).
    pub fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.null(),
            Value::Boolean(b) => self.bool(*b),
            Value::String(s) => self.str(s),
            Value::Enum(name) => self.str(name),
            _ => {
                let text = serde_json::to_string(value).expect("a value serializes");
                self.0.push_str(&text);
            }
        }
    }

    /// A scalar as its GraphQL type writes it.
    pub fn scalar<T: ScalarType>(&mut self, value: &T) {
        self.value(&value.to_value());
    }

    /// A nullable scalar.
    pub fn nullable<T: ScalarType>(&mut self, value: Option<&T>) {
        match value {
            Some(value) => self.scalar(value),
            None => self.null(),
        }
    }

    /// A decimal as its scalar writes it (a string of its digits), without the string.
    pub fn decimal(&mut self, value: &rust_decimal::Decimal) {
        let _ = write!(self.0, "\"{value}\"");
    }

    pub fn nullable_decimal(&mut self, value: Option<&rust_decimal::Decimal>) {
        match value {
            Some(value) => self.decimal(value),
            None => self.null(),
        }
    }

    /// An enum value, as its GraphQL enum writes it.
    pub fn enumeration<T: async_graphql::InputType>(&mut self, value: &T) {
        self.value(&value.to_value());
    }

    /// A date as its scalar writes it (`%Y-%m-%d`), without parsing a format string each time.
    pub fn date(&mut self, value: &NaiveDate) {
        let year = value.year();
        if !(0..=9999).contains(&year) {
            return self.scalar(value);
        }
        let _ = write!(self.0, "\"{year:04}-{:02}-{:02}\"", value.month(), value.day());
    }

    /// A node's global id.
    pub fn id(&mut self, node_type: super::NodeType, id: i64) {
        self.scalar::<ID>(&super::global_id(node_type, id));
    }
}

/// Writes an object of type `type_name` for the selection `set`: each selected field's value
/// through `value_of`, which answers `None` for a field it cannot write directly (and then
/// so does this, and what was written is to be thrown away).
pub fn object<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    type_name: &str,
    out: &mut Json,
    mut value_of: impl FnMut(&'a Field, &mut Json) -> Option<()>,
) -> Option<()> {
    let mut fields = Fields::new();
    collect(ctx, set, type_name, &mut fields)?;
    out.0.push('{');
    let mut first = true;
    for (i, field) in fields.iter().enumerate() {
        let key = &field.response_key().node;
        if fields[..i].iter().any(|f| f.response_key().node == *key) {
            // Validation lets a key repeat only for the same field with the same
            // arguments; a leaf then has one value, an object's selections would merge.
            if field.selection_set.node.items.is_empty() {
                continue;
            }
            return None;
        }
        if !first {
            out.0.push(',');
        }
        first = false;
        out.str(key);
        out.0.push(':');
        if field.name.node == "__typename" {
            out.str(type_name);
        } else {
            value_of(field, out)?;
        }
    }
    out.0.push('}');
    Some(())
}

/// An object's selected fields: on the stack, as objects are written one per row.
type Fields<'a> = smallvec::SmallVec<[&'a Field; 16]>;

/// The fields `set` selects on `type_name`, through its fragments, in order.
fn collect<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    type_name: &str,
    out: &mut Fields<'a>,
) -> Option<()> {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let field = &field.node;
                if !field.directives.is_empty() || !field.arguments.is_empty() {
                    return None;
                }
                out.push(field);
            }
            Selection::FragmentSpread(spread) => {
                if !spread.node.directives.is_empty() {
                    return None;
                }
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(spread.node.fragment_name.node.as_str())?;
                if fragment.node.type_condition.node.on.node != type_name
                    || !fragment.node.directives.is_empty()
                {
                    return None;
                }
                collect(ctx, &fragment.node.selection_set.node, type_name, out)?;
            }
            Selection::InlineFragment(inline) => {
                let inline = &inline.node;
                if !inline.directives.is_empty()
                    || inline
                        .type_condition
                        .as_ref()
                        .is_some_and(|c| c.node.on.node != type_name)
                {
                    return None;
                }
                collect(ctx, &inline.selection_set.node, type_name, out)?;
            }
        }
    }
    Some(())
}

/// Writes a Relay connection of type `connection_type` over `rows` for the selection `set`
/// (`edges { cursor node }`, `nodes`, `pageInfo`, `__typename`), each row's node through
/// `node` (given the field whose selection it writes); `None` as [`object`] answers it.
#[allow(clippy::too_many_arguments)]
pub fn connection<'a, R>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    connection_type: &str,
    edge_type: &str,
    rows: &[R],
    cursor: impl Fn(&R) -> String,
    (has_previous_page, has_next_page): (bool, bool),
    out: &mut Json,
    mut node: impl FnMut(&R, &'a Field, &mut Json) -> Option<()>,
) -> Option<()> {
    object(ctx, set, connection_type, out, |f, out| match name(f) {
        "edges" => list(rows, out, |row, out| {
            object(ctx, &f.selection_set.node, edge_type, out, |e, out| {
                match name(e) {
                    "cursor" => {
                        out.str(&cursor(row));
                        Some(())
                    }
                    "node" => node(row, e, out),
                    _ => None,
                }
            })
        }),
        "nodes" => list(rows, out, |row, out| node(row, f, out)),
        "pageInfo" => object(ctx, &f.selection_set.node, "PageInfo", out, |p, out| {
            match name(p) {
                "hasPreviousPage" => out.bool(has_previous_page),
                "hasNextPage" => out.bool(has_next_page),
                "startCursor" => out.nullable_str(rows.first().map(&cursor).as_deref()),
                "endCursor" => out.nullable_str(rows.last().map(&cursor).as_deref()),
                _ => return None,
            }
            Some(())
        }),
        _ => None,
    })
}

/// Writes a list, each item through `item`.
pub fn list<T>(
    items: impl IntoIterator<Item = T>,
    out: &mut Json,
    mut item: impl FnMut(T, &mut Json) -> Option<()>,
) -> Option<()> {
    out.0.push('[');
    for (i, value) in items.into_iter().enumerate() {
        if i > 0 {
            out.0.push(',');
        }
        item(value, out)?;
    }
    out.0.push(']');
    Some(())
}

/// The name of a field, for matching in `value_of`.
pub fn name(field: &Field) -> &str {
    field.name.node.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(write: impl FnOnce(&mut Json)) -> serde_json::Value {
        let mut out = Json::with_capacity(16);
        write(&mut out);
        serde_json::from_str(out.as_str()).unwrap_or_else(|e| panic!("{e}: {}", out.as_str()))
    }

    fn serialized<T: ScalarType>(value: &T) -> serde_json::Value {
        serde_json::to_value(value.to_value()).unwrap()
    }

    #[test]
    fn dates_are_written_as_their_scalar_writes_them() {
        let mut day = NaiveDate::from_ymd_opt(-3, 12, 25).unwrap();
        let last = NaiveDate::from_ymd_opt(10_001, 1, 3).unwrap();
        let mut checked = 0;
        while day <= last {
            assert_eq!(written(|o| o.date(&day)), serialized(&day), "{day:?}");
            // Every day around the edges, a prime stride in between.
            let stride = if day.year() < 3 || day.year() > 9998 {
                1
            } else {
                97
            };
            day = day + chrono::Days::new(stride);
            checked += 1;
        }
        assert!(checked > 38_000, "{checked}");
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        let mut every_control: String = (0u8..0x20).map(char::from).collect();
        every_control.push_str("\u{7f}\u{2028}");
        for text in [
            "",
            "plain",
            "quote \" and backslash \\ inside",
            "tab\tnew line\ncarriage\rfeed\u{c}back\u{8}",
            &every_control,
            "Zoë, 東京, emoji 🎉",
            "\\\"",
        ] {
            assert_eq!(
                written(|o| o.str(text)),
                serde_json::Value::String(text.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn decimals_and_values_are_written_as_async_graphql_serializes_them() {
        use rust_decimal::Decimal;
        for text in ["0", "95.55", "-0.5", "1234567890.123456789", "0.0001"] {
            let value: Decimal = text.parse().unwrap();
            assert_eq!(written(|o| o.decimal(&value)), serialized(&value));
            assert_eq!(written(|o| o.decimal(&value)), serde_json::json!(text));
        }
        for value in [
            Value::Null,
            Value::Boolean(true),
            Value::Number(42.into()),
            Value::Number(serde_json::Number::from_f64(2.5).unwrap()),
            Value::String("a \"b\"".into()),
            Value::Enum(Name::new("APPROVED")),
            Value::List(vec![Value::Number((-7).into()), Value::Null]),
            async_graphql::value!({ "a": [1, "b"], "c": { "d": null } }),
        ] {
            assert_eq!(
                written(|o| o.value(&value)),
                serde_json::to_value(&value).unwrap()
            );
        }
        assert_eq!(written(|o| o.int(i64::MIN)), serde_json::json!(i64::MIN));
        assert_eq!(written(|o| o.nullable_str(None)), serde_json::Value::Null);
    }

    #[test]
    fn written_text_is_serialized_as_it_is() {
        let mut out = Json::with_capacity(16);
        list([1, 2], &mut out, |n, o| {
            o.int(n);
            Some(())
        });
        let response = async_graphql::Response::new(async_graphql::value!({ "page": out.into_value() }));
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"data":{"page":[1,2]}}"#
        );
    }
}
