//! Which stored runs a question reads (`--run`, `--base`, `--head`), and the test requests of
//! those runs per endpoint: what `gate` and `diff` count.
//!
//! # Example
//! ```
//! use whakapapa_collector::query::runs::RunSel;
//! assert_eq!("7".parse::<RunSel>().unwrap(), RunSel::Run(7));
//! assert_eq!("ci:1790".parse::<RunSel>().unwrap(), RunSel::Ci("1790".into()));
//! assert_eq!("release:1.36.0".parse::<RunSel>().unwrap(), RunSel::Release("1.36.0".into()));
//! assert!("".parse::<RunSel>().is_err());
//! ```
//!
//! A run is an ingest run (`history` lists them with their ids), so a CI build (its `ci_runs`
//! row) or a release (every run that stored requests mapped against it) is a set of runs.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, when, who};
use super::{Error, Filters, Result};

/// What the parameter's value may look like.
pub const EXPECTED: &str = "a run id, ci:BUILD, ci:JOB/BUILD or release:LABEL";

/// A set of runs, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSel {
    /// An ingest run by id; when no run has that id, the CI build with that build id.
    Run(i64),
    /// A CI build: its build id, or `JOB/BUILD`.
    Ci(String),
    /// Every run that stored requests mapped against the release.
    Release(String),
}

impl FromStr for RunSel {
    type Err = &'static str;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(b) = s.strip_prefix("ci:") {
            return if b.is_empty() {
                Err(EXPECTED)
            } else {
                Ok(RunSel::Ci(b.to_owned()))
            };
        }
        if let Some(l) = s.strip_prefix("release:") {
            return if l.is_empty() {
                Err(EXPECTED)
            } else {
                Ok(RunSel::Release(l.to_owned()))
            };
        }
        s.parse().map(RunSel::Run).map_err(|_| EXPECTED)
    }
}

impl fmt::Display for RunSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunSel::Run(id) => write!(f, "{id}"),
            RunSel::Ci(b) => write!(f, "ci:{b}"),
            RunSel::Release(l) => write!(f, "release:{l}"),
        }
    }
}

/// The runs a selection names, as the answer shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runs {
    /// As asked (`7`, `ci:1790`, `release:1.36.0`).
    pub selector: String,
    /// Ingest run ids, ascending.
    pub runs: Vec<i64>,
}

impl RunSel {
    /// The ingest runs named; none is an error naming the selection.
    pub fn resolve(&self, conn: &Connection) -> Result<Runs> {
        let mut q = Sql::default();
        let text = match self {
            RunSel::Run(id) => {
                let id = q.p(*id);
                format!(
                    "SELECT id FROM ingest_runs WHERE id = {id} UNION \
                     SELECT run_id FROM ci_runs WHERE build = CAST({id} AS TEXT) \
                     AND NOT EXISTS (SELECT 1 FROM ingest_runs WHERE id = {id}) ORDER BY 1"
                )
            }
            RunSel::Ci(b) => {
                let b = q.p(b.clone());
                format!(
                    "SELECT run_id FROM ci_runs WHERE build = {b} OR job || '/' || build = {b} \
                     ORDER BY 1"
                )
            }
            RunSel::Release(l) => {
                let l = q.p(l.clone());
                format!(
                    "SELECT r.id FROM ingest_runs r JOIN releases l ON l.label = {l} \
                     WHERE r.release_id = l.id OR EXISTS (SELECT 1 FROM run_usage ru \
                     JOIN endpoints e ON e.id = ru.endpoint_id \
                     WHERE ru.run_id = r.id AND e.release_id = l.id) ORDER BY 1"
                )
            }
        };
        let runs: Vec<i64> = q.rows(conn, &text, |r| r.get(0))?;
        if runs.is_empty() {
            return Err(Error::UnknownRun(self.to_string()));
        }
        Ok(Runs {
            selector: self.to_string(),
            runs,
        })
    }
}

