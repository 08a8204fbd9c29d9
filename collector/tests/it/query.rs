//! The Query API end to end: events written in kube-apiserver's audit format and a side-channel
//! spool are ingested through the real `ingest` command (two runs), then every query is asked
//! through the library, the HTTP API and the `query` command, and its answer checked exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use whakapapa_collector::cli::{self, Cli};
use whakapapa_collector::query::{Answer, Format, Request};
use whakapapa_collector::store::{self, Store};

use crate::it::fixture::whakapapa_ua as ua;
use crate::it::fixture::{SHOP, shop_list_pods, shop_patch_cm};
use clap::Parser as _;

/// A small OpenAPI v2 document: 9 endpoints, 7 stable (one listed ineligible), 1 beta, 1 alpha.
pub(crate) fn spec() -> Value {
    let op = |id: &str, tag: &str, action: &str, g: &str, v: &str, k: &str| {
        json!({"operationId": id, "tags": [tag], "description": format!("{action} {k}"),
               "x-kubernetes-action": action,
               "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k}})
    };
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.0.0"},
        "paths": {
            "/api/v1/namespaces/{namespace}/configmaps": {
                "get": op("listCoreV1NamespacedConfigMap", "core_v1", "list", "", "v1", "ConfigMap"),
                "post": op("createCoreV1NamespacedConfigMap", "core_v1", "post", "", "v1", "ConfigMap"),
            },
            "/api/v1/namespaces/{namespace}/configmaps/{name}": {
                "get": op("readCoreV1NamespacedConfigMap", "core_v1", "get", "", "v1", "ConfigMap"),
                "patch": op("patchCoreV1NamespacedConfigMap", "core_v1", "patch", "", "v1", "ConfigMap"),
            },
            "/api/v1/namespaces/{namespace}/pods": {
                "get": op("listCoreV1NamespacedPod", "core_v1", "list", "", "v1", "Pod"),
            },
            "/api/v1/nodes": {"get": op("listCoreV1Node", "core_v1", "list", "", "v1", "Node")},
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale": {
                "patch": op("patchAppsV1NamespacedDeploymentScale", "apps_v1", "patch", "autoscaling", "v1", "Scale"),
            },
            "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas": {
                "get": op("listFlowcontrolApiserverV1beta3FlowSchema", "flowcontrolApiserver_v1beta3", "list", "flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema"),
            },
            "/apis/resource.k8s.io/v1alpha3/devicetaintrules": {
                "get": op("listResourceV1alpha3DeviceTaintRule", "resource_v1alpha3", "list", "resource.k8s.io", "v1alpha3", "DeviceTaintRule"),
            },
        }
    })
}

const DASH: &str = "dashboard/v1.2.0 (linux/arm64) git/abc1234";
const E2E: &str = "e2e.test/v1.36.0 (linux/amd64) kubernetes/6f6b2a1";
const KUBECTL: &str = "kubectl/v1.36.0 (linux/amd64) kubernetes/6f6b2a1";
const POD_TEST: &str = "[sig-node] Pods should list pods [Conformance]";
const CM_TEST: &str = "[sig-apps] ConfigMap should be created";

struct Ev {
    id: String,
    stage: &'static str,
    verb: &'static str,
    uri: String,
    ua: String,
    user: &'static str,
    at: i64,
    code: Option<u16>,
    object: Value,
}

/// `requestReceivedTimestamp` = 2026-11-20T10:00:00Z + `at` seconds.
// One argument per event field keeps the fixture's event table readable.
#[allow(clippy::too_many_arguments)]
fn ev(
    id: &str,
    verb: &'static str,
    uri: &str,
    ua: &str,
    user: &'static str,
    at: i64,
    code: u16,
    object: Value,
) -> Ev {
    Ev {
        id: id.into(),
        stage: "ResponseComplete",
        verb,
        uri: uri.into(),
        ua: ua.into(),
        user,
        at,
        code: Some(code),
        object,
    }
}

impl Ev {
    fn received(mut self) -> Ev {
        self.stage = "RequestReceived";
        self.code = None;
        self
    }

