//! End-to-end tests against the real Kubernetes control plane (`whakapapa_e2e::cluster`):
//! etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from their Go modules
//! by `scripts/kube-binaries.sh`, auditing to a real `whakapapa-collector serve` through the
//! files `whakapapa-collector manifests` writes. Each test names the component it relies on.
//!
//! Without the binaries (or the collector binary) every test prints `SKIPPED: ...` and passes.

use super::quickstart::{EXPECTED, line_of};
use ::quickstart::{CONTROLLER_FILE as FILE, controller};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use whakapapa_e2e::cluster::{ControlPlane, KubeBinaries, Options, collector_binary};

/// One control plane at a time: each is several processes on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The options for `test`'s control plane and its turn (one at a time), or `None` and a
/// `SKIPPED` line without the binaries.
async fn real_cluster(test: &str) -> Option<(Options, tokio::sync::MutexGuard<'static, ()>)> {
    let options = options(test)?;
    Some((options, ONE_AT_A_TIME.lock().await))
}

/// The options for a control plane, or `None` (and a `SKIPPED` line) without the binaries.
fn options(test: &str) -> Option<Options> {
    let binaries = match KubeBinaries::find() {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED: {test}: {why}");
            return None;
        }
    };
    match collector_binary() {
        Ok(collector) => Some(Options::new(binaries, collector)),
        Err(why) => {
            println!("SKIPPED: {test}: {why}");
            None
        }
    }
}

/// One stored request, as the tests read it straight from the collector's SQLite file.
#[derive(Debug, Clone)]
struct Stored {
    audit_id: String,
    verb: String,
    uri: String,
    mapping: String,
    endpoint: Option<String>,
    status: Option<i64>,
    identity: Option<String>,
    identity_name: Option<String>,
    identity_detail: Option<String>,
    username: Option<String>,
}

