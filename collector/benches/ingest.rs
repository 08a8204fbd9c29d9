//! Ingest speed end to end, with its baselines measured in the same run.
//!
//! - `parse`: bare `audit::parse_event` of the same lines, one thread (what serde_json can do);
//! - `sqlite`: plain inserts of 4-column rows in 10k-row transactions, no index (what SQLite
//!   can do);
//! - `ingest`: the real binary, `whakapapa-collector ingest` of a file of generated events
//!   (fresh database each run), events/s and its peak RSS (VmHWM), on four logs: a busy one
//!   (1,000 programs, 100 call paths each), a cluster's (200 programs, 20 call paths), a
//!   cluster-shaped one as kube-apiserver writes it (Go's escapes, RBAC annotations, ~270
//!   user agents of real programs, every endpoint) and the same with another user agent on
//!   every request; `parse` is measured on each log, the ratio is to that log's;
//! - `webhook`: 400-event `EventList` batches posted to `serve`'s router on a loopback socket,
//!   durable commits: latency until the 200, p50/p99; back to back by 1 and by 2 clients
//!   (the server saturated), and open loop as four API servers send (at their default 10
//!   batches/s each, the bar's load, then at 25);
//!   `/healthz` as baseline; then the busy log's batches into a fresh database, 1 client.
//!
//! Run: `cargo bench -p whakapapa-collector --bench ingest`
//! (`WHAKAPAPA_BENCH_EVENTS=10000000` for a longer run, `WHAKAPAPA_BENCH_ONLY=webhook` for the
//! webhook alone, `WHAKAPAPA_BENCH_RUNS=5` for more runs,
//! `WHAKAPAPA_BENCH_GENERATE=FILE` to only write the busy log's events to FILE, with
//! `WHAKAPAPA_BENCH_LOG=cluster` the cluster log's, `cluster-shaped` or `distinct-agents` those
//! logs', `WHAKAPAPA_BENCH_FROM=N` from request N; `WHAKAPAPA_BENCH_ONLY=cluster-shaped` for
//! the ingest of the cluster-shaped logs alone.)

use whakapapa_testkit::events;

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use whakapapa_collector::audit;
use whakapapa_collector::http::{self, AppState, Limits};
use whakapapa_collector::ingest::spec::release_record;
use whakapapa_collector::mapping::Mapper;
use whakapapa_collector::store::{self, Store};

