//! `gate`: the release-blocking conformance check (`whakapapa-collector gate --release R`,
//! `GET /api/v1/gate?release=R`). It fails when (a) a conformance-eligible endpoint of the
//! release is hit by no conformance test, or (b) an endpoint on the pending eligible list is
//! already hit by one (it should leave the list).
//!
//! # Example
//! ```
//! use whakapapa_collector::query::gate::Baseline;
//! let b = Baseline::from_json(br#"{"release": "1.35.0", "endpoints": [
//!     {"endpoint": "listCoreV1NamespacedPod", "conf_tested": true},
//!     {"endpoint": "listCoreV1Node", "conf_tested": false}]}"#).unwrap();
//! assert_eq!(b.release.as_deref(), Some("1.35.0"));
//! assert!(b.was_conf_tested("listCoreV1NamespacedPod"));
//! assert!(b.lists("listCoreV1Node") && !b.was_conf_tested("listCoreV1Node"));
//! ```
//!
//! "Hit by a conformance test" is `counting=conformance`: a request of the runs read, mapped to
//! the endpoint in the release's catalog, from a test whose name has `[Conformance]`. Eligible
//! and pending are the catalog's (KEP.md, "Conformance gate"). With a baseline (an APISnoop
//! coverage export, ours or APISnoop's), a check fails only on what got worse: an eligible
//! endpoint the baseline also had untested, or a pending endpoint it also had tested, is
//! `known`, not a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::runs::{self, RunSel, Runs};
use super::sql::release;
use super::{Answer, Filters, Given, Param, Query, Render, Result, Table};

/// `gate`'s options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Only these runs' requests (default: every run).
    pub run: Option<RunSel>,
    /// Fail only on what got worse than this (the CLI's `gate --baseline FILE`).
    pub baseline: Option<Baseline>,
}

impl Query for Params {
    const NAME: &'static str = "gate";
    const PARAMS: &'static [Param] = &[Param::value(
        "run",
        "RUN",
        "Only the requests of these runs: a run id, ci:BUILD, ci:JOB/BUILD or release:LABEL",
    )];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            run: g.value("run", runs::EXPECTED)?,
            baseline: None,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        let (rid, label, _) = release(conn, f)?;
        let g = run(
            conn,
            f,
            (rid, &label),
            self.run.as_ref(),
            self.baseline.as_ref(),
        )?;
        Ok(Answer::new(g))
    }
}

/// An earlier coverage, in APISnoop's layout: what the gate compares against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    /// Its release label, when it says.
    pub release: Option<String>,
    listed: BTreeSet<String>,
    conf_tested: BTreeSet<String>,
}

impl Baseline {
    /// Parses APISnoop's coverage JSON (`resources/coverage/<release>.json`, or
    /// `query coverage --export apisnoop`): its `endpoints`, each with `endpoint` and
    /// `conf_tested`.
    pub fn from_json(bytes: &[u8]) -> std::result::Result<Baseline, String> {
        #[derive(Deserialize)]
        struct Raw {
            release: Option<String>,
            endpoints: Vec<RawEndpoint>,
        }
        #[derive(Deserialize)]
        struct RawEndpoint {
            endpoint: String,
            #[serde(default)]
            conf_tested: bool,
        }
        let raw: Raw = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "line {} column {}: {e}: expected APISnoop's coverage JSON",
                e.line(),
                e.column()
            )
        })?;
        let mut b = Baseline {
            release: raw.release,
            ..Baseline::default()
        };
        for e in raw.endpoints {
            if e.conf_tested {
                b.conf_tested.insert(e.endpoint.clone());
            }
            b.listed.insert(e.endpoint);
        }
        Ok(b)
    }

    /// Whether the baseline has the endpoint at all.
    pub fn lists(&self, endpoint: &str) -> bool {
        self.listed.contains(endpoint)
    }

    /// Whether the baseline had it hit by a conformance test.
    pub fn was_conf_tested(&self, endpoint: &str) -> bool {
        self.conf_tested.contains(endpoint)
    }
}

/// Which check an endpoint is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// (a) Eligible: must be hit by a conformance test.
    Eligible,
    /// (b) Pending eligibility: must not be hit by one yet.
    Pending,
}

/// The outcome of one endpoint's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fails the gate.
    Fail,
    /// Would fail, but the baseline was no better: does not fail the gate.
    Known,
    /// Passes.
    Pass,
}