    fn line(&self) -> String {
        let t =
            |s: i64, ms: i64| format!("2026-11-20T10:{:02}:{:02}.{:03}000Z", s / 60, s % 60, ms);
        let mut v = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": format!("5e0c5a0e-0000-4000-8000-{:0>12}", self.id), "stage": self.stage,
            "requestURI": self.uri, "verb": self.verb,
            "user": {"username": self.user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.0.0.7"], "userAgent": self.ua,
            "requestReceivedTimestamp": t(self.at, 0),
            "stageTimestamp": t(self.at, if self.code.is_some() { 12 } else { 0 }),
        });
        if !self.object.is_null() {
            v["objectRef"] = self.object.clone();
        }
        if let Some(c) = self.code {
            v["responseStatus"] = json!({"metadata": {}, "code": c});
        }
        v.to_string() + "\n"
    }
}

fn obj(
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    group: &str,
    sub: Option<&str>,
) -> Value {
    let mut o = json!({"resource": resource, "apiGroup": group, "apiVersion": "v1"});
    if let Some(n) = namespace {
        o["namespace"] = json!(n);
    }
    if let Some(n) = name {
        o["name"] = json!(n);
    }
    if let Some(s) = sub {
        o["subresource"] = json!(s);
    }
    o
}

const SA: &str = "system:serviceaccount:shop:controller";

fn run1() -> Vec<Ev> {
    let pods = |id, at| {
        ev(
            id,
            "list",
            "/api/v1/namespaces/shop/pods",
            &shop_list_pods(),
            SA,
            at,
            200,
            obj("pods", Some("shop"), None, "", None),
        )
    };
    let patch = |id, at, code| {
        ev(
            id,
            "patch",
            "/api/v1/namespaces/shop/configmaps/inventory",
            &shop_patch_cm(),
            SA,
            at,
            code,
            obj("configmaps", Some("shop"), Some("inventory"), "", None),
        )
    };
    let dash_get = ua(
        DASH,
        0xb1,
        &[
            (
                "kube_client::api::Api<K>::get",
                "kube-client-5.0.0/src/api/core_methods.rs",
                80,
            ),
            ("dashboard::show", "src/show.rs", 9),
        ],
    );
    let dash_watch = ua(
        DASH,
        0xb2,
        &[
            (
                "kube_client::api::Api<K>::watch",
                "kube-client-5.0.0/src/api/core_methods.rs",
                300,
            ),
            ("dashboard::follow", "src/show.rs", 20),
        ],
    );
    vec![
        pods("1", 0),
        patch("2", 1, 200),
        pods("3", 100),
        patch("4", 101, 200),
        pods("5", 200).received(), // completed in run 2
        patch("6", 201, 404),
        ev(
            "7",
            "get",
            "/api/v1/namespaces/shop/configmaps/inventory",
            &dash_get,
            "alice",
            10,
            200,
            obj("configmaps", Some("shop"), Some("inventory"), "", None),
        ),
        ev(
            "8",
            "watch",
            "/api/v1/namespaces/shop/configmaps?watch=true",
            &dash_watch,
            "alice",
            11,
            200,
            obj("configmaps", Some("shop"), None, "", None),
        ),
        ev(
            "9",
            "list",
            "/api/v1/nodes",
            DASH,
            "alice",
            12,
            200,
            obj("nodes", None, None, "", None),
        ),
        ev(
            "10",
            "list",
            "/api/v1/namespaces/e2e-1/pods",
            &format!("{E2E} -- {POD_TEST}"),
            "kubernetes-admin",
            20,
            200,
            obj("pods", Some("e2e-1"), None, "", None),
        ),
        ev(
            "11",
            "create",
            "/api/v1/namespaces/e2e-2/configmaps",
            &format!("{E2E} -- {CM_TEST}"),
            "kubernetes-admin",
            21,
            201,
            obj("configmaps", Some("e2e-2"), None, "", None),
        ),
        ev(
            "12",
            "get",
            "/version",
            KUBECTL,
            "kubernetes-admin",
            30,
            200,
            Value::Null,
        ),
        ev(
            "13",
            "list",
            "/apis/example.com/v1/widgets",
            KUBECTL,
            "kubernetes-admin",
            31,
            200,
            obj("widgets", None, None, "example.com", None),
        ),
        ev(
            "14",
            "list",
            "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
            KUBECTL,
            "kubernetes-admin",
            32,
            200,
            obj(
                "flowschemas",
                None,
                None,
                "flowcontrol.apiserver.k8s.io",
                None,
            ),
        ),
    ]
}