/// Requests from tests to one endpoint, of one test and purpose (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TestHit {
    pub endpoint: i64,
    pub test: i64,
    pub purpose: i64,
    pub hits: u64,
}

/// The requests from tests that the filters select, per endpoint, test and purpose; of the
/// given runs only, or of every run. Without runs or a time window the `usage` rollup answers.
pub(crate) fn test_hits(
    conn: &Connection,
    f: &Filters,
    runs: Option<&[i64]>,
) -> Result<Vec<TestHit>> {
    let mut q = Sql::default();
    let text = if runs.is_none() && !f.has_window() {
        let j = who(&mut q, f, "u");
        let ok = if f.ok_only {
            " AND u.code BETWEEN 200 AND 299"
        } else {
            ""
        };
        format!(
            "SELECT u.endpoint_id, u.test_id, u.purpose_id, SUM(u.hits) FROM usage u{j} \
             WHERE u.endpoint_id <> 0 AND u.test_id <> 0{ok} GROUP BY 1, 2, 3"
        )
    } else {
        let j = who(&mut q, f, "r");
        let w = when(&mut q, f);
        let only = match runs {
            // Ids read from the database: integers, safe to inline.
            Some(ids) => format!(
                " AND r.run_id IN ({})",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            ),
            None => String::new(),
        };
        format!(
            "SELECT r.endpoint_id, r.test_id, COALESCE(r.purpose_id, 0), COUNT(*) \
             FROM requests r{j} WHERE {w}{only} AND r.endpoint_id IS NOT NULL \
             AND r.test_id IS NOT NULL GROUP BY 1, 2, 3"
        )
    };
    q.rows(conn, &text, |x| {
        Ok(TestHit {
            endpoint: x.get(0)?,
            test: x.get(1)?,
            purpose: x.get(2)?,
            hits: x.get::<_, i64>(3)? as u64,
        })
    })
}

/// A test as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TestInfo {
    pub name: String,
    pub sig: Option<String>,
    pub conformance: bool,
}

/// Every test, by id.
pub(crate) fn tests(conn: &Connection) -> Result<HashMap<i64, TestInfo>> {
    let q = Sql::default();
    Ok(
        q.rows(conn, "SELECT id, name, sig, conformance FROM tests", |x| {
            Ok((
                x.get::<_, i64>(0)?,
                TestInfo {
                    name: x.get(1)?,
                    sig: x.get(2)?,
                    conformance: x.get::<_, i64>(3)? != 0,
                },
            ))
        })?
        .into_iter()
        .collect(),
    )
}

/// An endpoint of the catalog, as `gate` and `diff` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointInfo {
    pub release: i64,
    pub endpoint: String,
    pub method: String,
    pub path: String,
    pub level: String,
    pub category: String,
    pub eligible: bool,
    pub pending: bool,
}

/// The endpoints of one release, or of every release, by id (in catalog order when sorted by
/// id within a release).
pub(crate) fn endpoints(
    conn: &Connection,
    release: Option<i64>,
) -> Result<Vec<(i64, EndpointInfo)>> {
    let mut q = Sql::default();
    let cond = match release {
        Some(r) => format!("WHERE release_id = {}", q.p(r)),
        None => String::new(),
    };
    q.rows(
        conn,
        &format!(
            "SELECT id, release_id, operation_id, method, path, level, category, eligible, pending \
             FROM endpoints {cond} ORDER BY release_id, idx"
        ),
        |x| {
            Ok((
                x.get(0)?,
                EndpointInfo {
                    release: x.get(1)?,
                    endpoint: x.get(2)?,
                    method: x.get(3)?,
                    path: x.get(4)?,
                    level: x.get(5)?,
                    category: x.get(6)?,
                    eligible: x.get::<_, i64>(7)? != 0,
                    pending: x.get::<_, i64>(8)? != 0,
                },
            ))
        },
    )
}
