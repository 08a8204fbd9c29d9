//! `indirect`: requests kube-scheduler and kube-controller-manager make on a test's behalf,
//! over audit events written the way kube-apiserver writes theirs (objectRef, the components'
//! user agents and users), through the real ingest path and the `query` command.

use std::path::Path;

use serde_json::{Value, json};

use crate::events;
use crate::it::ingest::collector_ok;

const E2E: &str = "e2e.test/v1.36.3 (linux/amd64) kubernetes/6b1e1a4";
pub(crate) const DEPLOY_TEST: &str =
    "[sig-apps] Deployment deployment should delete old replica sets [Conformance]";
const READ_TEST: &str = "[sig-node] Pods should be readable [Conformance]";
const SCHEDULER: &str = "kube-scheduler/v1.36.3 (linux/amd64) kubernetes/6b1e1a4/scheduler";
const KCM: &str = "kube-controller-manager/v1.36.3 (linux/amd64) kubernetes/6b1e1a4";

/// One Metadata-level event, `at` seconds after the fixtures' base time.
fn ev(n: u32, at: u32, who: (&str, &str), verb: &str, uri: &str, obj: Value, code: u16) -> String {
    let received = events::BASE_US + i64::from(at) * 1_000_000;
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": format!("00000000-0000-4000-8000-{n:012}"),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": who.1, "groups": ["system:authenticated"]},
        "sourceIPs": ["172.18.0.2"],
        "userAgent": who.0,
        "objectRef": obj,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": events::ts(received),
        "stageTimestamp": events::ts(received + 3_000),
    })
    .to_string()
        + "\n"
}

