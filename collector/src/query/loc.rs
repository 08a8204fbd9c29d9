//! `loc`: the whakapapa of a line of code: the endpoints its requests reach
//! (`query loc src/main.rs:17`, a file, or a function path prefix).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, release, src};
use super::usage::{CodeHits, Method, codes_cell};
use super::{Answer, Filters, Frame, Given, Param, Query, Render, Result, Table};

/// `loc`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// What to look for.
    pub loc: LocSpec,
    /// As given.
    pub text: String,
}

impl Query for Params {
    const NAME: &'static str = "loc";
    const PARAMS: &'static [Param] = &[Param::value(
        "loc",
        "LOC",
        "`file:line`, a file, or a function path prefix",
    )];
    const POSITIONAL: Option<&'static str> = Some("loc");

    fn parse(g: &mut Given) -> Result<Self> {
        let (loc, text) = g
            .parsed(&["loc"], |k, v| {
                let spec = v
                    .parse::<LocSpec>()
                    .map_err(|expected| super::Error::BadValue {
                        name: k.to_owned(),
                        value: v.to_owned(),
                        expected,
                    })?;
                Ok((spec, v.trim().to_owned()))
            })?
            .ok_or(Given::missing("loc"))?;
        Ok(Params { loc, text })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(loc_query(conn, f, &self.loc, &self.text)?))
    }
}

/// A line of code, a file, or a function path prefix, as `loc` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocSpec {
    /// `file:line`.
    FileLine(String, i64),
    /// A file (matched whole, or as the tail of a path after a `/`).
    File(String),
    /// A function path prefix (`shop_controller::inventory`).
    Function(String),
}

impl FromStr for LocSpec {
    type Err = &'static str;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("file:line, a file or a function path prefix");
        }
        if let Some((file, line)) = s.rsplit_once(':')
            && !file.ends_with(':')
            && !file.is_empty()
            && let Ok(line) = line.parse::<i64>()
        {
            return Ok(LocSpec::FileLine(file.to_owned(), line));
        }
        let last = s.rsplit('/').next().unwrap_or(s);
        if !s.contains("::") && (s.contains('/') || last.contains('.')) {
            Ok(LocSpec::File(s.to_owned()))
        } else {
            Ok(LocSpec::Function(s.to_owned()))
        }
    }
}

/// An endpoint reached from a line of code, with one verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocEndpoint {
    /// operationId.
    pub endpoint: String,
    /// HTTP method.
    pub method: Method,
    /// Path template.
    pub path: String,
    /// Audit verb.
    pub verb: String,
    /// Requests.
    pub hits: u64,
    /// Distinct identities.
    pub apps: u64,
    /// By status code.
    pub codes: Vec<CodeHits>,
}

/// `loc`: the whakapapa of a line of code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocAnswer {
    /// As asked.
    pub loc: String,
    /// Lines of code that matched.
    pub matched: Vec<Frame>,
    /// What they reach.
    pub endpoints: Vec<LocEndpoint>,
}

/// An endpoint as the table lists it: its codes in one cell.
#[derive(Default, Serialize)]
struct EndpointCells<'a> {
    endpoint: &'a str,
    method: Method,
    path: &'a str,
    verb: &'a str,
    hits: u64,
    apps: u64,
    codes: String,
}

impl Render for LocAnswer {
    fn tables(&self) -> Vec<Table> {
        let endpoints: Vec<EndpointCells<'_>> = self
            .endpoints
            .iter()
            .map(|r| EndpointCells {
                endpoint: &r.endpoint,
                method: r.method,
                path: &r.path,
                verb: &r.verb,
                hits: r.hits,
                apps: r.apps,
                codes: codes_cell(&r.codes),
            })
            .collect();
        vec![
            Table::of("matched", &self.matched),
            Table::of("endpoints", &endpoints),
        ]
    }
}

