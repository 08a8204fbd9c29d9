//! `indirect`: the requests other programs made on a test's behalf — kube-scheduler binding
//! the test's pods, controllers creating its replica sets' pods, garbage collection of its
//! objects (`query indirect --grace 60`, `GET /api/v1/indirect?grace=60`).
//!
//! # Example
//! ```
//! use whakapapa_collector::query::{Request, indirect::Params};
//! let req = Request::from_params("indirect", [("grace", "120"), ("conformance", "true")]).unwrap();
//! assert_eq!(req.options::<Params>(), Some(&Params { grace_secs: 120 }));
//! ```
//!
//! e2e tests work in namespaces of their own. A test *owns* a namespace when it created the
//! namespace or created an object in it; its window there runs from its first request in that
//! namespace to its last plus the grace period (the namespace controller and the garbage
//! collector finish after the test has deleted its namespace). A request is indirect for the
//! test when it is made by a program that is not a test, in a namespace the test owns, inside
//! that window. Cluster-scoped objects and owner references across namespaces are not followed:
//! Metadata-level audit events carry no object body to read them from. These hits never count
//! toward the direct numbers of other queries; `indirect_only` lists the endpoints of the
//! release that only indirect hits reach.

use std::collections::BTreeSet;

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, release, time, when};
use super::{Answer, Filters, Given, Param, Query, Render, Result, Table};

/// The grace period after a test's last request in a namespace, in seconds, when not given.
pub const DEFAULT_GRACE_SECS: u64 = 60;

/// `indirect`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// How long after a test's last request in a namespace it still owns it.
    pub grace_secs: u64,
}

impl Query for Params {
    const NAME: &'static str = "indirect";
    const PARAMS: &'static [Param] = &[Param::value(
        "grace",
        "SECONDS",
        "Seconds after a test's last request in a namespace that what others do there is \
         still on its behalf (default 60)",
    )];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            grace_secs: g
                .value("grace", "a number of seconds")?
                .unwrap_or(DEFAULT_GRACE_SECS),
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(run(conn, f, self.grace_secs)?))
    }
}

/// Requests of one program to one endpoint on behalf of one test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndirectRow {
    /// The test.
    pub test: String,
    /// The program that made the requests (identity name, else its text).
    pub app: String,
    /// What the program said of itself after its commit, such as kube-controller-manager's
    /// `system:serviceaccount:kube-system:replicaset-controller`; empty when nothing.
    pub detail: String,
    /// operationId.
    pub endpoint: String,
    /// Requests.
    pub hits: u64,
    /// The first of them (RFC 3339).
    pub first_seen: String,
}

/// `indirect`: what was done on tests' behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndirectAnswer {
    /// The release whose endpoints are counted.
    pub release: String,
    /// The grace period used, in seconds.
    pub grace_secs: u64,
    /// By test, then requests (most first).
    pub rows: Vec<IndirectRow>,
    /// Endpoints of the release that tests reach only indirectly: no test (under the filters)
    /// hits them itself.
    pub indirect_only: Vec<String>,
}

/// The namespace a request is about: its own, or the namespace it names when it is a
/// request for a namespace (`DELETE /api/v1/namespaces/e2e-1` has no namespace of its own).
const NS: &str = "CASE WHEN r.resource = 'namespaces' AND COALESCE(r.namespace, '') = '' \
                  THEN r.name ELSE r.namespace END";

