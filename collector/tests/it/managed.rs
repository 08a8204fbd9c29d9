//! Exports of managed control planes through `ingest`: GKE's Cloud Logging entries (a
//! `gcloud logging read --format=json` array and a Log Router sink's JSON lines) and EKS's
//! CloudWatch Logs (`aws logs filter-log-events` and `get-log-events` JSON, S3 export lines),
//! built as the providers document them.

use std::path::Path;

use serde_json::{Value, json};
use whakapapa_collector::query::Request;
use whakapapa_collector::store;

use crate::it::fixture::shop_list_pods;
use crate::it::ingest::{collector, figure};
use crate::it::query::{purposes, spec};

/// A GKE audit log entry of one Kubernetes API request, as Cloud Logging stores it.
fn gke(insert_id: &str, method: &str, resource: &str, ua: &str, at: &str, status: Value) -> Value {
    json!({
        "insertId": insert_id,
        "labels": {"authorization.k8s.io/decision": "allow",
                   "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding"},
        "logName": "projects/demo-project/logs/cloudaudit.googleapis.com%2Fdata_access",
        "operation": {"first": true, "last": true, "id": insert_id, "producer": "k8s.io"},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "system:serviceaccount:shop:controller"},
            "authorizationInfo": [{"granted": true, "permission": method, "resource": resource}],
            "methodName": method,
            "requestMetadata": {"callerIp": "10.8.0.12", "callerSuppliedUserAgent": ua},
            "resourceName": resource,
            "serviceName": "k8s.io",
            "status": status
        },
        "receiveTimestamp": at.replace("00Z", "01Z"),
        "resource": {"type": "k8s_cluster",
                     "labels": {"cluster_name": "demo", "location": "europe-west1", "project_id": "demo-project"}},
        "timestamp": at
    })
}

/// An apiserver audit event as EKS writes it into its `kube-apiserver-audit-*` log stream.
fn eks_event(id: &str, verb: &str, uri: &str, ua: &str, at: &str) -> Value {
    json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": id,
           "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
           "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
           "sourceIPs": ["192.0.2.10"], "userAgent": ua,
           "objectRef": {"resource": "pods", "namespace": "shop", "apiVersion": "v1"},
           "responseStatus": {"metadata": {}, "code": 200},
           "requestReceivedTimestamp": at, "stageTimestamp": at,
           "annotations": {"authorization.k8s.io/decision": "allow"}})
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn ingest(db: &Path, spec: &str, files: &[String]) -> String {
    let mut args = vec!["ingest", "--db", db.to_str().unwrap(), "--openapi", spec];
    args.extend(files.iter().map(String::as_str));
    let (ok, out, err) = collector(&args, None);
    assert!(ok, "{err}");
    out
}

