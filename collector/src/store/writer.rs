//! The writer thread: owns the write connection, applies each command in a transaction (queued
//! batches share one; with durable commits each batch is in a savepoint of its own).
//!
//! Ids of identities, tests, users, frames, purposes and endpoints are cached in memory; a
//! failed transaction clears the caches (they may hold ids it rolled back).

use foldhash::HashMap;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use whakapapa_wire::{Frame, Identity, TestInfo};

use super::journeys::{self, Journeys};
use super::key::identity_key;
use super::rollup::{Advance, Applied, NewRequest, Pending};
use super::schedule::{Fold, Schedule, SystemClock};
use super::{
    AgentRecord, Batch, BatchOutcome, EndpointRecord, Error, PurposeUpsert, ReleaseId,
    ReleaseRecord, RemapFn, Remapped, RequestRecord, Result, RunId, StageRank, UserRecord,
    request_key,
};

/// Where a batch's outcome goes.
pub(super) type BatchReply = oneshot::Sender<Result<BatchOutcome>>;

/// A request to the writer, with where to send the answer.
#[derive(Debug)]
pub(super) enum Command {
    Apply {
        batch: Batch,
        reply: BatchReply,
    },
    Release {
        release: ReleaseRecord,
        reply: oneshot::Sender<Result<ReleaseId>>,
    },
    Purposes {
        purposes: Vec<PurposeUpsert>,
        reply: oneshot::Sender<Result<usize>>,
    },
    BeginRun {
        kind: String,
        source: String,
        release: Option<ReleaseId>,
        reply: oneshot::Sender<Result<RunId>>,
    },
    FinishRun {
        run: RunId,
        reply: oneshot::Sender<Result<()>>,
    },
    CiBuild {
        run: RunId,
        build: super::ci::CiBuild,
        objects: Vec<super::ci::CiObject>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Map a release's unmapped requests again.
    Remap {
        release: ReleaseId,
        map: RemapFn,
        reply: oneshot::Sender<Result<Remapped>>,
    },
    /// Fold pending rollup deltas now (queries after it see every committed batch).
    Fold {
        reply: oneshot::Sender<Result<()>>,
    },
    Ping {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Counts every request into the journeys rollup now.
    Journeys {
        reply: oneshot::Sender<Result<()>>,
    },
    /// Derives the stale apps' `apps --rbac` answers again now.
    Rbac {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// A transaction takes the batches queued behind its first until it holds this many requests,
/// when commits are durable (each one a webhook acknowledgement waits for)...
const GROUP_REQUESTS_DURABLE: usize = 30_000;
/// ... and otherwise (bulk ingest). Pages a transaction dirties are written to the WAL once
/// per commit: the random ones (lines of code, their indexes) once per 250k requests, not per
/// 30k.
const GROUP_REQUESTS: usize = 250_000;

#[derive(Debug, Clone, Copy)]
struct PurposeState {
    id: i64,
    complete: bool,
    frames: usize,
}

/// In-memory ids of normalized rows.
#[derive(Debug, Default)]
struct Caches {
    next_request_id: i64,
    identities: IdentityCache,
    tests: HashMap<String, i64>,
    users: HashMap<String, i64>,
    frames: HashMap<Frame, i64>,
    purposes: HashMap<u64, PurposeState>,
    endpoints: HashMap<i64, Vec<i64>>,
    /// Rollup deltas not yet folded in.
    pending: Pending,
    /// What journey folds keep between them.
    journeys: Journeys,
}

/// Entries an id cache may hold before it is emptied (memory stays bounded; a miss costs a
/// lookup in the database).
const CACHE_LIMIT: usize = 200_000;

/// Identities the writer's cache holds at most, and bytes of their texts: whichever comes
/// first empties it. Its memory is then at most ~8 MiB of text plus ~40 bytes an entry
/// (~12 MiB), with 4 MiB of [`IdentityKeys`] beside it, whatever the identities are like: a
/// text is a user agent's, up to 1 KiB (more only from a source that does not cut user agents
/// as kube-apiserver does, and then the byte bound comes first).
const IDENTITY_CACHE_ENTRIES: usize = 100_000;
const IDENTITY_CACHE_BYTES: usize = 8 << 20;

/// Ids of identities by the key of their text ([`identity_key`]), with the texts back to back
/// in one buffer to check a hit against: no allocation per identity, and a new identity (in a
/// log where every request has its own user agent, one per request) costs a copy of its
/// text. A colliding key's newer entry replaces the older.
#[derive(Debug, Default)]
struct IdentityCache {
    slots: HashMap<i64, u32>,
    /// Where each entry's text is in `texts`, and its id.
    entries: Vec<(usize, usize, i64)>,
    texts: String,
    /// Which keys may be stored: a text not in the cache whose key is not here is new.
    stored: IdentityKeys,
}

/// Bits of [`IdentityKeys`]: 4 MiB. Past some millions of identities most bits are set and
/// lookups of new ones query the table again, as without it.
const IDENTITY_KEY_BITS: u32 = 25;

/// A bit per identity key's low [`IDENTITY_KEY_BITS`] bits, set for every key the table may
/// hold (read from it once, then set as the writer stores keys): an identity whose bit is
/// clear is stored without first looking it up, which in a log that brings a new user agent
/// with every request is a descent of the key index per request saved.
#[derive(Debug, Default)]
struct IdentityKeys {
    /// Empty until read from the table.
    bits: Vec<u64>,
}

impl IdentityKeys {
    fn slot(key: i64) -> (usize, u64) {
        let bit = key as u64 & ((1 << IDENTITY_KEY_BITS) - 1);
        ((bit >> 6) as usize, 1 << (bit & 63))
    }

    /// Whether `key` may be stored (reading the table's keys the first time).
    fn may_hold(&mut self, tx: &Transaction<'_>, key: i64) -> Result<bool> {
        if self.bits.is_empty() {
            let mut bits = vec![0u64; 1 << (IDENTITY_KEY_BITS - 6)];
            tx.prepare("SELECT key FROM identities WHERE key IS NOT NULL")
                .and_then(|mut s| {
                    let mut rows = s.query([])?;
                    while let Some(row) = rows.next()? {
                        let (word, bit) = Self::slot(row.get(0)?);
                        bits[word] |= bit;
                    }
                    Ok(())
                })
                .map_err(sql("read the identity keys"))?;
            self.bits = bits;
        }
        let (word, bit) = Self::slot(key);
        Ok(self.bits[word] & bit != 0)
    }

    /// `key` is stored (call after [`IdentityKeys::may_hold`]).
    fn set(&mut self, key: i64) {
        let (word, bit) = Self::slot(key);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= bit;
        }
    }
}

impl IdentityCache {
    fn get(&self, key: i64, text: &str) -> Option<i64> {
        let &i = self.slots.get(&key)?;
        let &(start, end, id) = self.entries.get(i as usize)?;
        (self.texts.get(start..end) == Some(text)).then_some(id)
    }

    fn insert(&mut self, key: i64, text: &str, id: i64) {
        self.stored.set(key);
        if self.entries.len() >= IDENTITY_CACHE_ENTRIES
            || self.texts.len() + text.len() > IDENTITY_CACHE_BYTES
        {
            self.slots.clear();
            self.entries.clear();
            self.texts.clear();
        }
        if text.len() > IDENTITY_CACHE_BYTES {
            return;
        }
        let start = self.texts.len();
        self.texts.push_str(text);
        // Fewer than IDENTITY_CACHE_ENTRIES entries: the index fits.
        self.slots.insert(key, self.entries.len() as u32);
        self.entries.push((start, self.texts.len(), id));
    }
}

/// Frames are looked up only for a purpose seen for the first time (or a longer stack of one),
/// so a small cache serves the frames many purposes share; each entry holds two strings.
const FRAME_CACHE_LIMIT: usize = 32_768;

/// Empties `map` when it is full.
fn bound<K, V>(map: &mut HashMap<K, V>, limit: usize) {
    if map.len() >= limit {
        *map = HashMap::default();
    }
}

pub(super) struct Writer {
    conn: Connection,
    caches: Caches,
    group_requests: usize,
    /// Each batch in a savepoint of its own, so one that fails is rolled back alone (`serve`:
    /// batches of different API servers share a transaction). Otherwise a failed batch rolls
    /// back its whole transaction: bulk ingest stops at the first failure anyway, and a
    /// savepoint copies every page it first touches (profiled: ~8 % of the writer).
    isolate_batches: bool,
    /// When folds run, and the [`Command::Fold`] replies owed.
    schedule: Schedule,
}

fn sql(step: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::sqlite(step)
}

impl Writer {
    pub(super) fn new(conn: Connection, fold: Fold, durable: bool) -> Result<Writer> {
        let mut w = Writer {
            conn,
            caches: Caches::default(),
            isolate_batches: durable,
            group_requests: if durable {
                GROUP_REQUESTS_DURABLE
            } else {
                GROUP_REQUESTS
            },
            schedule: Schedule::new(fold, Box::new(SystemClock)),
        };
        w.reset()?;
        // Requests a killed writer stored without folding them in are counted now.
        w.in_transaction(finish_rollups)?;
        Ok(w)
    }

    /// Folds every pending rollup delta if [`Fold`] says it is time: a chunk per transaction,
    /// giving way to a command that comes meanwhile (handed back; the fold goes on after it).
    fn fold_if_due(&mut self, rx: &mut mpsc::Receiver<Command>) -> Option<Command> {
        while self.fold_due() {
            match self.fold_due_chunk() {
                Ok(true) if !self.fold_due() => return None,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot fold rollups; will retry after the next batch");
                    return None;
                }
            }
            // Over the bound on the deltas' memory, chunks go on until it is met again: a
            // command taken in now could be a batch that adds more keys than a chunk takes.
            if self.caches.pending.full(self.schedule.fold()) {
                continue;
            }
            if let Ok(command) = rx.try_recv() {
                return Some(command);
            }
        }
        None
    }

    /// One chunk of the fold of everything; `true` when that fold is done, and then the
    /// [`Command::Fold`]s waiting for it are answered (and a next one begins for those that
    /// came while it ran).
    fn fold_due(&self) -> bool {
        self.schedule.due(self.caches.pending.state())
    }

    fn fold_due_chunk(&mut self) -> Result<bool> {
        let fold = self.schedule.fold();
        let now = self.schedule.now();
        self.caches.pending.start_sweep(now);
        let asked = self.schedule.asked();
        let done = self.in_transaction(|tx, c| {
            let done = c
                .pending
                .fold_due_chunk(tx, fold)
                .map_err(sql("fold rollups"))?;
            // A fold somebody waits for (`Store::fold`: the next queries see everything) also
            // derives the stale apps. One that is only due leaves them to a query, as a
            // derivation costs the size of its app and a webhook batch would wait for it.
            if done && asked {
                super::rbac::refresh(tx).map_err(sql("derive the stale apps' RBAC"))?;
            }
            Ok(done)
        });
        match &done {
            Ok(false) => {}
            Ok(true) => {
                if self.schedule.swept() {
                    self.caches.pending.start_sweep(now);
                }
            }
            Err(_) => {}
        }
        done.map_err(|e| {
            let e = Arc::new(e);
            self.answer_folds(Err(e.clone()));
            Error::Again(e)
        })
    }

    /// Answers every [`Command::Fold`] still waiting (the fold failed, or the writer stops).
    fn answer_folds(&mut self, r: std::result::Result<(), Arc<Error>>) {
        self.schedule.answer_all(r);
    }

    /// Forgets cached ids, as after a rollback.
    fn reset(&mut self) -> Result<()> {
        refresh(&mut self.caches, &self.conn)
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut next = None;
        loop {
            let command = match next.take() {
                Some(c) => c,
                None => match rx.blocking_recv() {
                    Some(c) => c,
                    None => {
                        // Every handle is gone: fold what is pending before the connection closes.
                        let r = self.in_transaction(finish_rollups);
                        if let Err(e) = &r {
                            tracing::error!(error = %e, "cannot fold rollups at close");
                        }
                        self.answer_folds(r.map_err(Arc::new));
                        return;
                    }
                },
            };
            next = self.handle(command, &mut rx);
            if next.is_none() {
                next = self.fold_if_due(&mut rx);
            }
        }
    }

    /// Runs a command; a batch takes the batches queued behind it into its transaction (group
    /// commit) and hands back the first other command it met.
    fn handle(&mut self, command: Command, rx: &mut mpsc::Receiver<Command>) -> Option<Command> {
        match command {
            Command::Apply { batch, reply } => return self.apply_group(batch, reply, rx),
            Command::Release { release, reply } => {
                let r = self.in_transaction(|tx, c| {
                    let id = store_release(tx, release)?;
                    // A refresh may have added endpoints to the release.
                    c.endpoints.remove(&id.0);
                    Ok(id)
                });
                let _ = reply.send(r);
            }
            Command::Remap {
                release,
                map,
                reply,
            } => {
                let r = self.in_transaction(|tx, c| remap(tx, c, release, &map));
                let _ = reply.send(r);
            }
            Command::Purposes { purposes, reply } => {
                let r = self.in_transaction(|tx, c| {
                    let n = purposes.len();
                    for p in purposes {
                        upsert_purpose(tx, c, p)?;
                    }
                    Ok(n)
                });
                let _ = reply.send(r);
            }
            Command::BeginRun {
                kind,
                source,
                release,
                reply,
            } => {
                let r = self.in_transaction(|tx, _| {
                    tx.execute(
                        "INSERT INTO ingest_runs (kind, source, release_id, started_at) \
                             VALUES (?1, ?2, ?3, ?4)",
                        params![kind, source, release.map(|r| r.0), now()],
                    )
                    .map_err(sql("start a run"))?;
                    Ok(RunId(tx.last_insert_rowid()))
                });
                let _ = reply.send(r);
            }
            Command::CiBuild {
                run,
                build,
                objects,
                reply,
            } => {
                let r = self.in_transaction(|tx, _| super::ci::record(tx, run, &build, &objects));
                let _ = reply.send(r);
            }
            Command::FinishRun { run, reply } => {
                let r = self.in_transaction(|tx, c| {
                    // A finished run is fully counted in the rollups.
                    finish_rollups(tx, c)?;
                    tx.execute(
                        "UPDATE ingest_runs SET finished_at = ?2 WHERE id = ?1",
                        params![run.0, now()],
                    )
                    .map_err(sql("finish a run"))?;
                    Ok(())
                });
                // A bulk run's WAL (hundreds of MB: its checkpoints trail the writer) goes into
                // the database now. Left behind, every connection opened after the process
                // exits reads all of it again to index it (0.1-0.3 s a query after 1M events);
                // serving, commits are durable and checkpoints keep up.
                if r.is_ok()
                    && !self.isolate_batches
                    && let Err(e) = truncate_wal(&self.conn)
                {
                    tracing::warn!(error = %e, "cannot checkpoint the run's WAL");
                }
                let _ = reply.send(r);
            }
            Command::Fold { reply } => {
                if self.schedule.ask(self.caches.pending.state(), reply) {
                    self.caches.pending.start_sweep(self.schedule.now());
                }
            }
            Command::Journeys { reply } => {
                let r =
                    self.in_transaction(|tx, c| c.journeys.fold(tx).map_err(sql("fold journeys")));
                let _ = reply.send(r);
            }
            Command::Rbac { reply } => {
                let r = self.in_transaction(|tx, _| {
                    super::rbac::refresh(tx).map_err(sql("derive the stale apps' RBAC"))
                });
                let _ = reply.send(r);
            }
            Command::Ping { reply } => {
                let r = self
                    .conn
                    .query_row("SELECT 1", [], |_| Ok(()))
                    .map_err(sql("ping the database"));
                let _ = reply.send(r);
            }
        }
        None
    }

    /// Stores `first` and the batches queued behind it (up to `group_requests` requests) in one
    /// transaction. With `isolate_batches` each is in a savepoint of its own: a batch that fails
    /// is rolled back alone and answered with its error, the others once the transaction
    /// commits. Without, a failure rolls the whole transaction back and answers every batch in
    /// it with an error. Hands back the first other command it met.
    fn apply_group(
        &mut self,
        first: Batch,
        reply: BatchReply,
        rx: &mut mpsc::Receiver<Command>,
    ) -> Option<Command> {
        let fold = self.schedule.fold();
        let limit = self.group_requests;
        let isolate = self.isolate_batches;
        let mut answers: Vec<(BatchReply, Result<BatchOutcome>)> = Vec::new();
        let mut other = None;
        let committed = self.in_transaction(|tx, caches| {
            let mut next = Some((first, reply));
            let mut size = 0;
            while let Some((batch, reply)) = next.take() {
                size += batch.requests.len();
                if isolate {
                    tx.execute_batch("SAVEPOINT batch")
                        .map_err(sql("begin a batch's savepoint"))?;
                }
                let outcome = apply_batch(tx, caches, &batch).and_then(|outcome| {
                    if fold == Fold::EveryBatch {
                        finish_rollups(tx, caches)?;
                    }
                    Ok(outcome)
                });
                // A batch that fails a shared transaction is told its failure, and so is
                // every other batch in it.
                let failed = outcome.is_err();
                let (outcome, fails_all) = match outcome {
                    Err(e) if !isolate => {
                        let e = Arc::new(e);
                        (Err(Error::Again(e.clone())), Some(e))
                    }
                    outcome => (outcome, None),
                };
                if isolate {
                    if !failed {
                        tx.execute_batch("RELEASE batch")
                            .map_err(sql("release a batch's savepoint"))?;
                    } else {
                        tx.execute_batch("ROLLBACK TO batch; RELEASE batch")
                            .map_err(sql("roll a batch back"))?;
                        // Ids cached and deltas summed for the batch are gone with it.
                        refresh(caches, tx)?;
                    }
                }
                answers.push((reply, outcome));
                if let Some(why) = fails_all {
                    // The whole transaction rolls back: the others in it are told why.
                    return Err(Error::Again(why));
                }
                // Rollup deltas at their bound: without savepoints (bulk ingest) they are
                // folded here and the transaction goes on, as large as before (a commit writes
                // the pages it dirtied, the random ones of indexes too); with them, or while
                // a fold of everything runs in chunks, the transaction stops taking batches
                // and the fold comes after it.
                if caches.pending.full(fold) && !isolate && !caches.pending.state().sweeping {
                    fold_rollups(tx, caches)?;
                }
                if size < limit && !caches.pending.full(fold) {
                    match rx.try_recv() {
                        Ok(Command::Apply { batch, reply }) => next = Some((batch, reply)),
                        Ok(command) => other = Some(command),
                        Err(_) => {}
                    }
                }
            }
            Ok(())
        });
        // Answers only now: a batch is stored once its transaction commits.
        let shared = committed.err().map(|e| match e {
            Error::Again(e) => e,
            e => Arc::new(e),
        });
        for (reply, outcome) in answers {
            let _ = reply.send(match &shared {
                None => outcome,
                Some(why) => outcome.and(Err(Error::Shared(why.clone()))),
            });
        }
        other
    }

    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>, &mut Caches) -> Result<T>,
    ) -> Result<T> {
        let Writer {
            conn,
            caches,
            schedule,
            ..
        } = self;
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql("begin a transaction"))?;
            let value = f(&tx, caches)?;
            tx.commit().map_err(sql("commit"))?;
            caches.pending.committed();
            caches.pending.note(schedule.now());
            Ok(value)
        })();
        if result.is_err() {
            // The transaction rolled back: ids cached during it may not exist.
            if let Err(e) = self.reset() {
                tracing::error!(error = %e, "cannot reset the writer after a rollback");
            }
        }
        result
    }
}

