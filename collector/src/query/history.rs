//! `history`: coverage per ingest run (with the CI build it read) and per release, and how
//! coverage accumulates run after run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, fixed_time, when, who};
use super::{
    Answer, COUNTING, Counting, Error, Filters, Given, Param, Query, Render, Result, Table,
};

/// `history`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// What makes an endpoint tested.
    pub counting: Counting,
}

impl Query for Params {
    const NAME: &'static str = "history";
    const PARAMS: &'static [Param] = &[COUNTING];

    fn parse(g: &mut Given) -> Result<Self> {
        let counting = g.counting()?;
        // Indirect hits are attributed over all runs at once, not per run.
        if counting == Counting::Indirect {
            return Err(Error::BadValue {
                name: "counting".into(),
                value: "indirect".into(),
                expected: "tests, conformance or any (history counts run by run)",
            });
        }
        Ok(Params { counting })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(history(conn, f, self.counting)?))
    }
}

/// Coverage of one ingest run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunCoverage {
    /// Run id.
    pub run: i64,
    /// `ingest` or `serve`.
    pub kind: String,
    /// Paths or listen address.
    pub source: String,
    /// Start.
    pub started_at: String,
    /// End.
    pub finished_at: Option<String>,
    /// Release of its endpoints.
    pub release: Option<String>,
    /// The CI build it read (`ingest gs://...`, `ingest --prow-job`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiRun>,
    /// What this run's requests covered of the release.
    #[serde(flatten)]
    pub coverage: Covered,
    /// Tested by this run or an earlier one (same release).
    pub cumulative_tested_endpoints: u64,
    /// Eligible and tested by this run or an earlier one.
    pub cumulative_tested_eligible_endpoints: u64,
}

/// The CI build a run read, as its `started.json`, `finished.json` and `prowjob.json` say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CiRun {
    /// Prow job.
    pub job: Option<String>,
    /// Build id.
    pub build: Option<String>,
    /// `SUCCESS`, `FAILURE`, ... (none while the build runs).
    pub result: Option<String>,
    /// Kubernetes version tested.
    pub version: Option<String>,
    /// Kubernetes commit.
    pub commit: Option<String>,
    /// When the build started.
    pub build_started_at: Option<String>,
    /// When it finished.
    pub build_finished_at: Option<String>,
}

/// Coverage of one release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReleaseCoverage {
    /// Label.
    pub release: String,
    /// What all runs' requests covered of it.
    #[serde(flatten)]
    pub coverage: Covered,
}

/// What some requests covered of a release's endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Covered {
    /// Requests mapped to the release.
    pub requests: u64,
    /// Endpoints of the release.
    pub total_endpoints: u64,
    /// Tested.
    pub tested_endpoints: u64,
    /// Hit by a conformance test.
    pub conf_tested_endpoints: u64,
    /// Eligible endpoints of the release.
    pub eligible_endpoints: u64,
    /// Eligible and tested.
    pub tested_eligible_endpoints: u64,
    /// Eligible and hit by a conformance test.
    pub conf_tested_eligible_endpoints: u64,
}

impl Covered {
    /// No request yet, of a release with `total` endpoints, `eligible` of them eligible.
    fn of(total: u64, eligible: u64) -> Covered {
        Covered {
            total_endpoints: total,
            eligible_endpoints: eligible,
            ..Covered::default()
        }
    }

    /// Adds one endpoint's `hits`, tested or not, hit by a conformance test or not.
    fn add(&mut self, hits: u64, tested: bool, conf: bool, eligible: bool) {
        self.requests += hits;
        self.tested_endpoints += tested as u64;
        self.conf_tested_endpoints += conf as u64;
        self.tested_eligible_endpoints += (tested && eligible) as u64;
        self.conf_tested_eligible_endpoints += (conf && eligible) as u64;
    }
}

/// `history`: coverage per run and per release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct History {
    /// Runs, oldest first.
    pub runs: Vec<RunCoverage>,
    /// Releases, in load order.
    pub releases: Vec<ReleaseCoverage>,
}

/// The CI build's columns of a run, present when some run read one.
#[derive(Default, Serialize)]
struct CiCells<'a> {
    job: &'a str,
    build: &'a str,
    result: &'a str,
    version: &'a str,
}

