//! `diff`: what changed in test coverage between two sets of runs (`query diff --base 3
//! --head 4`, `GET /api/v1/diff?base=3&head=4`): the before-and-after check of a PR.
//!
//! # Example
//! ```
//! use whakapapa_collector::query::{Request, diff::Params, runs::RunSel};
//! let req = Request::from_params("diff", [("base", "3"), ("head", "ci:1790")]).unwrap();
//! let want = Params { base: RunSel::Run(3), head: RunSel::Ci("1790".into()) };
//! assert_eq!(req.options::<Params>(), Some(&want));
//! ```
//!
//! Each side is a set of runs ([`RunSel`]: a run, a CI build, a release). An endpoint's state on
//! a side is `conformance` (hit by a conformance test), `tested` (by other tests only) or
//! `untested`, counting the requests of that side's runs the filters select; endpoints are
//! matched by operationId, so two releases compare. An endpoint is listed when its state or
//! the set of tests that hit it changed, with the tests that gained or lost it and their lines
//! of code (the innermost frame outside kube-rs of their requests' purposes).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::runs::{self, RunSel, Runs};
use super::sql::{frames_of, own_line, release};
use super::{Answer, Filters, Given, Param, Query, Render, Result, Table};

/// `diff`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The runs before.
    pub base: RunSel,
    /// The runs after.
    pub head: RunSel,
}

impl Query for Params {
    const NAME: &'static str = "diff";
    const PARAMS: &'static [Param] = &[
        Param::value(
            "base",
            "RUN",
            "The runs before: a run id, ci:BUILD, ci:JOB/BUILD or release:LABEL",
        ),
        Param::value("head", "RUN", "The runs after, as --base"),
    ];

    fn parse(g: &mut Given) -> Result<Self> {
        let base = g.value("base", runs::EXPECTED)?;
        let head = g.value("head", runs::EXPECTED)?;
        Ok(Params {
            base: base.ok_or(Given::missing("base"))?,
            head: head.ok_or(Given::missing("head"))?,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        let rid = match &f.release {
            Some(_) => Some(release(conn, f)?.0),
            None => None,
        };
        Ok(Answer::new(run(conn, f, rid, &self.base, &self.head)?))
    }
}

/// An endpoint's coverage on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Hit by no test.
    Untested,
    /// Hit by tests, none of them a conformance test.
    Tested,
    /// Hit by a conformance test.
    Conformance,
}

/// Endpoint changes of one level and category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffCounts {
    /// Level.
    pub level: String,
    /// Category.
    pub category: String,
    /// Untested in base, tested in head.
    pub newly_tested: u64,
    /// Tested in base, untested in head.
    pub no_longer_tested: u64,
    /// Not hit by a conformance test in base, hit by one in head.
    pub newly_conf_tested: u64,
    /// Hit by a conformance test in base, not in head.
    pub no_longer_conf_tested: u64,
}

/// One endpoint whose state or tests changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEndpoint {
    /// operationId.
    pub endpoint: String,
    /// Level (of the latest release that has the endpoint).
    pub level: String,
    /// Category.
    pub category: String,
    /// Conformance eligible (as the level).
    pub eligible: bool,
    /// State in base.
    pub base: State,
    /// State in head.
    pub head: State,
    /// Tests that hit it in head and not in base.
    pub tests_gained: Vec<String>,
    /// Tests that hit it in base and not in head.
    pub tests_lost: Vec<String>,
    /// Lines of code (`file:line`) of those tests' requests to it.
    pub locs: Vec<String>,
}

/// A test whose endpoints changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffTest {
    /// Test name.
    pub test: String,
    /// A conformance test.
    pub conformance: bool,
    /// Endpoints it hits in head and not in base.
    pub endpoints_gained: Vec<String>,
    /// Endpoints it hits in base and not in head.
    pub endpoints_lost: Vec<String>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// The base runs.
    pub base: Runs,
    /// The head runs.
    pub head: Runs,
    /// Changes per level and category (only those with a change).
    pub summary: Vec<DiffCounts>,
    /// Endpoints whose state or tests changed, in catalog order.
    pub endpoints: Vec<DiffEndpoint>,
    /// Tests whose endpoints changed.
    pub tests: Vec<DiffTest>,
}

/// One side: operationId -> test id -> purposes.
type Side = BTreeMap<String, BTreeMap<i64, BTreeSet<i64>>>;

