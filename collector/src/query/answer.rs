//! The answers: plain data that serializes to the JSON of the Query API (KEP.md) and prints as
//! tables.

use std::collections::BTreeMap;

use serde::Serialize;

use super::format::{self, Format, Table};
use super::{Counting, apisnoop, deprecated, deps, indirect, journeys, progress, rbac, suggest};

/// An endpoint with its use (APISnoop's field names plus counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRow {
    /// operationId.
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Path template.
    pub path: String,
    /// alpha, beta, stable.
    pub level: String,
    /// Category.
    pub category: String,
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// `x-kubernetes-action`.
    pub action: String,
    /// Hit by a request counted under the query's `counting`.
    pub tested: bool,
    /// Hit by a conformance test.
    pub conf_tested: bool,
    /// Conformance eligible.
    pub eligible: bool,
    /// Pending eligibility (the release's pending eligible list names it): not eligible yet.
    pub pending: bool,
    /// Requests.
    pub hits: u64,
    /// Distinct identities.
    pub apps: u64,
    /// Distinct tests.
    pub tests: u64,
    /// Distinct lines of code.
    pub locs: u64,
}

/// Endpoint counts of a set of endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Endpoints.
    pub total: u64,
    /// Tested.
    pub tested: u64,
    /// Hit by a conformance test.
    pub conf_tested: u64,
    /// Conformance eligible.
    pub eligible: u64,
    /// Eligible and tested.
    pub tested_eligible: u64,
    /// Eligible and hit by a conformance test.
    pub conf_tested_eligible: u64,
    /// Pending eligibility: not in `eligible`.
    pub pending: u64,
    /// Pending and hit by a conformance test.
    pub conf_tested_pending: u64,
}

impl Counts {
    fn add(&mut self, r: &EndpointRow) {
        self.total += 1;
        self.tested += r.tested as u64;
        self.conf_tested += r.conf_tested as u64;
        self.eligible += r.eligible as u64;
        self.tested_eligible += (r.eligible && r.tested) as u64;
        self.conf_tested_eligible += (r.eligible && r.conf_tested) as u64;
        self.pending += r.pending as u64;
        self.conf_tested_pending += (r.pending && r.conf_tested) as u64;
    }

    fn of(rows: &[&EndpointRow]) -> Counts {
        let mut c = Counts::default();
        rows.iter().for_each(|r| c.add(r));
        c
    }

    fn cells(&self) -> Vec<String> {
        [
            self.total,
            self.tested,
            self.conf_tested,
            self.eligible,
            self.tested_eligible,
            self.conf_tested_eligible,
            self.pending,
            self.conf_tested_pending,
        ]
        .iter()
        .map(u64::to_string)
        .collect()
    }
}

const COUNT_COLUMNS: [&str; 8] = [
    "total",
    "tested",
    "conf_tested",
    "eligible",
    "tested_eligible",
    "conf_tested_eligible",
    "pending",
    "conf_tested_pending",
];

