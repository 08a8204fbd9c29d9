//! `deps` and `apps --rbac` answer from the rollups kept at ingest (`access`, `object_uses`,
//! `object_access`, `app_requests`)
//! exactly what a scan of `requests` answers (a time window makes them scan), whatever order
//! and how often the write path got the events, and after a remap moved requests.

use std::path::Path;
use std::time::Duration;

use whakapapa_collector::ingest::Converter;
use whakapapa_collector::query::Request;
use whakapapa_collector::store::{self, Fold, RemapFn};

use crate::events::{Config, Events};
use crate::it::fixture::{Db, split_lines};

/// Before every generated request: a scan answers a query with this window.
const SINCE: &str = "2000-01-01T00:00:00Z";

/// The answer's JSON, and the same query's with a window (a scan of `requests`).
fn rollup_and_scan(db: &Path, name: &str, params: &[(&str, &str)]) -> (String, String) {
    let conn = store::open_reader(db).unwrap();
    let run = |params: &[(&str, &str)]| {
        Request::from_params(name, params.iter().copied())
            .unwrap()
            .run(&conn)
            .unwrap()
            .to_json()
    };
    let mut windowed = params.to_vec();
    windowed.push(("since", SINCE));
    (run(params), run(&windowed))
}

fn assert_rollups_answer_as_the_scan(db: &Path, what: &str) {
    // A filter that lets through one build of an app and not the others: the rollups keep
    // apps whole, so this is the scan's to answer.
    let one_build: String = store::open_reader(db)
        .unwrap()
        .query_row(
            "SELECT text FROM identities WHERE name IN \
             (SELECT name FROM identities GROUP BY name HAVING COUNT(*) > 1) ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for (name, params) in [
        ("deps", &[("limit", "100000")][..]),
        ("deps", &[("limit", "7")]),
        ("deps", &[("app", "app-3")]),
        ("deps", &[("app", &one_build)]),
        ("apps", &[("rbac", "true")]),
        ("apps", &[("rbac", "true"), ("app", "app-1")]),
        ("apps", &[("rbac", "true"), ("app", &one_build)]),
    ] {
        let (rollup, scan) = rollup_and_scan(db, name, params);
        // One build's dependencies may be none; its RBAC is not.
        let may_be_empty = name == "deps" && params.iter().any(|&(_, v)| v == one_build);
        assert!(
            may_be_empty || rollup.len() > 100,
            "{name} {params:?} answers something"
        );
        assert_eq!(rollup, scan, "{name} {params:?}, {what}");
    }
}

/// The rows of `object_uses`, `object_access`, `app_requests` and `access_grants`, in key
/// order.
fn tables(db: &Path) -> Vec<Vec<String>> {
    let conn = store::open_reader(db).unwrap();
    [
        "SELECT api_group || ' ' || resource || ' ' || app || ' ' || endpoint_id || ' ' || \
         purpose_id || ' ' || namespace || ' ' || verb || ' ' || hits FROM object_uses \
         ORDER BY api_group, resource, app, endpoint_id, purpose_id, namespace, verb",
        "SELECT api_group || ' ' || resource || ' ' || app || ' ' || namespace || ' ' || \
         reads || ' ' || writes FROM object_access ORDER BY api_group, resource, app, namespace",
        "SELECT app || ' ' || hits FROM app_requests ORDER BY app",
        "SELECT app || ' ' || url || ' ' || api_group || ' ' || resource || ' ' || subresource \
         || ' ' || namespace || ' ' || verb || ' ' || user_id FROM access_grants \
         ORDER BY app, url, api_group, resource, subresource, namespace, verb, user_id",
    ]
    .iter()
    .map(|sql| {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    })
    .collect()
}

