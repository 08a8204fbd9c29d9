//! The conformance workflow end to end (issue 17): audit logs of three e2e runs, in
//! kube-apiserver's format, ingested through the real `ingest` command with a pending eligible
//! list; then the gate (`gate`, `GET /api/v1/gate`) and the run diff (`query diff`,
//! `GET /api/v1/diff`) asked through the library, the binary and the HTTP API.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use clap::Parser as _;
use http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use whakapapa_collector::cli::{self, Cli};
use whakapapa_collector::query::{Answer, Format, Request};
use whakapapa_collector::store::{self, Store};
use whakapapa_collector::wire::{Frame, user_agent};

/// Seven endpoints: five eligible (pods, three config map ones, storage classes), two on the
/// pending list (nodes, deployments), one beta (flow schemas).
fn spec() -> Value {
    let op = |id: &str, tag: &str, action: &str, g: &str, v: &str, k: &str| {
        json!({"operationId": id, "tags": [tag], "description": format!("{action} {k}"),
               "x-kubernetes-action": action,
               "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k}})
    };
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.0.0"},
        "paths": {
            "/api/v1/namespaces/{namespace}/pods": {
                "get": op("listCoreV1NamespacedPod", "core_v1", "list", "", "v1", "Pod"),
            },
            "/api/v1/namespaces/{namespace}/configmaps": {
                "get": op("listCoreV1NamespacedConfigMap", "core_v1", "list", "", "v1", "ConfigMap"),
                "post": op("createCoreV1NamespacedConfigMap", "core_v1", "post", "", "v1", "ConfigMap"),
            },
            "/api/v1/namespaces/{namespace}/configmaps/{name}": {
                "get": op("readCoreV1NamespacedConfigMap", "core_v1", "get", "", "v1", "ConfigMap"),
            },
            "/api/v1/nodes": {"get": op("listCoreV1Node", "core_v1", "list", "", "v1", "Node")},
            "/apis/apps/v1/namespaces/{namespace}/deployments": {
                "get": op("listAppsV1NamespacedDeployment", "apps_v1", "list", "apps", "v1", "Deployment"),
            },
            "/apis/storage.k8s.io/v1/storageclasses": {
                "get": op("listStorageV1StorageClass", "storage_v1", "list", "storage.k8s.io", "v1", "StorageClass"),
            },
            "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas": {
                "get": op("listFlowcontrolApiserverV1beta3FlowSchema", "flowcontrolApiserver_v1beta3", "list", "flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema"),
            },
        }
    })
}

const PENDING: &str = "- listCoreV1Node\n- listAppsV1NamespacedDeployment\n";

const E2E: &str = "e2e.test/v1.0.0 (linux/amd64) kubernetes/6f6b2a1";
const SHOP: &str = "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1";
/// Conformance: lists pods and nodes (nodes are pending).
const PODS: &str = "[sig-node] Pods should list pods and nodes [Conformance]";
/// Not conformance: creates a config map.
const CM_CREATE: &str = "[sig-apps] ConfigMap should be created";
/// Conformance: lists storage classes.
const STORAGE: &str = "[sig-storage] StorageClass should be listed [Conformance]";
/// Conformance: the config map lifecycle.
const CM_LIFE: &str = "[sig-node] ConfigMap should go through its lifecycle [Conformance]";
/// Conformance, written with whakapapa (so its lines of code are known): the one test run 3
/// adds to run 2.
const FLOW: &str = "[sig-api-machinery] FlowSchema should be read with its config [Conformance]";

fn e2e(test: &str) -> String {
    format!("{E2E} -- {test}")
}

/// FLOW's user agent: its identity, its test, the stack of its call.
fn flow_ua(fp: u64, line: u32) -> String {
    let frames = [
        Frame::new(
            "kube_client::api::Api<K>::list",
            "kube-client-5.0.0/src/api/core_methods.rs",
            106,
        ),
        Frame::new("conformance::flowschema::read", "tests/flowschema.rs", line),
    ];
    user_agent::render(
        "conformance/v0.1.0 (linux/amd64) git/77aa001",
        Some(FLOW),
        fp,
        None,
        &frames,
    )
}