fn columns(first: &[&'static str]) -> Vec<&'static str> {
    first.iter().copied().chain(COUNT_COLUMNS).collect()
}

/// Levels in APISnoop's order.
const LEVELS: [&str; 3] = ["stable", "beta", "alpha"];

fn level_rank(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or(LEVELS.len())
}

/// Coverage of one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelCounts {
    /// The level.
    pub level: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Coverage of one category of a level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCounts {
    /// The level.
    pub level: String,
    /// The category.
    pub category: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// `coverage`: APISnoop's totals by level and category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Release label.
    pub release: String,
    /// What made an endpoint tested.
    pub counting: Counting,
    /// Requests counted (mapped to an endpoint of the release).
    pub requests: u64,
    /// Over all endpoints.
    pub totals: Counts,
    /// Per level, stable, beta, alpha.
    pub by_level: Vec<LevelCounts>,
    /// Per level and category.
    pub by_category: Vec<CategoryCounts>,
}

fn grouped(rows: &[EndpointRow]) -> BTreeMap<(usize, &str), Vec<&EndpointRow>> {
    let mut by: BTreeMap<(usize, &str), Vec<&EndpointRow>> = BTreeMap::new();
    for r in rows {
        by.entry((level_rank(&r.level), r.category.as_str()))
            .or_default()
            .push(r);
    }
    by
}

/// Aggregates endpoint rows (one per endpoint of the release) into coverage.
pub fn coverage(
    release: &str,
    counting: Counting,
    requests: u64,
    rows: &[EndpointRow],
) -> Coverage {
    let all: Vec<&EndpointRow> = rows.iter().collect();
    let by_category: Vec<CategoryCounts> = grouped(rows)
        .into_values()
        .map(|rs| CategoryCounts {
            level: rs[0].level.clone(),
            category: rs[0].category.clone(),
            counts: Counts::of(&rs),
        })
        .collect();
    let mut by_level: Vec<LevelCounts> = Vec::new();
    for c in &by_category {
        match by_level.last_mut() {
            Some(l) if l.level == c.level => {
                let mut sum = l.counts;
                sum.total += c.counts.total;
                sum.tested += c.counts.tested;
                sum.conf_tested += c.counts.conf_tested;
                sum.eligible += c.counts.eligible;
                sum.tested_eligible += c.counts.tested_eligible;
                sum.conf_tested_eligible += c.counts.conf_tested_eligible;
                sum.pending += c.counts.pending;
                sum.conf_tested_pending += c.counts.conf_tested_pending;
                l.counts = sum;
            }
            _ => by_level.push(LevelCounts {
                level: c.level.clone(),
                counts: c.counts,
            }),
        }
    }
    Coverage {
        release: release.to_owned(),
        counting,
        requests,
        totals: Counts::of(&all),
        by_level,
        by_category,
    }
}

/// An endpoint as a sunburst leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunburstEndpoint {
    /// operationId.
    pub endpoint: String,
    /// Path template.
    pub path: String,
    /// Kind.
    pub kind: String,
    /// Action.
    pub action: String,
    /// Tested.
    pub tested: bool,
    /// Hit by a conformance test.
    pub conf_tested: bool,
    /// Conformance eligible.
    pub eligible: bool,
    /// Requests.
    pub hits: u64,
}

/// A category ring of the sunburst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunburstCategory {
    /// The category.
    pub category: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Its endpoints, by name.
    pub endpoints: Vec<SunburstEndpoint>,
}

/// A level ring of the sunburst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunburstLevel {
    /// The level.
    pub level: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Its categories, by name.
    pub categories: Vec<SunburstCategory>,
}

/// `sunburst`: coverage as a level → category → endpoint tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sunburst {
    /// Release label.
    pub release: String,
    /// What made an endpoint tested.
    pub counting: Counting,
    /// Over all endpoints.
    pub totals: Counts,
    /// stable, beta, alpha.
    pub levels: Vec<SunburstLevel>,
}

/// Builds the sunburst tree from endpoint rows.
pub fn sunburst(release: &str, counting: Counting, rows: &[EndpointRow]) -> Sunburst {
    let cov = coverage(release, counting, 0, rows);
    let mut levels: Vec<SunburstLevel> = cov
        .by_level
        .iter()
        .map(|l| SunburstLevel {
            level: l.level.clone(),
            counts: l.counts,
            categories: Vec::new(),
        })
        .collect();
    for mut rs in grouped(rows).into_values() {
        rs.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        let level = levels
            .iter_mut()
            .find(|l| l.level == rs[0].level)
            .expect("every level of the rows is in the coverage");
        level.categories.push(SunburstCategory {
            category: rs[0].category.clone(),
            counts: Counts::of(&rs),
            endpoints: rs
                .iter()
                .map(|r| SunburstEndpoint {
                    endpoint: r.endpoint.clone(),
                    path: r.path.clone(),
                    kind: r.kind.clone(),
                    action: r.action.clone(),
                    tested: r.tested,
                    conf_tested: r.conf_tested,
                    eligible: r.eligible,
                    hits: r.hits,
                })
                .collect(),
        });
    }
    Sunburst {
        release: release.to_owned(),
        counting,
        totals: cov.totals,
        levels,
    }
}