/// Copies the whole WAL into the database and truncates it. The checkpoint thread may be in a
/// checkpoint of its own, and SQLite then answers busy at once rather than waiting: this waits
/// for it (ten seconds at most).
fn truncate_wal(conn: &Connection) -> rusqlite::Result<()> {
    for _ in 0..1000 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the WAL stayed busy".into()),
    ))
}

/// Empties the caches (after a rollback they may hold ids it took back) and reads the next
/// request id from `conn`. The identity keys stored ([`IdentityKeys`]) are kept: a key set by
/// a rolled-back insert only costs its next lookup a query.
fn refresh(caches: &mut Caches, conn: &Connection) -> Result<()> {
    let stored = std::mem::take(&mut caches.identities.stored);
    *caches = Caches {
        next_request_id: conn
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM requests", [], |r| {
                r.get(0)
            })
            .map_err(sql("read the last request id"))?,
        ..Caches::default()
    };
    caches.identities.stored = stored;
    Ok(())
}

/// Folds the pending deltas in, as a batch's transaction does when they reach their bound: the
/// apps whose accesses grew stay stale for now (a query derives them itself), since deriving
/// them costs the size of each app, not of the batch.
fn fold_rollups(tx: &Transaction<'_>, caches: &mut Caches) -> Result<()> {
    caches.pending.fold(tx).map_err(sql("fold rollups"))
}

