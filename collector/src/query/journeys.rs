//! Journeys: frequent ordered endpoint sequences that programs take.
//!
//! A client's requests, in time order, are cut into *episodes* where the client is idle for
//! longer than the gap. An episode's *purpose* is the innermost function every one of its call
//! stacks passes through (e.g. `shop_controller::reconcile`), compared by function name because
//! one function calls from several lines and a user agent's stack may be cut where the
//! side channel's is whole. Every contiguous endpoint sequence of 2..=max_len requests of an
//! episode is counted once per episode (its *support*). A sequence inside a longer one with the
//! same support says nothing more and is left out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rusqlite::{Connection, params_from_iter};
use serde::Serialize;

use super::sql::{Sql, db, is_library, release, when, who};
use super::{Answer, Filters, Frame, Given, LIMIT, Param, Query, Render, Result, Table};
use crate::store::journeys;

/// How journeys are mined (`journeys`, and the journeys `suggest` draws on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Episodes a sequence must appear in.
    pub min_support: u64,
    /// Longest sequence mined.
    pub max_len: usize,
    /// Seconds without a request that end an episode.
    pub gap_secs: u64,
    /// Journeys returned (the most supported).
    pub limit: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_support: 2,
            max_len: journeys::MAX_LEN,
            gap_secs: (journeys::GAP_US / 1_000_000) as u64,
            limit: 100,
        }
    }
}

/// The mining parameters, as `journeys` and `suggest` take them.
pub(crate) const MINING: [Param; 3] = [
    Param::value("min-support", "N", "Episodes a sequence must appear in"),
    Param::value("max-len", "N", "Longest sequence"),
    Param::value("gap", "SECONDS", "Idle seconds that end an episode"),
];

impl Params {
    /// Takes the mining parameters (not `limit`).
    pub(crate) fn parse_mining(g: &mut Given) -> Result<Self> {
        let mut o = Params::default();
        if let Some(n) = g.positive("min-support")? {
            o.min_support = n as u64;
        }
        if let Some(n) = g.parsed(&["max-len"], |k, v| {
            let n = super::request::parse_limit(k, v)?;
            if n < 2 {
                return Err(super::Error::BadValue {
                    name: k.to_owned(),
                    value: v.to_owned(),
                    expected: "an integer of at least 2",
                });
            }
            Ok(n)
        })? {
            o.max_len = n;
        }
        if let Some(n) = g.positive("gap")? {
            o.gap_secs = n as u64;
        }
        Ok(o)
    }
}

impl Query for Params {
    const NAME: &'static str = "journeys";
    const PARAMS: &'static [Param] = &[MINING[0], MINING[1], MINING[2], LIMIT];

    fn parse(g: &mut Given) -> Result<Self> {
        let mut o = Params::parse_mining(g)?;
        if let Some(l) = g.positive("limit")? {
            o.limit = l;
        }
        Ok(o)
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        let (rid, _, _) = release(conn, f)?;
        let limit = self.limit;
        let mut js = journeys_query(conn, f, rid, self, |js| js.len() >= limit)?;
        js.truncate(self.limit);
        Ok(Answer::new(js))
    }
}

/// One request, as journeys see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The client (identity, user, source IPs, test), as one key.
    pub client: i64,
    /// App name.
    pub app: String,
    /// The application's functions of its call stack, innermost first (empty without one).
    pub stack: Arc<Vec<String>>,
    /// operationId.
    pub endpoint: String,
    /// Received, unix µs.
    pub at_us: i64,
}

/// A run of one client's requests without a long pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// App.
    pub app: String,
    /// The innermost function all its stacks pass through.
    pub purpose: String,
    /// Endpoints in order.
    pub sequence: Vec<String>,
}

/// A frequent sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Journey {
    /// App.
    pub app: String,
    /// The innermost function all its stacks pass through (`""`: none).
    pub purpose: String,
    /// operationIds in order.
    pub sequence: Vec<String>,
    /// Episodes it appears in.
    pub support: u64,
}

/// The innermost function all stacks share (`""` if none; stacks without frames are skipped).
pub fn common_purpose(stacks: &[&Arc<Vec<String>>]) -> String {
    let mut with = stacks.iter().filter(|s| !s.is_empty());
    let Some(first) = with.next() else {
        return String::new();
    };
    let rest: Vec<BTreeSet<&str>> = with
        .map(|s| s.iter().map(String::as_str).collect())
        .collect();
    first
        .iter()
        .find(|f| rest.iter().all(|r| r.contains(f.as_str())))
        .cloned()
        .unwrap_or_default()
}