/// Sorts endpoint rows as `endpoints` lists them: level, category, name.
pub fn sort_endpoints(rows: &mut [EndpointRow]) {
    rows.sort_by(|a, b| {
        (level_rank(&a.level), &a.category, &a.endpoint).cmp(&(
            level_rank(&b.level),
            &b.category,
            &b.endpoint,
        ))
    });
}

/// A release in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseRow {
    /// Label.
    pub release: String,
    /// sha256 of its OpenAPI document.
    pub spec_sha256: String,
    /// When it was loaded.
    pub loaded_at: String,
    /// Endpoints.
    pub total_endpoints: u64,
    /// Conformance-eligible endpoints.
    pub eligible_endpoints: u64,
    /// Requests mapped to its endpoints.
    pub requests: u64,
}

/// A line of code: the wire's frame, as the store keeps it.
pub use whakapapa_wire::Frame;

/// A count per status code (0: no response seen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeHits {
    /// HTTP status code.
    pub code: i64,
    /// Requests.
    pub hits: u64,
}

fn codes_cell(codes: &[CodeHits]) -> String {
    codes
        .iter()
        .map(|c| format!("{}:{}", c.code, c.hits))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A count per audit verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerbHits {
    /// Audit verb.
    pub verb: String,
    /// Requests.
    pub hits: u64,
}

/// A line of code reaching an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocHits {
    /// The line.
    #[serde(flatten)]
    pub frame: Frame,
    /// Requests whose purpose includes it.
    pub hits: u64,
    /// Distinct identities.
    pub apps: u64,
}

/// An app reaching an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppHits {
    /// Identity name (the identity text when unparsed).
    pub app: String,
    /// Identity text.
    pub identity: String,
    /// Requests.
    pub hits: u64,
}

/// A test reaching an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestHits {
    /// Test name.
    pub test: String,
    /// SIG.
    pub sig: Option<String>,
    /// Conformance test.
    pub conformance: bool,
    /// Requests.
    pub hits: u64,
}

/// A purpose (call stack) reaching an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurposeHits {
    /// Fingerprint.
    pub fingerprint: String,
    /// Identity name.
    pub app: Option<String>,
    /// Test name.
    pub test: Option<String>,
    /// Frames from the side channel, all of them.
    pub complete: bool,
    /// Requests.
    pub hits: u64,
    /// Innermost first.
    pub frames: Vec<Frame>,
}

/// `endpoint`: everything that reaches one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointDetail {
    /// The endpoint and its counts.
    pub endpoint: EndpointRow,
    /// By status code.
    pub codes: Vec<CodeHits>,
    /// By verb.
    pub verbs: Vec<VerbHits>,
    /// Lines of code.
    pub locs: Vec<LocHits>,
    /// Apps.
    pub apps: Vec<AppHits>,
    /// Tests.
    pub tests: Vec<TestHits>,
    /// Purposes.
    pub purposes: Vec<PurposeHits>,
}

/// An endpoint reached from a line of code, with one verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocEndpoint {
    /// operationId.
    pub endpoint: String,
    /// HTTP method.
    pub method: String,
    /// Path template.
    pub path: String,
    /// Audit verb.
    pub verb: String,
    /// Requests.
    pub hits: u64,
    /// Distinct identities.
    pub apps: u64,
    /// By status code.
    pub codes: Vec<CodeHits>,
}

/// `loc`: the whakapapa of a line of code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocAnswer {
    /// As asked.
    pub loc: String,
    /// Lines of code that matched.
    pub matched: Vec<Frame>,
    /// What they reach.
    pub endpoints: Vec<LocEndpoint>,
}

/// A function matching a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionMatch {
    /// Function path.
    pub function: String,
    /// Its lines of code seen.
    pub locs: u64,
    /// Requests through it.
    pub hits: u64,
}