/// A ResponseComplete event of run `run`, request `n`, `at` seconds after 10:00:00Z.
fn ev(run: u32, n: u32, verb: &str, uri: &str, ua: &str, resource: (&str, &str)) -> String {
    let at = run * 600 + n;
    let t = |ms: u32| {
        format!(
            "2026-11-20T{:02}:{:02}:{:02}.{ms:03}000Z",
            10 + at / 3600,
            at / 60 % 60,
            at % 60
        )
    };
    let ns = uri
        .strip_prefix("/api/v1/namespaces/")
        .or_else(|| uri.strip_prefix("/apis/apps/v1/namespaces/"))
        .and_then(|r| r.split('/').next());
    let mut object = json!({"resource": resource.1, "apiGroup": resource.0, "apiVersion": "v1"});
    if let Some(ns) = ns {
        object["namespace"] = json!(ns);
    }
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("c0f0a000-0000-4000-8{run:03}-{n:012}"), "stage": "ResponseComplete",
        "requestURI": uri, "verb": verb,
        "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["172.18.0.1"], "userAgent": ua, "objectRef": object,
        "requestReceivedTimestamp": t(0), "stageTimestamp": t(9),
        "responseStatus": {"metadata": {}, "code": 200},
    })
    .to_string()
        + "\n"
}

const POD: (&str, &str) = ("", "pods");
const CM: (&str, &str) = ("", "configmaps");

/// Run 1: PODS lists pods and nodes (pending), CM_CREATE (not conformance) creates a config map,
/// STORAGE lists storage classes; shop-controller reads a config map and lists deployments.
fn log_1() -> String {
    [
        ev(
            1,
            1,
            "list",
            "/api/v1/namespaces/e2e-1/pods",
            &e2e(PODS),
            POD,
        ),
        ev(1, 2, "list", "/api/v1/nodes", &e2e(PODS), ("", "nodes")),
        ev(
            1,
            3,
            "create",
            "/api/v1/namespaces/e2e-2/configmaps",
            &e2e(CM_CREATE),
            CM,
        ),
        ev(
            1,
            4,
            "list",
            "/apis/storage.k8s.io/v1/storageclasses",
            &e2e(STORAGE),
            ("storage.k8s.io", "storageclasses"),
        ),
        ev(
            1,
            5,
            "get",
            "/api/v1/namespaces/shop/configmaps/inventory",
            SHOP,
            CM,
        ),
        ev(
            1,
            6,
            "list",
            "/apis/apps/v1/namespaces/shop/deployments",
            SHOP,
            ("apps", "deployments"),
        ),
        // The dashboard lists deployments twice from one line of code, shop-controller once
        // more from another: two programs, two lines, the dashboard's first.
        ev(
            1,
            7,
            "list",
            "/apis/apps/v1/namespaces/shop/deployments",
            &program_ua(DASH, 0xd1, "dashboard::rollouts", "src/show.rs", 40),
            ("apps", "deployments"),
        ),
        ev(
            1,
            8,
            "list",
            "/apis/apps/v1/namespaces/shop/deployments",
            &program_ua(DASH, 0xd1, "dashboard::rollouts", "src/show.rs", 40),
            ("apps", "deployments"),
        ),
        ev(
            1,
            9,
            "list",
            "/apis/apps/v1/namespaces/shop/deployments",
            &program_ua(SHOP, 0xa1, "shop_controller::scale", "src/main.rs", 9),
            ("apps", "deployments"),
        ),
    ]
    .concat()
}

const DASH: &str = "dashboard/v1.2.0 (linux/arm64) git/abc1234";

