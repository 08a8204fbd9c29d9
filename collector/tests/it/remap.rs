//! `whakapapa-collector remap`: requests stored unmapped (their API was not in the catalog
//! yet, as a CRD installed after the catalog was loaded) are mapped again once the release's
//! catalog is refreshed with it; afterwards every query answers as if the refreshed catalog
//! had been there from the start.

use std::path::Path;

use serde_json::{Value, json};

use crate::it::fixture::{Ev, lines};
use crate::it::ingest::collector;

fn op(id: &str, action: &str, group: &str, kind: &str) -> Value {
    json!({"operationId": id, "tags": [format!("{}_v1", if group.is_empty() { "core" } else { "stableExampleCom" })],
           "x-kubernetes-action": action,
           "x-kubernetes-group-version-kind": {"group": group, "version": "v1", "kind": kind}})
}

/// The release's catalog before (pods) and after (pods and the CronTab CRD's endpoints).
fn specs(dir: &Path) -> (String, String) {
    let mut paths = json!({
        "/api/v1/namespaces/{namespace}/pods": {"get": op("listCoreV1NamespacedPod", "list", "", "Pod")},
        "/api/v1/namespaces/{namespace}/pods/{name}": {"get": op("readCoreV1NamespacedPod", "get", "", "Pod")},
    });
    let before = json!({"swagger": "2.0", "info": {"version": "v9.9.0"}, "paths": paths.clone()});
    paths["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"] = json!({
        "get": op("listStableExampleComV1NamespacedCronTab", "list", "stable.example.com", "CronTab"),
        "post": op("createStableExampleComV1NamespacedCronTab", "post", "stable.example.com", "CronTab"),
    });
    let after = json!({"swagger": "2.0", "info": {"version": "v9.9.0"}, "paths": paths});
    let (a, b) = (dir.join("before.json"), dir.join("after.json"));
    std::fs::write(&a, before.to_string()).unwrap();
    std::fs::write(&b, after.to_string()).unwrap();
    (a.display().to_string(), b.display().to_string())
}

fn log(dir: &Path) -> String {
    let test_ua = "e2e.test/v1.36.0 (linux/amd64) kubernetes/6f6b2a1 -- [sig-api-machinery] CronTabs [Conformance]";
    let events = [
        Ev::new(
            "a1",
            "ResponseComplete",
            "list",
            "/api/v1/namespaces/default/pods",
        ),
        Ev::new(
            "a2",
            "ResponseComplete",
            "list",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
        )
        .at(1.0)
        .code(404),
        Ev::new(
            "a3",
            "ResponseComplete",
            "create",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
        )
        .at(2.0)
        .code(201)
        .ua(test_ua),
        Ev::new(
            "a4",
            "ResponseComplete",
            "list",
            "/apis/stable.example.com/v1/namespaces/default/crontabs?limit=5",
        )
        .at(3.0)
        .ua(test_ua),
        Ev::new(
            "a5",
            "ResponseComplete",
            "get",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/c1",
        )
        .at(4.0),
    ];
    let path = dir.join("audit.log");
    std::fs::write(&path, lines(&events)).unwrap();
    path.display().to_string()
}

/// Requests per mapping (`endpoint`, `unmapped:<reason>`), most frequent first.
fn mappings(db: &str) -> Vec<(String, u64)> {
    let conn = whakapapa_collector::store::open_reader(Path::new(db)).unwrap();
    whakapapa_collector::store::read::requests_by_mapping(&conn).unwrap()
}

fn query(db: &str, args: &[&str]) -> String {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--db", db, "--format", "json"]);
    let (ok, out, err) = collector(&all, None);
    assert!(ok, "query {args:?}: {err}");
    out
}

#[test]
fn requests_stored_unmapped_map_after_the_catalog_is_refreshed_and_remapped() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = specs(dir.path());
    let log = log(dir.path());
    let late = dir.path().join("late.db").display().to_string();
    let (ok, _, err) = collector(&["ingest", "--db", &late, "--openapi", &before, &log], None);
    assert!(ok, "{err}");
    assert_eq!(
        mappings(&late),
        [
            ("unmapped:unknown_path".to_owned(), 4),
            ("endpoint".to_owned(), 1)
        ]
    );

    // The same label from another document is refused by `ingest`...
    let (ok, _, err) = collector(&["ingest", "--db", &late, "--openapi", &after, &log], None);
    assert!(!ok);
    assert!(
        err.contains("already stored from another OpenAPI document"),
        "{err}"
    );
    // ... and is a refresh for `remap`.
    let (ok, out, err) = collector(&["remap", "--db", &late, "--openapi", &after], None);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "release 9.9.0: 4 endpoints (2 new); 3 requests mapped again, 1 still unmapped"
    );
    // Nothing is left to map a second time.
    let (ok, out, err) = collector(&["remap", "--db", &late], None);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "release 9.9.0: 4 endpoints (0 new); 0 requests mapped again, 1 still unmapped"
    );

    // Every answer is the one of a database that had the full catalog from the start.
    let early = dir.path().join("early.db").display().to_string();
    let (ok, _, err) = collector(&["ingest", "--db", &early, "--openapi", &after, &log], None);
    assert!(ok, "{err}");
    for args in [
        &["coverage"][..],
        &["coverage", "--counting", "any"],
        &["endpoints", "--counting", "any"],
        &["apps"],
        &["tests"],
    ] {
        assert_eq!(query(&late, args), query(&early, args), "query {args:?}");
    }
    assert_eq!(mappings(&late), mappings(&early));
    let endpoints = query(&late, &["endpoints", "--counting", "any"]);
    assert!(
        endpoints.contains("listStableExampleComV1NamespacedCronTab"),
        "{endpoints}"
    );
}
