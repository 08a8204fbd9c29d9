//! `progress`: conformance progress per release, as APISnoop's conformance-progress page shows
//! it, measured from the stored runs of each release (`query progress`,
//! `GET /api/v1/progress`).
//!
//! # Example
//! ```
//! use whakapapa_collector::query::{Request, progress::Params};
//! let req = Request::from_params("progress", [("release", "1.36.0")]).unwrap();
//! assert_eq!(req.options::<Params>(), Some(&Params));
//! ```
//!
//! The releases are the stored catalogs whose labels read as versions (`1.35.0`, `v1.36`), in
//! version order. An endpoint counts from its *promotion*: the first of them in which it is
//! stable and conformance eligible. It is *tested in* a release when that release's runs hit it
//! from a conformance test (requests mapped with that release's catalog, under the query's
//! filters): measured per release, not carried over from the tests that exist today. For each
//! release R, of the endpoints promoted in R or before:
//! - promoted with tests: promoted in R, tested in R;
//! - promoted without tests: promoted in R, not tested in R;
//! - old covered by new: promoted before R, tested in R and in no release before;
//! - tested: promoted before R, tested in R and in some release before;
//! - untested: promoted before R, not tested in R; `no_longer_tested` counts those of them
//!   tested in a release before (a regression APISnoop's reconstruction cannot show).
//!
//! The first stored release is the baseline: its endpoints count as promoted before it (the
//! store cannot tell when), those its runs test as tested, and it has no new endpoints.
//!
//! Each endpoint is in exactly one of the five groups, so they add up to the endpoints promoted
//! so far. The runs each release's numbers come from are listed with their CI job, build and
//! Prow URL when they were read from one.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, src};
use super::{Answer, Error, Filters, Given, Query, Render, Result, Table};

/// `progress` takes no options beyond the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params;

impl Query for Params {
    const NAME: &'static str = "progress";

    fn parse(_: &mut Given) -> Result<Self> {
        Ok(Params)
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(run(conn, f)?))
    }
}

/// The state of an endpoint at a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Promoted in the release with a conformance test in it.
    PromotedWithTests,
    /// Promoted in the release without one.
    PromotedWithoutTests,
    /// Promoted before, first tested in the release.
    OldCoveredByNew,
    /// Promoted and tested before.
    Tested,
    /// Promoted before, still untested.
    Untested,
}

/// An endpoint promoted in a release, and its state there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewEndpoint {
    /// operationId.
    pub endpoint: String,
    /// `promoted_with_tests` or `promoted_without_tests`.
    pub state: State,
}

/// A run whose requests the release's numbers count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRun {
    /// Ingest run id.
    pub run: i64,
    /// What read it: the paths, or the GCS prefix.
    pub source: String,
    /// Prow job, when read from a CI build.
    pub job: Option<String>,
    /// Its build id.
    pub build: Option<String>,
    /// The build's Prow page.
    pub url: Option<String>,
    /// Requests it stored.
    pub requests: u64,
}

/// One release's conformance progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseProgress {
    /// Release label.
    pub release: String,
    /// Stable eligible endpoints promoted in it or before (the sum of the five groups).
    pub endpoints: u64,
    /// Promoted in it, with tests.
    pub promoted_with_tests: u64,
    /// Promoted in it, without tests.
    pub promoted_without_tests: u64,
    /// Old endpoints first tested in it.
    pub old_covered_by_new: u64,
    /// Tested before it.
    pub tested: u64,
    /// Still untested.
    pub untested: u64,
    /// Of the untested, those a release before tested.
    pub no_longer_tested: u64,
    /// Conformance-tested at the release (with tests, old covered by new, tested).
    pub conformance_tested: u64,
    /// The endpoints promoted in it.
    pub new_endpoints: Vec<NewEndpoint>,
    /// Where its numbers come from.
    pub runs: Vec<SourceRun>,
}

/// `progress`: every release, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Per release.
    pub releases: Vec<ReleaseProgress>,
    /// Stored releases left out: their labels do not read as versions.
    pub unversioned: Vec<String>,
}

/// `1.36.0`, `v1.36`, `1.36.0-rc.1`, `v1.36.0-alpha.1.23+0123abcd` as (major, minor, patch):
/// release labels and the versions CI builds report.
pub(crate) fn version(label: &str) -> Option<(u32, u32, u32)> {
    let s = label.trim().strip_prefix('v').unwrap_or(label.trim());
    let core = s.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = match parts.next() {
        None => 0,
        Some(p) => p?,
    };
    parts.next().is_none().then_some((major, minor, patch))
}

