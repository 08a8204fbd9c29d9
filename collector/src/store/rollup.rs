//! Aggregates kept current in the same transaction as each batch (the query rollups of
//! migration 2).
//!
//! [`apply`] runs after a batch's requests are written and before its commit, with exactly what
//! the batch changed ([`Applied`]); a rollup that fails rolls the whole batch back, so rollups
//! and `requests` never disagree. Add a rollup by adding a call here (its SQL in this module or a
//! sibling of `store/`).

use std::collections::{BTreeSet, HashMap};

use rusqlite::{OptionalExtension, Transaction, params};

use super::{RequestRecord, RunId, StageRank};

/// A request stored for the first time by this batch.
#[derive(Debug, Clone, Copy)]
pub struct NewRequest<'a> {
    /// `requests.id`.
    pub id: i64,
    /// The event stored (the most complete stage of its request in the batch).
    pub record: &'a RequestRecord,
    /// `requests.endpoint_id`.
    pub endpoint_id: Option<i64>,
    /// `requests.identity_id`.
    pub identity_id: Option<i64>,
    /// `requests.purpose_id`.
    pub purpose_id: Option<i64>,
    /// `requests.test_id`.
    pub test_id: Option<i64>,
    /// `requests.user_id`.
    pub user_id: Option<i64>,
}

/// A stored request moved to a more complete stage by this batch.
#[derive(Debug, Clone, Copy)]
pub struct Advance<'a> {
    /// `requests.id`.
    pub id: i64,
    /// The event now stored.
    pub record: &'a RequestRecord,
    /// Stage before.
    pub before_stage: StageRank,
    /// Status code before.
    pub before_status: Option<i64>,
}

/// What one batch changed.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// The run the batch belongs to.
    pub run: RunId,
    /// Requests stored for the first time.
    pub new: &'a [NewRequest<'a>],
    /// Requests moved to a more complete stage.
    pub advanced: &'a [Advance<'a>],
}