/// Frame ids matching a loc spec (at most 10,000). A file is matched whole through the
/// `frames_by_file` index; only when nothing matches whole is it matched as the tail of a path
/// after a `/` (a scan of `frames`).
fn matching_frames(conn: &Connection, loc: &LocSpec) -> Result<Vec<(i64, Frame)>> {
    let select = |cond: &str, sql: &Sql| {
        sql.rows(
            conn,
            &format!(
                "SELECT id, function, file, line FROM frames WHERE {cond} \
                 ORDER BY function, file, line LIMIT 10000"
            ),
            |r| {
                Ok((
                    r.get(0)?,
                    Frame {
                        function: r.get(1)?,
                        file: r.get(2)?,
                        line: r.get(3)?,
                    },
                ))
            },
        )
    };
    match loc {
        LocSpec::FileLine(file, _) | LocSpec::File(file) => {
            let line = match loc {
                LocSpec::FileLine(_, l) => Some(*l),
                _ => None,
            };
            let mut sql = Sql::default();
            let fl = sql.p(file.clone());
            let at = line
                .map(|l| format!(" AND line = {}", sql.p(l)))
                .unwrap_or_default();
            let exact = select(&format!("file = {fl}{at}"), &sql)?;
            if !exact.is_empty() {
                return Ok(exact);
            }
            select(
                &format!("substr(file, -(length({fl}) + 1)) = '/' || {fl}{at}"),
                &sql,
            )
        }
        LocSpec::Function(prefix) => {
            // A range on the (function, file, line) index: every string with the prefix sorts
            // between the prefix and the prefix followed by the greatest code point.
            let mut sql = Sql::default();
            let lo = sql.p(prefix.clone());
            let hi = sql.p(format!("{prefix}\u{10FFFF}"));
            select(&format!("function >= {lo} AND function < {hi}"), &sql)
        }
    }
}

/// `loc`.
fn loc_query(conn: &Connection, f: &Filters, loc: &LocSpec, text: &str) -> Result<LocAnswer> {
    let (rid, _, _) = release(conn, f)?;
    let matched = matching_frames(conn, loc)?;
    let mut endpoints = Vec::new();
    if !matched.is_empty() {
        let list = matched
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut q = Sql::default();
        let s = src(&mut q, f);
        let r = q.p(rid);
        let rows = q.rows(
            conn,
            &format!(
                "{s}, p AS (SELECT DISTINCT purpose_id FROM purpose_frames WHERE frame_id IN ({list})) \
                 SELECT e.operation_id, e.method, e.path, s.verb, s.code, s.identity_id, SUM(s.hits) \
                 FROM p JOIN src s ON s.purpose_id = p.purpose_id \
                 JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
                 GROUP BY s.endpoint_id, s.verb, s.code, s.identity_id"
            ),
            |x| {
                Ok((
                    (x.get::<_, String>(0)?, x.get::<_, Method>(1)?, x.get::<_, String>(2)?, x.get::<_, String>(3)?),
                    x.get::<_, i64>(4)?,
                    x.get::<_, i64>(5)?,
                    x.get::<_, i64>(6)? as u64,
                ))
            },
        )?;
        // (endpoint, method, path, verb) -> (hits, identities, hits by code)
        type Key = (String, Method, String, String);
        type Use = (u64, BTreeSet<i64>, BTreeMap<i64, u64>);
        let mut by: BTreeMap<Key, Use> = BTreeMap::new();
        for (k, code, ident, hits) in rows {
            let e = by.entry(k).or_default();
            e.0 += hits;
            if ident != 0 {
                e.1.insert(ident);
            }
            *e.2.entry(code).or_default() += hits;
        }
        endpoints = by
            .into_iter()
            .map(|((endpoint, method, path, verb), (hits, apps, codes))| {
                let mut codes: Vec<CodeHits> = codes
                    .into_iter()
                    .map(|(code, hits)| CodeHits { code, hits })
                    .collect();
                codes.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.code.cmp(&b.code)));
                LocEndpoint {
                    endpoint,
                    method,
                    path,
                    verb,
                    hits,
                    apps: apps.len() as u64,
                    codes,
                }
            })
            .collect();
        endpoints.sort_by(|a, b| {
            b.hits
                .cmp(&a.hits)
                .then_with(|| (&a.endpoint, &a.verb).cmp(&(&b.endpoint, &b.verb)))
        });
    }
    Ok(LocAnswer {
        loc: text.to_owned(),
        matched: matched.into_iter().map(|(_, f)| f).collect(),
        endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "loc",
            &[("loc", "src/main.rs:17")],
            Params {
                loc: LocSpec::FileLine("src/main.rs".into(), 17),
                text: "src/main.rs:17".into(),
            },
        );
    }

    #[test]
    fn loc_spec_tells_lines_files_and_functions_apart() {
        let cases = [
            (
                "src/inventory.rs:42",
                LocSpec::FileLine("src/inventory.rs".into(), 42),
            ),
            ("inventory.rs", LocSpec::File("inventory.rs".into())),
            ("src/inventory.rs", LocSpec::File("src/inventory.rs".into())),
            (
                "shop_controller::inventory",
                LocSpec::Function("shop_controller::inventory".into()),
            ),
            ("main", LocSpec::Function("main".into())),
            (
                "kube_client::api::Api<K>::list",
                LocSpec::Function("kube_client::api::Api<K>::list".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<LocSpec>().unwrap(), want, "{text}");
        }
    }
}
