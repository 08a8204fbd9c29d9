//! The store through its public API, on a real database file.

use whakapapa_collector::store::{self, StageRank, Store};
use whakapapa_collector::wire::{TRUNCATED_SUFFIX, audit_id};

use crate::it::fixture::{Db, Ev};

const POD: &str = "/api/v1/namespaces/default/pods/web-0";

#[test]
fn a_request_is_counted_once_with_its_most_complete_stage() {
    let db = Db::new();
    // every stage of one request, out of order, across batches
    let o = db.apply(&[Ev::new("a1", "ResponseComplete", "get", POD).code(404)]);
    assert_eq!((o.new, o.advanced, o.duplicates), (1, 0, 0));
    let o = db.apply(&[
        Ev::new("a1", "RequestReceived", "get", POD),
        Ev::new("a1", "ResponseComplete", "get", POD).code(404),
    ]);
    assert_eq!((o.new, o.earlier_stage, o.duplicates), (0, 1, 1));
    let rows = db.request("a1");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stage, StageRank::ResponseComplete);
    assert_eq!(rows[0].status_code, Some(404));
    assert_eq!(rows[0].latency_us, Some(12_000));
    assert_eq!(
        rows[0].operation_id.as_deref(),
        Some("readCoreV1NamespacedPod")
    );

    // seen only at RequestReceived: still a request, no status yet
    db.apply(&[Ev::new(
        "b1",
        "RequestReceived",
        "list",
        "/api/v1/pods?limit=500",
    )]);
    let b = &db.request("b1")[0];
    assert_eq!(
        (b.stage, b.status_code, b.latency_us),
        (StageRank::RequestReceived, None, None)
    );
    assert_eq!(
        b.operation_id.as_deref(),
        Some("listCoreV1PodForAllNamespaces")
    );
    // its later stages arrive: upgraded in place
    let o = db.apply(&[
        Ev::new("b1", "ResponseStarted", "list", "/api/v1/pods?limit=500"),
        Ev::new("b1", "ResponseComplete", "list", "/api/v1/pods?limit=500").code(200),
    ]);
    assert_eq!((o.new, o.advanced), (0, 2));
    let b = &db.request("b1")[0];
    assert_eq!(
        (b.stage, b.status_code, b.latency_us),
        (StageRank::ResponseComplete, Some(200), Some(12_000))
    );
    assert_eq!(db.counts().requests, 2);
}

#[test]
fn a_redelivered_batch_changes_no_count() {
    let db = Db::new();
    let batch: Vec<Ev> = (0..300)
        .flat_map(|i| {
            let id = format!("r{i}");
            let uri = format!("/api/v1/namespaces/ns{}/configmaps", i % 7);
            [
                Ev::new(&id, "RequestReceived", "create", &uri).at(i as f64),
                Ev::new(&id, "ResponseComplete", "create", &uri)
                    .at(i as f64)
                    .code(201),
            ]
        })
        .collect();
    let first = db.apply(&batch);
    assert_eq!((first.events, first.new, first.advanced), (600, 300, 300));
    let before = db.counts();
    let again = db.apply(&batch);
    assert_eq!(
        (
            again.new,
            again.advanced,
            again.duplicates,
            again.earlier_stage
        ),
        (0, 0, 300, 300)
    );
    assert_eq!(db.counts(), before);
    // and out of order: the second half first, then the whole batch reversed
    let mut reversed = batch.clone();
    reversed.reverse();
    let o = db.apply(&reversed);
    assert_eq!(o.new, 0);
    assert_eq!(db.counts(), before);
}

#[test]
fn a_retried_audit_id_with_another_receive_time_is_another_request() {
    let db = Db::new();
    db.apply(&[
        Ev::new("same", "ResponseComplete", "delete", POD).at(1.0),
        Ev::new("same", "ResponseComplete", "delete", POD)
            .at(2.5)
            .code(404),
    ]);
    let rows = db.request("same");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].status_code, Some(404));
    assert_eq!(db.counts().request_keys, 2);
}