fn run2() -> Vec<Ev> {
    vec![
        ev(
            "5",
            "list",
            "/api/v1/namespaces/shop/pods",
            &shop_list_pods(),
            SA,
            200,
            200,
            obj("pods", Some("shop"), None, "", None),
        ),
        ev(
            "15",
            "get",
            "/api/v1/namespaces/e2e-2/configmaps/c1",
            &format!("{E2E} -- {CM_TEST}"),
            "kubernetes-admin",
            300,
            200,
            obj("configmaps", Some("e2e-2"), Some("c1"), "", None),
        ),
    ]
}

/// The side-channel record of `00000000000000a1`: its full stack, one frame more than the UA.
pub(crate) fn purposes() -> String {
    json!({"whakapapa": 1, "fingerprint": "00000000000000a1",
           "identity": {"name": "shop-controller", "version": "v0.3.1", "os": "linux", "arch": "amd64",
                        "source": "git", "commit": "4f2a9c1", "user_agent": SHOP},
           "frames": [
               {"function": "kube_client::api::Api<K>::list", "file": "kube-client-5.0.0/src/api/core_methods.rs", "line": 106},
               {"function": "shop_controller::inventory::count_pods", "file": "src/inventory.rs", "line": 42},
               {"function": "shop_controller::reconcile", "file": "src/main.rs", "line": 17},
               {"function": "shop_controller::main", "file": "src/main.rs", "line": 5}],
           "seen_at": "2026-11-20T10:00:00.000Z"})
    .to_string()
        + "\n"
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn ingest(db: &Path, spec: &str, ineligible: &str, files: &[String]) {
    let mut args = vec![
        "whakapapa-collector".to_string(),
        "ingest".into(),
        "--db".into(),
        db.to_string_lossy().into_owned(),
        "--openapi".into(),
        spec.into(),
        "--ineligible".into(),
        ineligible.into(),
    ];
    args.extend(files.iter().cloned());
    cli::run(Cli::parse_from(args)).expect("ingest");
}

/// Two ingest runs through the real command: run 1 (events), run 2 (more events, one of them
/// completing a request of run 1, and the side-channel spool).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let spec = write(dir.path(), "openapi-v1.0.0.json", &spec().to_string());
    let inel = write(
        dir.path(),
        "ineligible.json",
        r#"[{"endpoint": "listCoreV1Node", "reason": "cluster specific", "link": null}]"#,
    );
    let e1 = write(
        dir.path(),
        "audit-1.log",
        &run1().iter().map(Ev::line).collect::<String>(),
    );
    let e2 = write(
        dir.path(),
        "audit-2.log",
        &run2().iter().map(Ev::line).collect::<String>(),
    );
    let p = write(dir.path(), "purposes.jsonl", &purposes());
    ingest(&db, &spec, &inel, &[e1]);
    ingest(&db, &spec, &inel, &[e2, p]);
    Fixture { _dir: dir, db }
}

fn ask(db: &Path, name: &str, params: &[(&str, &str)]) -> Answer {
    let conn = store::open_reader(db).unwrap();
    let req = Request::from_params(name, params.iter().copied()).unwrap();
    req.run(&conn).unwrap()
}

fn json_of(db: &Path, name: &str, params: &[(&str, &str)]) -> Value {
    serde_json::from_str(&ask(db, name, params).to_json()).unwrap()
}

