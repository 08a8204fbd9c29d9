//! `search`: the functions and files seen in purposes whose names contain a text, with the
//! requests through them (`query search reconcile`).

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, src};
use super::{Answer, Filters, Given, LIMIT, Param, Query, Render, Result, Table};

/// `search`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The substring.
    pub q: String,
    /// Longest list returned.
    pub limit: usize,
}

impl Query for Params {
    const NAME: &'static str = "search";
    const PARAMS: &'static [Param] = &[
        Param::value("q", "TEXT", "Substring of functions and files"),
        LIMIT,
    ];
    const POSITIONAL: Option<&'static str> = Some("q");

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            q: g.text("q")?.ok_or(Given::missing("q"))?,
            limit: g.positive("limit")?.unwrap_or(50),
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(search(conn, f, &self.q, self.limit)?))
    }
}

/// A function matching a search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FunctionMatch {
    /// Function path.
    pub function: String,
    /// Its lines of code seen.
    pub locs: u64,
    /// Requests through it.
    pub hits: u64,
}

/// A file matching a search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileMatch {
    /// File.
    pub file: String,
    /// Its lines of code seen.
    pub locs: u64,
    /// Requests through it.
    pub hits: u64,
}

/// `search`: functions and files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchAnswer {
    /// Functions, by hits.
    pub functions: Vec<FunctionMatch>,
    /// Files, by hits.
    pub files: Vec<FileMatch>,
}

impl Render for SearchAnswer {
    fn tables(&self) -> Vec<Table> {
        vec![
            Table::of("functions", &self.functions),
            Table::of("files", &self.files),
        ]
    }
}

/// `search`.
fn search(conn: &Connection, f: &Filters, needle: &str, limit: usize) -> Result<SearchAnswer> {
    let mut sql = Sql::default();
    let n = sql.p(needle.to_owned());
    // frame_id, function, file, matched-by-function, matched-by-file.
    let frames = sql.rows(
        conn,
        &format!(
            "SELECT id, function, file, instr(function, {n}) > 0, instr(file, {n}) > 0 FROM frames \
             WHERE instr(function, {n}) > 0 OR instr(file, {n}) > 0 LIMIT 20000"
        ),
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        },
    )?;
    // Requests per frame under the filters: through the purposes that include it.
    let mut hits: HashMap<i64, u64> = HashMap::new();
    for chunk in frames.chunks(500) {
        let list = chunk
            .iter()
            .map(|x| x.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut q = Sql::default();
        let s = src(&mut q, f);
        for (fr, h) in q.rows(
            conn,
            &format!(
                "{s}, pf AS (SELECT DISTINCT frame_id, purpose_id FROM purpose_frames WHERE frame_id IN ({list})), \
                 ph AS (SELECT purpose_id, SUM(hits) AS hits FROM src WHERE purpose_id IN (SELECT purpose_id FROM pf) GROUP BY purpose_id) \
                 SELECT pf.frame_id, SUM(ph.hits) FROM pf JOIN ph ON ph.purpose_id = pf.purpose_id GROUP BY pf.frame_id"
            ),
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)),
        )? {
            hits.insert(fr, h);
        }
    }
    let mut functions: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut files: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (id, function, file, by_fn, by_file) in &frames {
        let h = hits.get(id).copied().unwrap_or(0);
        if *by_fn {
            let e = functions.entry(function).or_default();
            e.0 += 1;
            e.1 += h;
        }
        if *by_file {
            let e = files.entry(file).or_default();
            e.0 += 1;
            e.1 += h;
        }
    }
    let mut functions: Vec<FunctionMatch> = functions
        .into_iter()
        .map(|(k, (locs, hits))| FunctionMatch {
            function: k.to_owned(),
            locs,
            hits,
        })
        .collect();
    functions.sort_by(|a, b| {
        b.hits
            .cmp(&a.hits)
            .then_with(|| a.function.cmp(&b.function))
    });
    functions.truncate(limit);
    let mut files: Vec<FileMatch> = files
        .into_iter()
        .map(|(k, (locs, hits))| FileMatch {
            file: k.to_owned(),
            locs,
            hits,
        })
        .collect();
    files.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.file.cmp(&b.file)));
    files.truncate(limit);
    Ok(SearchAnswer { functions, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "search",
            &[("q", "reconcile")],
            Params {
                q: "reconcile".into(),
                limit: 50,
            },
        );
    }
}