/// A whakapapa program's user agent: its identity and the stack of its call.
fn program_ua(identity: &str, fp: u64, function: &str, file: &str, line: u32) -> String {
    let frames = [
        Frame::new(
            "kube_client::api::Api<K>::list",
            "kube-client-5.0.0/src/api/core_methods.rs",
            106,
        ),
        Frame::new(function, file, line),
    ];
    user_agent::render(identity, None, fp, None, &frames)
}

/// Runs 2 and 3: every eligible endpoint hit by a conformance test, no pending one.
fn complete(run: u32) -> String {
    [
        ev(
            run,
            1,
            "list",
            "/api/v1/namespaces/e2e-1/pods",
            &e2e(PODS),
            POD,
        ),
        ev(
            run,
            2,
            "list",
            "/api/v1/namespaces/e2e-3/configmaps",
            &e2e(CM_LIFE),
            CM,
        ),
        ev(
            run,
            3,
            "create",
            "/api/v1/namespaces/e2e-3/configmaps",
            &e2e(CM_LIFE),
            CM,
        ),
        ev(
            run,
            4,
            "get",
            "/api/v1/namespaces/e2e-3/configmaps/c1",
            &e2e(CM_LIFE),
            CM,
        ),
        ev(
            run,
            5,
            "list",
            "/apis/storage.k8s.io/v1/storageclasses",
            &e2e(STORAGE),
            ("storage.k8s.io", "storageclasses"),
        ),
    ]
    .concat()
}

/// Run 3: run 2's tests and FLOW, which reads a config map (already tested) and lists flow
/// schemas (tested by nothing else).
fn log_3() -> String {
    complete(3)
        + &ev(
            3,
            6,
            "get",
            "/api/v1/namespaces/e2e-4/configmaps/flow",
            &flow_ua(0xf1, 12),
            CM,
        )
        + &ev(
            3,
            7,
            "list",
            "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
            &flow_ua(0xf2, 20),
            ("flowcontrol.apiserver.k8s.io", "flowschemas"),
        )
}

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn ingest(dir: &Path, db: &Path, log: &str) {
    let spec = write(dir, "openapi-v1.0.0.json", &spec().to_string());
    let inel = write(dir, "ineligible.json", "[]");
    let pending = write(dir, "pending.yaml", PENDING);
    cli::run(Cli::parse_from([
        "whakapapa-collector",
        "ingest",
        "--db",
        &db.to_string_lossy(),
        "--openapi",
        &spec,
        "--ineligible",
        &inel,
        "--pending",
        &pending,
        log,
    ]))
    .expect("ingest");
}

/// Three ingest runs through the real command, one log each: runs 1, 2 and 3.
pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    for (i, log) in [log_1(), complete(2), log_3()].iter().enumerate() {
        let path = write(dir.path(), &format!("audit-{}.log", i + 1), log);
        ingest(dir.path(), &db, &path);
    }
    Fixture { dir, db }
}

fn ask(db: &Path, name: &str, params: &[(&str, &str)]) -> Answer {
    let conn = store::open_reader(db).unwrap();
    let req = Request::from_params(name, params.iter().copied()).unwrap();
    req.run(&conn).unwrap()
}

fn json_of(db: &Path, name: &str, params: &[(&str, &str)]) -> Value {
    serde_json::from_str(&ask(db, name, params).to_json()).unwrap()
}

