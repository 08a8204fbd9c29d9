//! The SQL of the Query API: one function per query, each answering a [`query::Request`] on a
//! read connection ([`super::open_reader`]).
//!
//! Without `since`/`until` every query reads the rollups of migration 2 (`usage`,
//! `endpoint_usage`, `run_usage`), kept current at ingest; with a time window it scans
//! `requests`. `apps --rbac`, `deps` and `journeys` need per-request detail (objectRef, order in
//! time) and always scan `requests`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};

use crate::query::{
    self, Answer, AppHits, AppRow, CiRun, CodeHits, Counting, EndpointDetail, EndpointRow,
    EndpointsOptions, Error, FileMatch, Filters, Frame, FunctionMatch, GapRow, History,
    JourneyOptions, LocAnswer, LocEndpoint, LocHits, LocSpec, PurposeHits, Query, ReleaseCoverage,
    ReleaseRow, Request, RunCoverage, SearchAnswer, TestHits, TestRow, UsedEndpoint, VerbHits,
    apisnoop, deps, journeys, rbac, suggest,
};

type Result<T> = query::Result<T>;

pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::Database(Box::new(e))
}

/// Statement text plus its positional parameters, numbered as they are added.
#[derive(Default)]
pub(crate) struct Sql {
    params: Vec<Value>,
}

impl Sql {
    /// Adds a parameter; returns its placeholder.
    pub(crate) fn p(&mut self, v: impl Into<Value>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }

    pub(crate) fn rows<T>(
        &self,
        conn: &Connection,
        text: &str,
        mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut st = conn.prepare_cached(text).map_err(db)?;
        let rows = st
            .query_map(params_from_iter(self.params.iter()), |r| map(r))
            .map_err(db)?;
        rows.collect::<rusqlite::Result<Vec<T>>>().map_err(db)
    }
}

