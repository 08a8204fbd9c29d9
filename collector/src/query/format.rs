//! Printing answers: aligned text tables, JSON, CSV.

use std::fmt::Write as _;
use std::str::FromStr;

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
    pub columns: Vec<&'static str>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with columns and no rows yet.
    pub fn new(name: &'static str, columns: &[&'static str]) -> Table {
        Table {
            name,
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "{}", self.name);
        self.rows.push(cells);
    }
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
        line(&mut out, &mut t.columns.iter().copied(), true);
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
        let rows = std::iter::once(t.columns.iter().map(|c| c.to_string()).collect::<Vec<_>>())
            .chain(t.rows.iter().cloned());
        for r in rows {
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

    fn sample() -> Vec<Table> {
        let mut a = Table::new("totals", &["name", "hits"]);
        a.row(vec!["listCoreV1Pod".into(), "12".into()]);
        a.row(vec!["a, \"quoted\"".into(), "3".into()]);
        let b = Table::new("empty", &["x"]);
        vec![a, b]
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
