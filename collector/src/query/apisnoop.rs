//! APISnoop's coverage JSON (`resources/coverage/<release>.json`), keys unchanged, so existing
//! dashboards and scripts read our export as they read APISnoop's.
//!
//! APISnoop counts "tested conformance eligible endpoints" as eligible endpoints hit by a
//! *conformance* test, and lists `"tests": [null]` for an endpoint no test hit; both kept.
//! A test's `testname`, `file` and `promotion_release` are those of the release's
//! `conformance.yaml` entry whose codename is the test's name (APISnoop's join), null for a
//! test it does not list. Two keys APISnoop does not have count the endpoints pending
//! eligibility apart from the eligible ones.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::answer::to_json;
use super::sql::{Sql, fixed_time, src};
use super::usage::{EndpointRow, Level, endpoint_rows};
use super::{Counting, Filters, Render, Result, Table};

/// The top-level object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Release label.
    pub release: String,
    /// When the release's catalog was loaded (APISnoop: the release date).
    pub release_date: Option<String>,
    /// Where the spec came from (unknown to us: null).
    pub spec: Option<String>,
    /// The audit sources ingested (run sources).
    pub sources: Vec<String>,
    /// Endpoints.
    #[serde(rename = "total endpoints")]
    pub total_endpoints: u64,
    /// Endpoints hit by a test.
    #[serde(rename = "tested endpoints")]
    pub tested_endpoints: u64,
    /// Eligible endpoints.
    #[serde(rename = "total conformance eligible endpoints")]
    pub total_eligible: u64,
    /// Eligible endpoints hit by a conformance test.
    #[serde(rename = "tested conformance eligible endpoints")]
    pub tested_eligible: u64,
    /// Eligible endpoints new in this release (needs the previous release: null).
    #[serde(rename = "new conformance eligible endpoints")]
    pub new_eligible: Option<u64>,
    /// Of those, tested (null, as above).
    #[serde(rename = "new tested conformance eligible endpoints")]
    pub new_tested_eligible: Option<u64>,
    /// Endpoints pending eligibility (not in the eligible total; not an APISnoop key).
    #[serde(rename = "pending conformance eligible endpoints")]
    pub pending: u64,
    /// Of those, hit by a conformance test (not an APISnoop key).
    #[serde(rename = "tested pending conformance eligible endpoints")]
    pub tested_pending: u64,
    /// Every endpoint.
    pub endpoints: Vec<Endpoint>,
    /// Every test seen.
    pub tests: Vec<Test>,
}

/// An endpoint entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Kind.
    pub kind: String,
    /// Path template.
    pub path: String,
    /// API group.
    pub group: String,
    /// Level.
    pub level: Level,
    /// Tests that hit it; `[null]` when none.
    pub tests: Vec<Option<String>>,
    /// Action.
    pub action: String,
    /// Hit by a test.
    pub tested: bool,
    /// Release label.
    pub release: String,
    /// API version.
    pub version: String,
    /// Category.
    pub category: String,
    /// operationId.
    pub endpoint: String,
    /// Hit by a conformance test.
    pub conf_tested: bool,
    /// The operation's description in the spec (null when it has none).
    pub description: Option<String>,
}

/// A test entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Test {
    /// Source file (not in the release's conformance.yaml: null).
    pub file: Option<String>,
    /// Test name.
    pub test: String,
    /// Release label.
    pub release: String,
    /// Conformance name (not in conformance.yaml: null).
    pub testname: Option<String>,
    /// A conformance test.
    pub conformance_test: bool,
    /// Release it was promoted in (not in conformance.yaml: null).
    pub promotion_release: Option<String>,
}

/// A test seen, with its entry in the release's conformance.yaml if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenTest {
    /// Its name (the e2e user agent's text after ` -- `).
    pub name: String,
    /// `[Conformance]` in the name.
    pub conformance: bool,
    /// The conformance.yaml entry: (testname, file, promotion release).
    pub listed: Option<(String, String, String)>,
}