/// Folds the pending deltas in and derives the stale apps' `apps --rbac` answers again: at the
/// end of a run, when the writer opens and when it stops, and with every batch under
/// [`Fold::EveryBatch`].
fn finish_rollups(tx: &Transaction<'_>, caches: &mut Caches) -> Result<()> {
    fold_rollups(tx, caches)?;
    super::rbac::refresh(tx).map_err(sql("derive the stale apps' RBAC"))
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// What the database holds for a request key.
struct Stored {
    id: i64,
    stage: StageRank,
    status: Option<i64>,
}

/// Finds the request of `(audit_id, received_us)` or reserves `new_id` for it.
/// The statements [`resolve_key`] runs, prepared once per batch.
struct KeyStatements<'t> {
    insert: rusqlite::CachedStatement<'t>,
    lookup: rusqlite::CachedStatement<'t>,
}

impl<'t> KeyStatements<'t> {
    fn new(tx: &'t Transaction<'_>) -> Result<KeyStatements<'t>> {
        Ok(KeyStatements {
            insert: tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO request_keys (key, request_id) VALUES (?1, ?2)",
                )
                .map_err(sql("prepare the key insert"))?,
            lookup: tx
                .prepare_cached(
                    "SELECT r.id, r.audit_id, r.received_us, r.stage, r.status_code \
                     FROM request_keys k JOIN requests r ON r.id = k.request_id WHERE k.key = ?1",
                )
                .map_err(sql("prepare the key lookup"))?,
        })
    }
}