fn us(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

/// A stored RFC 3339 time at a fixed precision (microseconds), so columns line up.
fn fixed_time(s: String) -> String {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        .unwrap_or(s)
}

pub(crate) fn time(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Joins and conditions narrowing rows of `alias` (with identity_id, test_id columns) to the
/// filters other than the time window and the status code.
pub(crate) fn who(sql: &mut Sql, f: &Filters, alias: &str) -> String {
    let mut j = String::new();
    if let Some(app) = &f.app {
        let a = sql.p(app.clone());
        j += &format!(
            " JOIN identities fi ON fi.id = {alias}.identity_id AND (fi.name = {a} OR substr(fi.text, 1, length({a})) = {a})"
        );
    }
    if f.test.is_some() || f.sig.is_some() || f.conformance {
        j += &format!(" JOIN tests ft ON ft.id = {alias}.test_id");
        if let Some(t) = &f.test {
            j += &format!(" AND instr(ft.name, {}) > 0", sql.p(t.clone()));
        }
        if let Some(s) = f.sig_label() {
            j += &format!(" AND ft.sig = {}", sql.p(s));
        }
        if f.conformance {
            j += " AND ft.conformance = 1";
        }
    }
    j
}

/// Conditions on a `requests r` scan: the time window and 2xx.
pub(crate) fn when(sql: &mut Sql, f: &Filters) -> String {
    let mut w = String::from("1");
    if let Some(t) = f.since {
        w += &format!(" AND r.received_us >= {}", sql.p(us(t)));
    }
    if let Some(t) = f.until {
        w += &format!(" AND r.received_us < {}", sql.p(us(t)));
    }
    if f.ok_only {
        w += " AND r.status_code BETWEEN 200 AND 299";
    }
    w
}

/// `WITH src AS (...)`: (endpoint_id, identity_id, test_id, purpose_id, verb, code, hits,
/// first_us, last_us), ids 0 when absent, narrowed by the filters.
pub(crate) fn src(sql: &mut Sql, f: &Filters) -> String {
    if f.has_window() {
        let j = who(sql, f, "r");
        let w = when(sql, f);
        format!(
            "WITH src AS (SELECT COALESCE(r.endpoint_id, 0) AS endpoint_id, \
             COALESCE(r.identity_id, 0) AS identity_id, COALESCE(r.test_id, 0) AS test_id, \
             COALESCE(r.purpose_id, 0) AS purpose_id, r.verb AS verb, \
             COALESCE(r.status_code, 0) AS code, 1 AS hits, r.received_us AS first_us, \
             r.received_us AS last_us FROM requests r{j} WHERE {w})"
        )
    } else {
        let j = who(sql, f, "u");
        let w = if f.ok_only {
            "u.code BETWEEN 200 AND 299"
        } else {
            "1"
        };
        format!(
            "WITH src AS (SELECT u.endpoint_id, u.identity_id, u.test_id, u.purpose_id, u.verb, \
             u.code, u.hits, u.first_us, u.last_us FROM usage u{j} WHERE {w})"
        )
    }
}

/// The release asked for, or the one loaded last: (id, label, loaded_at).
pub(crate) fn release(conn: &Connection, f: &Filters) -> Result<(i64, String, String)> {
    let q = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
        conn.query_row(sql, p, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(db)
    };
    match &f.release {
        Some(label) => q(
            "SELECT id, label, loaded_at FROM releases WHERE label = ?1",
            &[label],
        )?
        .ok_or_else(|| Error::UnknownRelease(label.clone())),
        None => q(
            "SELECT id, label, loaded_at FROM releases ORDER BY id DESC LIMIT 1",
            &[],
        )?
        .ok_or(Error::NoRelease),
    }
}

/// Answers a request.
pub fn run(conn: &Connection, req: &Request) -> Result<Answer> {
    let f = &req.filters;
    Ok(match &req.query {
        Query::Releases => Answer::Releases(releases(conn, f)?),
        Query::Coverage { counting, apisnoop } => {
            let (rid, label, loaded_at) = release(conn, f)?;
            if *apisnoop {
                Answer::ApiSnoop(Box::new(apisnoop_export(conn, f, rid, &label, loaded_at)?))
            } else {
                let rows = endpoint_rows(conn, f, *counting, rid, None, false)?;
                let requests = rows.iter().map(|r| r.hits).sum();
                Answer::Coverage(query::coverage(&label, *counting, requests, &rows))
            }
        }
        Query::SigCoverage { counting } => {
            let (rid, label, _) = release(conn, f)?;
            let rows = endpoint_rows(conn, f, *counting, rid, None, false)?;
            let c = query::sig::coverage(conn, f, (rid, &label), *counting, &rows)?;
            Answer::SigCoverage(Box::new(c))
        }
        Query::Sunburst { counting } => {
            let (rid, label, _) = release(conn, f)?;
            let rows = endpoint_rows(conn, f, *counting, rid, None, false)?;
            Answer::Sunburst(query::sunburst(&label, *counting, &rows))
        }
        Query::Endpoints(o) => Answer::Endpoints(endpoints(conn, f, o)?),
        Query::Endpoint { endpoint, limit } => {
            Answer::Endpoint(Box::new(endpoint_detail(conn, f, endpoint, *limit)?))
        }
        Query::Loc { loc, text } => Answer::Loc(loc_query(conn, f, loc, text)?),
        Query::Search { q, limit } => Answer::Search(search(conn, f, q, *limit)?),
        Query::Apps { rbac: false } => Answer::Apps(apps(conn, f)?),
        Query::Apps { rbac: true } => Answer::Rbac(rbac::derive(&accesses(conn, f)?)),
        Query::Tests { gaps: false } => Answer::Tests(tests(conn, f)?),
        Query::Tests { gaps: true } => Answer::Gaps(gaps(conn, f)?),
        Query::Deps { limit } => Answer::Deps(deps_query(conn, f, *limit)?),
        Query::Journeys(o) => {
            let (rid, _, _) = release(conn, f)?;
            let mut js = journeys_query(conn, f, rid, o)?;
            js.truncate(o.limit);
            Answer::Journeys(js)
        }
        Query::Suggest { limit, journeys } => {
            Answer::Suggest(suggest_query(conn, f, *limit, journeys)?)
        }
        Query::History { counting } => Answer::History(history(conn, f, *counting)?),
        Query::Deprecated { removed_in } => {
            Answer::Deprecated(query::deprecated::run(conn, f, *removed_in)?)
        }
        Query::Gate { run, baseline } => {
            let (rid, label, _) = release(conn, f)?;
            let g = query::gate::run(conn, f, (rid, &label), run.as_ref(), baseline.as_ref())?;
            Answer::Gate(Box::new(g))
        }
        Query::Diff { base, head } => {
            let rid = match &f.release {
                Some(_) => Some(release(conn, f)?.0),
                None => None,
            };
            Answer::Diff(Box::new(query::diff::run(conn, f, rid, base, head)?))
        }
        Query::Progress => Answer::Progress(query::progress::run(conn, f)?),
        Query::Indirect { grace_secs } => {
            Answer::Indirect(query::indirect::run(conn, f, *grace_secs)?)
        }
    })
}

/// `releases`.
fn releases(conn: &Connection, f: &Filters) -> Result<Vec<ReleaseRow>> {
    let mut sql = Sql::default();
    let hits = if f.narrows() {
        let s = src(&mut sql, f);
        format!(
            "{s}, h AS (SELECT e.release_id, SUM(s.hits) AS hits FROM src s JOIN endpoints e ON e.id = s.endpoint_id GROUP BY e.release_id)"
        )
    } else {
        "WITH h AS (SELECT e.release_id, SUM(eu.hits) AS hits FROM endpoint_usage eu JOIN endpoints e ON e.id = eu.endpoint_id GROUP BY e.release_id)".to_owned()
    };
    let cond = match &f.release {
        Some(l) => format!("WHERE r.label = {}", sql.p(l.clone())),
        None => String::new(),
    };
    let text = format!(
        "{hits} SELECT r.label, r.spec_sha256, r.loaded_at, \
         (SELECT COUNT(*) FROM endpoints e WHERE e.release_id = r.id), \
         (SELECT COUNT(*) FROM endpoints e WHERE e.release_id = r.id AND e.eligible = 1), \
         COALESCE((SELECT hits FROM h WHERE h.release_id = r.id), 0) \
         FROM releases r {cond} ORDER BY r.id"
    );
    let rows = sql.rows(conn, &text, |r| {
        Ok(ReleaseRow {
            release: r.get(0)?,
            spec_sha256: r.get(1)?,
            loaded_at: fixed_time(r.get(2)?),
            total_endpoints: r.get::<_, i64>(3)? as u64,
            eligible_endpoints: r.get::<_, i64>(4)? as u64,
            requests: r.get::<_, i64>(5)? as u64,
        })
    })?;
    if rows.is_empty()
        && let Some(l) = &f.release
    {
        return Err(Error::UnknownRelease(l.clone()));
    }
    Ok(rows)
}

/// Per-endpoint use: (hits, test_hits, conf_hits, apps, tests).
type Stats = (u64, u64, u64, u64, u64);

/// Every endpoint of the release (or one) with its use under the filters; `counts` adds the
/// distinct apps, tests and lines of code.
fn endpoint_rows(
    conn: &Connection,
    f: &Filters,
    counting: Counting,
    rid: i64,
    only: Option<i64>,
    counts: bool,
) -> Result<Vec<EndpointRow>> {
    let mut sql = Sql::default();
    let r = sql.p(rid);
    let one = match only {
        Some(id) => format!(" AND e.id = {}", sql.p(id)),
        None => String::new(),
    };
    let catalog = sql.rows(
        conn,
        &format!(
            "SELECT e.id, e.operation_id, e.method, e.path, e.level, e.category, e.api_group, \
             e.version, e.kind, e.action, e.eligible, e.pending FROM endpoints e \
             WHERE e.release_id = {r}{one} ORDER BY e.idx"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                EndpointRow {
                    endpoint: x.get(1)?,
                    method: x.get(2)?,
                    path: x.get(3)?,
                    level: x.get(4)?,
                    category: x.get(5)?,
                    group: x.get(6)?,
                    version: x.get(7)?,
                    kind: x.get(8)?,
                    action: x.get(9)?,
                    tested: false,
                    conf_tested: false,
                    eligible: x.get::<_, i64>(10)? != 0,
                    pending: x.get::<_, i64>(11)? != 0,
                    hits: 0,
                    apps: 0,
                    tests: 0,
                    locs: 0,
                },
            ))
        },
    )?;
    let mut stats: HashMap<i64, Stats> = HashMap::new();
    let g = |x: &Row<'_>, i| x.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) as u64);
    let mut locs: HashMap<i64, u64> = HashMap::new();
    // Without filters endpoint_usage answers everything; with only ok-only, its ok_* counters
    // answer hits and tested flags; anything else reads `usage` (or `requests`).
    let only_ok = f.ok_only
        && !f.has_window()
        && f.app.is_none()
        && f.test.is_none()
        && f.sig.is_none()
        && !f.conformance;
    let fast = !f.narrows() || only_ok;
    if fast {
        let (h, t, c) = if f.ok_only {
            ("ok_hits", "ok_test_hits", "ok_conf_hits")
        } else {
            ("hits", "test_hits", "conf_hits")
        };
        let text = format!(
            "SELECT eu.endpoint_id, eu.{h}, eu.{t}, eu.{c}, eu.apps, eu.tests, eu.locs \
             FROM endpoint_usage eu JOIN endpoints e ON e.id = eu.endpoint_id \
             WHERE e.release_id = {r}{one}"
        );
        for (id, s, l) in sql.rows(conn, &text, |x| {
            Ok((
                x.get::<_, i64>(0)?,
                (g(x, 1)?, g(x, 2)?, g(x, 3)?, g(x, 4)?, g(x, 5)?),
                g(x, 6)?,
            ))
        })? {
            stats.insert(id, s);
            locs.insert(id, l);
        }
    }
    if !fast || (counts && f.narrows()) {
        let mut q = Sql::default();
        let s = src(&mut q, f);
        let r = q.p(rid);
        let one = match only {
            Some(id) => format!(" AND e.id = {}", q.p(id)),
            None => String::new(),
        };
        let text = format!(
            "{s} SELECT s.endpoint_id, SUM(s.hits), \
             SUM(CASE WHEN s.test_id <> 0 THEN s.hits ELSE 0 END), \
             SUM(CASE WHEN t.conformance = 1 THEN s.hits ELSE 0 END), \
             COUNT(DISTINCT NULLIF(s.identity_id, 0)), COUNT(DISTINCT NULLIF(s.test_id, 0)) \
             FROM src s JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r}{one} \
             LEFT JOIN tests t ON t.id = s.test_id GROUP BY s.endpoint_id"
        );
        stats.clear();
        for (id, st) in q.rows(conn, &text, |x| {
            Ok((
                x.get::<_, i64>(0)?,
                (g(x, 1)?, g(x, 2)?, g(x, 3)?, g(x, 4)?, g(x, 5)?),
            ))
        })? {
            stats.insert(id, st);
        }
        locs.clear();
        if counts {
            let text = format!(
                "{s}, ep AS (SELECT DISTINCT s.endpoint_id, s.purpose_id FROM src s \
                 JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r}{one} \
                 WHERE s.purpose_id <> 0) \
                 SELECT ep.endpoint_id, COUNT(DISTINCT pf.frame_id) FROM ep \
                 JOIN purpose_frames pf ON pf.purpose_id = ep.purpose_id GROUP BY ep.endpoint_id"
            );
            for (id, n) in q.rows(conn, &text, |x| Ok((x.get::<_, i64>(0)?, g(x, 1)?)))? {
                locs.insert(id, n);
            }
        }
    }
    Ok(catalog
        .into_iter()
        .map(|(id, mut row)| {
            let (hits, test_hits, conf_hits, apps, tests) =
                stats.get(&id).copied().unwrap_or_default();
            row.hits = hits;
            row.tested = match counting {
                Counting::Tests => test_hits > 0,
                Counting::Conformance => conf_hits > 0,
                Counting::Any => hits > 0,
            };
            row.conf_tested = conf_hits > 0;
            if counts {
                row.apps = apps;
                row.tests = tests;
                row.locs = locs.get(&id).copied().unwrap_or(0);
            }
            row
        })
        .collect())
}

