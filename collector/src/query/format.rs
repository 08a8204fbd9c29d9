//! Printing answers: aligned text tables, JSON, CSV. A table is built from rows that derive
//! `Serialize` ([`Table::of`]): a row's fields are its columns, so the JSON and the table of an
//! answer cannot drift apart.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// How an answer is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// Pretty JSON: the HTTP API's body.
    Json,
    /// CSV (RFC 4180 quoting); several tables each under a `# <name>` line.
    Csv,
}

impl Format {
    /// Whether it is CSV.
    pub fn is_csv(self) -> bool {
        self == Format::Csv
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("unknown format {s:?}: expected table, json or csv")),
        }
    }
}

/// One table of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Its name (the heading when an answer has several).
    pub name: &'static str,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table of rows, one column per field as the row serializes (flattened fields included;
    /// `None` an empty cell). The columns are the first row's, or a default row's when there is
    /// none, so an empty table still has its header.
    pub fn of<R: Serialize + Default>(name: &'static str, rows: &[R]) -> Table {
        let mut columns = Vec::new();
        let mut cells = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let row = row_of(r);
            if i == 0 {
                columns = row.iter().map(|(k, _)| k.clone()).collect();
            }
            debug_assert_eq!(
                row.len(),
                columns.len(),
                "{name}: every row has every column"
            );
            cells.push(row.into_iter().map(|(_, v)| v).collect());
        }
        if rows.is_empty() {
            columns = row_of(&R::default()).into_iter().map(|(k, _)| k).collect();
        }
        Table {
            name,
            columns,
            rows: cells,
        }
    }
}

/// A row's (column, cell) pairs. Rows are the answers' own types, flat by construction (the
/// golden tests print every one): a nested value is a bug, not input.
fn row_of<R: Serialize>(r: &R) -> Vec<(String, String)> {
    let mut row = Row(Vec::new());
    r.serialize(&mut row)
        .unwrap_or_else(|e| panic!("a table row is flat: {e}"));
    row.0
}

/// Why a value is not a table row or cell.
#[derive(Debug)]
struct NotFlat(String);

impl fmt::Display for NotFlat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFlat {}

impl ser::Error for NotFlat {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NotFlat(msg.to_string())
    }
}

fn not_flat<T>(what: &str) -> Result<T, NotFlat> {
    Err(NotFlat(format!("{what} is not a table cell")))
}

/// Serializes a struct (or a map, which `#[serde(flatten)]` makes of it) into named cells.
struct Row(Vec<(String, String)>);

/// Serializes one scalar into its cell text.
struct Cell;