/// One endpoint under one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateCheck {
    /// Which check.
    pub check: Check,
    /// Its outcome.
    pub status: Status,
    /// operationId.
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Path template.
    pub path: String,
    /// Category.
    pub category: String,
    /// Conformance tests that hit it.
    pub conformance_tests: Vec<String>,
    /// Other tests that hit it (candidates for promotion).
    pub other_tests: Vec<String>,
    /// What to do, when it does not pass.
    pub action: Option<String>,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    /// Release label.
    pub release: String,
    /// The runs read; `None`: every run.
    pub runs: Option<Runs>,
    /// The baseline's release label, when a baseline was given (`""` if it names none).
    pub baseline: Option<String>,
    /// No check failed.
    pub pass: bool,
    /// Eligible endpoints.
    pub eligible: u64,
    /// Of those, hit by a conformance test.
    pub conf_tested_eligible: u64,
    /// Endpoints pending eligibility.
    pub pending: u64,
    /// Of those, hit by a conformance test.
    pub conf_tested_pending: u64,
    /// Checks failed.
    pub failed: u64,
    /// Checks that would fail but for the baseline.
    pub known: u64,
    /// Every eligible and pending endpoint: failures first, then known, then passes.
    pub checks: Vec<GateCheck>,
}

/// Answers `gate` for the release `rid` (labelled `label`).
pub fn run(
    conn: &Connection,
    f: &Filters,
    (rid, label): (i64, &str),
    sel: Option<&RunSel>,
    baseline: Option<&Baseline>,
) -> Result<Gate> {
    let runs = sel.map(|s| s.resolve(conn)).transpose()?;
    let hits = runs::test_hits(conn, f, runs.as_ref().map(|r| r.runs.as_slice()))?;
    let tests = runs::tests(conn)?;
    let catalog = runs::endpoints(conn, Some(rid))?;
    // endpoint id -> (conformance tests, other tests)
    let mut by: BTreeMap<i64, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for h in &hits {
        let Some(t) = tests.get(&h.test) else {
            continue;
        };
        let e = by.entry(h.endpoint).or_default();
        if t.conformance { &mut e.0 } else { &mut e.1 }.insert(t.name.as_str());
    }
    let mut g = Gate {
        release: label.to_owned(),
        runs,
        baseline: baseline.map(|b| b.release.clone().unwrap_or_default()),
        pass: true,
        eligible: 0,
        conf_tested_eligible: 0,
        pending: 0,
        conf_tested_pending: 0,
        failed: 0,
        known: 0,
        checks: Vec::new(),
    };
    let none = (BTreeSet::new(), BTreeSet::new());
    for (id, e) in catalog {
        let check = match (e.eligible, e.pending) {
            (true, _) => Check::Eligible,
            (false, true) => Check::Pending,
            (false, false) => continue,
        };
        let (conf, other) = by.get(&id).unwrap_or(&none);
        let conf_tested = !conf.is_empty();
        let bad = match check {
            Check::Eligible => {
                g.eligible += 1;
                g.conf_tested_eligible += conf_tested as u64;
                !conf_tested
            }
            Check::Pending => {
                g.pending += 1;
                g.conf_tested_pending += conf_tested as u64;
                conf_tested
            }
        };
        // Known: the baseline lists the endpoint and was in the same state.
        let known = bad
            && baseline.is_some_and(|b| {
                b.lists(&e.endpoint) && b.was_conf_tested(&e.endpoint) == conf_tested
            });
        let status = match (bad, known) {
            (false, _) => Status::Pass,
            (true, true) => Status::Known,
            (true, false) => Status::Fail,
        };
        let action = bad.then(|| match check {
            Check::Eligible if other.is_empty() => {
                "write a conformance test that calls it".to_owned()
            }
            Check::Eligible => {
                "no conformance test calls it; the tests listed do: promote one, or write one"
                    .to_owned()
            }
            Check::Pending => {
                "a conformance test calls it: remove it from pending_eligible_endpoints.yaml"
                    .to_owned()
            }
        });
        g.failed += (status == Status::Fail) as u64;
        g.known += (status == Status::Known) as u64;
        let list = |s: &BTreeSet<&str>| s.iter().map(|t| t.to_string()).collect();
        g.checks.push(GateCheck {
            check,
            status,
            endpoint: e.endpoint,
            method: e.method,
            path: e.path,
            category: e.category,
            conformance_tests: list(conf),
            other_tests: list(other),
            action,
        });
    }
    g.pass = g.failed == 0;
    g.checks
        .sort_by(|a, b| (a.status, a.check, &a.endpoint).cmp(&(b.status, b.check, &b.endpoint)));
    Ok(g)
}

fn join(list: &[String]) -> String {
    list.join("; ")
}

/// The totals as the table lists them.
#[derive(Default, Serialize)]
struct GateCells<'a> {
    release: &'a str,
    runs: &'a str,
    baseline: &'a str,
    result: &'a str,
    eligible: u64,
    conf_tested_eligible: u64,
    pending: u64,
    conf_tested_pending: u64,
    failed: u64,
    known: u64,
}