/// Cuts steps (sorted by client, then time) into episodes.
pub fn episodes(steps: &[Step], gap_us: i64) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let mut start = 0;
    for i in 1..=steps.len() {
        let cut = i == steps.len()
            || steps[i].client != steps[i - 1].client
            || steps[i].at_us - steps[i - 1].at_us > gap_us;
        if cut {
            let run = &steps[start..i];
            let stacks: Vec<&Arc<Vec<String>>> = run.iter().map(|s| &s.stack).collect();
            out.push(Episode {
                app: run[0].app.clone(),
                purpose: common_purpose(&stacks),
                sequence: run.iter().map(|s| s.endpoint.clone()).collect(),
            });
            start = i;
        }
    }
    out
}

/// (app, purpose, endpoints) of a counted sequence, as interned ids.
type Sequence = (u32, u32, Box<[u32]>);

/// Counts episodes' sequences one episode at a time, so a caller can stream requests without
/// holding them (memory grows with the distinct sequences, kept as interned ids).
#[derive(Debug, Default)]
pub struct Miner {
    max_len: usize,
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
    support: HashMap<Sequence, u64>,
}

impl Miner {
    /// Mines sequences of 2..=`max_len` endpoints.
    pub fn new(max_len: usize) -> Miner {
        Miner {
            max_len,
            ..Miner::default()
        }
    }

    fn id(&mut self, name: &Arc<str>) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name.clone(), id);
        id
    }

    /// Counts one episode: each distinct contiguous sequence once.
    pub fn add(&mut self, app: &Arc<str>, purpose: &Arc<str>, sequence: &[Arc<str>]) {
        if sequence.len() < 2 {
            return;
        }
        let (app, purpose) = (self.id(app), self.id(purpose));
        let seq: Vec<u32> = sequence.iter().map(|e| self.id(e)).collect();
        let mut seen: BTreeSet<&[u32]> = BTreeSet::new();
        for len in 2..=self.max_len.min(seq.len()) {
            for w in seq.windows(len) {
                if seen.insert(w) {
                    *self.support.entry((app, purpose, w.into())).or_default() += 1;
                }
            }
        }
    }

    /// The frequent sequences (support ≥ `min_support`), closed: by support, then length
    /// (longest first), app, purpose, sequence.
    pub fn finish(self, min_support: u64) -> Vec<Journey> {
        let frequent: HashMap<&Sequence, u64> = self
            .support
            .iter()
            .filter(|(_, s)| **s >= min_support)
            .map(|(k, s)| (k, *s))
            .collect();
        let mut covered: BTreeSet<(u32, u32, &[u32])> = BTreeSet::new();
        for ((app, purpose, seq), &s) in &frequent {
            if seq.len() > 2 {
                for sub in [&seq[1..], &seq[..seq.len() - 1]] {
                    if frequent.get(&(*app, *purpose, Box::from(sub))) == Some(&s) {
                        covered.insert((*app, *purpose, sub));
                    }
                }
            }
        }
        let name = |id: u32| self.names[id as usize].to_string();
        let mut out: Vec<Journey> = frequent
            .iter()
            .filter(|((a, p, seq), _)| !covered.contains(&(*a, *p, &seq[..])))
            .map(|((app, purpose, seq), support)| Journey {
                app: name(*app),
                purpose: name(*purpose),
                sequence: seq.iter().map(|e| name(*e)).collect(),
                support: *support,
            })
            .collect();
        out.sort_by(|a, b| {
            b.support
                .cmp(&a.support)
                .then(b.sequence.len().cmp(&a.sequence.len()))
                .then_with(|| {
                    (&a.app, &a.purpose, &a.sequence).cmp(&(&b.app, &b.purpose, &b.sequence))
                })
        });
        out
    }
}

/// Mines frequent sequences: support ≥ `min_support`, length 2..=`max_len`; by support, then
/// length (longest first), app, purpose, sequence.
pub fn mine(episodes: &[Episode], min_support: u64, max_len: usize) -> Vec<Journey> {
    let mut m = Miner::new(max_len);
    for e in episodes {
        let seq: Vec<Arc<str>> = e.sequence.iter().map(|s| Arc::from(s.as_str())).collect();
        m.add(
            &Arc::from(e.app.as_str()),
            &Arc::from(e.purpose.as_str()),
            &seq,
        );
    }
    m.finish(min_support)
}

