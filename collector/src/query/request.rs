//! What a query asks: the filters every query shares, the `(name, value)` parameters a query
//! reads its own options from ([`Given`]), and the parsed [`Request`].

use std::any::Any;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::Connection;
use serde::Serialize;

use super::{Answer, Entry, Error, QUERIES, Query, Result};

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
    /// Hit by a test, or by another program on a test's behalf (the `indirect` query's rule
    /// with its default grace period): what tests exercise through controllers counts too.
    Indirect,
}

impl FromStr for Counting {
    type Err = &'static str;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "tests" => Ok(Counting::Tests),
            "conformance" => Ok(Counting::Conformance),
            "any" => Ok(Counting::Any),
            "indirect" => Ok(Counting::Indirect),
            _ => Err("tests, conformance, any or indirect"),
        }
    }
}

impl fmt::Display for Counting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Counting::Tests => "tests",
            Counting::Conformance => "conformance",
            Counting::Any => "any",
            Counting::Indirect => "indirect",
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

/// A parameter a query takes beyond the filters: its name in HTTP and as a CLI flag
/// (`--NAME`), and its help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// `counting`, `min-support`, ...
    pub name: &'static str,
    /// The CLI's placeholder for its value; `None`: a switch (`--rbac`, `?rbac=true`).
    pub value_name: Option<&'static str>,
    /// What it does, in a sentence without the final period.
    pub help: &'static str,
}

impl Param {
    /// A parameter with a value.
    pub const fn value(name: &'static str, value_name: &'static str, help: &'static str) -> Param {
        Param {
            name,
            value_name: Some(value_name),
            help,
        }
    }

    /// A switch: `true` or `false`, `true` when given without a value.
    pub const fn switch(name: &'static str, help: &'static str) -> Param {
        Param {
            name,
            value_name: None,
            help,
        }
    }
}

/// `counting`, as the coverage queries take it.
pub const COUNTING: Param = Param::value(
    "counting",
    "RULE",
    "What makes an endpoint tested: tests, conformance, any or indirect (tests with what others did on their behalf)",
);

/// `limit`, as the queries with long lists take it.
pub const LIMIT: Param = Param::value("limit", "N", "Longest list returned");

/// The parameters given to one query, less the filters: each query takes its own with the
/// methods below; what is left is not one of its parameters (an error).
#[derive(Debug)]
pub struct Given {
    query: &'static str,
    pairs: Vec<(String, String)>,
}

impl Given {
    /// Every value of `name` (or an alias), in the order given; they are no longer left.
    fn take(&mut self, names: &[&str]) -> Vec<(String, String)> {
        let (taken, left) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| names.contains(&k.as_str()));
        self.pairs = left;
        taken
    }

    /// The last value of `name` (or an alias), each value checked by `parse`.
    pub fn parsed<T>(
        &mut self,
        names: &[&str],
        parse: impl Fn(&str, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut last = None;
        for (k, v) in self.take(names) {
            last = Some(parse(&k, &v)?);
        }
        Ok(last)
    }

    /// A non-empty text.
    pub fn text(&mut self, name: &str) -> Result<Option<String>> {
        self.parsed(&[name], nonempty)
    }

    /// Any text, empty included.
    pub fn any_text(&mut self, name: &str) -> Result<Option<String>> {
        self.parsed(&[name], |_, v| Ok(v.to_owned()))
    }

    /// A value that parses as `T` (`expected` says how it should look).
    pub fn value<T: FromStr>(&mut self, name: &str, expected: &'static str) -> Result<Option<T>> {
        self.parsed(&[name], |k, v| parse(k, v, expected))
    }

    /// `true` or `false` (empty: `true`).
    pub fn bool(&mut self, name: &str) -> Result<Option<bool>> {
        self.parsed(&[name], parse_bool)
    }

    /// A switch: `false` unless given.
    pub fn switch(&mut self, name: &str) -> Result<bool> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    /// A positive integer.
    pub fn positive(&mut self, name: &str) -> Result<Option<usize>> {
        self.parsed(&[name], parse_limit)
    }

    /// [`COUNTING`], by default `tests`.
    pub fn counting(&mut self) -> Result<Counting> {
        Ok(self
            .value(COUNTING.name, "tests, conformance, any or indirect")?
            .unwrap_or_default())
    }

    /// A missing required parameter's error.
    pub fn missing(name: &'static str) -> Error {
        Error::MissingParam(name)
    }

    /// The first parameter left: none of the query's.
    fn finish(self) -> Result<()> {
        match self.pairs.into_iter().next() {
            Some((k, _)) => Err(Error::UnknownParam(k, self.query)),
            None => Ok(()),
        }
    }
}

