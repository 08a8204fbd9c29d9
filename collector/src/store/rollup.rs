//! The query rollups (migrations 2, 3, 15 and 16), folded in from `requests`.
//!
//! [`Pending::add`] takes exactly what a batch changed ([`Applied`]), inside its transaction,
//! and sums it in memory by endpoint; a fold writes the sums of a range of endpoints, one
//! insert-or-update per distinct key in key order, and moves those endpoints' marks
//! (`rollup_marks`, migration 6, above the global `rollup_state.folded_through`, migration 5)
//! in the same transaction. With [`Fold::EveryBatch`] everything is folded in the batch's
//! transaction; with [`Fold::Deferred`] many batches share a fold, in chunks of endpoints.
//! Either way the rollups count exactly the requests up to their endpoint's mark, and a writer
//! that starts folds whatever lies above, so rollups and `requests` never disagree for long
//! and never for good. Add a rollup by adding it to [`Rollup`].

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::time::Instant;

use foldhash::HashMap;
use rusqlite::{OptionalExtension, Transaction, params};

use super::schedule::{Fold, State};
use super::{RequestRecord, RunId};

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
    /// `requests.impersonated_user_id`.
    pub impersonated_user_id: Option<i64>,
}

/// A stored request moved to a more complete stage by this batch.
#[derive(Debug, Clone, Copy)]
pub struct Advance<'a> {
    /// `requests.id`.
    pub id: i64,
    /// The event now stored.
    pub record: &'a RequestRecord,
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

/// A fold written in the open transaction, applied to [`Pending`] once it commits.
#[derive(Debug)]
enum InFlight {
    /// Everything up to this request: the global mark moves, the endpoint marks go.
    All(i64),
    /// These endpoints, up to this request.
    Endpoints(Vec<i32>, i64),
}

/// Rollup deltas of committed requests not yet folded into the rollup tables.
///
/// Invariant: a request of endpoint `e` (0: none) is counted in the rollups if and only if its
/// id is at most `mark(e)` = max(`rollup_state.folded_through`, `rollup_marks[e]`); while
/// `exact`, every request above its mark is counted in `rollup` instead. A crash loses the
/// memory, not the invariant: the next writer folds the requests above their marks from the
/// table.
#[derive(Debug, Default)]
pub(super) struct Pending {
    rollup: Rollup,
    /// The highest request id counted in `rollup`.
    last_id: i64,
    /// When the oldest delta not yet folded was added (a fold of everything that ran in chunks
    /// leaves those added while it ran).
    since: Option<Instant>,
    conformance: HashMap<i64, bool>,
    /// `rollup_state.folded_through`, as last read or written.
    folded_through: i64,
    /// `rollup_marks`: endpoints folded above the global mark.
    marks: HashMap<i32, i64>,
    /// `false` until read from the database and after a rollback: `rollup` is not to be
    /// trusted, and the next fold re-reads the requests above their marks instead.
    exact: bool,
    in_flight: Option<InFlight>,
    /// A fold of everything running in chunks: the endpoint the next chunk starts from, and
    /// when it began.
    sweep: Option<(i32, Instant)>,
}