/// Builds the export from endpoint rows counted with `counting=tests` (with their
/// descriptions), the tests per endpoint (operationId → test names) and every test seen.
pub fn export(
    release: &str,
    release_date: Option<String>,
    sources: Vec<String>,
    rows: &[EndpointRow],
    endpoint_tests: &BTreeMap<String, Vec<String>>,
    tests: &[SeenTest],
) -> Coverage {
    let endpoints: Vec<Endpoint> = rows
        .iter()
        .map(|r| {
            let t = endpoint_tests
                .get(&r.endpoint.operation_id)
                .filter(|t| !t.is_empty());
            Endpoint {
                kind: r.endpoint.kind.clone(),
                path: r.endpoint.path.clone(),
                group: r.endpoint.group.clone(),
                level: r.endpoint.level,
                tests: match t {
                    Some(t) => t.iter().cloned().map(Some).collect(),
                    None => vec![None],
                },
                action: r.endpoint.action.clone(),
                tested: r.tested,
                release: release.to_owned(),
                version: r.endpoint.version.clone(),
                category: r.endpoint.category.clone(),
                endpoint: r.endpoint.operation_id.clone(),
                conf_tested: r.conf_tested,
                description: r.endpoint.description.clone(),
            }
        })
        .collect();
    Coverage {
        release: release.to_owned(),
        release_date,
        spec: None,
        sources,
        total_endpoints: rows.len() as u64,
        tested_endpoints: rows.iter().filter(|r| r.tested).count() as u64,
        total_eligible: rows.iter().filter(|r| r.eligible).count() as u64,
        tested_eligible: rows.iter().filter(|r| r.eligible && r.conf_tested).count() as u64,
        new_eligible: None,
        new_tested_eligible: None,
        pending: rows.iter().filter(|r| r.pending).count() as u64,
        tested_pending: rows.iter().filter(|r| r.pending && r.conf_tested).count() as u64,
        endpoints,
        tests: tests
            .iter()
            .map(|t| Test {
                file: t.listed.as_ref().map(|l| l.1.clone()),
                test: t.name.clone(),
                release: release.to_owned(),
                testname: t.listed.as_ref().map(|l| l.0.clone()),
                conformance_test: t.conformance,
                promotion_release: t.listed.as_ref().map(|l| l.2.clone()),
            })
            .collect(),
    }
}

/// The totals as the table lists them.
#[derive(Default, Serialize)]
struct Totals<'a> {
    release: &'a str,
    #[serde(rename = "total endpoints")]
    total_endpoints: u64,
    #[serde(rename = "tested endpoints")]
    tested_endpoints: u64,
    #[serde(rename = "total conformance eligible endpoints")]
    total_eligible: u64,
    #[serde(rename = "tested conformance eligible endpoints")]
    tested_eligible: u64,
    #[serde(rename = "pending conformance eligible endpoints")]
    pending: u64,
    #[serde(rename = "tested pending conformance eligible endpoints")]
    tested_pending: u64,
}

/// An endpoint as the table lists it: its tests in one cell.
#[derive(Default, Serialize)]
struct EndpointCells<'a> {
    endpoint: &'a str,
    path: &'a str,
    level: Level,
    category: &'a str,
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    action: &'a str,
    tested: bool,
    conf_tested: bool,
    tests: String,
}

/// A test as the table lists it.
#[derive(Default, Serialize)]
struct TestCells<'a> {
    test: &'a str,
    conformance_test: bool,
    testname: Option<&'a str>,
    file: Option<&'a str>,
    promotion_release: Option<&'a str>,
}