/// A file matching a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMatch {
    /// File.
    pub file: String,
    /// Its lines of code seen.
    pub locs: u64,
    /// Requests through it.
    pub hits: u64,
}

/// `search`: functions and files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchAnswer {
    /// Functions, by hits.
    pub functions: Vec<FunctionMatch>,
    /// Files, by hits.
    pub files: Vec<FileMatch>,
}

/// An endpoint an app used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsedEndpoint {
    /// operationId.
    pub endpoint: String,
    /// Requests.
    pub hits: u64,
}

/// `apps`: one identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRow {
    /// Name (the identity text when unparsed).
    pub app: String,
    /// Identity text.
    pub identity: String,
    /// Version.
    pub version: Option<String>,
    /// OS.
    pub os: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Commit.
    pub commit: Option<String>,
    /// Built by.
    pub built_by: Option<String>,
    /// Built at.
    pub built_at: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Distinct endpoints.
    pub endpoints: u64,
    /// First request.
    pub first_seen: String,
    /// Last request.
    pub last_seen: String,
    /// Endpoints by hits.
    pub used: Vec<UsedEndpoint>,
}

/// `tests`: one test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRow {
    /// Name.
    pub test: String,
    /// SIG.
    pub sig: Option<String>,
    /// Conformance test.
    pub conformance: bool,
    /// Requests.
    pub hits: u64,
    /// Endpoints by hits.
    pub endpoints: Vec<UsedEndpoint>,
}

/// `tests --gaps`: an endpoint programs use and no test does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapRow {
    /// operationId.
    pub endpoint: String,
    /// Level.
    pub level: String,
    /// Category.
    pub category: String,
    /// Conformance eligible.
    pub eligible: bool,
    /// Distinct programs (identity names).
    pub programs: u64,
    /// Requests.
    pub hits: u64,
    /// The programs' lines of code calling it (`file:line`), most requests first.
    pub locs: Vec<String>,
}

/// Coverage of one ingest run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Requests it stored.
    pub requests: u64,
    /// Endpoints of the release.
    pub total_endpoints: u64,
    /// Tested by this run.
    pub tested_endpoints: u64,
    /// Hit by a conformance test in this run.
    pub conf_tested_endpoints: u64,
    /// Eligible endpoints of the release.
    pub eligible_endpoints: u64,
    /// Eligible and tested by this run.
    pub tested_eligible_endpoints: u64,
    /// Eligible and hit by a conformance test in this run.
    pub conf_tested_eligible_endpoints: u64,
    /// Tested by this run or an earlier one (same release).
    pub cumulative_tested_endpoints: u64,
    /// Eligible and tested by this run or an earlier one.
    pub cumulative_tested_eligible_endpoints: u64,
}

/// The CI build a run read, as its `started.json`, `finished.json` and `prowjob.json` say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseCoverage {
    /// Label.
    pub release: String,
    /// Requests mapped to it.
    pub requests: u64,
    /// Endpoints.
    pub total_endpoints: u64,
    /// Tested.
    pub tested_endpoints: u64,
    /// Hit by a conformance test.
    pub conf_tested_endpoints: u64,
    /// Eligible.
    pub eligible_endpoints: u64,
    /// Eligible and tested.
    pub tested_eligible_endpoints: u64,
    /// Eligible and hit by a conformance test.
    pub conf_tested_eligible_endpoints: u64,
}

