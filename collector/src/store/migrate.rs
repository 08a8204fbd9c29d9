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
    include_str!("migrations/0013_journeys.sql"),
    IDENTITY_KEYS,
    include_str!("migrations/0015_access_rollups.sql"),
    include_str!("migrations/0016_deps_rollup.sql"),
    include_str!("migrations/0017_rbac_grants.sql"),
    include_str!("migrations/0018_no_access.sql"),
    include_str!("migrations/0019_object_uses_by_app.sql"),
];

/// Migration 14, whose keys only Rust can compute ([`fill_identity_keys`]).
const IDENTITY_KEYS: &str = include_str!("migrations/0014_identity_keys.sql");

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The key of every identity stored before migration 14 (a database holds a few thousand).
fn fill_identity_keys(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT id, text FROM identities WHERE key IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut set = tx.prepare("UPDATE identities SET key = ?2 WHERE id = ?1")?;
    for (id, text) in rows {
        set.execute(rusqlite::params![id, super::key::identity_key(&text)])?;
    }
    Ok(())
}

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
        tx.execute_batch(sql)
            .and_then(|()| {
                if *sql == IDENTITY_KEYS {
                    fill_identity_keys(&tx)?;
                }
                Ok(())
            })
            .map_err(|source| Error::Migration {
                version: i as i64 + 1,
                source,
            })?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(Error::sqlite("set schema version"))?;
    }
    tx.commit().map_err(Error::sqlite("commit migration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written before migration 14 finds its identities by key after it, under
    /// the same ids and with the same texts and fields.
    #[test]
    fn identities_stored_before_keys_get_theirs() {
        let mut conn = Connection::open_in_memory().unwrap();
        let before = MIGRATIONS.iter().position(|m| *m == IDENTITY_KEYS).unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before as i64)
            .unwrap();
        let old = [
            (
                3,
                "kubelet/v1.36.0 (linux/amd64) kubernetes/3f7a50f",
                Some("kubelet"),
            ),
            (7, "Mozilla/5.0 (X11; Linux x86_64)", None),
        ];
        for (id, text, name) in old {
            conn.execute(
                "INSERT INTO identities (id, text, name) VALUES (?1, ?2, ?3)",
                rusqlite::params![id, text, name],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let rows: Vec<(i64, Option<i64>, String, Option<String>)> = conn
            .prepare("SELECT id, key, text, name FROM identities ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let want: Vec<_> = old
            .iter()
            .map(|&(id, text, name)| {
                (
                    id,
                    Some(super::super::key::identity_key(text)),
                    text.to_owned(),
                    name.map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(rows, want);
        // The writer's lookup reads the key's index, not the table.
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id, text FROM identities WHERE key = 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("identities_by_key"), "{plan}");
    }
}