/// Updates every rollup for one batch, inside its transaction: `usage`, `endpoint_usage` and
/// `run_usage` (migration 2). Aggregated in memory first, so each distinct key costs one upsert.
pub(super) fn apply(tx: &Transaction<'_>, applied: &Applied<'_>) -> rusqlite::Result<()> {
    if applied.new.is_empty() && applied.advanced.is_empty() {
        return Ok(());
    }
    let mut batch = Rollup::default();
    let mut conformance = Conformance::default();
    for n in applied.new {
        let test = n.test_id.unwrap_or(0);
        let conf = conformance.of(tx, test)?;
        let key = UsageKey {
            endpoint: n.endpoint_id.unwrap_or(0),
            identity: n.identity_id.unwrap_or(0),
            test,
            purpose: n.purpose_id.unwrap_or(0),
            verb: n.record.verb().to_owned(),
            code: n.record.status_code.unwrap_or(0),
        };
        batch.add(key, 1, n.record.received_us, conf, true);
        if let Some(e) = n.endpoint_id {
            let r = batch.run.entry(e).or_default();
            r.hits += 1;
            r.test_hits += (test != 0) as i64;
            r.conf_hits += conf as i64;
        }
    }
    if !applied.advanced.is_empty() {
        // An advanced request moves from its old status code to its new one; its other key
        // columns are the stored row's.
        let mut row = tx.prepare_cached(
            "SELECT COALESCE(endpoint_id, 0), COALESCE(identity_id, 0), COALESCE(test_id, 0), \
             COALESCE(purpose_id, 0), verb, received_us FROM requests WHERE id = ?1",
        )?;
        for a in applied.advanced {
            let before = a.before_status.unwrap_or(0);
            let after = a.record.status_code.unwrap_or(0);
            if before == after {
                continue;
            }
            let (endpoint, identity, test, purpose, verb, at): (i64, i64, i64, i64, String, i64) =
                row.query_row(params![a.id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?;
            let conf = conformance.of(tx, test)?;
            let key = |code| UsageKey {
                endpoint,
                identity,
                test,
                purpose,
                verb: verb.clone(),
                code,
            };
            batch.add(key(before), -1, at, conf, false);
            batch.add(key(after), 1, at, conf, false);
        }
    }
    batch.write(tx, applied.run.0)
}

/// `tests.conformance` of the batch's tests, read once per batch.
#[derive(Default)]
struct Conformance(HashMap<i64, bool>);

impl Conformance {
    fn of(&mut self, tx: &Transaction<'_>, test: i64) -> rusqlite::Result<bool> {
        if test == 0 {
            return Ok(false);
        }
        if let Some(c) = self.0.get(&test) {
            return Ok(*c);
        }
        let c = tx
            .prepare_cached("SELECT conformance FROM tests WHERE id = ?1")?
            .query_row(params![test], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0)
            != 0;
        self.0.insert(test, c);
        Ok(c)
    }
}

// Field order = the usage primary key's, so sorted keys write the B-tree in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct UsageKey {
    endpoint: i64,
    identity: i64,
    test: i64,
    purpose: i64,
    verb: String,
    code: i64,
}

#[derive(Debug, Clone, Copy)]
struct Hits {
    hits: i64,
    first: i64,
    last: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct EndpointHits {
    apps: i64,
    tests: i64,
    locs: i64,
    hits: i64,
    test_hits: i64,
    conf_hits: i64,
    ok_hits: i64,
    ok_test_hits: i64,
    ok_conf_hits: i64,
}

#[derive(Debug, Clone, Copy, Default)]
struct RunHits {
    hits: i64,
    test_hits: i64,
    conf_hits: i64,
}

/// One batch's deltas.
#[derive(Default)]
struct Rollup {
    usage: HashMap<UsageKey, Hits>,
    endpoint: HashMap<i64, EndpointHits>,
    run: HashMap<i64, RunHits>,
}

impl Rollup {
    /// Adds `n` requests under `key`: a new request (`n` = 1), or one side of a request's move
    /// between status codes (`n` = -1 from the old, +1 to the new), which changes no count of
    /// requests, only the 2xx ones.
    fn add(&mut self, key: UsageKey, n: i64, at: i64, conf: bool, new: bool) {
        if key.endpoint != 0 {
            let ok = (200..300).contains(&key.code);
            let test = key.test != 0;
            let e = self.endpoint.entry(key.endpoint).or_default();
            if new {
                e.hits += n;
                e.test_hits += (test as i64) * n;
                e.conf_hits += (conf as i64) * n;
            }
            e.ok_hits += (ok as i64) * n;
            e.ok_test_hits += ((ok && test) as i64) * n;
            e.ok_conf_hits += ((ok && conf) as i64) * n;
        }
        let h = self.usage.entry(key).or_insert(Hits {
            hits: 0,
            first: at,
            last: at,
        });
        h.hits += n;
        h.first = h.first.min(at);
        h.last = h.last.max(at);
    }

    fn write(mut self, tx: &Transaction<'_>, run: i64) -> rusqlite::Result<()> {
        // RETURNING tells a new key (its total is this batch's count) from an old one.
        let mut up = tx.prepare_cached(
            "INSERT INTO usage (endpoint_id, identity_id, test_id, purpose_id, verb, code, hits, \
             first_us, last_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, \
             first_us = min(first_us, excluded.first_us), last_us = max(last_us, excluded.last_us) \
             RETURNING hits",
        )?;
        let mut emptied = Vec::new();
        let mut fresh = Vec::new();
        // In key order: neighbouring keys share pages, which stay in the page cache.
        let mut sorted: Vec<(&UsageKey, &Hits)> = self.usage.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, h) in sorted {
            if h.hits == 0 {
                continue;
            }
            let total: i64 = up.query_row(
                params![
                    k.endpoint, k.identity, k.test, k.purpose, k.verb, k.code, h.hits, h.first,
                    h.last
                ],
                |r| r.get(0),
            )?;
            if h.hits < 0 {
                emptied.push(k);
            } else if total == h.hits && k.endpoint != 0 {
                fresh.push(k);
            }
        }
        if !emptied.is_empty() {
            // A key whose only request moved to another code is gone, not a zero.
            let mut del = tx.prepare_cached(
                "DELETE FROM usage WHERE endpoint_id = ?1 AND identity_id = ?2 AND test_id = ?3 \
                 AND purpose_id = ?4 AND verb = ?5 AND code = ?6 AND hits <= 0",
            )?;
            for k in emptied {
                del.execute(params![
                    k.endpoint, k.identity, k.test, k.purpose, k.verb, k.code
                ])?;
            }
        }
        if !fresh.is_empty() {
            // Only a new usage key can bring an endpoint a new app, test or purpose.
            let mut app = tx.prepare_cached(
                "INSERT OR IGNORE INTO endpoint_apps (endpoint_id, identity_id) VALUES (?1, ?2)",
            )?;
            let mut test = tx.prepare_cached(
                "INSERT OR IGNORE INTO endpoint_tests (endpoint_id, test_id) VALUES (?1, ?2)",
            )?;
            let mut purpose = tx.prepare_cached(
                "INSERT OR IGNORE INTO endpoint_purposes (purpose_id, endpoint_id) VALUES (?1, ?2)",
            )?;
            let mut locs = tx.prepare_cached(
                "INSERT OR IGNORE INTO endpoint_locs (endpoint_id, frame_id) \
                 SELECT ?1, frame_id FROM purpose_frames WHERE purpose_id = ?2",
            )?;
            // Many new keys share their (endpoint, app), (endpoint, test), (purpose, endpoint):
            // each pair is tried once, in primary-key order.
            let apps: BTreeSet<(i64, i64)> = fresh
                .iter()
                .filter(|k| k.identity != 0)
                .map(|k| (k.endpoint, k.identity))
                .collect();
            let tests: BTreeSet<(i64, i64)> = fresh
                .iter()
                .filter(|k| k.test != 0)
                .map(|k| (k.endpoint, k.test))
                .collect();
            let purposes: BTreeSet<(i64, i64)> = fresh
                .iter()
                .filter(|k| k.purpose != 0)
                .map(|k| (k.purpose, k.endpoint))
                .collect();
            for (endpoint, identity) in apps {
                self.endpoint.entry(endpoint).or_default().apps +=
                    app.execute(params![endpoint, identity])? as i64;
            }
            for (endpoint, t) in tests {
                self.endpoint.entry(endpoint).or_default().tests +=
                    test.execute(params![endpoint, t])? as i64;
            }
            for (p, endpoint) in purposes {
                if purpose.execute(params![p, endpoint])? == 1 {
                    self.endpoint.entry(endpoint).or_default().locs +=
                        locs.execute(params![endpoint, p])? as i64;
                }
            }
        }
        let mut ep = tx.prepare_cached(
            "INSERT INTO endpoint_usage (endpoint_id, hits, test_hits, conf_hits, ok_hits, \
             ok_test_hits, ok_conf_hits, apps, tests, locs) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, \
             apps = apps + excluded.apps, tests = tests + excluded.tests, locs = locs + excluded.locs, \
             test_hits = test_hits + excluded.test_hits, conf_hits = conf_hits + excluded.conf_hits, \
             ok_hits = ok_hits + excluded.ok_hits, ok_test_hits = ok_test_hits + excluded.ok_test_hits, \
             ok_conf_hits = ok_conf_hits + excluded.ok_conf_hits",
        )?;
        for (id, e) in &self.endpoint {
            ep.execute(params![
                id,
                e.hits,
                e.test_hits,
                e.conf_hits,
                e.ok_hits,
                e.ok_test_hits,
                e.ok_conf_hits,
                e.apps,
                e.tests,
                e.locs
            ])?;
        }
        let mut ru = tx.prepare_cached(
            "INSERT INTO run_usage (run_id, endpoint_id, hits, test_hits, conf_hits) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, \
             test_hits = test_hits + excluded.test_hits, conf_hits = conf_hits + excluded.conf_hits",
        )?;
        for (id, r) in &self.run {
            ru.execute(params![run, id, r.hits, r.test_hits, r.conf_hits])?;
        }
        Ok(())
    }
}

/// A purpose's frames changed (a longer user agent, or the side channel's full stack): its new
/// lines of code count for every endpoint it already reached.
pub(super) fn frames_replaced(tx: &Transaction<'_>, purpose: i64) -> rusqlite::Result<()> {
    let added = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO endpoint_locs (endpoint_id, frame_id) \
             SELECT ep.endpoint_id, pf.frame_id FROM endpoint_purposes ep \
             JOIN purpose_frames pf ON pf.purpose_id = ep.purpose_id WHERE ep.purpose_id = ?1",
        )?
        .execute(params![purpose])?;
    if added > 0 {
        tx.prepare_cached(
            "UPDATE endpoint_usage SET locs = (SELECT COUNT(*) FROM endpoint_locs l \
             WHERE l.endpoint_id = endpoint_usage.endpoint_id) \
             WHERE endpoint_id IN (SELECT endpoint_id FROM endpoint_purposes WHERE purpose_id = ?1)",
        )?
        .execute(params![purpose])?;
    }
    Ok(())
}
