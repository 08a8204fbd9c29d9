//! Deprecated APIs end to end: audit events carrying kube-apiserver's `k8s.io/deprecated` and
//! `k8s.io/removed-release` annotations, with whakapapa user agents and a side-channel spool,
//! are ingested through the real `ingest` command (twice: the second run is a redelivery), then
//! `deprecated` is asked through the library, the `query` command and the HTTP API.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use clap::Parser as _;
use http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use whakapapa_collector::cli::{self, Cli};
use whakapapa_collector::query::Request;
use whakapapa_collector::store::{self, Store};

use crate::it::fixture::whakapapa_ua as ua;

/// The catalog: the deprecated versions the events call, and one current endpoint.
fn spec() -> Value {
    let op = |id: &str, tag: &str, g: &str, v: &str, k: &str| {
        json!({"operationId": id, "tags": [tag], "description": format!("list {k}"),
               "x-kubernetes-action": "list",
               "x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k}})
    };
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.24.0"},
        "paths": {
            "/api/v1/namespaces/{namespace}/pods": {
                "get": op("listCoreV1NamespacedPod", "core_v1", "", "v1", "Pod"),
            },
            "/apis/batch/v1beta1/namespaces/{namespace}/cronjobs": {
                "get": op("listBatchV1beta1NamespacedCronJob", "batch_v1beta1", "batch", "v1beta1", "CronJob"),
            },
            "/apis/policy/v1beta1/podsecuritypolicies": {
                "get": op("listPolicyV1beta1PodSecurityPolicy", "policy_v1beta1", "policy", "v1beta1", "PodSecurityPolicy"),
            },
            "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas": {
                "get": op("listFlowcontrolApiserverV1beta3FlowSchema", "flowcontrolApiserver_v1beta3", "flowcontrol.apiserver.k8s.io", "v1beta3", "FlowSchema"),
            },
            "/apis/resource.k8s.io/v1beta1/deviceclasses": {
                "get": op("listResourceV1beta1DeviceClass", "resource_v1beta1", "resource.k8s.io", "v1beta1", "DeviceClass"),
            },
        }
    })
}

const SHOP: &str = "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1";
const DASH: &str = "dashboard/v1.2.0 (linux/arm64) git/abc1234";
const KUBECTL: &str = "kubectl/v1.24.0 (linux/amd64) kubernetes/6f6b2a1";

const LIST: (&str, &str, u32) = (
    "kube_client::api::Api<K>::list",
    "kube-client-5.0.0/src/api/core_methods.rs",
    106,
);

/// shop-controller's cron job sweep: its user agent was cut to the kube-rs frame, so only the
/// side channel (below) tells its line of code.
fn ua_cronjobs() -> String {
    ua(SHOP, 0xc1, &[LIST])
}

fn ua_psp() -> String {
    ua(
        SHOP,
        0xc2,
        &[
            LIST,
            ("shop_controller::policy::audit", "src/policy.rs", 12),
            ("shop_controller::reconcile", "src/main.rs", 17),
        ],
    )
}

fn ua_pods() -> String {
    ua(
        SHOP,
        0xc3,
        &[
            LIST,
            (
                "shop_controller::inventory::count_pods",
                "src/inventory.rs",
                42,
            ),
        ],
    )
}

fn ua_dash() -> String {
    ua(
        DASH,
        0xd1,
        &[LIST, ("dashboard::devices", "src/show.rs", 40)],
    )
}

fn ua_dash_widgets() -> String {
    ua(
        DASH,
        0xd2,
        &[LIST, ("dashboard::widgets", "src/show.rs", 55)],
    )
}

/// The side-channel record of `00000000000000c1`: the whole stack.
fn purposes() -> String {
    json!({"whakapapa": 1, "fingerprint": "00000000000000c1",
           "identity": {"name": "shop-controller", "version": "v0.3.1", "os": "linux", "arch": "amd64",
                        "source": "git", "commit": "4f2a9c1", "user_agent": SHOP},
           "frames": [
               {"function": LIST.0, "file": LIST.1, "line": LIST.2},
               {"function": "shop_controller::jobs::sweep", "file": "src/jobs.rs", "line": 31},
               {"function": "shop_controller::reconcile", "file": "src/main.rs", "line": 17},
               {"function": "shop_controller::main", "file": "src/main.rs", "line": 5}],
           "seen_at": "2026-11-20T10:00:00.000Z"})
    .to_string()
        + "\n"
}

