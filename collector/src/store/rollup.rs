//! The query rollups (migrations 2 and 3), folded in from `requests`.
//!
//! [`Pending::add`] takes exactly what a batch changed ([`Applied`]), inside its transaction,
//! and sums it in memory; [`Pending::fold`] writes the sums, one upsert per distinct key in key
//! order, and moves `rollup_state.folded_through` (migration 5) in the same transaction. With
//! [`Fold::EveryBatch`] both happen in the batch's transaction; with [`Fold::Deferred`] many
//! batches share one fold. Either way the rollups count exactly the requests up to the mark,
//! and a writer that starts folds whatever lies above it, so rollups and `requests` never
//! disagree for long and never for good. Add a rollup by adding it to [`Rollup`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use foldhash::HashMap;
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

/// When rollups are folded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// In each batch's own transaction: queries see every committed batch at once.
    EveryBatch,
    /// Deltas of many batches are summed in memory, in segments of consecutive requests, and
    /// folded in their own transactions: all of them once `max_keys` distinct keys are pending
    /// or the oldest is `interval` old, at the end of a run and when the writer stops; with
    /// `when_idle`, also a segment at a time once the writer has had nothing to do for that
    /// long.
    Deferred {
        /// Age of the oldest pending delta that makes a fold of everything due.
        interval: Duration,
        /// Distinct `usage` keys pending that make a fold of everything due (bounds memory).
        max_keys: usize,
        /// Distinct keys in a segment: the most one idle fold writes.
        segment_keys: usize,
        /// Fold a segment once no command has come for this long (`serve`: between webhook
        /// batches, so the rollups keep up while the load leaves room, and a batch arriving
        /// meanwhile waits for one small fold at most).
        when_idle: Option<Duration>,
    },
}

impl Fold {
    /// Bulk ingest: sums over up to 200k keys (a log repeats its keys), folded every 10 s.
    pub fn bulk() -> Fold {
        Fold::Deferred {
            interval: Duration::from_secs(10),
            max_keys: 200_000,
            segment_keys: 200_000,
            when_idle: None,
        }
    }

    /// A webhook: a segment (about one batch) folded once the writer has been idle for 2 ms,
    /// everything every 5 s (or at 100k keys). Under light load the idle folds keep up and the
    /// 5 s fold finds little to do; under saturation there is no idle time, and one fold of
    /// everything costs far less than a fold per batch (each rewrote the same rollup pages).
    pub fn webhook() -> Fold {
        Fold::Deferred {
            interval: Duration::from_secs(5),
            max_keys: 100_000,
            segment_keys: 400,
            when_idle: Some(Duration::from_millis(2)),
        }
    }
}

/// The deltas of consecutive requests `(after, last_id]`.
#[derive(Debug)]
struct Segment {
    rollup: Rollup,
    last_id: i64,
    since: Instant,
}

/// Rollup deltas of committed requests not yet folded into the rollup tables.
///
/// Invariant: `rollup_state.folded_through` is the highest `requests.id` counted in the
/// rollups; every request above it is counted in exactly one segment (while `exact`), the
/// segments in id order. A crash loses the memory, not the invariant: the next writer folds
/// the requests above the mark from the table.
#[derive(Debug, Default)]
pub(super) struct Pending {
    segments: std::collections::VecDeque<Segment>,
    /// Distinct keys over all segments (an upper bound: the same key in two segments counts
    /// twice).
    keys: usize,
    conformance: HashMap<i64, bool>,
    /// `rollup_state.folded_through`, as last read or written.
    folded_through: i64,
    /// `false` until read from the database and after a rollback: the segments are not to be
    /// trusted, and the next fold re-reads the requests above the mark instead.
    exact: bool,
    /// The mark a fold written in the open transaction moves to.
    in_flight: Option<i64>,
}