/// The binary's exit status, stdout and stderr.
fn bin(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The golden answers: generated by this fixture, checked by hand against the logs above.
pub(crate) const CASES: &[Case] = &[
    ("gate_run1", "gate", &[("run", "1")]),
    ("gate_run2", "gate", &[("run", "2")]),
    ("gate_all", "gate", &[]),
    ("diff_2_3", "diff", &[("base", "2"), ("head", "3")]),
    (
        "diff_run1_release",
        "diff",
        &[("base", "1"), ("head", "release:1.0.0")],
    ),
    ("sigs", "coverage", &[("by", "sig")]),
    (
        "sigs_conformance_run1",
        "coverage",
        &[
            ("by", "sig"),
            ("counting", "conformance"),
            ("until", "2026-11-20T10:20:00Z"),
        ],
    ),
    ("endpoints_owner_node", "endpoints", &[("owner", "node")]),
    ("gaps", "tests", &[("gaps", "true")]),
];

fn golden_path(file: &str, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/conform/{file}.{ext}"))
}

const FORMATS: [(&str, Format); 3] = [
    ("txt", Format::Table),
    ("json", Format::Json),
    ("csv", Format::Csv),
];

#[test]
#[ignore = "writes the golden answers to tests/golden/conform for review"]
fn write_golden_answers() {
    let f = fixture();
    std::fs::create_dir_all(golden_path("x", "y").parent().unwrap()).unwrap();
    for (file, name, params) in CASES {
        let a = ask(&f.db, name, params);
        for (ext, format) in FORMATS {
            std::fs::write(golden_path(file, ext), a.render(format)).unwrap();
        }
    }
}

#[test]
fn gate_and_diff_in_every_format() {
    let f = fixture();
    for (file, name, params) in CASES {
        let a = ask(&f.db, name, params);
        for (ext, format) in FORMATS {
            let want = std::fs::read_to_string(golden_path(file, ext)).unwrap();
            assert_eq!(a.render(format), want, "{name} {params:?} as {ext}");
        }
    }
}

/// (status, check, endpoint) of the checks that do not pass.
fn not_passing(g: &Value) -> Vec<(String, String, String)> {
    g["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            (s("status"), s("check"), s("endpoint"))
        })
        .collect()
}

fn t(s: &str, c: &str, e: &str) -> (String, String, String) {
    (s.into(), c.into(), e.into())
}

#[test]
fn gate_fails_on_each_check_and_passes_when_both_hold() {
    let f = fixture();
    let g1 = json_of(&f.db, "gate", &[("run", "1")]);
    assert_eq!(g1["pass"], false);
    // (a) three eligible endpoints no conformance test hits (one hit by a non-conformance test);
    // (b) nodes, pending, hit by PODS.
    assert_eq!(
        not_passing(&g1),
        [
            t("fail", "eligible", "createCoreV1NamespacedConfigMap"),
            t("fail", "eligible", "listCoreV1NamespacedConfigMap"),
            t("fail", "eligible", "readCoreV1NamespacedConfigMap"),
            t("fail", "pending", "listCoreV1Node"),
        ]
    );
    let create = &g1["checks"][0];
    assert_eq!(create["other_tests"], json!([CM_CREATE]));
    assert_eq!(g1["checks"][3]["conformance_tests"], json!([PODS]));
    // shop-controller reads the config map: a program, not a test.
    assert_eq!(g1["checks"][2]["other_tests"], json!([]));
    let g2 = json_of(&f.db, "gate", &[("run", "2")]);
    assert_eq!(g2["pass"], true);
    assert_eq!(not_passing(&g2), []);
    assert_eq!(
        (&g2["eligible"], &g2["conf_tested_eligible"], &g2["pending"]),
        (&json!(5), &json!(5), &json!(2))
    );
    // Over every run, run 1's hit of the pending endpoint still counts.
    let all = json_of(&f.db, "gate", &[]);
    assert_eq!(not_passing(&all), [t("fail", "pending", "listCoreV1Node")]);
    // The same answer for the CI build's selectors: a run that is none fails clearly.
    let conn = store::open_reader(&f.db).unwrap();
    let req = Request::from_params("gate", [("run", "ci:9999")]).unwrap();
    assert_eq!(
        req.run(&conn).unwrap_err().to_string(),
        "no run `ci:9999` in the database (see `query history`)"
    );
}