/// Answers `progress`.
pub fn run(conn: &Connection, f: &Filters) -> Result<Progress> {
    let q = Sql::default();
    let labels: Vec<(i64, String)> =
        q.rows(conn, "SELECT id, label FROM releases ORDER BY id", |x| {
            Ok((x.get(0)?, x.get(1)?))
        })?;
    if let Some(want) = &f.release
        && !labels.iter().any(|(_, l)| l == want)
    {
        return Err(Error::UnknownRelease(want.clone()));
    }
    let mut ordered: Vec<((u32, u32, u32), i64, String)> = Vec::new();
    let mut unversioned = Vec::new();
    for (id, label) in labels {
        match version(&label) {
            Some(v) => ordered.push((v, id, label)),
            None => unversioned.push(label),
        }
    }
    ordered.sort();
    // Release id → its place in version order.
    let place: HashMap<i64, usize> = ordered
        .iter()
        .enumerate()
        .map(|(i, (_, id, _))| (*id, i))
        .collect();
    let eligible: Vec<(i64, String)> = q.rows(
        conn,
        "SELECT release_id, operation_id FROM endpoints WHERE level = 'stable' AND eligible = 1",
        |x| Ok((x.get(0)?, x.get(1)?)),
    )?;
    let mut promoted: HashMap<String, usize> = HashMap::new();
    for (rid, op) in eligible {
        if let Some(&p) = place.get(&rid) {
            let at = promoted.entry(op).or_insert(p);
            *at = (*at).min(p);
        }
    }
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let hit: Vec<(i64, String)> = q.rows(
        conn,
        &format!(
            "{s} SELECT DISTINCT e.release_id, e.operation_id FROM src s \
             JOIN tests t ON t.id = s.test_id AND t.conformance = 1 \
             JOIN endpoints e ON e.id = s.endpoint_id"
        ),
        |x| Ok((x.get(0)?, x.get(1)?)),
    )?;
    let mut tested_in: HashMap<String, Vec<bool>> = HashMap::new();
    for (rid, op) in hit {
        if let Some(&p) = place.get(&rid) {
            tested_in
                .entry(op)
                .or_insert_with(|| vec![false; ordered.len()])[p] = true;
        }
    }
    let runs = source_runs(conn)?;
    let mut releases = Vec::new();
    for (i, (_, rid, label)) in ordered.iter().enumerate() {
        if f.release.as_ref().is_some_and(|want| want != label) {
            continue;
        }
        let mut counts: BTreeMap<State, u64> = BTreeMap::new();
        let mut no_longer_tested = 0;
        let mut new_endpoints = Vec::new();
        for (op, &p) in &promoted {
            if p > i {
                continue;
            }
            let tested = tested_in.get(op);
            let now = tested.is_some_and(|t| t[i]);
            let before = tested.is_some_and(|t| t[..i].contains(&true));
            // The first stored release is the baseline: what it holds was promoted then or
            // before, which the store cannot tell apart.
            let new = p == i && i > 0;
            let state = match (new, now) {
                (true, true) => State::PromotedWithTests,
                (true, false) => State::PromotedWithoutTests,
                (false, true) if before || i == 0 => State::Tested,
                (false, true) => State::OldCoveredByNew,
                (false, false) => State::Untested,
            };
            if state == State::Untested && before {
                no_longer_tested += 1;
            }
            *counts.entry(state).or_default() += 1;
            if new {
                new_endpoints.push(NewEndpoint {
                    endpoint: op.clone(),
                    state,
                });
            }
        }
        new_endpoints.sort_by(|a, b| (a.state, &a.endpoint).cmp(&(b.state, &b.endpoint)));
        let n = |s: State| counts.get(&s).copied().unwrap_or(0);
        releases.push(ReleaseProgress {
            release: label.clone(),
            endpoints: counts.values().sum(),
            promoted_with_tests: n(State::PromotedWithTests),
            promoted_without_tests: n(State::PromotedWithoutTests),
            old_covered_by_new: n(State::OldCoveredByNew),
            tested: n(State::Tested),
            untested: n(State::Untested),
            no_longer_tested,
            conformance_tested: n(State::PromotedWithTests)
                + n(State::OldCoveredByNew)
                + n(State::Tested),
            new_endpoints,
            runs: runs.get(rid).cloned().unwrap_or_default(),
        });
    }
    Ok(Progress {
        releases,
        unversioned,
    })
}