impl Pending {
    /// Adds one batch's changes (inside its transaction). Moves of requests already folded
    /// are written at once, so the rollups stay exact for them whatever happens next.
    pub(super) fn add(
        &mut self,
        tx: &Transaction<'_>,
        applied: &Applied<'_>,
    ) -> rusqlite::Result<()> {
        if applied.new.is_empty() && applied.advanced.is_empty() {
            return Ok(());
        }
        for n in applied.new {
            if !self.exact {
                continue; // the next fold reads it from `requests`
            }
            let test = n.test_id.unwrap_or(0);
            let conf = conformance(&mut self.conformance, tx, test)?;
            let key = UsageKey {
                endpoint: n.endpoint_id.unwrap_or(0) as i32,
                identity: n.identity_id.unwrap_or(0),
                test,
                purpose: n.purpose_id.unwrap_or(0),
                verb: self.rollup.text(n.record.verb()),
                code: n.record.status_code.unwrap_or(0) as i32,
            };
            let r = n.record;
            let object = Object {
                api_group: r.api_group(),
                resource: r.resource(),
                subresource: r.subresource(),
                namespace: r.namespace(),
                uri: r.request_uri(),
                user: n.impersonated_user_id.or(n.user_id).unwrap_or(0),
            };
            self.rollup
                .add_new(key, &object, r.received_us, conf, applied.run.0);
            self.last_id = n.id;
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
                let endpoint = endpoint as i32;
                let pending = a.id > self.mark(tx, endpoint)?;
                if pending && !self.exact {
                    continue; // the next fold reads its current code
                }
                // A pending request's move is summed with it: folding its endpoint folds the
                // request as it is now.
                let into = if pending { &mut self.rollup } else { &mut now };
                let conf = conformance(&mut self.conformance, tx, test)?;
                let verb = into.text(&verb);
                let key = |code: i64| UsageKey {
                    endpoint,
                    identity,
                    test,
                    purpose,
                    verb,
                    code: code as i32,
                };
                into.add(key(before), -1, at, conf, false);
                into.add(key(after), 1, at, conf, false);
            }
            if now.keys > 0 {
                now.write(tx)?;
            }
        }
        Ok(())
    }

    /// A transaction with deltas committed at `now`: the oldest pending delta's age counts
    /// from the first such.
    pub(super) fn note(&mut self, now: Instant) {
        if self.rollup.keys > 0 {
            self.since.get_or_insert(now);
        }
    }

    /// Whether the deltas are at the bound `fold` sets on their memory (`max_keys`): no batch
    /// is to be summed with them before a fold brings them under it. A log whose every request
    /// brings new keys (a new user agent per request) would otherwise grow them by what a
    /// transaction of batches adds less what a chunk of fold takes, at every turn.
    pub(super) fn full(&self, fold: Fold) -> bool {
        match fold {
            Fold::Deferred { max_keys, .. } => self.rollup.len() >= max_keys,
            Fold::EveryBatch => false,
        }
    }

    /// What the fold schedule decides on ([`super::schedule::Schedule`]).
    pub(super) fn state(&self) -> State {
        State {
            keys: self.rollup.len(),
            since: self.since,
            exact: self.exact,
            sweeping: self.sweep.is_some(),
        }
    }

    /// The writer stored identity `id` of app `app` (its name, else its text) in the open
    /// transaction: a fold need not read it back (a rollback empties `Pending` with it).
    pub(super) fn identity_stored(&mut self, id: i64, app: &str) {
        self.rollup.app_of(id, app);
    }

    /// The mark of `endpoint`: read from the database until the first fold made it exact.
    fn mark(&self, tx: &Transaction<'_>, endpoint: i32) -> rusqlite::Result<i64> {
        if self.exact {
            return Ok(self
                .marks
                .get(&endpoint)
                .map_or(self.folded_through, |&m| m.max(self.folded_through)));
        }
        tx.prepare_cached(
            "SELECT max(s.folded_through, coalesce((SELECT m.folded_through FROM rollup_marks m \
             WHERE m.endpoint_id = ?1), 0)) FROM rollup_state s",
        )?
        .query_row(params![endpoint], |r| r.get(0))
    }

    /// A transaction committed: a fold in it is done.
    pub(super) fn committed(&mut self) {
        match self.in_flight.take() {
            Some(InFlight::All(through)) => {
                self.folded_through = through;
                // A fold from `requests` read up to `through`: a later fold of deltas alone
                // must not move the mark below it.
                self.last_id = self.last_id.max(through);
                self.marks.clear();
                self.exact = true;
            }
            Some(InFlight::Endpoints(endpoints, through)) => {
                for e in endpoints {
                    self.marks.insert(e, through);
                }
            }
            None => {}
        }
    }

    /// Folds everything pending into the rollup tables and moves the mark, inside `tx`. Call
    /// [`Pending::committed`] once `tx` commits; if it rolls back, start over from
    /// `Pending::default()` (inexact: the next fold re-reads `requests`).
    pub(super) fn fold(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.sweep = None;
        self.fold_range(tx, 0, usize::MAX).map(|_| ())
    }

    /// Counts the rollups of `endpoints` (0: no endpoint) again from `requests`, after
    /// everything pending is folded (a remap moved requests between them): their rows are
    /// deleted and each of their requests is counted anew; the global mark then covers every
    /// request and the endpoint marks go.
    pub(super) fn recount(
        &mut self,
        tx: &Transaction<'_>,
        endpoints: &[i64],
    ) -> rusqlite::Result<()> {
        self.fold(tx)?;
        // `object_access` and `app_requests` sum `object_uses` and `usage` over endpoints:
        // the rows about to go are taken out of them first.
        let list = endpoints
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        tx.execute_batch(&format!(
            "UPDATE object_access SET reads = object_access.reads - g.reads, \
             writes = object_access.writes - g.writes \
             FROM (SELECT u.api_group, u.resource, u.app, u.namespace, \
                   SUM(CASE WHEN u.verb IN ('get', 'list', 'watch') THEN u.hits ELSE 0 END) AS reads, \
                   SUM(CASE WHEN u.verb IN ('get', 'list', 'watch') THEN 0 ELSE u.hits END) AS writes \
                   FROM object_uses u WHERE u.endpoint_id IN ({list}) GROUP BY 1, 2, 3, 4) g \
             WHERE object_access.api_group = g.api_group AND object_access.resource = g.resource \
             AND object_access.app = g.app AND object_access.namespace = g.namespace; \
             DELETE FROM object_access WHERE reads = 0 AND writes = 0; \
             UPDATE app_requests SET hits = app_requests.hits - g.hits \
             FROM (SELECT COALESCE(i.name, i.text) AS app, SUM(u.hits) AS hits FROM usage u \
                   JOIN identities i ON i.id = u.identity_id \
                   WHERE u.endpoint_id IN ({list}) GROUP BY 1) g \
             WHERE app_requests.app = g.app; \
             DELETE FROM app_requests WHERE hits = 0; \
             DELETE FROM object_uses WHERE endpoint_id IN ({list});"
        ))?;
        for table in [
            "usage",
            "endpoint_usage",
            "run_usage",
            "endpoint_apps",
            "endpoint_tests",
            "endpoint_purposes",
            "endpoint_locs",
        ] {
            let mut delete = tx.prepare(&format!("DELETE FROM {table} WHERE endpoint_id = ?1"))?;
            for e in endpoints {
                delete.execute(params![e])?;
            }
        }
        let mut rollup = Rollup::default();
        let mut rows = tx.prepare(
            "SELECT run_id, COALESCE(endpoint_id, 0), COALESCE(identity_id, 0), \
             COALESCE(test_id, 0), COALESCE(purpose_id, 0), verb, COALESCE(status_code, 0), \
             received_us, api_group, resource, subresource, namespace, request_uri, \
             COALESCE(impersonated_user_id, user_id, 0) \
             FROM requests WHERE COALESCE(endpoint_id, 0) = ?1 ORDER BY id",
        )?;
        for &e in endpoints {
            let mut found = rows.query(params![e])?;
            while let Some(r) = found.next()? {
                let test: i64 = r.get(3)?;
                let conf = conformance(&mut self.conformance, tx, test)?;
                let verb = rollup.text(r.get_ref(5)?.as_str()?);
                let key = UsageKey {
                    endpoint: e as i32,
                    identity: r.get(2)?,
                    test,
                    purpose: r.get(4)?,
                    verb,
                    code: r.get(6)?,
                };
                let object = Object::of(r, 8)?;
                rollup.add_new(key, &object, r.get(7)?, conf, r.get(0)?);
            }
        }
        rollup.write(tx)?;
        // Nothing is pending now: every request is counted.
        let last: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM requests", [], |r| {
            r.get(0)
        })?;
        let through = last.max(self.last_id).max(self.folded_through);
        self.last_id = through;
        self.set_global(tx, through)
    }

    /// Begins a fold of everything in chunks (`fold_due_chunk` runs them) at `now`, if none is
    /// running.
    pub(super) fn start_sweep(&mut self, now: Instant) {
        self.sweep.get_or_insert((0, now));
    }

    /// One chunk of the fold of everything that is due: returns whether it is done.
    pub(super) fn fold_due_chunk(
        &mut self,
        tx: &Transaction<'_>,
        fold: Fold,
    ) -> rusqlite::Result<bool> {
        let chunk = fold.chunk_keys();
        let (from, began) = self
            .sweep
            .expect("a fold of everything begun (start_sweep)");
        match self.fold_range(tx, from, chunk)? {
            Some(next) => {
                self.sweep = Some((next, began));
                Ok(false)
            }
            None => {
                self.sweep = None;
                // Deltas added while the chunks ran are as old as the fold at most.
                self.since = (self.rollup.keys > 0).then_some(began);
                Ok(true)
            }
        }
    }

    /// Folds the deltas of the endpoints from `from` on, in endpoint order, until `chunk` keys
    /// are written (whole endpoints: at least one), and moves their marks. Returns the
    /// endpoint the next chunk starts from, or `None` when no endpoint from `from` on was
    /// pending. Folds everything, and moves the global mark, when nothing else is left (or
    /// when the deltas are not exact).
    fn fold_range(
        &mut self,
        tx: &Transaction<'_>,
        from: i32,
        chunk: usize,
    ) -> rusqlite::Result<Option<i32>> {
        if !self.exact {
            self.rollup = Rollup::default();
            self.since = None;
            self.sweep = None;
            let through = self.fold_from_requests(tx)?;
            self.set_global(tx, through)?;
            return Ok(None);
        }
        if self.rollup.keys == 0 {
            return Ok(None);
        }
        // Distinct keys per endpoint, in endpoint order, from `from` on.
        let per_endpoint: Vec<(i32, usize)> = self
            .rollup
            .usage
            .range(from..)
            .map(|(&e, keys)| (e, keys.len()))
            .collect();
        if per_endpoint.is_empty() {
            return Ok(None);
        }
        let mut taken = 0;
        let mut last = from;
        let mut endpoints = Vec::new();
        for &(e, n) in &per_endpoint {
            if taken > 0 && taken + n > chunk {
                break;
            }
            taken += n;
            last = e;
            endpoints.push(e);
        }
        let through = self.last_id;
        if taken == self.rollup.keys {
            // Everything pending: one write, and the global mark moves.
            std::mem::take(&mut self.rollup).write(tx)?;
            self.since = None;
            self.set_global(tx, through)?;
            return Ok(None);
        }
        let part = self.rollup.split_off(from..=last);
        part.write(tx)?;
        let mut mark = tx.prepare_cached(
            "INSERT INTO rollup_marks (endpoint_id, folded_through) VALUES (?1, ?2) \
             ON CONFLICT DO UPDATE SET folded_through = excluded.folded_through",
        )?;
        for &e in &endpoints {
            mark.execute(params![e, through])?;
        }
        self.in_flight = Some(InFlight::Endpoints(endpoints, through));
        Ok(Some(last.saturating_add(1)))
    }

    /// Moves the global mark to `through`; the endpoint marks are all below it now.
    fn set_global(&mut self, tx: &Transaction<'_>, through: i64) -> rusqlite::Result<()> {
        tx.prepare_cached("UPDATE rollup_state SET folded_through = ?1")?
            .execute(params![through])?;
        if !self.marks.is_empty() || !self.exact {
            tx.prepare_cached("DELETE FROM rollup_marks")?.execute([])?;
        }
        self.in_flight = Some(InFlight::All(through));
        Ok(())
    }

    /// Re-reads the requests above their marks (after a crash or a rollback) in id order,
    /// writing every `FOLD_KEYS` distinct keys; returns the highest id read.
    fn fold_from_requests(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<i64> {
        let mark: i64 = tx
            .prepare_cached("SELECT folded_through FROM rollup_state")?
            .query_row([], |r| r.get(0))?;
        let marks: HashMap<i64, i64> = tx
            .prepare_cached("SELECT endpoint_id, folded_through FROM rollup_marks")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut through = mark;
        let mut rollup = Rollup::default();
        let mut rows = tx.prepare_cached(
            "SELECT id, run_id, COALESCE(endpoint_id, 0), COALESCE(identity_id, 0), \
             COALESCE(test_id, 0), COALESCE(purpose_id, 0), verb, COALESCE(status_code, 0), \
             received_us, api_group, resource, subresource, namespace, request_uri, \
             COALESCE(impersonated_user_id, user_id, 0) FROM requests WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = rows.query(params![mark])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let endpoint: i64 = r.get(2)?;
            through = id;
            if marks.get(&endpoint).is_some_and(|&m| id <= m) {
                continue; // folded with its endpoint
            }
            let test: i64 = r.get(4)?;
            let conf = conformance(&mut self.conformance, tx, test)?;
            let verb = rollup.text(r.get_ref(6)?.as_str()?);
            let key = UsageKey {
                endpoint: endpoint as i32,
                identity: r.get(3)?,
                test,
                purpose: r.get(5)?,
                verb,
                code: r.get(7)?,
            };
            let object = Object::of(r, 9)?;
            rollup.add_new(key, &object, r.get(8)?, conf, r.get(1)?);
            if rollup.keys >= FOLD_KEYS {
                std::mem::take(&mut rollup).write(tx)?;
            }
        }
        rollup.write(tx)?;
        // Marks may reach above the last request (never, unless rows were deleted): keep the
        // global mark past them.
        Ok(marks.values().fold(through, |a, &m| a.max(m)))
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
    /// Index in [`Rollup::texts`].
    verb: u32,
    code: i32,
}

/// What a request did to which object, as the pending accesses and `object_uses` key it.
#[derive(Debug, Clone, Copy)]
struct Object<'a> {
    api_group: Option<&'a str>,
    /// `None`: a non-resource URL.
    resource: Option<&'a str>,
    subresource: Option<&'a str>,
    namespace: Option<&'a str>,
    uri: &'a str,
    /// The impersonated user, else the user (0: none).
    user: i64,
}