/// `history`: coverage per run and per release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct History {
    /// Runs, oldest first.
    pub runs: Vec<RunCoverage>,
    /// Releases, in load order.
    pub releases: Vec<ReleaseCoverage>,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Answer {
    /// `releases`.
    Releases(Vec<ReleaseRow>),
    /// `coverage`.
    Coverage(Coverage),
    /// `coverage --export apisnoop`.
    ApiSnoop(Box<apisnoop::Coverage>),
    /// `sunburst`.
    Sunburst(Sunburst),
    /// `endpoints`.
    Endpoints(Vec<EndpointRow>),
    /// `endpoint`.
    Endpoint(Box<EndpointDetail>),
    /// `loc`.
    Loc(LocAnswer),
    /// `search`.
    Search(SearchAnswer),
    /// `apps`.
    Apps(Vec<AppRow>),
    /// `apps --rbac`.
    Rbac(Vec<rbac::AppRbac>),
    /// `tests`.
    Tests(Vec<TestRow>),
    /// `tests --gaps`.
    Gaps(Vec<GapRow>),
    /// `deps`.
    Deps(deps::Deps),
    /// `journeys`.
    Journeys(Vec<journeys::Journey>),
    /// `suggest`.
    Suggest(Vec<suggest::Suggestion>),
    /// `history`.
    History(History),
    /// `deprecated`.
    Deprecated(Vec<deprecated::DeprecatedRow>),
    /// `coverage --by sig`.
    SigCoverage(Box<super::sig::SigCoverage>),
    /// `gate`.
    Gate(Box<super::gate::Gate>),
    /// `diff`.
    Diff(Box<super::diff::Diff>),
    /// `indirect`.
    Indirect(indirect::IndirectAnswer),
    /// `progress`.
    Progress(progress::Progress),
}

