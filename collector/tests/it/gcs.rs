//! `ingest --prow-job` and `ingest gs://...` against a loopback server speaking the GCS JSON
//! API subset the collector uses (list with prefix/delimiter/pageToken, `alt=media` with
//! `Range`), over a Prow bucket layout, with faults: small pages, a download cut off, a 500, a
//! truncated gzip; and the hourly re-run that fetches nothing new.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::it::fixture::{Ev, gzip, lines};
use crate::it::ingest::figure;

const BIN: &str = env!("CARGO_BIN_EXE_whakapapa-collector");
const BUCKET: &str = "kubernetes-ci-logs";
/// Objects per list page: every listing of a build takes several pages.
const PAGE: usize = 2;

/// A fault the server injects into an object's first download.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// 500 Internal Server Error, no body.
    Error500,
    /// 200 with the whole length announced, half the body sent, then the connection dropped.
    CutOff,
    /// 503 to every request, until the test removes it.
    Down,
}

#[derive(Default)]
struct Bucket {
    objects: BTreeMap<String, Vec<u8>>,
    faults: HashMap<String, Fault>,
    /// Media requests: (object, Range header).
    media: Vec<(String, Option<String>)>,
    /// List requests: (prefix, pageToken).
    lists: Vec<(String, Option<String>)>,
}

type Shared = Arc<Mutex<Bucket>>;

async fn list(
    State(b): State<Shared>,
    Path(bucket): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if bucket != BUCKET {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut b = b.lock().unwrap();
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    b.lists.push((prefix.clone(), q.get("pageToken").cloned()));
    // Entries in name order: objects, and with a delimiter the "directories" below.
    let mut entries: Vec<(String, bool)> = Vec::new();
    let mut seen = HashSet::new();
    for name in b.objects.keys().filter(|n| n.starts_with(&prefix)) {
        let rest = &name[prefix.len()..];
        match q
            .get("delimiter")
            .and_then(|d| rest.find(d.as_str()).map(|i| i + d.len()))
        {
            Some(end) => {
                let p = format!("{prefix}{}", &rest[..end]);
                if seen.insert(p.clone()) {
                    entries.push((p, true));
                }
            }
            None => entries.push((name.clone(), false)),
        }
    }
    let start: usize = q.get("pageToken").map_or(0, |t| t.parse().unwrap());
    let end = (start + PAGE).min(entries.len());
    let page = &entries[start..end];
    let mut answer = json!({
        "kind": "storage#objects",
        "items": page.iter().filter(|e| !e.1).map(|(n, _)| json!({
            "kind": "storage#object",
            "name": n,
            "bucket": BUCKET,
            "size": b.objects[n].len().to_string(),
            "generation": "1764669600000001",
        })).collect::<Vec<_>>(),
        "prefixes": page.iter().filter(|e| e.1).map(|(n, _)| n).collect::<Vec<_>>(),
    });
    if end < entries.len() {
        answer["nextPageToken"] = json!(end.to_string());
    }
    axum::Json(answer).into_response()
}

async fn media(
    State(b): State<Shared>,
    Path((bucket, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if bucket != BUCKET || q.get("alt").map(String::as_str) != Some("media") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let mut b = b.lock().unwrap();
    let range = headers
        .get(header::RANGE)
        .map(|v| v.to_str().unwrap().to_owned());
    b.media.push((name.clone(), range.clone()));
    let Some(data) = b.objects.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if b.faults.get(&name) == Some(&Fault::Down) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match b.faults.remove(&name) {
        Some(Fault::Down) => unreachable!(),
        Some(Fault::Error500) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some(Fault::CutOff) => {
            let half = bytes::Bytes::from(data[..data.len() / 2].to_vec());
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("connection dropped"))];
            // The first half reaches the client before the connection drops.
            let body = futures::StreamExt::then(futures::stream::iter(chunks), |c| async {
                if c.is_err() {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                c
            });
            return Response::builder()
                .header(header::CONTENT_LENGTH, data.len())
                .body(Body::from_stream(body))
                .unwrap();
        }
        None => {}
    }
    let from: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .unwrap_or(0);
    if from == 0 {
        return Response::new(Body::from(data));
    }
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{}", data.len() - 1, data.len()),
        )
        .body(Body::from(data[from..].to_vec()))
        .unwrap()
}

/// A GCS JSON API server on loopback, serving `bucket`; its address (`host:port`).
fn serve(bucket: Shared) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/storage/v1/b/{bucket}/o", get(list))
                .route("/storage/v1/b/{bucket}/o/{object}", get(media))
                .with_state(bucket);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr.to_string()
}