impl<'a> Object<'a> {
    /// From columns api_group, resource, subresource, namespace, request_uri and the user of a
    /// `requests` row, from `at` on.
    fn of(r: &'a rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Object<'a>> {
        let text = |i| r.get_ref(at + i).and_then(|v| Ok(v.as_str_or_null()?));
        Ok(Object {
            api_group: text(0)?,
            resource: text(1)?,
            subresource: text(2)?,
            namespace: text(3)?,
            uri: text(4)?.unwrap_or_default(),
            user: r.get(at + 5)?,
        })
    }
}

/// Verbs of the reads and writes of objects `deps` joins.
fn reads_or_writes(verb: &str) -> bool {
    reads(verb)
        || matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
}

/// Verbs of the reads of objects `deps` joins.
fn reads(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

/// Pending accesses [`super::rbac::add`] is handed at once (a few MB).
const GRANTS_AT_ONCE: usize = 1 << 16;

/// A pending access (object or URL, verb and user) of an identity, in its endpoint's map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AccessKey {
    identity: i64,
    url: bool,
    /// Indexes in [`Rollup::texts`].
    group: u32,
    resource: u32,
    namespace: u32,
    verb: u32,
    subresource: u32,
    user: i64,
}

/// An `object_uses` key as a fold writes it: a [`UseKey`] with its identity's app (an index
/// in [`Rollup::texts`]) in the identity's place, in the table's column order.
type AppUse = (u32, u32, u32, i32, i64, u32, u32);

/// A pending `object_uses` delta, by identity: a fold writes it under the identity's app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct UseKey {
    /// Indexes in [`Rollup::texts`], as `namespace` and `verb`.
    group: u32,
    resource: u32,
    identity: i64,
    endpoint: i32,
    purpose: i64,
    namespace: u32,
    verb: u32,
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

/// Deltas of one batch or of many.
#[derive(Debug, Default)]
struct Rollup {
    /// By endpoint, so a range of endpoints splits off whole.
    usage: BTreeMap<i32, HashMap<UsageKey, Hits>>,
    /// Distinct keys in `usage`.
    keys: usize,
    endpoint: HashMap<i64, EndpointHits>,
    /// By (run, endpoint).
    run: HashMap<(i64, i64), RunHits>,
    /// By endpoint, as `usage`: requests per access (object or URL, verb and user), which a
    /// fold adds to `access_grants` and `app_requests`.
    access: BTreeMap<i32, HashMap<AccessKey, i64>>,
    /// By endpoint: requests per `object_uses` key.
    uses: BTreeMap<i32, HashMap<UseKey, i64>>,
    /// Verbs and the other texts of the keys, by index, and back.
    texts: Vec<Box<str>>,
    text_ids: HashMap<Box<str>, u32>,
    /// The app (index in `texts`) of the identities stored since the last fold: a fold reads
    /// the app of an identity it does not know from `identities`.
    apps: HashMap<i64, u32>,
}

impl Rollup {
    /// Distinct keys of `usage`, the accesses and `object_uses`: what the deltas' memory grows
    /// by.
    fn len(&self) -> usize {
        fn keys<K, V>(m: &BTreeMap<i32, HashMap<K, V>>) -> usize {
            m.values().map(HashMap::len).sum()
        }
        self.keys + keys(&self.access) + keys(&self.uses)
    }

