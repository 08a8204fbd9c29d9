//! Audit events of every shape kube-apiserver has written (v1alpha1 of 1.7, v1beta1 of 1.8
//! and 1.12, v1 of 1.36 captured from the real kube-apiserver), in every container `ingest`
//! reads, through the binary.

use std::path::Path;

use serde_json::{Value, json};
use whakapapa_collector::store::{self, StageRank};

use crate::it::fixture::gzip;
use crate::it::ingest::{collector, figure};

/// kube-apiserver v1.36.3's own log backend (`--audit-log-path`, Metadata level for every
/// request), the lines of user `admin` while kubectl created, got, listed, watched for 2 s and
/// deleted a ConfigMap, got one that does not exist and listed deployments: 11 requests
/// (discovery and the delete's wait included), 23 events (the watch has a `ResponseStarted`).
const CAPTURED: &str = include_str!("../data/audit-v1-kube-apiserver-1.36.3.log");
const CAPTURED_REQUESTS: u64 = 11;

/// The releases whose apiserver wrote a shape of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Release {
    /// 1.7: `audit.k8s.io/v1alpha1`, `timestamp` to the second, objectRef `apiVersion` as
    /// `group/version` (`/v1` for the core group), `metadata.creationTimestamp` null.
    V1_7,
    /// 1.8: `audit.k8s.io/v1beta1`, still `timestamp` only, `apiGroup` apart from `apiVersion`.
    V1_8,
    /// 1.12: v1beta1 with `requestReceivedTimestamp` and `stageTimestamp` beside the deprecated
    /// `timestamp` and `metadata.creationTimestamp`, a user agent and annotations.
    V1_12,
}

/// One API request: its stages are written as its release writes them.
#[derive(Clone, Debug)]
struct Req {
    release: Release,
    id: String,
    verb: &'static str,
    uri: &'static str,
    /// `(group, version, resource, namespace, name)`.
    object: (String, String, &'static str, &'static str, &'static str),
    code: u16,
    /// Seconds after the release's base time.
    at: u64,
}

impl Req {
    fn new(release: Release, n: usize, verb: &'static str, uri: &'static str) -> Req {
        let (group, version) = match uri.strip_prefix("/apis/") {
            Some(rest) => {
                let mut parts = rest.split('/');
                let group = parts.next().unwrap_or_default();
                (
                    group.to_owned(),
                    parts.next().unwrap_or_default().to_owned(),
                )
            }
            None => (String::new(), "v1".to_owned()),
        };
        let (resource, name) = match uri {
            u if u.contains("/deployments") => ("deployments", "web"),
            u if u.contains("/pods") => ("pods", ""),
            _ => ("configmaps", "settings"),
        };
        let object = (group, version, resource, "shop", name);
        Req {
            release,
            id: format!("{release:?}-{n:04}-5f7c-4b8a-9e1d-0c6f2a7b3d91").to_lowercase(),
            verb,
            uri,
            object,
            code: 200,
            at: n as u64,
        }
    }

    /// When the release's apiserver received it: a second after the other, from
    /// 2017-09-26T10:00:00Z (1.7), 2017-11-02T14:20:00Z (1.8), 2018-09-26T22:13:20Z (1.12).
    fn received_secs(&self) -> u64 {
        let base = match self.release {
            Release::V1_7 => 1_506_420_000,
            Release::V1_8 => 1_509_632_400,
            Release::V1_12 => 1_538_000_000,
        };
        base + self.at
    }

    /// The receive time stored: to the second before 1.9, to the µs from then on.
    fn received_us(&self) -> i64 {
        let extra = if self.release == Release::V1_12 {
            123_456
        } else {
            0
        };
        (self.received_secs() * 1_000_000 + extra) as i64
    }