#[test]
fn gke_and_eks_exports_ingest_join_their_purposes_and_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let spec = write(dir.path(), "openapi-v1.0.0.json", &spec().to_string());
    let shop = shop_list_pods();
    let kubectl = "kubectl/v1.36.0 (linux/amd64) kubernetes/6f6b2a1";
    // The same entry is in two files: the second copy must change nothing.
    let listed = gke(
        "gke-1",
        "io.k8s.core.v1.pods.list",
        "core/v1/namespaces/shop/pods",
        &shop,
        "2026-11-20T10:00:00.100000Z",
        json!({}),
    );
    // gcloud logging read --format=json: a pretty-printed array.
    let array = json!([
        listed.clone(),
        gke(
            "gke-2",
            "io.k8s.core.v1.configmaps.get",
            "core/v1/namespaces/shop/configmaps/nope",
            kubectl,
            "2026-11-20T10:00:01.100000Z",
            json!({"code": 5, "message": "NOT_FOUND"})
        ),
    ]);
    let gcloud = write(
        dir.path(),
        "gcloud.json",
        &serde_json::to_string_pretty(&array).unwrap(),
    );
    // A Log Router sink: one entry per line, and a cluster operation that is no API request.
    let mut cluster_op = gke(
        "gke-op",
        "google.container.v1.ClusterManager.GetCluster",
        "projects/demo-project/locations/europe-west1/clusters/demo",
        kubectl,
        "2026-11-20T10:00:02.000000Z",
        json!({}),
    );
    cluster_op["protoPayload"]["serviceName"] = json!("container.googleapis.com");
    let sink = [
        gke(
            "gke-3",
            "io.k8s.core.v1.pods.watch",
            "core/v1/namespaces/shop/pods",
            &shop,
            "2026-11-20T10:00:03.000000Z",
            json!({}),
        ),
        cluster_op,
        listed,
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let sink = write(dir.path(), "sink.json", &sink);
    // aws logs filter-log-events --output json.
    let uri = "/api/v1/namespaces/shop/pods?limit=500";
    let filter = json!({
        "events": [
            {"logStreamName": "kube-apiserver-audit-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
             "timestamp": 1795168805000u64, "ingestionTime": 1795168806000u64, "eventId": "3799",
             "message": eks_event("eks-1", "list", uri, &shop, "2026-11-20T10:00:05.000000Z").to_string()},
            {"logStreamName": "authenticator-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
             "timestamp": 1795168805000u64, "ingestionTime": 1795168806000u64, "eventId": "3800",
             "message": "time=\"2026-11-20T10:00:05Z\" level=info msg=\"access granted\""}
        ],
        "searchedLogStreams": [], "nextToken": "Bxk..."
    });
    let filter = write(
        dir.path(),
        "filter.json",
        &serde_json::to_string_pretty(&filter).unwrap(),
    );
    // aws logs get-log-events.
    let get = json!({"events": [{"timestamp": 1795168806000u64, "ingestionTime": 1795168807000u64,
        "message": eks_event("eks-2", "list", uri, kubectl, "2026-11-20T10:00:06.000000Z").to_string()}],
        "nextForwardToken": "f/3799", "nextBackwardToken": "b/3799"});
    let get = write(
        dir.path(),
        "get.json",
        &serde_json::to_string_pretty(&get).unwrap(),
    );
    // An S3 export: a timestamp, a space, the event; and a line that is no event.
    let s3 = format!(
        "2026-11-20T10:00:07.000Z {}\nnot an audit line\n2026-11-20T10:00:08.000Z {}\n",
        eks_event("eks-3", "list", uri, &shop, "2026-11-20T10:00:07.000000Z"),
        eks_event(
            "eks-4",
            "get",
            "/api/v1/namespaces/shop/configmaps/web-0",
            kubectl,
            "2026-11-20T10:00:08.000000Z"
        ),
    );
    let s3 = write(dir.path(), "000000.log", &s3);
    let purposes = write(dir.path(), "purposes.jsonl", &purposes());
    let files = [gcloud, sink, filter, get, s3, purposes];

    let out = ingest(&db, &spec, &files);
    // gke-1..3, eks-1..4; gke-1 twice.
    assert_eq!(figure(&out, "requests stored"), 7, "{out}");
    assert_eq!(figure(&out, "malformed lines"), 3, "{out}");
    assert!(out.contains("sink.json:2: invalid audit event at byte 0: log entry of service `container.googleapis.com`"), "{out}");
    assert!(out.contains("filter.json:10: invalid audit event"), "{out}");
    assert!(out.contains("000000.log:2: invalid audit event"), "{out}");

    let reader = store::open_reader(&db).unwrap();
    let row = |id: &str| {
        let rows = store::read::requests_by_audit_id(&reader, id).unwrap();
        assert_eq!(rows.len(), 1, "{id}");
        rows.into_iter().next().unwrap()
    };
    let listed = row("gke-1");
    assert_eq!(listed.verb, "list");
    assert_eq!(
        listed.operation_id.as_deref(),
        Some("listCoreV1NamespacedPod")
    );
    assert_eq!(
        listed.user.as_deref(),
        Some("system:serviceaccount:shop:controller")
    );
    assert_eq!(listed.fingerprint.as_deref(), Some("00000000000000a1"));
    assert_eq!(listed.status_code, Some(200));
    let missing = row("gke-2");
    assert_eq!(missing.status_code, Some(404));
    assert_eq!(
        missing.operation_id.as_deref(),
        Some("readCoreV1NamespacedConfigMap")
    );
    assert_eq!(row("gke-3").verb, "watch");
    assert_eq!(
        row("eks-1").operation_id.as_deref(),
        Some("listCoreV1NamespacedPod")
    );
    assert_eq!(row("eks-3").user.as_deref(), Some("kubernetes-admin"));
    assert_eq!(
        row("eks-4").operation_id.as_deref(),
        Some("readCoreV1NamespacedConfigMap")
    );

    // The side channel's stack has a frame the user agents lack (src/main.rs:5): the GKE and
    // EKS requests whose user agent carries its fingerprint are found by it.
    let req = Request::from_params("loc", [("loc", "src/main.rs:5")]).unwrap();
    let answer: Value = serde_json::from_str(&req.run(&reader).unwrap().to_json()).unwrap();
    // Rows are per endpoint and verb: gke-1, eks-1 and eks-3 list; gke-3 watches, which maps
    // to the list endpoint too.
    let hits = |verb: &str| {
        answer["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["endpoint"] == "listCoreV1NamespacedPod" && e["verb"] == verb)
            .unwrap_or_else(|| panic!("{answer:#}"))["hits"]
            .clone()
    };
    assert_eq!(
        (hits("list"), hits("watch")),
        (json!(3), json!(1)),
        "{answer:#}"
    );
    drop(reader);

    // Ingested again: nothing new.
    let again = ingest(&db, &spec, &files);
    assert_eq!(figure(&again, "requests stored"), 0, "{again}");
    assert_eq!(figure(&again, "requests in database"), 7, "{again}");
}
