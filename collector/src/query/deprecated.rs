//! `deprecated`: which programs and lines of code call API versions kube-apiserver marked
//! deprecated, and the release that removes them (`query deprecated --removed-in 1.37`,
//! `GET /api/v1/deprecated?removed-in=1.37`).
//!
//! # Example
//! ```
//! use whakapapa_collector::query::{Request, deprecated::{Params, Release}};
//! let req = Request::from_params("deprecated", [("removed-in", "1.37")]).unwrap();
//! let want: Release = "1.37".parse().unwrap();
//! assert_eq!(req.options::<Params>(), Some(&Params { removed_in: Some(want) }));
//! assert!("1.9".parse::<Release>().unwrap() < "1.16".parse().unwrap());
//! ```
//!
//! What is deprecated is what the apiserver said per request (the `k8s.io/deprecated` and
//! `k8s.io/removed-release` audit annotations, kept in `request_deprecations` at ingest), not
//! what the catalog's descriptions say: the answer holds for the cluster that served the
//! requests. The rows are read from that small table joined to `requests` by id, so the query
//! costs what deprecated requests there are, never a scan of all requests. A row is a program,
//! its own line of code (the innermost frame outside kube-rs, as `deps` shows it) and the API
//! (`group/version/resource`, with its endpoint when mapped); requests without a purpose have
//! no line of code.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension as _};
use serde::Serialize;

use super::sql::{Sql, db, frames_of, own_line, time, when, who};
use super::{Answer, Error, Filters, Frame, Given, Param, Query, Render, Result, Table};

/// `deprecated`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// Only APIs removed in this release or earlier.
    pub removed_in: Option<Release>,
}

impl Query for Params {
    const NAME: &'static str = "deprecated";
    const PARAMS: &'static [Param] = &[Param::value(
        "removed-in",
        "RELEASE",
        "Only APIs removed in this release or earlier, such as 1.37",
    )];

    fn parse(g: &mut Given) -> Result<Self> {
        // `removed_in` as well: the spelling of the issue that asked for the route.
        let removed_in = g.parsed(&["removed-in", "removed_in"], |k, v| {
            v.parse().map_err(|expected| Error::BadValue {
                name: k.to_owned(),
                value: v.to_owned(),
                expected,
            })
        })?;
        Ok(Params { removed_in })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(run(conn, f, self.removed_in)?))
    }
}

/// A Kubernetes minor release (`1.25`), ordered by number: 1.9 < 1.16 < 1.37.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release {
    major: u32,
    minor: u32,
}

impl FromStr for Release {
    type Err = &'static str;
    /// `1.37`, `v1.37` or `1.37.0` (a removal is per minor release: the patch is ignored).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        const WANT: &str = "a release such as 1.37";
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = s.split('.');
        let mut number = || -> std::result::Result<u32, &'static str> {
            let p = parts.next().ok_or(WANT)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(WANT);
            }
            p.parse().map_err(|_| WANT)
        };
        let (major, minor) = (number()?, number()?);
        match parts.next() {
            None => {}
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {}
            Some(_) => return Err(WANT),
        }
        if parts.next().is_some() {
            return Err(WANT);
        }
        Ok(Release { major, minor })
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Requests of one program, from one line of code, to one deprecated API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeprecatedRow {
    /// Program name (the identity's name, else its text); empty without a user agent.
    pub app: String,
    /// The identity as sent.
    pub identity: String,
    /// The program's own line of code; `None` when the requests have no purpose.
    pub loc: Option<Frame>,
    /// `group/version/resource[/subresource]` as in the event's `objectRef` (core: `v1/...`).
    pub api: String,
    /// API group (`""` core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource.
    pub resource: String,
    /// The endpoint (operationId), when mapped to one.
    pub endpoint: Option<String>,
    /// `k8s.io/removed-release` as the apiserver wrote it; `None`: no removal planned.
    pub removed_release: Option<String>,
    /// Requests.
    pub requests: u64,
    /// The latest request's `requestReceivedTimestamp`.
    pub last_seen: String,
}

/// Whether a row's removal release is `removed_in` or earlier (a row with no removal, or one
/// that does not read as a release, is not).
fn removed_by(row: &DeprecatedRow, removed_in: Release) -> bool {
    row.removed_release
        .as_deref()
        .and_then(|r| r.parse::<Release>().ok())
        .is_some_and(|r| r <= removed_in)
}

