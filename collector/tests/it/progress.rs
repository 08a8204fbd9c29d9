//! `progress`: conformance progress per release, from runs against three catalogs ingested by the
//! real `ingest` command (loaded out of version order), checked against a golden table.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::events;
use crate::it::ingest::collector_ok;

const E2E: &str = "e2e.test/v1.36.3 (linux/amd64) kubernetes/6b1e1a4";
const KUBECTL: &str = "kubectl/v1.36.3 (linux/amd64) kubernetes/6b1e1a4";

/// A catalog of `version` with the endpoints named (each with its level from its path).
fn spec(version: &str, ops: &[&str]) -> Value {
    let all: &[(&str, &str, &str, &str)] = &[
        (
            "/api/v1/namespaces/{namespace}/pods",
            "get",
            "listCoreV1NamespacedPod",
            "Pod",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods",
            "post",
            "createCoreV1NamespacedPod",
            "Pod",
        ),
        (
            "/api/v1/namespaces/{namespace}/pods/{name}",
            "get",
            "readCoreV1NamespacedPod",
            "Pod",
        ),
        (
            "/api/v1/namespaces/{namespace}/configmaps",
            "get",
            "listCoreV1NamespacedConfigMap",
            "ConfigMap",
        ),
        (
            "/api/v1/namespaces/{namespace}/configmaps/{name}",
            "get",
            "readCoreV1NamespacedConfigMap",
            "ConfigMap",
        ),
        ("/api/v1/nodes", "get", "listCoreV1Node", "Node"),
    ];
    let mut paths = serde_json::Map::new();
    for (path, method, id, kind) in all {
        if !ops.contains(id) {
            continue;
        }
        let action = if *method == "post" {
            "post"
        } else if id.starts_with("list") {
            "list"
        } else {
            "get"
        };
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = json!({"operationId": id, "tags": ["core_v1"], "description": format!("{action} {kind}"),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind}});
    }
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": format!("v{version}")}, "paths": paths})
}

fn event(n: u32, verb: &str, uri: &str, ua: &str) -> String {
    let at = events::BASE_US + i64::from(n) * 1_000_000;
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("00000000-0000-4000-8000-{n:012}"), "stage": "ResponseComplete",
        "requestURI": uri, "verb": verb,
        "user": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "sourceIPs": ["172.18.0.1"], "userAgent": ua,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": events::ts(at), "stageTimestamp": events::ts(at + 2_000),
    })
    .to_string()
        + "\n"
}

/// 1.34: pods listed and read, nodes (ineligible). 1.35 adds pod creation, 1.36 configmaps.
/// A conformance test lists pods in 1.34 only; creates pods in 1.35 and 1.36; reads a pod first
/// in 1.36; lists configmaps in 1.36. A test that is no conformance test reads pods in 1.34, and
/// kubectl reads a configmap in 1.36: neither counts.
fn db(dir: &Path) -> String {
    let db = dir.join("w.db").display().to_string();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let inel = write(
        "ineligible.json",
        r#"[{"endpoint": "listCoreV1Node", "reason": "cluster specific", "link": null}]"#.into(),
    );
    let conf = |name: &str| format!("{E2E} -- [sig-node] Pods {name} [Conformance]");
    let plain = format!("{E2E} -- [sig-node] Pods should read");
    let v134 = [
        "listCoreV1NamespacedPod",
        "readCoreV1NamespacedPod",
        "listCoreV1Node",
    ];
    let v135 = [&v134[..], &["createCoreV1NamespacedPod"]].concat();
    let v136 = [
        &v135[..],
        &[
            "listCoreV1NamespacedConfigMap",
            "readCoreV1NamespacedConfigMap",
        ],
    ]
    .concat();
    let runs = [
        (
            "1.35.0",
            &v135[..],
            vec![event(
                10,
                "create",
                "/api/v1/namespaces/e2e-2/pods",
                &conf("should create"),
            )],
        ),
        (
            "1.34.0",
            &v134[..],
            vec![
                event(
                    1,
                    "list",
                    "/api/v1/namespaces/e2e-1/pods",
                    &conf("should list"),
                ),
                event(2, "get", "/api/v1/namespaces/e2e-1/pods/p", &plain),
            ],
        ),
        (
            "1.36.0",
            &v136[..],
            vec![
                event(
                    20,
                    "create",
                    "/api/v1/namespaces/e2e-3/pods",
                    &conf("should create"),
                ),
                event(
                    21,
                    "get",
                    "/api/v1/namespaces/e2e-3/pods/p",
                    &conf("should read"),
                ),
                event(
                    22,
                    "list",
                    "/api/v1/namespaces/e2e-3/configmaps",
                    &conf("should list configmaps"),
                ),
                event(
                    23,
                    "get",
                    "/api/v1/namespaces/default/configmaps/c",
                    KUBECTL,
                ),
            ],
        ),
    ];
    for (version, ops, evs) in runs {
        let spec = write(
            &format!("openapi-{version}.json"),
            spec(version, ops).to_string(),
        );
        let log = write(&format!("audit-{version}.log"), evs.concat());
        collector_ok(&[
            "ingest",
            "--db",
            &db,
            "--openapi",
            &spec,
            "--ineligible",
            &inel,
            &log,
        ]);
    }
    db
}