/// Runs that stored requests, by the release they mapped with.
fn source_runs(conn: &Connection) -> Result<HashMap<i64, Vec<SourceRun>>> {
    let q = Sql::default();
    let rows: Vec<(i64, SourceRun)> = q.rows(
        conn,
        "SELECT r.release_id, r.id, r.source, c.job, c.build, c.bucket, c.prefix, r.requests \
         FROM ingest_runs r LEFT JOIN ci_runs c ON c.run_id = r.id \
         WHERE r.release_id IS NOT NULL AND r.requests > 0 ORDER BY r.id",
        |x| {
            let bucket: Option<String> = x.get(5)?;
            let prefix: Option<String> = x.get(6)?;
            let job: Option<String> = x.get(3)?;
            // Prow shows a build of any bucket at /view/gs/BUCKET/PREFIX.
            let url = match (&job, bucket, prefix) {
                (Some(_), Some(b), Some(p)) => Some(format!(
                    "https://prow.k8s.io/view/gs/{b}/{}",
                    p.trim_end_matches('/')
                )),
                _ => None,
            };
            Ok((
                x.get(0)?,
                SourceRun {
                    run: x.get(1)?,
                    source: x.get(2)?,
                    job,
                    build: x.get(4)?,
                    url,
                    requests: x.get::<_, i64>(7)? as u64,
                },
            ))
        },
    )?;
    let mut by: HashMap<i64, Vec<SourceRun>> = HashMap::new();
    for (rid, run) in rows {
        by.entry(rid).or_default().push(run);
    }
    Ok(by)
}

/// A release's counts as the table lists them.
#[derive(Default, Serialize)]
struct ProgressCells<'a> {
    release: &'a str,
    endpoints: u64,
    promoted_with_tests: u64,
    promoted_without_tests: u64,
    old_covered_by_new: u64,
    tested: u64,
    untested: u64,
    no_longer_tested: u64,
    conformance_tested: u64,
}

/// An endpoint promoted in a release, as the table lists it.
#[derive(Default, Serialize)]
struct NewCells<'a> {
    release: &'a str,
    endpoint: &'a str,
    state: Option<State>,
}

/// A run counted for a release, as the table lists it.
#[derive(Default, Serialize)]
struct RunCells<'a> {
    release: &'a str,
    run: i64,
    requests: u64,
    job: Option<&'a str>,
    build: Option<&'a str>,
    source: &'a str,
    url: Option<&'a str>,
}

impl Render for Progress {
    /// Per release, its new endpoints, and the runs counted.
    fn tables(&self) -> Vec<Table> {
        let mut t = Vec::new();
        let mut new = Vec::new();
        let mut runs = Vec::new();
        for r in &self.releases {
            t.push(ProgressCells {
                release: &r.release,
                endpoints: r.endpoints,
                promoted_with_tests: r.promoted_with_tests,
                promoted_without_tests: r.promoted_without_tests,
                old_covered_by_new: r.old_covered_by_new,
                tested: r.tested,
                untested: r.untested,
                no_longer_tested: r.no_longer_tested,
                conformance_tested: r.conformance_tested,
            });
            new.extend(r.new_endpoints.iter().map(|e| NewCells {
                release: &r.release,
                endpoint: &e.endpoint,
                state: Some(e.state),
            }));
            runs.extend(r.runs.iter().map(|s| RunCells {
                release: &r.release,
                run: s.run,
                requests: s.requests,
                job: s.job.as_deref(),
                build: s.build.as_deref(),
                source: &s.source,
                url: s.url.as_deref(),
            }));
        }
        vec![
            Table::of("progress", &t),
            Table::of("new_endpoints", &new),
            Table::of("runs", &runs),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::version;

    #[test]
    fn labels_read_as_versions_or_not_at_all() {
        assert_eq!(version("1.36.0"), Some((1, 36, 0)));
        assert_eq!(version("v1.9"), Some((1, 9, 0)));
        assert_eq!(version("1.37.0-rc.1"), Some((1, 37, 0)));
        assert!(version("1.9").unwrap() < version("1.16").unwrap());
        for bad in ["cluster", "1", "1.x", "1.36.0.1", ""] {
            assert_eq!(version(bad), None, "{bad}");
        }
    }
}
