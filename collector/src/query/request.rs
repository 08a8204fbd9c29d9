//! What a query asks: its name, options and the filters every query shares.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::Serialize;

use super::{Error, Result};

/// Every query's name, as in `query <name>` and `/api/v1/<name>`.
pub const QUERY_NAMES: &[&str] = &[
    "releases",
    "coverage",
    "sunburst",
    "endpoints",
    "endpoint",
    "loc",
    "search",
    "apps",
    "tests",
    "deps",
    "journeys",
    "suggest",
    "history",
    "deprecated",
    "gate",
    "diff",
    "indirect",
    "progress",
];

/// What makes an endpoint "tested".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Counting {
    /// Hit by a request from a test (APISnoop's rule).
    #[default]
    Tests,
    /// Hit by a request from a conformance test.
    Conformance,
    /// Hit by a request from any program.
    Any,
}

impl FromStr for Counting {
    type Err = &'static str;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "tests" => Ok(Counting::Tests),
            "conformance" => Ok(Counting::Conformance),
            "any" => Ok(Counting::Any),
            _ => Err("tests, conformance or any"),
        }
    }
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Counting::Tests => "tests",
            Counting::Conformance => "conformance",
            Counting::Any => "any",
        })
    }
}

/// The filters every query takes; each narrows the requests counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filters {
    /// Release label; `None`: the release loaded last.
    pub release: Option<String>,
    /// Identity name equal to it, or identity text starting with it.
    pub app: Option<String>,
    /// Substring of the test name.
    pub test: Option<String>,
    /// The test's SIG (`sig-node` or `node`).
    pub sig: Option<String>,
    /// Only requests from conformance tests.
    pub conformance: bool,
    /// Only requests received at or after.
    pub since: Option<Timestamp>,
    /// Only requests received before.
    pub until: Option<Timestamp>,
    /// Only requests answered 2xx.
    pub ok_only: bool,
}

impl Filters {
    /// The SIG as stored (`sig-node`), whether given as `node` or `sig-node`.
    pub fn sig_label(&self) -> Option<String> {
        self.sig.as_ref().map(|s| {
            if s.starts_with("sig-") {
                s.clone()
            } else {
                format!("sig-{s}")
            }
        })
    }

    /// Whether a time window is set (answered from `requests`, not from rollups).
    pub fn has_window(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }

    /// Whether any filter narrows which requests count (beyond the release).
    pub fn narrows(&self) -> bool {
        self.app.is_some()
            || self.test.is_some()
            || self.sig.is_some()
            || self.conformance
            || self.has_window()
            || self.ok_only
    }
}

/// A line of code, a file, or a function path prefix, as `loc` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocSpec {
    /// `file:line`.
    FileLine(String, i64),
    /// A file (matched whole, or as the tail of a path after a `/`).
    File(String),
    /// A function path prefix (`shop_controller::inventory`).
    Function(String),
}

impl FromStr for LocSpec {
    type Err = &'static str;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("file:line, a file or a function path prefix");
        }
        if let Some((file, line)) = s.rsplit_once(':')
            && !file.ends_with(':')
            && !file.is_empty()
            && let Ok(line) = line.parse::<i64>()
        {
            return Ok(LocSpec::FileLine(file.to_owned(), line));
        }
        let last = s.rsplit('/').next().unwrap_or(s);
        if !s.contains("::") && (s.contains('/') || last.contains('.')) {
            Ok(LocSpec::File(s.to_owned()))
        } else {
            Ok(LocSpec::Function(s.to_owned()))
        }
    }
}

/// Options of `endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointsOptions {
    /// What makes an endpoint tested.
    pub counting: Counting,
    /// Only this level.
    pub level: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this API group (`core` or `""` for the core group).
    pub group: Option<String>,
    /// Only tested (`true`) or untested (`false`) endpoints.
    pub tested: Option<bool>,
    /// Only eligible (`true`) or ineligible (`false`) endpoints.
    pub eligible: Option<bool>,
    /// Only endpoints this SIG owns (`sig-storage` or `storage`), per the SIG table.
    pub owner: Option<String>,
}