/// `endpoints`.
fn endpoints(conn: &Connection, f: &Filters, o: &EndpointsOptions) -> Result<Vec<EndpointRow>> {
    let (rid, _, _) = release(conn, f)?;
    let mut rows = endpoint_rows(conn, f, o.counting, rid, None, true)?;
    let group = o.group.as_deref().map(|g| if g == "core" { "" } else { g });
    rows.retain(|r| {
        o.level.as_ref().is_none_or(|l| &r.level == l)
            && o.category.as_ref().is_none_or(|c| &r.category == c)
            && group.is_none_or(|g| r.group == g)
            && o.tested.is_none_or(|t| r.tested == t)
            && o.eligible.is_none_or(|e| r.eligible == e)
    });
    if let Some(sig) = &o.owner {
        let table = query::sig::SigTable::load()?;
        rows.retain(|r| query::sig::owns(&table, &r.path, sig));
    }
    query::sort_endpoints(&mut rows);
    Ok(rows)
}

pub(crate) fn frames_of(conn: &Connection, purposes: &[i64]) -> Result<HashMap<i64, Vec<Frame>>> {
    let mut out: HashMap<i64, Vec<Frame>> = HashMap::new();
    for chunk in purposes.chunks(500) {
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = Sql::default();
        for (p, fr) in sql.rows(
            conn,
            &format!(
                "SELECT pf.purpose_id, f.function, f.file, f.line FROM purpose_frames pf \
                 JOIN frames f ON f.id = pf.frame_id WHERE pf.purpose_id IN ({list}) \
                 ORDER BY pf.purpose_id, pf.depth"
            ),
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Frame {
                        function: r.get(1)?,
                        file: r.get(2)?,
                        line: r.get(3)?,
                    },
                ))
            },
        )? {
            out.entry(p).or_default().push(fr);
        }
    }
    Ok(out)
}

