//! Query latency on a large database, with a baseline measured in the same run.
//!
//! The database is built once through the real ingest path (`whakapapa-collector ingest -`, the
//! generated events piped to its stdin, plus the side-channel records) and cached under
//! `<target>/bench-cache/`; later runs reuse it. Default: 10M requests over every endpoint of
//! the embedded 1.36 catalog, 1,000 programs, about 100k distinct lines of code.
//!
//! Each query is timed as the HTTP API runs it: open a read connection, answer, serialize to
//! JSON; one that takes seconds runs 3 times. Its peak RSS is a fresh process's (this binary
//! run again) that answers it once. Baseline: the same coverage counted straight from `requests` (what a query would cost
//! without the rollups).
//!
//! Run: `cargo bench -p whakapapa-collector --bench queries`
//! - `WHAKAPAPA_QUERY_BENCH_REQUESTS` (default 10000000), `WHAKAPAPA_QUERY_BENCH_RUNS` (15);
//! - `WHAKAPAPA_BENCH_BASELINE_BIN=/path/to/whakapapa-collector` built without rollups also
//!   measures ingest of `WHAKAPAPA_INGEST_BENCH_EVENTS` (1000000) events with both binaries.

use whakapapa_testkit::events;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use whakapapa_collector::query::Request;
use whakapapa_collector::store;

use events::{Config, Events};
use whakapapa_testkit::figures::{env_u64, median};

/// `<target>/bench-cache`: the bench binary runs from `<target>/release/deps/`.
fn cache_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<bench>");
    target.join("bench-cache")
}

fn generator() -> Events {
    // 1,000 programs, 2 in 5 of them with whakapapa stacks of 1-5 own frames: 400 x 84
    // purposes x ~3 frames = ~100k distinct lines of code. Programs reconcile: runs of 6
    // requests of one call path in the same order, a request every millisecond (10M requests
    // are 2.8 hours of a busy cluster), so busy programs make long episodes and quiet ones
    // many short ones, as in a real log.
    Events::new(
        &events::catalog(),
        Config {
            apps: 1000,
            purposes_per_app: 84,
            episode_len: 6,
            spacing_us: 1_000,
            ..Config::default()
        },
    )
}

/// Runs `ingest` of `n` generated events piped to stdin (plus side-channel records) into `db`;
/// returns events/s.
fn ingest(bin: &Path, db: &Path, g: &Events, n: u64, purposes: &Path) -> f64 {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["ingest", "--db"])
        .arg(db)
        .arg("-")
        .arg(purposes)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run whakapapa-collector");
    {
        let mut stdin =
            std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().expect("stdin"));
        let chunk = 100_000;
        let mut i = 0;
        while i < n {
            g.write_lines(i..(i + chunk).min(n), &mut stdin)
                .expect("write events");
            i += chunk;
        }
        stdin.flush().expect("flush");
    }
    let out = child.wait_with_output().expect("ingest");
    assert!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    n as f64 / start.elapsed().as_secs_f64()
}

/// Runs `ingest` of a file of events (and the side-channel records) into `db`; returns the
/// events/s the command reports over its whole run.
fn ingest_file(bin: &Path, db: &Path, log: &Path, purposes: &Path, events: u64) -> f64 {
    let start = Instant::now();
    let out = Command::new(bin)
        .args(["ingest", "--db"])
        .arg(db)
        .arg(log)
        .arg(purposes)
        .output()
        .expect("run whakapapa-collector");
    assert!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    events as f64 / start.elapsed().as_secs_f64()
}

