//! Endpoints with their use: the rows `coverage`, `sunburst`, `endpoints`, `endpoint` and the
//! APISnoop export are built from, and the counts they add up.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::sql::{Sql, src};
use super::{Counting, Filters, Result};
pub use crate::catalog::{Level, Method};

/// An endpoint as the release's catalog describes it: what every answer that lists endpoints
/// shows of one, flattened into the rows that add counts to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// operationId.
    #[serde(rename = "endpoint")]
    pub operation_id: String,
    /// HTTP method.
    pub method: Method,
    /// Path template.
    pub path: String,
    /// Maturity.
    pub level: Level,
    /// Category.
    pub category: String,
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// `x-kubernetes-action`.
    pub action: String,
    /// The operation's description, when the answer carries it (APISnoop's export).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Endpoint {
    /// The columns [`Endpoint::from_row`] reads, of `endpoints e`.
    pub(crate) const COLUMNS: &'static str = "e.operation_id, e.method, e.path, e.level, \
        e.category, e.api_group, e.version, e.kind, e.action";

    /// An endpoint from [`Endpoint::COLUMNS`] at `at..at + 9` (without its description).
    pub(crate) fn from_row(x: &Row<'_>, at: usize) -> rusqlite::Result<Endpoint> {
        Ok(Endpoint {
            operation_id: x.get(at)?,
            method: x.get(at + 1)?,
            path: x.get(at + 2)?,
            level: x.get(at + 3)?,
            category: x.get(at + 4)?,
            group: x.get(at + 5)?,
            version: x.get(at + 6)?,
            kind: x.get(at + 7)?,
            action: x.get(at + 8)?,
            description: None,
        })
    }
}

/// A stored name that is not one of ours: the database was not written by this collector.
fn not_ours(what: &str, name: &str) -> FromSqlError {
    FromSqlError::Other(format!("{what} {name:?} is not one the catalog writes").into())
}

impl FromSql for Method {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = v.as_str()?;
        Method::from_name(name).ok_or_else(|| not_ours("method", name))
    }
}

impl FromSql for Level {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        match v.as_str()? {
            "alpha" => Ok(Level::Alpha),
            "beta" => Ok(Level::Beta),
            "stable" => Ok(Level::Stable),
            other => Err(not_ours("level", other)),
        }
    }
}

/// An endpoint with its use (APISnoop's field names plus counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointRow {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Hit by a request counted under the query's `counting`.
    pub tested: bool,
    /// Hit by a conformance test.
    pub conf_tested: bool,
    /// Conformance eligible.
    pub eligible: bool,
    /// Pending eligibility (the release's pending eligible list names it): not eligible yet.
    pub pending: bool,
    /// Requests.
    pub hits: u64,
    /// Distinct identities.
    pub apps: u64,
    /// Distinct tests.
    pub tests: u64,
    /// Distinct lines of code.
    pub locs: u64,
}

/// Endpoint counts of a set of endpoints.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Endpoints.
    pub total: u64,
    /// Tested.
    pub tested: u64,
    /// Hit by a conformance test.
    pub conf_tested: u64,
    /// Conformance eligible.
    pub eligible: u64,
    /// Eligible and tested.
    pub tested_eligible: u64,
    /// Eligible and hit by a conformance test.
    pub conf_tested_eligible: u64,
    /// Pending eligibility: not in `eligible`.
    pub pending: u64,
    /// Pending and hit by a conformance test.
    pub conf_tested_pending: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, r: &EndpointRow) {
        self.total += 1;
        self.tested += r.tested as u64;
        self.conf_tested += r.conf_tested as u64;
        self.eligible += r.eligible as u64;
        self.tested_eligible += (r.eligible && r.tested) as u64;
        self.conf_tested_eligible += (r.eligible && r.conf_tested) as u64;
        self.pending += r.pending as u64;
        self.conf_tested_pending += (r.pending && r.conf_tested) as u64;
    }

    pub(crate) fn of(rows: &[&EndpointRow]) -> Counts {
        let mut c = Counts::default();
        rows.iter().for_each(|r| c.add(r));
        c
    }
}