fn resolve_key(
    statements: &mut KeyStatements<'_>,
    record: &RequestRecord,
    new_id: i64,
) -> Result<Option<Stored>> {
    let mut key = request_key(record.audit_id(), record.received_us);
    loop {
        let insert = &mut statements.insert;
        let inserted = (|| {
            insert.raw_bind_parameter(1, key)?;
            insert.raw_bind_parameter(2, new_id)?;
            insert.raw_execute()
        })()
        .map_err(sql("insert a request key"))?;
        if inserted == 1 {
            return Ok(None);
        }
        let found = statements
            .lookup
            .query_row(params![key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })
            .optional()
            .map_err(sql("look up a request key"))?;
        match found {
            Some((id, audit_id, received_us, stage, status))
                if audit_id == record.audit_id() && received_us == record.received_us =>
            {
                return Ok(Some(Stored {
                    id,
                    stage: StageRank::from_i64(stage).unwrap_or(StageRank::RequestReceived),
                    status,
                }));
            }
            // Another request with the same key: probe the next one.
            _ => key = key.wrapping_add(1) & i64::MAX,
        }
    }
}

/// Keeps that a request called a deprecated API (once: a redelivered event changes nothing).
fn mark_deprecated(tx: &Transaction<'_>, request: i64, removed: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO request_deprecations (request_id, removed_release) \
         VALUES (?1, NULLIF(?2, ''))",
    )
    .and_then(|mut s| s.execute(params![request, removed]))
    .map_err(sql("mark a request deprecated"))?;
    Ok(())
}

/// Counts one event of a request against the request's most complete stage so far.
fn count_event(current: &mut Option<StageRank>, s: StageRank, out: &mut BatchOutcome) {
    match *current {
        None => out.new += 1,
        Some(c) if s > c => out.advanced += 1,
        Some(c) if s == c => out.duplicates += 1,
        Some(_) => out.earlier_stage += 1,
    }
    *current = Some(current.map_or(s, |c| c.max(s)));
}

/// The counting of one request's events, in arrival order, given what was stored.
#[cfg(test)]
fn count_events(stored: Option<StageRank>, stages: &[StageRank], out: &mut BatchOutcome) {
    let mut current = stored;
    for &s in stages {
        count_event(&mut current, s, out);
    }
}