fn build(db: &Path, n: u64) {
    let g = generator();
    std::fs::create_dir_all(db.parent().expect("cache dir")).expect("cache dir");
    let tmp = db.with_extension("building");
    let _ = std::fs::remove_file(&tmp);
    let purposes = db.with_extension("purposes.jsonl");
    std::fs::write(&purposes, g.purposes_jsonl()).expect("purposes");
    println!(
        "building {} through `ingest -` ({n} requests)...",
        db.display()
    );
    let rate = ingest(
        Path::new(env!("CARGO_BIN_EXE_whakapapa-collector")),
        &tmp,
        &g,
        n,
        &purposes,
    );
    println!("built at {rate:.0} events/s (with rollups)");
    // Checkpoint the WAL into the file so the cached database is one file.
    let conn = rusqlite::Connection::open(&tmp).expect("open");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);
    std::fs::rename(&tmp, db).expect("keep the database");
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Times `f` `runs` times after `warm` warm-up runs: (median ms, min ms, max ms).
fn time(warm: usize, runs: usize, f: impl FnMut()) -> (f64, f64, f64) {
    let (med, min, max, _) = time_runs(warm, runs, f);
    (med, min, max)
}

/// [`time`], but a query that takes seconds runs 3 times after its first: (median ms, min
/// ms, max ms, runs).
fn time_case(warm: usize, runs: usize, mut f: impl FnMut()) -> (f64, f64, f64, usize) {
    let t = Instant::now();
    f();
    if t.elapsed().as_secs_f64() > 2.0 {
        time_runs(0, runs.min(3), f)
    } else {
        time_runs(warm.saturating_sub(1), runs, f)
    }
}

fn time_runs(warm: usize, runs: usize, mut f: impl FnMut()) -> (f64, f64, f64, usize) {
    for _ in 0..warm {
        f();
    }
    let ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let min = ms.iter().copied().fold(f64::MAX, f64::min);
    let max = ms.iter().copied().fold(0.0, f64::max);
    (median(ms), min, max, runs)
}

/// Names the case a child process answers once (`name` then `param=value`s, tab-separated).
const CHILD_CASE: &str = "WHAKAPAPA_QUERY_BENCH_CHILD_CASE";
/// The database the child answers from.
const CHILD_DB: &str = "WHAKAPAPA_QUERY_BENCH_CHILD_DB";

/// This process's peak resident set (`VmHWM`), KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// In a child process: answers the case once, as the timed runs do, and prints its peak RSS.
fn child(case: &str, db: &Path) {
    let mut parts = case.split('\t');
    let name = parts.next().expect("a query");
    let params: Vec<(&str, &str)> = parts
        .map(|p| p.split_once('=').expect("param=value"))
        .collect();
    let req = Request::from_params(name, params.iter().copied()).expect("request");
    let conn = store::open_reader(db).expect("open");
    let json = req.run(&conn).expect("answer").to_json();
    std::hint::black_box(json.len());
    println!("peak_rss_kib {}", peak_rss_kib());
}

/// The peak RSS of a fresh process that answers the case once, MiB.
fn case_peak_rss(db: &Path, name: &str, params: &[(&str, &str)]) -> f64 {
    let mut case = name.to_owned();
    for (k, v) in params {
        case += &format!("\t{k}={v}");
    }
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_CASE, case)
        .env(CHILD_DB, db)
        .output()
        .expect("run the case in a child");
    assert!(
        out.status.success(),
        "child: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib "))
        .and_then(|v| v.parse().ok())
        .expect("the child's peak RSS");
    kib / 1024.0
}