/// A check as the table lists it: the tests in one cell each.
#[derive(Default, Serialize)]
struct CheckCells<'a> {
    status: Option<Status>,
    check: Option<Check>,
    endpoint: &'a str,
    method: &'a str,
    path: &'a str,
    conformance_tests: String,
    other_tests: String,
    action: &'a str,
}

impl Render for Gate {
    /// The totals, and each check that does not pass (the actionable list).
    fn tables(&self) -> Vec<Table> {
        let totals = GateCells {
            release: &self.release,
            runs: self.runs.as_ref().map_or("all", |r| r.selector.as_str()),
            baseline: self.baseline.as_deref().unwrap_or_default(),
            result: if self.pass { "PASS" } else { "FAIL" },
            eligible: self.eligible,
            conf_tested_eligible: self.conf_tested_eligible,
            pending: self.pending,
            conf_tested_pending: self.conf_tested_pending,
            failed: self.failed,
            known: self.known,
        };
        let checks: Vec<CheckCells<'_>> = self
            .checks
            .iter()
            .filter(|x| x.status != Status::Pass)
            .map(|x| CheckCells {
                status: Some(x.status),
                check: Some(x.check),
                endpoint: &x.endpoint,
                method: &x.method,
                path: &x.path,
                conformance_tests: join(&x.conformance_tests),
                other_tests: join(&x.other_tests),
                action: x.action.as_deref().unwrap_or_default(),
            })
            .collect();
        vec![Table::of("gate", &[totals]), Table::of("checks", &checks)]
    }
}

/// XML text and attribute escaping (the five predefined entities; control characters other
/// than tab and newline, which XML 1.0 cannot carry, as `?`).
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The gate as JUnit XML for Prow and TestGrid: one test case per endpoint and check
/// (`conformance.eligible` / `conformance.pending` with the operationId as its name), a
/// `<failure>` for each that fails and `<skipped>` for each known from the baseline.
pub fn junit(g: &Gate) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let name = format!("whakapapa conformance gate {}", g.release);
    let _ = writeln!(
        s,
        "<testsuites name=\"{n}\" tests=\"{t}\" failures=\"{f}\" skipped=\"{k}\">",
        n = xml(&name),
        t = g.checks.len(),
        f = g.failed,
        k = g.known
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"{n}\" tests=\"{t}\" failures=\"{f}\" skipped=\"{k}\" errors=\"0\">",
        n = xml(&name),
        t = g.checks.len(),
        f = g.failed,
        k = g.known
    );
    for c in &g.checks {
        let class = match c.check {
            Check::Eligible => "conformance.eligible",
            Check::Pending => "conformance.pending",
        };
        let open = format!(
            "    <testcase classname=\"{class}\" name=\"{}\"",
            xml(&c.endpoint)
        );
        let detail = || {
            let mut d = format!("{} {}\n", c.method.to_uppercase(), c.path);
            if !c.conformance_tests.is_empty() {
                let _ = writeln!(d, "conformance tests: {}", join(&c.conformance_tests));
            }
            if !c.other_tests.is_empty() {
                let _ = writeln!(d, "other tests: {}", join(&c.other_tests));
            }
            d
        };
        let action = c.action.clone().unwrap_or_default();
        match c.status {
            Status::Pass => {
                let _ = writeln!(s, "{open}/>");
            }
            Status::Fail => {
                let kind = match c.check {
                    Check::Eligible => "untested",
                    Check::Pending => "pending-tested",
                };
                let _ = writeln!(
                    s,
                    "{open}>\n      <failure type=\"{kind}\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&action),
                    xml(&detail())
                );
            }
            Status::Known => {
                let _ = writeln!(
                    s,
                    "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(&format!("known in the baseline: {action}"))
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "gate",
            &[("run", "ci:ci-kubernetes-e2e/1790")],
            Params {
                run: Some(RunSel::Ci("ci-kubernetes-e2e/1790".into())),
                baseline: None,
            },
        );
        let err = |params: &[(&str, &str)]| {
            crate::query::Request::from_params("gate", params.iter().copied())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("base", "1")]),
            "unknown parameter `base` for query `gate`"
        );
        assert!(err(&[("run", "ci:")]).starts_with("bad value \"ci:\" for `run`"));
    }

    #[test]
    fn xml_escapes_markup_and_controls() {
        assert_eq!(
            xml("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;?\n"
        );
    }

    #[test]
    fn baseline_errors_say_where() {
        let e = Baseline::from_json(b"{\"endpoints\": 3}").unwrap_err();
        assert!(e.starts_with("line 1 column"), "{e}");
        assert!(e.contains("APISnoop's coverage JSON"), "{e}");
    }
}