    /// The event of `stage` as the request's release writes it.
    fn event(&self, stage: &str) -> Value {
        let api = match self.release {
            Release::V1_7 => "audit.k8s.io/v1alpha1",
            Release::V1_8 | Release::V1_12 => "audit.k8s.io/v1beta1",
        };
        let received = self.received_secs();
        let secs = |t: u64| jiff::Timestamp::from_second(t as i64).unwrap().to_string();
        let (group, version, resource, namespace, name) = &self.object;
        let mut object = json!({"resource": resource, "namespace": namespace});
        if !name.is_empty() {
            object["name"] = json!(name);
        }
        match self.release {
            Release::V1_7 => object["apiVersion"] = json!(format!("{group}/{version}")),
            _ => {
                if !group.is_empty() {
                    object["apiGroup"] = json!(group);
                }
                object["apiVersion"] = json!(version);
            }
        }
        let mut e = json!({
            "kind": "Event",
            "apiVersion": api,
            "metadata": {"creationTimestamp": null},
            "level": "Metadata",
            "timestamp": secs(received),
            "auditID": self.id,
            "stage": stage,
            "requestURI": self.uri,
            "verb": self.verb,
            "user": {"username": "system:serviceaccount:shop:deployer", "uid": "0b1c2d3e", "groups": ["system:serviceaccounts", "system:authenticated"]},
            "sourceIPs": ["10.128.0.7"],
            "objectRef": object,
        });
        if stage != "RequestReceived" {
            e["responseStatus"] = json!({"metadata": {}, "code": self.code});
        }
        if self.release == Release::V1_12 {
            // From 1.9 on the stage time is written too (to the µs), and from 1.10 the user
            // agent and annotations.
            let micros = |us: u64| {
                jiff::Timestamp::from_microsecond(us as i64)
                    .unwrap()
                    .to_string()
            };
            let received_us = self.received_us() as u64;
            let staged_us = match stage {
                "RequestReceived" => received_us,
                _ => received_us + 4_321,
            };
            e["metadata"]["creationTimestamp"] = json!(secs(staged_us / 1_000_000));
            e["requestReceivedTimestamp"] = json!(micros(received_us));
            e["stageTimestamp"] = json!(micros(staged_us));
            e["userAgent"] = json!("deployer/v1.12.0 (linux/amd64) kubernetes/17c77c7");
            e["annotations"] = json!({"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""});
        }
        e
    }

    /// Both of its stages, as JSON.
    fn stages(&self) -> [Value; 2] {
        [
            self.event("RequestReceived"),
            self.event("ResponseComplete"),
        ]
    }
}

/// Three requests of each old release, numbered from `from`; the Deployment in the version
/// of `apps` each release served.
fn old_requests(from: usize) -> Vec<Req> {
    let mut reqs = Vec::new();
    let releases = [
        (
            Release::V1_7,
            "/apis/apps/v1beta1/namespaces/shop/deployments/web",
        ),
        (
            Release::V1_8,
            "/apis/apps/v1beta2/namespaces/shop/deployments/web",
        ),
        (
            Release::V1_12,
            "/apis/apps/v1/namespaces/shop/deployments/web",
        ),
    ];
    for (k, (release, deployment)) in releases.into_iter().enumerate() {
        let n = from + 3 * k;
        reqs.push(Req::new(
            release,
            n,
            "update",
            "/api/v1/namespaces/shop/configmaps/settings",
        ));
        reqs.push(Req::new(
            release,
            n + 1,
            "list",
            "/api/v1/namespaces/shop/pods?limit=500",
        ));
        reqs.push(Req::new(release, n + 2, "get", deployment));
    }
    reqs
}

fn ingest(db: &Path, batch_size: &str, paths: &[&Path]) -> String {
    let mut args = vec![
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--batch-size",
        batch_size,
    ];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let (ok, out, err) = collector(&args, None);
    assert!(ok, "{err}");
    out
}

fn lines(events: impl IntoIterator<Item = Value>) -> String {
    events.into_iter().map(|e| e.to_string() + "\n").collect()
}

/// `(stage, verb, operation, group, version, received, latency)` of the one request stored
/// for `id`.
type Stored = (
    StageRank,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

fn stored(db: &Path, id: &str) -> Stored {
    let conn = store::open_reader(db).unwrap();
    let rows = store::read::requests_by_audit_id(&conn, id).unwrap();
    assert_eq!(rows.len(), 1, "{id}: {rows:?}");
    let (group, version): (Option<String>, Option<String>) = conn
        .query_row(
            "SELECT api_group, api_version FROM requests WHERE audit_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let row = rows.into_iter().next().unwrap();
    (
        row.stage,
        row.verb,
        row.operation_id,
        group,
        version,
        row.received_us,
        row.latency_us,
    )
}

/// One JSON lines file mixing every release's shape, stages of a request in different
/// batches and out of order: every request stored once with its last stage, and read again
/// nothing changes.
#[test]
fn a_log_mixing_every_release_ingests_whole_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let reqs = old_requests(0);
    // Every RequestReceived first, then the ResponseCompletes backwards, the real log between.
    let mut text = lines(reqs.iter().map(|r| r.event("RequestReceived")));
    text.push_str(CAPTURED);
    text.push_str(&lines(
        reqs.iter().rev().map(|r| r.event("ResponseComplete")),
    ));
    let log = dir.path().join("mixed.log");
    std::fs::write(&log, &text).unwrap();
    let db = dir.path().join("w.db");
    let events = 2 * reqs.len() as u64 + 23;
    let requests = reqs.len() as u64 + CAPTURED_REQUESTS;

    let out = ingest(&db, "4", &[&log]);
    assert_eq!(figure(&out, "events read"), events, "{out}");
    assert_eq!(figure(&out, "malformed lines"), 0, "{out}");
    assert_eq!(figure(&out, "requests stored"), requests, "{out}");
    assert_eq!(figure(&out, "requests in database"), requests, "{out}");

    for r in &reqs {
        let (stage, verb, operation, group, version, received, latency) = stored(&db, &r.id);
        let want = match (r.verb, r.release) {
            ("update", _) => (Some("replaceCoreV1NamespacedConfigMap"), None, "v1"),
            ("list", _) => (Some("listCoreV1NamespacedPod"), None, "v1"),
            // 1.36 serves apps/v1 only: the older versions are not its endpoints.
            (_, Release::V1_7) => (None, Some("apps"), "v1beta1"),
            (_, Release::V1_8) => (None, Some("apps"), "v1beta2"),
            _ => (Some("readAppsV1NamespacedDeployment"), Some("apps"), "v1"),
        };
        assert_eq!(stage, StageRank::ResponseComplete, "{r:?}");
        assert_eq!(
            (
                verb.as_str(),
                operation.as_deref(),
                group.as_deref(),
                version.as_deref()
            ),
            (r.verb, want.0, want.1, Some(want.2)),
            "{r:?}"
        );
        // Before 1.9 an event says when its request was received, to the second, and not
        // when its stage was reached: no latency.
        assert_eq!(received, r.received_us(), "{r:?}");
        let want_latency = (r.release == Release::V1_12).then_some(4_321);
        assert_eq!(latency, want_latency, "{r:?}");
    }
    // The real apiserver's watch: three stages, one request, its last stage stored.
    let watch = CAPTURED
        .lines()
        .find(|l| l.contains("\"verb\":\"watch\""))
        .unwrap();
    let id = serde_json::from_str::<Value>(watch).unwrap()["auditID"]
        .as_str()
        .unwrap()
        .to_owned();
    let (stage, verb, operation, ..) = stored(&db, &id);
    assert_eq!(stage, StageRank::ResponseComplete);
    assert_eq!(
        (verb.as_str(), operation.as_deref()),
        ("watch", Some("listCoreV1NamespacedConfigMap"))
    );

    // Read again, in other batches: nothing new, every event a duplicate.
    let out = ingest(&db, "7", &[&log]);
    assert_eq!(figure(&out, "requests stored"), 0, "{out}");
    assert_eq!(figure(&out, "stage updates"), 0, "{out}");
    assert_eq!(
        figure(&out, "duplicates") + figure(&out, "earlier stages"),
        events,
        "{out}"
    );
    assert_eq!(figure(&out, "requests in database"), requests, "{out}");
}

/// The same kind of requests in every container: JSON lines, one JSON object, an
/// `EventList` (also one per line), a bare array, a `v1` `List`, YAML documents and a YAML
/// stream, each also
/// gzipped (the same requests again: nothing new), and what is not an event reported with its
/// file and line.
#[test]
fn every_container_is_read_and_a_copy_in_another_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(inputs.join(name), bytes).unwrap();
        std::fs::write(inputs.join(format!("{name}.gz")), gzip(bytes)).unwrap();
    };
    let yaml = |v: &Value| serde_saphyr::to_string(v).unwrap();
    // Containers of several events: each gets 9 requests of its own (18 events).
    let mut expected_events = 0u64;
    let mut expected_requests = 0u64;
    let mut each = |from: usize| {
        let reqs = old_requests(from);
        expected_events += 2 * reqs.len() as u64;
        expected_requests += reqs.len() as u64;
        reqs.iter().flat_map(Req::stages).collect::<Vec<Value>>()
    };
    write("lines.log", lines(each(100)).as_bytes());
    // One EventList per line (webhook bodies appended to a file), one event each, and an
    // empty one.
    let mut per_line = lines(
        each(900)
            .into_iter()
            .map(|e| json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [e]})),
    );
    per_line.push_str("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[]}\n");
    write("eventlists.log", per_line.as_bytes());
    write(
        "eventlist.json",
        json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": each(200)})
            .to_string()
            .as_bytes(),
    );
    write(
        "array.json",
        serde_json::to_string_pretty(&Value::Array(each(300)))
            .unwrap()
            .as_bytes(),
    );
    write(
        "list.json",
        json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": ""}, "items": each(400)})
            .to_string()
            .as_bytes(),
    );
    // A YAML stream: one event per document, as audit2rbac reads them.
    let stream: String = each(500)
        .iter()
        .map(|e| format!("---\n{}", yaml(e)))
        .collect();
    write("stream.yaml", stream.as_bytes());
    // One YAML document holding an EventList.
    write(
        "eventlist.yaml",
        yaml(
            &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": each(600)}),
        )
        .as_bytes(),
    );
    // One JSON object: one event, pretty-printed (a single stage of one request).
    let single = Req::new(
        Release::V1_8,
        700,
        "get",
        "/apis/apps/v1/namespaces/shop/deployments/web",
    );
    write(
        "event.json",
        serde_json::to_string_pretty(&single.event("ResponseComplete"))
            .unwrap()
            .as_bytes(),
    );
    expected_events += 1;
    expected_requests += 1;
    // What is not an event, between events, in YAML and in JSON lines.
    let pod = "---\nkind: Pod\napiVersion: v1\nmetadata: {name: web-0}\n";
    let good = Req::new(
        Release::V1_7,
        800,
        "list",
        "/api/v1/namespaces/shop/pods?limit=500",
    );
    std::fs::write(
        inputs.join("z-mixed.yaml"),
        format!("---\n{}{pod}", yaml(&good.event("ResponseComplete"))),
    )
    .unwrap();
    let good2 = Req::new(
        Release::V1_12,
        801,
        "list",
        "/api/v1/namespaces/shop/pods?limit=500",
    );
    std::fs::write(
        inputs.join("z-mixed.log"),
        format!(
            "{}{{\"kind\":\"Status\",\"code\":404}}\n",
            lines([good2.event("ResponseComplete")])
        ),
    )
    .unwrap();
    expected_events += 2 + 1 + 1;
    expected_requests += 2;