/// A journey as the table lists it: its sequence in one cell.
#[derive(Default, Serialize)]
struct JourneyCells<'a> {
    app: &'a str,
    purpose: &'a str,
    support: u64,
    sequence: String,
}

/// A journey as a table row (`suggest` lists them too).
pub(crate) fn sequence_cell(j: &Journey) -> String {
    j.sequence.join(" > ")
}

impl Render for Vec<Journey> {
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<JourneyCells<'_>> = self
            .iter()
            .map(|j| JourneyCells {
                app: &j.app,
                purpose: &j.purpose,
                support: j.support,
                sequence: sequence_cell(j),
            })
            .collect();
        vec![Table::of("journeys", &rows)]
    }
}

/// `journeys`: from the rollup the writer keeps when it counts what is asked, else by a scan.
/// `enough` is asked after each support level with the journeys found so far (most supported
/// first): once it says so, less supported ones are not read (the rollup only; a scan mines
/// them all).
pub(crate) fn journeys_query(
    conn: &Connection,
    f: &Filters,
    rid: i64,
    o: &Params,
    enough: impl FnMut(&[Journey]) -> bool,
) -> Result<Vec<Journey>> {
    match from_rollup(conn, f, rid, o, enough)? {
        Some(js) => Ok(js),
        None => scan(conn, f, rid, o),
    }
}

/// `journeys` from `journey_support` (store/journeys.rs), when it counts what is asked: no
/// filter but the release, the default gap, sequences no longer than it counts, and counts
/// neither stale nor more than [`journeys::LAG`] requests behind. `None` otherwise.
///
/// Sequences are read by support, most first, one level at a time: a sequence is left out
/// when a sequence one endpoint longer has its support, and so sits in the same level; the
/// levels read give exactly the journeys a mining of everything would list first.
fn from_rollup(
    conn: &Connection,
    f: &Filters,
    rid: i64,
    o: &Params,
    mut enough: impl FnMut(&[Journey]) -> bool,
) -> Result<Option<Vec<Journey>>> {
    let plain = Filters {
        release: f.release.clone(),
        ..Filters::default()
    };
    if *f != plain
        || o.gap_secs as i64 * 1_000_000 != journeys::GAP_US
        || o.max_len > journeys::MAX_LEN
        || !journeys::current(conn, journeys::LAG).unwrap_or(false)
    {
        return Ok(None);
    }
    let endpoints = operation_ids(conn, rid)?;
    let mut names: HashMap<i64, Arc<str>> = HashMap::new();
    let mut name_of = conn
        .prepare("SELECT name FROM journey_names WHERE id = ?1")
        .map_err(db)?;
    let mut name = |id: i64| -> Result<Arc<str>> {
        if let Some(n) = names.get(&id) {
            return Ok(n.clone());
        }
        let n: Arc<str> = Arc::from(
            name_of
                .query_row([id], |r| r.get::<_, String>(0))
                .map_err(db)?,
        );
        names.insert(id, n.clone());
        Ok(n)
    };
    // Most sequences of a varied log are in one episode: the partial index skips them, and
    // gives the rest by support.
    let frequent = if o.min_support >= 2 {
        " AND episodes >= 2"
    } else {
        ""
    };
    let mut st = conn
        .prepare(&format!(
            "SELECT app_id, purpose_id, sequence, episodes FROM journey_support \
             WHERE release_id = {rid}{frequent} AND episodes >= {} ORDER BY episodes DESC",
            o.min_support.max(1)
        ))
        .map_err(db)?;
    let mut rows = st.query([]).map_err(db)?;
    let mut out: Vec<Journey> = Vec::new();
    let mut level: BTreeSet<Named> = BTreeSet::new();
    let mut support = 0;
    let close = |level: &mut BTreeSet<Named>, support: u64, out: &mut Vec<Journey>| {
        let mut covered: BTreeSet<Named> = BTreeSet::new();
        for (app, purpose, seq) in level.iter() {
            if seq.len() > 2 {
                for sub in [&seq[1..], &seq[..seq.len() - 1]] {
                    let sub = (app.clone(), purpose.clone(), sub.to_vec());
                    if level.contains(&sub) {
                        covered.insert(sub);
                    }
                }
            }
        }
        for named in level.iter().filter(|n| !covered.contains(*n)) {
            let (app, purpose, seq) = named;
            {
                out.push(Journey {
                    app: app.to_string(),
                    purpose: purpose.to_string(),
                    sequence: seq.iter().map(|e| e.to_string()).collect(),
                    support,
                });
            }
        }
        level.clear();
    };
    while let Some(x) = rows.next().map_err(db)? {
        let episodes = x.get::<_, i64>(3).map_err(db)? as u64;
        if episodes != support {
            if support != 0 {
                close(&mut level, support, &mut out);
                sort(&mut out);
                if enough(&out) {
                    return Ok(Some(out));
                }
            }
            support = episodes;
        }
        let blob = x
            .get_ref(2)
            .map_err(db)?
            .as_blob()
            .map_err(|e| db(e.into()))?;
        let Some(ids) = journeys::sequence_ids(blob) else {
            continue;
        };
        if ids.len() > o.max_len {
            continue;
        }
        let seq: Option<Vec<Arc<str>>> = ids
            .iter()
            .map(|id| endpoints.get(&i64::from(*id)).cloned())
            .collect();
        if let Some(seq) = seq {
            let app = name(x.get(0).map_err(db)?)?;
            let purpose = name(x.get(1).map_err(db)?)?;
            level.insert((app, purpose, seq));
        }
    }
    close(&mut level, support, &mut out);
    sort(&mut out);
    Ok(Some(out))
}