fn b(v: bool) -> String {
    v.to_string()
}
fn n(v: u64) -> String {
    v.to_string()
}
fn o(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn endpoint_table(name: &'static str, rows: &[EndpointRow]) -> Table {
    let mut t = Table::new(
        name,
        &[
            "endpoint",
            "method",
            "path",
            "level",
            "category",
            "group",
            "version",
            "kind",
            "action",
            "tested",
            "conf_tested",
            "eligible",
            "pending",
            "hits",
            "apps",
            "tests",
            "locs",
        ],
    );
    for r in rows {
        t.row(vec![
            r.endpoint.clone(),
            r.method.clone(),
            r.path.clone(),
            r.level.clone(),
            r.category.clone(),
            r.group.clone(),
            r.version.clone(),
            r.kind.clone(),
            r.action.clone(),
            b(r.tested),
            b(r.conf_tested),
            b(r.eligible),
            b(r.pending),
            n(r.hits),
            n(r.apps),
            n(r.tests),
            n(r.locs),
        ]);
    }
    t
}

impl Answer {
    /// The JSON of the Query API (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("answers serialize");
        s.push('\n');
        s
    }

    /// Prints in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => self.to_json(),
            Format::Csv => format::csv(&self.tables()),
            Format::Table => match self {
                Answer::Rbac(apps) => rbac::yaml_all(apps),
                Answer::Suggest(s) => suggest::text(s),
                Answer::ApiSnoop(_) => self.to_json(),
                _ => format::text(&self.tables()),
            },
        }
    }

    /// The answer as tables (for text and CSV).
    pub fn tables(&self) -> Vec<Table> {
        match self {
            Answer::Releases(rows) => {
                let mut t = Table::new(
                    "releases",
                    &[
                        "release",
                        "spec_sha256",
                        "loaded_at",
                        "total_endpoints",
                        "eligible_endpoints",
                        "requests",
                    ],
                );
                for r in rows {
                    t.row(vec![
                        r.release.clone(),
                        r.spec_sha256.clone(),
                        r.loaded_at.clone(),
                        n(r.total_endpoints),
                        n(r.eligible_endpoints),
                        n(r.requests),
                    ]);
                }
                vec![t]
            }
            Answer::Coverage(c) => {
                let mut totals =
                    Table::new("totals", &columns(&["release", "counting", "requests"]));
                let mut first = vec![c.release.clone(), c.counting.to_string(), n(c.requests)];
                first.extend(c.totals.cells());
                totals.row(first);
                let mut lv = Table::new("by_level", &columns(&["level"]));
                for l in &c.by_level {
                    let mut r = vec![l.level.clone()];
                    r.extend(l.counts.cells());
                    lv.row(r);
                }
                let mut cat = Table::new("by_category", &columns(&["level", "category"]));
                for l in &c.by_category {
                    let mut r = vec![l.level.clone(), l.category.clone()];
                    r.extend(l.counts.cells());
                    cat.row(r);
                }
                vec![totals, lv, cat]
            }
            Answer::ApiSnoop(a) => a.tables(),
            Answer::Sunburst(s) => {
                let mut t = Table::new(
                    "sunburst",
                    &[
                        "level",
                        "category",
                        "endpoint",
                        "tested",
                        "conf_tested",
                        "eligible",
                        "hits",
                    ],
                );
                for l in &s.levels {
                    for c in &l.categories {
                        for e in &c.endpoints {
                            t.row(vec![
                                l.level.clone(),
                                c.category.clone(),
                                e.endpoint.clone(),
                                b(e.tested),
                                b(e.conf_tested),
                                b(e.eligible),
                                n(e.hits),
                            ]);
                        }
                    }
                }
                vec![t]
            }
            Answer::Endpoints(rows) => vec![endpoint_table("endpoints", rows)],
            Answer::Endpoint(d) => {
                let mut codes = Table::new("codes", &["code", "hits"]);
                d.codes
                    .iter()
                    .for_each(|c| codes.row(vec![c.code.to_string(), n(c.hits)]));
                let mut verbs = Table::new("verbs", &["verb", "hits"]);
                d.verbs
                    .iter()
                    .for_each(|v| verbs.row(vec![v.verb.clone(), n(v.hits)]));
                let mut locs = Table::new("locs", &["function", "file", "line", "hits", "apps"]);
                for l in &d.locs {
                    locs.row(vec![
                        l.frame.function.clone(),
                        l.frame.file.clone(),
                        l.frame.line.to_string(),
                        n(l.hits),
                        n(l.apps),
                    ]);
                }
                let mut apps = Table::new("apps", &["app", "identity", "hits"]);
                d.apps
                    .iter()
                    .for_each(|a| apps.row(vec![a.app.clone(), a.identity.clone(), n(a.hits)]));
                let mut tests = Table::new("tests", &["test", "sig", "conformance", "hits"]);
                for t in &d.tests {
                    tests.row(vec![t.test.clone(), o(&t.sig), b(t.conformance), n(t.hits)]);
                }
                let mut purposes = Table::new(
                    "purposes",
                    &["fingerprint", "app", "test", "complete", "hits", "frames"],
                );
                for p in &d.purposes {
                    purposes.row(vec![
                        p.fingerprint.clone(),
                        o(&p.app),
                        o(&p.test),
                        b(p.complete),
                        n(p.hits),
                        p.frames
                            .iter()
                            .map(Frame::to_string)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ]);
                }
                vec![
                    endpoint_table("endpoint", std::slice::from_ref(&d.endpoint)),
                    codes,
                    verbs,
                    locs,
                    apps,
                    tests,
                    purposes,
                ]
            }
            Answer::Loc(l) => {
                let mut m = Table::new("matched", &["function", "file", "line"]);
                for f in &l.matched {
                    m.row(vec![f.function.clone(), f.file.clone(), f.line.to_string()]);
                }
                let mut e = Table::new(
                    "endpoints",
                    &[
                        "endpoint", "method", "path", "verb", "hits", "apps", "codes",
                    ],
                );
                for r in &l.endpoints {
                    e.row(vec![
                        r.endpoint.clone(),
                        r.method.clone(),
                        r.path.clone(),
                        r.verb.clone(),
                        n(r.hits),
                        n(r.apps),
                        codes_cell(&r.codes),
                    ]);
                }
                vec![m, e]
            }
            Answer::Search(s) => {
                let mut f = Table::new("functions", &["function", "locs", "hits"]);
                s.functions
                    .iter()
                    .for_each(|x| f.row(vec![x.function.clone(), n(x.locs), n(x.hits)]));
                let mut g = Table::new("files", &["file", "locs", "hits"]);
                s.files
                    .iter()
                    .for_each(|x| g.row(vec![x.file.clone(), n(x.locs), n(x.hits)]));
                vec![f, g]
            }
            Answer::Apps(rows) => {
                let mut t = Table::new(
                    "apps",
                    &[
                        "app",
                        "version",
                        "commit",
                        "built_by",
                        "built_at",
                        "requests",
                        "endpoints",
                        "first_seen",
                        "last_seen",
                        "identity",
                    ],
                );
                for r in rows {
                    t.row(vec![
                        r.app.clone(),
                        o(&r.version),
                        o(&r.commit),
                        o(&r.built_by),
                        o(&r.built_at),
                        n(r.requests),
                        n(r.endpoints),
                        r.first_seen.clone(),
                        r.last_seen.clone(),
                        r.identity.clone(),
                    ]);
                }
                vec![t]
            }
            Answer::Rbac(apps) => rbac::tables(apps),
            Answer::Tests(rows) => {
                let mut t =
                    Table::new("tests", &["test", "sig", "conformance", "endpoint", "hits"]);
                for r in rows {
                    for e in &r.endpoints {
                        t.row(vec![
                            r.test.clone(),
                            o(&r.sig),
                            b(r.conformance),
                            e.endpoint.clone(),
                            n(e.hits),
                        ]);
                    }
                }
                vec![t]
            }
            Answer::Gaps(rows) => {
                let mut t = Table::new(
                    "gaps",
                    &[
                        "endpoint",
                        "level",
                        "category",
                        "eligible",
                        "programs",
                        "hits",
                        "lines_of_code",
                    ],
                );
                for r in rows {
                    t.row(vec![
                        r.endpoint.clone(),
                        r.level.clone(),
                        r.category.clone(),
                        b(r.eligible),
                        n(r.programs),
                        n(r.hits),
                        r.locs.join("; "),
                    ]);
                }
                vec![t]
            }
            Answer::Deps(d) => d.tables(),
            Answer::Journeys(js) => vec![journeys::table(js)],
            Answer::Suggest(s) => vec![suggest::table(s)],
            Answer::Deprecated(rows) => vec![deprecated::table(rows)],
            Answer::SigCoverage(c) => super::sig::tables(c),
            Answer::Gate(g) => super::gate::tables(g),
            Answer::Diff(d) => super::diff::tables(d),
            Answer::Indirect(a) => indirect::tables(a),
            Answer::Progress(p) => progress::tables(p),
            Answer::History(h) => {
                // CI builds' columns only when some run read one.
                let ci = h.runs.iter().any(|r| r.ci.is_some());
                let ci_columns: &[&'static str] = if ci {
                    &["job", "build", "result", "version"]
                } else {
                    &[]
                };
                let mut runs = Table::new(
                    "runs",
                    &[
                        &["run", "kind", "source", "started_at"][..],
                        ci_columns,
                        &[
                            "release",
                            "requests",
                            "total_endpoints",
                            "tested_endpoints",
                            "conf_tested_endpoints",
                            "eligible_endpoints",
                            "tested_eligible_endpoints",
                            "conf_tested_eligible_endpoints",
                            "cumulative_tested_endpoints",
                            "cumulative_tested_eligible_endpoints",
                        ][..],
                    ]
                    .concat(),
                );
                for r in &h.runs {
                    let mut row = vec![
                        r.run.to_string(),
                        r.kind.clone(),
                        r.source.clone(),
                        r.started_at.clone(),
                    ];
                    if ci {
                        let c = r.ci.as_ref();
                        row.extend([
                            c.and_then(|c| c.job.clone()).unwrap_or_default(),
                            c.and_then(|c| c.build.clone()).unwrap_or_default(),
                            c.and_then(|c| c.result.clone()).unwrap_or_default(),
                            c.and_then(|c| c.version.clone()).unwrap_or_default(),
                        ]);
                    }
                    row.extend([
                        o(&r.release),
                        n(r.requests),
                        n(r.total_endpoints),
                        n(r.tested_endpoints),
                        n(r.conf_tested_endpoints),
                        n(r.eligible_endpoints),
                        n(r.tested_eligible_endpoints),
                        n(r.conf_tested_eligible_endpoints),
                        n(r.cumulative_tested_endpoints),
                        n(r.cumulative_tested_eligible_endpoints),
                    ]);
                    runs.row(row);
                }
                let mut rel = Table::new(
                    "releases",
                    &[
                        "release",
                        "requests",
                        "total_endpoints",
                        "tested_endpoints",
                        "conf_tested_endpoints",
                        "eligible_endpoints",
                        "tested_eligible_endpoints",
                        "conf_tested_eligible_endpoints",
                    ],
                );
                for r in &h.releases {
                    rel.row(vec![
                        r.release.clone(),
                        n(r.requests),
                        n(r.total_endpoints),
                        n(r.tested_endpoints),
                        n(r.conf_tested_endpoints),
                        n(r.eligible_endpoints),
                        n(r.tested_eligible_endpoints),
                        n(r.conf_tested_eligible_endpoints),
                    ]);
                }
                vec![runs, rel]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        ep: &str,
        level: &str,
        cat: &str,
        tested: bool,
        conf: bool,
        eligible: bool,
    ) -> EndpointRow {
        EndpointRow {
            endpoint: ep.into(),
            method: "get".into(),
            path: format!("/{ep}"),
            level: level.into(),
            category: cat.into(),
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
            action: "get".into(),
            tested,
            conf_tested: conf,
            eligible,
            pending: false,
            hits: tested as u64,
            apps: 0,
            tests: 0,
            locs: 0,
        }
    }

    fn rows() -> Vec<EndpointRow> {
        vec![
            row("b", "alpha", "apps", false, false, false),
            row("a", "stable", "core", true, true, true),
            row("c", "stable", "core", true, false, true),
            row("d", "stable", "apps", false, false, false),
            row("e", "beta", "core", true, false, false),
        ]
    }

    #[test]
    fn coverage_counts_per_level_and_category_in_apisnoop_order() {
        let c = coverage("1.36.0", Counting::Tests, 7, &rows());
        assert_eq!(
            c.totals,
            Counts {
                total: 5,
                tested: 3,
                conf_tested: 1,
                eligible: 2,
                tested_eligible: 2,
                conf_tested_eligible: 1,
                pending: 0,
                conf_tested_pending: 0
            }
        );
        let levels: Vec<(&str, u64, u64)> = c
            .by_level
            .iter()
            .map(|l| (l.level.as_str(), l.counts.total, l.counts.tested))
            .collect();
        assert_eq!(levels, [("stable", 3, 2), ("beta", 1, 1), ("alpha", 1, 0)]);
        let cats: Vec<(&str, &str, u64)> = c
            .by_category
            .iter()
            .map(|l| (l.level.as_str(), l.category.as_str(), l.counts.total))
            .collect();
        assert_eq!(
            cats,
            [
                ("stable", "apps", 1),
                ("stable", "core", 2),
                ("beta", "core", 1),
                ("alpha", "apps", 1)
            ]
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["by_level"][0]["tested_eligible"], 2);
        assert_eq!(json["by_category"][1]["category"], "core");
    }

    #[test]
    fn sunburst_nests_levels_categories_endpoints() {
        let s = sunburst("1.36.0", Counting::Any, &rows());
        type Shape = Vec<(String, Vec<(String, Vec<String>)>)>;
        let shape: Shape = s
            .levels
            .iter()
            .map(|l| {
                (
                    l.level.clone(),
                    l.categories
                        .iter()
                        .map(|c| {
                            (
                                c.category.clone(),
                                c.endpoints.iter().map(|e| e.endpoint.clone()).collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    "stable".to_string(),
                    vec![
                        ("apps".to_string(), vec!["d".to_string()]),
                        ("core".into(), vec!["a".into(), "c".into()])
                    ]
                ),
                ("beta".into(), vec![("core".into(), vec!["e".into()])]),
                ("alpha".into(), vec![("apps".into(), vec!["b".into()])]),
            ]
        );
        assert_eq!(s.levels[0].counts.tested, 2);
        assert_eq!(s.totals.total, 5);
    }
}