fn main() {
    if let (Ok(case), Ok(db)) = (std::env::var(CHILD_CASE), std::env::var(CHILD_DB)) {
        child(&case, Path::new(&db));
        return;
    }
    let n = env_u64("WHAKAPAPA_QUERY_BENCH_REQUESTS", 10_000_000);
    let runs = env_u64("WHAKAPAPA_QUERY_BENCH_RUNS", 15).max(1) as usize;
    // Named for the generator's shape: another shape builds another database.
    let db = cache_dir().join(format!("queries-{n}-reconciles.db"));
    if !db.exists() {
        build(&db, n);
    }
    // A cache built by an older collector gets this one's migrations (new rollups, indexes).
    {
        let store = store::Store::open(&db, store::Options::default())
            .expect("migrate the cached database");
        // Bulk ingest leaves the journeys to the first query that reads them: counted here,
        // once per database (a no-op when already counted).
        let t = Instant::now();
        store.fold_journeys_blocking().expect("count the journeys");
        println!(
            "journeys counted in {:.1} s (the first `journeys` or `suggest` after an ingest pays this)",
            t.elapsed().as_secs_f64()
        );
    }
    let conn = store::open_reader(&db).expect("open the cached database");
    println!(
        "database {}: {} requests, {} endpoints hit of {}, {} identities, {} purposes, {} lines of code, {} usage rows, {:.0} MiB",
        db.display(),
        count(&conn, "SELECT COUNT(*) FROM requests"),
        count(&conn, "SELECT COUNT(*) FROM endpoint_usage"),
        count(&conn, "SELECT COUNT(*) FROM endpoints"),
        count(&conn, "SELECT COUNT(*) FROM identities"),
        count(&conn, "SELECT COUNT(*) FROM purposes"),
        count(&conn, "SELECT COUNT(*) FROM frames"),
        count(&conn, "SELECT COUNT(*) FROM usage"),
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64,
    );
    // Real targets from the database: the busiest endpoint and the busiest own line of code.
    let hot: String = conn
        .query_row(
            "SELECT e.operation_id FROM endpoint_usage u JOIN endpoints e ON e.id = u.endpoint_id \
             ORDER BY u.hits DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("an endpoint with hits");
    let (file, line, function): (String, i64, String) = conn
        .query_row(
            "SELECT f.file, f.line, f.function FROM usage u JOIN purpose_frames pf ON pf.purpose_id = u.purpose_id \
             JOIN frames f ON f.id = pf.frame_id WHERE pf.depth = 1 \
             GROUP BY f.id ORDER BY SUM(u.hits) DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("a line of code with hits");
    let prefix = function
        .rsplit_once("::")
        .map(|(p, _)| p.to_owned())
        .unwrap_or(function);
    drop(conn);

    let file_line = format!("{file}:{line}");
    // (label, query, parameters)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        ("coverage", "coverage", vec![]),
        ("endpoints", "endpoints", vec![]),
        ("loc file:line", "loc", vec![("loc", &file_line)]),
        ("loc function prefix", "loc", vec![("loc", &prefix)]),
        ("endpoint (busiest)", "endpoint", vec![("endpoint", &hot)]),
        ("sunburst", "sunburst", vec![]),
        ("coverage --ok-only", "coverage", vec![("ok-only", "true")]),
        ("coverage --app app-0", "coverage", vec![("app", "app-0")]),
        (
            "endpoints --conformance",
            "endpoints",
            vec![("conformance", "true")],
        ),
        ("search module_3", "search", vec![("q", "module_3")]),
        ("apps", "apps", vec![]),
        ("history", "history", vec![]),
        ("deps", "deps", vec![]),
        ("apps --rbac", "apps", vec![("rbac", "true")]),
        ("journeys", "journeys", vec![]),
        ("suggest", "suggest", vec![]),
        ("tests --gaps", "tests", vec![("gaps", "true")]),
    ];
    println!(
        "\n{:<28}{:>12}{:>12}{:>12}   ({runs} runs after 2 warm-up)",
        "query", "median ms", "min ms", "max ms"
    );
    let baseline = time(1, runs.min(3), || {
        let conn = store::open_reader(&db).expect("open");
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM (SELECT endpoint_id, COUNT(*), SUM(test_id IS NOT NULL) \
                 FROM requests WHERE endpoint_id IS NOT NULL GROUP BY endpoint_id)",
                [],
                |r| r.get(0),
            )
            .expect("baseline");
        std::hint::black_box(n);
    });
    println!(
        "{:<28}{:>12.1}{:>12.1}{:>12.1}   baseline: coverage from a scan of requests (3 runs after 1 warm-up)",
        "scan of requests", baseline.0, baseline.1, baseline.2
    );
    for (label, name, params) in &cases {
        let req = Request::from_params(name, params.iter().copied()).expect("request");
        let mut bytes = 0;
        let (med, min, max, n) = time_case(2, runs, || {
            let conn = store::open_reader(&db).expect("open");
            let json = req.run(&conn).expect("answer").to_json();
            bytes = json.len();
        });
        let rss = case_peak_rss(&db, name, params);
        println!(
            "{label:<28}{med:>12.1}{min:>12.1}{max:>12.1}   {:.1}x faster than the scan, {bytes} bytes of JSON, peak RSS {rss:.0} MiB{}",
            baseline.0 / med,
            if n < runs {
                format!(" ({n} runs)")
            } else {
                String::new()
            }
        );
    }

    deps_tab(&db, runs.min(7));

    if let Ok(base_bin) = std::env::var("WHAKAPAPA_BENCH_BASELINE_BIN") {
        // The same file ingested by this build and by one without rollups, alternating.
        let events = env_u64("WHAKAPAPA_INGEST_BENCH_EVENTS", 1_000_000);
        let g = generator();
        let dir = tempfile::tempdir().expect("temp dir");
        let purposes = dir.path().join("purposes.jsonl");
        std::fs::write(&purposes, g.purposes_jsonl()).expect("purposes");
        let log = dir.path().join("audit.log");
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&log).expect("log"));
            g.write_lines(0..events, &mut f).expect("write events");
            f.flush().expect("flush");
        }
        let ours = Path::new(env!("CARGO_BIN_EXE_whakapapa-collector"));
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for run in 0..3 {
            for (bin, rates) in [(ours, &mut with), (Path::new(&base_bin), &mut without)] {
                let db = dir.path().join(format!("ingest-{run}.db"));
                rates.push(ingest_file(bin, &db, &log, &purposes, events));
                let _ = std::fs::remove_file(&db);
                let _ = std::fs::remove_file(db.with_extension("db-wal"));
            }
        }
        let (w, wo) = (median(with.clone()), median(without.clone()));
        println!(
            "\ningest of a file of {events} events (median of 3): with rollups {w:.0} events/s, \
             without {wo:.0} events/s: rollups cost {:.1}% ({:.2}x); runs with {:?}, without {:?}",
            (1.0 - w / wo) * 100.0,
            w / wo,
            with.iter().map(|r| r.round()).collect::<Vec<_>>(),
            without.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
}

