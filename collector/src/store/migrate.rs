//! Append-only schema migrations keyed by `PRAGMA user_version`.
//!
//! Migration N (1-based) brings `user_version` from N-1 to N; all pending ones run in one
//! exclusive transaction, so two processes opening a new file cannot both migrate it.

use rusqlite::{Connection, TransactionBehavior};

use super::{Error, Result};

/// The migrations, in order. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_core.sql"),
    include_str!("migrations/0002_rollups.sql"),
    include_str!("migrations/0003_endpoint_distinct.sql"),
    include_str!("migrations/0004_frames_by_file.sql"),
    include_str!("migrations/0005_rollup_state.sql"),
    include_str!("migrations/0006_rollup_marks.sql"),
    include_str!("migrations/0007_identity_detail.sql"),
    include_str!("migrations/0008_ci_runs.sql"),
    include_str!("migrations/0009_deprecation.sql"),
    include_str!("migrations/0010_conformance_meta.sql"),
    include_str!("migrations/0012_purpose_addresses.sql"),
    include_str!("migrations/0013_access_rollups.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(Error::sqlite("begin migration"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(Error::sqlite("read schema version"))?;
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(|source| Error::Migration {
            version: i as i64 + 1,
            source,
        })?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(Error::sqlite("set schema version"))?;
    }
    tx.commit().map_err(Error::sqlite("commit migration"))
}
