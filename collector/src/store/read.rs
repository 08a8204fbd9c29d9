//! Read queries on a connection from [`super::Store::reader`] or [`super::open_reader`]: one
//! function per query.

use std::io::Read as _;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Error, ReleaseId, Result, StageRank, StoredRelease};

fn sql(step: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::sqlite(step)
}

/// Row counts of the main tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// `requests`.
    pub requests: u64,
    /// `request_keys` (always equal to `requests`).
    pub request_keys: u64,
    /// `releases`.
    pub releases: u64,
    /// `endpoints`.
    pub endpoints: u64,
    /// `identities`.
    pub identities: u64,
    /// `tests`.
    pub tests: u64,
    /// `purposes`.
    pub purposes: u64,
    /// `purposes` with every frame (from the side channel).
    pub complete_purposes: u64,
    /// `frames`.
    pub frames: u64,
    /// `users`.
    pub users: u64,
    /// `malformed`.
    pub malformed: u64,
    /// `ingest_runs`.
    pub runs: u64,
}

/// Row counts of the main tables.
pub fn counts(conn: &Connection) -> Result<Counts> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM request_keys), \
         (SELECT count(*) FROM releases), (SELECT count(*) FROM endpoints), \
         (SELECT count(*) FROM identities), (SELECT count(*) FROM tests), \
         (SELECT count(*) FROM purposes), (SELECT count(*) FROM purposes WHERE complete = 1), \
         (SELECT count(*) FROM frames), (SELECT count(*) FROM users), \
         (SELECT count(*) FROM malformed), (SELECT count(*) FROM ingest_runs)",
        [],
        |r| {
            let n = |i| r.get::<_, i64>(i).map(|v| v as u64);
            Ok(Counts {
                requests: n(0)?,
                request_keys: n(1)?,
                releases: n(2)?,
                endpoints: n(3)?,
                identities: n(4)?,
                tests: n(5)?,
                purposes: n(6)?,
                complete_purposes: n(7)?,
                frames: n(8)?,
                users: n(9)?,
                malformed: n(10)?,
                runs: n(11)?,
            })
        },
    )
    .map_err(sql("count rows"))
}

/// A stored request, as the tests and the summary look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// `requests.id`.
    pub id: i64,
    /// `auditID`.
    pub audit_id: String,
    /// Receive time, unix microseconds.
    pub received_us: i64,
    /// Most complete stage stored.
    pub stage: StageRank,
    /// Status code.
    pub status_code: Option<i64>,
    /// Latency in microseconds.
    pub latency_us: Option<i64>,
    /// Verb.
    pub verb: String,
    /// `endpoint`, `non_resource`, `unmapped:<reason>`.
    pub mapping: String,
    /// Operation id of the endpoint, when mapped.
    pub operation_id: Option<String>,
    /// Identity text.
    pub identity: Option<String>,
    /// Test name.
    pub test: Option<String>,
    /// Purpose fingerprint (hex).
    pub fingerprint: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Impersonated user name.
    pub impersonated_user: Option<String>,
}

/// The requests with an audit id, oldest first.
pub fn requests_by_audit_id(conn: &Connection, audit_id: &str) -> Result<Vec<RequestRow>> {
    let mut s = conn
        .prepare_cached(
            "SELECT r.id, r.audit_id, r.received_us, r.stage, r.status_code, r.latency_us, r.verb, \
             r.mapping, e.operation_id, i.text, t.name, p.fingerprint, u.name, iu.name \
             FROM requests r LEFT JOIN endpoints e ON e.id = r.endpoint_id \
             LEFT JOIN identities i ON i.id = r.identity_id LEFT JOIN tests t ON t.id = r.test_id \
             LEFT JOIN purposes p ON p.id = r.purpose_id LEFT JOIN users u ON u.id = r.user_id \
             LEFT JOIN users iu ON iu.id = r.impersonated_user_id \
             WHERE r.audit_id = ?1 ORDER BY r.received_us, r.id",
        )
        .map_err(sql("prepare the request query"))?;
    s.query_map(params![audit_id], |r| {
        Ok(RequestRow {
            id: r.get(0)?,
            audit_id: r.get(1)?,
            received_us: r.get(2)?,
            stage: StageRank::from_i64(r.get(3)?).unwrap_or(StageRank::RequestReceived),
            status_code: r.get(4)?,
            latency_us: r.get(5)?,
            verb: r.get(6)?,
            mapping: r.get(7)?,
            operation_id: r.get(8)?,
            identity: r.get(9)?,
            test: r.get(10)?,
            fingerprint: r.get(11)?,
            user: r.get(12)?,
            impersonated_user: r.get(13)?,
        })
    })
    .and_then(|rows| rows.collect())
    .map_err(sql("read requests"))
}