/// `endpoint`.
fn endpoint_detail(
    conn: &Connection,
    f: &Filters,
    op: &str,
    limit: usize,
) -> Result<EndpointDetail> {
    let (rid, label, _) = release(conn, f)?;
    let id: i64 = conn
        .query_row(
            "SELECT id FROM endpoints WHERE release_id = ?1 AND operation_id = ?2",
            rusqlite::params![rid, op],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::UnknownEndpoint(op.to_owned(), label.clone()))?;
    let row = endpoint_rows(conn, f, Counting::Tests, rid, Some(id), true)?
        .pop()
        .expect("the endpoint exists");
    let lim = limit as i64;
    let n = |r: &Row<'_>, i| r.get::<_, i64>(i).map(|v| v as u64);

    let mut q = Sql::default();
    let s = src(&mut q, f);
    let e = q.p(id);
    let codes = q.rows(
        conn,
        &format!("{s} SELECT code, SUM(hits) FROM src WHERE endpoint_id = {e} GROUP BY code ORDER BY 2 DESC, 1"),
        |r| Ok(CodeHits { code: r.get(0)?, hits: n(r, 1)? }),
    )?;
    let verbs = q.rows(
        conn,
        &format!("{s} SELECT verb, SUM(hits) FROM src WHERE endpoint_id = {e} GROUP BY verb ORDER BY 2 DESC, 1"),
        |r| Ok(VerbHits { verb: r.get(0)?, hits: n(r, 1)? }),
    )?;
    let mut q2 = Sql::default();
    let s2 = src(&mut q2, f);
    let e2 = q2.p(id);
    let l2 = q2.p(lim);
    let apps = q2.rows(
        conn,
        &format!(
            "{s2} SELECT COALESCE(i.name, i.text), i.text, SUM(s.hits) FROM src s \
             JOIN identities i ON i.id = s.identity_id WHERE s.endpoint_id = {e2} \
             GROUP BY s.identity_id ORDER BY 3 DESC, 1, 2 LIMIT {l2}"
        ),
        |r| {
            Ok(AppHits {
                app: r.get(0)?,
                identity: r.get(1)?,
                hits: n(r, 2)?,
            })
        },
    )?;
    let tests = q2.rows(
        conn,
        &format!(
            "{s2} SELECT t.name, t.sig, t.conformance, SUM(s.hits) FROM src s \
             JOIN tests t ON t.id = s.test_id WHERE s.endpoint_id = {e2} \
             GROUP BY s.test_id ORDER BY 4 DESC, 1 LIMIT {l2}"
        ),
        |r| {
            Ok(TestHits {
                test: r.get(0)?,
                sig: r.get(1)?,
                conformance: r.get::<_, i64>(2)? != 0,
                hits: n(r, 3)?,
            })
        },
    )?;
    let locs = q2.rows(
        conn,
        &format!(
            "{s2}, pe AS (SELECT purpose_id, identity_id, SUM(hits) AS hits FROM src \
             WHERE endpoint_id = {e2} AND purpose_id <> 0 GROUP BY purpose_id, identity_id), \
             pf AS (SELECT DISTINCT purpose_id, frame_id FROM purpose_frames \
             WHERE purpose_id IN (SELECT purpose_id FROM pe)) \
             SELECT f.function, f.file, f.line, SUM(pe.hits), COUNT(DISTINCT NULLIF(pe.identity_id, 0)) \
             FROM pe JOIN pf ON pf.purpose_id = pe.purpose_id JOIN frames f ON f.id = pf.frame_id \
             GROUP BY pf.frame_id ORDER BY 4 DESC, 1, 2, 3 LIMIT {l2}"
        ),
        |r| {
            Ok(LocHits {
                frame: Frame { function: r.get(0)?, file: r.get(1)?, line: r.get(2)? },
                hits: n(r, 3)?,
                apps: n(r, 4)?,
            })
        },
    )?;
    let purposes = q2.rows(
        conn,
        &format!(
            "{s2}, ph AS (SELECT purpose_id, SUM(hits) AS hits FROM src \
             WHERE endpoint_id = {e2} AND purpose_id <> 0 GROUP BY purpose_id) \
             SELECT p.id, p.fingerprint, COALESCE(i.name, i.text), t.name, p.complete, ph.hits \
             FROM ph JOIN purposes p ON p.id = ph.purpose_id \
             LEFT JOIN identities i ON i.id = p.identity_id LEFT JOIN tests t ON t.id = p.test_id \
             ORDER BY ph.hits DESC, p.fingerprint LIMIT {l2}"
        ),
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                PurposeHits {
                    fingerprint: r.get(1)?,
                    app: r.get(2)?,
                    test: r.get(3)?,
                    complete: r.get::<_, i64>(4)? != 0,
                    hits: n(r, 5)?,
                    frames: vec![],
                },
            ))
        },
    )?;
    let mut frames = frames_of(conn, &purposes.iter().map(|p| p.0).collect::<Vec<_>>())?;
    let purposes = purposes
        .into_iter()
        .map(|(id, mut p)| {
            p.frames = frames.remove(&id).unwrap_or_default();
            p
        })
        .collect();
    Ok(EndpointDetail {
        endpoint: row,
        codes,
        verbs,
        locs,
        apps,
        tests,
        purposes,
    })
}

/// Frame ids matching a loc spec (at most 10,000). A file is matched whole through the
/// `frames_by_file` index; only when nothing matches whole is it matched as the tail of a path
/// after a `/` (a scan of `frames`).
fn matching_frames(conn: &Connection, loc: &LocSpec) -> Result<Vec<(i64, Frame)>> {
    let select = |cond: &str, sql: &Sql| {
        sql.rows(
            conn,
            &format!(
                "SELECT id, function, file, line FROM frames WHERE {cond} \
                 ORDER BY function, file, line LIMIT 10000"
            ),
            |r| {
                Ok((
                    r.get(0)?,
                    Frame {
                        function: r.get(1)?,
                        file: r.get(2)?,
                        line: r.get(3)?,
                    },
                ))
            },
        )
    };
    match loc {
        LocSpec::FileLine(file, _) | LocSpec::File(file) => {
            let line = match loc {
                LocSpec::FileLine(_, l) => Some(*l),
                _ => None,
            };
            let mut sql = Sql::default();
            let fl = sql.p(file.clone());
            let at = line
                .map(|l| format!(" AND line = {}", sql.p(l)))
                .unwrap_or_default();
            let exact = select(&format!("file = {fl}{at}"), &sql)?;
            if !exact.is_empty() {
                return Ok(exact);
            }
            select(
                &format!("substr(file, -(length({fl}) + 1)) = '/' || {fl}{at}"),
                &sql,
            )
        }
        LocSpec::Function(prefix) => {
            // A range on the (function, file, line) index: every string with the prefix sorts
            // between the prefix and the prefix followed by the greatest code point.
            let mut sql = Sql::default();
            let lo = sql.p(prefix.clone());
            let hi = sql.p(format!("{prefix}\u{10FFFF}"));
            select(&format!("function >= {lo} AND function < {hi}"), &sql)
        }
    }
}