/// One event as kube-apiserver's log backend writes it, `at` seconds after 10:00:00Z; the
/// deprecation annotations beside the authorization ones on the stages after RequestReceived,
/// as the apiserver adds them while it serves the request.
#[allow(clippy::too_many_arguments)]
fn event(
    id: u32,
    stage: &str,
    uri: &str,
    ua: &str,
    at: u32,
    object: Value,
    deprecated: Option<Option<&str>>,
) -> String {
    let t = |ms: u32| format!("2026-11-20T10:{:02}:{:02}.{ms:03}000Z", at / 60, at % 60);
    let received = stage == "RequestReceived";
    let mut v = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": format!("d3a1e7c2-0000-4000-8000-{id:012}"), "stage": stage,
        "requestURI": uri, "verb": "list",
        "user": {"username": "system:serviceaccount:shop:controller", "groups": ["system:serviceaccounts", "system:authenticated"]},
        "sourceIPs": ["10.0.0.7"], "userAgent": ua, "objectRef": object,
        "requestReceivedTimestamp": t(0), "stageTimestamp": t(if received { 0 } else { 9 }),
    });
    if !received {
        v["responseStatus"] = json!({"metadata": {}, "code": 200});
        let mut a = json!({
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"shop\" of ClusterRole \"shop\" to ServiceAccount \"controller/shop\"",
        });
        if let Some(removed) = deprecated {
            a["k8s.io/deprecated"] = json!("true");
            if let Some(r) = removed {
                a["k8s.io/removed-release"] = json!(r);
            }
        }
        v["annotations"] = a;
    }
    v.to_string() + "\n"
}

fn obj(group: &str, version: &str, resource: &str, namespace: Option<&str>) -> Value {
    let mut o = json!({"resource": resource, "apiGroup": group, "apiVersion": version});
    if let Some(n) = namespace {
        o["namespace"] = json!(n);
    }
    o
}

/// shop-controller lists cron jobs twice (batch/v1beta1, removed in 1.25; each request in two
/// stages) and pod security policies once (policy/v1beta1, 1.25) and pods once (not
/// deprecated); kubectl lists flow schemas (v1beta3, removed in 1.32); the dashboard lists
/// device classes (a removal planned for 1.40) and widgets of a version deprecated with no
/// removal planned (not in the catalog). The second cron job list completes in `log_2`.
fn log_1() -> String {
    let cron = || obj("batch", "v1beta1", "cronjobs", Some("shop"));
    let cron_uri = "/apis/batch/v1beta1/namespaces/shop/cronjobs";
    [
        event(
            1,
            "RequestReceived",
            cron_uri,
            &ua_cronjobs(),
            0,
            cron(),
            None,
        ),
        event(
            1,
            "ResponseComplete",
            cron_uri,
            &ua_cronjobs(),
            0,
            cron(),
            Some(Some("1.25")),
        ),
        event(
            2,
            "RequestReceived",
            cron_uri,
            &ua_cronjobs(),
            60,
            cron(),
            None,
        ),
        event(
            3,
            "ResponseComplete",
            "/apis/policy/v1beta1/podsecuritypolicies",
            &ua_psp(),
            5,
            obj("policy", "v1beta1", "podsecuritypolicies", None),
            Some(Some("1.25")),
        ),
        event(
            4,
            "ResponseComplete",
            "/api/v1/namespaces/shop/pods",
            &ua_pods(),
            6,
            obj("", "v1", "pods", Some("shop")),
            None,
        ),
        event(
            5,
            "ResponseComplete",
            "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
            KUBECTL,
            7,
            obj(
                "flowcontrol.apiserver.k8s.io",
                "v1beta3",
                "flowschemas",
                None,
            ),
            Some(Some("1.32")),
        ),
        event(
            6,
            "ResponseComplete",
            "/apis/resource.k8s.io/v1beta1/deviceclasses",
            &ua_dash(),
            8,
            obj("resource.k8s.io", "v1beta1", "deviceclasses", None),
            Some(Some("1.40")),
        ),
        event(
            7,
            "ResponseComplete",
            "/apis/example.com/v1alpha1/widgets",
            &ua_dash_widgets(),
            9,
            obj("example.com", "v1alpha1", "widgets", None),
            Some(None),
        ),
    ]
    .concat()
}

