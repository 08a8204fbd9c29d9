//! `tests`: the tests seen and the endpoints each reached; `tests --gaps`: the endpoints
//! programs use and no test does.

use rusqlite::Connection;
use serde::Serialize;

use super::apps::UsedEndpoint;
use super::sql::{Sql, release, src};
use super::usage::Level;
use super::{Answer, Filters, Given, Param, Query, Render, Result, Table};

/// `tests`' options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// Endpoints programs use and no test does, instead.
    pub gaps: bool,
}

impl Query for Params {
    const NAME: &'static str = "tests";
    const PARAMS: &'static [Param] = &[Param::switch(
        "gaps",
        "Endpoints programs use and no test does",
    )];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            gaps: g.switch("gaps")?,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(if self.gaps {
            Answer::new(gaps(conn, f)?)
        } else {
            Answer::new(tests(conn, f)?)
        })
    }
}

/// `tests`: one test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GapRow {
    /// operationId.
    pub endpoint: String,
    /// Level.
    pub level: Level,
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

/// A test and one endpoint it reached, as the table lists them.
#[derive(Default, Serialize)]
struct TestEndpoint<'a> {
    test: &'a str,
    sig: Option<&'a str>,
    conformance: bool,
    endpoint: &'a str,
    hits: u64,
}

impl Render for Vec<TestRow> {
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<TestEndpoint<'_>> = self
            .iter()
            .flat_map(|r| {
                r.endpoints.iter().map(|e| TestEndpoint {
                    test: &r.test,
                    sig: r.sig.as_deref(),
                    conformance: r.conformance,
                    endpoint: &e.endpoint,
                    hits: e.hits,
                })
            })
            .collect();
        vec![Table::of("tests", &rows)]
    }
}

/// A gap as the table lists it: the lines of code in one cell.
#[derive(Default, Serialize)]
struct GapCells<'a> {
    endpoint: &'a str,
    level: Level,
    category: &'a str,
    eligible: bool,
    programs: u64,
    hits: u64,
    lines_of_code: String,
}

impl Render for Vec<GapRow> {
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<GapCells<'_>> = self
            .iter()
            .map(|g| GapCells {
                endpoint: &g.endpoint,
                level: g.level,
                category: &g.category,
                eligible: g.eligible,
                programs: g.programs,
                hits: g.hits,
                lines_of_code: g.locs.join("; "),
            })
            .collect();
        vec![Table::of("gaps", &rows)]
    }
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
pub(crate) fn gaps(conn: &Connection, f: &Filters) -> Result<Vec<GapRow>> {
    let (rid, _, _) = release(conn, f)?;
    // Unfiltered, the endpoints no test hits are the per-endpoint rollup's: only theirs are
    // read from `usage`.
    let plain = Filters {
        release: f.release.clone(),
        ..Filters::default()
    };
    let untested: Option<Vec<i64>> = if *f == plain {
        Some(Sql::default().rows(
            conn,
            &format!(
                "SELECT u.endpoint_id FROM endpoint_usage u JOIN endpoints e \
                 ON e.id = u.endpoint_id AND e.release_id = {rid} WHERE u.test_hits = 0"
            ),
            |x| x.get(0),
        )?)
    } else {
        None
    };
    if untested.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let only = untested.as_ref().map_or(String::new(), |ids| {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!(" WHERE s.endpoint_id IN ({})", ids.join(", "))
    });
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let mut locs = super::priorities::program_locs(conn, f, rid, untested.as_deref())?;
    let rows = q.rows(
        conn,
        &format!(
            "{s} SELECT e.operation_id, e.level, e.category, e.eligible, \
             COUNT(DISTINCT CASE WHEN s.test_id = 0 THEN COALESCE(i.name, i.text) END) AS programs, \
             SUM(s.hits) AS hits FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             LEFT JOIN identities i ON i.id = s.identity_id{only} \
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
    )?;
    Ok(rows
        .into_iter()
        .map(|g| GapRow {
            locs: locs.remove(&g.endpoint).unwrap_or_default(),
            ..g
        })
        .collect())
}

#[cfg(test)]
mod own {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options("tests", &[("gaps", "")], Params { gaps: true });
    }
}
