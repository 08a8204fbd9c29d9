//! The journeys rollup (`migrations/0013_journeys.sql`): each client's episodes counted as its requests are
//! folded in, so `journeys` and `suggest` look support up instead of mining every request.
//!
//! The counts are the ones `query/journeys.rs` defines by a scan, for its default gap
//! ([`GAP_US`]) and sequences up to [`MAX_LEN`] long: a client's requests in time order cut
//! into episodes at pauses longer than the gap; an episode's purpose is the innermost function
//! every call stack of it passes through; each distinct contiguous endpoint sequence of an
//! episode counts once for it. An open episode is counted under its purpose so far; a stack
//! that narrows the purpose moves the episode's sequences to the new one, so the counts are
//! whole at every fold, not only once an episode ends.
//!
//! A fold takes requests in client and time order, so it must not meet a client's request
//! older than one it already counted. Requests newer than the *watermark* wait for a later
//! fold; every fold is now one a query asks for, whose watermark is the newest request, so
//! nothing is held (the marks keep the general form):
//!
//! ```text
//!   requests by id  | counted         lo | counted if received <= watermark, else held  hi | new
//! ```
//!
//! Invariant: a request is counted if and only if its id is at most `lo`, or at most `hi` and
//! received at or before the watermark. Neither `serve` nor bulk ingest folds as batches come
//! (between webhook batches, a fold's random page writes made the checkpoints that webhook
//! commits wait on: BENCHMARKS.md); the first `journeys` or `suggest` asks for a final fold
//! ([`Command::Journeys`]), which holds nothing back. A request older than its client's
//! last counted one, a call stack whose functions change after it was counted, or a remap
//! makes the counts *stale*: queries scan `requests` until the next final fold counts them all
//! again.
//!
//! [`Command::Journeys`]: super::writer::Command

use std::cmp::Ordering;
use std::sync::Arc;

use foldhash::{HashMap, HashSet};
use rusqlite::{OptionalExtension, Transaction, params};

use super::model::is_library;

/// Seconds of silence that end an episode, in µs (`journeys --gap`'s default).
pub(crate) const GAP_US: i64 = 60_000_000;
/// The longest sequence counted (`journeys --max-len`'s default).
pub(crate) const MAX_LEN: usize = 4;
/// Support deltas summed in memory before they are written.
const DELTAS: usize = 200_000;
/// Call stacks, apps and names kept in memory.
const CACHE: usize = 100_000;
/// Open episodes' sequences kept in memory between folds (about 40 bytes each): a busy
/// client's are not read back from `journey_open` at every fold.
const OPEN_CACHE: usize = 1_000_000;

/// Endpoint ids in order: 2 to [`MAX_LEN`] of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Seq {
    len: u8,
    ids: [i32; MAX_LEN],
}

impl Seq {
    fn of(ids: &[i32]) -> Seq {
        let mut s = Seq {
            len: ids.len() as u8,
            ids: [0; MAX_LEN],
        };
        s.ids[..ids.len()].copy_from_slice(ids);
        s
    }

    fn blob(&self) -> Vec<u8> {
        self.ids[..self.len as usize]
            .iter()
            .flat_map(|i| i.to_le_bytes())
            .collect()
    }

    fn from_blob(b: &[u8]) -> Option<Seq> {
        if !b.len().is_multiple_of(4) || b.len() / 4 > MAX_LEN {
            return None;
        }
        let ids: Vec<i32> = b
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Seq::of(&ids))
    }
}

/// Endpoint ids of a stored sequence blob (`None`: not one this module wrote).
pub(crate) fn sequence_ids(blob: &[u8]) -> Option<Vec<i32>> {
    Seq::from_blob(blob).map(|s| s.ids[..s.len as usize].to_vec())
}

/// Who `journeys` cuts episodes for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Client {
    release: i64,
    identity: i64,
    user: i64,
    source_ips: String,
    test: i64,
}

/// One request as the fold reads it.
#[derive(Debug, Clone)]
struct Step {
    client: Client,
    at: i64,
    id: i64,
    purpose: i64,
    endpoint: i32,
}

impl Step {
    fn order(&self, other: &Step) -> Ordering {
        (&self.client, self.at, self.id).cmp(&(&other.client, other.at, other.id))
    }

    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Step> {
        Ok(Step {
            client: Client {
                release: r.get(0)?,
                identity: r.get(1)?,
                user: r.get(2)?,
                source_ips: r.get(3)?,
                test: r.get(4)?,
            },
            at: r.get(5)?,
            id: r.get(6)?,
            purpose: r.get(7)?,
            endpoint: r.get(8)?,
        })
    }
}