/// A query's parsed options, as the registry runs them.
pub(crate) trait Asked: Any + fmt::Debug + Send + Sync {
    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer>;
    fn as_any(&self) -> &dyn Any;
}

impl<Q: Query> Asked for Q {
    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Query::run(self, conn, f)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

pub(crate) fn parse_boxed<Q: Query>(g: &mut Given) -> Result<Box<dyn Asked>> {
    Ok(Box::new(Q::parse(g)?))
}

/// A query with its options and filters, ready to run.
#[derive(Debug)]
pub struct Request {
    entry: &'static Entry,
    asked: Box<dyn Asked>,
    /// The filters.
    pub filters: Filters,
}

fn nonempty(name: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        Err(Error::BadValue {
            name: name.to_owned(),
            value: String::new(),
            expected: "a non-empty value",
        })
    } else {
        Ok(value.to_owned())
    }
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

fn parse_time(name: &str, value: &str) -> Result<Timestamp> {
    parse(name, value, "an RFC 3339 time such as 2026-11-20T10:00:00Z")
}

pub(crate) fn parse_limit(name: &str, value: &str) -> Result<usize> {
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
        let entry = QUERIES
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Error::UnknownQuery(name.to_owned()))?;
        let mut given = Given {
            query: entry.name,
            pairs: params
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .collect(),
        };
        let filters = Filters {
            release: given.text("release")?,
            app: given.text("app")?,
            test: given.text("test")?,
            sig: given.text("sig")?,
            conformance: given.switch("conformance")?,
            since: given.parsed(&["since"], parse_time)?,
            until: given.parsed(&["until"], parse_time)?,
            ok_only: given.switch("ok-only")?,
        };
        let asked = match (entry.parse)(&mut given) {
            // A parameter the query does not take says more than the one it misses (`diff
            // run=1`: `run` is not one of diff's, rather than "missing `base`").
            Err(e @ Error::MissingParam(_)) => {
                given.finish()?;
                return Err(e);
            }
            asked => asked?,
        };
        given.finish()?;
        Ok(Request {
            entry,
            asked,
            filters,
        })
    }

    /// Whether the answer reads the journeys rollup, which the store counts when asked
    /// ([`crate::store::Store::fold_journeys`]): `journeys` and `suggest`.
    pub fn reads_journeys(&self) -> bool {
        matches!(self.entry.name, "journeys" | "suggest")
    }

    /// Whether the answer reads the `apps --rbac` answers the store keeps per app, which it
    /// derives again when asked ([`crate::store::Store::refresh_rbac`]).
    pub fn reads_rbac(&self) -> bool {
        self.options::<super::apps::Params>()
            .is_some_and(|p| p.rbac)
    }

    /// The query's name.
    pub fn name(&self) -> &'static str {
        self.entry.name
    }

    /// The query's options, when they are a `Q` (`None`: another query's).
    pub fn options<Q: Query>(&self) -> Option<&Q> {
        self.asked.as_any().downcast_ref()
    }

    /// Answers it on a read connection (`store::open_reader`).
    pub fn run(&self, conn: &Connection) -> Result<Answer> {
        self.asked.run(conn, &self.filters)
    }
}

/// Asserts that query `name` parses `params` into `want` (each query's tests use it).
#[cfg(test)]
pub(crate) fn options<Q: Query + PartialEq>(name: &str, params: &[(&str, &str)], want: Q) {
    let got = Request::from_params(name, params.iter().copied()).unwrap();
    assert_eq!(got.name(), name);
    assert_eq!(got.options::<Q>(), Some(&want), "{name} {params:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a, T> = (&'a str, &'a [(&'a str, &'a str)], T);

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
}
