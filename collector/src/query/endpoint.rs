//! `endpoint`: everything that reaches one endpoint: its status codes, verbs, lines of code,
//! apps, tests and purposes (`query endpoint listCoreV1Pod`).

use rusqlite::{Connection, OptionalExtension as _, Row};
use serde::Serialize;

use super::sql::{Sql, db, frames_of, release, src};
use super::usage::{CodeHits, EndpointRow, endpoint_rows};
use super::{
    Answer, Counting, Error, Filters, Frame, Given, LIMIT, Param, Query, Render, Result, Table,
};

/// `endpoint`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// operationId.
    pub endpoint: String,
    /// Longest list returned.
    pub limit: usize,
}

impl Query for Params {
    const NAME: &'static str = "endpoint";
    const PARAMS: &'static [Param] = &[
        Param::value("endpoint", "OPERATION_ID", "The endpoint asked about"),
        LIMIT,
    ];
    const POSITIONAL: Option<&'static str> = Some("endpoint");

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            endpoint: g.text("endpoint")?.ok_or(Given::missing("endpoint"))?,
            limit: g.positive("limit")?.unwrap_or(100),
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(endpoint_detail(
            conn,
            f,
            &self.endpoint,
            self.limit,
        )?))
    }
}

/// A count per audit verb.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerbHits {
    /// Audit verb.
    pub verb: String,
    /// Requests.
    pub hits: u64,
}

/// A line of code reaching an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppHits {
    /// Identity name (the identity text when unparsed).
    pub app: String,
    /// Identity text.
    pub identity: String,
    /// Requests.
    pub hits: u64,
}

/// A test reaching an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// A purpose as the table lists it: its frames in one cell.
#[derive(Default, Serialize)]
struct PurposeCells<'a> {
    fingerprint: &'a str,
    app: Option<&'a str>,
    test: Option<&'a str>,
    complete: bool,
    hits: u64,
    frames: String,
}

impl Render for EndpointDetail {
    fn tables(&self) -> Vec<Table> {
        let purposes: Vec<PurposeCells<'_>> = self
            .purposes
            .iter()
            .map(|p| PurposeCells {
                fingerprint: &p.fingerprint,
                app: p.app.as_deref(),
                test: p.test.as_deref(),
                complete: p.complete,
                hits: p.hits,
                frames: p
                    .frames
                    .iter()
                    .map(Frame::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        vec![
            Table::of("endpoint", std::slice::from_ref(&self.endpoint)),
            Table::of("codes", &self.codes),
            Table::of("verbs", &self.verbs),
            Table::of("locs", &self.locs),
            Table::of("apps", &self.apps),
            Table::of("tests", &self.tests),
            Table::of("purposes", &purposes),
        ]
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "endpoint",
            &[("endpoint", "listCoreV1Pod"), ("limit", "5")],
            Params {
                endpoint: "listCoreV1Pod".into(),
                limit: 5,
            },
        );
    }
}