#[test]
fn progress_per_release_is_measured_from_each_releases_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let j: Value = serde_json::from_str(&collector_ok(&[
        "query", "progress", "--db", &db, "--format", "json",
    ]))
    .unwrap();
    let row = |r: &Value| {
        [
            "release",
            "endpoints",
            "promoted_with_tests",
            "promoted_without_tests",
            "old_covered_by_new",
            "tested",
            "untested",
            "no_longer_tested",
            "conformance_tested",
        ]
        .map(|k| r[k].to_string().trim_matches('"').to_owned())
    };
    let rows: Vec<_> = j["releases"].as_array().unwrap().iter().map(row).collect();
    assert_eq!(
        rows,
        [
            // The baseline: pods listed by a conformance test; read only by another test.
            ["1.34.0", "2", "0", "0", "0", "1", "1", "0", "1"],
            // Pod creation arrives with its test; nothing lists pods in 1.35's run any more.
            ["1.35.0", "3", "1", "0", "0", "0", "2", "1", "1"],
            // The pod read is first tested, configmaps arrive listed (with tests) and read only
            // by kubectl (without).
            ["1.36.0", "5", "1", "1", "1", "1", "1", "1", "3"],
        ]
        .map(|r| r.map(String::from))
    );
    assert_eq!(
        j["releases"][2]["new_endpoints"],
        json!([
            {"endpoint": "listCoreV1NamespacedConfigMap", "state": "promoted_with_tests"},
            {"endpoint": "readCoreV1NamespacedConfigMap", "state": "promoted_without_tests"},
        ])
    );
    let sources: Vec<u64> = j["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runs"][0]["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(sources, [2, 1, 4], "each release lists the run it counts");

    let table = collector_ok(&["query", "progress", "--db", &db]);
    let table = table.replace(&dir.path().display().to_string(), "$DIR");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/progress.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &table).unwrap();
    }
    assert_eq!(table, std::fs::read_to_string(&golden).unwrap());

    // One release alone, and a release that is not stored.
    let one: Value = serde_json::from_str(&collector_ok(&[
        "query",
        "progress",
        "--db",
        &db,
        "--format",
        "json",
        "--release",
        "1.35.0",
    ]))
    .unwrap();
    assert_eq!(one["releases"].as_array().unwrap().len(), 1);
    assert_eq!(one["releases"][0]["no_longer_tested"], 1);
    let out = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .args(["query", "progress", "--db", &db, "--release", "1.99.0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no release `1.99.0`"));
}
