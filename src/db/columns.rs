//! Rows read in part: a statement that selects only the columns its request's fields read,
//! and rows filled from whichever columns came back, by name.
//!
//! A table that can be read so lists its columns ([`ReadInPart::COLUMNS`]), each with the
//! fields of its GraphQL type that read it; the keys are read whenever the table is. A
//! request's selection gives the columns to read ([`Picked`]); the statement names each
//! `<alias><index>` (`p3` is column 3 of the table aliased `p`), and [`ReadInPart::set`]
//! fills that column of a row that starts out [blank](ReadInPart::blank). What writes a
//! field of such a row asks [`Partial::for_field`] first: a field whose columns were not
//! read is never written from the placeholders.

use std::marker::PhantomData;

use diesel::deserialize;
use diesel::pg::PgValue;

/// A column of a table read in part.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// The fields of the table's GraphQL type that read it; `None` for a key, read
    /// whenever the table is.
    pub fields: Option<&'static [&'static str]>,
}

/// A table whose rows can be read in part.
pub trait ReadInPart: Sized {
    /// The table's alias in a statement: one letter, which begins each column's name.
    const ALIAS: &'static str;
    const TABLE: &'static str;
    /// Its columns, at most 32.
    const COLUMNS: &'static [Column];
    /// A row with a placeholder in every column, for the columns read to overwrite.
    fn blank() -> Self;
    /// Sets column `index` of [`Self::COLUMNS`] from its value as PostgreSQL sent it.
    fn set(&mut self, index: usize, value: Option<PgValue<'_>>) -> deserialize::Result<()>;
}

/// Which columns of `T`'s table a statement reads: one bit for each of its
/// [`ReadInPart::COLUMNS`].
pub struct Picked<T> {
    bits: u32,
    table: PhantomData<fn() -> T>,
}

impl<T> Clone for Picked<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Picked<T> {}

impl<T> PartialEq for Picked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<T> Eq for Picked<T> {}

impl<T> std::fmt::Debug for Picked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Picked({:#b})", self.bits)
    }
}

impl<T: ReadInPart> Picked<T> {
    fn from_bits(bits: u32) -> Self {
        Self {
            bits,
            table: PhantomData,
        }
    }

    fn matching(keep: impl Fn(&Column) -> bool) -> Self {
        let bits = T::COLUMNS
            .iter()
            .enumerate()
            .filter(|(_, c)| keep(c))
            .fold(0, |bits, (i, _)| bits | 1 << i);
        Self::from_bits(bits)
    }

    /// The keys alone.
    pub fn keys() -> Self {
        Self::matching(|c| c.fields.is_none())
    }

    /// Every column.
    pub fn all() -> Self {
        Self::matching(|_| true)
    }

    /// The keys and what field `name` reads.
    pub fn of_field(name: &str) -> Self {
        Self::matching(|c| c.fields.is_none_or(|fields| fields.contains(&name)))
    }

    /// These and what field `name` reads.
    #[must_use]
    pub fn and_field(self, name: &str) -> Self {
        self.with(Self::of_field(name))
    }

    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self::from_bits(self.bits | other.bits)
    }

    /// Whether every column of `other` is here.
    pub fn covers(self, other: Self) -> bool {
        other.bits & !self.bits == 0
    }

    pub fn is_all(self) -> bool {
        self == Self::all()
    }

    /// The columns read, with their indexes.
    pub fn columns(self) -> impl Iterator<Item = (usize, &'static Column)> {
        T::COLUMNS
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.bits & (1 << i) != 0)
    }

    /// Appends `alias.column AS alias<index>` for each column read, after a comma unless
    /// `sql` holds nothing yet after `SELECT `.
    pub fn write_select(self, sql: &mut String) {
        use std::fmt::Write as _;
        for (i, column) in self.columns() {
            if !sql.ends_with("SELECT ") {
                sql.push_str(", ");
            }
            let _ = write!(sql, "{a}.{} AS {a}{i}", column.name, a = T::ALIAS);
        }
    }
}

/// A row read in part, with which of its columns were read.
pub struct Partial<'r, T> {
    pub row: &'r T,
    pub picked: Picked<T>,
}

impl<T> Clone for Partial<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Partial<'_, T> {}

impl<'r, T: ReadInPart> Partial<'r, T> {
    /// The row, when field `name` reads only columns that were read.
    pub fn for_field(self, name: &str) -> Option<&'r T> {
        self.picked.covers(Picked::of_field(name)).then_some(self.row)
    }
}