/// A run as the table lists it.
#[derive(Default, Serialize)]
struct RunCells<'a> {
    run: i64,
    kind: &'a str,
    source: &'a str,
    started_at: &'a str,
    #[serde(flatten)]
    ci: Option<CiCells<'a>>,
    release: Option<&'a str>,
    #[serde(flatten)]
    coverage: Covered,
    cumulative_tested_endpoints: u64,
    cumulative_tested_eligible_endpoints: u64,
}

impl Render for History {
    fn tables(&self) -> Vec<Table> {
        let ci = self.runs.iter().any(|r| r.ci.is_some());
        let runs: Vec<RunCells<'_>> = self
            .runs
            .iter()
            .map(|r| {
                let c = r.ci.as_ref();
                fn cell(v: Option<&Option<String>>) -> &str {
                    v.and_then(|v| v.as_deref()).unwrap_or("")
                }
                RunCells {
                    run: r.run,
                    kind: &r.kind,
                    source: &r.source,
                    started_at: &r.started_at,
                    ci: ci.then(|| CiCells {
                        job: cell(c.map(|c| &c.job)),
                        build: cell(c.map(|c| &c.build)),
                        result: cell(c.map(|c| &c.result)),
                        version: cell(c.map(|c| &c.version)),
                    }),
                    release: r.release.as_deref(),
                    coverage: r.coverage,
                    cumulative_tested_endpoints: r.cumulative_tested_endpoints,
                    cumulative_tested_eligible_endpoints: r.cumulative_tested_eligible_endpoints,
                }
            })
            .collect();
        vec![
            Table::of("runs", &runs),
            Table::of("releases", &self.releases),
        ]
    }
}