/// A sequence of one support level: (app, purpose, endpoints).
type Named = (Arc<str>, Arc<str>, Vec<Arc<str>>);

/// The operationIds of a release's endpoints, by endpoint id.
fn operation_ids(conn: &Connection, rid: i64) -> Result<HashMap<i64, Arc<str>>> {
    Ok(Sql::default()
        .rows(
            conn,
            &format!("SELECT id, operation_id FROM endpoints WHERE release_id = {rid}"),
            |x| Ok((x.get::<_, i64>(0)?, Arc::from(x.get::<_, String>(1)?))),
        )?
        .into_iter()
        .collect())
}

/// By support, then length (longest first), app, purpose, sequence.
fn sort(js: &mut [Journey]) {
    js.sort_by(|a, b| {
        b.support
            .cmp(&a.support)
            .then(b.sequence.len().cmp(&a.sequence.len()))
            .then_with(|| (&a.app, &a.purpose, &a.sequence).cmp(&(&b.app, &b.purpose, &b.sequence)))
    });
}

/// `journeys` by a scan of `requests` in client and time order.
fn scan(conn: &Connection, f: &Filters, rid: i64, o: &Params) -> Result<Vec<Journey>> {
    // Names and stacks once, by id; the requests then stream by client and time, so memory
    // holds one episode and the sequences counted, never the requests.
    let sql = Sql::default();
    let apps: HashMap<i64, Arc<str>> = sql
        .rows(
            conn,
            "SELECT id, COALESCE(name, text) FROM identities",
            |x| Ok((x.get::<_, i64>(0)?, Arc::from(x.get::<_, String>(1)?))),
        )?
        .into_iter()
        .collect();
    let endpoints = operation_ids(conn, rid)?;
    let mut stacks: HashMap<i64, Arc<Vec<String>>> = HashMap::new();
    let mut frames = sql.rows(
        conn,
        "SELECT pf.purpose_id, f.function FROM purpose_frames pf \
         JOIN frames f ON f.id = pf.frame_id ORDER BY pf.purpose_id, pf.depth",
        |x| Ok((x.get::<_, i64>(0)?, x.get::<_, String>(1)?)),
    )?;
    frames.retain(|(_, function)| {
        !is_library(&Frame {
            function: function.clone(),
            file: String::new(),
            line: 0,
        })
    });
    for (p, function) in frames {
        match stacks.get_mut(&p) {
            Some(s) => Arc::make_mut(s).push(function),
            None => {
                stacks.insert(p, Arc::new(vec![function]));
            }
        }
    }
    let none = Arc::new(Vec::new());

    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let w = when(&mut q, f);
    let r = q.p(rid);
    let text = format!(
        "SELECT COALESCE(r.identity_id, 0), COALESCE(r.user_id, 0), COALESCE(r.source_ips, ''), \
         COALESCE(r.test_id, 0), COALESCE(r.purpose_id, 0), r.endpoint_id, r.received_us \
         FROM requests r{j} JOIN endpoints e ON e.id = r.endpoint_id AND e.release_id = {r} \
         WHERE {w} AND r.identity_id IS NOT NULL ORDER BY 1, 2, 3, 4, r.received_us, r.id"
    );
    let mut st = conn.prepare(&text).map_err(db)?;
    let mut rows = st.query(params_from_iter(q.params.iter())).map_err(db)?;
    let gap = o.gap_secs as i64 * 1_000_000;
    let mut miner = Miner::new(o.max_len);
    // The episode being read: its client, app, stacks, endpoints, last time.
    type Client = (i64, i64, String, i64);
    type Open = (Client, Arc<str>, Vec<Arc<Vec<String>>>, Vec<Arc<str>>, i64);
    let mut cur: Option<Open> = None;
    let flush = |miner: &mut Miner, e: Open| {
        let refs: Vec<&Arc<Vec<String>>> = e.2.iter().collect();
        let purpose: Arc<str> = Arc::from(common_purpose(&refs));
        miner.add(&e.1, &purpose, &e.3);
    };
    while let Some(x) = rows.next().map_err(db)? {
        let client: Client = (
            x.get(0).map_err(db)?,
            x.get(1).map_err(db)?,
            x.get(2).map_err(db)?,
            x.get(3).map_err(db)?,
        );
        let purpose: i64 = x.get(4).map_err(db)?;
        let endpoint: i64 = x.get(5).map_err(db)?;
        let at: i64 = x.get(6).map_err(db)?;
        let stack = stacks
            .get(&purpose)
            .cloned()
            .unwrap_or_else(|| none.clone());
        let ep = endpoints
            .get(&endpoint)
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        match &mut cur {
            Some(c) if c.0 == client && at - c.4 <= gap => {
                c.2.push(stack);
                c.3.push(ep);
                c.4 = at;
            }
            _ => {
                if let Some(done) = cur.take() {
                    flush(&mut miner, done);
                }
                let app = apps
                    .get(&client.0)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(""));
                cur = Some((client, app, vec![stack], vec![ep], at));
            }
        }
    }
    if let Some(done) = cur.take() {
        flush(&mut miner, done);
    }
    Ok(miner.finish(o.min_support))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "journeys",
            &[
                ("min-support", "3"),
                ("max-len", "2"),
                ("gap", "5"),
                ("limit", "9"),
            ],
            Params {
                min_support: 3,
                max_len: 2,
                gap_secs: 5,
                limit: 9,
            },
        );
    }

    fn step(client: i64, stack: &[&str], ep: &str, at_s: i64) -> Step {
        Step {
            client,
            app: format!("app{client}"),
            stack: Arc::new(stack.iter().map(|s| s.to_string()).collect()),
            endpoint: ep.into(),
            at_us: at_s * 1_000_000,
        }
    }

    #[test]
    fn episodes_cut_on_client_and_gap_and_name_the_shared_caller() {
        let full = ["count_pods", "reconcile", "main"];
        let cut = ["record", "reconcile"];
        let steps = vec![
            step(1, &full, "a", 0),
            step(1, &cut, "b", 1),
            step(1, &[], "c", 2),     // no stack: does not change the purpose
            step(1, &full, "d", 100), // gap
            step(1, &["other"], "e", 101),
            step(2, &cut, "f", 101), // client changes
        ];
        let e = episodes(&steps, 60_000_000);
        let got: Vec<(&str, Vec<&str>)> = e
            .iter()
            .map(|e| {
                (
                    e.purpose.as_str(),
                    e.sequence.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("reconcile", vec!["a", "b", "c"]),
                ("", vec!["d", "e"]),
                ("record", vec!["f"])
            ]
        );
    }

    #[test]
    fn mines_closed_frequent_sequences_counted_once_per_episode() {
        let ep = |seq: &[&str]| Episode {
            app: "shop".into(),
            purpose: "reconcile".into(),
            sequence: seq.iter().map(|s| s.to_string()).collect(),
        };
        let eps = vec![
            ep(&["get", "list", "patch", "get", "list"]), // get>list twice, counted once
            ep(&["get", "list", "patch"]),
            ep(&["get", "list"]),
            ep(&["create"]),
        ];
        let js = mine(&eps, 2, 3);
        let got: Vec<(Vec<&str>, u64)> = js
            .iter()
            .map(|j| (j.sequence.iter().map(String::as_str).collect(), j.support))
            .collect();
        // list>patch (2) is inside get>list>patch (2): left out. get>list has 3.
        assert_eq!(
            got,
            vec![(vec!["get", "list"], 3), (vec!["get", "list", "patch"], 2)]
        );
        let t = js.tables().remove(0);
        assert_eq!(t.rows[1], ["shop", "reconcile", "2", "get > list > patch"]);
        assert!(mine(&eps, 4, 3).is_empty());
    }
}