/// The web page's Dependencies tab on this database in headless Chromium, as `serve` answers
/// it: from navigation until the graph is drawn and no request is in flight, median of `runs`
/// fresh loads after one warm-up (bar: 1 s).
fn deps_tab(db: &Path, runs: usize) {
    use whakapapa_collector::http::{self, AppState, Limits};
    use whakapapa_testkit::browser;

    let Some((chromium, chromedriver)) = browser::tools("Dependencies tab timing") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = store::Store::open(db, store::Options::default()).expect("open the database");
        let s = store.clone();
        let run = tokio::task::spawn_blocking(move || {
            s.begin_run_blocking("serve", "127.0.0.1:0", None)
        })
        .await
        .expect("join")
        .expect("begin a run");
        let state = AppState::new(store, run, None, None, Limits::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, http::app(state)).await });
        let (_driver, c) = browser::start(&chromium, &chromedriver).await;
        let url = format!("http://{addr}/?view=deps");
        let mut ms = Vec::new();
        let mut edges = serde_json::Value::Null;
        for i in 0..=runs {
            c.goto("about:blank").await.expect("blank page");
            let t = Instant::now();
            c.goto(&url).await.expect("load the page");
            browser::idle(&c).await;
            edges = browser::js(
                &c,
                "return document.querySelectorAll('#deps-graph .edge').length",
            )
            .await;
            if i > 0 {
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let _ = c.close().await;
        let (min, max) = (
            ms.iter().copied().fold(f64::MAX, f64::min),
            ms.iter().copied().fold(0.0, f64::max),
        );
        println!(
            "{:<28}{:>12.1}{:>12.1}{:>12.1}   headless Chromium, navigation to the graph drawn ({edges} edges; bar 1000 ms)",
            "Dependencies tab (page)",
            median(ms),
            min,
            max
        );
    });
}
