//! The audit log of a real conformance run: `e2e.test` v1.36.3 against a real kube-apiserver
//! (`tests/fixtures/real-conformance/README.md` says how it was made). Ingested by the real
//! `ingest` command, its coverage must equal APISnoop's rule applied to the same log by code
//! that shares nothing with the collector: tested = a request whose user agent starts with
//! `e2e.test`, its test = the text after ` -- `, conformance = `[Conformance]` in it; endpoint =
//! the OpenAPI operation whose path template and method match the request.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _};

use serde_json::Value;

use crate::it::ingest::{collector, figure};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/real-conformance/audit.log.gz"
);
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kubernetes/openapi-v2-1.36.json.gz"
);
const INELIGIBLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/ineligible_endpoints.json"
);

fn gunzip(path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// One OpenAPI operation: its path template split at `/`, method and operationId.
struct Operation {
    segments: Vec<String>,
    method: &'static str,
    id: String,
}

/// The catalog's operations without the deprecated `watch` ones (the 908 endpoints of 1.36).
fn operations() -> Vec<Operation> {
    let spec: Value = serde_json::from_slice(&gunzip(SPEC)).unwrap();
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            let Some(op) = item.get(method) else { continue };
            let action = op["x-kubernetes-action"].as_str().unwrap_or_default();
            if action == "watch" || action == "watchlist" {
                continue;
            }
            ops.push(Operation {
                segments: path
                    .trim_matches('/')
                    .split('/')
                    .map(str::to_owned)
                    .collect(),
                method,
                id: op["operationId"].as_str().unwrap().to_owned(),
            });
        }
    }
    ops
}

/// The HTTP method an audit verb was sent with.
fn method_of(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "get" | "list" | "watch" => "get",
        "create" => "post",
        "update" => "put",
        "patch" => "patch",
        "delete" | "deletecollection" => "delete",
        _ => return None,
    })
}

/// The operation a request matches: same method, the same number of segments, every literal
/// equal; of several, the one with the most literal segments (`.../pods/{name}/status` over
/// `.../{resource}/{name}/{sub}`).
fn endpoint_of<'a>(ops: &'a [Operation], verb: &str, uri: &str) -> Option<&'a str> {
    let method = method_of(verb)?;
    let path = uri.split('?').next()?;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    ops.iter()
        .filter(|op| op.method == method && op.segments.len() == segments.len())
        .filter(|op| {
            op.segments
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
        })
        .max_by_key(|op| op.segments.iter().filter(|t| !t.starts_with('{')).count())
        .map(|op| op.id.as_str())
}

/// APISnoop's rule on the raw log: (tested endpoints, conformance-tested endpoints, tests).
fn apisnoop_rule() -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let ops = operations();
    let (mut tested, mut conformance, mut tests) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let raw = gunzip(FIXTURE);
    for line in BufReader::new(&raw[..]).lines() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            continue;
        }
        let event: Value = serde_json::from_str(&line).unwrap();
        let ua = event["userAgent"].as_str().unwrap_or_default();
        if !ua.starts_with("e2e.test") {
            continue;
        }
        let Some((_, test)) = ua.split_once(" -- ") else {
            continue;
        };
        let Some(id) = endpoint_of(
            &ops,
            event["verb"].as_str().unwrap(),
            event["requestURI"].as_str().unwrap(),
        ) else {
            continue;
        };
        tested.insert(id.to_owned());
        tests.insert(test.to_owned());
        if test.contains("[Conformance]") {
            conformance.insert(id.to_owned());
        }
    }
    (tested, conformance, tests)
}

fn skip() -> bool {
    if std::path::Path::new(FIXTURE).exists() {
        return false;
    }
    println!("SKIPPED: real conformance fixture: no {FIXTURE}");
    true
}

#[test]
fn a_real_conformance_run_is_covered_as_apisnoop_counts_it() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("conformance.db");
    let db = db.to_str().unwrap();
    let (ok, out, err) = collector(&["ingest", "--db", db, FIXTURE], None);
    assert!(ok, "ingest failed: {err}");
    assert_eq!(figure(&out, "malformed lines"), 0, "{out}");

    let (ok, export, err) = collector(
        &["query", "coverage", "--export", "apisnoop", "--db", db],
        None,
    );
    assert!(ok, "{err}");
    let export: Value = serde_json::from_str(&export).unwrap();
    let endpoints = export["endpoints"].as_array().unwrap();
    let set = |flag: &str| -> BTreeSet<String> {
        endpoints
            .iter()
            .filter(|e| e[flag] == true)
            .map(|e| e["endpoint"].as_str().unwrap().to_owned())
            .collect()
    };
    let (tested, conformance, tests) = apisnoop_rule();
    assert!(
        conformance.len() > 50,
        "the run exercised {} endpoints",
        conformance.len()
    );
    let ours = set("tested");
    assert_eq!(
        ours.symmetric_difference(&tested).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "tested endpoints: the collector's and APISnoop's rule differ"
    );
    let ours = set("conf_tested");
    assert_eq!(
        ours.symmetric_difference(&conformance).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "conformance-tested endpoints: the collector's and APISnoop's rule differ"
    );
    assert_eq!(export["tested endpoints"], tested.len());

    // Eligible and tested by a conformance test: the headline number, both ways.
    let ineligible: BTreeSet<String> =
        serde_json::from_slice::<Vec<Value>>(&std::fs::read(INELIGIBLE).unwrap())
            .unwrap()
            .iter()
            .map(|e| e["endpoint"].as_str().unwrap().to_owned())
            .collect();
    let stable: BTreeMap<&str, &str> = endpoints
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap(),
                e["level"].as_str().unwrap(),
            )
        })
        .collect();
    let eligible_tested = conformance
        .iter()
        .filter(|e| stable.get(e.as_str()) == Some(&"stable") && !ineligible.contains(*e))
        .count();
    assert_eq!(
        export["tested conformance eligible endpoints"],
        eligible_tested
    );
    println!(
        "real conformance run: {} tests, {} endpoints tested, {} by conformance tests, {} of \
         them eligible (APISnoop's rule and the collector agree)",
        tests.len(),
        tested.len(),
        conformance.len(),
        eligible_tested
    );

    let seen: BTreeSet<String> = export["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["test"].as_str().unwrap().to_owned())
        .collect();
    // APISnoop's rule sees the tests whose requests hit an endpoint; the collector every test.
    assert!(tests.is_subset(&seen), "{:?}", tests.difference(&seen));

    // The same numbers through `query coverage`.
    let (ok, table, err) = collector(
        &[
            "query",
            "coverage",
            "--counting",
            "tests",
            "--format",
            "json",
            "--db",
            db,
        ],
        None,
    );
    assert!(ok, "{err}");
    let coverage: Value = serde_json::from_str(&table).unwrap();
    assert_eq!(coverage["totals"]["tested"], tested.len(), "{coverage}");
    assert_eq!(
        coverage["totals"]["conf_tested"],
        conformance.len(),
        "{coverage}"
    );
}