    /// The keys' index of a text.
    fn text(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.text_ids.get(text) {
            return i;
        }
        let i = self.texts.len() as u32;
        self.texts.push(text.into());
        self.text_ids.insert(text.into(), i);
        i
    }

    /// Takes out the deltas of the endpoints in `range`.
    fn split_off(&mut self, range: RangeInclusive<i32>) -> Rollup {
        let mut part = self.usage.split_off(range.start());
        let mut above = part.split_off(&range.end().saturating_add(1));
        self.usage.append(&mut above);
        let keys = part.values().map(HashMap::len).sum();
        self.keys -= keys;
        fn range_of<K>(
            map: &mut BTreeMap<i32, K>,
            range: &RangeInclusive<i32>,
        ) -> BTreeMap<i32, K> {
            let mut part = map.split_off(range.start());
            let mut above = part.split_off(&range.end().saturating_add(1));
            map.append(&mut above);
            part
        }
        let within = |e: i64| range.contains(&(e as i32));
        Rollup {
            usage: part,
            keys,
            endpoint: self.endpoint.extract_if(|&e, _| within(e)).collect(),
            run: self.run.extract_if(|&(_, e), _| within(e)).collect(),
            access: range_of(&mut self.access, &range),
            uses: range_of(&mut self.uses, &range),
            texts: self.texts.clone(),
            text_ids: self.text_ids.clone(),
            apps: self.apps.clone(),
        }
    }