/// Answers `diff`; `release` (an id) keeps only that release's endpoints on both sides.
pub fn run(
    conn: &Connection,
    f: &Filters,
    release: Option<i64>,
    base: &RunSel,
    head: &RunSel,
) -> Result<Diff> {
    let (base, head) = (base.resolve(conn)?, head.resolve(conn)?);
    let catalog = runs::endpoints(conn, release)?;
    let by_id: HashMap<i64, &runs::EndpointInfo> = catalog.iter().map(|(i, e)| (*i, e)).collect();
    let tests = runs::tests(conn)?;
    let side = |r: &Runs| -> Result<Side> {
        let mut s = Side::new();
        for h in runs::test_hits(conn, f, Some(&r.runs))? {
            if let Some(e) = by_id.get(&h.endpoint) {
                s.entry(e.endpoint.clone())
                    .or_default()
                    .entry(h.test)
                    .or_default()
                    .insert(h.purpose);
            }
        }
        Ok(s)
    };
    let (b, h) = (side(&base)?, side(&head)?);
    let state = |s: &Side, ep: &str| match s.get(ep) {
        None => State::Untested,
        Some(t)
            if t.keys()
                .any(|id| tests.get(id).is_some_and(|t| t.conformance)) =>
        {
            State::Conformance
        }
        Some(_) => State::Tested,
    };
    // Catalog info per operationId: the latest release's wins (it is read last).
    let mut info: BTreeMap<&str, (&runs::EndpointInfo, usize)> = BTreeMap::new();
    for (i, (_, e)) in catalog.iter().enumerate() {
        info.insert(e.endpoint.as_str(), (e, i));
    }
    let empty = BTreeMap::new();
    let mut purposes: BTreeSet<i64> = BTreeSet::new();
    let mut changed: Vec<(usize, DiffEndpoint, Vec<i64>)> = Vec::new();
    let mut per_test: BTreeMap<i64, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let names: BTreeSet<&String> = b.keys().chain(h.keys()).collect();
    for ep in names {
        let (bt, ht) = (b.get(ep).unwrap_or(&empty), h.get(ep).unwrap_or(&empty));
        let gained: Vec<i64> = ht.keys().filter(|t| !bt.contains_key(t)).copied().collect();
        let lost: Vec<i64> = bt.keys().filter(|t| !ht.contains_key(t)).copied().collect();
        let (bs, hs) = (state(&b, ep), state(&h, ep));
        if bs == hs && gained.is_empty() && lost.is_empty() {
            continue;
        }
        let mut ps = Vec::new();
        for t in &gained {
            ps.extend(ht[t].iter().copied().filter(|p| *p != 0));
            per_test.entry(*t).or_default().0.insert(ep.clone());
        }
        for t in &lost {
            ps.extend(bt[t].iter().copied().filter(|p| *p != 0));
            per_test.entry(*t).or_default().1.insert(ep.clone());
        }
        purposes.extend(ps.iter().copied());
        let name = |ids: &[i64]| -> Vec<String> {
            let mut v: Vec<String> = ids
                .iter()
                .filter_map(|i| tests.get(i).map(|t| t.name.clone()))
                .collect();
            v.sort();
            v
        };
        let (e, order) = info[ep.as_str()];
        changed.push((
            order,
            DiffEndpoint {
                endpoint: ep.clone(),
                level: e.level.clone(),
                category: e.category.clone(),
                eligible: e.eligible,
                base: bs,
                head: hs,
                tests_gained: name(&gained),
                tests_lost: name(&lost),
                locs: Vec::new(),
            },
            ps,
        ));
    }
    let frames = frames_of(conn, &purposes.into_iter().collect::<Vec<_>>())?;
    let mut summary: BTreeMap<(String, String), DiffCounts> = BTreeMap::new();
    changed.sort_by_key(|c| c.0);
    let endpoints = changed
        .into_iter()
        .map(|(_, mut d, ps)| {
            let locs: BTreeSet<String> = ps
                .iter()
                .filter_map(|p| frames.get(p).and_then(|fr| own_line(fr)))
                .map(|fr| format!("{}:{}", fr.file, fr.line))
                .collect();
            d.locs = locs.into_iter().collect();
            let c = summary
                .entry((d.level.clone(), d.category.clone()))
                .or_insert_with(|| DiffCounts {
                    level: d.level.clone(),
                    category: d.category.clone(),
                    ..DiffCounts::default()
                });
            let tested = |s: State| s != State::Untested;
            let conf = |s: State| s == State::Conformance;
            c.newly_tested += (!tested(d.base) && tested(d.head)) as u64;
            c.no_longer_tested += (tested(d.base) && !tested(d.head)) as u64;
            c.newly_conf_tested += (!conf(d.base) && conf(d.head)) as u64;
            c.no_longer_conf_tested += (conf(d.base) && !conf(d.head)) as u64;
            d
        })
        .collect();
    let level_rank = |l: &str| match l {
        "stable" => 0,
        "beta" => 1,
        "alpha" => 2,
        _ => 3,
    };
    let mut summary: Vec<DiffCounts> = summary
        .into_values()
        .filter(|c| {
            c.newly_tested + c.no_longer_tested + c.newly_conf_tested + c.no_longer_conf_tested > 0
        })
        .collect();
    summary.sort_by(|a, b| {
        (level_rank(&a.level), &a.category).cmp(&(level_rank(&b.level), &b.category))
    });
    let mut tests_out: Vec<DiffTest> = per_test
        .into_iter()
        .filter_map(|(id, (g, l))| {
            tests.get(&id).map(|t| DiffTest {
                test: t.name.clone(),
                conformance: t.conformance,
                endpoints_gained: g.into_iter().collect(),
                endpoints_lost: l.into_iter().collect(),
            })
        })
        .collect();
    tests_out.sort_by(|a, b| a.test.cmp(&b.test));
    Ok(Diff {
        base,
        head,
        summary,
        endpoints,
        tests: tests_out,
    })
}