/// Every request stored so far (the collector commits each audit batch before answering it).
fn stored(db: &Path) -> Vec<Stored> {
    let conn = whakapapa_collector::store::open_reader(db).expect("open the collector's db");
    let mut stmt = conn
        .prepare(
            "SELECT r.audit_id, r.verb, r.request_uri, r.mapping, e.operation_id, r.status_code,
                    i.text, i.name, i.detail, u.name
               FROM requests r
               LEFT JOIN endpoints e ON e.id = r.endpoint_id
               LEFT JOIN identities i ON i.id = r.identity_id
               LEFT JOIN users u ON u.id = r.user_id
              ORDER BY r.id",
        )
        .expect("query requests");
    stmt.query_map([], |row| {
        Ok(Stored {
            audit_id: row.get(0)?,
            verb: row.get(1)?,
            uri: row.get(2)?,
            mapping: row.get(3)?,
            endpoint: row.get(4)?,
            status: row.get(5)?,
            identity: row.get(6)?,
            identity_name: row.get(7)?,
            identity_detail: row.get(8)?,
            username: row.get(9)?,
        })
    })
    .expect("read requests")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Waits until `done` holds for what is stored (bounded: the API server batches audit events
/// for up to `--audit-webhook-batch-max-wait=1s`).
async fn wait_stored(db: &Path, what: &str, done: impl Fn(&[Stored]) -> bool) -> Vec<Stored> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = if db.exists() { stored(db) } else { vec![] };
        if done(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "not stored within 30 s: {what} ({} requests stored)",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Answers a query through the collector's Query API, fresh: every batch acknowledged so far
/// folded into the rollups first.
async fn query(cluster: &ControlPlane, name: &str, params: &[(&str, &str)]) -> Value {
    let client = cluster.collector_client().await.unwrap();
    let mut uri = format!("/api/v1/{name}?fresh=true&");
    for (k, v) in params {
        uri.push_str(&format!("{k}={}&", percent(v)));
    }
    let text = client
        .request_text(http::Request::get(uri).body(Vec::new()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("query {name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Records the `Audit-ID` and `User-Agent` of every request leaving the whakapapa layer.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<(String, String)>>>);

impl Sent {
    fn layer<B>(
        &self,
    ) -> tower::util::MapRequestLayer<impl Fn(http::Request<B>) -> http::Request<B> + Clone + use<B>>
    {
        let sent = self.clone();
        tower::util::MapRequestLayer::new(move |req: http::Request<B>| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            sent.0
                .lock()
                .unwrap()
                .push((header("audit-id"), header("user-agent")));
            req
        })
    }

    fn taken(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// The admin's client with the whakapapa layer on `settings`, and what it sent.
async fn traced_admin_client(
    cluster: &ControlPlane,
    settings: whakapapa::Settings,
) -> (kube::Client, whakapapa::PurposeLayer, Sent) {
    let layer = whakapapa::PurposeLayer::new(settings);
    let sent = Sent::default();
    let client = kube::client::ClientBuilder::try_from(cluster.admin_config().await.unwrap())
        .unwrap()
        .with_layer(&sent.layer())
        .with_layer(&layer)
        .build();
    (client, layer, sent)
}

/// kube-apiserver's audit webhook backend: every request of the quickstart controller (kube-rs
/// with the whakapapa layer) is stored exactly once, under the `Audit-ID` the layer sent, mapped
/// to the right endpoint and joined to the function and line that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_audits_each_request_of_the_controller_once() {
    let Some((options, _one)) =
        real_cluster("kube_apiserver_audits_each_request_of_the_controller_once").await
    else {
        return;
    };
    let cluster = ControlPlane::start(options).await.unwrap();

    let mut identity = whakapapa::identity!();
    identity.name = "shop-controller".to_owned();
    let settings = whakapapa::Settings::new(identity)
        .with_purpose(true)
        .with_collector_url(&cluster.side_channel_url())
        .unwrap();
    let (client, layer, sent) = traced_admin_client(&cluster, settings).await;
    controller::run(client).await.unwrap();
    let delivered =
        tokio::task::spawn_blocking(move || layer.handle().flush(Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(delivered.is_complete(), "{delivered}");
    assert!(delivered.delivered > 0, "{delivered}");

    let sent = sent.taken();
    let ids: BTreeSet<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), sent.len(), "one Audit-ID per request");
    let rows = wait_stored(&cluster.db(), "the controller's requests", |rows| {
        let stored: BTreeSet<&str> = rows.iter().map(|r| r.audit_id.as_str()).collect();
        ids.is_subset(&stored)
    })
    .await;
    let mine: Vec<&Stored> = rows
        .iter()
        .filter(|r| ids.contains(r.audit_id.as_str()))
        .collect();
    assert_eq!(mine.len(), sent.len(), "each request stored exactly once");
    for r in &mine {
        assert_eq!(r.mapping, "endpoint", "{r:?}");
        assert_eq!(r.identity_name.as_deref(), Some("shop-controller"), "{r:?}");
        assert_eq!(r.username.as_deref(), Some("kubernetes-admin"), "{r:?}");
    }
    // The user agent the layer sent is at most 1024 bytes, so the real server keeps it whole.
    for (_, ua) in &sent {
        assert!(ua.len() <= 1024 && !ua.ends_with("...TRUNCATED"), "{ua}");
    }

    // The same lines reach the same endpoints, as often, as against the stand-in.
    for &(function, call, endpoint, verb, hits) in EXPECTED {
        let at = format!("{FILE}:{}", line_of(call));
        let answer = query(&cluster, "loc", &[("loc", &at)]).await;
        let functions: Vec<&str> = answer["matched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap())
            .collect();
        assert!(
            !functions.is_empty()
                && functions
                    .iter()
                    .all(|f| *f == format!("quickstart::controller::{function}")),
            "{at} is in {function}; the collector says {functions:?}"
        );
        let reached: Vec<(&str, &str, u64)> = answer["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["endpoint"].as_str().unwrap(),
                    e["verb"].as_str().unwrap(),
                    e["hits"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(
            reached.contains(&(endpoint, verb, hits)),
            "{at} ({function}) should reach {endpoint} ({verb}) {hits} times, reaches {reached:?}"
        );
    }

    // The file a stopped `serve` leaves answers `whakapapa-collector query` (a reader, which
    // cannot fold) for every request stored.
    let mut cluster = cluster;
    let db = cluster.stop_collector().unwrap();
    let at = format!("{FILE}:{}", line_of("namespaces.create("));
    let request =
        whakapapa_collector::query::Request::from_params("loc", [("loc", at.as_str())]).unwrap();
    let conn = whakapapa_collector::store::open_reader(&db).unwrap();
    let answer = request.run(&conn).unwrap();
    let Ok(loc) = answer.into_inner::<whakapapa_collector::query::loc::LocAnswer>() else {
        panic!("loc answers with lines of code");
    };
    let reached: Vec<&str> = loc.endpoints.iter().map(|e| e.endpoint.as_str()).collect();
    assert_eq!(reached, ["createCoreV1Namespace"], "{at}");
}

/// kube-controller-manager and kube-scheduler: their own client-go traffic is stored mapped
/// (no `unmapped:unknown_path` for a built-in API) and attributed to their identities, each
/// controller's service account kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_manager_and_scheduler_traffic_is_mapped_to_their_identities() {
    let Some((options, _one)) =
        real_cluster("controller_manager_and_scheduler_traffic_is_mapped_to_their_identities")
            .await
    else {
        return;
    };
    let cluster = ControlPlane::start(options).await.unwrap();
    let client = cluster.admin_client().await.unwrap();
    // A deployment: the deployment controller creates its replica set, the replica set
    // controller its pods, the scheduler tries to place them.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap(),
        )
        .await
        .unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "web");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    let rows = wait_stored(
        &cluster.db(),
        "the replica set controller creating pods",
        |rows| {
            rows.iter().any(|r| {
                r.endpoint.as_deref() == Some("createCoreV1NamespacedPod")
                    && r.username.as_deref()
                        == Some("system:serviceaccount:kube-system:replicaset-controller")
            }) && rows
                .iter()
                .any(|r| r.username.as_deref() == Some("system:kube-scheduler"))
        },
    )
    .await;

    let by_kcm: Vec<&Stored> = rows
        .iter()
        .filter(|r| r.identity_name.as_deref() == Some("kube-controller-manager"))
        .collect();
    let by_scheduler: Vec<&Stored> = rows
        .iter()
        .filter(|r| r.identity_name.as_deref() == Some("kube-scheduler"))
        .collect();
    assert!(!by_kcm.is_empty() && !by_scheduler.is_empty());
    for r in by_kcm.iter().chain(&by_scheduler) {
        assert!(
            r.mapping == "endpoint" || r.mapping == "non_resource",
            "a built-in API is mapped: {r:?}"
        );
    }
    let created_pods = by_kcm
        .iter()
        .find(|r| r.endpoint.as_deref() == Some("createCoreV1NamespacedPod"))
        .expect("the replica set controller created a pod");
    let ua = created_pods.identity.as_deref().unwrap_or_default();
    assert!(
        ua.starts_with("kube-controller-manager/v1.36.3 (linux/amd64) kubernetes/")
            && ua.ends_with("/system:serviceaccount:kube-system:replicaset-controller"),
        "the identity keeps the controller: {ua}"
    );
    assert_eq!(
        created_pods.identity_detail.as_deref(),
        Some("system:serviceaccount:kube-system:replicaset-controller"),
        "the controller is its own field"
    );
    let statuses: BTreeMap<&str, usize> = by_kcm.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.verb.as_str()).or_default() += 1;
        m
    });
    assert!(
        statuses.contains_key("watch") && statuses.contains_key("create"),
        "{statuses:?}"
    );
}

/// kubectl (built from the same module): get, apply, patch, delete, an exec attempt,
/// discovery and `/openapi/v3` are all stored, mapped or non-resource, none dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_requests_are_stored_mapped_or_non_resource() {
    let Some((options, _one)) =
        real_cluster("kubectl_requests_are_stored_mapped_or_non_resource").await
    else {
        return;
    };
    let kubectl_bin = KubeBinaries::find().unwrap().path("kubectl");
    let cluster = ControlPlane::start(options).await.unwrap();
    let kubeconfig = cluster.kubeconfig("admin").unwrap();
    let manifest = cluster.dir().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(&kubectl_bin)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let m = manifest.display().to_string();
    for args in [
        vec!["get", "pods", "-A"],
        vec!["apply", "-f", &m],
        vec![
            "patch",
            "configmap",
            "settings",
            "-p",
            r#"{"data":{"a":"2"}}"#,
        ],
        vec!["api-resources"],
        vec!["explain", "pods.spec"],
        vec!["delete", "configmap", "settings"],
        vec!["run", "shell", "--image=busybox", "--restart=Never"],
    ] {
        let (ok, err) = kubectl(&args);
        assert!(ok, "kubectl {args:?}: {err}");
    }
    // The pod has no node: the exec attempt fails at the API server, and is audited.
    let (ok, _) = kubectl(&["exec", "shell", "--", "true"]);
    assert!(!ok, "exec into a pod without a node fails");

    let want = [
        "listCoreV1PodForAllNamespaces",
        "createCoreV1NamespacedConfigMap",
        "patchCoreV1NamespacedConfigMap",
        "deleteCoreV1NamespacedConfigMap",
        "createCoreV1NamespacedPod",
        "connectCoreV1PostNamespacedPodExec",
    ];
    let rows = wait_stored(&cluster.db(), "kubectl's requests", |rows| {
        let seen: BTreeSet<&str> = rows.iter().filter_map(|r| r.endpoint.as_deref()).collect();
        want.iter().all(|w| seen.contains(w))
    })
    .await;
    let by_kubectl: Vec<&Stored> = rows
        .iter()
        .filter(|r| r.identity_name.as_deref() == Some("kubectl"))
        .collect();
    for r in &by_kubectl {
        assert!(
            r.mapping == "endpoint" || r.mapping == "non_resource",
            "kubectl's request is mapped or non-resource: {r:?}"
        );
    }
    let uris: Vec<&str> = by_kubectl.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.iter().any(|u| u.starts_with("/openapi/v3")),
        "{uris:?}"
    );
    assert!(
        uris.iter().any(|u| *u == "/api" || u.starts_with("/apis")),
        "{uris:?}"
    );
    let exec = by_kubectl
        .iter()
        .find(|r| r.endpoint.as_deref() == Some("connectCoreV1PostNamespacedPodExec"))
        .unwrap();
    assert!(exec.status.is_some_and(|s| s >= 400), "{exec:?}");
}

/// The admission webhook of `collector.yaml`, called by the real kube-apiserver: a pod created
/// in a namespace labelled `whakapapa.dev/purpose=enabled` comes back with the purpose switch
/// and the collector's URL in every container; one in another namespace comes back unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhook_switches_purpose_on_in_labelled_namespaces() {
    let Some((options, _one)) =
        real_cluster("admission_webhook_switches_purpose_on_in_labelled_namespaces").await
    else {
        return;
    };
    let cluster = ControlPlane::start(options).await.unwrap();
    let client = cluster.admin_client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (name, labels) in [
        ("shop", json!({"whakapapa.dev/purpose": "enabled"})),
        ("plain", json!({})),
    ] {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"containers": [
            {"name": "main", "image": "app:1"},
            {"name": "sidecar", "image": "proxy:1", "env": [{"name": "KEEP", "value": "me"}]}
        ]}
    }))
    .unwrap();
    let env_of = |pod: &Pod| -> Vec<BTreeMap<String, String>> {
        pod.spec
            .as_ref()
            .unwrap()
            .containers
            .iter()
            .map(|c| {
                c.env
                    .iter()
                    .flatten()
                    .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
                    .collect()
            })
            .collect()
    };
    let shop: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let created = shop.create(&PostParams::default(), &pod).await.unwrap();
    for env in env_of(&created) {
        assert_eq!(
            env.get("KUBE_CLIENT_SUBMIT_PURPOSE").map(String::as_str),
            Some("1"),
            "{env:?}"
        );
        assert_eq!(
            env.get("WHAKAPAPA_COLLECTOR_URL"),
            Some(&cluster.side_channel_url()),
            "{env:?}"
        );
    }
    assert_eq!(
        env_of(&created)[1].get("KEEP").map(String::as_str),
        Some("me")
    );

    let plain: Api<Pod> = Api::namespaced(client.clone(), "plain");
    let created = plain.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(
        env_of(&created),
        vec![
            BTreeMap::new(),
            BTreeMap::from([("KEEP".to_owned(), "me".to_owned())])
        ],
        "a pod outside a labelled namespace is left alone"
    );

    // Labelling a namespace later switches purpose on for pods created from then on.
    namespaces
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"whakapapa.dev/purpose": "enabled"}}})),
        )
        .await
        .unwrap();
    let mut second = pod.clone();
    second.metadata.name = Some("app-2".to_owned());
    let created = plain.create(&PostParams::default(), &second).await.unwrap();
    assert!(
        env_of(&created)
            .iter()
            .all(|e| e.contains_key("KUBE_CLIENT_SUBMIT_PURPOSE"))
    );

    // /metrics counts the mutations; /healthz and /readyz answer throughout.
    let collector = cluster.collector_client().await.unwrap();
    for path in ["/healthz", "/readyz"] {
        collector
            .request_text(http::Request::get(path).body(Vec::new()).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let metrics = collector
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let mutated = metrics
        .lines()
        .find(|l| l.starts_with("whakapapa_collector_admission_pods_mutated_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(mutated, Some(2.0), "{metrics}");
}

/// kube-apiserver's webhook backend when the collector is away: requests made while it is
/// stopped (connection refused) or frozen (SIGSTOP: slower than any webhook timeout) all
/// succeed without waiting for it; once it is back on the same database, the backend's
/// retries deliver them; nothing acknowledged before is lost and nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_or_frozen_never_fails_requests_and_loses_nothing_acknowledged() {
    let test =
        "a_collector_that_is_down_or_frozen_never_fails_requests_and_loses_nothing_acknowledged";
    let Some((options, _one)) = real_cluster(test).await else {
        return;
    };
    let mut cluster = ControlPlane::start(options.without_controllers())
        .await
        .unwrap();
    let settings = whakapapa::Settings::new(whakapapa::identity!()).with_purpose(true);
    let (client, _layer, sent) = traced_admin_client(&cluster, settings).await;
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    let create = |name: String| {
        let configmaps = configmaps.clone();
        async move {
            let started = Instant::now();
            let cm = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
            configmaps
                .create(&PostParams::default(), &cm)
                .await
                .unwrap();
            started.elapsed()
        }
    };

    for i in 0..10 {
        create(format!("before-{i}")).await;
    }
    let before: BTreeSet<String> = sent.taken().into_iter().map(|(id, _)| id).collect();
    wait_stored(&cluster.db(), "the requests before the outage", |rows| {
        let stored: BTreeSet<&str> = rows.iter().map(|r| r.audit_id.as_str()).collect();
        before.iter().all(|id| stored.contains(id.as_str()))
    })
    .await;

    // Down: connection refused.
    cluster.stop_collector().unwrap();
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        slowest = slowest.max(create(format!("down-{i}")).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start_collector().unwrap();
    cluster
        .wait_collector_ready(Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();

    // Frozen: the connection is accepted but nothing answers.
    cluster.signal_collector("STOP").unwrap();
    for i in 0..10 {
        slowest = slowest.max(create(format!("frozen-{i}")).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.signal_collector("CONT").unwrap();
    let thawed = Instant::now();
    assert!(
        slowest < Duration::from_secs(2),
        "the API server answered without waiting for the collector (slowest {slowest:?})"
    );

    let all: Vec<String> = sent.taken().into_iter().map(|(id, _)| id).collect();
    assert_eq!(all.len(), 30);
    // The webhook backend retries with backoff (10 s initial by default): allow for it.
    let deadline = Instant::now() + Duration::from_secs(90);
    let rows = loop {
        let rows = stored(&cluster.db());
        let stored: BTreeSet<&str> = rows.iter().map(|r| r.audit_id.as_str()).collect();
        if all.iter().all(|id| stored.contains(id.as_str())) || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let count = |id: &str| rows.iter().filter(|r| r.audit_id == id).count();
    for id in &before {
        assert_eq!(count(id), 1, "acknowledged before the outage: {id}");
    }
    let delivered: Vec<&String> = all.iter().filter(|id| count(id) == 1).collect();
    let twice: Vec<&String> = all.iter().filter(|id| count(id) > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    println!(
        "webhook backend: {} of 30 requests delivered after a 2 s outage and a 3 s freeze, \
         the last {:?} after the collector was thawed; slowest request {slowest:?}",
        delivered.len(),
        thawed.elapsed()
    );
    assert_eq!(
        delivered.len(),
        30,
        "the backend's retries delivered everything"
    );
}

/// kube-apiserver's apiextensions server: a CRD created in the test and used. The CRD itself
/// maps to its built-in endpoints; under the embedded 1.36 catalog the custom resource's
/// requests are stored with the reason they are not mapped, and under the live cluster's
/// (`--openapi cluster`) they map to the CRD's endpoints, marked as an extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_resource_maps_once_the_catalog_is_the_live_clusters() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

    let Some((options, _one)) =
        real_cluster("a_custom_resource_maps_once_the_catalog_is_the_live_clusters").await
    else {
        return;
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let options = options
        .without_controllers()
        .apiserver_arg(format!("--audit-log-path={}", log.path().display()));
    let cluster = ControlPlane::start(options).await.unwrap();
    let client = cluster.admin_client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object",
                              "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))
    .unwrap();
    // The CRD is served once it is Established: retry the first create until then.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = widgets.create(&PostParams::default(), &widget).await {
        assert!(
            Instant::now() < deadline,
            "the CRD was not served in time: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    widgets.list(&Default::default()).await.unwrap();
    widgets.get("w1").await.unwrap();

    let rows = wait_stored(&cluster.db(), "the widget requests", |rows| {
        rows.iter()
            .filter(|r| {
                r.uri
                    .starts_with("/apis/example.com/v1/namespaces/default/widgets")
            })
            .count()
            >= 3
    })
    .await;
    let crd_create = rows
        .iter()
        .find(|r| {
            r.verb == "create"
                && r.uri
                    .starts_with("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        })
        .expect("the CRD's creation is stored");
    assert_eq!(
        crd_create.endpoint.as_deref(),
        Some("createApiextensionsV1CustomResourceDefinition")
    );
    for r in rows
        .iter()
        .filter(|r| r.uri.starts_with("/apis/example.com/"))
    {
        assert_eq!(r.mapping, "unmapped:unknown_path", "{r:?}");
        assert_eq!(r.endpoint, None);
    }

    // With the live cluster's catalog (`--openapi cluster`, which reads the API server's
    // OpenAPI through the kubeconfig) the same requests, from the API server's log backend, map
    // to the CRD's endpoints, kept out of the conformance totals.
    let db = cluster.dir().join("cluster-catalog.db");
    let out = std::process::Command::new(collector_binary().unwrap())
        .env("KUBECONFIG", cluster.kubeconfig("admin").unwrap())
        .args(["ingest", "--openapi", "cluster", "--db"])
        .arg(&db)
        .arg(log.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = stored(&db);
    let widgets: Vec<&Stored> = rows
        .iter()
        .filter(|r| {
            r.uri
                .starts_with("/apis/example.com/v1/namespaces/default/widgets")
        })
        .collect();
    assert!(widgets.len() >= 3);
    let endpoints: BTreeSet<&str> = widgets
        .iter()
        .map(|r| r.endpoint.as_deref().unwrap_or(r.mapping.as_str()))
        .collect();
    assert_eq!(
        endpoints,
        BTreeSet::from([
            "createExampleComV1NamespacedWidget",
            "listExampleComV1NamespacedWidget",
            "readExampleComV1NamespacedWidget"
        ])
    );
    let conn = whakapapa_collector::store::open_reader(&db).unwrap();
    let marked: Vec<(String, String, i64, Option<String>)> = conn
        .prepare(
            "SELECT operation_id, category, eligible, ineligible_reason FROM endpoints \
             WHERE api_group = 'example.com' ORDER BY operation_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!marked.is_empty());
    for (id, category, eligible, reason) in &marked {
        assert_eq!(category, "example.com", "{id}");
        assert_eq!(
            *eligible, 0,
            "{id} is an extension, never conformance eligible"
        );
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("CustomResourceDefinition")),
            "{id}: {reason:?}"
        );
    }
    // Kubernetes' own endpoints keep their eligibility.
    let eligible: i64 = conn
        .query_row(
            "SELECT count(*) FROM endpoints WHERE eligible = 1 AND api_group <> 'example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(eligible > 500, "{eligible} eligible built-in endpoints");
}

/// `serve --openapi cluster --refresh-openapi`: a CRD installed while the collector serves maps
/// from the next refresh on (read from the API server's `/openapi/v3`), and a request to its
/// path stored unmapped before the CRD existed (a 404) is mapped again, counted in the
/// endpoint's rollups; the CRD's endpoints are extensions, out of the conformance totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_installed_while_serving_maps_after_the_refresh_and_earlier_requests_are_remapped() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

    let test =
        "a_crd_installed_while_serving_maps_after_the_refresh_and_earlier_requests_are_remapped";
    let Some((options, _one)) = real_cluster(test).await else {
        return;
    };
    let mut cluster = ControlPlane::start(options.without_controllers())
        .await
        .unwrap();
    // The collector again, now with the live cluster's catalog, loaded every 2 s.
    cluster.stop_collector().unwrap();
    let kubeconfig = cluster.kubeconfig("admin").unwrap();
    cluster
        .start_collector_with(
            &["--openapi", "cluster", "--refresh-openapi", "2s"],
            Some(&kubeconfig),
        )
        .unwrap();
    cluster
        .wait_collector_ready(Instant::now() + Duration::from_secs(60))
        .await
        .unwrap();
    let client = cluster.admin_client().await.unwrap();

    // Before the CRD exists: a list on its path is a 404, stored with no endpoint.
    let early = client
        .request_text(
            http::Request::get("/apis/stable.example.com/v1/namespaces/default/crontabs")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert!(early.is_err(), "no CronTab API yet: {early:?}");
    let is_crontab = |r: &&Stored| r.uri.starts_with("/apis/stable.example.com/v1/");
    let rows = wait_stored(&cluster.db(), "the 404 list", |rows| {
        rows.iter().any(|r| is_crontab(&r) && r.status == Some(404))
    })
    .await;
    let early = rows.iter().find(|r| is_crontab(r)).unwrap().clone();
    assert_eq!(early.mapping, "unmapped:unknown_path", "{early:?}");

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object",
                              "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();

    // The early request is mapped again once a refresh has read the CRD's v3 document.
    let rows = wait_stored(&cluster.db(), "the 404 list mapped again", |rows| {
        rows.iter().any(|r| {
            r.audit_id == early.audit_id
                && r.endpoint.as_deref() == Some("listStableExampleComV1NamespacedCronTab")
        })
    })
    .await;
    let again = rows.iter().find(|r| r.audit_id == early.audit_id).unwrap();
    assert_eq!(again.mapping, "endpoint");

    // From then on the CRD's requests map as they arrive.
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stable.example.com", "v1", "CronTab"),
        "crontabs",
    );
    let crontabs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let crontab: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "c1"}, "spec": {"cronSpec": "* * * * */5"}
    }))
    .unwrap();
    crontabs
        .create(&PostParams::default(), &crontab)
        .await
        .unwrap();
    crontabs.list(&Default::default()).await.unwrap();
    crontabs.get("c1").await.unwrap();
    let rows = wait_stored(&cluster.db(), "create, list and get of a CronTab", |rows| {
        rows.iter().filter(|r| is_crontab(r)).count() >= 4
    })
    .await;
    let mapped: BTreeMap<&str, usize> =
        rows.iter()
            .filter(|r| is_crontab(r))
            .fold(BTreeMap::new(), |mut by, r| {
                *by.entry(r.endpoint.as_deref().unwrap_or(r.mapping.as_str()))
                    .or_default() += 1;
                by
            });
    assert_eq!(
        mapped,
        BTreeMap::from([
            ("createStableExampleComV1NamespacedCronTab", 1),
            ("listStableExampleComV1NamespacedCronTab", 2),
            ("readStableExampleComV1NamespacedCronTab", 1),
        ])
    );

    // The Query API counts both lists (the remapped 404 and the later 200) under the endpoint,
    // in category `stable.example.com`, and none of the CRD's endpoints is eligible.
    let endpoints = query(
        &cluster,
        "endpoints",
        &[("category", "stable.example.com"), ("counting", "any")],
    )
    .await;
    let text = endpoints.to_string();
    assert!(
        text.contains("listStableExampleComV1NamespacedCronTab"),
        "{text}"
    );
    let coverage = query(&cluster, "coverage", &[("counting", "any")]).await;
    let extension = coverage["by_category"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "stable.example.com")
        .unwrap_or_else(|| panic!("no stable.example.com category: {coverage}"));
    assert_eq!(extension["eligible"], 0, "{extension}");
    assert!(extension["total"].as_u64().unwrap() >= 3, "{extension}");
    assert!(extension["tested"].as_u64().unwrap() >= 3, "{extension}");
    let hits: i64 = whakapapa_collector::store::open_reader(&cluster.db())
        .unwrap()
        .query_row(
            "SELECT u.hits FROM endpoint_usage u JOIN endpoints e ON e.id = u.endpoint_id \
             WHERE e.operation_id = 'listStableExampleComV1NamespacedCronTab'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hits, 2, "the remapped list and the later one");
    // Every refresh read both /openapi/v2 and each /openapi/v3 document.
    let log = std::fs::read_to_string(cluster.dir().join("logs/whakapapa-collector.log")).unwrap();
    for warning in [
        "no OpenAPI v3 documents",
        "no OpenAPI v2 document",
        "cannot refresh the catalog",
    ] {
        assert!(!log.contains(warning), "{warning}:\n{log}");
    }
}

/// kube-apiserver's user-agent cut: a whakapapa user agent over 1024 bytes (as another
/// implementation of the grammar, or an older library, could send) is audited as its first 1024
/// bytes and `...TRUNCATED`; the collector keeps only whole frames of it, and the side channel's
/// full purpose, joined by the fingerprint in the Audit-ID, completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_agent_over_1024_bytes_is_cut_by_kube_apiserver_and_joined_to_its_full_purpose() {
    use whakapapa_wire::{Frame, Record, audit_id, user_agent};

    let test =
        "a_user_agent_over_1024_bytes_is_cut_by_kube_apiserver_and_joined_to_its_full_purpose";
    let Some((options, _one)) = real_cluster(test).await else {
        return;
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let options = options
        .without_controllers()
        .apiserver_arg(format!("--audit-log-path={}", log.path().display()));
    let cluster = ControlPlane::start(options).await.unwrap();
    let frames: Vec<Frame> = (0..40)
        .map(|i| Frame::new(format!("deep::level_{i:02}"), "src/deep.rs", 100 + i))
        .collect();
    let identity = "deep/v1.0.0 (linux/amd64) git/0123abc";
    let fingerprint = 0x5eed_0000_0000_0001;
    // Rendered through the wire crate (whole frames up to 1024 bytes), then the frames that did
    // not fit appended the way the grammar writes them.
    let mut ua = user_agent::render(identity, None, fingerprint, None, &frames);
    let kept = ua.matches('@').count();
    for frame in &frames[kept..] {
        ua.push(' ');
        frame.push_token(&mut ua);
    }
    assert!(ua.len() > 1100, "{} bytes", ua.len());

    let client = cluster.admin_client().await.unwrap();
    let id = audit_id::encode(fingerprint, 7);
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .header("user-agent", &ua)
        .header("audit-id", &id)
        .body(Vec::new())
        .unwrap();
    client.request_text(request).await.unwrap();
    // The full purpose, as the layer's side channel posts it.
    let record = Record {
        whakapapa: whakapapa_wire::RECORD_VERSION,
        fingerprint,
        identity: whakapapa_wire::Identity::parse(identity),
        test: None,
        frames: frames.clone(),
        span: None,
        seen_at: None,
        addresses: Vec::new(),
        thread: None,
        source_dir: None,
    };
    let side = kube::Client::try_from(kube::Config::new(
        cluster.side_channel_url().parse().unwrap(),
    ))
    .unwrap();
    let post = http::Request::post("/purposes")
        .header("content-type", "application/x-ndjson")
        .body((serde_json::to_string(&record).unwrap() + "\n").into_bytes())
        .unwrap();
    let ack = side.request_text(post).await.unwrap();
    assert!(ack.contains("\"stored\":1"), "{ack}");

    let rows = wait_stored(&cluster.db(), "the deep request", |rows| {
        rows.iter().any(|r| r.audit_id == id)
    })
    .await;
    let stored = rows.iter().find(|r| r.audit_id == id).unwrap();
    assert_eq!(
        stored.endpoint.as_deref(),
        Some("listCoreV1NamespacedConfigMap")
    );
    assert_eq!(stored.identity_name.as_deref(), Some("deep"));

    // What the real server wrote (its log backend has the same events): 1024 bytes and the
    // suffix; parsed, whole frames only.
    let cut = format!("{}...TRUNCATED", &ua[..1024]);
    let written: Vec<String> = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["auditID"] == id.as_str())
        .map(|e| e["userAgent"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!written.is_empty());
    assert!(written.iter().all(|w| *w == cut), "{written:?}");
    let parsed = user_agent::parse(&cut);
    assert!(parsed.truncated);
    assert_eq!(parsed.fingerprint, Some(fingerprint));
    assert!(parsed.frames.len() < frames.len());
    assert_eq!(
        parsed.frames[..],
        frames[..parsed.frames.len()],
        "whole frames only"
    );

    // Both the innermost line (in the cut user agent) and the outermost (side channel only)
    // reach the endpoint.
    for frame in [&frames[0], &frames[39]] {
        let at = format!("{}:{}", frame.file, frame.line);
        let answer = query(&cluster, "loc", &[("loc", &at)]).await;
        let reached: Vec<&str> = answer["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["endpoint"].as_str().unwrap())
            .collect();
        assert_eq!(reached, ["listCoreV1NamespacedConfigMap"], "{at}: {answer}");
    }
}