fn log_2() -> String {
    event(
        2,
        "ResponseComplete",
        "/apis/batch/v1beta1/namespaces/shop/cronjobs",
        &ua_cronjobs(),
        60,
        obj("batch", "v1beta1", "cronjobs", Some("shop")),
        Some(Some("1.25")),
    )
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

fn ingest(db: &Path, spec: &str, files: &[&str]) {
    let mut args = vec![
        "whakapapa-collector".to_string(),
        "ingest".into(),
        "--db".into(),
        db.to_string_lossy().into_owned(),
        "--openapi".into(),
        spec.into(),
    ];
    args.extend(files.iter().map(|f| f.to_string()));
    cli::run(Cli::parse_from(args)).expect("ingest");
}

/// Run 1: the first log and the spool; run 2: the stage that completes a request of run 1;
/// run 3: both logs again (nothing new).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let spec = write(dir.path(), "openapi-v1.24.0.json", &spec().to_string());
    let log_1 = write(dir.path(), "audit-1.log", &log_1());
    let log_2 = write(dir.path(), "audit-2.log", &log_2());
    let spool = write(dir.path(), "purposes.jsonl", &purposes());
    ingest(&db, &spec, &[&log_1, &spool]);
    ingest(&db, &spec, &[&log_2]);
    ingest(&db, &spec, &[&log_1, &log_2]);
    Fixture { _dir: dir, db }
}

fn ask(db: &Path, params: &[(&str, &str)]) -> Value {
    let conn = store::open_reader(db).unwrap();
    let req = Request::from_params("deprecated", params.iter().copied()).unwrap();
    serde_json::from_str(&req.run(&conn).unwrap().to_json()).unwrap()
}

/// (app, file:line, api, endpoint, removed release, requests) of each row.
type Brief = (String, String, String, String, String, u64);

