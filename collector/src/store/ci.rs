//! CI builds read from GCS: what a run of `ingest gs://...` or `ingest --prow-job` records of
//! each build (job, build id, result, Kubernetes version and commit) and of each object it read,
//! so the next run skips a build already read whole and reads only the objects it has not.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Error, Result, RunId};

/// A CI build, as its `started.json`, `finished.json` and `prowjob.json` tell it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CiBuild {
    /// Bucket.
    pub bucket: String,
    /// The build's directory in the bucket (`logs/JOB/BUILD/`), or the prefix given.
    pub prefix: String,
    /// Prow job name.
    pub job: Option<String>,
    /// Build id.
    pub build: Option<String>,
    /// `SUCCESS`, `FAILURE`, ... (none until the build has finished).
    pub result: Option<String>,
    /// Kubernetes version built and tested (`v1.36.0-alpha.1.23+0123abcd`).
    pub version: Option<String>,
    /// Kubernetes commit.
    pub commit: Option<String>,
    /// Start, RFC 3339.
    pub started_at: Option<String>,
    /// End, RFC 3339.
    pub finished_at: Option<String>,
    /// Finished, and every object read (or unreadable for good): later runs skip the build.
    pub complete: bool,
}

impl CiBuild {
    /// A build in `bucket` at `prefix`, nothing known of it yet.
    pub fn new(bucket: &str, prefix: &str) -> CiBuild {
        CiBuild {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            ..CiBuild::default()
        }
    }
}

/// One object read from a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiObject {
    /// Name in the bucket.
    pub name: String,
    /// Its generation (a rewritten object has a new one and is read again).
    pub generation: String,
    /// Size in bytes, as stored.
    pub size: u64,
    /// Why it was not read whole.
    pub error: Option<String>,
    /// The failure was the transport's: read it again on the next run.
    pub retry: bool,
}

/// A build already recorded: its run, whether it is complete, and the objects read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCiBuild {
    /// The run its requests are in (later runs of the same build add to it).
    pub run: RunId,
    /// Nothing more to read.
    pub complete: bool,
    /// `(name, generation)` of the objects that need not be read again.
    pub done: Vec<(String, String)>,
}

/// The build at `bucket`/`prefix`, if a run recorded it.
pub fn stored_build(
    conn: &Connection,
    bucket: &str,
    prefix: &str,
) -> Result<Option<StoredCiBuild>> {
    let Some((run, complete)) = conn
        .query_row(
            "SELECT run_id, complete FROM ci_runs WHERE bucket = ?1 AND prefix = ?2",
            params![bucket, prefix],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? != 0)),
        )
        .optional()
        .map_err(Error::sqlite("read a CI build"))?
    else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare("SELECT name, generation FROM ci_objects WHERE run_id = ?1 AND retry = 0")
        .map_err(Error::sqlite("read a CI build's objects"))?;
    let done = stmt
        .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(Error::sqlite("read a CI build's objects"))?;
    Ok(Some(StoredCiBuild {
        run: RunId(run),
        complete,
        done,
    }))
}

/// Records (or updates) a build and the objects this run read from it.
pub(super) fn record(
    tx: &Transaction<'_>,
    run: RunId,
    build: &CiBuild,
    objects: &[CiObject],
) -> Result<()> {
    tx.execute(
        "INSERT INTO ci_runs (run_id, bucket, prefix, job, build, result, k8s_version, k8s_commit, \
         started_at, finished_at, complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (run_id) DO UPDATE SET job = excluded.job, build = excluded.build, \
         result = excluded.result, k8s_version = excluded.k8s_version, \
         k8s_commit = excluded.k8s_commit, started_at = excluded.started_at, \
         finished_at = excluded.finished_at, complete = excluded.complete",
        params![
            run.0,
            build.bucket,
            build.prefix,
            build.job,
            build.build,
            build.result,
            build.version,
            build.commit,
            build.started_at,
            build.finished_at,
            build.complete as i64,
        ],
    )
    .map_err(Error::sqlite("record a CI build"))?;
    let mut stmt = tx
        .prepare(
            "INSERT INTO ci_objects (run_id, name, generation, size, error, retry) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (run_id, name) DO UPDATE SET \
             generation = excluded.generation, size = excluded.size, error = excluded.error, \
             retry = excluded.retry",
        )
        .map_err(Error::sqlite("record a CI object"))?;
    for o in objects {
        stmt.execute(params![
            run.0,
            o.name,
            o.generation,
            o.size as i64,
            o.error,
            o.retry as i64
        ])
        .map_err(Error::sqlite("record a CI object"))?;
    }
    Ok(())
}