fn obj(resource: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Value {
    let mut o = json!({"resource": resource, "apiVersion": "v1"});
    if resource == "deployments" || resource == "replicasets" {
        o["apiGroup"] = json!("apps");
    }
    if let Some(ns) = ns {
        o["namespace"] = json!(ns);
    }
    if let Some(name) = name {
        o["name"] = json!(name);
    }
    if let Some(sub) = sub {
        o["subresource"] = json!(sub);
    }
    o
}

/// The deployment test creates its namespace and a deployment in it; the replicaset
/// controller creates a replica set and its pod, the scheduler binds the pod; the test
/// deletes the namespace and the garbage collector and namespace controller clean up within
/// the grace period. Outside what it owns: the same controllers in `kube-system`, in the
/// namespace of a test that only reads there, and in its namespace ten minutes later.
pub(crate) fn log() -> String {
    let test = |name: &str| format!("{E2E} -- {name}");
    let t = test(DEPLOY_TEST);
    let e2e = (t.as_str(), "kubernetes-admin");
    let dc = format!("{KCM}/system:serviceaccount:kube-system:deployment-controller");
    let dc = (
        dc.as_str(),
        "system:serviceaccount:kube-system:deployment-controller",
    );
    let rs = format!("{KCM}/system:serviceaccount:kube-system:replicaset-controller");
    let rs = (
        rs.as_str(),
        "system:serviceaccount:kube-system:replicaset-controller",
    );
    let gc = format!("{KCM}/system:serviceaccount:kube-system:generic-garbage-collector");
    let gc = (
        gc.as_str(),
        "system:serviceaccount:kube-system:generic-garbage-collector",
    );
    let sched = (SCHEDULER, "system:kube-scheduler");
    let ns = Some("e2e-deploy-1");
    let reader = test(READ_TEST);
    let reader = (reader.as_str(), "kubernetes-admin");
    [
        ev(
            1,
            0,
            e2e,
            "create",
            "/api/v1/namespaces",
            obj("namespaces", None, Some("e2e-deploy-1"), None),
            201,
        ),
        ev(
            2,
            1,
            e2e,
            "create",
            "/apis/apps/v1/namespaces/e2e-deploy-1/deployments",
            obj("deployments", ns, Some("web"), None),
            201,
        ),
        ev(
            3,
            2,
            dc,
            "create",
            "/apis/apps/v1/namespaces/e2e-deploy-1/replicasets",
            obj("replicasets", ns, Some("web-5d8f"), None),
            201,
        ),
        ev(
            4,
            3,
            rs,
            "create",
            "/api/v1/namespaces/e2e-deploy-1/pods",
            obj("pods", ns, Some("web-5d8f-x1"), None),
            201,
        ),
        ev(
            5,
            4,
            sched,
            "create",
            "/api/v1/namespaces/e2e-deploy-1/pods/web-5d8f-x1/binding",
            obj("pods", ns, Some("web-5d8f-x1"), Some("binding")),
            201,
        ),
        ev(
            6,
            5,
            sched,
            "create",
            "/api/v1/namespaces/e2e-deploy-1/pods/web-5d8f-y2/binding",
            obj("pods", ns, Some("web-5d8f-y2"), Some("binding")),
            201,
        ),
        ev(
            7,
            10,
            e2e,
            "delete",
            "/api/v1/namespaces/e2e-deploy-1",
            obj("namespaces", None, Some("e2e-deploy-1"), None),
            200,
        ),
        ev(
            8,
            30,
            gc,
            "delete",
            "/apis/apps/v1/namespaces/e2e-deploy-1/replicasets/web-5d8f",
            obj("replicasets", ns, Some("web-5d8f"), None),
            200,
        ),
        // Not on its behalf: the same controllers elsewhere, and long after.
        ev(
            9,
            4,
            sched,
            "create",
            "/api/v1/namespaces/kube-system/pods/coredns-1/binding",
            obj(
                "pods",
                Some("kube-system"),
                Some("coredns-1"),
                Some("binding"),
            ),
            201,
        ),
        ev(
            10,
            6,
            reader,
            "get",
            "/api/v1/namespaces/kube-public/pods/p",
            obj("pods", Some("kube-public"), Some("p"), None),
            200,
        ),
        ev(
            11,
            7,
            rs,
            "create",
            "/api/v1/namespaces/kube-public/pods",
            obj("pods", Some("kube-public"), Some("q"), None),
            201,
        ),
        ev(
            12,
            600,
            gc,
            "delete",
            "/apis/apps/v1/namespaces/e2e-deploy-1/replicasets/late",
            obj("replicasets", ns, Some("late"), None),
            200,
        ),
    ]
    .concat()
}

fn db(dir: &Path) -> String {
    let log_file = dir.join("audit.log");
    std::fs::write(&log_file, log()).unwrap();
    let db = dir.join("w.db").display().to_string();
    collector_ok(&[
        "ingest",
        "--db",
        &db,
        "--openapi",
        "embedded",
        &log_file.display().to_string(),
    ]);
    db
}

#[test]
fn controllers_on_a_tests_behalf_are_its_indirect_hits_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path());
    let table = collector_ok(&["query", "indirect", "--db", &db]);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/indirect.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &table).unwrap();
    }
    assert_eq!(table, std::fs::read_to_string(&golden).unwrap());

    let json: Value = serde_json::from_str(&collector_ok(&[
        "query", "indirect", "--db", &db, "--format", "json",
    ]))
    .unwrap();
    let rows = json["rows"].as_array().unwrap();
    let got: Vec<(&str, &str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap(),
                r["detail"].as_str().unwrap(),
                r["hits"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("createCoreV1NamespacedPodBinding", "scheduler", 2),
            (
                "createAppsV1NamespacedReplicaSet",
                "system:serviceaccount:kube-system:deployment-controller",
                1
            ),
            (
                "deleteAppsV1NamespacedReplicaSet",
                "system:serviceaccount:kube-system:generic-garbage-collector",
                1
            ),
            (
                "createCoreV1NamespacedPod",
                "system:serviceaccount:kube-system:replicaset-controller",
                1
            ),
        ],
        "binding, replica set and pod creation, garbage collection; not kube-system, not the \
         reader's namespace, not ten minutes later"
    );
    assert!(rows.iter().all(|r| r["test"] == DEPLOY_TEST));
    // No test hits these itself: each is reached only through the controllers.
    assert_eq!(
        json["indirect_only"],
        json!([
            "createAppsV1NamespacedReplicaSet",
            "createCoreV1NamespacedPod",
            "createCoreV1NamespacedPodBinding",
            "deleteAppsV1NamespacedReplicaSet"
        ])
    );

    // The grace period bounds the window: with none, the garbage collection 20 s after the
    // test's last request there is not on its behalf; a long one reaches the late delete.
    let count = |grace: &str| {
        let j: Value = serde_json::from_str(&collector_ok(&[
            "query", "indirect", "--db", &db, "--format", "json", "--grace", grace,
        ]))
        .unwrap();
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["hits"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count("0"), 4);
    assert_eq!(count("60"), 5);
    assert_eq!(count("3600"), 6);

    // Filters choose the tests (and the programs acting for them).
    let only = |args: &[&str]| {
        let mut all = vec!["query", "indirect", "--db", &db, "--format", "json"];
        all.extend_from_slice(args);
        let j: Value = serde_json::from_str(&collector_ok(&all)).unwrap();
        j["rows"].as_array().unwrap().len()
    };
    assert_eq!(
        only(&["--sig", "node"]),
        0,
        "the sig-node test owns nothing"
    );
    assert_eq!(only(&["--app", "kube-scheduler"]), 1);
    // Asked for, indirect hits count as tested: the test's own four endpoints and the four
    // reached only through the controllers; the other counts keep their own rules.
    let tested_under = |counting: &str| {
        let j: Value = serde_json::from_str(&collector_ok(&[
            "query",
            "coverage",
            "--db",
            &db,
            "--format",
            "json",
            "--counting",
            counting,
        ]))
        .unwrap();
        (
            j["counting"].clone(),
            j["totals"]["tested"].as_u64().unwrap(),
        )
    };
    assert_eq!(tested_under("tests"), (json!("tests"), 4));
    assert_eq!(tested_under("indirect"), (json!("indirect"), 8));
    let j: Value = serde_json::from_str(&collector_ok(&[
        "query",
        "sunburst",
        "--db",
        &db,
        "--format",
        "json",
        "--counting",
        "indirect",
    ]))
    .unwrap();
    assert_eq!(j["totals"]["tested"], 8, "the sunburst counts alike");
    let (ok, _, err) = crate::it::ingest::collector(
        &["query", "history", "--db", &db, "--counting", "indirect"],
        None,
    );
    assert!(!ok && err.contains("history counts run by run"), "{err}");
    // Direct coverage is unchanged by any of it: the controllers' endpoints are untested.
    let tested: Value = serde_json::from_str(&collector_ok(&[
        "query",
        "endpoints",
        "--db",
        &db,
        "--format",
        "json",
        "--tested",
        "true",
    ]))
    .unwrap();
    let mut names: Vec<&str> = tested
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "createAppsV1NamespacedDeployment",
            "createCoreV1Namespace",
            "deleteCoreV1Namespace",
            "readCoreV1NamespacedPod"
        ]
    );
}