/// Requests per `mapping` value, most frequent first.
pub fn requests_by_mapping(conn: &Connection) -> Result<Vec<(String, u64)>> {
    let mut s = conn
        .prepare_cached(
            "SELECT mapping, count(*) AS n FROM requests GROUP BY mapping ORDER BY n DESC, mapping",
        )
        .map_err(sql("prepare the mapping counts"))?;
    s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .and_then(|rows| rows.collect())
        .map_err(sql("count requests by mapping"))
}

/// The frames of a purpose, innermost first, as `function@file:line`.
pub fn purpose_frames(conn: &Connection, fingerprint: &str) -> Result<Vec<String>> {
    let mut s = conn
        .prepare_cached(
            "SELECT f.function || '@' || f.file || ':' || f.line FROM purposes p \
             JOIN purpose_frames pf ON pf.purpose_id = p.id JOIN frames f ON f.id = pf.frame_id \
             WHERE p.fingerprint = ?1 ORDER BY pf.depth",
        )
        .map_err(sql("prepare the purpose frames query"))?;
    s.query_map(params![fingerprint], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql("read purpose frames"))
}

/// Malformed inputs recorded, as `(source, line, reason)`, in order.
pub fn malformed(conn: &Connection) -> Result<Vec<(String, Option<u64>, String)>> {
    let mut s = conn
        .prepare_cached("SELECT source, line, reason FROM malformed ORDER BY id")
        .map_err(sql("prepare the malformed query"))?;
    s.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get::<_, Option<i64>>(1)?.map(|l| l as u64),
            r.get(2)?,
        ))
    })
    .and_then(|rows| rows.collect())
    .map_err(sql("read malformed inputs"))
}

/// Audit ids of all requests, in id order (for checks of what a batch stored).
pub fn audit_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut s = conn
        .prepare_cached("SELECT audit_id FROM requests ORDER BY id")
        .map_err(sql("prepare the audit id query"))?;
    s.query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(sql("read audit ids"))
}

/// `PRAGMA integrity_check`: `ok` or what is wrong.
pub fn integrity_check(conn: &Connection) -> Result<String> {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sql("check integrity"))
}

/// Every stored release's label, oldest first.
pub fn release_labels(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare("SELECT label FROM releases ORDER BY id")
        .map_err(sql("list releases"))?;
    let labels = stmt
        .query_map([], |r| r.get(0))
        .map_err(sql("list releases"))?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql("list releases"))?;
    Ok(labels)
}

/// The release with a label, or the most recently loaded one.
pub fn release(conn: &Connection, label: Option<&str>) -> Result<Option<StoredRelease>> {
    type Row = (i64, String, Vec<u8>, Option<String>, Option<String>, i64);
    let row: Option<Row> = conn
        .query_row(
            "SELECT id, label, spec_gz, ineligible, pending, \
             (SELECT COUNT(*) FROM conformance_tests c WHERE c.release_id = releases.id) \
             FROM releases WHERE ?1 IS NULL OR label = ?1 ORDER BY id DESC LIMIT 1",
            params![label],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()
        .map_err(sql("read a release"))?;
    let Some((id, label, spec_gz, ineligible, pending, conformance_tests)) = row else {
        return Ok(None);
    };
    let mut spec = Vec::new();
    flate2::read::GzDecoder::new(&spec_gz[..])
        .read_to_end(&mut spec)
        .map_err(|e| Error::Sqlite {
            step: "decompress a stored OpenAPI document",
            source: rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Blob,
                Box::new(e),
            ),
        })?;
    Ok(Some(StoredRelease {
        id: ReleaseId(id),
        label,
        spec,
        ineligible,
        pending,
        conformance_tests: conformance_tests as u64,
    }))
}

/// A release's stored lists: (ineligible, pending, number of conformance tests).
pub type ReleaseLists = (Option<String>, Option<String>, u64);

/// The lists stored for a release label, without its document; `None` when the label is not
/// stored.
pub fn release_lists(conn: &Connection, label: &str) -> Result<Option<ReleaseLists>> {
    conn.query_row(
        "SELECT ineligible, pending, \
         (SELECT COUNT(*) FROM conformance_tests c WHERE c.release_id = releases.id) \
         FROM releases WHERE label = ?1",
        params![label],
        |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
    )
    .optional()
    .map_err(sql("read a release's lists"))
}
