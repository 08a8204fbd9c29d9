//! A real conformance run: `e2e.test` (built by `scripts/kube-binaries.sh`) against the real
//! control plane on loopback, auditing both to the collector (webhook) and to a log file (the
//! apiserver's log backend), then the log gzipped as a fixture.
//!
//! ```sh
//! scripts/kube-binaries.sh
//! cargo build -p whakapapa-collector
//! cargo run --example conformance -- --out tests/fixtures/real-conformance
//! ```
//!
//! `--focus` and `--skip` are ginkgo regular expressions (default: the `[Conformance]` tests
//! that need no running containers, see `FOCUS` and `SKIP`); `--timeout` bounds the run. It
//! writes `audit.log.gz`, `junit_01.xml` (e2e.test's report) and `results.txt` (one line per
//! test: `passed`, `failed` or `skipped`, and its name) into `--out`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use whakapapa_e2e::cluster::{ControlPlane, KubeBinaries, Options, collector_binary};

/// The conformance tests this control plane can pass: no node runs containers here, so the API
/// machinery and the API lifecycles of every group, not what needs a pod to start.
const FOCUS: &str = r"\[Conformance\]";

/// What needs running containers, a node, networking or DNS.
const SKIP: &str = concat!(
    r"\[Serial\]|\[Disruptive\]|\[Slow\]|",
    r"should be consumable|should be able to|should run|should provide|should serve|",
    r"should function|should have|should support|should mount|should update labels|",
    r"should update annotations|should set|should allow|should delete a collection of pods|",
    r"should create|should call prestop|should invoke|should not|should observe|should verify|",
    r"should rollback|should retry|should be updated|should be possible|should get a host|",
    r"should contain|should succeed|should fail|should perform|should adopt|should release|",
    r"should list|should patch a Pod|should be restarted|should be submitted|should find a service|",
    r"should write|should report|should print|should expose|should add|should check|",
    r"should guarantee|should proxy|should run through the lifecycle of Pods|",
    r"Kubelet|Container Runtime|Container Lifecycle|InitContainer|Probing|Downward API|",
    r"Projected|EmptyDir|HostPath|Subpath|Variable Expansion|Networking|DNS|Proxy|Services|",
    r"Kubectl|Pods Extended|PreStop|Security Context|Sysctls|Ephemeral|Job|CronJob|",
    r"StatefulSet|Daemon|Deployment|ReplicationController|ReplicaSet|Garbage|",
    r"SchedulerPredicates|SchedulerPreemption|Taint|Aggregator|Webhook|Pods should"
);

struct Args {
    out: PathBuf,
    focus: String,
    skip: String,
    timeout: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        out: PathBuf::from("tests/fixtures/real-conformance"),
        focus: FOCUS.to_owned(),
        skip: SKIP.to_owned(),
        timeout: Duration::from_secs(40 * 60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => args.out = value()?.into(),
            "--focus" => args.focus = value()?,
            "--skip" => args.skip = value()?,
            "--timeout" => args.timeout = Duration::from_secs(value()?.parse::<u64>()? * 60),
            other => {
                anyhow::bail!("unknown flag {other} (--out, --focus, --skip, --timeout MINUTES)")
            }
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let args = args()?;
    let binaries = KubeBinaries::find().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.out)?;
    let scratch = tempfile::tempdir()?;
    let log = scratch.path().join("audit.log");
    let options = Options::new(binaries.clone(), collector_binary()?)
        .apiserver_arg(format!("--audit-log-path={}", log.display()))
        .apiserver_arg("--audit-log-format=json");
    let cluster = ControlPlane::start(options).await?;
    eprintln!("control plane up: {cluster:?}");

    let report = scratch.path().join("report");
    std::fs::create_dir_all(&report)?;
    let started = Instant::now();
    let status = tokio::process::Command::new(binaries.path("e2e.test"))
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig("admin")?.display()
        ))
        .arg("--provider=skeleton")
        .arg(format!("--ginkgo.focus={}", args.focus))
        .arg(format!("--ginkgo.skip={}", args.skip))
        .arg(format!("--ginkgo.timeout={}s", args.timeout.as_secs()))
        .arg("--ginkgo.no-color")
        .arg("--ginkgo.v")
        .arg(format!("--report-dir={}", report.display()))
        .arg("--allowed-not-ready-nodes=-1")
        .arg("--node-schedulable-timeout=1s")
        .arg("--e2e-verify-service-account=false")
        .status()
        .await
        .context("cannot run e2e.test")?;
    eprintln!("e2e.test exited {status} after {:?}", started.elapsed());

    // Let the last audit batches reach the webhook and the log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(cluster);

    let junit = std::fs::read_dir(&report)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "xml"))
        .context("e2e.test wrote no JUnit report")?;
    std::fs::copy(&junit, args.out.join("junit_01.xml"))?;
    let results = results(&std::fs::read_to_string(&junit)?);
    std::fs::write(args.out.join("results.txt"), &results)?;

    let raw = std::fs::read(&log).with_context(|| format!("no audit log at {}", log.display()))?;
    let gz = std::fs::File::create(args.out.join("audit.log.gz"))?;
    let mut encoder = flate2::write::GzEncoder::new(gz, flate2::Compression::best());
    encoder.write_all(&raw)?;
    encoder.finish()?;
    let passed = results.lines().filter(|l| l.starts_with("passed")).count();
    let failed = results.lines().filter(|l| l.starts_with("failed")).count();
    eprintln!(
        "{passed} passed, {failed} failed; {} audit events in {}",
        raw.iter().filter(|&&b| b == b'\n').count(),
        args.out.join("audit.log.gz").display()
    );
    Ok(())
}

/// One line per test case of a JUnit report: `passed`, `failed` or `skipped`, then its name.
fn results(junit: &str) -> String {
    let mut out = String::new();
    for case in junit.split("<testcase ").skip(1) {
        let Some(name) = case
            .split_once("name=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name)
        else {
            continue;
        };
        let body = case.split("</testcase>").next().unwrap_or(case);
        let state = if body.contains("<skipped") {
            "skipped"
        } else if body.contains("<failure") || body.contains("<error") {
            "failed"
        } else {
            "passed"
        };
        if state != "skipped" {
            out.push_str(&format!("{state} {}\n", unescape(name)));
        }
    }
    out
}

fn unescape(text: &str) -> String {
    text.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
