//! The SQL every query shares: statement building with numbered parameters, the filters as
//! joins and conditions, the release asked for, times as printed, and purposes' frames.
//!
//! Without `since`/`until` a query reads the rollups of migration 2 (`usage`, `endpoint_usage`,
//! `run_usage`), kept current at ingest; with a time window it scans `requests` ([`src`]).
//! `deps` and `apps --rbac` read those kept by app (`0016_deps_rollup.sql`,
//! `0017_rbac_grants.sql`) unless a filter other than the app's is set ([`by_app_only`]) or the
//! app's splits an app ([`whole_apps`]).

use std::collections::{BTreeMap, HashMap};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};

use super::{Error, Filters, Frame, Result};

/// A database error as a query's.
pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::Database(Box::new(e))
}

/// Statement text plus its positional parameters, numbered as they are added.
#[derive(Default)]
pub(crate) struct Sql {
    pub(crate) params: Vec<Value>,
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
pub(crate) fn fixed_time(s: String) -> String {
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

/// Whether the filters narrow requests by app at most: the object rollups (`object_uses`,
/// `access_grants`) key requests by identity or app, not by test, status code or time.
pub(crate) fn by_app_only(f: &Filters) -> bool {
    !f.has_window() && !f.ok_only && f.test.is_none() && f.sig.is_none() && !f.conformance
}

/// The identities of each app (name, else text) `f.app` lets through, every app's without
/// it; `None` when it lets through some of an app's identities and not others (a prefix of
/// one version's text), which rollups kept by app cannot answer.
pub(crate) fn whole_apps(
    conn: &Connection,
    f: &Filters,
) -> Result<Option<BTreeMap<String, Vec<i64>>>> {
    let mut identities_of: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut q = Sql::default();
    let wanted = match &f.app {
        Some(app) => {
            let a = q.p(app.clone());
            format!("COALESCE(name = {a} OR substr(text, 1, length({a})) = {a}, 0)")
        }
        None => "1".to_owned(),
    };
    let mut split = false;
    let mut let_through: HashMap<String, bool> = HashMap::new();
    q.rows(
        conn,
        &format!("SELECT id, COALESCE(name, text), {wanted} FROM identities"),
        |x| {
            let (id, app, wanted): (i64, String, bool) = (x.get(0)?, x.get(1)?, x.get(2)?);
            match let_through.get(&app) {
                Some(&w) if w != wanted => split = true,
                Some(_) => {}
                None => {
                    let_through.insert(app.clone(), wanted);
                }
            }
            if wanted {
                identities_of.entry(app).or_default().push(id);
            }
            Ok(())
        },
    )?;
    Ok((!split).then_some(identities_of))
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

/// The frames of purposes, innermost first, by purpose id.
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

/// Whether a frame is kube-rs's own (the API method the application called).
pub(crate) fn is_library(f: &Frame) -> bool {
    crate::store::is_library(&f.function)
}

/// The application's own line of a purpose: the innermost frame outside kube-rs.
pub(crate) fn own_line(frames: &[Frame]) -> Option<Frame> {
    frames
        .iter()
        .find(|f| !is_library(f))
        .or(frames.first())
        .cloned()
}