/// Options of `journeys` (and of the journeys `suggest` draws on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JourneyOptions {
    /// Episodes a sequence must appear in.
    pub min_support: u64,
    /// Longest sequence mined.
    pub max_len: usize,
    /// Seconds without a request that end an episode.
    pub gap_secs: u64,
    /// Journeys returned (the most supported).
    pub limit: usize,
}

impl Default for JourneyOptions {
    fn default() -> Self {
        JourneyOptions {
            min_support: 2,
            max_len: 4,
            gap_secs: 60,
            limit: 100,
        }
    }
}

/// One query with its own options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Query {
    /// Releases in the database.
    Releases,
    /// APISnoop's totals, by level and category.
    Coverage {
        /// What makes an endpoint tested.
        counting: Counting,
        /// Write APISnoop's coverage JSON instead.
        apisnoop: bool,
    },
    /// Coverage per owning SIG (`coverage --by sig`).
    SigCoverage {
        /// What makes an endpoint tested.
        counting: Counting,
    },
    /// Coverage as a level → category → endpoint tree.
    Sunburst {
        /// What makes an endpoint tested.
        counting: Counting,
    },
    /// Each endpoint with hits, apps, tests and lines of code.
    Endpoints(EndpointsOptions),
    /// One endpoint: its lines of code, apps, tests, codes and purposes.
    Endpoint {
        /// operationId.
        endpoint: String,
        /// Longest list returned.
        limit: usize,
    },
    /// The endpoints a line of code reaches.
    Loc {
        /// What to look for.
        loc: LocSpec,
        /// As given.
        text: String,
    },
    /// Functions and files matching a substring.
    Search {
        /// The substring.
        q: String,
        /// Longest list returned.
        limit: usize,
    },
    /// Program identities and what they use.
    Apps {
        /// RBAC rules instead.
        rbac: bool,
    },
    /// Tests and their endpoints.
    Tests {
        /// Endpoints programs use and no test does, instead.
        gaps: bool,
    },
    /// Programs that write what other programs read.
    Deps {
        /// Edges kept (those with the most requests).
        limit: usize,
    },
    /// Frequent ordered endpoint sequences.
    Journeys(JourneyOptions),
    /// Skeleton tests for untested eligible endpoints.
    Suggest {
        /// Longest list returned.
        limit: usize,
        /// How journeys are mined.
        journeys: JourneyOptions,
    },
    /// Coverage per ingest run and per release.
    History {
        /// What makes an endpoint tested.
        counting: Counting,
    },
    /// Programs and lines of code calling deprecated APIs.
    Deprecated {
        /// Only APIs removed in this release or earlier.
        removed_in: Option<super::deprecated::Release>,
    },
    /// The release-blocking conformance check.
    Gate {
        /// Only these runs' requests (default: every run).
        run: Option<super::runs::RunSel>,
        /// Fail only on what got worse than this (CLI `--baseline FILE`).
        baseline: Option<super::gate::Baseline>,
    },
    /// Coverage changes between two sets of runs.
    Diff {
        /// Before.
        base: super::runs::RunSel,
        /// After.
        head: super::runs::RunSel,
    },
    /// Conformance progress per release.
    Progress,
    /// Requests other programs made on tests' behalf.
    Indirect {
        /// How long after a test's last request in a namespace it still owns it.
        grace_secs: u64,
    },
}

impl Query {
    /// The query's name.
    pub fn name(&self) -> &'static str {
        match self {
            Query::Releases => "releases",
            Query::Coverage { .. } | Query::SigCoverage { .. } => "coverage",
            Query::Sunburst { .. } => "sunburst",
            Query::Endpoints(_) => "endpoints",
            Query::Endpoint { .. } => "endpoint",
            Query::Loc { .. } => "loc",
            Query::Search { .. } => "search",
            Query::Apps { .. } => "apps",
            Query::Tests { .. } => "tests",
            Query::Deps { .. } => "deps",
            Query::Journeys(_) => "journeys",
            Query::Suggest { .. } => "suggest",
            Query::History { .. } => "history",
            Query::Deprecated { .. } => "deprecated",
            Query::Gate { .. } => "gate",
            Query::Diff { .. } => "diff",
            Query::Indirect { .. } => "indirect",
            Query::Progress => "progress",
        }
    }
}

