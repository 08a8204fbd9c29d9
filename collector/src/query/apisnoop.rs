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

use serde::Serialize;

use super::{EndpointRow, Table};

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
    pub level: String,
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

/// Builds the export from endpoint rows counted with `counting=tests`, the endpoints'
/// descriptions, the tests per endpoint (operationId → test names) and every test seen.
pub fn export(
    release: &str,
    release_date: Option<String>,
    sources: Vec<String>,
    rows: &[EndpointRow],
    descriptions: &HashMap<String, String>,
    endpoint_tests: &BTreeMap<String, Vec<String>>,
    tests: &[SeenTest],
) -> Coverage {
    let endpoints: Vec<Endpoint> = rows
        .iter()
        .map(|r| {
            let t = endpoint_tests.get(&r.endpoint).filter(|t| !t.is_empty());
            Endpoint {
                kind: r.kind.clone(),
                path: r.path.clone(),
                group: r.group.clone(),
                level: r.level.clone(),
                tests: match t {
                    Some(t) => t.iter().cloned().map(Some).collect(),
                    None => vec![None],
                },
                action: r.action.clone(),
                tested: r.tested,
                release: release.to_owned(),
                version: r.version.clone(),
                category: r.category.clone(),
                endpoint: r.endpoint.clone(),
                conf_tested: r.conf_tested,
                description: descriptions.get(&r.endpoint).cloned(),
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

impl Coverage {
    /// As tables: totals, endpoints, tests.
    pub fn tables(&self) -> Vec<Table> {
        let mut totals = Table::new(
            "totals",
            &[
                "release",
                "total endpoints",
                "tested endpoints",
                "total conformance eligible endpoints",
                "tested conformance eligible endpoints",
                "pending conformance eligible endpoints",
                "tested pending conformance eligible endpoints",
            ],
        );
        totals.row(vec![
            self.release.clone(),
            self.total_endpoints.to_string(),
            self.tested_endpoints.to_string(),
            self.total_eligible.to_string(),
            self.tested_eligible.to_string(),
            self.pending.to_string(),
            self.tested_pending.to_string(),
        ]);
        let mut eps = Table::new(
            "endpoints",
            &[
                "endpoint",
                "path",
                "level",
                "category",
                "group",
                "version",
                "kind",
                "action",
                "tested",
                "conf_tested",
                "tests",
            ],
        );
        for e in &self.endpoints {
            eps.row(vec![
                e.endpoint.clone(),
                e.path.clone(),
                e.level.clone(),
                e.category.clone(),
                e.group.clone(),
                e.version.clone(),
                e.kind.clone(),
                e.action.clone(),
                e.tested.to_string(),
                e.conf_tested.to_string(),
                e.tests
                    .iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
        let mut tests = Table::new(
            "tests",
            &[
                "test",
                "conformance_test",
                "testname",
                "file",
                "promotion_release",
            ],
        );
        for t in &self.tests {
            tests.row(vec![
                t.test.clone(),
                t.conformance_test.to_string(),
                t.testname.clone().unwrap_or_default(),
                t.file.clone().unwrap_or_default(),
                t.promotion_release.clone().unwrap_or_default(),
            ]);
        }
        vec![totals, eps, tests]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_uses_apisnoop_keys_and_null_tests() {
        let mk = |ep: &str, tested, conf, eligible, pending| EndpointRow {
            endpoint: ep.into(),
            method: "get".into(),
            path: "/api/v1/pods".into(),
            level: "stable".into(),
            category: "core".into(),
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
            action: "list".into(),
            tested,
            conf_tested: conf,
            eligible,
            pending,
            hits: 0,
            apps: 0,
            tests: 0,
            locs: 0,
        };
        let rows = [
            mk("listCoreV1Pod", true, true, true, false),
            mk("readCoreV1Pod", true, false, true, false),
            mk("x", false, false, false, false),
            mk("deleteCoreV1Pod", true, true, false, true),
        ];
        let descriptions = HashMap::from([(
            "listCoreV1Pod".to_string(),
            "list objects of kind Pod".to_string(),
        )]);
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
            &descriptions,
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