use events::{Config, Events};
use whakapapa_testkit::figures::{env_u64, median};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// `label`, p50/p90/p99/max of the sorted latencies and how many.
fn latencies(label: &str, sorted: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{label:<44}{:>11.2} ms p50 {:>7.2} ms p90 {:>7.2} ms p99 {:>7.2} ms max  ({} batches)",
        ms(percentile(sorted, 0.50)),
        ms(percentile(sorted, 0.90)),
        ms(percentile(sorted, 0.99)),
        ms(*sorted.last().expect("latencies")),
        sorted.len(),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let n = env_u64("WHAKAPAPA_BENCH_EVENTS", 1_000_000);
    let runs = env_u64("WHAKAPAPA_BENCH_RUNS", 3).max(1) as usize;
    let catalog = events::catalog();
    // Two logs of the same size and shape of event, told apart by how many programs and call
    // paths they hold: the busy one has 100k call paths (172k distinct lines of code per 1M
    // events) to store, the cluster one 4k.
    // The busy log is also measured into a database that already knows its call paths.
    let logs = [
        (
            "busy log",
            "1,000 programs x 100 call paths",
            Config::busy_log(),
            true,
        ),
        (
            "cluster log",
            "200 programs x 20 call paths",
            Config::default(),
            false,
        ),
        (
            "cluster-shaped log",
            "a cluster's programs, ~270 user agents",
            Config::cluster(),
            false,
        ),
        (
            "cluster-shaped log, distinct user agents",
            "a build of its program per request",
            Config::cluster_distinct_agents(),
            false,
        ),
    ];
    let only = std::env::var("WHAKAPAPA_BENCH_ONLY").ok();
    if let Ok(path) = std::env::var("WHAKAPAPA_BENCH_GENERATE") {
        // Only write the events (for profiling or for other benchmarks), then stop.
        let config = match std::env::var("WHAKAPAPA_BENCH_LOG").as_deref() {
            Ok("cluster") => Config::default(),
            Ok("cluster-shaped") => Config::cluster(),
            Ok("distinct-agents") => Config::cluster_distinct_agents(),
            _ => Config::busy_log(),
        };
        let g = Events::new(&catalog, config);
        let from = env_u64("WHAKAPAPA_BENCH_FROM", 0);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
        g.write_lines(from..from + n, &mut f).expect("write events");
        f.flush().expect("flush");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The webhook first: fsync latency is not to be measured behind the kernel's writeback of
    // the gigabytes the ingest runs write.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // A cluster's programs: 200 of them, 20 call paths each. Steady state is what the bar is
    // about ("under continuous load"): a warm-up brings the programs in first.
    let cluster_shaped_only = only.as_deref() == Some("cluster-shaped");
    if !cluster_shaped_only {
        let cluster = Events::new(&catalog, Config::default());
        rt.block_on(webhook(&cluster, &catalog, dir.path()));
        rt.block_on(webhook_busy(&catalog, dir.path()));
    }
    if only.as_deref() == Some("webhook") {
        return;
    }
    let log = dir.path().join("audit.log");
    let mut results = Vec::new();
    let sqlite = median((0..runs).map(|_| sqlite_rate(dir.path(), n)).collect());
    for (label, about, config, then_next) in logs {
        if cluster_shaped_only && config.shape != events::Shape::Cluster {
            continue;
        }
        let g = Events::new(&catalog, config);
        let started = Instant::now();
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&log).expect("log file"));
            g.write_lines(0..n, &mut f).expect("write events");
            f.flush().expect("flush");
        }
        let size = std::fs::metadata(&log).expect("log").len();
        println!(
            "\n{label} ({about}): {n} events over {} endpoints, {} user agents, {:.0} bytes/event, {:.1} MiB, generated in {:.1}s",
            g.endpoints(),
            g.user_agents()
                .map_or("all distinct".to_owned(), |n| n.to_string()),
            size as f64 / n as f64,
            size as f64 / (1 << 20) as f64,
            started.elapsed().as_secs_f64()
        );
        // Each log's own: how fast serde_json reads an event depends on its shape.
        let parse = median((0..runs).map(|_| parse_rate(&log)).collect());
        let mut rates = Vec::new();
        let mut peaks = Vec::new();
        let mut kept = None;
        for run in 0..runs {
            let db = dir.path().join(format!("ingest-{run}.db"));
            let (rate, peak) = ingest_rate(&db, &log, run == 0);
            rates.push(rate);
            peaks.push(peak);
            match kept {
                None if then_next => kept = Some(db),
                _ => remove_db(&db),
            }
        }
        results.push((label.to_owned(), parse, rates, peaks));
        if let Some(db) = kept {
            // A database that knows the log's programs and call paths: the next events of the
            // same log into it, as a day's CI log joins yesterday's.
            let (mut rates, mut peaks) = (Vec::new(), Vec::new());
            for k in 1..=runs as u64 {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&log).expect("log file"));
                g.write_lines(k * n..(k + 1) * n, &mut f)
                    .expect("write events");
                f.flush().expect("flush");
                let (rate, peak) = ingest_rate(&db, &log, false);
                rates.push(rate);
                peaks.push(peak);
            }
            remove_db(&db);
            results.push((
                format!("{label}, next {n} (paths known)"),
                parse,
                rates,
                peaks,
            ));
        }
    }
    println!("\n{:<72}{:>14}", "median of runs", format!("{runs} runs"));
    println!(
        "{:<72}{:>14.0}  rows/s (baseline)",
        "sqlite: plain 4-column inserts, 10k/tx", sqlite
    );
    for (label, parse, rates, peaks) in results {
        let ingest = median(rates.clone());
        println!(
            "{:<72}{:>14.0}  events/s (baseline)",
            format!("parse: audit::parse_event, 1 thread, {label}"),
            parse
        );
        println!(
            "{:<72}{:>14.0}  events/s  = {:.2}x parse, {:.2}x sqlite  (runs: {})",
            format!("ingest, {label}"),
            ingest,
            ingest / parse,
            ingest / sqlite,
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "{:<72}{:>14}  MiB peak RSS (max of runs: {} MiB)",
            "  VmHWM",
            median(peaks.clone()),
            peaks.iter().copied().fold(0.0, f64::max)
        );
    }
}

/// Events per second `audit::parse_event` reaches on the file's lines, one thread.
fn parse_rate(log: &Path) -> f64 {
    let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(log).expect("log"));
    let mut n = 0u64;
    let mut line = Vec::new();
    let mut reader = f;
    let start = Instant::now();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        let e = audit::parse_event(&line).expect("a generated event parses");
        std::hint::black_box(e);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Rows per second SQLite takes as plain 4-column inserts in 10k-row transactions.