/// The compound values no cell holds and no row is: lists, tuples, bytes, struct variants.
macro_rules! not_compound {
    () => {
        fn serialize_bytes(self, _: &[u8]) -> Result<Self::Ok, NotFlat> {
            not_flat("bytes")
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotFlat> {
            not_flat("a list")
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotFlat> {
            not_flat("a tuple")
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, NotFlat> {
            not_flat("a tuple")
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, NotFlat> {
            not_flat("a tuple")
        }
        fn serialize_struct_variant(
            self,
            name: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, NotFlat> {
            not_flat(name)
        }
    };
}

/// A row is named cells: one scalar is not a row.
macro_rules! not_cells {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, _: $t) -> Result<(), NotFlat> {
            not_flat("a row of one value")
        }
    )*};
}

macro_rules! cell_display {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<String, NotFlat> {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for Cell {
    type Ok = String;
    type Error = NotFlat;
    type SerializeSeq = Impossible<String, NotFlat>;
    type SerializeTuple = Impossible<String, NotFlat>;
    type SerializeTupleStruct = Impossible<String, NotFlat>;
    type SerializeTupleVariant = Impossible<String, NotFlat>;
    type SerializeMap = Impossible<String, NotFlat>;
    type SerializeStruct = Impossible<String, NotFlat>;
    type SerializeStructVariant = Impossible<String, NotFlat>;

    cell_display!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
        serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_f32: f32, serialize_f64: f64,
        serialize_char: char, serialize_str: &str);

    fn serialize_none(self) -> Result<String, NotFlat> {
        Ok(String::new())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<String, NotFlat> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, NotFlat> {
        Ok(String::new())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, NotFlat> {
        Ok(String::new())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, NotFlat> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, NotFlat> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<String, NotFlat> {
        v.serialize(self)
    }
    not_compound!();
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotFlat> {
        not_flat("a map")
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotFlat> {
        not_flat(name)
    }
}

impl ser::SerializeStruct for &mut Row {
    type Ok = ();
    type Error = NotFlat;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), NotFlat> {
        self.0.push((key.to_owned(), v.serialize(Cell)?));
        Ok(())
    }
    fn skip_field(&mut self, _: &'static str) -> Result<(), NotFlat> {
        Ok(())
    }
    fn end(self) -> Result<(), NotFlat> {
        Ok(())
    }
}

impl ser::SerializeMap for &mut Row {
    type Ok = ();
    type Error = NotFlat;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> Result<(), NotFlat> {
        self.0.push((k.serialize(Cell)?, String::new()));
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), NotFlat> {
        let cell = v.serialize(Cell)?;
        match self.0.last_mut() {
            Some(last) => last.1 = cell,
            None => return not_flat("a value without a key"),
        }
        Ok(())
    }
    fn end(self) -> Result<(), NotFlat> {
        Ok(())
    }
}

impl ser::Serializer for &mut Row {
    type Ok = ();
    type Error = NotFlat;
    type SerializeSeq = Impossible<(), NotFlat>;
    type SerializeTuple = Impossible<(), NotFlat>;
    type SerializeTupleStruct = Impossible<(), NotFlat>;
    type SerializeTupleVariant = Impossible<(), NotFlat>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), NotFlat>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, NotFlat> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, NotFlat> {
        Ok(self)
    }
    not_cells!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16,
        serialize_i32: i32, serialize_i64: i64, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_f32: f32, serialize_f64: f64,
        serialize_char: char, serialize_str: &str);

    fn serialize_none(self) -> Result<(), NotFlat> {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), NotFlat> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotFlat> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotFlat> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), NotFlat> {
        not_flat("a row of one name")
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), NotFlat> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), NotFlat> {
        v.serialize(self)
    }
    not_compound!();
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.parse::<f64>().is_ok()
}

/// Renders tables as aligned text: numbers right-aligned, the rest left; a heading per table
/// when there are several.
pub(crate) fn text(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if tables.len() > 1 {
            let _ = writeln!(out, "{}:", t.name);
        }
        let n = t.columns.len();
        let mut width: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
        let mut numeric = vec![true; n];
        for r in &t.rows {
            for (j, c) in r.iter().enumerate() {
                width[j] = width[j].max(c.chars().count());
                numeric[j] &= c.is_empty() || is_number(c);
            }
        }
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>, header: bool| {
            let mut s = String::new();
            for (j, c) in cells.enumerate() {
                if j > 0 {
                    s.push_str("  ");
                }
                let pad = width[j] - c.chars().count();
                if numeric[j] && !header && !t.rows.is_empty() {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if j + 1 < n {
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        line(&mut out, &mut t.columns.iter().map(String::as_str), true);
        for r in &t.rows {
            line(&mut out, &mut r.iter().map(String::as_str), false);
        }
        if t.rows.is_empty() {
            out.push_str("(none)\n");
        }
    }
    out
}

fn csv_cell(out: &mut String, c: &str) {
    if c.contains([',', '"', '\n', '\r']) || c.starts_with(' ') || c.ends_with(' ') {
        out.push('"');
        out.push_str(&c.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(c);
    }
}

/// Renders tables as CSV; several tables each under a `# <name>` line, separated by a blank line.
pub(crate) fn csv(tables: &[Table]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if tables.len() > 1 {
            let _ = writeln!(out, "# {}", t.name);
        }
        for r in std::iter::once(&t.columns).chain(&t.rows) {
            for (j, c) in r.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                csv_cell(&mut out, c);
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Serialize)]
    struct Hits<'a> {
        name: &'a str,
        hits: u64,
    }

    #[derive(Default, Serialize)]
    struct Flat {
        x: Option<String>,
    }

    fn sample() -> Vec<Table> {
        let a = Table::of(
            "totals",
            &[
                Hits {
                    name: "listCoreV1Pod",
                    hits: 12,
                },
                Hits {
                    name: "a, \"quoted\"",
                    hits: 3,
                },
            ],
        );
        let b = Table::of::<Flat>("empty", &[]);
        vec![a, b]
    }

    #[test]
    fn rows_flatten_and_options_print_empty() {
        #[derive(Default, Serialize)]
        struct Outer<'a> {
            app: Option<&'a str>,
            #[serde(flatten)]
            inner: Hits<'a>,
            #[serde(flatten)]
            more: Option<Flat>,
            conformance: bool,
        }
        let t = Table::of(
            "t",
            &[Outer {
                app: None,
                inner: Hits { name: "n", hits: 2 },
                more: Some(Flat { x: None }),
                conformance: true,
            }],
        );
        assert_eq!(t.columns, ["app", "name", "hits", "x", "conformance"]);
        assert_eq!(t.rows, [["", "n", "2", "", "true"]]);
    }

    #[test]
    fn text_aligns_numbers_right_and_names_tables() {
        let t = sample();
        assert_eq!(
            text(&t[..1]),
            "name           hits\nlistCoreV1Pod    12\na, \"quoted\"       3\n"
        );
        assert_eq!(
            text(&t),
            "totals:\nname           hits\nlistCoreV1Pod    12\na, \"quoted\"       3\n\nempty:\nx\n(none)\n"
        );
    }

    #[test]
    fn csv_quotes_per_rfc4180() {
        let t = sample();
        assert_eq!(
            csv(&t[..1]),
            "name,hits\nlistCoreV1Pod,12\n\"a, \"\"quoted\"\"\",3\n"
        );
        assert_eq!(
            csv(&t),
            "# totals\nname,hits\nlistCoreV1Pod,12\n\"a, \"\"quoted\"\"\",3\n\n# empty\nx\n"
        );
    }

    #[test]
    fn format_parses_its_three_names_only() {
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        assert_eq!("csv".parse::<Format>().unwrap(), Format::Csv);
        assert_eq!("table".parse::<Format>().unwrap(), Format::Table);
        assert!(
            "yaml"
                .parse::<Format>()
                .unwrap_err()
                .contains("table, json or csv")
        );
    }
}