/// The `query` command's stdout.
fn cli_out(db: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .arg("query")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

async fn http_get(db: &Path, uri: &str) -> (StatusCode, String) {
    let store = Store::open(db, store::Options::default()).unwrap();
    let app = whakapapa_collector::http::api::router(store);
    let resp = app
        .oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Replaces what differs between runs (temp paths, load and run times) with placeholders.
fn mask(db: &Path, text: &str) -> String {
    let conn = store::open_reader(db).unwrap();
    let mut out = text.replace(
        &db.parent().unwrap().to_string_lossy().into_owned(),
        "<dir>",
    );
    let fixed = |t: String| {
        t.parse::<jiff::Timestamp>()
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
    };
    let loaded: String = conn
        .query_row("SELECT loaded_at FROM releases", [], |r| r.get(0))
        .unwrap();
    out = out.replace(&fixed(loaded), "<loaded_at>");
    let mut st = conn
        .prepare("SELECT id, started_at, finished_at FROM ingest_runs")
        .unwrap();
    let runs: Vec<(i64, String, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, started, finished) in runs {
        out = out.replace(&fixed(started), &format!("<started_{id}>"));
        if let Some(f) = finished {
            out = out.replace(&fixed(f), &format!("<finished_{id}>"));
        }
    }
    out
}

/// The golden answers below were generated by this fixture and checked by hand against the
/// events: see `fixture()` for what each number counts.
#[test]
#[ignore = "writes the golden answers to $GOLDEN_DIR for review"]
fn write_golden_answers() {
    let f = fixture();
    let dir = PathBuf::from(std::env::var("GOLDEN_DIR").unwrap());
    std::fs::create_dir_all(dir.join("inputs")).unwrap();
    // The inputs too, for the README's examples (ingested again with the binary).
    for e in std::fs::read_dir(f.db.parent().unwrap()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("w.db") {
            std::fs::copy(&p, dir.join("inputs").join(name)).unwrap();
        }
    }
    for c in cases() {
        let (file, name, params) = (&c.file, &c.name, &c.params());
        let a = ask(&f.db, name, params);
        for (ext, format) in [
            ("txt", Format::Table),
            ("json", Format::Json),
            ("csv", Format::Csv),
        ] {
            std::fs::write(
                dir.join(format!("{file}.{ext}")),
                mask(&f.db, &a.render(format)),
            )
            .unwrap();
        }
    }
}

/// A golden case: its file name, the query and its parameters, from `CASE.args`
/// (`NAME param=value ...`) beside the answers it prints.
struct Case {
    file: String,
    name: String,
    params: Vec<(String, String)>,
}

impl Case {
    fn params(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/query");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "args") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut words = text.split_whitespace();
        let name = words
            .next()
            .unwrap_or_else(|| panic!("{}: empty", path.display()));
        let params = words
            .map(|w| {
                let (k, v) = w
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: {w:?} is not name=value", path.display()));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        out.push(Case {
            file: path.file_stem().unwrap().to_string_lossy().into_owned(),
            name: name.to_owned(),
            params,
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    assert!(!out.is_empty(), "no golden cases in {}", dir.display());
    // No answer without the case that prints it.
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            out.iter().any(|c| c.file == stem),
            "{}: no {stem}.args says what it answers",
            path.display()
        );
    }
    out
}

fn golden(file: &str, ext: &str) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/query/{file}.{ext}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_same(what: &str, got: &str, want: &str) {
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{what} differs at line {}:\n got: {:?}\nwant: {:?}\n--- got in full ---\n{got}",
            line + 1,
            got.lines().nth(line),
            want.lines().nth(line)
        );
    }
}

/// Every query (and the filters that change its plan) in table, JSON and CSV, exactly.
#[test]
fn every_query_in_every_format() {
    let f = fixture();
    for c in cases() {
        let (file, name, params) = (&c.file, &c.name, &c.params());
        let a = ask(&f.db, name, params);
        for (ext, format) in [
            ("txt", Format::Table),
            ("json", Format::Json),
            ("csv", Format::Csv),
        ] {
            assert_same(
                &format!("{name} {params:?} as {ext}"),
                &mask(&f.db, &a.render(format)),
                &golden(file, ext),
            );
        }
    }
}

/// What the golden answers say, in the words of the fixture's events.
#[test]
fn answers_count_what_the_events_did() {
    let f = fixture();
    let cov = json_of(&f.db, "coverage", &[]);
    // 9 endpoints, 7 stable, 6 eligible (listCoreV1Node is listed ineligible); tests hit
    // createCM, readCM (sig-apps test, readCM only in run 2) and listPod (conformance test).
    assert_eq!(
        cov["totals"],
        json!({"total": 9, "tested": 3, "conf_tested": 1, "eligible": 6, "tested_eligible": 3, "conf_tested_eligible": 1, "pending": 0, "conf_tested_pending": 0})
    );
    // 15 requests stored, /version and the CRD are not endpoints: 13. Request 5 was seen at
    // RequestReceived in run 1 and completed in run 2: counted once, with its 200.
    assert_eq!(cov["requests"], 13);
    let ep = json_of(
        &f.db,
        "endpoint",
        &[("endpoint", "listCoreV1NamespacedPod")],
    );
    assert_eq!(ep["codes"], json!([{"code": 200, "hits": 4}]));
    // The side channel's full stack (4 frames) replaced the user agent's 3.
    assert_eq!(ep["purposes"][0]["complete"], true);
    assert_eq!(ep["purposes"][0]["frames"].as_array().unwrap().len(), 4);
    let loc = json_of(&f.db, "loc", &[("loc", "src/inventory.rs:60")]);
    assert_eq!(
        loc["endpoints"][0]["codes"],
        json!([{"code": 200, "hits": 2}, {"code": 404, "hits": 1}])
    );
    // A file given without its directory matches as the tail of a path.
    let tail = json_of(&f.db, "loc", &[("loc", "inventory.rs:42")]);
    assert_eq!(tail["matched"][0]["file"], "src/inventory.rs");
    assert_eq!(tail["endpoints"][0]["hits"], 3);
    let deps = json_of(&f.db, "deps", &[]);
    // The e2e test writes configmaps in e2e-2 only: it shares no object with the dashboard.
    assert_eq!(deps["edges"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            deps["edges"][0]["writer"].as_str(),
            deps["edges"][0]["reader"].as_str()
        ),
        (Some("shop-controller"), Some("dashboard"))
    );
    let j = json_of(&f.db, "journeys", &[]);
    assert_eq!(
        j,
        json!([{"app": "shop-controller", "purpose": "shop_controller::reconcile",
            "sequence": ["listCoreV1NamespacedPod", "patchCoreV1NamespacedConfigMap"], "support": 3}])
    );
    assert_eq!(
        json_of(&f.db, "journeys", &[("min-support", "4")]),
        json!([])
    );
    // A 99 s pause is more than a 60 s gap but less than a 120 s one: one episode of 6.
    let long = json_of(
        &f.db,
        "journeys",
        &[("gap", "120"), ("min-support", "1"), ("max-len", "6")],
    );
    assert_eq!(long[0]["sequence"].as_array().unwrap().len(), 6);
    let s = json_of(&f.db, "suggest", &[("limit", "1")]);
    assert_eq!(s.as_array().unwrap().len(), 1);
    assert_eq!(s[0]["journey"]["support"], 3);
    let rbac = ask(
        &f.db,
        "apps",
        &[("rbac", "true"), ("app", "shop-controller")],
    );
    let yaml = rbac.render(Format::Table);
    assert!(
        yaml.contains("kind: Role\n")
            && yaml.contains("  namespace: shop\n")
            && !yaml.contains("kind: ClusterRole\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("- kind: ServiceAccount\n  name: controller\n  namespace: shop\n"),
        "{yaml}"
    );
}

/// A time window is answered from `requests`, everything else from the rollups: a window that
/// holds every request must give the same answers, so the rollups are exactly the requests.
#[test]
fn rollups_agree_with_a_scan_of_requests() {
    let f = fixture();
    let all = [
        ("since", "2026-01-01T00:00:00Z"),
        ("until", "2027-01-01T00:00:00Z"),
    ];
    for (name, params) in [
        ("coverage", vec![]),
        ("coverage", vec![("counting", "any")]),
        ("coverage", vec![("ok-only", "true")]),
        ("sunburst", vec![]),
        ("endpoints", vec![]),
        ("endpoints", vec![("ok-only", "true")]),
        (
            "endpoint",
            vec![("endpoint", "patchCoreV1NamespacedConfigMap")],
        ),
        (
            "endpoint",
            vec![("endpoint", "listCoreV1NamespacedPod"), ("app", "shop")],
        ),
        ("loc", vec![("loc", "src/inventory.rs")]),
        ("search", vec![("q", "dashboard")]),
        ("apps", vec![]),
        ("tests", vec![]),
        ("tests", vec![("gaps", "true")]),
        ("history", vec![]),
        ("releases", vec![]),
        ("coverage", vec![("export", "apisnoop")]),
    ] {
        let base = ask(&f.db, name, &params).to_json();
        let mut windowed = params.clone();
        windowed.extend(all);
        assert_same(
            &format!("{name} {params:?} with a window"),
            &ask(&f.db, name, &windowed).to_json(),
            &base,
        );
    }
}

#[test]
fn filters_narrow_the_requests_counted() {
    let f = fixture();
    let hits = |params: &[(&str, &str)]| -> Vec<(String, u64)> {
        let v = json_of(&f.db, "endpoints", params);
        v.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["hits"].as_u64().unwrap() > 0)
            .map(|e| {
                (
                    e["endpoint"].as_str().unwrap().to_owned(),
                    e["hits"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let s = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(a, b)| (a.to_string(), *b))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        hits(&[("app", "dashboard")]),
        s(&[
            ("listCoreV1NamespacedConfigMap", 1),
            ("listCoreV1Node", 1),
            ("readCoreV1NamespacedConfigMap", 1)
        ])
    );
    // A prefix of the identity text, not only the name.
    assert_eq!(
        hits(&[("app", "shop-controller/v0.3")]),
        s(&[
            ("listCoreV1NamespacedPod", 3),
            ("patchCoreV1NamespacedConfigMap", 3)
        ])
    );
    assert_eq!(hits(&[("app", "shop-controller/v9")]), s(&[]));
    assert_eq!(
        hits(&[("test", "Pods should")]),
        s(&[("listCoreV1NamespacedPod", 1)])
    );
    assert_eq!(
        hits(&[("test", "pods should")]),
        s(&[]),
        "the test filter is case-sensitive"
    );
    assert_eq!(
        hits(&[("sig", "sig-apps")]),
        s(&[
            ("createCoreV1NamespacedConfigMap", 1),
            ("readCoreV1NamespacedConfigMap", 1)
        ])
    );
    assert_eq!(
        hits(&[("conformance", "true")]),
        s(&[("listCoreV1NamespacedPod", 1)])
    );
    assert_eq!(
        hits(&[("until", "2026-11-20T10:00:02Z")]),
        s(&[
            ("listCoreV1NamespacedPod", 1),
            ("patchCoreV1NamespacedConfigMap", 1)
        ])
    );
    assert_eq!(
        hits(&[("ok-only", "true"), ("app", "shop-controller")]),
        s(&[
            ("listCoreV1NamespacedPod", 3),
            ("patchCoreV1NamespacedConfigMap", 2)
        ])
    );
    assert_eq!(
        hits(&[("release", "1.0.0"), ("level", "beta")]),
        s(&[("listFlowcontrolApiserverV1beta3FlowSchema", 1)])
    );
    assert_eq!(
        hits(&[("group", "core"), ("tested", "true")]),
        s(&[
            ("createCoreV1NamespacedConfigMap", 1),
            ("listCoreV1NamespacedPod", 4),
            ("readCoreV1NamespacedConfigMap", 2)
        ])
    );
}

#[test]
fn bad_questions_get_clear_errors() {
    let f = fixture();
    let conn = store::open_reader(&f.db).unwrap();
    let err = |name: &str, params: &[(&str, &str)]| {
        let req = Request::from_params(name, params.iter().copied()).unwrap();
        req.run(&conn).unwrap_err().to_string()
    };
    assert_eq!(
        err("coverage", &[("release", "9.9.9")]),
        "no release `9.9.9` in the database"
    );
    assert_eq!(
        err("endpoint", &[("endpoint", "nope")]),
        "no endpoint `nope` in release 1.0.0"
    );
    assert_eq!(
        err("history", &[("release", "9.9.9")]),
        "no release `9.9.9` in the database"
    );
    // A loc that matches nothing is an empty answer, not an error.
    assert_eq!(
        json_of(&f.db, "loc", &[("loc", "src/nowhere.rs:1")]),
        json!({"loc": "src/nowhere.rs:1", "matched": [], "endpoints": []})
    );
}

#[test]
fn http_api_serves_the_same_json() {
    // The ingest command starts its own runtime: build the fixture outside ours.
    let f = fixture();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(http_checks(&f));
}

async fn http_checks(f: &Fixture) {
    for (uri, name, params) in [
        ("/api/v1/coverage", "coverage", vec![]),
        (
            "/api/v1/endpoints?level=stable&tested=false",
            "endpoints",
            vec![("level", "stable"), ("tested", "false")],
        ),
        (
            "/api/v1/endpoint?endpoint=listCoreV1NamespacedPod",
            "endpoint",
            vec![("endpoint", "listCoreV1NamespacedPod")],
        ),
        (
            "/api/v1/loc?loc=src%2Finventory.rs%3A42",
            "loc",
            vec![("loc", "src/inventory.rs:42")],
        ),
        (
            "/api/v1/search?q=inventory",
            "search",
            vec![("q", "inventory")],
        ),
        (
            "/api/v1/sunburst?ok-only=true",
            "sunburst",
            vec![("ok-only", "true")],
        ),
        ("/api/v1/apps?rbac=true", "apps", vec![("rbac", "true")]),
        (
            "/api/v1/tests?test=ConfigMap+should",
            "tests",
            vec![("test", "ConfigMap should")],
        ),
        ("/api/v1/history", "history", vec![]),
        ("/api/v1/deps", "deps", vec![]),
        ("/api/v1/journeys", "journeys", vec![]),
        ("/api/v1/suggest", "suggest", vec![]),
        ("/api/v1/releases", "releases", vec![]),
    ] {
        let (status, body) = http_get(&f.db, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        assert_same(uri, &body, &ask(&f.db, name, &params).to_json());
    }
    for (uri, status, error) in [
        (
            "/api/v1/coverage?ok-only=maybe",
            StatusCode::BAD_REQUEST,
            "bad value \"maybe\" for `ok-only`: expected true or false",
        ),
        (
            "/api/v1/coverage?level=stable",
            StatusCode::BAD_REQUEST,
            "unknown parameter `level` for query `coverage`",
        ),
        (
            "/api/v1/endpoint",
            StatusCode::BAD_REQUEST,
            "missing parameter `endpoint`",
        ),
        (
            "/api/v1/endpoint?endpoint=nope",
            StatusCode::NOT_FOUND,
            "no endpoint `nope` in release 1.0.0",
        ),
        (
            "/api/v1/coverage?release=0.1",
            StatusCode::NOT_FOUND,
            "no release `0.1` in the database",
        ),
        (
            "/api/v1/bogus",
            StatusCode::NOT_FOUND,
            "unknown query `bogus` (one of: releases, coverage, sunburst, endpoints, endpoint, loc, search, apps, tests, deps, journeys, suggest, history, deprecated, gate, diff, indirect, progress)",
        ),
    ] {
        let (got, body) = http_get(&f.db, uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"error": error}),
            "{uri}"
        );
    }
}

#[test]
fn query_command_prints_each_format() {
    let f = fixture();
    for (args, name, params, format) in [
        (vec!["coverage"], "coverage", vec![], Format::Table),
        (
            vec!["endpoints", "--format", "csv", "--eligible", "false"],
            "endpoints",
            vec![("eligible", "false")],
            Format::Csv,
        ),
        (
            vec![
                "endpoint",
                "readCoreV1NamespacedConfigMap",
                "--format",
                "json",
            ],
            "endpoint",
            vec![("endpoint", "readCoreV1NamespacedConfigMap")],
            Format::Json,
        ),
        (
            vec!["loc", "dashboard::", "--ok-only"],
            "loc",
            vec![("loc", "dashboard::"), ("ok-only", "true")],
            Format::Table,
        ),
        (
            vec!["apps", "--rbac", "--app", "dashboard"],
            "apps",
            vec![("rbac", "true"), ("app", "dashboard")],
            Format::Table,
        ),
        (
            vec!["tests", "--gaps", "--format", "csv"],
            "tests",
            vec![("gaps", "true")],
            Format::Csv,
        ),
        (
            vec!["coverage", "--export", "apisnoop"],
            "coverage",
            vec![("export", "apisnoop")],
            Format::Json,
        ),
        (
            vec!["history", "--counting", "any", "--format", "csv"],
            "history",
            vec![("counting", "any")],
            Format::Csv,
        ),
    ] {
        let (ok, out, err) = cli_out(&f.db, &args);
        assert!(ok, "{args:?}: {err}");
        assert_same(
            &format!("query {args:?}"),
            &out,
            &ask(&f.db, name, &params).render(format),
        );
    }
    let (ok, _, err) = cli_out(&f.db, &["coverage", "--level", "stable"]);
    assert!(!ok);
    assert!(
        err.contains("bad query `coverage`: unknown parameter `level` for query `coverage`"),
        "{err}"
    );
    let (ok, _, err) = cli_out(&f.db, &["coverage", "--since", "yesterday"]);
    assert!(!ok);
    assert!(err.contains("bad value \"yesterday\" for `since`"), "{err}");
    let missing = f.db.with_file_name("missing.db");
    let (ok, _, err) = cli_out(&missing, &["coverage"]);
    assert!(
        !ok && err.contains("no database") && err.contains("missing.db"),
        "{err}"
    );
}