fn apply_batch(tx: &Transaction<'_>, caches: &mut Caches, batch: &Batch) -> Result<BatchOutcome> {
    let mut out = BatchOutcome {
        events: batch.events,
        malformed: batch.malformed.len() as u64,
        ..BatchOutcome::default()
    };
    // Merge the stages of one request in memory: the most complete wins, first on a tie.
    let mut groups: HashMap<(&str, i64), usize> =
        HashMap::with_capacity_and_hasher(batch.requests.len(), Default::default());
    let mut best: Vec<usize> = Vec::with_capacity(batch.requests.len());
    let mut group_of: Vec<usize> = Vec::with_capacity(batch.requests.len());
    for (i, r) in batch.requests.iter().enumerate() {
        match groups.get(&(r.audit_id(), r.received_us)) {
            Some(&g) => {
                if r.stage > batch.requests[best[g]].stage {
                    best[g] = i;
                }
                group_of.push(g);
            }
            None => {
                groups.insert((r.audit_id(), r.received_us), best.len());
                group_of.push(best.len());
                best.push(i);
            }
        }
    }
    drop(groups);
    // Each request's stage as stored before this batch (None: new), for counting events.
    let mut current: Vec<Option<StageRank>> = Vec::with_capacity(best.len());

    let endpoint_ids = match batch.release {
        Some(release) => Some(endpoint_ids(tx, caches, release)?.clone()),
        None => None,
    };
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO requests (run_id, audit_id, received_us, stage, stage_us, latency_us, \
             verb, request_uri, release_id, endpoint_id, mapping, namespace, resource, subresource, \
             name, api_group, api_version, user_id, impersonated_user_id, source_ips, status_code, \
             identity_id, purpose_id, test_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
        )
        .map_err(sql("prepare the request insert"))?;
    let mut update = tx
        .prepare_cached(
            "UPDATE requests SET stage = ?2, stage_us = ?3, latency_us = ?4, \
             status_code = coalesce(?5, status_code) WHERE id = ?1",
        )
        .map_err(sql("prepare the request update"))?;

    let mut keys = KeyStatements::new(tx)?;
    let mut new = Vec::with_capacity(best.len());
    let mut advanced = Vec::new();
    for &i in &best {
        let record = &batch.requests[i];
        let new_id = caches.next_request_id;
        let stored = resolve_key(&mut keys, record, new_id)?;
        current.push(stored.as_ref().map(|s| s.stage));
        let latency = match record.stage {
            StageRank::RequestReceived => None,
            _ => record.stage_us.map(|s| s - record.received_us),
        };
        match stored {
            None => {
                caches.next_request_id += 1;
                let endpoint_id = match (&endpoint_ids, record.endpoint_idx) {
                    (Some(ids), Some(idx)) => ids.get(idx as usize).copied(),
                    _ => None,
                };
                if endpoint_id.is_none() {
                    *out.unmapped.entry(record.mapping().to_owned()).or_default() += 1;
                }
                let agent = record.agent.as_deref();
                let identity_id = agent
                    .map(|a| identity_id(tx, caches, &a.identity))
                    .transpose()?;
                let test_id = agent
                    .and_then(|a| a.test.as_ref())
                    .map(|t| test_id(tx, caches, t))
                    .transpose()?;
                let purpose_id = record
                    .fingerprint
                    .map(|fp| purpose_from_agent(tx, caches, fp, agent, identity_id, test_id))
                    .transpose()?;
                let user = record
                    .user
                    .as_ref()
                    .map(|u| user_id(tx, caches, u))
                    .transpose()?;
                let impersonated_id = record
                    .impersonated_user
                    .as_ref()
                    .map(|u| user_id(tx, caches, u))
                    .transpose()?;
                // Bound one by one: no slice of trait objects per row on the hottest path.
                (|| {
                    // No id: SQLite takes the next rowid at the table's right edge, where an
                    // explicit one costs a binary search per level. It is `new_id`, checked
                    // below.
                    insert.raw_bind_parameter(1, batch.run.0)?;
                    insert.raw_bind_parameter(2, record.audit_id())?;
                    insert.raw_bind_parameter(3, record.received_us)?;
                    insert.raw_bind_parameter(4, record.stage.as_i64())?;
                    insert.raw_bind_parameter(5, record.stage_us)?;
                    insert.raw_bind_parameter(6, latency)?;
                    insert.raw_bind_parameter(7, record.verb())?;
                    insert.raw_bind_parameter(8, record.request_uri())?;
                    insert.raw_bind_parameter(9, batch.release.map(|r| r.0))?;
                    insert.raw_bind_parameter(10, endpoint_id)?;
                    insert.raw_bind_parameter(11, record.mapping())?;
                    insert.raw_bind_parameter(12, record.namespace())?;
                    insert.raw_bind_parameter(13, record.resource())?;
                    insert.raw_bind_parameter(14, record.subresource())?;
                    insert.raw_bind_parameter(15, record.name())?;
                    insert.raw_bind_parameter(16, record.api_group())?;
                    insert.raw_bind_parameter(17, record.api_version())?;
                    insert.raw_bind_parameter(18, user)?;
                    insert.raw_bind_parameter(19, impersonated_id)?;
                    insert.raw_bind_parameter(20, record.source_ips())?;
                    insert.raw_bind_parameter(21, record.status_code)?;
                    insert.raw_bind_parameter(22, identity_id)?;
                    insert.raw_bind_parameter(23, purpose_id)?;
                    insert.raw_bind_parameter(24, test_id)?;
                    insert.raw_execute()
                })()
                .map_err(sql("insert a request"))?;
                if tx.last_insert_rowid() != new_id {
                    // Only one writer, and ids in step with `max(id) + 1` since its caches were
                    // filled: a different rowid would break the request keys already written.
                    return Err(Error::OutOfStep {
                        stored: tx.last_insert_rowid(),
                        expected: new_id,
                    });
                }
                if let Some(removed) = record.deprecation() {
                    mark_deprecated(tx, new_id, removed)?;
                }
                new.push(NewRequest {
                    id: new_id,
                    record,
                    endpoint_id,
                    identity_id,
                    purpose_id,
                    test_id,
                    user_id: user,
                    impersonated_user_id: impersonated_id,
                });
            }
            Some(s) if record.stage > s.stage => {
                update
                    .execute(params![
                        s.id,
                        record.stage.as_i64(),
                        record.stage_us,
                        latency,
                        record.status_code
                    ])
                    .map_err(sql("update a request's stage"))?;
                // kube-apiserver annotates the stages after RequestReceived only.
                if let Some(removed) = record.deprecation() {
                    mark_deprecated(tx, s.id, removed)?;
                }
                advanced.push(Advance {
                    id: s.id,
                    record,
                    before_status: s.status,
                });
            }
            Some(_) => {}
        }
    }

    for (r, &g) in batch.requests.iter().zip(&group_of) {
        count_event(&mut current[g], r.stage, &mut out);
    }

    if !batch.malformed.is_empty() {
        let mut m = tx
            .prepare_cached(
                "INSERT INTO malformed (run_id, source, line, reason) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql("prepare the malformed insert"))?;
        for bad in &batch.malformed {
            m.execute(params![
                batch.run.0,
                bad.source,
                bad.line.map(|l| l as i64),
                bad.reason
            ])
            .map_err(sql("record a malformed line"))?;
        }
    }
    tx.prepare_cached(
        "UPDATE ingest_runs SET events = events + ?2, requests = requests + ?3, \
         upgrades = upgrades + ?4, duplicates = duplicates + ?5, malformed = malformed + ?6 \
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            batch.run.0,
            out.events as i64,
            out.new as i64,
            out.advanced as i64,
            out.duplicates as i64,
            out.malformed as i64
        ])
    })
    .map_err(sql("count the batch in its run"))?;
    caches
        .pending
        .add(
            tx,
            &Applied {
                run: batch.run,
                new: &new,
                advanced: &advanced,
            },
        )
        .map_err(sql("update rollups"))?;
    Ok(out)
}

fn endpoint_ids<'c>(
    tx: &Transaction<'_>,
    caches: &'c mut Caches,
    release: ReleaseId,
) -> Result<&'c Vec<i64>> {
    if let std::collections::hash_map::Entry::Vacant(slot) = caches.endpoints.entry(release.0) {
        let mut s = tx
            .prepare_cached("SELECT id FROM endpoints WHERE release_id = ?1 ORDER BY idx")
            .map_err(sql("prepare the endpoint ids query"))?;
        let ids = s
            .query_map(params![release.0], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
            .map_err(sql("read endpoint ids"))?;
        slot.insert(ids);
    }
    Ok(&caches.endpoints[&release.0])
}

/// The id of an identity, stored the first time it is seen: found by the key of its text
/// (the rows of a key are few, and their texts tell them apart).
fn identity_id(tx: &Transaction<'_>, caches: &mut Caches, i: &Identity) -> Result<i64> {
    let key = identity_key(&i.text);
    if let Some(id) = caches.identities.get(key, &i.text) {
        return Ok(id);
    }
    if !caches.identities.stored.may_hold(tx, key)? {
        return insert_identity(tx, caches, key, i);
    }
    let found = tx
        .prepare_cached("SELECT id, text FROM identities WHERE key = ?1")
        .and_then(|mut s| {
            let mut rows = s.query(params![key])?;
            while let Some(row) = rows.next()? {
                if row.get_ref(1)?.as_str()? == i.text {
                    return Ok(Some(row.get::<_, i64>(0)?));
                }
            }
            Ok(None)
        })
        .map_err(sql("look up an identity"))?;
    match found {
        Some(id) => {
            caches.identities.insert(key, &i.text, id);
            Ok(id)
        }
        None => insert_identity(tx, caches, key, i),
    }
}

