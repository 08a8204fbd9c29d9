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

mod collector;
mod controller;
mod wiring;

use std::path::Path;
use std::process::ExitCode;

/// The controller's source file as purpose frames name it (relative to the package).
const CONTROLLER_FILE: &str = "examples/quickstart/controller.rs";

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
        let done = wiring::run_real(db).await?;
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
        let done = wiring::run_loop(db).await?;
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