fn brief(answer: &Value) -> Vec<Brief> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let loc = match &r["loc"] {
                Value::Null => String::new(),
                l => format!("{}:{}", s(&l["file"]), l["line"]),
            };
            (
                s(&r["app"]),
                loc,
                s(&r["api"]),
                s(&r["endpoint"]),
                s(&r["removed_release"]),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn b(app: &str, loc: &str, api: &str, ep: &str, removed: &str, n: u64) -> Brief {
    (
        app.into(),
        loc.into(),
        api.into(),
        ep.into(),
        removed.into(),
        n,
    )
}

fn cron_row() -> Brief {
    b(
        "shop-controller",
        "src/jobs.rs:31",
        "batch/v1beta1/cronjobs",
        "listBatchV1beta1NamespacedCronJob",
        "1.25",
        2,
    )
}

fn psp_row() -> Brief {
    b(
        "shop-controller",
        "src/policy.rs:12",
        "policy/v1beta1/podsecuritypolicies",
        "listPolicyV1beta1PodSecurityPolicy",
        "1.25",
        1,
    )
}

fn flow_row() -> Brief {
    b(
        "kubectl",
        "",
        "flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
        "listFlowcontrolApiserverV1beta3FlowSchema",
        "1.32",
        1,
    )
}

#[test]
fn deprecated_apis_by_program_and_line_of_code() {
    let f = fixture();
    let all = ask(&f.db, &[]);
    assert_eq!(
        brief(&all),
        [
            cron_row(),
            psp_row(),
            flow_row(),
            b(
                "dashboard",
                "src/show.rs:40",
                "resource.k8s.io/v1beta1/deviceclasses",
                "listResourceV1beta1DeviceClass",
                "1.40",
                1
            ),
            b(
                "dashboard",
                "src/show.rs:55",
                "example.com/v1alpha1/widgets",
                "",
                "",
                1
            ),
        ],
        "soonest removal first; pods are not deprecated; the redelivered logs count nothing twice"
    );
    let cron = &all[0];
    assert_eq!(cron["loc"]["function"], "shop_controller::jobs::sweep");
    assert_eq!(
        cron["last_seen"], "2026-11-20T10:01:00Z",
        "the second sweep"
    );
    assert_eq!(cron["identity"], SHOP);
    assert_eq!(
        (&cron["group"], &cron["version"], &cron["resource"]),
        (&json!("batch"), &json!("v1beta1"), &json!("cronjobs"))
    );
    assert_eq!(all[4]["removed_release"], Value::Null);

    // Removed in 1.37 or before: 1.25 and 1.32, not 1.40 nor a removal never planned.
    let by_137 = ask(&f.db, &[("removed-in", "1.37")]);
    assert_eq!(brief(&by_137), [cron_row(), psp_row(), flow_row()]);
    assert_eq!(
        brief(&ask(&f.db, &[("removed-in", "1.25")])),
        [cron_row(), psp_row()],
        "the release itself is included"
    );
    assert_eq!(
        brief(&ask(&f.db, &[("removed-in", "1.9")])),
        [],
        "1.9 is before 1.25 (numbers, not text)"
    );
    assert_eq!(brief(&ask(&f.db, &[("removed-in", "v1.40.2")])).len(), 4);
    assert_eq!(ask(&f.db, &[("release", "1.24.0")]), all);
    let conn = store::open_reader(&f.db).unwrap();
    let req = Request::from_params("deprecated", [("release", "1.23.0")]).unwrap();
    let err = req.run(&conn).unwrap_err();
    assert_eq!(err.to_string(), "no release `1.23.0` in the database");
    assert_eq!(
        brief(&ask(&f.db, &[("app", "shop-controller")])),
        [cron_row(), psp_row()]
    );
    assert_eq!(
        brief(&ask(&f.db, &[("since", "2026-11-20T10:00:30Z")])),
        [b(
            "shop-controller",
            "src/jobs.rs:31",
            "batch/v1beta1/cronjobs",
            "listBatchV1beta1NamespacedCronJob",
            "1.25",
            1
        )],
        "only the second sweep is in the window"
    );

    // Each deprecated request is kept once, whatever the stages and redeliveries.
    let kept: i64 = conn
        .query_row("SELECT count(*) FROM request_deprecations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kept, 6);
    let runs: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT requests, upgrades, duplicates FROM ingest_runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        runs,
        [(7, 1, 0), (0, 1, 0), (0, 0, 7)],
        "run 2 completes the second sweep; run 3 changes nothing"
    );

    // The command prints the same answer, as a table and as JSON.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
            .arg("query")
            .arg("deprecated")
            .args(args)
            .arg("--db")
            .arg(&f.db)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (ok, json_out, err) = cli(&["--removed-in", "1.37", "--format", "json"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&json_out).unwrap(), by_137);
    let (ok, table, err) = cli(&["--removed-in", "1.37"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    for (line, want) in lines[1..].iter().zip([
        ["src/jobs.rs:31", "batch/v1beta1/cronjobs", "1.25"],
        [
            "src/policy.rs:12",
            "policy/v1beta1/podsecuritypolicies",
            "1.25",
        ],
        [
            "kubectl",
            "flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
            "1.32",
        ],
    ]) {
        for w in want {
            assert!(line.contains(w), "{w} in {line}");
        }
    }
    let (ok, _, err) = cli(&["--removed-in", "soon"]);
    assert!(!ok);
    assert!(
        err.contains("bad value \"soon\" for `removed-in`: expected a release such as 1.37"),
        "{err}"
    );

    // The HTTP API: the same JSON, and the input's fault told as such.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&f.db, store::Options::default()).unwrap();
        let get = |uri: &str| {
            let app = whakapapa_collector::http::api::router(store.clone());
            let req = HttpRequest::get(uri).body(Body::empty()).unwrap();
            async move {
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice::<Value>(&body).unwrap())
            }
        };
        let (status, body) = get("/api/v1/deprecated?removed_in=1.37").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, by_137);
        let (status, body) = get("/api/v1/deprecated?removed-in=1.37").await;
        assert_eq!((status, body), (StatusCode::OK, by_137.clone()));
        let (status, body) = get("/api/v1/deprecated").await;
        assert_eq!((status, body), (StatusCode::OK, all.clone()));
        let (status, body) = get("/api/v1/deprecated?removed_in=1.x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("bad value \"1.x\""),
            "{body}"
        );
    });
}

/// The inputs of [`fixture`], for the README's example (ingested again with the binary).
#[test]
#[ignore = "writes the example inputs to $DEPRECATED_DIR"]
fn write_example_inputs() {
    let dir = PathBuf::from(std::env::var("DEPRECATED_DIR").unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "openapi-v1.24.0.json", &spec().to_string());
    write(&dir, "audit-1.log", &log_1());
    write(&dir, "audit-2.log", &log_2());
    write(&dir, "purposes.jsonl", &purposes());
}