/// The columns of [`Step::read`], in its order, in the order a fold takes them.
const STEPS: &str = "SELECT e.release_id, r.identity_id, COALESCE(r.user_id, 0), \
     COALESCE(r.source_ips, ''), COALESCE(r.test_id, 0), r.received_us, r.id, \
     COALESCE(r.purpose_id, 0), r.endpoint_id \
     FROM requests r JOIN endpoints e ON e.id = r.endpoint_id \
     WHERE r.identity_id IS NOT NULL AND {where} \
     ORDER BY 1, 2, 3, 4, 5, 6, 7";

/// `journey_state`.
#[derive(Debug, Clone, Copy)]
struct Marks {
    lo: i64,
    hi: i64,
    watermark: i64,
    stale: bool,
}

fn marks(tx: &Transaction<'_>) -> rusqlite::Result<Marks> {
    tx.prepare_cached("SELECT lo, hi, watermark_us, stale FROM journey_state")?
        .query_row([], |r| {
            Ok(Marks {
                lo: r.get(0)?,
                hi: r.get(1)?,
                watermark: r.get(2)?,
                stale: r.get(3)?,
            })
        })
}

fn set_marks(tx: &Transaction<'_>, m: Marks) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE journey_state SET lo = ?1, hi = ?2, watermark_us = ?3, stale = ?4")?
        .execute(params![m.lo, m.hi, m.watermark, m.stale])?;
    Ok(())
}

/// Makes the counts stale: queries scan until the next final fold counts everything again.
pub(super) fn make_stale(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE journey_state SET stale = 1")?
        .execute([])?;
    Ok(())
}

/// Requests the rollup may lag behind and still answer: what `serve` stores between two of
/// its folds (a few seconds), as the other rollups lag; further behind, queries scan.
pub(crate) const LAG: i64 = 50_000;

/// Whether the rollup is not stale, was folded since requests came (bulk ingest folds none),
/// and counts every stored request but at most `lag` of them.
pub(crate) fn current(conn: &rusqlite::Connection, lag: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT stale = 0 AND (SELECT coalesce(max(id), 0) FROM requests) - lo <= ?1 \
         AND (hi > 0 OR NOT EXISTS (SELECT 1 FROM requests)) FROM journey_state",
        [lag],
        |r| r.get(0),
    )
}

/// A client's open episode, as stored in `journey_clients`.
#[derive(Debug)]
struct Open {
    id: i64,
    last_us: Option<i64>,
    tail: Vec<i32>,
    /// Functions every stack so far passes through, innermost first (`None`: no stack yet).
    common: Option<Vec<String>>,
    /// The sequences the episode counted (`journey_open`, and those not yet written there).
    counted: HashSet<Seq>,
    /// Those not yet written to `journey_open`.
    new: Vec<Seq>,
    app: i64,
}

impl Open {
    fn purpose(&self) -> &str {
        self.common
            .as_ref()
            .and_then(|c| c.first())
            .map_or("", String::as_str)
    }
}

/// The writer's side of the rollup: what folds keep between them.
#[derive(Debug, Default)]
pub(super) struct Journeys {
    /// Requests waiting for the watermark, in fold order (`None`: not read since the writer
    /// started or rolled back; read from `requests` by the invariant).
    held: Option<Vec<Step>>,
    names: HashMap<String, i64>,
    apps: HashMap<i64, i64>,
    stacks: HashMap<i64, Arc<Vec<String>>>,
    /// Open episodes' counted sequences, by client, kept between folds up to [`OPEN_CACHE`]
    /// of them (a client not here reads its own from `journey_open`).
    counted: HashMap<i64, HashSet<Seq>>,
    cached: usize,
}

/// The support deltas one fold sums before writing them.
struct Deltas<'a, 't> {
    tx: &'a Transaction<'t>,
    deltas: HashMap<(i64, i64, i64, Seq), i64>,
}