/// Test cases of a JUnit file: (classname, name, outcome).
fn junit_cases(xml: &str) -> (Vec<(String, String, String)>, String) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut suite = String::new();
    loop {
        match r.read_event().expect("the JUnit XML parses") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |k: &str| {
                    e.try_get_attribute(k)
                        .unwrap()
                        .map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                match e.name().into_inner() {
                    "testsuite" => {
                        suite = format!(
                            "{} tests={} failures={} skipped={}",
                            attr("name"),
                            attr("tests"),
                            attr("failures"),
                            attr("skipped")
                        )
                    }
                    "testcase" => cases.push((attr("classname"), attr("name"), "pass".into())),
                    "failure" => cases.last_mut().unwrap().2 = format!("failure {}", attr("type")),
                    "skipped" => cases.last_mut().unwrap().2 = "skipped".into(),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    (cases, suite)
}

#[test]
fn gate_command_exits_non_zero_and_writes_junit() {
    let f = fixture();
    let db = f.db.to_string_lossy().into_owned();
    let junit = f.dir.path().join("junit.xml");
    let j = junit.to_string_lossy().into_owned();
    let (ok, out, err) = bin(&[
        "gate",
        "--db",
        &db,
        "--release",
        "1.0.0",
        "--run",
        "1",
        "--junit",
        &j,
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("the conformance gate of 1.0.0 fails: 4 check(s)"),
        "{err}"
    );
    assert_eq!(
        out,
        std::fs::read_to_string(golden_path("gate_run1", "txt")).unwrap()
    );
    let (cases, suite) = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(
        suite,
        "whakapapa conformance gate 1.0.0 tests=7 failures=4 skipped=0"
    );
    let failing: Vec<_> = cases.iter().filter(|c| c.2 != "pass").collect();
    assert_eq!(failing.len(), 4);
    assert_eq!(
        failing[3],
        &(
            "conformance.pending".to_owned(),
            "listCoreV1Node".to_owned(),
            "failure pending-tested".to_owned()
        )
    );
    assert_eq!(cases.len(), 7);

    let (ok, out, err) = bin(&[
        "gate", "--db", &db, "--run", "2", "--junit", &j, "--format", "json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        std::fs::read_to_string(golden_path("gate_run2", "json")).unwrap()
    );
    let (cases, _) = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert!(cases.iter().all(|c| c.2 == "pass") && cases.len() == 7);
}

#[test]
fn gate_with_a_baseline_fails_only_on_what_got_worse() {
    let f = fixture();
    let db = f.db.to_string_lossy().into_owned();
    // The baseline: APISnoop's export of a database that holds run 1 only.
    let before = f.dir.path().join("before.db");
    ingest(
        f.dir.path(),
        &before,
        &f.dir.path().join("audit-1.log").to_string_lossy(),
    );
    let (ok, export, err) = bin(&[
        "query",
        "coverage",
        "--export",
        "apisnoop",
        "--db",
        &before.to_string_lossy(),
    ]);
    assert!(ok, "{err}");
    let baseline = write(f.dir.path(), "baseline.json", &export);
    let (ok, out, err) = bin(&[
        "gate",
        "--db",
        &db,
        "--run",
        "1",
        "--baseline",
        &baseline,
        "--format",
        "json",
    ]);
    assert!(ok, "nothing got worse than run 1 itself: {err}\n{out}");
    let g: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&g["failed"], &g["known"], &g["baseline"]),
        (&json!(0), &json!(4), &json!("1.0.0"))
    );
    let junit = f.dir.path().join("junit.xml");
    let (ok, _, _) = bin(&[
        "gate",
        "--db",
        &db,
        "--run",
        "1",
        "--baseline",
        &baseline,
        "--junit",
        &junit.to_string_lossy(),
    ]);
    assert!(ok);
    let (cases, _) = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(cases.iter().filter(|c| c.2 == "skipped").count(), 4);

    // A baseline in which a conformance test read config maps: run 1 regressed on that one.
    let mut b: Value = serde_json::from_str(&export).unwrap();
    for e in b["endpoints"].as_array_mut().unwrap() {
        if e["endpoint"] == "readCoreV1NamespacedConfigMap" {
            e["conf_tested"] = json!(true);
        }
    }
    let better = write(f.dir.path(), "better.json", &b.to_string());
    let (ok, out, err) = bin(&[
        "gate",
        "--db",
        &db,
        "--run",
        "1",
        "--baseline",
        &better,
        "--format",
        "json",
    ]);
    assert!(!ok && err.contains("fails: 1 check(s)"), "{err}");
    let g: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        not_passing(&g)[0],
        t("fail", "eligible", "readCoreV1NamespacedConfigMap")
    );
    assert_eq!(g["known"], 3);

    let bad = write(
        f.dir.path(),
        "bad.json",
        "{\"endpoints\": [{\"conf_tested\": true}]}",
    );
    let (ok, _, err) = bin(&["gate", "--db", &db, "--baseline", &bad]);
    assert!(
        !ok && err.contains("bad baseline")
            && err.contains("bad.json")
            && err.contains("missing field `endpoint`"),
        "{err}"
    );
}

#[test]
fn diff_of_runs_differing_by_one_test_lists_exactly_its_endpoints() {
    let f = fixture();
    let d = json_of(&f.db, "diff", &[("base", "2"), ("head", "3")]);
    let eps: Vec<&str> = d["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        eps,
        [
            "readCoreV1NamespacedConfigMap",
            "listFlowcontrolApiserverV1beta3FlowSchema"
        ]
    );
    for e in d["endpoints"].as_array().unwrap() {
        assert_eq!(e["tests_gained"], json!([FLOW]));
        assert_eq!(e["tests_lost"], json!([]));
    }
    assert_eq!(d["endpoints"][0]["locs"], json!(["tests/flowschema.rs:12"]));
    assert_eq!(
        (&d["endpoints"][1]["base"], &d["endpoints"][1]["head"]),
        (&json!("untested"), &json!("conformance"))
    );
    assert_eq!(
        d["tests"],
        json!([{"test": FLOW, "conformance": true,
                "endpoints_gained": ["listFlowcontrolApiserverV1beta3FlowSchema", "readCoreV1NamespacedConfigMap"],
                "endpoints_lost": []}])
    );
    assert_eq!(
        d["summary"],
        json!([{"level": "beta", "category": "flowcontrolApiserver", "newly_tested": 1,
                "no_longer_tested": 0, "newly_conf_tested": 1, "no_longer_conf_tested": 0}])
    );
    // The other way round, the same endpoints lost.
    let back = json_of(&f.db, "diff", &[("base", "3"), ("head", "2")]);
    assert_eq!(back["endpoints"][1]["tests_lost"], json!([FLOW]));
    assert_eq!(back["summary"][0]["no_longer_conf_tested"], 1);
    // Through the binary, by CI build, release and run.
    let (ok, out, err) = bin(&[
        "query",
        "diff",
        "--base",
        "2",
        "--head",
        "3",
        "--db",
        &f.db.to_string_lossy(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        std::fs::read_to_string(golden_path("diff_2_3", "txt")).unwrap()
    );
    let (ok, _, err) = bin(&[
        "query",
        "diff",
        "--base",
        "2",
        "--db",
        &f.db.to_string_lossy(),
    ]);
    assert!(!ok && err.contains("missing parameter `head`"), "{err}");
    let (ok, _, err) = bin(&[
        "query",
        "diff",
        "--base",
        "x",
        "--head",
        "3",
        "--db",
        &f.db.to_string_lossy(),
    ]);
    assert!(
        !ok && err.contains(
            "bad value \"x\" for `base`: expected a run id, ci:BUILD, ci:JOB/BUILD or release:LABEL"
        ),
        "{err}"
    );
}

#[test]
fn http_serves_the_same_gate_and_diff() {
    let f = fixture();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = Store::open(&f.db, store::Options::default()).unwrap();
        let app = whakapapa_collector::http::api::router(store);
        for (uri, name, params) in [
            (
                "/api/v1/gate?release=1.0.0&run=1",
                "gate",
                vec![("release", "1.0.0"), ("run", "1")],
            ),
            (
                "/api/v1/diff?base=2&head=3",
                "diff",
                vec![("base", "2"), ("head", "3")],
            ),
        ] {
            let resp = app
                .clone()
                .oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                String::from_utf8(body.to_vec()).unwrap(),
                ask(&f.db, name, &params).to_json()
            );
        }
        let resp = app
            .oneshot(
                HttpRequest::get("/api/v1/diff?base=2&head=99")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    });
}

#[test]
fn sig_ownership_from_the_table_and_the_tests() {
    let f = fixture();
    let c = json_of(&f.db, "coverage", &[("by", "sig")]);
    let totals: Vec<(String, u64, u64, u64)> = c["sigs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap();
            (
                s["sig"].as_str().unwrap().to_owned(),
                n("total"),
                n("tested"),
                n("eligible"),
            )
        })
        .collect();
    // Pods, config maps (3) and nodes are sig-node's; deployments sig-apps'; storage classes
    // sig-storage's; flow schemas sig-api-machinery's.
    assert_eq!(
        totals,
        [
            ("sig-api-machinery".to_owned(), 1, 1, 0),
            ("sig-apps".to_owned(), 1, 0, 0),
            ("sig-node".to_owned(), 5, 5, 4),
            ("sig-storage".to_owned(), 1, 1, 1),
        ]
    );
    let read_cm = c["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "readCoreV1NamespacedConfigMap")
        .unwrap();
    // Owned by sig-node; hit by tests of sig-node (CM_LIFE) and sig-api-machinery (FLOW).
    assert_eq!(read_cm["owners"], json!(["sig-node"]));
    assert_eq!(
        read_cm["test_sigs"],
        json!(["sig-api-machinery", "sig-node"])
    );

    // An override file replaces entries of the shipped table, through the binary.
    let db = f.db.to_string_lossy().into_owned();
    let over = write(
        f.dir.path(),
        "sigs.yaml",
        "core:\n  configmaps: [sig-apps]\n",
    );
    let owned = |env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"));
        cmd.args([
            "query",
            "endpoints",
            "--owner",
            "apps",
            "--format",
            "json",
            "--db",
            &db,
        ]);
        if let Some(e) = env {
            cmd.env("WHAKAPAPA_SIGS", e);
        } else {
            cmd.env_remove("WHAKAPAPA_SIGS");
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        (out.status.success(), text, err)
    };
    let names = |text: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(text).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["endpoint"].as_str().unwrap().to_owned())
            .collect()
    };
    let (ok, out, err) = owned(None);
    assert!(ok, "{err}");
    assert_eq!(names(&out), ["listAppsV1NamespacedDeployment"]);
    let (ok, out, err) = owned(Some(&over));
    assert!(ok, "{err}");
    assert_eq!(
        names(&out),
        [
            "listAppsV1NamespacedDeployment",
            "createCoreV1NamespacedConfigMap",
            "listCoreV1NamespacedConfigMap",
            "readCoreV1NamespacedConfigMap"
        ]
    );
    let bad = write(
        f.dir.path(),
        "bad-sigs.yaml",
        "core:\n  configmaps: [apps]\n",
    );
    let (ok, _, err) = owned(Some(&bad));
    assert!(
        !ok && err.contains("bad SIG table")
            && err.contains("bad-sigs.yaml")
            && err.contains("\"apps\" is not a SIG"),
        "{err}"
    );
}

#[test]
fn gaps_rank_by_distinct_programs_with_their_lines_of_code() {
    let f = fixture();
    // Every eligible endpoint is tested by some run: the one gap is the pending deployments
    // list, called by two programs (shop-controller twice, once without a purpose).
    assert_eq!(
        json_of(&f.db, "tests", &[("gaps", "true")]),
        json!([{"endpoint": "listAppsV1NamespacedDeployment", "level": "stable", "category": "apps",
                "eligible": false, "programs": 2, "hits": 4,
                "locs": ["src/show.rs:40", "src/main.rs:9"]}])
    );
    // Eligible endpoints only: none untested is left to suggest.
    assert_eq!(json_of(&f.db, "suggest", &[]), json!([]));
}