/// Soonest removal first (none last), then the most requests, then by program and line.
fn order(a: &DeprecatedRow, b: &DeprecatedRow) -> Ordering {
    let key = |r: &DeprecatedRow| {
        let removed = r.removed_release.as_deref();
        let parsed = removed.and_then(|s| s.parse::<Release>().ok());
        (
            removed.is_none(),
            parsed.is_none(),
            parsed,
            removed.map(str::to_owned),
        )
    };
    key(a)
        .cmp(&key(b))
        .then_with(|| b.requests.cmp(&a.requests))
        .then_with(|| (&a.app, &a.loc, &a.api).cmp(&(&b.app, &b.loc, &b.api)))
}

/// Requests of one identity, purpose, API and removal, as the SQL groups them.
struct Group {
    app: String,
    identity: String,
    purpose: Option<i64>,
    endpoint: Option<String>,
    group: String,
    version: String,
    resource: String,
    subresource: Option<String>,
    removed: Option<String>,
    requests: u64,
    last_us: i64,
}

/// Answers `deprecated`: every deprecated API the requests the filters select called, or only
/// those removed in `removed_in` or earlier. `--release` keeps the requests mapped against that
/// release; without it, every request counts.
fn run(conn: &Connection, f: &Filters, removed_in: Option<Release>) -> Result<Vec<DeprecatedRow>> {
    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let mut w = when(&mut q, f);
    if let Some(label) = &f.release {
        let found: Option<i64> = conn
            .query_row("SELECT id FROM releases WHERE label = ?1", [label], |x| {
                x.get(0)
            })
            .optional()
            .map_err(db)?;
        let id = found.ok_or_else(|| Error::UnknownRelease(label.clone()))?;
        w += &format!(" AND r.release_id = {}", q.p(id));
    }
    let groups = q.rows(
        conn,
        &format!(
            "SELECT COALESCE(i.name, i.text, ''), COALESCE(i.text, ''), r.purpose_id, \
             e.operation_id, COALESCE(r.api_group, ''), COALESCE(r.api_version, ''), \
             COALESCE(r.resource, ''), r.subresource, d.removed_release, COUNT(*), \
             MAX(r.received_us) \
             FROM request_deprecations d JOIN requests r ON r.id = d.request_id{j} \
             LEFT JOIN identities i ON i.id = r.identity_id \
             LEFT JOIN endpoints e ON e.id = r.endpoint_id \
             WHERE {w} GROUP BY r.identity_id, 3, 4, 5, 6, 7, 8, 9"
        ),
        |x| {
            Ok(Group {
                app: x.get(0)?,
                identity: x.get(1)?,
                purpose: x.get(2)?,
                endpoint: x.get(3)?,
                group: x.get(4)?,
                version: x.get(5)?,
                resource: x.get(6)?,
                subresource: x.get(7)?,
                removed: x.get(8)?,
                requests: x.get::<_, i64>(9)? as u64,
                last_us: x.get(10)?,
            })
        },
    )?;
    let purposes: Vec<i64> = groups
        .iter()
        .filter_map(|g| g.purpose)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let frames = frames_of(conn, &purposes)?;
    // Purposes that differ deeper in the stack share the program's own line: one row.
    type Key = (
        String,
        String,
        Option<Frame>,
        String,
        Option<String>,
        Option<String>,
    );
    let mut merged: BTreeMap<Key, (DeprecatedRow, i64)> = BTreeMap::new();
    for g in groups {
        let loc = g
            .purpose
            .and_then(|p| frames.get(&p))
            .and_then(|fr| own_line(fr));
        let mut api = if g.group.is_empty() {
            format!("{}/{}", g.version, g.resource)
        } else {
            format!("{}/{}/{}", g.group, g.version, g.resource)
        };
        if let Some(s) = &g.subresource {
            api = format!("{api}/{s}");
        }
        let key = (
            g.app.clone(),
            g.identity.clone(),
            loc.clone(),
            api.clone(),
            g.endpoint.clone(),
            g.removed.clone(),
        );
        let (row, last_us) = merged.entry(key).or_insert_with(|| {
            let row = DeprecatedRow {
                app: g.app,
                identity: g.identity,
                loc,
                api,
                group: g.group,
                version: g.version,
                resource: g.resource,
                endpoint: g.endpoint,
                removed_release: g.removed,
                requests: 0,
                last_seen: String::new(),
            };
            (row, i64::MIN)
        });
        row.requests += g.requests;
        *last_us = (*last_us).max(g.last_us);
    }
    let mut rows: Vec<DeprecatedRow> = merged
        .into_values()
        .map(|(row, last_us)| DeprecatedRow {
            last_seen: time(last_us),
            ..row
        })
        .filter(|r| removed_in.is_none_or(|x| removed_by(r, x)))
        .collect();
    rows.sort_by(order);
    Ok(rows)
}