#[test]
fn requests_keep_who_and_what() {
    let db = Db::new();
    db.apply(&[
        Ev::new("h", "ResponseComplete", "get", "/healthz"),
        Ev::new("c", "ResponseComplete", "get", "/apis/shop.example.com/v1/widgets"),
        Ev::new("t", "ResponseComplete", "create", "/api/v1/namespaces/e2e-1/pods")
            .ua("e2e.test/v1.36.0 (linux/amd64) kubernetes/6f6b2a1 -- [sig-node] Pods should be submitted and removed [Conformance]")
            .v1beta1(),
    ]);
    assert_eq!(db.request("h")[0].mapping, "non_resource");
    assert_eq!(db.request("c")[0].mapping, "unmapped:unknown_path");
    let t = &db.request("t")[0];
    assert_eq!(t.operation_id.as_deref(), Some("createCoreV1NamespacedPod"));
    assert_eq!(
        t.identity.as_deref(),
        Some("e2e.test/v1.36.0 (linux/amd64) kubernetes/6f6b2a1")
    );
    assert_eq!(
        t.test.as_deref(),
        Some("[sig-node] Pods should be submitted and removed [Conformance]")
    );
    assert_eq!(t.user.as_deref(), Some("kubernetes-admin"));
    crate::it::fixture::assert_foreign_keys_hold(&db.path());
}

#[test]
fn purposes_join_by_fingerprint_and_fill_in_from_the_side_channel() {
    let db = Db::new();
    let identity = "shop/v0.3.1 (linux/amd64) git/4f2a9c1";
    let list = (
        "kube_client::api::Api<K>::list",
        "kube-client-5.0.0/src/api/core_methods.rs",
        106,
    );
    let frames = [
        list,
        ("shop::count", "src/inv.rs", 42),
        ("shop::main", "src/main.rs", 17),
    ];
    let full = crate::it::fixture::whakapapa_ua(identity, 0x9c0e4b7d12aa03f1, &frames);
    // Cut inside the last frame, as kube-apiserver cuts a longer user agent.
    let ua = format!("{}{TRUNCATED_SUFFIX}", &full[..full.len() - 16]);
    db.apply(&[Ev::new("p1", "ResponseComplete", "list", "/api/v1/pods").ua(&ua)]);
    let r = &db.request("p1")[0];
    assert_eq!(r.fingerprint.as_deref(), Some("9c0e4b7d12aa03f1"));
    let reader = db.store.reader().unwrap();
    assert_eq!(
        store::read::purpose_frames(&reader, "9c0e4b7d12aa03f1").unwrap(),
        [
            "kube_client::api::Api<K>::list@kube-client-5.0.0/src/api/core_methods.rs:106",
            "shop::count@src/inv.rs:42"
        ]
    );
    // the full purpose arrives through the side channel
    let record = br#"{"whakapapa":1,"fingerprint":"9c0e4b7d12aa03f1","identity":{"user_agent":"shop/v0.3.1 (linux/amd64) git/4f2a9c1"},"frames":[{"function":"kube_client::api::Api<K>::list","file":"kube-client-5.0.0/src/api/core_methods.rs","line":106},{"function":"shop::count","file":"src/inv.rs","line":42},{"function":"shop::main","file":"src/main.rs","line":17}]}"#;
    let (records, errors) = whakapapa_collector::purpose::parse_records(record);
    assert!(errors.is_empty());
    db.store
        .upsert_purposes_blocking(
            records
                .into_iter()
                .map(whakapapa_collector::ingest::purpose_upsert)
                .collect(),
        )
        .unwrap();
    assert_eq!(
        store::read::purpose_frames(&reader, "9c0e4b7d12aa03f1")
            .unwrap()
            .len(),
        3
    );
    let c = db.counts();
    assert_eq!((c.purposes, c.complete_purposes), (1, 1));
    // a request whose user agent lost even its fingerprint joins through its Audit-ID
    let id = audit_id::encode(0x9c0e4b7d12aa03f1, 0x2e0f4a6b8c1d);
    let cut = format!("{}{TRUNCATED_SUFFIX}", &full[..identity.len() + 1]);
    db.apply(&[Ev::new(&id, "ResponseComplete", "list", "/api/v1/pods").ua(&cut)]);
    assert_eq!(
        db.request(&id)[0].fingerprint.as_deref(),
        Some("9c0e4b7d12aa03f1")
    );
    assert_eq!(db.counts().purposes, 1);
    crate::it::fixture::assert_foreign_keys_hold(&db.path());
}