#[test]
fn deps_and_rbac_from_the_rollups_equal_the_scan_of_requests() {
    // Two events per request (RequestReceived, then ResponseComplete), some as an impersonated
    // user, cut into batches that split requests, delivered out of order, some twice.
    let g = Events::new(
        &crate::events::catalog(),
        Config {
            apps: 40,
            stages: 2,
            ..Config::default()
        },
    );
    let mut text = Vec::new();
    g.write_lines(0..4000, &mut text).unwrap();
    let mut events: Vec<Vec<u8>> = split_lines(&text).into_iter().map(<[u8]>::to_vec).collect();
    for (i, line) in events.iter_mut().enumerate() {
        if i % 14 < 2 {
            let mut v: serde_json::Value = serde_json::from_slice(line).unwrap();
            v["impersonatedUser"] = serde_json::json!({"username": format!("system:serviceaccount:shop:robot-{}", i % 3)});
            *line = serde_json::to_vec(&v).unwrap();
        }
    }
    let lines: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let mut cuts: Vec<&[&[u8]]> = lines.chunks(333).collect();
    cuts.swap(1, 6);
    cuts.swap(2, 9);
    cuts.insert(5, cuts[3]);
    cuts.push(cuts[0]);
    let (before, after) = cuts.split_at(cuts.len() / 2);

    // Folded with every batch; and only when asked, in chunks of a few endpoints, the last
    // batch before the remap coming while that fold runs: endpoints are folded to different
    // marks when the remap comes, and the batches after it are pending when the writer stops.
    let every = Db::new();
    let chunks = Db::with_options(store::Options::default().fold(Fold::Deferred {
        interval: Duration::from_secs(3600),
        max_keys: 100_000,
        chunk_keys: 5,
    }));
    // The widgets of a CRD the catalog lacks are stored unmapped; the remap maps them.
    let widgets = |_: &str, uri: &str| uri.contains("/widgets/").then_some(3);
    let (during_fold, before) = before.split_last().unwrap();
    for db in [&every, &chunks] {
        let mut c = Converter::new(Some(db.mapper.clone()));
        for cut in before {
            db.store
                .apply_blocking(db.batch_of_lines(&mut c, cut))
                .unwrap();
        }
        let batch = db.batch_of_lines(&mut c, during_fold);
        std::thread::scope(|s| {
            let fold = s.spawn(|| db.store.fold_blocking().unwrap());
            std::thread::sleep(Duration::from_millis(5));
            db.store.apply_blocking(batch).unwrap();
            fold.join().unwrap();
        });
        let remapped = db
            .store
            .remap_blocking(db.release, RemapFn::new(widgets))
            .unwrap();
        assert!(remapped.remapped > 0, "{remapped:?}");
        for cut in after {
            db.store
                .apply_blocking(db.batch_of_lines(&mut c, cut))
                .unwrap();
        }
    }
    // A writer killed now: the next one folds what lies above the marks from `requests`.
    let copy = chunks.path().with_extension("copy.db");
    store::open_reader(&chunks.path())
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    // The same, from before `0015_access_rollups.sql` and `0016_deps_rollup.sql`: they count
    // the requests up to their marks.
    let old = chunks.path().with_extension("old.db");
    std::fs::copy(&copy, &old).unwrap();
    let conn = rusqlite::Connection::open(&old).unwrap();
    let pending: i64 = conn
        .query_row(
            "SELECT count(*) FROM requests r LEFT JOIN rollup_marks m \
             ON m.endpoint_id = coalesce(r.endpoint_id, 0) \
             WHERE r.id > max((SELECT folded_through FROM rollup_state), \
                              coalesce(m.folded_through, 0))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        pending > 0,
        "requests above their marks when the writer stops"
    );
    conn.execute_batch(
        "DROP TABLE object_uses; DROP TABLE object_access; \
         DROP TABLE app_requests; DROP TABLE access_grants; DROP TABLE rbac_stale; \
         DROP TABLE rbac_apps;",
    )
    .unwrap();
    // `0017_rbac_grants.sql` to `0019_object_uses_by_app.sql` too: every app is stale until
    // the writer's fold.
    for migration in [
        include_str!("../../src/store/migrations/0015_access_rollups.sql"),
        include_str!("../../src/store/migrations/0016_deps_rollup.sql"),
        include_str!("../../src/store/migrations/0017_rbac_grants.sql"),
        include_str!("../../src/store/migrations/0018_no_access.sql"),
        include_str!("../../src/store/migrations/0019_object_uses_by_app.sql"),
    ] {
        conn.execute_batch(migration).unwrap();
    }
    drop(conn);
    for db in [&copy, &old] {
        drop(store::Store::open(db, store::Options::default()).unwrap());
    }
    chunks.store.fold_blocking().unwrap();

    let want = tables(&every.path());
    assert!(want.iter().all(|t| t.len() > 10), "enough keys");
    let (rbac, _) = rollup_and_scan(&every.path(), "apps", &[("rbac", "true")]);
    assert!(rbac.contains("robot-2"), "impersonated users are subjects");
    assert_eq!(tables(&chunks.path()), want, "folded in chunks");
    assert_eq!(tables(&copy), want, "after a restart");
    assert_rollups_answer_as_the_scan(&every.path(), "folded with every batch");
    assert_rollups_answer_as_the_scan(&chunks.path(), "folded in chunks");
    assert_rollups_answer_as_the_scan(&copy, "after a restart");

    assert_eq!(tables(&old), want, "rebuilt by the migration, then folded");
    assert_rollups_answer_as_the_scan(&old, "rebuilt by the migrations, then folded");

    // A fold of everything keeps every app's answer; a query derives the apps still stale
    // itself (between chunked folds), whatever their kept answer says.
    for db in [every.path(), chunks.path(), copy.clone(), old.clone()] {
        let (stale, kept, apps) = kept(&db);
        assert!(apps > 5, "{}: {apps} apps", db.display());
        assert_eq!((stale, kept), (0, apps), "{}: every app kept", db.display());
    }
    let stale = chunks.path().with_extension("stale.db");
    store::open_reader(&chunks.path())
        .unwrap()
        .execute("VACUUM INTO ?1", [stale.to_str().unwrap()])
        .unwrap();
    let conn = rusqlite::Connection::open(&stale).unwrap();
    conn.execute_batch(
        "INSERT INTO rbac_stale (app) SELECT app FROM rbac_apps WHERE rowid % 3 = 0; \
         UPDATE rbac_apps SET json = '\"outdated\"' WHERE rowid % 6 = 0; \
         DELETE FROM rbac_apps WHERE rowid % 6 = 3;",
    )
    .unwrap();
    drop(conn);
    let (stale_apps, kept_apps, apps) = kept(&stale);
    assert!(
        stale_apps > 1 && kept_apps < apps,
        "{stale_apps} apps stale, {kept_apps} of {apps} apps kept"
    );
    assert_rollups_answer_as_the_scan(&stale, "with stale apps");
}

/// (apps stale, apps kept) in the `apps --rbac` rollup, and the apps with accesses.
fn kept(db: &Path) -> (i64, i64, i64) {
    let conn = store::open_reader(db).unwrap();
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM rbac_stale), (SELECT COUNT(*) FROM rbac_apps), \
         (SELECT COUNT(DISTINCT app) FROM access_grants)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}