/// `loc`.
fn loc_query(conn: &Connection, f: &Filters, loc: &LocSpec, text: &str) -> Result<LocAnswer> {
    let (rid, _, _) = release(conn, f)?;
    let matched = matching_frames(conn, loc)?;
    let mut endpoints = Vec::new();
    if !matched.is_empty() {
        let list = matched
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut q = Sql::default();
        let s = src(&mut q, f);
        let r = q.p(rid);
        let rows = q.rows(
            conn,
            &format!(
                "{s}, p AS (SELECT DISTINCT purpose_id FROM purpose_frames WHERE frame_id IN ({list})) \
                 SELECT e.operation_id, e.method, e.path, s.verb, s.code, s.identity_id, SUM(s.hits) \
                 FROM p JOIN src s ON s.purpose_id = p.purpose_id \
                 JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
                 GROUP BY s.endpoint_id, s.verb, s.code, s.identity_id"
            ),
            |x| {
                Ok((
                    (x.get::<_, String>(0)?, x.get::<_, String>(1)?, x.get::<_, String>(2)?, x.get::<_, String>(3)?),
                    x.get::<_, i64>(4)?,
                    x.get::<_, i64>(5)?,
                    x.get::<_, i64>(6)? as u64,
                ))
            },
        )?;
        // (endpoint, method, path, verb) -> (hits, identities, hits by code)
        type Key = (String, String, String, String);
        type Use = (u64, BTreeSet<i64>, BTreeMap<i64, u64>);
        let mut by: BTreeMap<Key, Use> = BTreeMap::new();
        for (k, code, ident, hits) in rows {
            let e = by.entry(k).or_default();
            e.0 += hits;
            if ident != 0 {
                e.1.insert(ident);
            }
            *e.2.entry(code).or_default() += hits;
        }
        endpoints = by
            .into_iter()
            .map(|((endpoint, method, path, verb), (hits, apps, codes))| {
                let mut codes: Vec<CodeHits> = codes
                    .into_iter()
                    .map(|(code, hits)| CodeHits { code, hits })
                    .collect();
                codes.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.code.cmp(&b.code)));
                LocEndpoint {
                    endpoint,
                    method,
                    path,
                    verb,
                    hits,
                    apps: apps.len() as u64,
                    codes,
                }
            })
            .collect();
        endpoints.sort_by(|a, b| {
            b.hits
                .cmp(&a.hits)
                .then_with(|| (&a.endpoint, &a.verb).cmp(&(&b.endpoint, &b.verb)))
        });
    }
    Ok(LocAnswer {
        loc: text.to_owned(),
        matched: matched.into_iter().map(|(_, f)| f).collect(),
        endpoints,
    })
}

/// `search`.
fn search(conn: &Connection, f: &Filters, needle: &str, limit: usize) -> Result<SearchAnswer> {
    let mut sql = Sql::default();
    let n = sql.p(needle.to_owned());
    // frame_id, function, file, matched-by-function, matched-by-file.
    let frames = sql.rows(
        conn,
        &format!(
            "SELECT id, function, file, instr(function, {n}) > 0, instr(file, {n}) > 0 FROM frames \
             WHERE instr(function, {n}) > 0 OR instr(file, {n}) > 0 LIMIT 20000"
        ),
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        },
    )?;
    // Requests per frame under the filters: through the purposes that include it.
    let mut hits: HashMap<i64, u64> = HashMap::new();
    for chunk in frames.chunks(500) {
        let list = chunk
            .iter()
            .map(|x| x.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut q = Sql::default();
        let s = src(&mut q, f);
        for (fr, h) in q.rows(
            conn,
            &format!(
                "{s}, pf AS (SELECT DISTINCT frame_id, purpose_id FROM purpose_frames WHERE frame_id IN ({list})), \
                 ph AS (SELECT purpose_id, SUM(hits) AS hits FROM src WHERE purpose_id IN (SELECT purpose_id FROM pf) GROUP BY purpose_id) \
                 SELECT pf.frame_id, SUM(ph.hits) FROM pf JOIN ph ON ph.purpose_id = pf.purpose_id GROUP BY pf.frame_id"
            ),
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)),
        )? {
            hits.insert(fr, h);
        }
    }
    let mut functions: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut files: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (id, function, file, by_fn, by_file) in &frames {
        let h = hits.get(id).copied().unwrap_or(0);
        if *by_fn {
            let e = functions.entry(function).or_default();
            e.0 += 1;
            e.1 += h;
        }
        if *by_file {
            let e = files.entry(file).or_default();
            e.0 += 1;
            e.1 += h;
        }
    }
    let mut functions: Vec<FunctionMatch> = functions
        .into_iter()
        .map(|(k, (locs, hits))| FunctionMatch {
            function: k.to_owned(),
            locs,
            hits,
        })
        .collect();
    functions.sort_by(|a, b| {
        b.hits
            .cmp(&a.hits)
            .then_with(|| a.function.cmp(&b.function))
    });
    functions.truncate(limit);
    let mut files: Vec<FileMatch> = files
        .into_iter()
        .map(|(k, (locs, hits))| FileMatch {
            file: k.to_owned(),
            locs,
            hits,
        })
        .collect();
    files.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.file.cmp(&b.file)));
    files.truncate(limit);
    Ok(SearchAnswer { functions, files })
}