/// The log of a real conformance run (`tests/fixtures/real-conformance`): every pod kube-scheduler
/// bound in a namespace an e2e test created is an indirect hit of that test, counted from the
/// log by code that shares nothing with the collector; nothing in `kube-system` is.
#[test]
fn a_real_conformance_runs_pod_bindings_are_indirect_hits_of_the_tests() {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Read as _;
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/real-conformance/audit.log.gz"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let s = |e: &Value, k: &str| e["objectRef"][k].as_str().unwrap_or("").to_owned();
    let by_e2e = |e: &Value| e["userAgent"].as_str().unwrap_or("").contains(" -- ");
    let created: BTreeSet<String> = events
        .iter()
        .filter(|e| by_e2e(e) && e["verb"] == "create" && s(e, "resource") == "namespaces")
        .map(|e| s(e, "name"))
        .collect();
    let mut bindings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in &events {
        if e["user"]["username"] == "system:kube-scheduler" && s(e, "subresource") == "binding" {
            bindings
                .entry(s(e, "namespace"))
                .or_default()
                .insert(e["auditID"].as_str().unwrap().to_owned());
        }
    }
    let in_tests: usize = bindings
        .iter()
        .filter(|(ns, _)| created.contains(*ns))
        .map(|(_, ids)| ids.len())
        .sum();
    assert!(
        in_tests > 50,
        "the run binds pods of many tests: {in_tests}"
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db").display().to_string();
    collector_ok(&["ingest", "--db", &db, "--openapi", "embedded", fixture]);
    let j: Value = serde_json::from_str(&collector_ok(&[
        "query",
        "indirect",
        "--db",
        &db,
        "--format",
        "json",
        "--app",
        "kube-scheduler",
    ]))
    .unwrap();
    let rows = j["rows"].as_array().unwrap();
    let attributed: u64 = rows
        .iter()
        .filter(|r| r["endpoint"] == "createCoreV1NamespacedPodBinding")
        .map(|r| r["hits"].as_u64().unwrap())
        .sum();
    assert_eq!(attributed, in_tests as u64);
    assert!(
        j["indirect_only"]
            .as_array()
            .unwrap()
            .contains(&json!("createCoreV1NamespacedPodBinding")),
        "no e2e test binds a pod itself"
    );
    let tests: BTreeSet<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert!(tests.len() > 10, "{tests:?}");
}