/// A row as the table lists it: the line of code split in two.
#[derive(Default, Serialize)]
struct RowCells<'a> {
    app: &'a str,
    line_of_code: String,
    function: &'a str,
    api: &'a str,
    endpoint: Option<&'a str>,
    removed_in: Option<&'a str>,
    requests: u64,
    last_seen: &'a str,
}

impl Render for Vec<DeprecatedRow> {
    /// One row per program, line of code and API.
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<RowCells<'_>> = self
            .iter()
            .map(|r| RowCells {
                app: &r.app,
                line_of_code: r
                    .loc
                    .as_ref()
                    .map(|f| format!("{}:{}", f.file, f.line))
                    .unwrap_or_default(),
                function: r.loc.as_ref().map_or("", |f| f.function.as_str()),
                api: &r.api,
                endpoint: r.endpoint.as_deref(),
                removed_in: r.removed_release.as_deref(),
                requests: r.requests,
                last_seen: &r.last_seen,
            })
            .collect();
        vec![Table::of("deprecated", &rows)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "deprecated",
            &[("removed-in", "1.37")],
            Params {
                removed_in: Some("1.37".parse().unwrap()),
            },
        );
        crate::query::request::options(
            "deprecated",
            &[("removed_in", "v1.9")],
            Params {
                removed_in: Some("1.9".parse().unwrap()),
            },
        );
        crate::query::request::options("deprecated", &[], Params { removed_in: None });
    }

    #[test]
    fn releases_compare_as_numbers() {
        let r = |s: &str| s.parse::<Release>().unwrap();
        assert!(r("1.9") < r("1.16"));
        assert!(r("1.16") < r("1.37"));
        assert!(r("1.37") < r("2.0"));
        assert_eq!(r("v1.25"), r("1.25"));
        assert_eq!(r("1.25.3"), r("1.25"));
        assert_eq!(r(" 1.25 ").to_string(), "1.25");
        for bad in [
            "", "1", "1.", ".25", "1.x", "one.two", "1.25.0.1", "1.25-rc", "-1.2",
        ] {
            assert!(bad.parse::<Release>().is_err(), "{bad:?}");
        }
    }

    fn row(removed: Option<&str>, requests: u64, app: &str) -> DeprecatedRow {
        DeprecatedRow {
            app: app.into(),
            identity: app.into(),
            loc: None,
            api: "batch/v1beta1/cronjobs".into(),
            group: "batch".into(),
            version: "v1beta1".into(),
            resource: "cronjobs".into(),
            endpoint: None,
            removed_release: removed.map(str::to_owned),
            requests,
            last_seen: String::new(),
        }
    }

    #[test]
    fn removed_in_keeps_that_release_and_earlier() {
        let by = |removed, x: &str| removed_by(&row(removed, 1, "a"), x.parse().unwrap());
        assert!(by(Some("1.25"), "1.37"));
        assert!(by(Some("1.37"), "1.37"));
        assert!(by(Some("1.9"), "1.16"), "1.9 is before 1.16");
        assert!(!by(Some("1.40"), "1.37"));
        assert!(!by(Some("1.16"), "1.9"));
        assert!(!by(None, "1.37"), "no removal planned");
        assert!(!by(Some("soon"), "1.37"), "not a release");
    }

    #[test]
    fn soonest_removal_first_then_most_requests() {
        let mut rows = [
            row(None, 50, "a"),
            row(Some("1.40"), 1, "b"),
            row(Some("1.9"), 1, "c"),
            row(Some("1.25"), 2, "d"),
            row(Some("1.25"), 9, "e"),
        ];
        rows.sort_by(order);
        let apps: Vec<&str> = rows.iter().map(|r| r.app.as_str()).collect();
        assert_eq!(apps, ["c", "e", "d", "b", "a"]);
    }
}
