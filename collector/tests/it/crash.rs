//! A collector killed mid-ingest leaves a database that opens with every committed batch whole
//! and nothing of the batch in flight.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use whakapapa_collector::store;

use crate::events::{Config, Events};

fn requests(db: &Path) -> u64 {
    store::open_reader(db)
        .and_then(|c| store::read::counts(&c))
        .map_or(0, |c| c.requests)
}

/// Requests per batch number (request `i` is line `i`, so batch `i / size`).
fn per_batch(db: &Path, size: u64) -> BTreeMap<u64, u64> {
    let reader = store::open_reader(db).unwrap();
    assert_eq!(store::read::integrity_check(&reader).unwrap(), "ok");
    let mut batches = BTreeMap::new();
    for id in store::read::audit_ids(&reader).unwrap() {
        let seq = Events::seq_of(&id).expect("a generated audit id");
        *batches.entry(seq / size).or_default() += 1;
    }
    batches
}

fn wait_for(db: &Path, at_least: u64, child: &mut std::process::Child) -> u64 {
    let start = Instant::now();
    loop {
        let n = requests(db);
        if n >= at_least {
            return n;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the collector exited early"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {n} requests stored"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killed_while_reading_stdin_keeps_exactly_the_full_batches() {
    let g = Events::new(&crate::events::catalog(), Config::default());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .args([
            "ingest",
            "--db",
            db.to_str().unwrap(),
            "--batch-size",
            "1000",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // three whole batches and half of a fourth, which the collector is still waiting to fill
    g.write_lines(0..3500, &mut stdin).unwrap();
    stdin.flush().unwrap();
    wait_for(&db, 3000, &mut child);
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    let batches = per_batch(&db, 1000);
    assert_eq!(batches, BTreeMap::from([(0, 1000), (1, 1000), (2, 1000)]));
}

#[test]
fn killed_in_the_middle_of_a_large_file_leaves_only_whole_batches() {
    let g = Events::new(&crate::events::catalog(), Config::default());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let mut db = dir.path().join("w.db");
    // The kill must land while the file is being read. A busy machine (other tests beside this
    // one) may let the collector finish 60k events before the kill, and a writer that keeps up
    // with the parsers takes all of them into one transaction: then more than bulk ingest's
    // largest transaction (250k requests), so that one commits before the end.
    let mut total = 0;
    for events in [60_000, 300_000] {
        total = events;
        db = dir.path().join(format!("w{events}.db"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        g.write_lines(0..events, &mut f).unwrap();
        f.flush().unwrap();
        drop(f);
        let mut child = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
            .args([
                "ingest",
                "--db",
                db.to_str().unwrap(),
                "--batch-size",
                "1500",
                log.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&db, 3000, &mut child);
        // SIGKILL (nothing to do if it has just finished).
        let _ = child.kill();
        child.wait().unwrap();
        if requests(&db) < events {
            break;
        }
    }
    let batches = per_batch(&db, 1500);
    let stored: u64 = batches.values().sum();
    assert!(stored < total, "the kill came too late to test anything");
    for (batch, n) in &batches {
        assert_eq!(*n, 1500, "batch {batch} is partial: {batches:?}");
    }
    // `ingest` folds rollups in every few seconds: the next writer counts what was left.
    let folded: i64 = store::open_reader(&db)
        .unwrap()
        .query_row("SELECT folded_through FROM rollup_state", [], |r| r.get(0))
        .unwrap();
    assert!((folded as u64) < stored, "the kill came after a fold");
    drop(store::Store::open(&db, store::Options::default()).unwrap());
    let reader = store::open_reader(&db).unwrap();
    let counted: i64 = reader
        .query_row("SELECT sum(hits) FROM usage", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        counted as u64, stored,
        "the rollups count every stored request"
    );
    // and the database takes more: a rerun completes it, counting nothing twice
    let out = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .args([
            "ingest",
            "--db",
            db.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(requests(&db), total);
}
