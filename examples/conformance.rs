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
//! Two kwok nodes stand in for kubelets. `--focus` and `--skip` are ginkgo regular expressions
//! over the `[Conformance]` tests (default: those that need no running container, see `FOCUS`
//! and `SKIP`); `--procs` runs them in parallel; `--timeout` bounds the run. It
//! writes `audit.log.gz`, `junit_01.xml` (e2e.test's report) and `results.txt` (one line per
//! test: `passed`, `failed` or `skipped`, and its name) into `--out`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use whakapapa_e2e::cluster::{ControlPlane, KubeBinaries, Options, collector_binary};

/// Which `[Conformance]` tests run (a ginkgo label filter): not the serial, slow or disruptive
/// ones, which need a cluster of their own.
const LABELS: &str = "Conformance && !Serial && !Slow && !Disruptive";

/// The tests that can pass here: kwok's nodes run no containers, so the API machinery and
/// each group's API lifecycle tests, not what needs a container's output, exec or networking.
const FOCUS: &str = concat!(
    r"\[sig-api-machinery\]|\[sig-auth\]|\[sig-instrumentation\]|\[sig-architecture\]|",
    r"\[sig-scheduling\] LimitRange|lifecycle|API operations|should patch|should list|",
    r"should delete a collection|should run through|should apply changes|should manage|",
    r"should validate|should support|should update|should replace|should get|should test"
);

/// What needs a container to run: webhook and API servers in pods, exec, logs, probes.
const SKIP: &str = concat!(
    r"AdmissionWebhook|Aggregator|ConversionWebhook|should mount|mount an API token|",
    r"OIDC discovery|Kubectl|Proxy|Networking|DNS|consumable|Probing|Container Runtime|",
    r"Lifecycle Hook|InitContainer|Downward API|Projected|EmptyDir|Secrets should be|",
    r"ConfigMap should be|Variable Expansion|HostPort|Ephemeral|Sysctls|Security Context|",
    // Failed in the run that chose this list (tests/fixtures/real-conformance/README.md):
    // a container's output, exec or logs, a node's address, or waits on kubelet behaviour.
    r"remote command execution|retrieving logs|host IP|multiple EndpointSlices|Subpath|",
    r"proportional scaling|KubeletManagedEtcHosts|CustomResourceFieldSelectors|ReplaceConcurrent|",
    r"should apply changes to a job status"
);

struct Args {
    out: PathBuf,
    focus: String,
    skip: String,
    timeout: Duration,
    procs: u32,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        out: PathBuf::from("tests/fixtures/real-conformance"),
        focus: FOCUS.to_owned(),
        skip: SKIP.to_owned(),
        timeout: Duration::from_secs(40 * 60),
        procs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => args.out = value()?.into(),
            "--focus" => args.focus = value()?,
            "--skip" => args.skip = value()?,
            "--timeout" => args.timeout = Duration::from_secs(value()?.parse::<u64>()? * 60),
            "--procs" => args.procs = value()?.parse()?,
            other => anyhow::bail!(
                "unknown flag {other} (--out, --focus, --skip, --timeout MINUTES, --procs N)"
            ),
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
        .kwok_nodes(2)
        .apiserver_arg(format!("--audit-log-path={}", log.display()))
        .apiserver_arg("--audit-log-format=json");
    let cluster = ControlPlane::start(options).await?;
    eprintln!("control plane up: {cluster:?}");

    let report = scratch.path().join("report");
    std::fs::create_dir_all(&report)?;
    let started = Instant::now();
    let status = tokio::process::Command::new(binaries.path("ginkgo"))
        .arg(format!("--procs={}", args.procs))
        .arg(format!("--timeout={}s", args.timeout.as_secs()))
        .arg(format!("--label-filter={LABELS}"))
        .arg(format!("--focus={}", args.focus))
        .arg(format!("--skip={}", args.skip))
        .arg(format!("--output-dir={}", report.display()))
        .arg("--junit-report=junit_01.xml")
        .arg("--no-color")
        .arg("-v")
        .arg(binaries.path("e2e.test"))
        .arg("--")
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig("admin")?.display()
        ))
        .arg("--provider=skeleton")
        // The kubectl built beside e2e.test, not whichever one PATH has.
        .arg(format!(
            "--kubectl-path={}",
            binaries.path("kubectl").display()
        ))
        .arg(format!("--report-dir={}", report.display()))
        .status()
        .await
        .context("cannot run ginkgo")?;
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