impl Pending {
    /// Adds one batch's changes (inside its transaction). Moves of requests already folded
    /// are written at once, so the rollups stay exact for them whatever happens next.
    pub(super) fn add(
        &mut self,
        tx: &Transaction<'_>,
        applied: &Applied<'_>,
        fold: Fold,
    ) -> rusqlite::Result<()> {
        if applied.new.is_empty() && applied.advanced.is_empty() {
            return Ok(());
        }
        let segment_keys = match fold {
            Fold::EveryBatch => usize::MAX,
            Fold::Deferred { segment_keys, .. } => segment_keys,
        };
        for n in applied.new {
            if !self.exact {
                continue; // the next fold reads it from `requests`
            }
            let test = n.test_id.unwrap_or(0);
            let conf = conformance(&mut self.conformance, tx, test)?;
            if self
                .segments
                .back()
                .is_none_or(|s| s.rollup.usage.len() >= segment_keys)
            {
                self.segments.push_back(Segment {
                    rollup: Rollup::default(),
                    last_id: n.id,
                    since: Instant::now(),
                });
            }
            let segment = self.segments.back_mut().expect("a segment");
            let before = segment.rollup.usage.len();
            let key = UsageKey {
                endpoint: n.endpoint_id.unwrap_or(0) as i32,
                identity: n.identity_id.unwrap_or(0),
                test,
                purpose: n.purpose_id.unwrap_or(0),
                verb: segment.rollup.verb(n.record.verb()),
                code: n.record.status_code.unwrap_or(0) as i32,
            };
            segment
                .rollup
                .add_new(key, n.record.received_us, conf, applied.run.0);
            segment.last_id = n.id;
            self.keys += segment.rollup.usage.len() - before;
        }
        if !applied.advanced.is_empty() {
            let mut now = Rollup::default();
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
                let pending = a.id > self.folded_through;
                if pending && !self.exact {
                    continue; // the next fold reads its current code
                }
                let (endpoint, identity, test, purpose, verb, at): (
                    i64,
                    i64,
                    i64,
                    i64,
                    String,
                    i64,
                ) = row.query_row(params![a.id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?;
                let conf = conformance(&mut self.conformance, tx, test)?;
                // A pending request's move belongs to its own segment: folding that segment
                // folds the request as it is now.
                let into = if pending {
                    match self.segments.iter_mut().find(|s| s.last_id >= a.id) {
                        Some(s) => &mut s.rollup,
                        None => continue, // not this writer's: only after a rollback
                    }
                } else {
                    &mut now
                };
                let verb = into.verb(&verb);
                let key = |code: i64| UsageKey {
                    endpoint: endpoint as i32,
                    identity,
                    test,
                    purpose,
                    verb,
                    code: code as i32,
                };
                into.add(key(before), -1, at, conf, false);
                into.add(key(after), 1, at, conf, false);
                self.keys += 2;
            }
            if !now.usage.is_empty() {
                now.write(tx)?;
            }
        }
        Ok(())
    }

    /// A transaction committed: a fold in it is done.
    pub(super) fn committed(&mut self) {
        if let Some(through) = self.in_flight.take() {
            self.folded_through = through;
            self.exact = true;
        }
    }

    /// Whether everything pending is to be folded now under `fold`.
    pub(super) fn due(&self, fold: Fold) -> bool {
        if !self.exact {
            return true;
        }
        let Some(oldest) = self.segments.front() else {
            return false;
        };
        match fold {
            Fold::EveryBatch => true,
            Fold::Deferred {
                interval, max_keys, ..
            } => self.keys >= max_keys || oldest.since.elapsed() >= interval,
        }
    }

    /// Whether anything is pending.
    pub(super) fn any(&self) -> bool {
        !self.exact || !self.segments.is_empty()
    }

    /// Folds everything pending into the rollup tables and moves the mark, inside `tx`. Call
    /// [`Pending::committed`] once `tx` commits; if it rolls back, start over from
    /// `Pending::default()` (inexact: the next fold re-reads `requests`).
    pub(super) fn fold(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.fold_segments(tx, usize::MAX)
    }

    /// Folds the oldest segment (everything, if the segments are not exact).
    pub(super) fn fold_one(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.fold_segments(tx, 1)
    }

    fn fold_segments(&mut self, tx: &Transaction<'_>, segments: usize) -> rusqlite::Result<()> {
        let through = if self.exact {
            let Some(first) = self.segments.pop_front() else {
                return Ok(());
            };
            let mut through = first.last_id;
            let mut rollup = first.rollup;
            for _ in 1..segments {
                let Some(next) = self.segments.pop_front() else {
                    break;
                };
                through = next.last_id;
                rollup.merge(next.rollup);
            }
            self.keys = self.segments.iter().map(|s| s.rollup.usage.len()).sum();
            rollup.write(tx)?;
            through
        } else {
            self.segments.clear();
            self.keys = 0;
            self.fold_from_requests(tx)?
        };
        tx.prepare_cached("UPDATE rollup_state SET folded_through = ?1")?
            .execute(params![through])?;
        self.in_flight = Some(through);
        Ok(())
    }

    /// Re-reads the requests above the mark (after a crash or a rollback) in id order, writing
    /// every `FOLD_KEYS` distinct keys; returns the highest id folded.
    fn fold_from_requests(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<i64> {
        let mark: i64 = tx
            .prepare_cached("SELECT folded_through FROM rollup_state")?
            .query_row([], |r| r.get(0))?;
        let mut through = mark;
        let mut rollup = Rollup::default();
        let mut rows = tx.prepare_cached(
            "SELECT id, run_id, COALESCE(endpoint_id, 0), COALESCE(identity_id, 0), \
             COALESCE(test_id, 0), COALESCE(purpose_id, 0), verb, COALESCE(status_code, 0), \
             received_us FROM requests WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = rows.query(params![mark])?;
        while let Some(r) = rows.next()? {
            let test: i64 = r.get(4)?;
            let conf = conformance(&mut self.conformance, tx, test)?;
            let verb = rollup.verb(r.get_ref(6)?.as_str()?);
            let key = UsageKey {
                endpoint: r.get(2)?,
                identity: r.get(3)?,
                test,
                purpose: r.get(5)?,
                verb,
                code: r.get(7)?,
            };
            rollup.add_new(key, r.get(8)?, conf, r.get(1)?);
            through = r.get(0)?;
            if rollup.usage.len() >= FOLD_KEYS {
                std::mem::take(&mut rollup).write(tx)?;
            }
        }
        rollup.write(tx)?;
        Ok(through)
    }
}

/// Distinct keys written at a time when folding from `requests`.
const FOLD_KEYS: usize = 100_000;

/// `tests.conformance`, read once per test.
fn conformance(
    cache: &mut HashMap<i64, bool>,
    tx: &Transaction<'_>,
    test: i64,
) -> rusqlite::Result<bool> {
    if test == 0 {
        return Ok(false);
    }
    if let Some(c) = cache.get(&test) {
        return Ok(*c);
    }
    let c = tx
        .prepare_cached("SELECT conformance FROM tests WHERE id = ?1")?
        .query_row(params![test], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0)
        != 0;
    cache.insert(test, c);
    Ok(c)
}

// Field order = the usage primary key's, so sorted keys write the B-tree in order (verbs by
// first appearance: close enough). Compact, as a deferred fold holds many of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct UsageKey {
    endpoint: i32,
    identity: i64,
    test: i64,
    purpose: i64,
    /// Index in [`Rollup::verbs`].
    verb: u32,
    code: i32,
}

#[derive(Debug, Clone, Copy)]
struct Hits {
    hits: i64,
    first: i64,
    last: i64,
}

impl Hits {
    /// No requests yet, first and last seen at `at`.
    fn none(at: i64) -> Hits {
        Hits {
            hits: 0,
            first: at,
            last: at,
        }
    }

    /// Adds `n` requests seen between `first` and `last`.
    fn absorb(&mut self, n: i64, first: i64, last: i64) {
        self.hits += n;
        self.first = self.first.min(first);
        self.last = self.last.max(last);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct EndpointHits {
    apps: i64,
    tests: i64,
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

/// Deltas of one batch or of many.
#[derive(Debug, Default)]
struct Rollup {
    usage: HashMap<UsageKey, Hits>,
    endpoint: HashMap<i64, EndpointHits>,
    /// By (run, endpoint).
    run: HashMap<(i64, i64), RunHits>,
    /// Verbs of the keys, by [`UsageKey::verb`], and back.
    verbs: Vec<Box<str>>,
    verb_ids: HashMap<Box<str>, u32>,
}

impl Rollup {
    /// The key's index of a verb.
    fn verb(&mut self, verb: &str) -> u32 {
        if let Some(&i) = self.verb_ids.get(verb) {
            return i;
        }
        let i = self.verbs.len() as u32;
        self.verbs.push(verb.into());
        self.verb_ids.insert(verb.into(), i);
        i
    }

    /// Adds another rollup's deltas to these.
    fn merge(&mut self, other: Rollup) {
        for (key, h) in other.usage {
            let verb = self.verb(&other.verbs[key.verb as usize]);
            self.usage
                .entry(UsageKey { verb, ..key })
                .or_insert(Hits::none(h.first))
                .absorb(h.hits, h.first, h.last);
        }
        for (id, e) in other.endpoint {
            let mine = self.endpoint.entry(id).or_default();
            mine.apps += e.apps;
            mine.tests += e.tests;
            mine.hits += e.hits;
            mine.test_hits += e.test_hits;
            mine.conf_hits += e.conf_hits;
            mine.ok_hits += e.ok_hits;
            mine.ok_test_hits += e.ok_test_hits;
            mine.ok_conf_hits += e.ok_conf_hits;
        }
        for (k, r) in other.run {
            let mine = self.run.entry(k).or_default();
            mine.hits += r.hits;
            mine.test_hits += r.test_hits;
            mine.conf_hits += r.conf_hits;
        }
    }

    /// Adds a request stored for the first time, in `run`.
    fn add_new(&mut self, key: UsageKey, at: i64, conf: bool, run: i64) {
        if key.endpoint != 0 {
            let r = self.run.entry((run, key.endpoint.into())).or_default();
            r.hits += 1;
            r.test_hits += (key.test != 0) as i64;
            r.conf_hits += conf as i64;
        }
        self.add(key, 1, at, conf, true);
    }

    /// Adds `n` requests under `key`: a new request (`n` = 1), or one side of a request's move
    /// between status codes (`n` = -1 from the old, +1 to the new), which changes no count of
    /// requests, only the 2xx ones.
    fn add(&mut self, key: UsageKey, n: i64, at: i64, conf: bool, new: bool) {
        if key.endpoint != 0 {
            let ok = (200..300).contains(&key.code);
            let test = key.test != 0;
            let e = self.endpoint.entry(key.endpoint.into()).or_default();
            if new {
                e.hits += n;
                e.test_hits += (test as i64) * n;
                e.conf_hits += (conf as i64) * n;
            }
            e.ok_hits += (ok as i64) * n;
            e.ok_test_hits += ((ok && test) as i64) * n;
            e.ok_conf_hits += ((ok && conf) as i64) * n;
        }
        self.usage
            .entry(key)
            .or_insert(Hits::none(at))
            .absorb(n, at, at);
    }

    fn write(mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        // A new key is inserted; an old one makes the insert do nothing and is updated. Not an
        // upsert with `RETURNING hits` (which told new from old in one statement): SQLite
        // gathers `RETURNING` rows in a temporary table it opens at every execution, and that
        // cost more than the upsert itself.
        let mut insert = tx.prepare_cached(
            "INSERT INTO usage (endpoint_id, identity_id, test_id, purpose_id, verb, code, hits, \
             first_us, last_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
        )?;
        let mut update = tx.prepare_cached(
            "UPDATE usage SET hits = hits + ?7, first_us = min(first_us, ?8), \
             last_us = max(last_us, ?9) WHERE endpoint_id = ?1 AND identity_id = ?2 \
             AND test_id = ?3 AND purpose_id = ?4 AND verb = ?5 AND code = ?6",
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
            let p = params![
                k.endpoint,
                k.identity,
                k.test,
                k.purpose,
                self.verbs[k.verb as usize],
                k.code,
                h.hits,
                h.first,
                h.last
            ];
            // A negative count (requests moved to another code) is always for a stored key.
            if h.hits > 0 && insert.execute(p)? == 1 {
                if k.endpoint != 0 {
                    fresh.push(k);
                }
                continue;
            }
            update.execute(p)?;
            if h.hits < 0 {
                emptied.push(k);
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
                    k.endpoint,
                    k.identity,
                    k.test,
                    k.purpose,
                    self.verbs[k.verb as usize],
                    k.code
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
            // Many new keys share their (endpoint, app), (endpoint, test), (purpose, endpoint):
            // each pair is tried once, in primary-key order.
            let apps: BTreeSet<(i64, i64)> = fresh
                .iter()
                .filter(|k| k.identity != 0)
                .map(|k| (i64::from(k.endpoint), k.identity))
                .collect();
            let tests: BTreeSet<(i64, i64)> = fresh
                .iter()
                .filter(|k| k.test != 0)
                .map(|k| (i64::from(k.endpoint), k.test))
                .collect();
            let purposes: BTreeSet<(i64, i64)> = fresh
                .iter()
                .filter(|k| k.purpose != 0)
                .map(|k| (k.purpose, i64::from(k.endpoint)))
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
                purpose.execute(params![p, endpoint])?;
            }
        }
        let mut ep = tx.prepare_cached(
            "INSERT INTO endpoint_usage (endpoint_id, hits, test_hits, conf_hits, ok_hits, \
             ok_test_hits, ok_conf_hits, apps, tests) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, \
             apps = apps + excluded.apps, tests = tests + excluded.tests, \
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
                e.tests
            ])?;
        }
        let mut ru = tx.prepare_cached(
            "INSERT INTO run_usage (run_id, endpoint_id, hits, test_hits, conf_hits) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET hits = hits + excluded.hits, \
             test_hits = test_hits + excluded.test_hits, conf_hits = conf_hits + excluded.conf_hits",
        )?;
        for ((run, id), r) in &self.run {
            ru.execute(params![run, id, r.hits, r.test_hits, r.conf_hits])?;
        }
        Ok(())
    }
}
