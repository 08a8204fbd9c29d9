//! The journeys rollup against the scan it replaces: the same answers, whatever order batches
//! come in, redelivered, with stages upgraded, call stacks completed later and a remap.

use std::path::Path;

use serde_json::Value;
use whakapapa_collector::ingest::Converter;
use whakapapa_collector::query::Request;
use whakapapa_collector::store::{self, Fold};

use crate::events::{Config, Events};
use crate::it::fixture::{Db, split_lines};

fn answer(db: &Path, name: &str, params: &[(&str, &str)]) -> Value {
    let conn = store::open_reader(db).unwrap();
    let req = Request::from_params(name, params.iter().copied()).unwrap();
    serde_json::from_str(&req.run(&conn).unwrap().to_json()).unwrap()
}

/// What the rollup answers, and what the scan answers for the same requests: a window from
/// the epoch on selects every request and makes `journeys` scan.
fn both(db: &Path, name: &str, params: &[(&str, &str)]) -> (Value, Value) {
    let mut scan = params.to_vec();
    scan.push(("since", "1970-01-01T00:00:00Z"));
    (answer(db, name, params), answer(db, name, &scan))
}

fn stale(db: &Path) -> bool {
    store::open_reader(db)
        .unwrap()
        .query_row("SELECT stale FROM journey_state", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn journeys_from_the_rollup_equal_the_scan_of_requests() {
    // Reconciles of 5 requests 1.5 s apart among 200 programs, most of them from a few:
    // busy programs make long episodes of several call paths (whose stacks narrow the
    // episode's purpose as they come), quiet ones many short ones. Two events per request
    // (RequestReceived, then ResponseComplete), batches that split requests.
    let g = Events::new(
        &crate::events::catalog(),
        Config {
            stages: 2,
            spacing_us: 1_500_000,
            episode_len: 5,
            ..Config::default()
        },
    );
    let mut text = Vec::new();
    g.write_lines(0..4000, &mut text).unwrap();
    let lines = split_lines(&text);
    let mut cuts: Vec<&[&[u8]]> = lines.chunks(157).collect();
    // Out of order: neighbours swapped (within what a fold holds back) and one batch an hour
    // of log late; and two batches delivered twice.
    for i in (0..cuts.len() - 1).step_by(4) {
        cuts.swap(i, i + 1);
    }
    let late = cuts.remove(3);
    cuts.push(late);
    cuts.insert(9, cuts[8]);
    cuts.insert(20, cuts[2]);
    let purposes = g.purposes_jsonl();
    let (records, errors) = whakapapa_collector::purpose::parse_records(&purposes);
    assert!(errors.is_empty());

    let every = Db::new();
    let bulk = Db::with_options(store::Options::default().fold(Fold::bulk()));
    let webhook = Db::with_options(store::Options::default().fold(Fold::webhook()));
    for db in [&every, &bulk, &webhook] {
        let mut c = Converter::new(Some(db.mapper.clone()));
        for (i, cut) in cuts.iter().enumerate() {
            db.store
                .apply_blocking(db.batch_of_lines(&mut c, cut))
                .unwrap();
            if i == cuts.len() / 2 {
                // The side channel completes stacks the user agents cut, after requests of
                // them were counted.
                db.store
                    .upsert_purposes_blocking(
                        records
                            .iter()
                            .cloned()
                            .map(whakapapa_collector::ingest::purpose_upsert)
                            .collect(),
                    )
                    .unwrap();
            }
        }
    }
    bulk.store.finish_run_blocking(bulk.run).unwrap();
    webhook.store.fold_blocking().unwrap();
    // Bulk ingest counts no journeys; the query that needs them asks (as the CLI and the
    // HTTP API do). The webhook's writer counted some between batches.
    let before: i64 = store::open_reader(&bulk.path())
        .unwrap()
        .query_row("SELECT hi FROM journey_state", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        before, 0,
        "bulk ingest left the journeys to the first query"
    );
    for db in [&every, &bulk, &webhook] {
        db.store.fold_journeys_blocking().unwrap();
    }

    let want = answer(
        &every.path(),
        "journeys",
        &[("since", "1970-01-01T00:00:00Z")],
    );
    let supports: Vec<u64> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["support"].as_u64().unwrap())
        .collect();
    assert!(supports.len() > 20, "enough journeys to compare: {want}");
    assert!(supports.iter().any(|&s| s > 3), "{supports:?}");
    assert!(
        want.as_array()
            .unwrap()
            .iter()
            .any(|j| j["purpose"].as_str().is_some_and(|p| !p.is_empty())),
        "episodes with a purpose"
    );
    for db in [&every, &bulk, &webhook] {
        assert!(!stale(&db.path()), "counted again at the last fold");
        for params in [
            &[][..],
            &[("min-support", "1"), ("limit", "100000")],
            &[("max-len", "3")],
            &[("max-len", "2"), ("min-support", "3")],
        ] {
            let (rollup, scan) = both(&db.path(), "journeys", params);
            assert_eq!(rollup, scan, "{params:?} in {:?}", db.path());
            assert_eq!(
                scan,
                answer(&every.path(), "journeys", &{
                    let mut p = params.to_vec();
                    p.push(("since", "1970-01-01T00:00:00Z"));
                    p
                })
            );
        }
        let (rollup, scan) = both(&db.path(), "suggest", &[]);
        assert_eq!(rollup, scan, "suggest in {:?}", db.path());
    }

    // More requests after the run: the counts carry on from where they were, in a new writer.
    let path = bulk.path();
    let run = bulk.run;
    drop(bulk.store);
    let reopened = store::Store::open(&path, store::Options::default().fold(Fold::bulk())).unwrap();
    let mut more = Vec::new();
    g.write_lines(4000..5000, &mut more).unwrap();
    let more_lines = split_lines(&more);
    let mut c = Converter::new(Some(bulk.mapper.clone()));
    for cut in more_lines.chunks(100) {
        reopened
            .apply_blocking(store::Batch {
                run,
                release: Some(bulk.release),
                events: cut.len() as u64,
                requests: cut
                    .iter()
                    .map(|l| c.record(whakapapa_collector::audit::parse_event(l).unwrap()))
                    .collect(),
                malformed: Vec::new(),
            })
            .unwrap();
    }
    reopened.finish_run_blocking(run).unwrap();
    reopened.fold_journeys_blocking().unwrap();
    assert!(!stale(&path));
    let (rollup, scan) = both(&path, "journeys", &[]);
    assert_eq!(rollup, scan, "after a restart");
    assert_ne!(rollup, want, "the new requests count");
}

#[test]
fn filters_other_than_the_release_and_other_gaps_scan() {
    let g = Events::new(
        &crate::events::catalog(),
        Config {
            spacing_us: 1_000_000,
            episode_len: 4,
            ..Config::default()
        },
    );
    let mut text = Vec::new();
    g.write_lines(0..1500, &mut text).unwrap();
    let lines = split_lines(&text);
    let db = Db::new();
    let mut c = Converter::new(Some(db.mapper.clone()));
    for cut in lines.chunks(200) {
        db.store
            .apply_blocking(db.batch_of_lines(&mut c, cut))
            .unwrap();
    }
    db.store.fold_journeys_blocking().unwrap();
    // Emptying the rollup would change every answer it gives; these do not read it.
    let asked: Vec<Vec<(&str, &str)>> = vec![
        vec![("gap", "30")],
        vec![("max-len", "5")],
        vec![("app", "app-0")],
        vec![("ok-only", "true")],
    ];
    let before: Vec<Value> = asked
        .iter()
        .map(|p| answer(&db.path(), "journeys", p))
        .collect();
    let default_before = answer(&db.path(), "journeys", &[]);
    assert!(!default_before.as_array().unwrap().is_empty());
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    conn.execute("DELETE FROM journey_support", []).unwrap();
    for (p, want) in asked.iter().zip(&before) {
        assert_eq!(&answer(&db.path(), "journeys", p), want, "{p:?}");
    }
    assert_eq!(answer(&db.path(), "journeys", &[]), Value::Array(vec![]));
}