/// Implements [`ReadInPart`] for a row type whose fields are named as its columns:
///
/// ```ignore
/// read_in_part!(Client, "c", "clients", blank: Client { .. }, {
///     id: BigInt => key,
///     name: Text => ["name"],
///     role: Text as String => ["role"],   // read as a String, then `.into()` the field
/// });
/// ```
macro_rules! read_in_part {
    ($row:ty, $alias:literal, $table:literal, blank: $blank:expr,
     { $($column:ident: $st:ty $(as $via:ty)? => $fields:tt),+ $(,)? }) => {
        impl $crate::db::columns::ReadInPart for $row {
            const ALIAS: &'static str = $alias;
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [$crate::db::columns::Column] = &[$(
                $crate::db::columns::Column {
                    name: stringify!($column),
                    fields: $crate::db::columns::read_in_part!(@fields $fields),
                }
            ),+];

            fn blank() -> Self {
                $blank
            }

            fn set(
                &mut self,
                index: usize,
                value: Option<diesel::pg::PgValue<'_>>,
            ) -> diesel::deserialize::Result<()> {
                #[allow(non_camel_case_types)]
                #[derive(Clone, Copy)]
                enum C { $($column),+ }
                const ALL: &[C] = &[$(C::$column),+];
                #[allow(unused_imports)]
                use diesel::sql_types::*;
                match ALL.get(index).ok_or("a column the table does not have")? {
                    $(C::$column => {
                        self.$column = $crate::db::columns::read_in_part!(@decode value, $st $(, $via)?);
                    })+
                }
                Ok(())
            }
        }
    };
    (@fields key) => { None };
    (@fields [$($field:literal),* $(,)?]) => { Some(&[$($field),*]) };
    (@decode $value:ident, $st:ty) => {
        diesel::deserialize::FromSql::<$st, diesel::pg::Pg>::from_nullable_sql($value)?
    };
    (@decode $value:ident, $st:ty, $via:ty) => {
        <$via as diesel::deserialize::FromSql<$st, diesel::pg::Pg>>::from_nullable_sql($value)?.into()
    };
}
pub(crate) use read_in_part;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Thing {
        id: i64,
        name: String,
        note: Option<String>,
        count: i32,
    }

    read_in_part!(Thing, "x", "things", blank: Thing::default(), {
        id: BigInt => key,
        name: Text => ["name", "label"],
        note: Nullable<Text> => ["note"],
        count: Integer as i32 => ["count", "label"],
    });

    #[test]
    fn fields_pick_their_columns_and_the_keys() {
        assert_eq!(Picked::<Thing>::keys().columns().count(), 1);
        let label = Picked::<Thing>::of_field("label");
        let names: Vec<_> = label.columns().map(|(i, c)| (i, c.name)).collect();
        assert_eq!(names, [(0, "id"), (1, "name"), (3, "count")]);
        assert!(label.covers(Picked::of_field("name")));
        assert!(!label.covers(Picked::of_field("note")));
        assert!(
            label.covers(Picked::of_field("unknown")),
            "a field naming no column reads the keys"
        );
        assert!(!label.is_all());
        assert!(label.and_field("note").is_all());
        let mut sql = "SELECT ".to_owned();
        label.write_select(&mut sql);
        assert_eq!(sql, "SELECT x.id AS x0, x.name AS x1, x.count AS x3");
    }

    #[test]
    fn a_partial_row_answers_only_for_fields_whose_columns_were_read() {
        let row = Thing::blank();
        let partial = Partial {
            row: &row,
            picked: Picked::<Thing>::of_field("name"),
        };
        assert!(partial.for_field("name").is_some());
        assert!(partial.for_field("label").is_none(), "label reads count too");
        assert!(partial.for_field("note").is_none());
    }

    #[test]
    fn a_null_sets_only_a_nullable_column_and_a_wrong_index_is_refused() {
        let mut row = Thing {
            note: Some("old".into()),
            ..Thing::blank()
        };
        row.set(2, None).unwrap();
        assert_eq!(row.note, None);
        assert!(row.set(0, None).is_err(), "a key is never NULL");
        assert!(row.set(1, None).is_err());
        assert!(row.set(4, None).is_err(), "there is no column 4");
    }
}
