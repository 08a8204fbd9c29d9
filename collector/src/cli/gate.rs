//! `whakapapa-collector gate --release R [--run RUN] [--baseline FILE] [--junit FILE]`: the
//! conformance gate ([`crate::query::gate`]) for CI; exits non-zero when it fails.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;

use super::query::{FilterArgs, open};
use crate::query::gate::{self, Baseline, Gate};
use crate::query::{Format, Query as _, Request};

/// `gate` arguments.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// SQLite database file.
    #[arg(long, env = "WHAKAPAPA_DB", default_value = "whakapapa.db")]
    pub db: PathBuf,
    /// Only the requests of these runs: a run id, ci:BUILD, ci:JOB/BUILD or release:LABEL
    /// (default: every run).
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// An APISnoop coverage export (APISnoop's, or `query coverage --export apisnoop`): fail
    /// only on what got worse than it.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Also write the checks as JUnit XML (for Prow and TestGrid).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub filters: FilterArgs,
}

/// Runs `gate`: prints the answer, writes the JUnit file, fails when a check fails.
pub fn run(args: GateArgs) -> anyhow::Result<()> {
    let format: Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let f = &args.filters;
    let mut params: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("release", &f.release),
        ("app", &f.app),
        ("test", &f.test),
        ("sig", &f.sig),
        ("since", &f.since),
        ("until", &f.until),
        ("run", &args.run),
    ] {
        if let Some(v) = v {
            params.push((k, v.clone()));
        }
    }
    for (k, on) in [("conformance", f.conformance), ("ok-only", f.ok_only)] {
        if on {
            params.push((k, "true".to_owned()));
        }
    }
    let request = Request::from_params("gate", params).context("bad gate")?;
    let mut options = request
        .options::<gate::Params>()
        .cloned()
        .expect("a gate request has the gate's options");
    if let Some(path) = &args.baseline {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the baseline {}", path.display()))?;
        let b = Baseline::from_json(&bytes)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("bad baseline {}", path.display()))?;
        options.baseline = Some(b);
    }
    let conn = open(&args.db)?;
    let answer = options
        .run(&conn, &request.filters)
        .context("gate failed to run")?;
    let g: &Gate = answer.get().expect("a gate request is answered by a gate");
    if let Some(path) = &args.junit {
        std::fs::write(path, gate::junit(g))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(answer.render(format).as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write the answer")?;
    if !g.pass {
        bail!(
            "the conformance gate of {} fails: {} check(s) (listed above)",
            g.release,
            g.failed
        );
    }
    Ok(())
}