/// A query with its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The query.
    pub query: Query,
    /// The filters.
    pub filters: Filters,
}

fn parse<T: FromStr>(name: &str, value: &str, expected: &'static str) -> Result<T> {
    value.parse().map_err(|_| Error::BadValue {
        name: name.to_owned(),
        value: value.to_owned(),
        expected,
    })
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

fn parse_counting(name: &str, value: &str) -> Result<Counting> {
    parse(name, value, "tests, conformance or any")
}

fn parse_time(name: &str, value: &str) -> Result<Timestamp> {
    parse(name, value, "an RFC 3339 time such as 2026-11-20T10:00:00Z")
}

fn parse_limit(name: &str, value: &str) -> Result<usize> {
    let n: usize = parse(name, value, "a positive integer")?;
    if n == 0 {
        return Err(Error::BadValue {
            name: name.to_owned(),
            value: value.to_owned(),
            expected: "a positive integer",
        });
    }
    Ok(n)
}

impl Request {
    /// Parses a query by name from `(parameter, value)` pairs: HTTP query parameters, or CLI
    /// flags without their `--`. An unknown parameter or a bad value is an error.
    pub fn from_params<I, K, V>(name: &str, params: I) -> Result<Request>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let qname: &'static str = QUERY_NAMES
            .iter()
            .find(|n| **n == name)
            .ok_or_else(|| Error::UnknownQuery(name.to_owned()))?;
        let mut filters = Filters::default();
        let mut counting = Counting::default();
        let mut apisnoop = false;
        let mut by_sig = false;
        let mut eo = EndpointsOptions::default();
        let mut endpoint = None;
        let mut loc = None;
        let mut q = None;
        let mut limit = None;
        let mut flag = false;
        let mut jo = JourneyOptions::default();
        let mut removed_in = None;
        let mut runs: [Option<super::runs::RunSel>; 3] = [None, None, None];
        let mut grace_secs = super::indirect::DEFAULT_GRACE_SECS;
        for (k, v) in params {
            let (k, v) = (k.as_ref(), v.as_ref());
            let nonempty = |v: &str| -> Result<String> {
                if v.is_empty() {
                    Err(Error::BadValue {
                        name: k.to_owned(),
                        value: String::new(),
                        expected: "a non-empty value",
                    })
                } else {
                    Ok(v.to_owned())
                }
            };
            let takes = |names: &[&str]| names.contains(&qname);
            match k {
                "release" => filters.release = Some(nonempty(v)?),
                "app" => filters.app = Some(nonempty(v)?),
                "test" => filters.test = Some(nonempty(v)?),
                "sig" => filters.sig = Some(nonempty(v)?),
                "conformance" => filters.conformance = parse_bool(k, v)?,
                "since" => filters.since = Some(parse_time(k, v)?),
                "until" => filters.until = Some(parse_time(k, v)?),
                "ok-only" => filters.ok_only = parse_bool(k, v)?,
                "counting" if takes(&["coverage", "sunburst", "endpoints", "history"]) => {
                    counting = parse_counting(k, v)?
                }
                "export" if qname == "coverage" => {
                    if v != "apisnoop" {
                        return Err(Error::BadValue {
                            name: k.to_owned(),
                            value: v.to_owned(),
                            expected: "apisnoop",
                        });
                    }
                    apisnoop = true;
                }
                "by" if qname == "coverage" => {
                    if v != "sig" {
                        return Err(Error::BadValue {
                            name: k.to_owned(),
                            value: v.to_owned(),
                            expected: "sig",
                        });
                    }
                    by_sig = true;
                }
                "owner" if qname == "endpoints" => eo.owner = Some(nonempty(v)?),
                "level" if qname == "endpoints" => eo.level = Some(nonempty(v)?),
                "category" if qname == "endpoints" => eo.category = Some(nonempty(v)?),
                "group" if qname == "endpoints" => eo.group = Some(v.to_owned()),
                "tested" if qname == "endpoints" => eo.tested = Some(parse_bool(k, v)?),
                "eligible" if qname == "endpoints" => eo.eligible = Some(parse_bool(k, v)?),
                "endpoint" if qname == "endpoint" => endpoint = Some(nonempty(v)?),
                "loc" if qname == "loc" => {
                    loc = Some((
                        parse::<LocSpec>(k, v, "file:line, a file or a function path prefix")?,
                        v.trim().to_owned(),
                    ))
                }
                "q" if qname == "search" => q = Some(nonempty(v)?),
                "limit" if takes(&["endpoint", "search", "suggest", "deps", "journeys"]) => {
                    limit = Some(parse_limit(k, v)?)
                }
                "rbac" if qname == "apps" => flag = parse_bool(k, v)?,
                "gaps" if qname == "tests" => flag = parse_bool(k, v)?,
                "min-support" if takes(&["journeys", "suggest"]) => {
                    jo.min_support = parse_limit(k, v)? as u64
                }
                "max-len" if takes(&["journeys", "suggest"]) => {
                    jo.max_len = parse_limit(k, v)?;
                    if jo.max_len < 2 {
                        return Err(Error::BadValue {
                            name: k.to_owned(),
                            value: v.to_owned(),
                            expected: "an integer of at least 2",
                        });
                    }
                }
                "gap" if takes(&["journeys", "suggest"]) => jo.gap_secs = parse_limit(k, v)? as u64,
                // `removed_in` as well: the spelling of the issue that asked for the route.
                "removed-in" | "removed_in" if qname == "deprecated" => {
                    removed_in = Some(parse(k, v, "a release such as 1.37")?)
                }
                "run" | "base" | "head" if takes(&["gate", "diff"]) => {
                    let i = ["run", "base", "head"]
                        .iter()
                        .position(|n| *n == k)
                        .unwrap_or(0);
                    if (i == 0) != (qname == "gate") {
                        return Err(Error::UnknownParam(k.to_owned(), qname));
                    }
                    runs[i] = Some(parse(k, v, super::runs::EXPECTED)?)
                }
                "grace" if qname == "indirect" => grace_secs = parse(k, v, "a number of seconds")?,
                _ => return Err(Error::UnknownParam(k.to_owned(), qname)),
            }
        }
        eo.counting = counting;
        if qname == "journeys"
            && let Some(l) = limit
        {
            jo.limit = l;
        }
        let query = match qname {
            "releases" => Query::Releases,
            "coverage" if by_sig && apisnoop => {
                return Err(Error::BadValue {
                    name: "by".to_owned(),
                    value: "sig".to_owned(),
                    expected: "no --export apisnoop beside it",
                });
            }
            "coverage" if by_sig => Query::SigCoverage { counting },
            "coverage" => Query::Coverage { counting, apisnoop },
            "sunburst" => Query::Sunburst { counting },
            "endpoints" => Query::Endpoints(eo),
            "endpoint" => Query::Endpoint {
                endpoint: endpoint.ok_or(Error::MissingParam("endpoint"))?,
                limit: limit.unwrap_or(100),
            },
            "loc" => {
                let (loc, text) = loc.ok_or(Error::MissingParam("loc"))?;
                Query::Loc { loc, text }
            }
            "search" => Query::Search {
                q: q.ok_or(Error::MissingParam("q"))?,
                limit: limit.unwrap_or(50),
            },
            "apps" => Query::Apps { rbac: flag },
            "tests" => Query::Tests { gaps: flag },
            "deps" => Query::Deps {
                limit: limit.unwrap_or(100),
            },
            "journeys" => Query::Journeys(jo),
            "suggest" => Query::Suggest {
                limit: limit.unwrap_or(20),
                journeys: jo,
            },
            "history" => Query::History { counting },
            "deprecated" => Query::Deprecated { removed_in },
            "gate" => Query::Gate {
                run: runs[0].take(),
                baseline: None,
            },
            "diff" => Query::Diff {
                base: runs[1].take().ok_or(Error::MissingParam("base"))?,
                head: runs[2].take().ok_or(Error::MissingParam("head"))?,
            },
            "indirect" => Query::Indirect { grace_secs },
            "progress" => Query::Progress,
            _ => unreachable!("QUERY_NAMES and this match list the same names"),
        };
        Ok(Request { query, filters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a, T> = (&'a str, &'a [(&'a str, &'a str)], T);

    #[test]
    fn parses_every_query_and_its_options() {
        let cases: &[Case<'_, Query>] = &[
            ("releases", &[], Query::Releases),
            (
                "coverage",
                &[("counting", "any"), ("export", "apisnoop")],
                Query::Coverage {
                    counting: Counting::Any,
                    apisnoop: true,
                },
            ),
            (
                "sunburst",
                &[],
                Query::Sunburst {
                    counting: Counting::Tests,
                },
            ),
            (
                "endpoints",
                &[
                    ("level", "stable"),
                    ("tested", "false"),
                    ("eligible", "true"),
                    ("group", ""),
                ],
                Query::Endpoints(EndpointsOptions {
                    level: Some("stable".into()),
                    tested: Some(false),
                    eligible: Some(true),
                    group: Some(String::new()),
                    ..Default::default()
                }),
            ),
            (
                "endpoint",
                &[("endpoint", "listCoreV1Pod"), ("limit", "5")],
                Query::Endpoint {
                    endpoint: "listCoreV1Pod".into(),
                    limit: 5,
                },
            ),
            (
                "loc",
                &[("loc", "src/main.rs:17")],
                Query::Loc {
                    loc: LocSpec::FileLine("src/main.rs".into(), 17),
                    text: "src/main.rs:17".into(),
                },
            ),
            (
                "search",
                &[("q", "reconcile")],
                Query::Search {
                    q: "reconcile".into(),
                    limit: 50,
                },
            ),
            ("apps", &[("rbac", "true")], Query::Apps { rbac: true }),
            ("tests", &[("gaps", "")], Query::Tests { gaps: true }),
            ("deps", &[("limit", "7")], Query::Deps { limit: 7 }),
            (
                "journeys",
                &[
                    ("min-support", "3"),
                    ("max-len", "2"),
                    ("gap", "5"),
                    ("limit", "9"),
                ],
                Query::Journeys(JourneyOptions {
                    min_support: 3,
                    max_len: 2,
                    gap_secs: 5,
                    limit: 9,
                }),
            ),
            (
                "suggest",
                &[("limit", "1")],
                Query::Suggest {
                    limit: 1,
                    journeys: JourneyOptions::default(),
                },
            ),
            (
                "history",
                &[("counting", "conformance")],
                Query::History {
                    counting: Counting::Conformance,
                },
            ),
            (
                "deprecated",
                &[("removed-in", "1.37")],
                Query::Deprecated {
                    removed_in: Some("1.37".parse().unwrap()),
                },
            ),
            (
                "deprecated",
                &[("removed_in", "v1.9")],
                Query::Deprecated {
                    removed_in: Some("1.9".parse().unwrap()),
                },
            ),
            ("deprecated", &[], Query::Deprecated { removed_in: None }),
            (
                "gate",
                &[("run", "ci:ci-kubernetes-e2e/1790")],
                Query::Gate {
                    run: Some(super::super::runs::RunSel::Ci(
                        "ci-kubernetes-e2e/1790".into(),
                    )),
                    baseline: None,
                },
            ),
            (
                "diff",
                &[("base", "release:1.35.0"), ("head", "4")],
                Query::Diff {
                    base: super::super::runs::RunSel::Release("1.35.0".into()),
                    head: super::super::runs::RunSel::Run(4),
                },
            ),
        ];
        for (name, params, want) in cases {
            let got = Request::from_params(name, params.iter().copied()).unwrap();
            assert_eq!(&got.query, want, "{name}");
        }
    }

    #[test]
    fn parses_filters() {
        let r = Request::from_params(
            "coverage",
            [
                ("release", "1.36.0"),
                ("app", "shop"),
                ("test", "pods"),
                ("sig", "node"),
                ("conformance", "true"),
                ("since", "2026-11-20T10:00:00Z"),
                ("until", "2026-11-20T11:00:00Z"),
                ("ok-only", "true"),
            ],
        )
        .unwrap();
        let f = r.filters;
        assert_eq!(f.release.as_deref(), Some("1.36.0"));
        assert_eq!(f.app.as_deref(), Some("shop"));
        assert_eq!(f.sig_label().as_deref(), Some("sig-node"));
        assert!(f.conformance && f.ok_only && f.has_window() && f.narrows());
        assert_eq!(f.since.unwrap().as_second(), 1_795_168_800);
    }

    #[test]
    fn rejects_bad_input_with_what_and_where() {
        let cases: &[Case<'_, &str>] = &[
            ("nope", &[], "unknown query `nope`"),
            (
                "coverage",
                &[("level", "stable")],
                "unknown parameter `level` for query `coverage`",
            ),
            (
                "coverage",
                &[("ok-only", "yes")],
                "bad value \"yes\" for `ok-only`: expected true or false",
            ),
            (
                "coverage",
                &[("counting", "all")],
                "bad value \"all\" for `counting`",
            ),
            (
                "coverage",
                &[("since", "yesterday")],
                "bad value \"yesterday\" for `since`",
            ),
            (
                "coverage",
                &[("export", "csv")],
                "bad value \"csv\" for `export`",
            ),
            ("endpoint", &[], "missing parameter `endpoint`"),
            (
                "endpoint",
                &[("endpoint", "x"), ("limit", "0")],
                "bad value \"0\" for `limit`",
            ),
            ("loc", &[("loc", " ")], "bad value \" \" for `loc`"),
            (
                "journeys",
                &[("max-len", "1")],
                "bad value \"1\" for `max-len`",
            ),
            ("coverage", &[("app", "")], "bad value \"\" for `app`"),
            (
                "deprecated",
                &[("removed-in", "next")],
                "bad value \"next\" for `removed-in`: expected a release such as 1.37",
            ),
            ("diff", &[("base", "1")], "missing parameter `head`"),
            (
                "diff",
                &[("run", "1")],
                "unknown parameter `run` for query `diff`",
            ),
            (
                "gate",
                &[("base", "1")],
                "unknown parameter `base` for query `gate`",
            ),
            ("gate", &[("run", "ci:")], "bad value \"ci:\" for `run`"),
            (
                "coverage",
                &[("removed-in", "1.37")],
                "unknown parameter `removed-in` for query `coverage`",
            ),
        ];
        for (name, params, want) in cases {
            let err = Request::from_params(name, params.iter().copied()).unwrap_err();
            assert!(
                err.to_string().starts_with(want),
                "{name} {params:?}: {err}"
            );
        }
    }

    #[test]
    fn loc_spec_tells_lines_files_and_functions_apart() {
        let cases = [
            (
                "src/inventory.rs:42",
                LocSpec::FileLine("src/inventory.rs".into(), 42),
            ),
            ("inventory.rs", LocSpec::File("inventory.rs".into())),
            ("src/inventory.rs", LocSpec::File("src/inventory.rs".into())),
            (
                "shop_controller::inventory",
                LocSpec::Function("shop_controller::inventory".into()),
            ),
            ("main", LocSpec::Function("main".into())),
            (
                "kube_client::api::Api<K>::list",
                LocSpec::Function("kube_client::api::Api<K>::list".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<LocSpec>().unwrap(), want, "{text}");
        }
    }
}
