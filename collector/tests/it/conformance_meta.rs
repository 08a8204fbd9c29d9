//! Kubernetes' conformance metadata (kubernetes/kubernetes `test/conformance/testdata/`, the
//! v1.36.3 copies in `data/conformance/`) loaded with the catalog by the real `ingest`, over
//! the audit log of a real conformance run (e2e.test v1.36.3): the APISnoop export fills what
//! APISnoop fills, and pending endpoints are counted apart from eligible ones.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use serde::Deserialize;
use serde_json::Value;

use crate::it::ingest::collector;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/real-conformance/audit.log.gz"
);
const SMALL_LOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/audit-v1-kube-apiserver-1.36.3.log"
);
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kubernetes/openapi-v2-1.36.json.gz"
);
const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/conformance.yaml"
);
const INELIGIBLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/ineligible_endpoints.yaml"
);
const PENDING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/pending_eligible_endpoints.yaml"
);

/// conformance.yaml read by the test itself: codename → (testname, file, release).
fn listed() -> BTreeMap<String, (String, String, String)> {
    #[derive(Deserialize)]
    struct T {
        testname: String,
        codename: String,
        release: String,
        file: String,
    }
    let text = std::fs::read_to_string(CONFORMANCE).unwrap();
    let tests: Vec<T> = serde_saphyr::from_str(&text).unwrap();
    tests
        .into_iter()
        .map(|t| (t.codename, (t.testname, t.file, t.release)))
        .collect()
}

/// operationId → description, from the OpenAPI document itself.
fn descriptions() -> BTreeMap<String, String> {
    let mut spec = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(SPEC).unwrap())
        .read_to_end(&mut spec)
        .unwrap();
    let spec: Value = serde_json::from_slice(&spec).unwrap();
    let mut out = BTreeMap::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let (Some(id), Some(d)) = (op["operationId"].as_str(), op["description"].as_str()) {
                out.insert(id.to_owned(), d.to_owned());
            }
        }
    }
    out
}