fn insert_identity(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    key: i64,
    i: &Identity,
) -> Result<i64> {
    tx.prepare_cached(
        "INSERT INTO identities (key, text, name, version, os, arch, source, source_commit, \
         built_by, built_at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key, i.text, i.name, i.version, i.os, i.arch, i.source, i.commit, i.built_by,
            i.built_at, i.detail
        ])
    })
    .map_err(sql("insert an identity"))?;
    let id = tx.last_insert_rowid();
    caches.identities.insert(key, &i.text, id);
    caches
        .pending
        .identity_stored(id, i.name.as_deref().unwrap_or(&i.text));
    Ok(id)
}

fn test_id(tx: &Transaction<'_>, caches: &mut Caches, t: &TestInfo) -> Result<i64> {
    if let Some(&id) = caches.tests.get(&t.name) {
        return Ok(id);
    }
    let found = tx
        .prepare_cached("SELECT id FROM tests WHERE name = ?1")
        .and_then(|mut s| s.query_row(params![t.name], |r| r.get(0)).optional())
        .map_err(sql("look up a test"))?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached(
                "INSERT INTO tests (name, sig, conformance, tags) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                // The tags are strings: serialising them cannot fail.
                let tags = serde_json::to_string(&t.tags).unwrap_or_else(|_| "[]".into());
                s.execute(params![t.name, t.sig, t.conformance, tags])
            })
            .map_err(sql("insert a test"))?;
            tx.last_insert_rowid()
        }
    };
    bound(&mut caches.tests, CACHE_LIMIT);
    caches.tests.insert(t.name.clone(), id);
    Ok(id)
}

fn user_id(tx: &Transaction<'_>, caches: &mut Caches, u: &UserRecord) -> Result<i64> {
    let mut key = String::with_capacity(u.name.len() + u.groups_json.len() + 1);
    key.push_str(&u.name);
    key.push('\n');
    key.push_str(&u.groups_json);
    if let Some(&id) = caches.users.get(&key) {
        return Ok(id);
    }
    let found = tx
        .prepare_cached("SELECT id FROM users WHERE name = ?1 AND groups = ?2")
        .and_then(|mut s| {
            s.query_row(params![u.name, u.groups_json], |r| r.get(0))
                .optional()
        })
        .map_err(sql("look up a user"))?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO users (name, groups) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![u.name, u.groups_json]))
                .map_err(sql("insert a user"))?;
            tx.last_insert_rowid()
        }
    };
    bound(&mut caches.users, CACHE_LIMIT);
    caches.users.insert(key, id);
    Ok(id)
}

fn frame_id(tx: &Transaction<'_>, caches: &mut Caches, f: &Frame) -> Result<i64> {
    if let Some(&id) = caches.frames.get(f) {
        return Ok(id);
    }
    // Insert first: a frame missing from the cache is new far more often than not. No
    // `RETURNING`: SQLite gathers its rows in a temporary table, which cost more than the insert.
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO frames (function, file, line) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![f.function, f.file, f.line]))
        .map_err(sql("insert a frame"))?;
    let id = if inserted == 1 {
        tx.last_insert_rowid()
    } else {
        tx.prepare_cached("SELECT id FROM frames WHERE function = ?1 AND file = ?2 AND line = ?3")
            .and_then(|mut s| s.query_row(params![f.function, f.file, f.line], |r| r.get(0)))
            .map_err(sql("look up a frame"))?
    };
    bound(&mut caches.frames, FRAME_CACHE_LIMIT);
    caches.frames.insert(f.clone(), id);
    Ok(id)
}

fn fingerprint_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

fn cached_purpose(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    fp: u64,
) -> Result<Option<PurposeState>> {
    if let Some(&s) = caches.purposes.get(&fp) {
        return Ok(Some(s));
    }
    let found = tx
        .prepare_cached(
            "SELECT p.id, p.complete, (SELECT count(*) FROM purpose_frames f \
             WHERE f.purpose_id = p.id) FROM purposes p WHERE p.fingerprint = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![fingerprint_hex(fp)], |r| {
                Ok(PurposeState {
                    id: r.get(0)?,
                    complete: r.get(1)?,
                    frames: r.get::<_, i64>(2)? as usize,
                })
            })
            .optional()
        })
        .map_err(sql("look up a purpose"))?;
    if let Some(s) = found {
        bound(&mut caches.purposes, CACHE_LIMIT);
        caches.purposes.insert(fp, s);
    }
    Ok(found)
}

fn replace_frames(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    purpose_id: i64,
    frames: &[Frame],
    fresh: bool,
) -> Result<()> {
    if !fresh {
        tx.prepare_cached("DELETE FROM purpose_frames WHERE purpose_id = ?1")
            .and_then(|mut s| s.execute(params![purpose_id]))
            .map_err(sql("clear a purpose's frames"))?;
    }
    for (depth, f) in frames.iter().enumerate() {
        let frame = frame_id(tx, caches, f)?;
        tx.prepare_cached(
            "INSERT INTO purpose_frames (purpose_id, depth, frame_id) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| s.execute(params![purpose_id, depth as i64, frame]))
        .map_err(sql("insert a purpose frame"))?;
    }
    if fresh {
        // A purpose just created has reached no endpoint yet: no rollup to update.
        return Ok(());
    }
    super::rollup::frames_replaced(tx, purpose_id)
        .map_err(sql("update rollups for a purpose's frames"))?;
    let functions: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
    caches
        .journeys
        .frames_replaced(tx, purpose_id, &functions)
        .map_err(sql("check the journeys of a purpose's frames"))
}

/// The purpose of a fingerprint seen in a request: frames from the user agent until the side
/// channel brings all of them.
fn purpose_from_agent(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    fp: u64,
    agent: Option<&AgentRecord>,
    identity_id: Option<i64>,
    test_id: Option<i64>,
) -> Result<i64> {
    let frames = agent.map_or(&[][..], |a| &a.frames[..]);
    if let Some(state) = cached_purpose(tx, caches, fp)? {
        if !state.complete && frames.len() > state.frames {
            // A less cut user agent of the same purpose: keep the longer stack.
            replace_frames(tx, caches, state.id, frames, false)?;
            caches.purposes.insert(
                fp,
                PurposeState {
                    frames: frames.len(),
                    ..state
                },
            );
        }
        return Ok(state.id);
    }
    tx.prepare_cached(
        "INSERT INTO purposes (fingerprint, identity_id, test_id, complete) VALUES (?1, ?2, ?3, 0)",
    )
    .and_then(|mut s| s.execute(params![fingerprint_hex(fp), identity_id, test_id]))
    .map_err(sql("insert a purpose"))?;
    let id = tx.last_insert_rowid();
    replace_frames(tx, caches, id, frames, true)?;
    bound(&mut caches.purposes, CACHE_LIMIT);
    caches.purposes.insert(
        fp,
        PurposeState {
            id,
            complete: false,
            frames: frames.len(),
        },
    );
    Ok(id)
}

fn upsert_purpose(tx: &Transaction<'_>, caches: &mut Caches, p: PurposeUpsert) -> Result<()> {
    if let Some(record) = &p.unresolved {
        return keep_unresolved(tx, caches, &p, record);
    }
    let identity = identity_id(tx, caches, &p.identity)?;
    let test = p
        .test
        .as_ref()
        .map(|t| test_id(tx, caches, t))
        .transpose()?;
    let (id, fresh) = match cached_purpose(tx, caches, p.fingerprint)? {
        // Every process of a program sends the same record: one is enough.
        Some(state) if state.complete => return Ok(()),
        Some(state) => {
            tx.prepare_cached(
                "UPDATE purposes SET identity_id = ?2, test_id = coalesce(?3, test_id), \
                 span = ?4, complete = 1, seen_at = coalesce(seen_at, ?5) WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![state.id, identity, test, p.span, p.seen_at]))
            .map_err(sql("complete a purpose"))?;
            (state.id, false)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO purposes (fingerprint, identity_id, test_id, span, complete, seen_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    fingerprint_hex(p.fingerprint),
                    identity,
                    test,
                    p.span,
                    p.seen_at
                ])
            })
            .map_err(sql("insert a purpose"))?;
            (tx.last_insert_rowid(), true)
        }
    };
    replace_frames(tx, caches, id, &p.frames, fresh)?;
    bound(&mut caches.purposes, CACHE_LIMIT);
    caches.purposes.insert(
        p.fingerprint,
        PurposeState {
            id,
            complete: true,
            frames: p.frames.len(),
        },
    );
    Ok(())
}