impl Deltas<'_, '_> {
    fn add(&mut self, key: (i64, i64, i64, Seq), n: i64) -> rusqlite::Result<()> {
        *self.deltas.entry(key).or_default() += n;
        if self.deltas.len() >= DELTAS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> rusqlite::Result<()> {
        let mut up = self.tx.prepare_cached(
            "INSERT INTO journey_support (release_id, app_id, purpose_id, sequence, episodes) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT DO UPDATE SET episodes = episodes + excluded.episodes",
        )?;
        for ((release, app, purpose, seq), n) in self.deltas.drain() {
            if n != 0 {
                up.execute(params![release, app, purpose, seq.blob(), n])?;
            }
        }
        Ok(())
    }
}

/// Why a fold stopped short.
enum Stop {
    /// A request older than its client's last counted one.
    Late,
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Stop {
        Stop::Sqlite(e)
    }
}

impl Journeys {
    /// Forgets what it holds in memory (after a rollback, the held requests are read again).
    pub(super) fn forget(&mut self) {
        *self = Journeys::default();
    }

    /// A purpose's frames were replaced: counts made with other functions are stale.
    pub(super) fn frames_replaced(
        &mut self,
        tx: &Transaction<'_>,
        purpose: i64,
        functions: &[&str],
    ) -> rusqlite::Result<()> {
        self.stacks.remove(&purpose);
        let used: Option<String> = tx
            .prepare_cached("SELECT functions FROM journey_stacks WHERE purpose_id = ?1")?
            .query_row(params![purpose], |r| r.get(0))
            .optional()?;
        let now: Vec<String> = functions
            .iter()
            .filter(|f| !is_library(f))
            .map(|f| f.to_string())
            .collect();
        match used {
            Some(used) if serde_json::from_str::<Vec<String>>(&used).ok() != Some(now) => {
                make_stale(tx)
            }
            _ => Ok(()),
        }
    }