/// Runs the binary against the server; returns (success, stdout, stderr).
fn collector(host: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("STORAGE_EMULATOR_HOST", host)
        .env_remove("WHAKAPAPA_DB")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` requests (two stages each) to configmaps, ids `tag-0`...
fn log(tag: &str, n: usize) -> Vec<u8> {
    let evs: Vec<Ev> = (0..n)
        .flat_map(|i| {
            let id = format!("{tag}-{i}");
            let uri = format!("/api/v1/namespaces/ns-{tag}/configmaps/cm-{i}");
            [
                Ev::new(&id, "RequestReceived", "get", &uri).at(i as f64),
                Ev::new(&id, "ResponseComplete", "get", &uri).at(i as f64),
            ]
        })
        .collect();
    lines(&evs).into_bytes()
}

fn history(db: &str) -> Value {
    let out = Command::new(BIN)
        .args(["query", "history", "--db", db, "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const KIND_JOB: &str = "ci-kubernetes-audit-kind-conformance";
const KIND_BUILD: &str = "1995123456789012480";

fn kind_bucket() -> Bucket {
    let mut b = Bucket::default();
    let job = format!("logs/{KIND_JOB}");
    let dir = format!("{job}/{KIND_BUILD}");
    let mut put = |name: String, data: Vec<u8>| {
        b.objects.insert(name, data);
    };
    put(
        format!("{job}/latest-build.txt"),
        format!("{KIND_BUILD}\n").into_bytes(),
    );
    // An older build, never read when asking for the latest.
    put(
        format!("{job}/1995000000000000000/started.json"),
        br#"{"timestamp": 1}"#.to_vec(),
    );
    put(
        format!("{job}/1995000000000000000/artifacts/audit/audit.log"),
        log("old", 5),
    );
    put(
        format!("{dir}/started.json"),
        br#"{"timestamp": 1795687200, "repo-commit": "0123abcd89ef"}"#.to_vec(),
    );
    put(
        format!("{dir}/finished.json"),
        br#"{"timestamp": 1795690800, "passed": true, "result": "SUCCESS",
             "metadata": {"job-version": "v1.36.0-alpha.1.23+0123abcd"}}"#
            .to_vec(),
    );
    put(
        format!("{dir}/prowjob.json"),
        json!({"spec": {"job": KIND_JOB, "type": "periodic"}, "status": {"state": "success"}})
            .to_string()
            .into_bytes(),
    );
    put(
        format!("{dir}/build-log.txt"),
        b"+ kind create cluster\n".to_vec(),
    );
    put(
        format!("{dir}/artifacts/junit_01.xml"),
        b"<testsuites/>".to_vec(),
    );
    put(
        format!("{dir}/artifacts/logs/kind-control-plane/kubernetes-version.txt"),
        b"v1.36.0-alpha.1.23+0123abcd\n".to_vec(),
    );
    put(
        format!("{dir}/artifacts/audit/audit.log"),
        log("kind-a", 30),
    );
    put(
        format!("{dir}/artifacts/audit/audit-2026-11-26T10-30-00.log.gz"),
        gzip(&log("kind-b", 20)),
    );
    b.faults
        .insert(format!("{dir}/artifacts/audit/audit.log"), Fault::CutOff);
    b.faults.insert(
        format!("{dir}/artifacts/audit/audit-2026-11-26T10-30-00.log.gz"),
        Fault::Error500,
    );
    b
}

#[test]
fn prow_job_latest_build_through_paging_and_faults_then_an_hourly_rerun_fetches_nothing() {
    let bucket = Arc::new(Mutex::new(kind_bucket()));
    let host = serve(bucket.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let args = ["ingest", "--db", db, "--prow-job", KIND_JOB];
    let (ok, out, err) = collector(&host, &args);
    assert!(ok, "{out}\n{err}");
    // 30 + 20 requests, two stages each: the cut-off download resumed, the 500 retried.
    assert_eq!(figure(&out, "events read"), 100, "{out}");
    assert_eq!(figure(&out, "requests stored"), 50, "{out}");
    assert_eq!(figure(&out, "malformed lines"), 0, "{out}");
    assert!(
        out.contains(&format!(
            "job {KIND_JOB} build {KIND_BUILD}, result SUCCESS, version v1.36.0-alpha.1.23+0123abcd, commit 0123abcd89ef; 2 of 2 audit logs new"
        )),
        "{out}"
    );
    {
        let b = bucket.lock().unwrap();
        let dir = format!("logs/{KIND_JOB}/{KIND_BUILD}");
        let log = format!("{dir}/artifacts/audit/audit.log");
        let size = b.objects[&log].len();
        let downloads: Vec<&Option<String>> = b
            .media
            .iter()
            .filter(|m| m.0 == log)
            .map(|m| &m.1)
            .collect();
        // Resumed where the connection dropped, not from the start.
        assert_eq!(
            downloads,
            [&None, &Some(format!("bytes={}-", size / 2))],
            "{:?}",
            b.media
        );
        let gz = format!("{dir}/artifacts/audit/audit-2026-11-26T10-30-00.log.gz");
        assert_eq!(b.media.iter().filter(|m| m.0 == gz).count(), 2);
        // Neither the older build, nor the build log or junit were downloaded.
        assert!(!b.media.iter().any(|m| m.0.contains("1995000000000000000")
            || m.0.ends_with("build-log.txt")
            || m.0.ends_with(".xml")));
        // The build's listing took several pages.
        let pages = b.lists.iter().filter(|l| l.0 == format!("{dir}/")).count();
        assert!(pages > 3, "{:?}", b.lists);
    }
    let h = history(db);
    let runs = h["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{h}");
    assert_eq!(runs[0]["kind"], "ci");
    assert_eq!(runs[0]["requests"], 50);
    assert_eq!(runs[0]["ci"]["job"], KIND_JOB);
    assert_eq!(runs[0]["ci"]["build"], KIND_BUILD);
    assert_eq!(runs[0]["ci"]["result"], "SUCCESS");
    assert_eq!(runs[0]["ci"]["version"], "v1.36.0-alpha.1.23+0123abcd");
    assert_eq!(runs[0]["ci"]["commit"], "0123abcd89ef");
    assert_eq!(runs[0]["ci"]["build_started_at"], "2026-11-26T10:00:00Z");

    // The hourly cron run: only latest-build.txt is read, nothing else downloaded.
    {
        let mut b = bucket.lock().unwrap();
        b.media.clear();
        b.lists.clear();
    }
    let (ok, out, err) = collector(&host, &args);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("already ingested (run 1); nothing new to read"),
        "{out}"
    );
    {
        let b = bucket.lock().unwrap();
        let names: Vec<&str> = b.media.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            [format!("logs/{KIND_JOB}/latest-build.txt")],
            "{names:?}"
        );
        assert!(b.lists.is_empty(), "{:?}", b.lists);
    }
    let h = history(db);
    assert_eq!(h["runs"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["runs"][0]["requests"], 50);

    // A new build appears: the next run reads it, as a second run.
    {
        let mut b = bucket.lock().unwrap();
        let job = format!("logs/{KIND_JOB}");
        let next = "1995123456789012999";
        b.objects
            .insert(format!("{job}/latest-build.txt"), next.as_bytes().to_vec());
        b.objects.insert(
            format!("{job}/{next}/started.json"),
            br#"{"timestamp": 1795694400}"#.to_vec(),
        );
        b.objects.insert(
            format!("{job}/{next}/artifacts/audit/audit.log"),
            log("kind-c", 4),
        );
    }
    let (ok, out, err) = collector(&host, &args);
    assert!(ok, "{out}\n{err}");
    assert_eq!(figure(&out, "requests stored"), 4, "{out}");
    assert!(out.contains("not finished"), "{out}");
    let h = history(db);
    let runs = h["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{h}");
    assert_eq!(runs[1]["ci"]["build"], "1995123456789012999");
    assert_eq!(runs[1]["ci"]["result"], Value::Null);
    // Not finished: the next run looks again, but downloads only what is new.
    {
        let mut b = bucket.lock().unwrap();
        b.media.clear();
    }
    let (ok, out, err) = collector(&host, &args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("0 of 1 audit log new"), "{out}");
    let b = bucket.lock().unwrap();
    assert!(
        !b.media.iter().any(|m| m.0.ends_with("audit.log")),
        "{:?}",
        b.media
    );
}

const GCE_JOB: &str = "ci-kubernetes-gce-conformance-latest";
const GCE_BUILD: &str = "1995200000000000000";

#[test]
fn gce_build_by_url_with_a_truncated_gzip_names_it_and_keeps_the_other_logs() {
    let mut b = Bucket::default();
    let dir = format!("logs/{GCE_JOB}/{GCE_BUILD}");
    let master = format!("{dir}/artifacts/cluster-logs/bootstrap-e2e-master");
    b.objects.insert(
        format!("{dir}/started.json"),
        br#"{"timestamp": 1795687200, "repo-commit": "feedbeef0123"}"#.to_vec(),
    );
    b.objects.insert(
        format!("{dir}/finished.json"),
        br#"{"timestamp": 1795690800, "passed": false, "result": "FAILURE",
             "metadata": {"job-version": "v1.36.1-rc.0.5+feedbeef"}}"#
            .to_vec(),
    );
    b.objects.insert(
        format!("{master}/kube-apiserver-audit.log"),
        log("gce-now", 10),
    );
    b.objects.insert(
        format!("{master}/kube-apiserver-audit.log-20261126-1795689000.gz"),
        gzip(&log("gce-rotated", 12)),
    );
    let whole = gzip(&log("gce-cut", 40));
    let truncated = format!("{master}/kube-apiserver-audit.log-20261126-1795688000.gz");
    b.objects
        .insert(truncated.clone(), whole[..whole.len() / 2].to_vec());
    b.objects.insert(
        format!("{master}/kube-apiserver.log"),
        b"I1127 started\n".to_vec(),
    );
    let bucket = Arc::new(Mutex::new(b));
    let host = serve(bucket.clone());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("w.db");
    let db = db.to_str().unwrap();
    let url = format!("gs://{BUCKET}/{dir}");
    let (ok, out, err) = collector(&host, &["ingest", "--db", db, &url]);
    // The truncated object fails the command, by name; the other two logs are stored.
    assert!(!ok, "{out}\n{err}");
    assert!(
        err.contains("1 object not read whole") && err.contains(&truncated),
        "{err}"
    );
    let h = history(db);
    let run = &h["runs"][0];
    assert_eq!(run["ci"]["job"], GCE_JOB);
    assert_eq!(run["ci"]["build"], GCE_BUILD);
    assert_eq!(run["ci"]["result"], "FAILURE");
    assert_eq!(run["ci"]["version"], "v1.36.1-rc.0.5+feedbeef");
    // 10 + 12 whole, and what the truncated one held before it was cut.
    let stored = run["requests"].as_u64().unwrap();
    assert!((22..22 + 40).contains(&stored), "{stored}\n{out}");
    let malformed: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(&format!("gs://{BUCKET}/{truncated}:")))
        .collect();
    assert_eq!(malformed.len(), 1, "{out}");
    assert!(
        !bucket
            .lock()
            .unwrap()
            .media
            .iter()
            .any(|m| m.0.ends_with("kube-apiserver.log"))
    );

    // The object is broken for good (not the transport): the re-run skips the build.
    bucket.lock().unwrap().media.clear();
    let (ok, out, err) = collector(&host, &["ingest", "--db", db, &url]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("already ingested"), "{out}");
    assert!(bucket.lock().unwrap().media.is_empty());
}

#[test]
fn an_object_down_for_every_attempt_is_named_and_read_on_the_next_run() {
    let mut b = kind_bucket();
    b.faults.clear();
    let dir = format!("logs/{KIND_JOB}/{KIND_BUILD}");
    let gz = format!("{dir}/artifacts/audit/audit-2026-11-26T10-30-00.log.gz");
    b.faults.insert(gz.clone(), Fault::Down);
    let bucket = Arc::new(Mutex::new(b));
    let host = serve(bucket.clone());
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("w.db");
    let db = db.to_str().unwrap();
    let args = [
        "ingest",
        "--db",
        db,
        "--prow-job",
        KIND_JOB,
        "--build",
        KIND_BUILD,
    ];
    let (ok, out, err) = collector(&host, &args);
    assert!(!ok, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "gs://{BUCKET}/{gz}: server answered 503 Service Unavailable (after 5 attempts)"
        )),
        "{err}"
    );
    // Bounded: five attempts, then the other log is stored all the same.
    assert_eq!(
        bucket
            .lock()
            .unwrap()
            .media
            .iter()
            .filter(|m| m.0 == gz)
            .count(),
        5
    );
    assert_eq!(figure(&out, "requests stored"), 30, "{out}");

    // Back up: the next run reads that object only, into the same run.
    {
        let mut b = bucket.lock().unwrap();
        b.faults.clear();
        b.media.clear();
    }
    let (ok, out, err) = collector(&host, &args);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("1 of 2 audit logs new"), "{out}");
    assert_eq!(figure(&out, "requests stored"), 20, "{out}");
    let logs: Vec<String> = bucket
        .lock()
        .unwrap()
        .media
        .iter()
        .filter(|m| m.0.contains("/audit/"))
        .map(|m| m.0.clone())
        .collect();
    assert_eq!(logs, [gz]);
    let h = history(db);
    assert_eq!(h["runs"].as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h["runs"][0]["requests"], 50);
    // Now finished and whole: skipped from then on.
    let (ok, out, _) = collector(&host, &args);
    assert!(ok && out.contains("already ingested (run 1)"), "{out}");
}

/// A build's requests are mapped with the stored release of the build's Kubernetes version
/// (finished.json's `job-version`), not the default catalog; a version the database has no
/// release of is mapped with the default, with a warning that says how to do better.
#[test]
fn each_build_maps_with_the_stored_release_of_its_kubernetes_version() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("w.db");
    let db = db.to_str().unwrap();
    // 1.33.0, stored once from its OpenAPI document: configmaps only.
    let spec = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": {"/api/v1/namespaces/{namespace}/configmaps/{name}": {"get": {
            "operationId": "readCoreV1NamespacedConfigMap", "tags": ["core_v1"],
            "x-kubernetes-action": "get",
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"}}}}});
    let spec_file = tmp.path().join("openapi-1.33.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let empty = tmp.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let (ok, _, err) = collector(
        "127.0.0.1:9",
        &[
            "ingest",
            "--db",
            db,
            "--openapi",
            spec_file.to_str().unwrap(),
            empty.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");

    let mut b = Bucket::default();
    for (build, version, tag) in [("101", "v1.33.4", "old"), ("102", "v1.35.2", "mid")] {
        let dir = format!("logs/ci-audit/{build}");
        b.objects.insert(
            format!("{dir}/started.json"),
            br#"{"timestamp": 1795687200}"#.to_vec(),
        );
        b.objects.insert(
            format!("{dir}/finished.json"),
            format!(r#"{{"timestamp": 1795690800, "result": "SUCCESS", "metadata": {{"job-version": "{version}"}}}}"#).into_bytes(),
        );
        b.objects
            .insert(format!("{dir}/artifacts/audit/audit.log"), log(tag, 3));
    }
    let host = serve(Arc::new(Mutex::new(b)));
    let run = |build: &str| {
        let (ok, out, err) = collector(
            &host,
            &[
                "ingest",
                "--db",
                db,
                "--prow-job",
                "ci-audit",
                "--build",
                build,
            ],
        );
        assert!(ok, "{out}\n{err}");
        (out, err)
    };
    let (out, _) = run("101");
    assert!(
        out.contains("Kubernetes v1.33.4: mapped with the stored release 1.33.0"),
        "{out}"
    );
    let (_, err) = run("102");
    assert!(
        err.contains("the build is Kubernetes v1.35.2, and the database holds no 1.35 release")
            && err.contains("--openapi"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["query", "releases", "--db", db, "--format", "json"])
        .output()
        .unwrap();
    let releases: Value = serde_json::from_slice(&out.stdout).unwrap();
    let requests: BTreeMap<String, u64> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["release"].as_str().unwrap().to_owned(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        requests,
        BTreeMap::from([("1.33.0".to_owned(), 3), ("1.36.0".to_owned(), 3)]),
        "the 1.33 build on 1.33.0's endpoints, the 1.35 build on the embedded 1.36.0"
    );
}
