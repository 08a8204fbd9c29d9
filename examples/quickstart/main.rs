//! The whole whakapapa loop on one machine, no cluster needed:
//!
//! 1. the collector, in-process, on `./whakapapa-quickstart.db` (recreated each run) with the
//!    embedded Kubernetes 1.36 endpoint catalog;
//! 2. a stand-in API server that answers kube-rs and POSTs its audit events to the collector's
//!    `/audit`, batched as kube-apiserver's webhook backend does;
//! 3. a small controller (`controller.rs`) whose `kube::Client` carries the whakapapa layer,
//!    purpose switched on, full purposes sent to the collector's `/purposes`;
//! 4. then the collector's answers: which lines of code hit which endpoints, and coverage —
//!    from the same queries as `whakapapa-collector query loc` and `query coverage`.
//!
//! Run it with `cargo run --example quickstart`. With `--real` (after `scripts/kube-binaries.sh`
//! and `cargo build -p whakapapa-collector`) the same controller runs against a real
//! kube-apiserver, etcd, kube-controller-manager and kube-scheduler on loopback, auditing to a
//! real `whakapapa-collector serve` (`whakapapa_e2e::cluster`).
//!
//! The controller, the collector and the wiring (`controller.rs`, `collector.rs`, `wiring.rs`
//! beside this file) are the `quickstart` library (`lib.rs`), which the end-to-end test
//! `tests/e2e/quickstart.rs` runs too; this program is whose identity the requests carry.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use quickstart::{CONTROLLER_FILE, collector, controller, wiring};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let db = Path::new("whakapapa-quickstart.db");
    let real = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--real") => true,
        Some(other) => anyhow::bail!("unknown argument {other} (--real: a real control plane)"),
    };
    let answers = if real {
        let done = run_real(db).await?;
        println!(
            "kube-apiserver {} (real: etcd, kube-controller-manager, kube-scheduler beside it)",
            done.api_server
        );
        println!(
            "collector      whakapapa-collector serve at {} -> {}",
            done.collector_url,
            db.display()
        );
        collector::Answers::new(db)
    } else {
        let done = wiring::run_loop(db, whakapapa::identity!()).await?;
        let collector = &done.collector;
        println!(
            "collector     {} (catalog {}, database {})",
            collector.url(),
            collector.release(),
            db.display()
        );
        println!(
            "stand-in API  {} -> {} audit events in {} batch{} to {}/audit",
            done.api_server,
            done.audit.events_delivered,
            done.audit.batches_delivered,
            if done.audit.batches_delivered == 1 {
                ""
            } else {
                "es"
            },
            collector.url()
        );
        if !done.purposes.is_complete() {
            println!(
                "(the side channel did not deliver everything in 5 s: {}; some frames may be missing)",
                done.purposes
            );
        }
        let answers = collector.answers();
        done.collector.shutdown().await?;
        answers
    };
    report(&answers, db)
}

/// What the collector answers about the controller's run.
fn report(answers: &collector::Answers, db: &Path) -> anyhow::Result<()> {
    println!(
        "\nlines of code -> endpoints  (one row per `whakapapa-collector query loc FILE:LINE`)\n"
    );
    let rows = collector::loc_rows(answers, CONTROLLER_FILE)?;
    print!(
        "{}",
        collector::align(
            &["function", "line of code", "endpoint", "verb", "hits"],
            &rows
        )
    );
    if let Some(row) = rows
        .iter()
        .find(|r| r[0].ends_with("::ensure_configmap") && r[2].starts_with("create"))
    {
        println!(
            "\n$ whakapapa-collector query loc {} --db {}",
            row[1],
            db.display()
        );
        print!(
            "{}",
            answers.query_table("loc", &[("loc", row[1].as_str())])?
        );
    }
    println!(
        "\n$ whakapapa-collector query coverage --counting any --db {}  (totals)",
        db.display()
    );
    print!("{}", collector::coverage_totals(answers)?);
    Ok(())
}

/// What a run against the real control plane leaves behind.
struct FinishedReal {
    /// kube-apiserver's URL.
    api_server: String,
    /// The collector's URL.
    collector_url: String,
}

/// Runs the controller against a real control plane (`whakapapa_e2e::cluster`) whose
/// kube-apiserver audits to a real `whakapapa-collector serve`; once every request is stored,
/// stops it and copies its database to `db`.
async fn run_real(db: &Path) -> anyhow::Result<FinishedReal> {
    use whakapapa_e2e::cluster::{ControlPlane, KubeBinaries, Options, collector_binary};

    let binaries = KubeBinaries::find().map_err(anyhow::Error::msg)?;
    let mut cluster = ControlPlane::start(Options::new(binaries, collector_binary()?)).await?;
    let (client, layer) = wiring::controller_client(
        cluster.admin_config().await?,
        &cluster.side_channel_url(),
        whakapapa::identity!(),
    )?;
    controller::run(client)
        .await
        .context("the controller failed")?;
    let flushed =
        tokio::task::spawn_blocking(move || layer.handle().flush(Duration::from_secs(30))).await?;
    if !flushed.is_complete() {
        eprintln!("warning: the side channel did not deliver everything: {flushed}");
    }

    // kube-apiserver sends a batch at least every second: wait until what the collector knows
    // of the programs stops changing; on SIGTERM it folds its rollups and closes the file.
    let collector = cluster.collector_client().await?;
    let mut last = String::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let request = http::Request::get("/api/v1/apps?fresh=true").body(Vec::new())?;
        let now = collector.request_text(request).await?;
        if now == last {
            break;
        }
        last = now;
    }
    let stored = cluster.stop_collector()?;
    for suffix in ["-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    std::fs::copy(&stored, db).with_context(|| format!("cannot write {}", db.display()))?;
    Ok(FinishedReal {
        api_server: cluster.apiserver_url().to_owned(),
        collector_url: cluster.collector_url(),
    })
}