    /// `identity`'s app is `app` (its name, else its text).
    fn app_of(&mut self, identity: i64, app: &str) {
        if !self.apps.contains_key(&identity) {
            let i = self.text(app);
            self.apps.insert(identity, i);
        }
    }

    /// Adds a request stored for the first time, in `run`, that did `object`.
    fn add_new(&mut self, key: UsageKey, object: &Object<'_>, at: i64, conf: bool, run: i64) {
        if key.endpoint != 0 {
            let r = self.run.entry((run, key.endpoint.into())).or_default();
            r.hits += 1;
            r.test_hits += (key.test != 0) as i64;
            r.conf_hits += conf as i64;
        }
        if key.identity != 0 {
            self.add_object(&key, object);
        }
        self.add(key, 1, at, conf, true);
    }

    /// Counts a request with an identity in the accesses and, for a read or write of an
    /// object, in `object_uses`.
    fn add_object(&mut self, key: &UsageKey, o: &Object<'_>) {
        let empty = self.text("");
        let access = match o.resource {
            None => AccessKey {
                identity: key.identity,
                url: true,
                group: empty,
                resource: self.text(o.uri.split('?').next().unwrap_or_default()),
                subresource: empty,
                namespace: empty,
                verb: key.verb,
                user: o.user,
            },
            Some(resource) => AccessKey {
                identity: key.identity,
                url: false,
                group: self.text(o.api_group.unwrap_or_default()),
                resource: self.text(resource),
                subresource: self.text(o.subresource.unwrap_or_default()),
                namespace: self.text(o.namespace.unwrap_or_default()),
                verb: key.verb,
                user: o.user,
            },
        };
        *self
            .access
            .entry(key.endpoint)
            .or_default()
            .entry(access)
            .or_default() += 1;
        if !access.url && reads_or_writes(&self.texts[key.verb as usize]) {
            let used = UseKey {
                endpoint: key.endpoint,
                identity: key.identity,
                purpose: key.purpose,
                group: access.group,
                resource: access.resource,
                namespace: access.namespace,
                verb: key.verb,
            };
            *self
                .uses
                .entry(key.endpoint)
                .or_default()
                .entry(used)
                .or_default() += 1;
        }
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
        let keys = self.usage.entry(key.endpoint).or_default();
        let before = keys.len();
        keys.entry(key).or_insert(Hits::none(at)).absorb(n, at, at);
        self.keys += keys.len() - before;
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
        let mut sorted: Vec<(&UsageKey, &Hits)> = self.usage.values().flatten().collect();
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
                self.texts[k.verb as usize],
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
                    self.texts[k.verb as usize],
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
            let mut reached = Vec::new();
            for (p, endpoint) in purposes {
                if purpose.execute(params![p, endpoint])? == 1 {
                    reached.push((endpoint, p));
                }
            }
            // A purpose new to an endpoint brings its lines of code. Endpoint by endpoint, so
            // each endpoint's slice of endpoint_locs is written while its pages are at hand.
            reached.sort_unstable();
            let mut locs = tx.prepare_cached(
                "INSERT OR IGNORE INTO endpoint_locs (endpoint_id, frame_id) \
                 SELECT ?1, frame_id FROM purpose_frames WHERE purpose_id = ?2",
            )?;
            for (endpoint, p) in reached {
                self.endpoint.entry(endpoint).or_default().locs +=
                    locs.execute(params![endpoint, p])? as i64;
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
        for ((run, id), r) in &self.run {
            ru.execute(params![run, id, r.hits, r.test_hits, r.conf_hits])?;
        }
        let t = |i: u32| &*self.texts[i as usize];
        // The app of each key's identity: `access_grants` and `object_access` are by app.
        let mut apps = Apps::new(tx, &self.apps, &self.texts)?;
        let mut grants: Vec<(u32, &AccessKey)> = Vec::new();
        let add_grants = |apps: &Apps<'_>, grants: &mut Vec<(u32, &AccessKey)>| {
            // Each once, sorted on the indexes (texts by first appearance: close enough to the
            // key order, and no text compared): the builds of an app share most of them.
            let key = |&(app, k): &(u32, &AccessKey)| {
                let texts = (k.group, k.resource, k.subresource, k.namespace, k.verb);
                (app, k.url, texts, k.user)
            };
            grants.sort_unstable_by_key(key);
            grants.dedup_by_key(|g| key(g));
            let g = grants.drain(..).map(|(app, k)| super::rbac::Grant {
                app: apps.name(app),
                url: k.url,
                group: t(k.group),
                resource: t(k.resource),
                subresource: t(k.subresource),
                namespace: t(k.namespace),
                verb: t(k.verb),
                user: k.user,
            });
            super::rbac::add(tx, g)
        };
        // Every access pending is offered to `access_grants`, which keeps each once: most are
        // in it already (counted before, at another endpoint or by another build of the app).
        for k in self.access.values().flat_map(HashMap::keys) {
            grants.push((apps.of(k.identity)?, k));
            if grants.len() == GRANTS_AT_ONCE {
                add_grants(&apps, &mut grants)?;
            }
        }
        add_grants(&apps, &mut grants)?;
        let mut uses = tx.prepare_cached(
            "INSERT INTO object_uses (api_group, resource, app, endpoint_id, purpose_id, \
             namespace, verb, hits) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT DO UPDATE SET hits = hits + excluded.hits",
        )?;
        // By app (the builds of an app share rows), then in the table's key order.
        let mut by_app: HashMap<AppUse, i64> = HashMap::default();
        // (group, resource, app, namespace) -> (reads, writes): `object_access`, by app.
        let mut objects: BTreeMap<(u32, u32, u32, u32), (i64, i64)> = BTreeMap::new();
        for (k, &hits) in self.uses.values().flatten() {
            let app = apps.of(k.identity)?;
            let key = (
                k.group,
                k.resource,
                app,
                k.endpoint,
                k.purpose,
                k.namespace,
                k.verb,
            );
            *by_app.entry(key).or_default() += hits;
            let o = objects
                .entry((k.group, k.resource, app, k.namespace))
                .or_default();
            if reads(t(k.verb)) {
                o.0 += hits;
            } else {
                o.1 += hits;
            }
        }
        let mut rows: Vec<_> = by_app
            .into_iter()
            .map(|((g, r, app, e, p, ns, v), hits)| {
                ((t(g), t(r), apps.name(app), e, p, t(ns), t(v)), hits)
            })
            .collect();
        rows.sort_unstable();
        for ((group, resource, app, endpoint, purpose, namespace, verb), hits) in rows {
            uses.execute(params![
                group, resource, app, endpoint, purpose, namespace, verb, hits
            ])?;
        }
        let mut object = tx.prepare_cached(
            "INSERT INTO object_access (api_group, resource, app, namespace, reads, writes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET \
             reads = reads + excluded.reads, writes = writes + excluded.writes",
        )?;
        for ((group, resource, app, namespace), (r, w)) in objects {
            object.execute(params![
                t(group),
                t(resource),
                apps.name(app),
                t(namespace),
                r,
                w
            ])?;
        }
        let mut requests: BTreeMap<u32, i64> = BTreeMap::new();
        for (k, hits) in self.access.values().flatten() {
            *requests.entry(apps.of(k.identity)?).or_default() += hits;
        }
        let mut app = tx.prepare_cached(
            "INSERT INTO app_requests (app, hits) VALUES (?1, ?2) \
             ON CONFLICT DO UPDATE SET hits = hits + excluded.hits",
        )?;
        for (a, hits) in requests {
            app.execute(params![apps.name(a), hits])?;
        }
        Ok(())
    }
}

/// The app of each identity a write meets (its name, else its text), as the writer stored it
/// ([`Pending::identity_stored`]) or else read once per write, numbered in order of appearance.
struct Apps<'t> {
    lookup: rusqlite::CachedStatement<'t>,
    known: &'t HashMap<i64, u32>,
    texts: &'t [Box<str>],
    of: HashMap<i64, u32>,
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl<'t> Apps<'t> {
    fn new(
        tx: &'t Transaction<'_>,
        known: &'t HashMap<i64, u32>,
        texts: &'t [Box<str>],
    ) -> rusqlite::Result<Apps<'t>> {
        Ok(Apps {
            lookup: tx
                .prepare_cached("SELECT COALESCE(name, text) FROM identities WHERE id = ?1")?,
            known,
            texts,
            of: HashMap::default(),
            names: Vec::new(),
            ids: HashMap::default(),
        })
    }

    fn of(&mut self, identity: i64) -> rusqlite::Result<u32> {
        if let Some(&a) = self.of.get(&identity) {
            return Ok(a);
        }
        let next = self.names.len() as u32;
        let a = match self.known.get(&identity) {
            Some(&t) => {
                let name = &*self.texts[t as usize];
                match self.ids.get(name) {
                    Some(&a) => a,
                    None => {
                        self.names.push(name.to_owned());
                        self.ids.insert(name.to_owned(), next);
                        next
                    }
                }
            }
            None => {
                let name: String = self.lookup.query_row(params![identity], |r| r.get(0))?;
                *self.ids.entry(name).or_insert_with_key(|n| {
                    self.names.push(n.clone());
                    next
                })
            }
        };
        self.of.insert(identity, a);
        Ok(a)
    }

    fn name(&self, app: u32) -> &str {
        &self.names[app as usize]
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