/// A purpose known by its addresses: stored incomplete (requests join it by fingerprint as
/// ever) with the record kept for `symbolize`; a redelivered record changes nothing.
fn keep_unresolved(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    p: &PurposeUpsert,
    record: &str,
) -> Result<()> {
    let identity = identity_id(tx, caches, &p.identity)?;
    let id = match cached_purpose(tx, caches, p.fingerprint)? {
        Some(state) if state.complete => return Ok(()),
        Some(state) => state.id,
        None => {
            tx.prepare_cached(
                "INSERT INTO purposes (fingerprint, identity_id, span, complete, seen_at) \
                 VALUES (?1, ?2, ?3, 0, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    fingerprint_hex(p.fingerprint),
                    identity,
                    p.span,
                    p.seen_at
                ])
            })
            .map_err(sql("insert a purpose"))?;
            let id = tx.last_insert_rowid();
            bound(&mut caches.purposes, CACHE_LIMIT);
            caches.purposes.insert(
                p.fingerprint,
                PurposeState {
                    id,
                    complete: false,
                    frames: 0,
                },
            );
            id
        }
    };
    tx.prepare_cached(
        "INSERT OR IGNORE INTO purpose_addresses (purpose_id, record) VALUES (?1, ?2)",
    )
    .and_then(|mut s| s.execute(params![id, record]))
    .map_err(sql("keep a purpose's addresses"))?;
    Ok(())
}

/// Stores a release, or for a label stored from the same document, its metadata again: the
/// lists, each endpoint's eligibility and description, and (when given) its conformance tests.
/// A label stored from another document is refused: requests were mapped with its catalog.
fn store_release(tx: &Transaction<'_>, r: ReleaseRecord) -> Result<ReleaseId> {
    let sha = sha256_hex(&r.spec);
    let existing: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, spec_sha256 FROM releases WHERE label = ?1",
            params![r.label],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql("look up a release"))?;
    let release = match existing {
        // A live cluster's catalog of now over the one stored before.
        Some((id, stored)) if stored != sha && r.refresh => {
            refresh_release(tx, ReleaseId(id), &r, &sha)?;
            id
        }
        Some((_, stored)) if stored != sha => {
            return Err(Error::ReleaseConflict {
                label: r.label,
                stored,
            });
        }
        Some((id, _)) => {
            tx.execute(
                "UPDATE releases SET ineligible = ?2, pending = ?3 WHERE id = ?1",
                params![id, r.ineligible, r.pending],
            )
            .map_err(sql("update a release's lists"))?;
            let mut s = tx
                .prepare_cached(
                    "UPDATE endpoints SET eligible = ?3, pending = ?4, ineligible_reason = ?5, \
                     description = ?6 WHERE release_id = ?1 AND idx = ?2",
                )
                .map_err(sql("prepare the endpoint update"))?;
            for (idx, e) in r.endpoints.iter().enumerate() {
                s.execute(params![
                    id,
                    idx as i64,
                    e.eligible,
                    e.pending,
                    e.ineligible_reason,
                    e.description
                ])
                .map_err(sql("update an endpoint"))?;
            }
            id
        }
        None => {
            let spec_gz = compress(&r.spec)?;
            tx.execute(
                "INSERT INTO releases (label, spec_sha256, spec_gz, ineligible, pending, \
                 loaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.label, sha, spec_gz, r.ineligible, r.pending, now()],
            )
            .map_err(sql("insert a release"))?;
            let release = tx.last_insert_rowid();
            insert_endpoints(tx, release, 0, &r.endpoints)?;
            release
        }
    };
    if let Some(tests) = &r.conformance {
        tx.execute(
            "DELETE FROM conformance_tests WHERE release_id = ?1",
            params![release],
        )
        .map_err(sql("replace a release's conformance tests"))?;
        let mut s = tx
            .prepare_cached(
                "INSERT INTO conformance_tests (release_id, codename, testname, description, \
                 release, promotion_release, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql("prepare the conformance test insert"))?;
        for t in tests {
            s.execute(params![
                release,
                t.codename,
                t.testname,
                t.description,
                t.release,
                t.promotion_release,
                t.file
            ])
            .map_err(sql("insert a conformance test"))?;
        }
    }
    Ok(ReleaseId(release))
}

/// An OpenAPI document as the store keeps it (gzip).
fn compress(spec: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(spec)
        .and_then(|_| gz.finish())
        .map_err(|e| Error::Sqlite {
            step: "compress the OpenAPI document",
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })
}

/// Writes `endpoints` (whose first is at position `from`) into a release, each row replacing
/// the one at its position.
fn insert_endpoints(
    tx: &Transaction<'_>,
    release: i64,
    from: usize,
    endpoints: &[EndpointRecord],
) -> Result<()> {
    let mut s = tx
        .prepare_cached(
            "INSERT INTO endpoints (release_id, idx, operation_id, method, path, level, category, \
             api_group, version, kind, action, deprecated, eligible, ineligible_reason, pending, \
             description) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
             ON CONFLICT (release_id, idx) DO UPDATE SET method = excluded.method, \
             path = excluded.path, level = excluded.level, category = excluded.category, \
             api_group = excluded.api_group, version = excluded.version, kind = excluded.kind, \
             action = excluded.action, deprecated = excluded.deprecated, \
             eligible = excluded.eligible, ineligible_reason = excluded.ineligible_reason, \
             pending = excluded.pending, description = excluded.description",
        )
        .map_err(sql("prepare the endpoint insert"))?;
    for (i, e) in endpoints.iter().enumerate() {
        s.execute(params![
            release,
            (from + i) as i64,
            e.operation_id,
            e.method,
            e.path,
            e.level,
            e.category,
            e.group,
            e.version,
            e.kind,
            e.action,
            e.deprecated,
            e.eligible,
            e.ineligible_reason,
            e.pending,
            e.description
        ])
        .map_err(sql("insert an endpoint"))?;
    }
    Ok(())
}