fn join(list: &[String]) -> String {
    list.join("; ")
}

/// A side as the table lists it.
#[derive(Default, Serialize)]
struct RunCells<'a> {
    side: &'a str,
    selector: &'a str,
    runs: String,
}

/// An endpoint as the table lists it: its tests and lines of code in one cell each.
#[derive(Default, Serialize)]
struct EndpointCells<'a> {
    endpoint: &'a str,
    level: &'a str,
    category: &'a str,
    eligible: bool,
    base: Option<State>,
    head: Option<State>,
    tests_gained: String,
    tests_lost: String,
    locs: String,
}

/// A test as the table lists it.
#[derive(Default, Serialize)]
struct TestCells<'a> {
    test: &'a str,
    conformance: bool,
    endpoints_gained: String,
    endpoints_lost: String,
}

impl Render for Diff {
    /// Runs, the summary, the endpoints, the tests.
    fn tables(&self) -> Vec<Table> {
        let runs: Vec<RunCells<'_>> = [("base", &self.base), ("head", &self.head)]
            .into_iter()
            .map(|(side, x)| RunCells {
                side,
                selector: &x.selector,
                runs: x
                    .runs
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        let endpoints: Vec<EndpointCells<'_>> = self
            .endpoints
            .iter()
            .map(|x| EndpointCells {
                endpoint: &x.endpoint,
                level: &x.level,
                category: &x.category,
                eligible: x.eligible,
                base: Some(x.base),
                head: Some(x.head),
                tests_gained: join(&x.tests_gained),
                tests_lost: join(&x.tests_lost),
                locs: join(&x.locs),
            })
            .collect();
        let tests: Vec<TestCells<'_>> = self
            .tests
            .iter()
            .map(|x| TestCells {
                test: &x.test,
                conformance: x.conformance,
                endpoints_gained: join(&x.endpoints_gained),
                endpoints_lost: join(&x.endpoints_lost),
            })
            .collect();
        vec![
            Table::of("runs", &runs),
            Table::of("summary", &self.summary),
            Table::of("endpoints", &endpoints),
            Table::of("tests", &tests),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "diff",
            &[("base", "release:1.35.0"), ("head", "4")],
            Params {
                base: RunSel::Release("1.35.0".into()),
                head: RunSel::Run(4),
            },
        );
        let err = |params: &[(&str, &str)]| {
            crate::query::Request::from_params("diff", params.iter().copied())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(&[("base", "1")]), "missing parameter `head`");
        assert_eq!(
            err(&[("run", "1")]),
            "unknown parameter `run` for query `diff`"
        );
    }
}