impl Render for Coverage {
    /// Totals, endpoints, tests.
    fn tables(&self) -> Vec<Table> {
        let totals = Totals {
            release: &self.release,
            total_endpoints: self.total_endpoints,
            tested_endpoints: self.tested_endpoints,
            total_eligible: self.total_eligible,
            tested_eligible: self.tested_eligible,
            pending: self.pending,
            tested_pending: self.tested_pending,
        };
        let endpoints: Vec<EndpointCells<'_>> = self
            .endpoints
            .iter()
            .map(|e| EndpointCells {
                endpoint: &e.endpoint,
                path: &e.path,
                level: e.level,
                category: &e.category,
                group: &e.group,
                version: &e.version,
                kind: &e.kind,
                action: &e.action,
                tested: e.tested,
                conf_tested: e.conf_tested,
                tests: e
                    .tests
                    .iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect();
        let tests: Vec<TestCells<'_>> = self
            .tests
            .iter()
            .map(|t| TestCells {
                test: &t.test,
                conformance_test: t.conformance_test,
                testname: t.testname.as_deref(),
                file: t.file.as_deref(),
                promotion_release: t.promotion_release.as_deref(),
            })
            .collect();
        vec![
            Table::of("totals", &[totals]),
            Table::of("endpoints", &endpoints),
            Table::of("tests", &tests),
        ]
    }

    /// The export is JSON whatever the format asked (APISnoop's layout has no table).
    fn text(&self) -> String {
        to_json(self)
    }
}

/// `coverage --export apisnoop`.
pub(crate) fn run(
    conn: &Connection,
    f: &Filters,
    rid: i64,
    label: &str,
    loaded_at: String,
) -> Result<Coverage> {
    let mut rows = endpoint_rows(conn, f, Counting::Tests, rid, None, false)?;
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let mut endpoint_tests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ep, t) in q.rows(
        conn,
        &format!(
            "{s} SELECT DISTINCT e.operation_id, t.name FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             JOIN tests t ON t.id = s.test_id ORDER BY 1, 2"
        ),
        |x| Ok((x.get::<_, String>(0)?, x.get::<_, String>(1)?)),
    )? {
        endpoint_tests.entry(ep).or_default().push(t);
    }
    let tests = q.rows(
        conn,
        &format!(
            "{s}, seen AS (SELECT DISTINCT t.name, t.conformance FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             JOIN tests t ON t.id = s.test_id) \
             SELECT seen.name, seen.conformance, c.testname, c.file, c.promotion_release \
             FROM seen LEFT JOIN conformance_tests c ON c.release_id = {r} AND c.codename = seen.name \
             ORDER BY 1"
        ),
        |x| {
            let testname: Option<String> = x.get(2)?;
            Ok(SeenTest {
                name: x.get(0)?,
                conformance: x.get::<_, i64>(1)? != 0,
                listed: match testname {
                    Some(testname) => Some((testname, x.get(3)?, x.get(4)?)),
                    None => None,
                },
            })
        },
    )?;
    let mut d = Sql::default();
    let r = d.p(rid);
    let mut descriptions: HashMap<String, String> = d
        .rows(
            conn,
            &format!(
                "SELECT operation_id, description FROM endpoints \
                 WHERE release_id = {r} AND description IS NOT NULL"
            ),
            |x| Ok((x.get(0)?, x.get(1)?)),
        )?
        .into_iter()
        .collect();
    for r in &mut rows {
        r.endpoint.description = descriptions.remove(&r.endpoint.operation_id);
    }
    let sql = Sql::default();
    let sources = sql.rows(
        conn,
        "SELECT source FROM ingest_runs GROUP BY source ORDER BY MIN(id)",
        |x| x.get(0),
    )?;
    Ok(export(
        label,
        Some(fixed_time(loaded_at)),
        sources,
        &rows,
        &endpoint_tests,
        &tests,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::usage::{Endpoint, Method};

    #[test]
    fn export_uses_apisnoop_keys_and_null_tests() {
        let mk = |ep: &str, tested, conf, eligible, pending| EndpointRow {
            endpoint: Endpoint {
                operation_id: ep.into(),
                method: Method::Get,
                path: "/api/v1/pods".into(),
                level: Level::Stable,
                category: "core".into(),
                group: String::new(),
                version: "v1".into(),
                kind: "Pod".into(),
                action: "list".into(),
                description: None,
            },
            tested,
            conf_tested: conf,
            eligible,
            pending,
            hits: 0,
            apps: 0,
            tests: 0,
            locs: 0,
        };
        let mut rows = [
            mk("listCoreV1Pod", true, true, true, false),
            mk("readCoreV1Pod", true, false, true, false),
            mk("x", false, false, false, false),
            mk("deleteCoreV1Pod", true, true, false, true),
        ];
        rows[0].endpoint.description = Some("list objects of kind Pod".to_string());
        let mut et = BTreeMap::new();
        et.insert(
            "listCoreV1Pod".to_string(),
            vec!["[sig-node] Pods [Conformance]".to_string()],
        );
        let c = export(
            "1.36.0",
            Some("2026-11-20T10:00:00Z".into()),
            vec!["audit.log".into()],
            &rows,
            &et,
            &[
                SeenTest {
                    name: "[sig-node] Pods [Conformance]".into(),
                    conformance: true,
                    listed: Some((
                        "Pods, lifecycle".into(),
                        "test/e2e/common/node/pods.go".into(),
                        "1.9.0".into(),
                    )),
                },
                SeenTest {
                    name: "[sig-apps] mine".into(),
                    conformance: false,
                    listed: None,
                },
            ],
        );
        let v = serde_json::to_value(&c).unwrap();
        let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "endpoints",
                "new conformance eligible endpoints",
                "new tested conformance eligible endpoints",
                "pending conformance eligible endpoints",
                "release",
                "release_date",
                "sources",
                "spec",
                "tested conformance eligible endpoints",
                "tested endpoints",
                "tested pending conformance eligible endpoints",
                "tests",
                "total conformance eligible endpoints",
                "total endpoints",
            ]
        );
        assert_eq!(v["total endpoints"], 4);
        assert_eq!(v["tested endpoints"], 3);
        assert_eq!(v["total conformance eligible endpoints"], 2);
        assert_eq!(v["tested conformance eligible endpoints"], 1);
        assert_eq!(v["pending conformance eligible endpoints"], 1);
        assert_eq!(v["tested pending conformance eligible endpoints"], 1);
        assert_eq!(v["endpoints"][0]["description"], "list objects of kind Pod");
        assert_eq!(v["endpoints"][1]["description"], serde_json::Value::Null);
        assert_eq!(
            v["endpoints"][0]["tests"],
            serde_json::json!(["[sig-node] Pods [Conformance]"])
        );
        assert_eq!(v["endpoints"][1]["tests"], serde_json::json!([null]));
        let mut ekeys: Vec<&String> = v["endpoints"][0].as_object().unwrap().keys().collect();
        ekeys.sort();
        assert_eq!(
            ekeys,
            [
                "action",
                "category",
                "conf_tested",
                "description",
                "endpoint",
                "group",
                "kind",
                "level",
                "path",
                "release",
                "tested",
                "tests",
                "version"
            ]
        );
        assert_eq!(
            v["tests"][0],
            serde_json::json!({"file": "test/e2e/common/node/pods.go", "test": "[sig-node] Pods [Conformance]", "release": "1.36.0", "testname": "Pods, lifecycle", "conformance_test": true, "promotion_release": "1.9.0"})
        );
        assert_eq!(
            v["tests"][1],
            serde_json::json!({"file": null, "test": "[sig-apps] mine", "release": "1.36.0", "testname": null, "conformance_test": false, "promotion_release": null})
        );
    }
}