/// A release's refreshed catalog: every stored endpoint must be at its position (its row takes
/// what the refreshed catalog says of it: an extension's category and eligibility), the new ones
/// are added after them, and the document replaces the stored one.
fn refresh_release(
    tx: &Transaction<'_>,
    id: ReleaseId,
    r: &ReleaseRecord,
    sha: &str,
) -> Result<ReleaseId> {
    let stored: Vec<String> = tx
        .prepare_cached("SELECT operation_id FROM endpoints WHERE release_id = ?1 ORDER BY idx")
        .and_then(|mut s| {
            s.query_map(params![id.0], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(sql("read a release's endpoints"))?;
    for (position, op) in stored.iter().enumerate() {
        let found = r.endpoints.get(position).map(|e| e.operation_id.as_str());
        if found != Some(op.as_str()) {
            return Err(Error::RefreshMoved {
                label: r.label.clone(),
                position,
                stored: op.clone(),
                found: found.unwrap_or("nothing").to_owned(),
            });
        }
    }
    let spec_gz = compress(&r.spec)?;
    tx.execute(
        "UPDATE releases SET spec_sha256 = ?2, spec_gz = ?3, ineligible = ?4, pending = ?5, \
         loaded_at = ?6 WHERE id = ?1",
        params![id.0, sha, spec_gz, r.ineligible, r.pending, now()],
    )
    .map_err(sql("update a release"))?;
    insert_endpoints(tx, id.0, 0, &r.endpoints)?;
    Ok(id)
}

/// Maps a release's unmapped requests again; the rollups of the endpoints they move to (and of
/// "no endpoint") are counted again from `requests`, after everything pending is folded.
fn remap(
    tx: &Transaction<'_>,
    caches: &mut Caches,
    release: ReleaseId,
    map: &RemapFn,
) -> Result<Remapped> {
    let ids = endpoint_ids(tx, caches, release)?.clone();
    let mut moves: Vec<(i64, i64)> = Vec::new();
    let mut out = Remapped::default();
    {
        let mut s = tx
            .prepare_cached(
                "SELECT id, verb, request_uri FROM requests \
                 WHERE release_id = ?1 AND mapping LIKE 'unmapped:%'",
            )
            .map_err(sql("prepare the unmapped requests query"))?;
        let mut rows = s
            .query(params![release.0])
            .map_err(sql("read unmapped requests"))?;
        while let Some(row) = rows.next().map_err(sql("read unmapped requests"))? {
            let (id, verb, uri): (i64, String, String) =
                (|| Ok::<_, rusqlite::Error>((row.get(0)?, row.get(1)?, row.get(2)?)))()
                    .map_err(sql("read an unmapped request"))?;
            match map.map(&verb, &uri).and_then(|idx| ids.get(idx as usize)) {
                Some(&endpoint) => moves.push((id, endpoint)),
                None => out.still_unmapped += 1,
            }
        }
    }
    if moves.is_empty() {
        return Ok(out);
    }
    let mut set = tx
        .prepare_cached("UPDATE requests SET endpoint_id = ?2, mapping = 'endpoint' WHERE id = ?1")
        .map_err(sql("prepare the remap"))?;
    let mut touched: BTreeSet<i64> = BTreeSet::from([0]);
    for &(id, endpoint) in &moves {
        set.execute(params![id, endpoint])
            .map_err(sql("remap a request"))?;
        touched.insert(endpoint);
    }
    out.remapped = moves.len() as u64;
    // Journeys counted without these requests' endpoints are counted again.
    journeys::make_stale(tx).map_err(sql("mark journeys for counting again"))?;
    let touched: Vec<i64> = touched.into_iter().collect();
    caches
        .pending
        .recount(tx, &touched)
        .map_err(sql("count remapped requests"))?;
    Ok(out)
}

/// Hex sha256 of a document.
pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use StageRank::*;

    /// However many identities come, and however long their texts (a client may send a user
    /// agent of any length to a source that does not cut it), the cache holds at most its
    /// bytes of text and its entries, and still answers for what it holds.
    #[test]
    fn the_identity_cache_is_bounded_by_bytes_and_entries() {
        let mut cache = IdentityCache::default();
        let long = "x".repeat(1024);
        for n in 0..40_000i64 {
            let text = format!("{long} build/{n}");
            cache.insert(identity_key(&text), &text, n);
            assert!(cache.texts.len() <= IDENTITY_CACHE_BYTES);
            assert_eq!(cache.get(identity_key(&text), &text), Some(n));
        }
        let huge = "y".repeat(IDENTITY_CACHE_BYTES + 1);
        cache.insert(identity_key(&huge), &huge, 1);
        assert_eq!(cache.get(identity_key(&huge), &huge), None);
        assert!(cache.texts.capacity() <= 2 * IDENTITY_CACHE_BYTES);
        for n in 0..(IDENTITY_CACHE_ENTRIES as i64 + 10) {
            let text = format!("a/{n}");
            cache.insert(identity_key(&text), &text, n);
            assert!(cache.entries.len() <= IDENTITY_CACHE_ENTRIES);
        }
        // A key shared by two texts answers for neither but its own.
        cache.insert(5, "one", 1);
        assert_eq!(cache.get(5, "two"), None);
        assert_eq!(cache.get(5, "one"), Some(1));
    }

    #[test]
    fn events_are_counted_against_what_is_stored() {
        let cases: &[(Option<StageRank>, &[StageRank], [u64; 4])] = &[
            // stored, stages in arrival order, [new, advanced, earlier, duplicates]
            (None, &[RequestReceived], [1, 0, 0, 0]),
            (None, &[RequestReceived, ResponseComplete], [1, 1, 0, 0]),
            (None, &[ResponseComplete, RequestReceived], [1, 0, 1, 0]),
            (None, &[ResponseComplete, ResponseComplete], [1, 0, 0, 1]),
            (
                Some(ResponseComplete),
                &[RequestReceived, ResponseComplete],
                [0, 0, 1, 1],
            ),
            (
                Some(RequestReceived),
                &[ResponseStarted, ResponseComplete],
                [0, 2, 0, 0],
            ),
            (Some(ResponseComplete), &[Panic], [0, 1, 0, 0]),
        ];
        for (stored, stages, want) in cases {
            let mut out = BatchOutcome::default();
            count_events(*stored, stages, &mut out);
            assert_eq!(
                [out.new, out.advanced, out.earlier_stage, out.duplicates],
                *want,
                "{stored:?} {stages:?}"
            );
        }
    }
}