fn export(db: &str) -> Value {
    let (ok, out, err) = collector(
        &["query", "coverage", "--export", "apisnoop", "--db", db],
        None,
    );
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_apisnoop_export_fills_what_apisnoop_fills_and_counts_pending_apart() {
    if !std::path::Path::new(FIXTURE).exists() {
        println!("SKIPPED: no {FIXTURE}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let (ok, out, err) = collector(
        &[
            "ingest",
            "--db",
            db,
            "--conformance",
            CONFORMANCE,
            "--ineligible",
            INELIGIBLE,
            "--pending",
            PENDING,
            FIXTURE,
        ],
        None,
    );
    assert!(ok, "ingest failed: {err}");
    assert!(
        out.contains(&format!("conformance: 446 tests ({CONFORMANCE})")),
        "{out}"
    );
    assert!(
        out.contains(&format!("ineligible: 101 endpoints ({INELIGIBLE})")),
        "{out}"
    );
    assert!(
        out.contains(&format!("pending: 0 endpoints ({PENDING})")),
        "{out}"
    );

    let v = export(db);
    let listed = listed();
    let tests = v["tests"].as_array().unwrap();
    let mut matched = 0;
    for t in tests {
        let name = t["test"].as_str().unwrap();
        match listed.get(name) {
            Some((testname, file, release)) => {
                matched += 1;
                assert_eq!(t["testname"], testname.as_str(), "{name}");
                assert_eq!(t["file"], file.as_str(), "{name}");
                let promoted = t["promotion_release"].as_str().unwrap();
                // APISnoop's reading: the second of a list, `v` dropped, `.0` added.
                let one = release.split(", ").nth(1).unwrap_or(release);
                assert_eq!(
                    promoted,
                    format!("{}.0", one.trim_start_matches('v')),
                    "{name}"
                );
                assert_eq!(t["release"], "1.36.0");
            }
            None => {
                assert_eq!(t["testname"], Value::Null, "{name}");
                assert_eq!(t["file"], Value::Null, "{name}");
                assert_eq!(t["promotion_release"], Value::Null, "{name}");
            }
        }
    }
    // 119 tests passed and one was interrupted (fixture README); all are in conformance.yaml.
    assert!(matched >= 119, "{matched} of {} tests matched", tests.len());

    let spec = descriptions();
    let endpoints = v["endpoints"].as_array().unwrap();
    for e in endpoints {
        let id = e["endpoint"].as_str().unwrap();
        match spec.get(id) {
            Some(d) => assert_eq!(e["description"], d.as_str(), "{id}"),
            None => assert_eq!(e["description"], Value::Null, "{id}"),
        }
    }
    assert!(
        endpoints
            .iter()
            .filter(|e| e["description"].is_string())
            .count()
            > 800
    );
    assert_eq!(v["pending conformance eligible endpoints"], 0);
    let eligible = v["total conformance eligible endpoints"].as_u64().unwrap();
    let tested_eligible = v["tested conformance eligible endpoints"].as_u64().unwrap();
    assert_eq!(eligible, 563);

    // Two eligible endpoints the run's conformance tests hit become pending: loaded again under
    // the same release (same document), without --conformance, which the database keeps.
    let ineligible: BTreeSet<String> = serde_saphyr::from_str::<Vec<BTreeMap<String, String>>>(
        &std::fs::read_to_string(INELIGIBLE).unwrap(),
    )
    .unwrap()
    .into_iter()
    .map(|e| e["endpoint"].clone())
    .collect();
    let picked: Vec<&str> = endpoints
        .iter()
        .filter(|e| e["conf_tested"] == true && e["level"] == "stable")
        .map(|e| e["endpoint"].as_str().unwrap())
        .filter(|id| {
            !ineligible.contains(*id)
                && spec
                    .get(*id)
                    .is_none_or(|d| !d.to_lowercase().contains("deprecated"))
        })
        .take(2)
        .collect();
    assert_eq!(picked.len(), 2);
    let pending = dir.path().join("pending.yaml");
    std::fs::write(&pending, format!("- {}\n- {}\n", picked[0], picked[1])).unwrap();
    let (ok, out, err) = collector(
        &[
            "ingest",
            "--db",
            db,
            "--pending",
            pending.to_str().unwrap(),
            SMALL_LOG,
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("conformance: 446 tests (the database's)"),
        "{out}"
    );
    assert!(
        out.contains("ineligible: 101 endpoints (the database's)"),
        "{out}"
    );
    let v = export(db);
    assert_eq!(v["total conformance eligible endpoints"], eligible - 2);
    assert_eq!(
        v["tested conformance eligible endpoints"],
        tested_eligible - 2
    );
    assert_eq!(v["pending conformance eligible endpoints"], 2);
    assert_eq!(v["tested pending conformance eligible endpoints"], 2);
    let still = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["testname"].is_string())
        .count();
    assert_eq!(still, matched, "the stored conformance tests were kept");

    let (ok, out, err) = collector(&["query", "coverage", "--format", "json", "--db", db], None);
    assert!(ok, "{err}");
    let cov: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cov["totals"]["pending"], 2, "{}", cov["totals"]);
    assert_eq!(cov["totals"]["eligible"], eligible - 2);
    let (ok, out, err) = collector(
        &["query", "endpoints", "--format", "json", "--db", db],
        None,
    );
    assert!(ok, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    let pending_rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["pending"] == true)
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    let mut want = picked.clone();
    want.sort();
    let mut got = pending_rows.clone();
    got.sort();
    assert_eq!(got, want);
}

/// Serves one body at any path, once per connection, on loopback; returns the base URL.
fn serve(body: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/yaml\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn lists_are_read_from_urls_and_bad_entries_say_where() {
    static GOOD: &[u8] = include_bytes!("../../../data/conformance/conformance.yaml");
    static BAD: &[u8] = b"- testname: a\n  codename: '[sig-x] a [Conformance]'\n  file: a.go\n- testname: b\n  file: b.go\n";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();

    let url = format!("{}/conformance.yaml", serve(GOOD));
    let (ok, out, err) = collector(
        &["ingest", "--db", db, "--conformance", &url, SMALL_LOG],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("conformance: 446 tests ({url})")),
        "{out}"
    );

    let url = format!("{}/bad/conformance.yaml", serve(BAD));
    let (ok, _, err) = collector(
        &["ingest", "--db", db, "--conformance", &url, SMALL_LOG],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "bad endpoint catalog from {url}: invalid conformance test list (conformance.yaml) at \
             line 4 column 3: entry 2: no `codename`"
        )),
        "{err}"
    );
    let bad = dir.path().join("pending.yaml");
    std::fs::write(&bad, "- listCoreV1Node\n- [x]\n").unwrap();
    let (ok, _, err) = collector(
        &[
            "ingest",
            "--db",
            db,
            "--pending",
            bad.to_str().unwrap(),
            SMALL_LOG,
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "bad endpoint catalog from {}: invalid pending eligible endpoints list \
             (pending_eligible_endpoints.yaml) at line 2",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn a_1_36_catalog_gets_the_shipped_lists_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let (ok, out, err) = collector(&["ingest", "--db", db, SMALL_LOG], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("conformance: 446 tests (shipped, Kubernetes 1.36.3)"),
        "{out}"
    );
    assert!(
        out.contains("pending: 0 endpoints (shipped, Kubernetes 1.36.3)"),
        "{out}"
    );
    assert!(
        out.contains("ineligible: 101 endpoints (shipped, APISnoop's)"),
        "{out}"
    );
}
