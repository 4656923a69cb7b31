//! Response values built straight from rows a resolver already holds, for the hottest pages.
//!
//! The general executor resolves every field of every row as a boxed future, gathers them
//! in a set and merges the results into a map: for a 100-row page of entries with their
//! project, client, task and user that is some 1,500 futures, and most of the request's
//! time. When a page's selection is made only of plain fields (fields, aliases,
//! `__typename`, fragments on the object's own type), its value can be written out
//! directly, in selection order, with no future at all. Anything else (a custom directive,
//! field arguments, a fragment on an interface, one response key selected twice with
//! sub-selections, a field that needs its resolver) makes [`object`] answer `None`, and the
//! caller then hands the page to the general executor: the two must answer alike, which the
//! tests check field by field (`tests/time.rs`).
//!
//! `@skip` and `@include` are applied before execution, so they never reach here. Schema
//! extensions (none are installed) would not see the fields written here.

use async_graphql::indexmap::IndexMap;
use async_graphql::indexmap::map::Entry;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::{ContextSelectionSet, ID, ScalarType, Value};
use chrono::{Datelike, NaiveDate};

/// The value of an object of type `type_name` for the selection `set`: each selected field
/// through `value_of`, which answers `None` for a field it cannot write directly (and then
/// so does this).
pub fn object<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    type_name: &str,
    mut value_of: impl FnMut(&'a Field) -> Option<Value>,
) -> Option<Value> {
    let mut fields = Vec::with_capacity(set.items.len());
    collect(ctx, set, type_name, &mut fields)?;
    let mut map = IndexMap::with_capacity(fields.len());
    for field in fields {
        match map.entry(field.response_key().node.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(if field.name.node == "__typename" {
                    Value::String(type_name.to_owned())
                } else {
                    value_of(field)?
                });
            }
            // Validation lets a key repeat only for the same field with the same
            // arguments; a leaf then has one value, an object's selections would merge.
            Entry::Occupied(_) if field.selection_set.node.items.is_empty() => {}
            Entry::Occupied(_) => return None,
        }
    }
    Some(Value::Object(map))
}

/// The fields `set` selects on `type_name`, through its fragments, in order.
fn collect<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    type_name: &str,
    out: &mut Vec<&'a Field>,
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

/// A list of objects, each through `item`.
pub fn list<T>(
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(T) -> Option<Value>,
) -> Option<Value> {
    items
        .into_iter()
        .map(&mut item)
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
}

/// A scalar as its GraphQL type writes it.
pub fn scalar<T: ScalarType>(value: &T) -> Value {
    value.to_value()
}

/// A nullable scalar.
pub fn nullable<T: ScalarType>(value: Option<&T>) -> Value {
    value.map_or(Value::Null, ScalarType::to_value)
}

pub fn string(value: &str) -> Value {
    Value::String(value.to_owned())
}

pub fn nullable_string(value: Option<&str>) -> Value {
    value.map_or(Value::Null, string)
}

/// An enum value, as its GraphQL enum writes it.
pub fn enumeration<T: async_graphql::InputType>(value: &T) -> Value {
    value.to_value()
}

/// A date as its scalar writes it (`%Y-%m-%d`), without parsing a format string each time.
pub fn date(value: &NaiveDate) -> Value {
    let year = value.year();
    if !(0..=9999).contains(&year) {
        return scalar(value);
    }
    let digits = |n: u32| {
        [
            char::from(b'0' + (n / 10) as u8),
            char::from(b'0' + (n % 10) as u8),
        ]
    };
    let mut text = String::with_capacity(10);
    text.extend(digits(year as u32 / 100));
    text.extend(digits(year as u32 % 100));
    text.push('-');
    text.extend(digits(value.month()));
    text.push('-');
    text.extend(digits(value.day()));
    Value::String(text)
}

/// A node's global id.
pub fn id(type_name: &str, id: i64) -> Value {
    scalar::<ID>(&super::global_id(type_name, id))
}

/// The name of a field, for matching in `value_of`.
pub fn name(field: &Field) -> &str {
    field.name.node.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_their_scalar_writes_them() {
        let mut day = NaiveDate::from_ymd_opt(-3, 12, 25).unwrap();
        let last = NaiveDate::from_ymd_opt(10_001, 1, 3).unwrap();
        let mut checked = 0;
        while day <= last {
            assert_eq!(date(&day), scalar(&day), "{day:?}");
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
}