/// `apps`.
fn apps(conn: &Connection, f: &Filters) -> Result<Vec<AppRow>> {
    let (rid, _, _) = release(conn, f)?;
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let n = |x: &Row<'_>, i| x.get::<_, i64>(i).map(|v| v as u64);
    let mut rows = q.rows(
        conn,
        &format!(
            "{s}, a AS (SELECT s.identity_id, SUM(s.hits) AS hits, \
             COUNT(DISTINCT e.id) AS eps, MIN(s.first_us) AS first, MAX(s.last_us) AS last FROM src s \
             LEFT JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             WHERE s.identity_id <> 0 GROUP BY s.identity_id) \
             SELECT i.id, COALESCE(i.name, i.text), i.text, i.version, i.os, i.arch, i.source, \
             i.source_commit, i.built_by, i.built_at, a.hits, a.eps, a.first, a.last \
             FROM a JOIN identities i ON i.id = a.identity_id"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                AppRow {
                    app: x.get(1)?,
                    identity: x.get(2)?,
                    version: x.get(3)?,
                    os: x.get(4)?,
                    arch: x.get(5)?,
                    source: x.get(6)?,
                    commit: x.get(7)?,
                    built_by: x.get(8)?,
                    built_at: x.get(9)?,
                    requests: n(x, 10)?,
                    endpoints: n(x, 11)?,
                    first_seen: time(x.get(12)?),
                    last_seen: time(x.get(13)?),
                    used: vec![],
                },
            ))
        },
    )?;
    let mut used: HashMap<i64, Vec<UsedEndpoint>> = HashMap::new();
    for (id, u) in q.rows(
        conn,
        &format!(
            "{s} SELECT s.identity_id, e.operation_id, SUM(s.hits) FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             WHERE s.identity_id <> 0 GROUP BY s.identity_id, e.id ORDER BY 1, 3 DESC, 2"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                UsedEndpoint {
                    endpoint: x.get(1)?,
                    hits: n(x, 2)?,
                },
            ))
        },
    )? {
        used.entry(id).or_default().push(u);
    }
    for (id, row) in &mut rows {
        row.used = used.remove(id).unwrap_or_default();
    }
    let mut rows: Vec<AppRow> = rows.into_iter().map(|(_, r)| r).collect();
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| (&a.app, &a.identity).cmp(&(&b.app, &b.identity)))
    });
    Ok(rows)
}

/// Observed accesses per app, for `apps --rbac` (scans `requests`).
fn accesses(conn: &Connection, f: &Filters) -> Result<Vec<rbac::Access>> {
    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let w = when(&mut q, f);
    q.rows(
        conn,
        &format!(
            "SELECT COALESCE(i.name, i.text), u.name, r.verb, r.api_group, r.resource, r.subresource, \
             r.namespace, CASE WHEN r.resource IS NULL THEN r.request_uri ELSE '' END AS uri \
             FROM requests r{j} JOIN identities i ON i.id = r.identity_id \
             LEFT JOIN users u ON u.id = COALESCE(r.impersonated_user_id, r.user_id) \
             WHERE {w} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
        ),
        |x| {
            Ok(rbac::Access {
                app: x.get(0)?,
                user: x.get(1)?,
                verb: x.get(2)?,
                api_group: x.get(3)?,
                resource: x.get(4)?,
                subresource: x.get(5)?,
                namespace: x.get(6)?,
                uri: x.get(7)?,
            })
        },
    )
}

/// `tests`.
fn tests(conn: &Connection, f: &Filters) -> Result<Vec<TestRow>> {
    let (rid, _, _) = release(conn, f)?;
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let rows = q.rows(
        conn,
        &format!(
            "{s} SELECT t.id, t.name, t.sig, t.conformance, e.operation_id, SUM(s.hits) FROM src s \
             JOIN tests t ON t.id = s.test_id \
             LEFT JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             GROUP BY t.id, e.id ORDER BY t.name, 6 DESC, e.operation_id"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                x.get::<_, String>(1)?,
                x.get::<_, Option<String>>(2)?,
                x.get::<_, i64>(3)? != 0,
                x.get::<_, Option<String>>(4)?,
                x.get::<_, i64>(5)? as u64,
            ))
        },
    )?;
    let mut out: Vec<TestRow> = Vec::new();
    let mut last = None;
    for (id, name, sig, conformance, ep, hits) in rows {
        if last != Some(id) {
            out.push(TestRow {
                test: name,
                sig,
                conformance,
                hits: 0,
                endpoints: vec![],
            });
            last = Some(id);
        }
        let t = out.last_mut().expect("pushed above");
        t.hits += hits;
        if let Some(endpoint) = ep {
            t.endpoints.push(UsedEndpoint { endpoint, hits });
        }
    }
    Ok(out)
}

/// `tests --gaps`: endpoints programs use and no test does.
fn gaps(conn: &Connection, f: &Filters) -> Result<Vec<GapRow>> {
    let (rid, _, _) = release(conn, f)?;
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let mut locs = query::priorities::program_locs(conn, f, rid)?;
    q.rows(
        conn,
        &format!(
            "{s} SELECT e.operation_id, e.level, e.category, e.eligible, \
             COUNT(DISTINCT CASE WHEN s.test_id = 0 THEN COALESCE(i.name, i.text) END) AS programs, \
             SUM(s.hits) AS hits FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             LEFT JOIN identities i ON i.id = s.identity_id \
             GROUP BY s.endpoint_id HAVING SUM(s.test_id <> 0) = 0 AND programs > 0 \
             ORDER BY programs DESC, hits DESC, e.operation_id"
        ),
        |x| {
            Ok(GapRow {
                endpoint: x.get(0)?,
                level: x.get(1)?,
                category: x.get(2)?,
                eligible: x.get::<_, i64>(3)? != 0,
                programs: x.get::<_, i64>(4)? as u64,
                hits: x.get::<_, i64>(5)? as u64,
                locs: Vec::new(),
            })
        },
    )
    .map(|rows| {
        rows.into_iter()
            .map(|g| GapRow {
                locs: locs.remove(&g.endpoint).unwrap_or_default(),
                ..g
            })
            .collect()
    })
}

/// Whether a frame is kube-rs's own (the API method the application called).
fn is_library(f: &Frame) -> bool {
    const LIB: [&str; 5] = [
        "kube_client::",
        "kube::",
        "kube_runtime::",
        "kube_core::",
        "<kube_client::",
    ];
    LIB.iter().any(|l| f.function.starts_with(l))
}