    /// Folds every request in, holding nothing back; stale counts are counted again.
    pub(super) fn fold(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut m = marks(tx)?;
        if m.stale {
            for table in [
                "journey_clients",
                "journey_open",
                "journey_support",
                "journey_stacks",
            ] {
                tx.execute(&format!("DELETE FROM {table}"), [])?;
            }
            self.forget();
            self.held = Some(Vec::new());
            m = Marks {
                lo: 0,
                hi: 0,
                watermark: i64::MIN,
                stale: false,
            };
        }
        let held = match self.held.take() {
            Some(h) => h,
            None => tx
                .prepare(
                    &STEPS.replace("{where}", "r.id > ?1 AND r.id <= ?2 AND r.received_us > ?3"),
                )?
                .query_map(params![m.lo, m.hi, m.watermark], Step::read)?
                .collect::<rusqlite::Result<Vec<_>>>()?,
        };
        let (last_id, newest): (i64, Option<i64>) = tx
            .prepare_cached(
                "SELECT coalesce(max(id), ?1), max(received_us) FROM requests WHERE id > ?1",
            )?
            .query_row(params![m.hi], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let newest = newest.max(held.iter().map(|s| s.at).max());
        let Some(newest) = newest else {
            self.held = Some(held);
            return set_marks(tx, m);
        };
        let watermark = i64::MAX;
        match self.count(tx, held, m.hi, last_id, watermark) {
            Ok(held) => {
                m.lo = held.iter().map(|s| s.id).min().map_or(last_id, |id| id - 1);
                m.hi = last_id;
                m.watermark = watermark.min(newest);
                self.held = Some(held);
                set_marks(tx, m)
            }
            Err(Stop::Late) => {
                self.forget();
                make_stale(tx)?;
                // Counted again from the first request, in order: nothing is late then.
                self.fold(tx)
            }
            Err(Stop::Sqlite(e)) => Err(e),
        }
    }

    /// Counts the held requests and those in `(hi, last_id]` received up to `watermark`, in
    /// client and time order; returns the ones held for a later fold.
    fn count(
        &mut self,
        tx: &Transaction<'_>,
        held: Vec<Step>,
        hi: i64,
        last_id: i64,
        watermark: i64,
    ) -> Result<Vec<Step>, Stop> {
        let mut fold = Deltas {
            tx,
            deltas: HashMap::default(),
        };
        let mut still = Vec::new();
        let mut read = tx.prepare(&STEPS.replace("{where}", "r.id > ?1 AND r.id <= ?2"))?;
        let mut rows = read.query(params![hi, last_id])?;
        let mut held = held.into_iter().peekable();
        let mut next_row = rows.next()?.map(Step::read).transpose()?;
        let mut open: Option<(Client, Open)> = None;
        loop {
            // The held requests and the new ones, merged in fold order.
            let step = match (held.peek(), &next_row) {
                (Some(h), Some(r)) if h.order(r) != Ordering::Greater => held.next(),
                (_, Some(_)) => {
                    let r = next_row.take();
                    next_row = rows.next()?.map(Step::read).transpose()?;
                    r
                }
                (Some(_), None) => held.next(),
                (None, None) => None,
            };
            let Some(step) = step else { break };
            if step.at > watermark {
                still.push(step);
                continue;
            }
            if open.as_ref().is_none_or(|(c, _)| *c != step.client) {
                if let Some((_, done)) = open.take() {
                    self.close(tx, done)?;
                }
                let o = self.open(tx, &step.client)?;
                open = Some((step.client.clone(), o));
            }
            let (client, o) = open.as_mut().expect("opened above");
            self.step(&mut fold, client.release, o, &step)?;
        }
        if let Some((_, done)) = open.take() {
            self.close(tx, done)?;
        }
        fold.flush()?;
        Ok(still)
    }

    /// Counts one request of the client whose open episode is `o`.
    fn step(
        &mut self,
        fold: &mut Deltas<'_, '_>,
        release: i64,
        o: &mut Open,
        s: &Step,
    ) -> Result<(), Stop> {
        let tx = fold.tx;
        if let Some(last) = o.last_us {
            if s.at < last {
                return Err(Stop::Late);
            }
            if s.at - last > GAP_US {
                tx.prepare_cached("DELETE FROM journey_open WHERE client_id = ?1")?
                    .execute(params![o.id])?;
                o.tail.clear();
                o.common = None;
                o.counted.clear();
                o.new.clear();
            }
        }
        let before = self.name(tx, o.purpose())?;
        let stack = self.stack(tx, s.purpose)?;
        if !stack.is_empty() {
            o.common = Some(match o.common.take() {
                None => stack.to_vec(),
                Some(mut c) => {
                    c.retain(|f| stack.contains(f));
                    c
                }
            });
        }
        let purpose = self.name(tx, o.purpose())?;
        if purpose != before {
            // The episode's sequences so far move to its narrower purpose.
            for &seq in &o.counted {
                fold.add((release, o.app, before, seq), -1)?;
                fold.add((release, o.app, purpose, seq), 1)?;
            }
        }
        o.tail.push(s.endpoint);
        let n = o.tail.len();
        for len in 2..=MAX_LEN.min(n) {
            let seq = Seq::of(&o.tail[n - len..]);
            if o.counted.insert(seq) {
                o.new.push(seq);
                fold.add((release, o.app, purpose, seq), 1)?;
            }
        }
        if n >= MAX_LEN {
            o.tail.drain(..n + 1 - MAX_LEN);
        }
        o.last_us = Some(s.at);
        Ok(())
    }

    /// The client's open episode, created empty for a client seen for the first time.
    fn open(&mut self, tx: &Transaction<'_>, c: &Client) -> rusqlite::Result<Open> {
        let app = self.app(tx, c.identity)?;
        let key = params![c.release, c.identity, c.user, c.source_ips, c.test];
        let found = tx
            .prepare_cached(
                "SELECT id, last_us, tail, common FROM journey_clients WHERE release_id = ?1 \
                 AND identity_id = ?2 AND user_id = ?3 AND source_ips = ?4 AND test_id = ?5",
            )?
            .query_row(key, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        Ok(match found {
            Some((id, last_us, tail, common)) => {
                let counted = match self.counted.remove(&id) {
                    Some(c) => {
                        self.cached -= c.len();
                        c
                    }
                    None => tx
                        .prepare_cached("SELECT sequence FROM journey_open WHERE client_id = ?1")?
                        .query_map(params![id], |r| r.get::<_, Vec<u8>>(0))?
                        .filter_map(|b| b.map(|b| Seq::from_blob(&b)).transpose())
                        .collect::<rusqlite::Result<_>>()?,
                };
                Open {
                    id,
                    last_us: Some(last_us),
                    tail: sequence_ids(&tail).unwrap_or_default(),
                    common: common.and_then(|c| serde_json::from_str(&c).ok()),
                    counted,
                    new: Vec::new(),
                    app,
                }
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO journey_clients (release_id, identity_id, user_id, source_ips, \
                     test_id, last_us, tail) VALUES (?1, ?2, ?3, ?4, ?5, 0, x'')",
                )?
                .execute(key)?;
                Open {
                    id: tx.last_insert_rowid(),
                    last_us: None,
                    tail: Vec::new(),
                    common: None,
                    counted: HashSet::default(),
                    new: Vec::new(),
                    app,
                }
            }
        })
    }

    /// The id of a name in `journey_names`.
    fn name(&mut self, tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
        if let Some(&id) = self.names.get(name) {
            return Ok(id);
        }
        tx.prepare_cached("INSERT OR IGNORE INTO journey_names (name) VALUES (?1)")?
            .execute(params![name])?;
        let id = tx
            .prepare_cached("SELECT id FROM journey_names WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))?;
        if self.names.len() >= CACHE {
            self.names.clear();
        }
        self.names.insert(name.to_owned(), id);
        Ok(id)
    }

    /// The name id of an identity's app (its name, else its whole text).
    fn app(&mut self, tx: &Transaction<'_>, identity: i64) -> rusqlite::Result<i64> {
        if let Some(&id) = self.apps.get(&identity) {
            return Ok(id);
        }
        let app: String = tx
            .prepare_cached("SELECT COALESCE(name, text) FROM identities WHERE id = ?1")?
            .query_row(params![identity], |r| r.get(0))?;
        let id = self.name(tx, &app)?;
        if self.apps.len() >= CACHE {
            self.apps.clear();
        }
        self.apps.insert(identity, id);
        Ok(id)
    }

    /// A purpose's functions outside kube-rs, innermost first (none for 0), as first counted.
    fn stack(&mut self, tx: &Transaction<'_>, purpose: i64) -> rusqlite::Result<Arc<Vec<String>>> {
        if purpose == 0 {
            return Ok(Arc::default());
        }
        if let Some(s) = self.stacks.get(&purpose) {
            return Ok(s.clone());
        }
        let used: Option<String> = tx
            .prepare_cached("SELECT functions FROM journey_stacks WHERE purpose_id = ?1")?
            .query_row(params![purpose], |r| r.get(0))
            .optional()?;
        let functions: Vec<String> = match used.and_then(|u| serde_json::from_str(&u).ok()) {
            Some(f) => f,
            None => {
                let all: Vec<String> = tx
                    .prepare_cached(
                        "SELECT f.function FROM purpose_frames pf JOIN frames f ON f.id = pf.frame_id \
                         WHERE pf.purpose_id = ?1 ORDER BY pf.depth",
                    )?
                    .query_map(params![purpose], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let own: Vec<String> = all.into_iter().filter(|f| !is_library(f)).collect();
                let text = serde_json::to_string(&own).unwrap_or_else(|_| "[]".into());
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO journey_stacks (purpose_id, functions) VALUES (?1, ?2)",
                )?
                .execute(params![purpose, text])?;
                own
            }
        };
        let s = Arc::new(functions);
        if self.stacks.len() >= CACHE {
            self.stacks.clear();
        }
        self.stacks.insert(purpose, s.clone());
        Ok(s)
    }
}

impl Journeys {
    /// Stores a client's open episode: its state, and the sequences it counted since it was
    /// read, in key order (neighbouring pages, not pages all over the table); keeps them in
    /// memory for the next fold while they fit.
    fn close(&mut self, tx: &Transaction<'_>, mut o: Open) -> rusqlite::Result<()> {
        save(tx, &o)?;
        let mut new: Vec<Vec<u8>> = o.new.drain(..).map(|s| s.blob()).collect();
        new.sort_unstable();
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO journey_open (client_id, sequence) VALUES (?1, ?2)",
        )?;
        for b in new {
            insert.execute(params![o.id, b])?;
        }
        if self.cached + o.counted.len() > OPEN_CACHE {
            self.counted.clear();
            self.cached = 0;
        }
        if o.counted.len() <= OPEN_CACHE {
            self.cached += o.counted.len();
            self.counted.insert(o.id, o.counted);
        }
        Ok(())
    }
}

/// Stores a client's open episode state.
fn save(tx: &Transaction<'_>, o: &Open) -> rusqlite::Result<()> {
    let tail: Vec<u8> = o.tail.iter().flat_map(|i| i.to_le_bytes()).collect();
    let common = o
        .common
        .as_ref()
        .map(|c| serde_json::to_string(c).unwrap_or_else(|_| "[]".into()));
    tx.prepare_cached(
        "UPDATE journey_clients SET last_us = ?2, tail = ?3, common = ?4 WHERE id = ?1",
    )?
    .execute(params![o.id, o.last_us.unwrap_or(0), tail, common])?;
    Ok(())
}