/// `history`.
fn history(conn: &Connection, f: &Filters, counting: Counting) -> Result<History> {
    let mut q = Sql::default();
    let rel_cond = match &f.release {
        Some(l) => format!("WHERE label = {}", q.p(l.clone())),
        None => String::new(),
    };
    // Releases: (id, label, total, eligible).
    let releases = q.rows(
        conn,
        &format!(
            "SELECT r.id, r.label, (SELECT COUNT(*) FROM endpoints e WHERE e.release_id = r.id), \
             (SELECT COUNT(*) FROM endpoints e WHERE e.release_id = r.id AND e.eligible = 1) \
             FROM releases r {rel_cond} ORDER BY r.id"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                x.get::<_, String>(1)?,
                x.get::<_, i64>(2)? as u64,
                x.get::<_, i64>(3)? as u64,
            ))
        },
    )?;
    if releases.is_empty()
        && let Some(l) = &f.release
    {
        return Err(Error::UnknownRelease(l.clone()));
    }
    // (run, endpoint) -> (release, eligible, hits, test_hits, conf_hits)
    let mut q2 = Sql::default();
    let per_run = if f.narrows() {
        let j = who(&mut q2, f, "r");
        let w = when(&mut q2, f);
        format!(
            "SELECT r.run_id, e.release_id, e.eligible, r.endpoint_id, COUNT(*), SUM(r.test_id IS NOT NULL), \
             SUM(COALESCE(t.conformance, 0)) FROM requests r{j} JOIN endpoints e ON e.id = r.endpoint_id \
             LEFT JOIN tests t ON t.id = r.test_id WHERE {w} GROUP BY r.run_id, r.endpoint_id"
        )
    } else {
        "SELECT ru.run_id, e.release_id, e.eligible, ru.endpoint_id, ru.hits, ru.test_hits, ru.conf_hits \
         FROM run_usage ru JOIN endpoints e ON e.id = ru.endpoint_id"
            .to_owned()
    };
    type Use = (i64, bool, i64, u64, u64, u64);
    let mut by_run: BTreeMap<i64, Vec<Use>> = BTreeMap::new();
    for (run, u) in q2.rows(conn, &per_run, |x| {
        Ok((
            x.get::<_, i64>(0)?,
            (
                x.get::<_, i64>(1)?,
                x.get::<_, i64>(2)? != 0,
                x.get::<_, i64>(3)?,
                x.get::<_, i64>(4)? as u64,
                x.get::<_, i64>(5)? as u64,
                x.get::<_, i64>(6)? as u64,
            ),
        ))
    })? {
        by_run.entry(run).or_default().push(u);
    }
    let sql = Sql::default();
    let runs = sql.rows(
        conn,
        "SELECT r.id, r.kind, r.source, r.started_at, r.finished_at, l.label, r.release_id, \
         c.run_id, c.job, c.build, c.result, c.k8s_version, c.k8s_commit, c.started_at, c.finished_at \
         FROM ingest_runs r LEFT JOIN releases l ON l.id = r.release_id \
         LEFT JOIN ci_runs c ON c.run_id = r.id ORDER BY r.id",
        |x| {
            let ci = match x.get::<_, Option<i64>>(7)? {
                Some(_) => Some(CiRun {
                    job: x.get(8)?,
                    build: x.get(9)?,
                    result: x.get(10)?,
                    version: x.get(11)?,
                    commit: x.get(12)?,
                    build_started_at: x.get(13)?,
                    build_finished_at: x.get(14)?,
                }),
                None => None,
            };
            Ok((
                x.get::<_, i64>(0)?,
                x.get::<_, String>(1)?,
                x.get::<_, String>(2)?,
                x.get::<_, String>(3)?,
                x.get::<_, Option<String>>(4)?,
                x.get::<_, Option<String>>(5)?,
                x.get::<_, Option<i64>>(6)?,
                ci,
            ))
        },
    )?;
    let rel_by_id: HashMap<i64, &(i64, String, u64, u64)> =
        releases.iter().map(|r| (r.0, r)).collect();
    let tested = |hits: u64, test: u64, conf: u64| match counting {
        Counting::Tests => test > 0,
        Counting::Conformance => conf > 0,
        Counting::Any => hits > 0,
        // Refused when the request is parsed.
        Counting::Indirect => test > 0,
    };
    let mut cumulative: HashMap<i64, (BTreeSet<i64>, BTreeSet<i64>)> = HashMap::new();
    // Per release over all runs: endpoint -> (hits, test, conf, eligible).
    // release -> endpoint -> (hits, test_hits, conf_hits, eligible)
    type Totals = BTreeMap<i64, (u64, u64, u64, bool)>;
    let mut per_release: HashMap<i64, Totals> = HashMap::new();
    let mut out_runs = Vec::new();
    for (id, kind, source, started_at, finished_at, label, run_release, ci) in runs {
        let uses = by_run.remove(&id).unwrap_or_default();
        // The run's release: the one it was started with, else the one its endpoints belong to.
        let release = run_release.or_else(|| uses.first().map(|u| u.0));
        let Some(rel) = release.and_then(|r| rel_by_id.get(&r)) else {
            continue;
        };
        let mut c = RunCoverage {
            run: id,
            kind,
            source,
            started_at: fixed_time(started_at),
            finished_at: finished_at.map(fixed_time),
            release: label.or_else(|| Some(rel.1.clone())),
            ci,
            coverage: Covered::of(rel.2, rel.3),
            cumulative_tested_endpoints: 0,
            cumulative_tested_eligible_endpoints: 0,
        };
        let cum = cumulative.entry(rel.0).or_default();
        for &(r, eligible, ep, hits, test, conf) in &uses {
            if r != rel.0 {
                continue;
            }
            let t = tested(hits, test, conf);
            c.coverage.add(hits, t, conf > 0, eligible);
            if t {
                cum.0.insert(ep);
                if eligible {
                    cum.1.insert(ep);
                }
            }
            let e = per_release.entry(r).or_default().entry(ep).or_default();
            e.0 += hits;
            e.1 += test;
            e.2 += conf;
            e.3 = eligible;
        }
        c.cumulative_tested_endpoints = cum.0.len() as u64;
        c.cumulative_tested_eligible_endpoints = cum.1.len() as u64;
        out_runs.push(c);
    }
    let releases = releases
        .iter()
        .map(|(id, label, total, eligible)| {
            let eps = per_release.remove(id).unwrap_or_default();
            let mut coverage = Covered::of(*total, *eligible);
            for (hits, test, conf, el) in eps.into_values() {
                coverage.add(hits, tested(hits, test, conf), conf > 0, el);
            }
            ReleaseCoverage {
                release: label.clone(),
                coverage,
            }
        })
        .collect();
    if f.release.is_some() {
        let labels: BTreeSet<&str> = rel_by_id.values().map(|r| r.1.as_str()).collect();
        out_runs.retain(|r| r.release.as_deref().is_some_and(|l| labels.contains(l)));
    }
    Ok(History {
        runs: out_runs,
        releases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "history",
            &[("counting", "conformance")],
            Params {
                counting: Counting::Conformance,
            },
        );
    }
}