/// The application's own line of a purpose: the innermost frame outside kube-rs.
pub(crate) fn own_line(frames: &[Frame]) -> Option<Frame> {
    frames
        .iter()
        .find(|f| !is_library(f))
        .or(frames.first())
        .cloned()
}

/// `deps` (scans `requests`).
fn deps_query(conn: &Connection, f: &Filters, limit: usize) -> Result<deps::Deps> {
    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let w = when(&mut q, f);
    let rows = q.rows(
        conn,
        &format!(
            "SELECT COALESCE(i.name, i.text), r.purpose_id, r.verb, COALESCE(r.api_group, ''), r.resource, \
             NULLIF(r.namespace, ''), COUNT(*) \
             FROM requests r{j} JOIN identities i ON i.id = r.identity_id \
             WHERE {w} AND r.resource IS NOT NULL \
             AND r.verb IN ('create', 'update', 'patch', 'delete', 'deletecollection', 'get', 'list', 'watch') \
             GROUP BY 1, 2, 3, 4, 5, 6"
        ),
        |x| {
            Ok((
                x.get::<_, String>(0)?,
                x.get::<_, Option<i64>>(1)?,
                x.get::<_, String>(2)?,
                x.get::<_, String>(3)?,
                x.get::<_, String>(4)?,
                x.get::<_, Option<String>>(5)?,
                x.get::<_, i64>(6)? as u64,
            ))
        },
    )?;
    let purposes: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let frames = frames_of(conn, &purposes)?;
    let uses: Vec<deps::Use> = rows
        .into_iter()
        .map(
            |(app, p, verb, group, resource, namespace, hits)| deps::Use {
                app,
                verb,
                group,
                resource,
                namespace,
                loc: p.and_then(|p| frames.get(&p)).and_then(|fr| own_line(fr)),
                hits,
            },
        )
        .collect();
    let mut q2 = Sql::default();
    let s = src(&mut q2, f);
    let requests: BTreeMap<String, u64> = q2
        .rows(
            conn,
            &format!(
                "{s} SELECT COALESCE(i.name, i.text), SUM(s.hits) FROM src s \
                 JOIN identities i ON i.id = s.identity_id GROUP BY 1"
            ),
            |x| Ok((x.get::<_, String>(0)?, x.get::<_, i64>(1)? as u64)),
        )?
        .into_iter()
        .collect();
    Ok(deps::build(&uses, &requests, limit))
}

/// `journeys` (scans `requests` in client and time order).
fn journeys_query(
    conn: &Connection,
    f: &Filters,
    rid: i64,
    o: &JourneyOptions,
) -> Result<Vec<journeys::Journey>> {
    // Names and stacks once, by id; the requests then stream by client and time, so memory
    // holds one episode and the sequences counted, never the requests.
    let sql = Sql::default();
    let apps: HashMap<i64, Arc<str>> = sql
        .rows(
            conn,
            "SELECT id, COALESCE(name, text) FROM identities",
            |x| Ok((x.get::<_, i64>(0)?, Arc::from(x.get::<_, String>(1)?))),
        )?
        .into_iter()
        .collect();
    let endpoints: HashMap<i64, Arc<str>> = sql
        .rows(
            conn,
            &format!("SELECT id, operation_id FROM endpoints WHERE release_id = {rid}"),
            |x| Ok((x.get::<_, i64>(0)?, Arc::from(x.get::<_, String>(1)?))),
        )?
        .into_iter()
        .collect();
    let mut stacks: HashMap<i64, Arc<Vec<String>>> = HashMap::new();
    let mut frames = sql.rows(
        conn,
        "SELECT pf.purpose_id, f.function FROM purpose_frames pf \
         JOIN frames f ON f.id = pf.frame_id ORDER BY pf.purpose_id, pf.depth",
        |x| Ok((x.get::<_, i64>(0)?, x.get::<_, String>(1)?)),
    )?;
    frames.retain(|(_, function)| {
        !is_library(&Frame {
            function: function.clone(),
            file: String::new(),
            line: 0,
        })
    });
    for (p, function) in frames {
        match stacks.get_mut(&p) {
            Some(s) => Arc::make_mut(s).push(function),
            None => {
                stacks.insert(p, Arc::new(vec![function]));
            }
        }
    }
    let none = Arc::new(Vec::new());

    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let w = when(&mut q, f);
    let r = q.p(rid);
    let text = format!(
        "SELECT COALESCE(r.identity_id, 0), COALESCE(r.user_id, 0), COALESCE(r.source_ips, ''), \
         COALESCE(r.test_id, 0), COALESCE(r.purpose_id, 0), r.endpoint_id, r.received_us \
         FROM requests r{j} JOIN endpoints e ON e.id = r.endpoint_id AND e.release_id = {r} \
         WHERE {w} AND r.identity_id IS NOT NULL ORDER BY 1, 2, 3, 4, r.received_us, r.id"
    );
    let mut st = conn.prepare(&text).map_err(db)?;
    let mut rows = st.query(params_from_iter(q.params.iter())).map_err(db)?;
    let gap = o.gap_secs as i64 * 1_000_000;
    let mut miner = journeys::Miner::new(o.max_len);
    // The episode being read: its client, app, stacks, endpoints, last time.
    type Client = (i64, i64, String, i64);
    type Open = (Client, Arc<str>, Vec<Arc<Vec<String>>>, Vec<Arc<str>>, i64);
    let mut cur: Option<Open> = None;
    let flush = |miner: &mut journeys::Miner, e: Open| {
        let refs: Vec<&Arc<Vec<String>>> = e.2.iter().collect();
        let purpose: Arc<str> = Arc::from(journeys::common_purpose(&refs));
        miner.add(&e.1, &purpose, &e.3);
    };
    while let Some(x) = rows.next().map_err(db)? {
        let client: Client = (
            x.get(0).map_err(db)?,
            x.get(1).map_err(db)?,
            x.get(2).map_err(db)?,
            x.get(3).map_err(db)?,
        );
        let purpose: i64 = x.get(4).map_err(db)?;
        let endpoint: i64 = x.get(5).map_err(db)?;
        let at: i64 = x.get(6).map_err(db)?;
        let stack = stacks
            .get(&purpose)
            .cloned()
            .unwrap_or_else(|| none.clone());
        let ep = endpoints
            .get(&endpoint)
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        match &mut cur {
            Some(c) if c.0 == client && at - c.4 <= gap => {
                c.2.push(stack);
                c.3.push(ep);
                c.4 = at;
            }
            _ => {
                if let Some(done) = cur.take() {
                    flush(&mut miner, done);
                }
                let app = apps
                    .get(&client.0)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""));
                cur = Some((client, app, vec![stack], vec![ep], at));
            }
        }
    }
    if let Some(done) = cur.take() {
        flush(&mut miner, done);
    }
    Ok(miner.finish(o.min_support))
}