/// kube-controller-manager names each controller after its commit; the store keeps it apart.
#[test]
fn identities_keep_what_follows_the_commit() {
    let db = Db::new();
    let kcm = "kube-controller-manager/v1.36.0 (linux/amd64) kubernetes/3f7a50f\
               /system:serviceaccount:kube-system:job-controller";
    db.apply(&[
        Ev::new("k1", "ResponseComplete", "get", POD).ua(kcm),
        Ev::new("k2", "ResponseComplete", "get", POD)
            .ua("kubelet/v1.36.0 (linux/amd64) kubernetes/3f7a50f"),
    ]);
    let reader = store::open_reader(&db.path()).unwrap();
    let mut rows = reader
        .prepare("SELECT name, source_commit, detail FROM identities ORDER BY name")
        .unwrap();
    let rows: Vec<(String, String, Option<String>)> = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            (
                "kube-controller-manager".to_owned(),
                "3f7a50f".to_owned(),
                Some("system:serviceaccount:kube-system:job-controller".to_owned())
            ),
            ("kubelet".to_owned(), "3f7a50f".to_owned(), None),
        ]
    );
}

/// Every user agent of one program (a test in it, a call path, one kube-apiserver cut) is one
/// identity, kept as its raw text; each build of it (its own version and commit) is an
/// identity of its own, parsed to the same program, so the app is one. A reopened store
/// (nothing cached) finds them by their key.
#[test]
fn user_agents_of_one_program_intern_to_one_identity_that_keeps_its_text() {
    let id = "shop/v0.3.1 (linux/amd64) git/4f2a9c1";
    let agents = |from: u64| -> Vec<Ev> {
        (from..from + 300)
            .map(|n| {
                let ua = match n % 3 {
                    0 => format!("{id} -- tests::case_{n}"),
                    1 => crate::it::fixture::whakapapa_ua(
                        id,
                        n + 1,
                        &[("shop::step", "src/main.rs", n as u32 + 1)],
                    ),
                    _ => format!("{id}{TRUNCATED_SUFFIX}"),
                };
                Ev::new(&format!("u{n}"), "ResponseComplete", "get", POD).ua(&ua)
            })
            .chain((from..from + 200).map(|n| {
                let build = format!("shop/v0.3.1-ci.{n}+{n:012x} (linux/amd64) git/{n:07x}");
                Ev::new(&format!("b{n}"), "ResponseComplete", "get", POD).ua(&build)
            }))
            .collect()
    };
    let db = Db::new();
    db.apply(&agents(0));
    let crate::it::fixture::Db {
        dir,
        store,
        run,
        release,
        mapper,
    } = db;
    drop(store);
    let db = Db {
        store: Store::open(dir.path().join("w.db"), store::Options::default()).unwrap(),
        dir,
        run,
        release,
        mapper,
    };
    // The same user agents again (new requests), then 300 more of them and 200 more builds.
    db.apply(
        &agents(0)
            .into_iter()
            .take(300)
            .map(|e| e.at(100.0))
            .collect::<Vec<_>>(),
    );
    db.apply(&agents(1000));

    let reader = store::open_reader(&db.path()).unwrap();
    let one = |q: &str| -> (i64, i64) {
        reader
            .query_row(q, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    assert_eq!(
        one("SELECT count(*), count(DISTINCT COALESCE(name, text)) FROM identities"),
        (1 + 400, 1)
    );
    let texts: Vec<String> = reader
        .prepare("SELECT text FROM identities WHERE version = 'v0.3.1'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(texts, [id]);
    assert_eq!(
        one(
            "SELECT count(*), count(DISTINCT r.identity_id) FROM requests r \
             JOIN identities i ON i.id = r.identity_id WHERE i.text = 'shop/v0.3.1 (linux/amd64) git/4f2a9c1'"
        ),
        (900, 1)
    );
    let build: (String, String) = reader
        .query_row(
            "SELECT version, source_commit FROM identities WHERE text LIKE 'shop/v0.3.1-ci.1005+%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        build,
        ("v0.3.1-ci.1005+0000000003ed".into(), "00003ed".into())
    );
}

#[test]
fn a_database_reopens_at_its_schema_version_and_keeps_its_rows() {
    let db = Db::new();
    db.apply(&[Ev::new("x", "ResponseComplete", "get", POD)]);
    let path = db.path();
    drop(db.store);
    let store = Store::open(&path, store::Options::default()).unwrap();
    let reader = store.reader().unwrap();
    assert_eq!(store::read::counts(&reader).unwrap().requests, 1);
    let version: i64 = reader
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, store::SCHEMA_VERSION);
}

#[test]
fn a_release_label_is_bound_to_its_document() {
    let db = Db::new();
    let catalog = crate::events::catalog();
    let record = |spec: &[u8]| {
        whakapapa_collector::ingest::spec::release_record(
            &catalog,
            "1.36.0".into(),
            spec.to_vec(),
            None,
        )
    };
    assert_eq!(
        db.store.store_release_blocking(record(b"{}")).unwrap(),
        db.release
    );
    let err = db
        .store
        .store_release_blocking(record(b"{\"other\":1}"))
        .unwrap_err();
    assert!(
        err.to_string().contains("release 1.36.0 is already stored"),
        "{err}"
    );
}

/// Every rollup table, in key order: what the queries read.
fn rollup_tables(path: &std::path::Path) -> Vec<(String, Vec<Vec<i64>>)> {
    let conn = store::open_reader(path).unwrap();
    [
        ("usage", "SELECT endpoint_id, identity_id, test_id, purpose_id, length(verb), code, hits, first_us, last_us FROM usage ORDER BY 1, 2, 3, 4, verb, 6"),
        ("endpoint_usage", "SELECT endpoint_id, hits, test_hits, conf_hits, ok_hits, ok_test_hits, ok_conf_hits, apps, tests, locs FROM endpoint_usage ORDER BY 1"),
        ("run_usage", "SELECT run_id, endpoint_id, hits, test_hits, conf_hits FROM run_usage ORDER BY 1, 2"),
        ("endpoint_apps", "SELECT endpoint_id, identity_id FROM endpoint_apps ORDER BY 1, 2"),
        ("endpoint_tests", "SELECT endpoint_id, test_id FROM endpoint_tests ORDER BY 1, 2"),
        ("endpoint_purposes", "SELECT purpose_id, endpoint_id FROM endpoint_purposes ORDER BY 1, 2"),
        ("endpoint_locs", "SELECT endpoint_id, frame_id FROM endpoint_locs ORDER BY 1, 2"),
    ]
    .into_iter()
    .map(|(name, sql)| {
        let mut s = conn.prepare(sql).unwrap();
        let n = s.column_count();
        let rows = s
            .query_map([], |r| (0..n).map(|i| r.get::<_, i64>(i)).collect())
            .unwrap()
            .collect::<Result<Vec<Vec<i64>>, _>>()
            .unwrap();
        (name.to_owned(), rows)
    })
    .collect()
}

/// Endpoints whose `usage` hits are not the requests up to their mark: max of
/// `rollup_state.folded_through` and the endpoint's `rollup_marks` row.
fn requests_off_their_marks(path: &std::path::Path) -> i64 {
    store::open_reader(path)
        .unwrap()
        .query_row(
            "WITH e AS (SELECT DISTINCT coalesce(endpoint_id, 0) AS e FROM requests), \
             m AS (SELECT e.e, max((SELECT folded_through FROM rollup_state), \
                   coalesce(rm.folded_through, 0)) AS mark \
                   FROM e LEFT JOIN rollup_marks rm ON rm.endpoint_id = e.e), \
             want AS (SELECT m.e, count(r.id) AS n FROM m LEFT JOIN requests r \
                      ON coalesce(r.endpoint_id, 0) = m.e AND r.id <= m.mark GROUP BY m.e), \
             got AS (SELECT endpoint_id AS e, sum(hits) AS n FROM usage GROUP BY endpoint_id) \
             SELECT count(*) FROM want LEFT JOIN got USING (e) WHERE coalesce(got.n, 0) <> want.n",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn rollups_folded_later_equal_rollups_folded_with_every_batch() {
    use whakapapa_collector::ingest::Converter;
    use whakapapa_collector::store::Fold;

    use crate::events::{Config, Events};

    // Two events per request (RequestReceived, then ResponseComplete with its code), cut into
    // batches that split requests, with one batch delivered twice: new requests, stage moves
    // of folded and of pending requests, and duplicates.
    let g = Events::new(
        &crate::events::catalog(),
        Config {
            stages: 2,
            ..Config::default()
        },
    );
    let mut text = Vec::new();
    g.write_lines(0..3000, &mut text).unwrap();
    let lines = crate::it::fixture::split_lines(&text);
    let mut cuts: Vec<&[&[u8]]> = lines.chunks(333).collect();
    cuts.insert(5, cuts[3]);

    let every = Db::new();
    let hour = std::time::Duration::from_secs(3600);
    let deferred = |max_keys, chunk_keys| {
        Db::with_options(store::Options::default().fold(Fold::Deferred {
            interval: hour,
            max_keys,
            chunk_keys,
        }))
    };
    // Bulk-like: big sums, folded in one go when 200 keys are pending; chunks of 37 keys
    // (ranges of endpoints) when 200 are pending; webhook-like: nothing until a fold is asked
    // for, one key a chunk, and the last batch comes while it runs, so some endpoints are
    // folded further than others at the end.
    let bulk = deferred(200, 200);
    let chunks = deferred(200, 37);
    let lazy = deferred(100_000, 1);
    let (last, cuts) = cuts.split_last().unwrap();
    for db in [&every, &bulk, &chunks, &lazy] {
        let mut c = Converter::new(Some(db.mapper.clone()));
        for cut in cuts {
            db.store
                .apply_blocking(db.batch_of_lines(&mut c, cut))
                .unwrap();
        }
        let last = db.batch_of_lines(&mut c, last);
        if std::ptr::eq(db, &lazy) {
            std::thread::scope(|s| {
                let fold = s.spawn(|| db.store.fold_blocking().unwrap());
                std::thread::sleep(std::time::Duration::from_millis(5));
                db.store.apply_blocking(last).unwrap();
                fold.join().unwrap();
            });
        } else {
            db.store.apply_blocking(last).unwrap();
        }
    }
    // The batch that came during the lazy writer's fold: endpoints folded to different marks.
    let marks: i64 = store::open_reader(&lazy.path())
        .unwrap()
        .query_row("SELECT count(*) FROM rollup_marks", [], |r| r.get(0))
        .unwrap();
    assert!(marks > 0, "some endpoints folded ahead of the others");
    for db in [&bulk, &chunks, &lazy] {
        assert_eq!(requests_off_their_marks(&db.path()), 0, "{:?}", db.path());
    }
    // A writer killed now leaves that state behind: the next one folds what is above the marks.
    let copy = lazy.path().with_extension("copy.db");
    store::open_reader(&lazy.path())
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    drop(store::Store::open(&copy, store::Options::default()).unwrap());
    // Some deltas are still in the writers' memory: folding now makes the tables whole.
    for db in [&bulk, &chunks, &lazy] {
        db.store.fold_blocking().unwrap();
    }
    let want = rollup_tables(&every.path());
    assert!(want[0].1.len() > 200, "enough keys for several folds");
    assert_eq!(
        want.iter()
            .map(|(_, rows)| rows.iter().map(|r| r[r.len().min(7) - 1]).sum::<i64>())
            .next(),
        Some(3000),
        "usage counts every request once"
    );
    let restarted = rollup_tables(&copy);
    for ((name, want), (_, got)) in want.iter().zip(&restarted) {
        assert_eq!(got, want, "{name}, after a restart");
    }
    for db in [&bulk, &chunks, &lazy] {
        let got = rollup_tables(&db.path());
        for ((name, want), (_, got)) in want.iter().zip(&got) {
            assert_eq!(got, want, "{name}");
        }
        crate::it::fixture::assert_foreign_keys_hold(&db.path());
    }
}

/// `serve` (durable commits): batches of different API servers share transactions, each batch
/// in a savepoint of its own.
#[test]
fn a_failing_batch_is_rolled_back_alone_and_the_batches_sharing_its_transaction_are_stored() {
    failing_batch(true);
}

/// Bulk ingest: no savepoints (they copy every page a batch first touches); a failing batch
/// takes the batches of its transaction with it, all of them answered with an error, and the
/// batches after it are stored.
#[test]
fn in_bulk_a_failing_batch_fails_its_whole_transaction_and_nothing_after_it() {
    failing_batch(false);
}

fn failing_batch(durable: bool) {
    let db = Db::with_options(store::Options::default().queue(8).durable(durable));
    // A stand-in for a batch SQLite refuses halfway (a constraint, a full disk): a trigger
    // that rejects one request.
    rusqlite::Connection::open(db.path())
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON requests WHEN NEW.audit_id = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned request'); END;",
        )
        .unwrap();
    let batch = |prefix: &str, n: usize, poison: bool| {
        let mut evs: Vec<Ev> = (0..n)
            .map(|i| {
                Ev::new(&format!("{prefix}{i}"), "ResponseComplete", "get", POD)
                    .at(i as f64)
                    .code(200)
            })
            .collect();
        if poison {
            evs.push(Ev::new("poison", "ResponseComplete", "get", POD).code(200));
        }
        store::Batch {
            run: db.run,
            release: Some(db.release),
            events: evs.len() as u64,
            requests: db.records(&evs),
            malformed: Vec::new(),
        }
    };
    let (a, b, c) = (
        batch("a", 5000, false),
        batch("b", 10, true),
        batch("c", 10, false),
    );
    // Another connection holds the write lock while the three batches queue: the writer,
    // waiting for the lock with the first, finds the second queued behind it once it has it
    // and takes it into the same transaction.
    let mut lock = rusqlite::Connection::open(db.path()).unwrap();
    let held = lock
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let a = db.store.submit_blocking(a).unwrap();
    let b = db.store.submit_blocking(b).unwrap();
    let c = db.store.submit_blocking(c).unwrap();
    held.commit().unwrap();
    let a = a.wait();
    let err = b.wait().unwrap_err();
    let why = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(why.contains("poisoned request"), "{why}");
    let stored = if durable {
        assert_eq!(a.unwrap().new, 5000);
        assert_eq!(c.wait().unwrap().new, 10);
        5010
    } else {
        // Told its transaction failed, and why: the other batch's failure, typed.
        let err = a.unwrap_err();
        let mut why = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            why += &format!(": {s}");
            source = s.source();
        }
        assert!(matches!(err, store::Error::Shared(_)), "{why}");
        assert!(
            why.starts_with("the transaction holding this batch failed")
                && why.contains("poisoned"),
            "{why}"
        );
        assert!(
            db.request("a3").is_empty(),
            "nothing of the batch it shared with"
        );
        // The writer took the third batch only after the failure: a transaction of its own.
        assert_eq!(c.wait().unwrap().new, 10);
        10
    };

    assert_eq!(db.counts().requests, stored);
    assert!(db.request("b3").is_empty(), "nothing of the failed batch");
    let conn = store::open_reader(&db.path()).unwrap();
    let hits: i64 = conn
        .query_row("SELECT sum(hits) FROM usage", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        hits as u64, stored,
        "the rollups count the stored requests only"
    );

    // The writer goes on as before: the failed batch, without its bad request, is stored.
    assert_eq!(
        db.apply(
            &(0..10)
                .map(
                    |i| Ev::new(&format!("b{i}"), "ResponseComplete", "get", POD)
                        .at(i as f64)
                        .code(200)
                )
                .collect::<Vec<_>>()
        )
        .new,
        10
    );
    assert_eq!(db.counts().requests, stored + 10);
    crate::it::fixture::assert_foreign_keys_hold(&db.path());
}

#[test]
fn a_new_file_gets_16_kib_pages_and_an_existing_file_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |path: &std::path::Path| -> i64 {
        store::open_reader(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let new = dir.path().join("new.db");
    drop(store::Store::open(&new, store::Options::default()).unwrap());
    assert_eq!(page_size(&new), 16 * 1024);
    // A file written before (4 KiB pages, SQLite's default) opens, migrates and stays as it is.
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    let db = store::Store::open(&old, store::Options::default()).unwrap();
    db.fold_blocking().unwrap();
    drop(db);
    assert_eq!(page_size(&old), 4096);
}

/// A fold asked for (as the query API does before answering) runs in chunks: a batch sent
/// while it runs is stored and answered between two chunks, before the fold's answer, and the
/// fold's answer comes once everything stored before it was asked for is counted.
#[test]
fn a_batch_sent_during_a_chunked_fold_is_answered_before_the_fold() {
    use whakapapa_collector::ingest::Converter;
    use whakapapa_collector::store::Fold;

    use crate::events::{Config, Events};

    let g = Events::new(&crate::events::catalog(), Config::default());
    let mut text = Vec::new();
    g.write_lines(0..4000, &mut text).unwrap();
    let lines = crate::it::fixture::split_lines(&text);
    // One key per fold transaction: a fold of everything is hundreds of transactions.
    let db = Db::with_options(store::Options::default().fold(Fold::Deferred {
        interval: std::time::Duration::from_secs(3600),
        max_keys: usize::MAX,
        chunk_keys: 1,
    }));
    let mut c = Converter::new(Some(db.mapper.clone()));
    for chunk in lines[..3000].chunks(500) {
        db.store
            .apply_blocking(db.batch_of_lines(&mut c, chunk))
            .unwrap();
    }
    let last = db.batch_of_lines(&mut c, &lines[3000..]);
    let counted = || -> i64 {
        store::open_reader(&db.path())
            .unwrap()
            .query_row("SELECT coalesce(sum(hits), 0) FROM usage", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(counted(), 0, "nothing folded before the fold is asked for");
    std::thread::scope(|s| {
        let fold = s.spawn(|| {
            db.store.fold_blocking().unwrap();
            std::time::Instant::now()
        });
        std::thread::sleep(std::time::Duration::from_millis(5));
        db.store.apply_blocking(last).unwrap();
        let batch_done = std::time::Instant::now();
        let fold_done = fold.join().unwrap();
        assert!(
            batch_done < fold_done,
            "the batch waited for the whole fold"
        );
    });
    assert!(
        counted() >= 3000,
        "every request stored before the fold was asked for is counted"
    );
    assert_eq!(requests_off_their_marks(&db.path()), 0);
    db.store.fold_blocking().unwrap();
    assert_eq!(counted(), 4000);
}