/// A level's place in APISnoop's order: stable, beta, alpha.
pub(crate) fn level_rank(level: Level) -> Reverse<Level> {
    Reverse(level)
}

/// Rows by level (APISnoop's order) and category.
pub(crate) fn grouped(rows: &[EndpointRow]) -> BTreeMap<(Reverse<Level>, &str), Vec<&EndpointRow>> {
    let mut by: BTreeMap<(Reverse<Level>, &str), Vec<&EndpointRow>> = BTreeMap::new();
    for r in rows {
        by.entry((level_rank(r.endpoint.level), r.endpoint.category.as_str()))
            .or_default()
            .push(r);
    }
    by
}

/// Sorts endpoint rows as `endpoints` lists them: level, category, name.
pub fn sort_endpoints(rows: &mut [EndpointRow]) {
    rows.sort_by(|a, b| {
        let key = |r: &EndpointRow| {
            let e = &r.endpoint;
            (
                level_rank(e.level),
                e.category.clone(),
                e.operation_id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// A count per status code (0: no response seen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CodeHits {
    /// HTTP status code.
    pub code: i64,
    /// Requests.
    pub hits: u64,
}

pub(crate) fn codes_cell(codes: &[CodeHits]) -> String {
    codes
        .iter()
        .map(|c| format!("{}:{}", c.code, c.hits))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Per-endpoint use: (hits, test_hits, conf_hits, apps, tests).
type Stats = (u64, u64, u64, u64, u64);

/// Every endpoint of the release (or one) with its use under the filters; `counts` adds the
/// distinct apps, tests and lines of code.
pub(crate) fn endpoint_rows(
    conn: &Connection,
    f: &Filters,
    counting: Counting,
    rid: i64,
    only: Option<i64>,
    counts: bool,
) -> Result<Vec<EndpointRow>> {
    let mut sql = Sql::default();
    let r = sql.p(rid);
    let one = match only {
        Some(id) => format!(" AND e.id = {}", sql.p(id)),
        None => String::new(),
    };
    let catalog = sql.rows(
        conn,
        &format!(
            "SELECT e.id, {}, e.eligible, e.pending FROM endpoints e \
             WHERE e.release_id = {r}{one} ORDER BY e.idx",
            Endpoint::COLUMNS
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                EndpointRow {
                    endpoint: Endpoint::from_row(x, 1)?,
                    tested: false,
                    conf_tested: false,
                    eligible: x.get::<_, i64>(10)? != 0,
                    pending: x.get::<_, i64>(11)? != 0,
                    hits: 0,
                    apps: 0,
                    tests: 0,
                    locs: 0,
                },
            ))
        },
    )?;
    let mut stats: HashMap<i64, Stats> = HashMap::new();
    let g = |x: &Row<'_>, i| x.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) as u64);
    let mut locs: HashMap<i64, u64> = HashMap::new();
    // Without filters endpoint_usage answers everything; with only ok-only, its ok_* counters
    // answer hits and tested flags; anything else reads `usage` (or `requests`).
    let only_ok = f.ok_only
        && !f.has_window()
        && f.app.is_none()
        && f.test.is_none()
        && f.sig.is_none()
        && !f.conformance;
    let fast = !f.narrows() || only_ok;
    if fast {
        let (h, t, c) = if f.ok_only {
            ("ok_hits", "ok_test_hits", "ok_conf_hits")
        } else {
            ("hits", "test_hits", "conf_hits")
        };
        let text = format!(
            "SELECT eu.endpoint_id, eu.{h}, eu.{t}, eu.{c}, eu.apps, eu.tests, eu.locs \
             FROM endpoint_usage eu JOIN endpoints e ON e.id = eu.endpoint_id \
             WHERE e.release_id = {r}{one}"
        );
        for (id, s, l) in sql.rows(conn, &text, |x| {
            Ok((
                x.get::<_, i64>(0)?,
                (g(x, 1)?, g(x, 2)?, g(x, 3)?, g(x, 4)?, g(x, 5)?),
                g(x, 6)?,
            ))
        })? {
            stats.insert(id, s);
            locs.insert(id, l);
        }
    }
    if !fast || (counts && f.narrows()) {
        let mut q = Sql::default();
        let s = src(&mut q, f);
        let r = q.p(rid);
        let one = match only {
            Some(id) => format!(" AND e.id = {}", q.p(id)),
            None => String::new(),
        };
        let text = format!(
            "{s} SELECT s.endpoint_id, SUM(s.hits), \
             SUM(CASE WHEN s.test_id <> 0 THEN s.hits ELSE 0 END), \
             SUM(CASE WHEN t.conformance = 1 THEN s.hits ELSE 0 END), \
             COUNT(DISTINCT NULLIF(s.identity_id, 0)), COUNT(DISTINCT NULLIF(s.test_id, 0)) \
             FROM src s JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r}{one} \
             LEFT JOIN tests t ON t.id = s.test_id GROUP BY s.endpoint_id"
        );
        stats.clear();
        for (id, st) in q.rows(conn, &text, |x| {
            Ok((
                x.get::<_, i64>(0)?,
                (g(x, 1)?, g(x, 2)?, g(x, 3)?, g(x, 4)?, g(x, 5)?),
            ))
        })? {
            stats.insert(id, st);
        }
        locs.clear();
        if counts {
            let text = format!(
                "{s}, ep AS (SELECT DISTINCT s.endpoint_id, s.purpose_id FROM src s \
                 JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r}{one} \
                 WHERE s.purpose_id <> 0) \
                 SELECT ep.endpoint_id, COUNT(DISTINCT pf.frame_id) FROM ep \
                 JOIN purpose_frames pf ON pf.purpose_id = ep.purpose_id GROUP BY ep.endpoint_id"
            );
            for (id, n) in q.rows(conn, &text, |x| Ok((x.get::<_, i64>(0)?, g(x, 1)?)))? {
                locs.insert(id, n);
            }
        }
    }
    let on_behalf: HashSet<String> = if counting == Counting::Indirect {
        super::indirect::run(conn, f, super::indirect::DEFAULT_GRACE_SECS)?
            .rows
            .into_iter()
            .map(|r| r.endpoint)
            .collect()
    } else {
        HashSet::new()
    };
    Ok(catalog
        .into_iter()
        .map(|(id, mut row)| {
            let (hits, test_hits, conf_hits, apps, tests) =
                stats.get(&id).copied().unwrap_or_default();
            row.hits = hits;
            row.tested = match counting {
                Counting::Tests => test_hits > 0,
                Counting::Conformance => conf_hits > 0,
                Counting::Any => hits > 0,
                Counting::Indirect => {
                    test_hits > 0 || on_behalf.contains(&row.endpoint.operation_id)
                }
            };
            row.conf_tested = conf_hits > 0;
            if counts {
                row.apps = apps;
                row.tests = tests;
                row.locs = locs.get(&id).copied().unwrap_or(0);
            }
            row
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    pub(crate) fn row(
        ep: &str,
        level: Level,
        cat: &str,
        tested: bool,
        conf: bool,
        eligible: bool,
    ) -> EndpointRow {
        EndpointRow {
            endpoint: Endpoint {
                operation_id: ep.into(),
                method: Method::Get,
                path: format!("/{ep}"),
                level,
                category: cat.into(),
                group: String::new(),
                version: "v1".into(),
                kind: "Pod".into(),
                action: "get".into(),
                description: None,
            },
            tested,
            conf_tested: conf,
            eligible,
            pending: false,
            hits: tested as u64,
            apps: 0,
            tests: 0,
            locs: 0,
        }
    }

    pub(crate) fn rows() -> Vec<EndpointRow> {
        vec![
            row("b", Level::Alpha, "apps", false, false, false),
            row("a", Level::Stable, "core", true, true, true),
            row("c", Level::Stable, "core", true, false, true),
            row("d", Level::Stable, "apps", false, false, false),
            row("e", Level::Beta, "core", true, false, false),
        ]
    }
}