/// `suggest`.
fn suggest_query(
    conn: &Connection,
    f: &Filters,
    limit: usize,
    o: &JourneyOptions,
) -> Result<Vec<suggest::Suggestion>> {
    let (rid, _, _) = release(conn, f)?;
    let sql = Sql::default();
    let catalog: BTreeMap<String, suggest::EndpointInfo> = sql
        .rows(
            conn,
            &format!(
                "SELECT operation_id, method, path, level, category, api_group, version, kind, action \
                 FROM endpoints WHERE release_id = {rid}"
            ),
            |x| {
                Ok(suggest::EndpointInfo {
                    endpoint: x.get(0)?,
                    method: x.get(1)?,
                    path: x.get(2)?,
                    level: x.get(3)?,
                    category: x.get(4)?,
                    group: x.get(5)?,
                    version: x.get(6)?,
                    kind: x.get(7)?,
                    action: x.get(8)?,
                })
            },
        )?
        .into_iter()
        .map(|e| (e.endpoint.clone(), e))
        .collect();
    let candidates: Vec<suggest::Candidate> = gaps(conn, f)?
        .into_iter()
        .filter(|g| g.eligible)
        .filter_map(|g| {
            catalog.get(&g.endpoint).map(|info| suggest::Candidate {
                info: info.clone(),
                programs: g.programs,
                hits: g.hits,
                locs: g.locs.clone(),
            })
        })
        .collect();
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    let js = journeys_query(conn, f, rid, o)?;
    Ok(suggest::suggest(candidates, &js, &catalog, limit))
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
            requests: 0,
            total_endpoints: rel.2,
            tested_endpoints: 0,
            conf_tested_endpoints: 0,
            eligible_endpoints: rel.3,
            tested_eligible_endpoints: 0,
            conf_tested_eligible_endpoints: 0,
            cumulative_tested_endpoints: 0,
            cumulative_tested_eligible_endpoints: 0,
        };
        let cum = cumulative.entry(rel.0).or_default();
        for &(r, eligible, ep, hits, test, conf) in &uses {
            if r != rel.0 {
                continue;
            }
            c.requests += hits;
            let t = tested(hits, test, conf);
            c.tested_endpoints += t as u64;
            c.conf_tested_endpoints += (conf > 0) as u64;
            c.tested_eligible_endpoints += (t && eligible) as u64;
            c.conf_tested_eligible_endpoints += (conf > 0 && eligible) as u64;
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
            let mut c = ReleaseCoverage {
                release: label.clone(),
                requests: 0,
                total_endpoints: *total,
                tested_endpoints: 0,
                conf_tested_endpoints: 0,
                eligible_endpoints: *eligible,
                tested_eligible_endpoints: 0,
                conf_tested_eligible_endpoints: 0,
            };
            for (hits, test, conf, el) in eps.into_values() {
                let t = tested(hits, test, conf);
                c.requests += hits;
                c.tested_endpoints += t as u64;
                c.conf_tested_endpoints += (conf > 0) as u64;
                c.tested_eligible_endpoints += (t && el) as u64;
                c.conf_tested_eligible_endpoints += (conf > 0 && el) as u64;
            }
            c
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

/// `coverage --export apisnoop`.
fn apisnoop_export(
    conn: &Connection,
    f: &Filters,
    rid: i64,
    label: &str,
    loaded_at: String,
) -> Result<apisnoop::Coverage> {
    let rows = endpoint_rows(conn, f, Counting::Tests, rid, None, false)?;
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let mut endpoint_tests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ep, t) in q.rows(
        conn,
        &format!(
            "{s} SELECT DISTINCT e.operation_id, t.name FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             JOIN tests t ON t.id = s.test_id ORDER BY 1, 2"
        ),
        |x| Ok((x.get::<_, String>(0)?, x.get::<_, String>(1)?)),
    )? {
        endpoint_tests.entry(ep).or_default().push(t);
    }
    let tests = q.rows(
        conn,
        &format!(
            "{s}, seen AS (SELECT DISTINCT t.name, t.conformance FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             JOIN tests t ON t.id = s.test_id) \
             SELECT seen.name, seen.conformance, c.testname, c.file, c.promotion_release \
             FROM seen LEFT JOIN conformance_tests c ON c.release_id = {r} AND c.codename = seen.name \
             ORDER BY 1"
        ),
        |x| {
            let testname: Option<String> = x.get(2)?;
            Ok(apisnoop::SeenTest {
                name: x.get(0)?,
                conformance: x.get::<_, i64>(1)? != 0,
                listed: match testname {
                    Some(testname) => Some((testname, x.get(3)?, x.get(4)?)),
                    None => None,
                },
            })
        },
    )?;
    let mut d = Sql::default();
    let r = d.p(rid);
    let descriptions: HashMap<String, String> = d
        .rows(
            conn,
            &format!(
                "SELECT operation_id, description FROM endpoints \
                 WHERE release_id = {r} AND description IS NOT NULL"
            ),
            |x| Ok((x.get(0)?, x.get(1)?)),
        )?
        .into_iter()
        .collect();
    let sql = Sql::default();
    let sources = sql.rows(
        conn,
        "SELECT source FROM ingest_runs GROUP BY source ORDER BY MIN(id)",
        |x| x.get(0),
    )?;
    Ok(apisnoop::export(
        label,
        Some(fixed_time(loaded_at)),
        sources,
        &rows,
        &descriptions,
        &endpoint_tests,
        &tests,
    ))
}
