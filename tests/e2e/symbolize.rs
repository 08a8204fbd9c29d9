//! A program built without debug info, then `symbolize` with its debug file: the lines of code
//! stored for its requests are those the same program with debug info gives.
//!
//! The example controller (built by `cargo test` with debug info) is split as a release
//! pipeline would: `objcopy --only-keep-debug` keeps the debug file, `objcopy --strip-debug`
//! makes the binary that runs (as cargo's `strip = "debuginfo"` does). Both binaries run
//! against the stand-in API server, with purpose on, their audit events and purposes going to
//! a real `whakapapa-collector serve`, one database each.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::shutdown::{collector_binary, serve};

/// `verb path function@file:line...`: one request's verb and path with the frames stored
/// for its purpose, innermost first.
type Loc = String;

fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples").join(name);
    assert!(
        bin.is_file(),
        "{} is missing: `cargo test` builds the examples",
        bin.display()
    );
    bin
}

fn objcopy(args: &[&str], from: &Path, to: &Path) {
    let status = Command::new("objcopy")
        .args(args)
        .arg(from)
        .arg(to)
        .status()
        .expect("running objcopy (binutils)");
    assert!(status.success(), "objcopy {args:?} failed");
}

/// The requests stored in `db` with their purposes' frames (no watches: when a watch ends
/// depends on the exit).
fn locs(db: &Path) -> BTreeSet<Loc> {
    let conn = whakapapa_collector::store::open_reader(db).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT r.verb, r.request_uri, \
               (SELECT group_concat(f.function || '@' || f.file || ':' || f.line, ' ') \
                  FROM (SELECT frame_id FROM purpose_frames WHERE purpose_id = p.id ORDER BY depth) pf \
                  JOIN frames f ON f.id = pf.frame_id) \
             FROM requests r LEFT JOIN purposes p ON p.id = r.purpose_id \
             WHERE r.verb != 'watch'",
        )
        .unwrap();
    statement
        .query_map([], |row| {
            let uri: String = row.get(1)?;
            let path = uri.split('?').next().unwrap_or_default().to_owned();
            let frames: Option<String> = row.get(2)?;
            Ok(format!(
                "{} {path} {}",
                row.get::<_, String>(0)?,
                frames.unwrap_or_default()
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn requests(db: &Path) -> i64 {
    let conn = whakapapa_collector::store::open_reader(db).unwrap();
    conn.query_row(
        "SELECT count(*) FROM requests WHERE verb != 'watch'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

/// Runs `program` with purpose on against a fresh stand-in API server whose audit events,
/// like the program's purposes, go to a `whakapapa-collector serve` on `db`; returns once
/// the collector has stored them and stopped.
async fn run_with_collector(program: &Path, db: &Path, dir: &Path) {
    let (mut collector, base) = serve(&collector_binary(), db).await;

    let config = whakapapa_testkit::StandInConfig::default()
        .with_audit_webhook(format!("{base}/audit"))
        .with_audit_batching(100, Duration::from_millis(20));
    let server = whakapapa_testkit::StandInApiServer::start(config)
        .await
        .unwrap();
    let kubeconfig = dir.join(format!("{}.kubeconfig", db.file_stem().unwrap().display()));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters: [{{name: s, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\n\
             contexts: [{{name: c, context: {{cluster: s, user: u, namespace: default}}}}]\n",
            server.url()
        ),
    )
    .unwrap();
    let mut program_run = Command::new(program);
    program_run
        .args(["--reconciles", "2"])
        .env("KUBECONFIG", &kubeconfig)
        .env("KUBE_CLIENT_SUBMIT_PURPOSE", "1")
        .env("WHAKAPAPA_COLLECTOR_URL", &base)
        .env_remove("WHAKAPAPA_SPOOL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || program_run.output()),
    )
    .await
    .expect("the program ran for over 120 s")
    .unwrap()
    .unwrap();
    assert!(
        output.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    server.flush_audit().await;
    // Every request the stand-in audited reached the collector before it stops.
    let audited = server.audit_stats();
    assert_eq!(
        (audited.events_dropped, audited.batches_lost),
        (0, 0),
        "{audited:?}"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &collector.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || collector.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "serve exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_without_debug_info_gets_its_lines_of_code_from_symbolize() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("controller");
    std::fs::copy(example_binary("controller"), &full).unwrap();
    let debug = dir.path().join("controller.debug");
    let stripped = dir.path().join("controller.stripped");
    objcopy(&["--only-keep-debug"], &full, &debug);
    objcopy(&["--strip-debug"], &full, &stripped);

    let (full_db, stripped_db) = (dir.path().join("full.db"), dir.path().join("stripped.db"));
    run_with_collector(&full, &full_db, dir.path()).await;
    run_with_collector(&stripped, &stripped_db, dir.path()).await;

    let want = locs(&full_db);
    let file = "examples/controller/main.rs";
    for function in ["ensure_shop_pod", "count_shop_pods", "reconcile"] {
        assert!(
            want.iter()
                .any(|l| l.contains(&format!("::{function}@{file}:"))),
            "the program with debug info names {function}: {want:#?}"
        );
    }
    // Without debug info the program could name no frame: its purposes wait for symbolize.
    let before = locs(&stripped_db);
    assert_eq!(requests(&stripped_db), requests(&full_db));
    assert!(
        before.iter().all(|l| !l.contains(file)),
        "no frame before symbolize: {before:#?}"
    );

    let out = Command::new(collector_binary())
        .args(["symbolize", "--db"])
        .arg(&stripped_db)
        .arg(&debug)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains(" purposes named"), "{printed}");
    let after = locs(&stripped_db);
    assert_eq!(after, want, "symbolize printed: {printed}");
    println!(
        "symbolize printed:\n{printed}stored after it:\n{}",
        after.iter().cloned().collect::<Vec<_>>().join("\n")
    );

    // Again: nothing is waiting, nothing changes.
    let again = Command::new(collector_binary())
        .args(["symbolize", "--db"])
        .arg(&stripped_db)
        .arg(&debug)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains(": 0 purposes named"));
    assert_eq!(locs(&stripped_db), want);
}
