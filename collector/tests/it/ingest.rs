//! `whakapapa-collector ingest`: real files in the formats kube-apiserver writes, through the
//! binary and through the library's pipeline.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use whakapapa_collector::ingest::{self, Pipeline};
use whakapapa_collector::store::{self, StageRank};

use crate::events::{Config, Events};
use crate::it::fixture::{Db, Ev, event_list, gzip, lines};

const BIN: &str = env!("CARGO_BIN_EXE_whakapapa-collector");
const CM: &str = "/api/v1/namespaces/shop/configmaps/settings";

/// Runs the binary; returns (success, stdout, stderr).
pub fn collector(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The binary's stdout for `args`, which must succeed (its stderr in the panic otherwise).
pub fn collector_ok(args: &[&str]) -> String {
    let (ok, out, err) = collector(args, None);
    assert!(ok, "{args:?}: {err}");
    out
}

/// The value of a `  label   N` line of the summary.
pub fn figure(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| {
            l.trim_start()
                .strip_prefix(label)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {label:?} in:\n{summary}"))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn every_input_format_in_one_directory_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // a request per stage pair, split over a rotated log, the current log and a gzipped one
    let evs: Vec<Ev> = (0..40)
        .flat_map(|i| {
            let id = format!("req-{i}");
            [
                Ev::new(&id, "RequestReceived", "update", CM).at(i as f64),
                Ev::new(&id, "ResponseComplete", "update", CM).at(i as f64),
            ]
        })
        .collect();
    write(&logs.join("audit.log.1"), lines(&evs[..30]).as_bytes());
    write(&logs.join("audit.log"), lines(&evs[30..60]).as_bytes());
    // gzip recognised by its bytes, whatever the name; the old API version
    let beta: Vec<Ev> = evs[60..].iter().cloned().map(Ev::v1beta1).collect();
    write(
        &logs.join("old/audit-2026-11-20T10-00-00.log.gz"),
        &gzip(lines(&beta).as_bytes()),
    );
    // a webhook body saved as a file, redelivered (same events again) as a bare array
    let list = event_list(&evs[..10]);
    write(&logs.join("webhook/batch-1.json"), &list);
    let array: serde_json::Value = serde_json::from_slice(&list).unwrap();
    write(
        &logs.join("webhook/batch-1-again.json"),
        array["items"].to_string().as_bytes(),
    );
    // malformed lines among good ones; a file that is not audit input is not read
    let mut bad = lines(&[Ev::new("ok-1", "ResponseComplete", "get", CM)]);
    bad.push_str("{\"kind\":\"Event\",\"auditID\":\"x\"}\nnot json at all\n\n");
    bad.push_str(&lines(&[Ev::new("ok-2", "ResponseComplete", "get", CM)]));
    write(&logs.join("z-bad.log"), bad.as_bytes());
    write(&logs.join("README.md"), b"# not audit input\n");

    let db = dir.path().join("w.db");
    let (ok, out, err) = collector(
        &[
            "ingest",
            "--db",
            db.to_str().unwrap(),
            logs.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("ingested 6 inputs"), "{out}");
    assert_eq!(figure(&out, "events read"), 80 + 20 + 4, "{out}");
    assert_eq!(figure(&out, "requests stored"), 42, "{out}");
    assert_eq!(figure(&out, "malformed lines"), 2, "{out}");
    assert_eq!(figure(&out, "requests in database"), 42, "{out}");
    assert!(out.contains("z-bad.log:2: invalid audit event"), "{out}");
    assert!(out.contains("z-bad.log:3: invalid audit event"), "{out}");

    let reader = store::open_reader(&db).unwrap();
    let rows = store::read::requests_by_audit_id(&reader, "req-35").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stage, StageRank::ResponseComplete);
    assert_eq!(
        rows[0].operation_id.as_deref(),
        Some("replaceCoreV1NamespacedConfigMap")
    );

    // ingesting it all again changes nothing
    let (ok, out, _) = collector(
        &[
            "ingest",
            "--db",
            db.to_str().unwrap(),
            logs.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok);
    assert_eq!(figure(&out, "requests stored"), 0, "{out}");
    assert_eq!(figure(&out, "requests in database"), 42, "{out}");
}

#[test]
fn stdin_and_side_channel_records_are_read() {
    let catalog = crate::events::catalog();
    let g = Events::new(
        &catalog,
        Config {
            apps: 10,
            purposes_per_app: 4,
            ..Config::default()
        },
    );
    let mut input = g.purposes_jsonl();
    g.write_lines(0..500, &mut input).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let (ok, out, err) = collector(&["ingest", "--db", db.to_str().unwrap(), "-"], Some(&input));
    assert!(ok, "{err}");
    assert_eq!(figure(&out, "events read"), 500, "{out}");
    assert_eq!(figure(&out, "requests stored"), 500, "{out}");
    assert_eq!(figure(&out, "purposes"), 4 * 4, "{out}"); // 4 of 10 programs use whakapapa
    // The run's WAL is in the database: a query after it does not read it again.
    let wal = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "WAL left behind by the run");
    let counts = store::read::counts(&store::open_reader(&db).unwrap()).unwrap();
    assert_eq!(counts.complete_purposes, 16);
    assert_eq!(counts.endpoints, 908);
}

#[test]
fn small_batches_on_several_workers_store_everything_once() {
    let db = Db::new();
    let catalog = crate::events::catalog();
    let g = Events::new(
        &catalog,
        Config {
            stages: 2,
            ..Config::default()
        },
    );
    let file = db.dir.path().join("audit.log");
    let mut f = std::fs::File::create(&file).unwrap();
    g.write_lines(0..3000, &mut f).unwrap();
    drop(f);
    let inputs = ingest::expand(&[file.clone(), file]).unwrap();
    let summary = Pipeline::new(
        db.store.clone(),
        db.run,
        Some(db.release),
        Some(db.mapper.clone()),
        ingest::Options::default().batch_size(97).workers(3),
    )
    .run(&inputs)
    .unwrap();
    let t = &summary.totals;
    assert_eq!(t.events, 12_000);
    assert_eq!(t.new, 3000);
    // of each request's four events (two stages, twice) one is new and the later
    // ResponseComplete a duplicate at least; which of the others advance depends on the order
    // the workers committed in
    assert_eq!(t.new + t.advanced + t.earlier_stage + t.duplicates, 12_000);
    assert!(t.duplicates >= 3000 && t.advanced <= 3000, "{t:?}");
    assert_eq!(db.counts().requests, 3000);
    let mapped: u64 = store::read::requests_by_mapping(&db.store.reader().unwrap())
        .unwrap()
        .into_iter()
        .filter(|(m, _)| m == "endpoint")
        .map(|(_, n)| n)
        .sum();
    assert!(mapped > 2800, "{mapped} of 3000 mapped");
}

#[test]
fn a_bad_catalog_or_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, b"{\"swagger\":\"2.0\",\"paths\":").unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, lines(&[Ev::new("a", "ResponseComplete", "get", CM)])).unwrap();
    let db_arg = db.to_str().unwrap();
    let (ok, _, err) = collector(
        &[
            "ingest",
            "--db",
            db_arg,
            "--openapi",
            spec.to_str().unwrap(),
            "--release",
            "9.9",
            log.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("cannot load the endpoint catalog: bad endpoint catalog from"),
        "{err}"
    );
    assert!(
        err.contains("spec.json: invalid OpenAPI document at line 1"),
        "{err}"
    );
    std::fs::write(&spec, br#"{"swagger":"2.0","info":{"version":"unversioned"},"paths":{"/api/v1/pods":{"get":{"operationId":"listPods","tags":["core_v1"]}}}}"#).unwrap();
    let (ok, _, err) = collector(
        &[
            "ingest",
            "--db",
            db_arg,
            "--openapi",
            spec.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("pass --release"), "{err}");
    let (ok, _, err) = collector(
        &[
            "ingest",
            "--db",
            db_arg,
            dir.path().join("missing.log").to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok);
    assert!(
        err.contains("cannot read") && err.contains("missing.log"),
        "{err}"
    );
}