fn sqlite_rate(dir: &Path, n: u64) -> f64 {
    let path = dir.join("plain.db");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join("plain.db-wal"));
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, audit_id TEXT NOT NULL, uri TEXT NOT NULL, \
         code INTEGER) STRICT",
    )
    .expect("table");
    let start = Instant::now();
    let mut i = 0u64;
    while i < n {
        let tx = conn.transaction().expect("tx");
        {
            let mut s = tx
                .prepare_cached("INSERT INTO t (audit_id, uri, code) VALUES (?1, ?2, ?3)")
                .expect("prepare");
            for j in i..(i + 10_000).min(n) {
                s.execute(rusqlite::params![
                    format!("{j:08x}-5d6e-4f70-8a91-b2c3d4e5f607"),
                    "/api/v1/namespaces/default/pods?limit=500",
                    200
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
        i += 10_000;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Runs the binary on the file into `db`; events/s and its peak RSS in MiB.
fn ingest_rate(db: &Path, log: &Path, show_summary: bool) -> (f64, f64) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .args(["ingest", "--db"])
        .arg(db)
        .arg(log)
        .output()
        .expect("run whakapapa-collector");
    let secs = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figure = |label: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {label} in:\n{stdout}"))
    };
    let events = figure("events read");
    if show_summary {
        print!("\nfirst run's summary:\n{stdout}");
    }
    (events / secs, figure("peak memory"))
}

fn remove_db(db: &Path) {
    let _ = std::fs::remove_file(db);
    let _ = std::fs::remove_file(db.with_extension("db-wal"));
    let _ = std::fs::remove_file(db.with_extension("db-shm"));
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Posts one webhook batch; the time until its answer (a success).
async fn post(client: &HttpClient, addr: std::net::SocketAddr, body: Bytes) -> Duration {
    let req = ::http::Request::post(format!("http://{addr}/audit"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("request");
    let t = Instant::now();
    let resp = client.request(req).await.expect("post");
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    assert!(status.is_success(), "{status}");
    t.elapsed()
}

/// `serve`'s router on a loopback socket over a fresh database at `db`, as `serve` opens it.
async fn serve_on_loopback(
    catalog: &whakapapa_collector::catalog::Catalog,
    db: std::path::PathBuf,
) -> std::net::SocketAddr {
    // As `serve` opens it.
    let store = Store::open(
        db,
        store::Options::default()
            .durable(true)
            .fold(store::Fold::webhook()),
    )
    .expect("store");
    let (release, run) = {
        let store = store.clone();
        let catalog = catalog.clone();
        tokio::task::spawn_blocking(move || {
            let release = store
                .store_release_blocking(release_record(
                    &catalog,
                    "1.36.0".into(),
                    b"{}".to_vec(),
                    None,
                ))
                .expect("release");
            let run = store
                .begin_run_blocking("serve", "bench", Some(release))
                .expect("run");
            (release, run)
        })
        .await
        .expect("setup")
    };
    let state = AppState::new(
        store,
        run,
        Some(release),
        Some(Arc::new(Mapper::new(catalog))),
        Limits::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, http::app(state)).await });
    addr
}

/// `bodies` posted by `concurrency` clients, each sending its share back to back: the
/// latencies, sorted, and the seconds it took.
async fn back_to_back(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    bodies: &[Bytes],
    concurrency: usize,
) -> (Vec<Duration>, f64) {
    let started = Instant::now();
    let per = bodies.len() / concurrency;
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let client = client.clone();
        let mine: Vec<Bytes> = bodies[c * per..(c + 1) * per].to_vec();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for body in mine {
                lat.push(post(&client, addr, body).await);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client"));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    (lat, secs)
}

/// p50/p99 of 400-event webhook batches acknowledged (durably committed) under continuous load.
async fn webhook(g: &Events, catalog: &whakapapa_collector::catalog::Catalog, dir: &Path) {
    let addr = serve_on_loopback(catalog, dir.join("webhook.db")).await;

    // Long enough for several rollup folds (every 5 s) to fall inside each measured phase.
    let batches = env_u64("WHAKAPAPA_BENCH_BATCHES", 2000);
    let warmup = env_u64("WHAKAPAPA_BENCH_WARMUP", 100);
    // Fresh requests for every phase: warm-up, then 1 client, then 2 clients.
    let body =
        |b: u64| Bytes::from(g.event_list(100_000_000 + b * 400..100_000_000 + (b + 1) * 400));
    let phases: Vec<(usize, Vec<Bytes>)> = vec![
        (1, (0..warmup).map(body).collect()),
        (1, (warmup..warmup + batches).map(body).collect()),
        (
            2,
            (warmup + batches..warmup + 2 * batches).map(body).collect(),
        ),
    ];
    let open_loop: Vec<Bytes> = (warmup + 2 * batches..warmup + 3 * batches)
        .map(body)
        .collect();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    for (phase, (concurrency, bodies)) in phases.into_iter().enumerate() {
        let (lat, secs) = back_to_back(&client, addr, &bodies, concurrency).await;
        let mut health = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            let resp = client
                .request(
                    ::http::Request::get(format!("http://{addr}/healthz"))
                        .body(Full::new(Bytes::new()))
                        .expect("request"),
                )
                .await
                .expect("get");
            let _ = resp.into_body().collect().await;
            health.push(t.elapsed());
        }
        health.sort();
        let label = if phase == 0 {
            "webhook: warm-up (new programs), 1 client".to_owned()
        } else {
            format!("webhook: 400-event batch, {concurrency} client(s)")
        };
        println!(
            "{}  ({} clients, {:.0} events/s; /healthz p99 {:.3} ms)",
            latencies(&label, &lat),
            concurrency,
            lat.len() as f64 * 400.0 / secs,
            percentile(&health, 0.99).as_secs_f64() * 1e3,
        );
    }
    // Open loop, as kube-apiserver's webhook backend sends: each API server posts a batch on
    // its own clock whether or not the last one was answered. Four of them at the bar's rate
    // (--audit-webhook-batch-throttle-qps, 10 by default: 16k events/s), then at 25 batches/s
    // each (40k events/s).
    let (slow, fast) = open_loop.split_at(open_loop.len() * 2 / 5);
    for (bodies, qps) in [(slow, 10.0), (fast, 25.0)] {
        let (lat, secs) = open_loop_of(&client, addr, bodies, 4, qps).await;
        println!(
            "{}  (4 senders x {qps} batches/s, {:.0} events/s)",
            latencies(
                &format!("webhook: open loop, 4 API servers at {qps}/s"),
                &lat
            ),
            lat.len() as f64 * 400.0 / secs,
        );
    }
}

/// `bodies` posted by `servers` senders, each on its own clock of `qps` batches a second: the
/// latencies, sorted, and the seconds it took.
async fn open_loop_of(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    bodies: &[Bytes],
    servers: usize,
    qps: f64,
) -> (Vec<Duration>, f64) {
    let started = Instant::now();
    let per = bodies.len() / servers;
    let mut senders = Vec::new();
    for s in 0..servers {
        let client = client.clone();
        let mine: Vec<Bytes> = bodies[s * per..(s + 1) * per].to_vec();
        senders.push(tokio::spawn(async move {
            // Independent servers: their clocks spread over the period.
            let period = Duration::from_secs_f64(1.0 / qps);
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + period * s as u32 / servers as u32,
                period,
            );
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut posts = Vec::new();
            for body in mine {
                tick.tick().await;
                let client = client.clone();
                posts.push(tokio::spawn(async move { post(&client, addr, body).await }));
            }
            let mut lat = Vec::new();
            for p in posts {
                lat.push(p.await.expect("post"));
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for s in senders {
        lat.extend(s.await.expect("sender"));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    (lat, secs)
}

/// The busy log's batches (1,000 programs with 100 call paths each) back to back by one client
/// into a fresh database: each brings new call paths and lines of code, and has many more
/// distinct rollup keys than a cluster's batch.
async fn webhook_busy(catalog: &whakapapa_collector::catalog::Catalog, dir: &Path) {
    let g = Events::new(catalog, Config::busy_log());
    let addr = serve_on_loopback(catalog, dir.join("webhook-busy.db")).await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let batches = env_u64("WHAKAPAPA_BENCH_BATCHES", 2000) / 2;
    let bodies: Vec<Bytes> = (0..batches)
        .map(|b| Bytes::from(g.event_list(b * 400..(b + 1) * 400)))
        .collect();
    let (lat, secs) = back_to_back(&client, addr, &bodies, 1).await;
    println!(
        "{}  (1 client, {:.0} events/s)",
        latencies("webhook: busy log's batches, new file, 1 client", &lat),
        lat.len() as f64 * 400.0 / secs,
    );
}