    let db = dir.path().join("w.db");
    let out = ingest(&db, "5000", &[&inputs]);
    // Eight containers and their gzipped copies, and the two mixed files.
    assert!(out.contains("ingested 18 inputs"), "{out}");
    let copies = expected_events - 4; // the gzipped copies repeat all but the mixed files
    assert_eq!(
        figure(&out, "events read"),
        expected_events + copies,
        "{out}"
    );
    assert_eq!(figure(&out, "requests stored"), expected_requests, "{out}");
    assert_eq!(figure(&out, "malformed lines"), 2, "{out}");
    assert_eq!(
        figure(&out, "requests in database"),
        expected_requests,
        "{out}"
    );
    let pod_line = 2 + yaml(&good.event("ResponseComplete")).lines().count() + 1;
    assert!(
        out.contains(&format!(
            "z-mixed.yaml:{pod_line}: invalid audit event at byte"
        )) && out.contains("missing field `verb`"),
        "{out}"
    );
    assert!(out.contains("z-mixed.log:2: invalid audit event"), "{out}");
    let (stage, verb, operation, group, ..) = stored(&db, &single.id);
    assert_eq!(
        (stage, verb.as_str(), operation.as_deref(), group.as_deref()),
        (
            StageRank::ResponseComplete,
            "get",
            Some("readAppsV1NamespacedDeployment"),
            Some("apps")
        )
    );

    // Everything again: nothing new.
    let out = ingest(&db, "5000", &[&inputs]);
    assert_eq!(figure(&out, "requests stored"), 0, "{out}");
    assert_eq!(figure(&out, "stage updates"), 0, "{out}");
    assert_eq!(
        figure(&out, "requests in database"),
        expected_requests,
        "{out}"
    );
}