/// Answers `indirect`.
pub fn run(conn: &Connection, f: &Filters, grace_secs: u64) -> Result<IndirectAnswer> {
    let (rid, label, _) = release(conn, f)?;
    let mut q = Sql::default();
    // The filters on tests (name, SIG, conformance) choose the tests; app, time and status
    // choose the programs' requests.
    let tests = chosen_tests(&mut q, f);
    let grace_us = q.p(i64::try_from(grace_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX));
    let mut acts = format!(" AND {}", when(&mut q, f));
    if let Some(app) = &f.app {
        let a = q.p(app.clone());
        acts += &format!(" AND (i.name = {a} OR substr(i.text, 1, length({a})) = {a})");
    }
    let r = q.p(rid);
    // CROSS JOIN keeps `requests` the outer loop, so both scans of it are linear and the few
    // owned namespaces are probed by an automatic index; SQLite otherwise loops over the
    // windows and every endpoint of the release, quadratic in practice (BENCHMARKS.md,
    // queries).
    let rows = q.rows(
        conn,
        &format!(
            "WITH owned AS (SELECT r.test_id AS test_id, {NS} AS ns, MIN(r.received_us) AS lo, \
             MAX(r.received_us) + {grace_us} AS hi FROM requests r \
             JOIN tests t ON t.id = r.test_id{tests} \
             WHERE COALESCE({NS}, '') <> '' GROUP BY 1, 2 HAVING SUM(r.verb = 'create') > 0) \
             SELECT t.name, COALESCE(i.name, i.text, ''), COALESCE(i.detail, ''), \
             e.operation_id, COUNT(*), MIN(r.received_us) \
             FROM requests r CROSS JOIN owned o ON o.ns = {NS} \
             AND r.received_us BETWEEN o.lo AND o.hi \
             JOIN tests t ON t.id = o.test_id \
             JOIN endpoints e ON e.id = r.endpoint_id AND e.release_id = {r} \
             LEFT JOIN identities i ON i.id = r.identity_id \
             WHERE r.test_id IS NULL{acts} \
             GROUP BY o.test_id, r.identity_id, e.id \
             ORDER BY t.name, 5 DESC, 2, 3, 4"
        ),
        |x| {
            Ok(IndirectRow {
                test: x.get(0)?,
                app: x.get(1)?,
                detail: x.get(2)?,
                endpoint: x.get(3)?,
                hits: x.get::<_, i64>(4)? as u64,
                first_seen: time(x.get(5)?),
            })
        },
    )?;
    let mut q = Sql::default();
    let direct_tests = chosen_tests(&mut q, f);
    let r = q.p(rid);
    let direct: BTreeSet<String> = q
        .rows(
            conn,
            &format!(
                "SELECT DISTINCT e.operation_id FROM usage u \
                 JOIN tests t ON t.id = u.test_id{direct_tests} \
                 JOIN endpoints e ON e.id = u.endpoint_id AND e.release_id = {r}"
            ),
            |x| x.get(0),
        )?
        .into_iter()
        .collect();
    let indirect_only = rows
        .iter()
        .map(|r| &r.endpoint)
        .filter(|e| !direct.contains(*e))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(IndirectAnswer {
        release: label,
        grace_secs,
        rows,
        indirect_only,
    })
}

/// Conditions on `tests t` for the filters that choose tests.
fn chosen_tests(q: &mut Sql, f: &Filters) -> String {
    let mut c = String::new();
    if let Some(t) = &f.test {
        c += &format!(" AND instr(t.name, {}) > 0", q.p(t.clone()));
    }
    if let Some(s) = f.sig_label() {
        c += &format!(" AND t.sig = {}", q.p(s));
    }
    if f.conformance {
        c += " AND t.conformance = 1";
    }
    c
}

/// A row as the table lists it.
#[derive(Default, Serialize)]
struct RowCells<'a> {
    test: &'a str,
    app: &'a str,
    detail: &'a str,
    endpoint: &'a str,
    requests: u64,
    first_seen: &'a str,
}

/// An endpoint reached only indirectly.
#[derive(Default, Serialize)]
struct OnlyCells<'a> {
    endpoint: &'a str,
}

impl Render for IndirectAnswer {
    /// The rows, then the endpoints reached only indirectly.
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<RowCells<'_>> = self
            .rows
            .iter()
            .map(|r| RowCells {
                test: &r.test,
                app: &r.app,
                detail: &r.detail,
                endpoint: &r.endpoint,
                requests: r.hits,
                first_seen: &r.first_seen,
            })
            .collect();
        let only: Vec<OnlyCells<'_>> = self
            .indirect_only
            .iter()
            .map(|e| OnlyCells { endpoint: e })
            .collect();
        vec![
            Table::of("indirect", &rows),
            Table::of("indirect_only", &only),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options("indirect", &[("grace", "5")], Params { grace_secs: 5 });
        crate::query::request::options(
            "indirect",
            &[],
            Params {
                grace_secs: DEFAULT_GRACE_SECS,
            },
        );
        let err = crate::query::Request::from_params("indirect", [("grace", "soon")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad value \"soon\" for `grace`: expected a number of seconds"
        );
    }
}
