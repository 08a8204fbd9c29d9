//! Dependencies between programs through the objects they share: app A writes (create, update,
//! patch, delete, deletecollection) objects of a resource that app B reads (get, list, watch).
//! They share objects when both use the same namespace, or when either side is cluster-wide
//! (a cluster-scoped resource, or a list/watch across all namespaces). A write to a subresource
//! (`pods/status`) writes the object, so it counts for the resource.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, by_app_only, db, frames_of, own_line, src, when, who, whole_apps};
use super::{Answer, Filters, Frame, Given, LIMIT, Param, Query, Render, Result, Table};

/// `deps`' options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Edges kept (those with the most requests).
    pub limit: usize,
}

impl Query for Params {
    const NAME: &'static str = "deps";
    const PARAMS: &'static [Param] = &[LIMIT];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            limit: g.positive("limit")?.unwrap_or(100),
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(deps_query(conn, f, self.limit)?))
    }
}

/// Requests of one app, verb and resource from one line of code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// App.
    pub app: String,
    /// Audit verb.
    pub verb: String,
    /// API group (`""` core).
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Namespace (`None`: cluster-scoped or all namespaces).
    pub namespace: Option<String>,
    /// The app's line of code that made them (none without a purpose).
    pub loc: Option<Frame>,
    /// Requests.
    pub hits: u64,
}

/// A line of code on one side of an edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocUse {
    /// The line.
    #[serde(flatten)]
    pub frame: Frame,
    /// Verb.
    pub verb: String,
    /// Requests.
    pub hits: u64,
}

/// A program in the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// App.
    pub app: String,
    /// Its requests (all of them).
    pub requests: u64,
}

/// Writer → reader through one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// App that writes.
    pub writer: String,
    /// App that reads.
    pub reader: String,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Writer's write requests.
    pub writes: u64,
    /// Reader's read requests.
    pub reads: u64,
    /// Writer's lines of code.
    pub writer_locs: Vec<LocUse>,
    /// Reader's lines of code.
    pub reader_locs: Vec<LocUse>,
}

/// `deps`: the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deps {
    /// Apps on some edge, by name.
    pub nodes: Vec<Node>,
    /// Edges found, before the limit.
    pub total_edges: u64,
    /// The edges kept, by group, resource, writer, reader.
    pub edges: Vec<Edge>,
}

fn is_write(verb: &str) -> bool {
    matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

fn is_read(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "watch")
}

fn locs(uses: &[&Use]) -> Vec<LocUse> {
    let mut by: BTreeMap<(&Frame, &str), u64> = BTreeMap::new();
    for u in uses {
        if let Some(f) = &u.loc {
            *by.entry((f, &u.verb)).or_default() += u.hits;
        }
    }
    let mut v: Vec<LocUse> = by
        .into_iter()
        .map(|((f, verb), hits)| LocUse {
            frame: f.clone(),
            verb: verb.to_owned(),
            hits,
        })
        .collect();
    v.sort_by(|a, b| {
        b.hits
            .cmp(&a.hits)
            .then_with(|| (&a.frame, &a.verb).cmp(&(&b.frame, &b.verb)))
    });
    v
}

/// Texts interned to ids: the join compares ids, and names only to break ties.
#[derive(Default)]
struct Texts {
    ids: foldhash::HashMap<String, u32>,
    all: Vec<String>,
}

impl Texts {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.ids.get(text) {
            return i;
        }
        let i = self.all.len() as u32;
        self.all.push(text.to_owned());
        self.ids.insert(text.to_owned(), i);
        i
    }

    fn get(&self, id: u32) -> &str {
        &self.all[id as usize]
    }
}

/// Requests per (group, resource, app, namespace), reads and writes: all the join counts. The
/// namespace `""` stands for none (cluster-scoped, or across all namespaces).
#[derive(Default)]
struct Counts {
    texts: Texts,
    hits: foldhash::HashMap<Key, Kinds>,
}

/// (group, resource, app, namespace), interned in [`Counts::texts`].
type Key = (u32, u32, u32, u32);

/// Reads and writes.
#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    reads: u64,
    writes: u64,
}

impl Counts {
    fn add(&mut self, app: &str, group: &str, resource: &str, namespace: &str, k: Kinds) {
        let key = (
            self.texts.id(group),
            self.texts.id(resource),
            self.texts.id(app),
            self.texts.id(namespace),
        );
        self.add_ids(key, k);
    }

    /// [`Counts::add`] of interned texts.
    fn add_ids(&mut self, key: Key, k: Kinds) {
        let e = self.hits.entry(key).or_default();
        e.reads += k.reads;
        e.writes += k.writes;
    }
}

/// One app's reads (or writes) of one resource: in which namespaces, how many.
#[derive(Debug, Default)]
struct Side {
    total: u64,
    /// Without a namespace (cluster-scoped, or across all namespaces): these share objects with
    /// any use of the resource.
    none: u64,
    /// The namespaces used, a bit each (numbered per resource).
    bits: Vec<u64>,
    /// Hits per namespace bit.
    hits: Vec<(usize, u64)>,
}

impl Side {
    fn add(&mut self, bit: Option<usize>, hits: u64, words: usize) {
        self.total += hits;
        match bit {
            None => self.none += hits,
            Some(b) => {
                self.bits.resize(words, 0);
                self.bits[b / 64] |= 1 << (b % 64);
                self.hits.push((b, hits));
            }
        }
    }

    fn uses(&self, bit: usize) -> bool {
        self.bits
            .get(bit / 64)
            .is_some_and(|w| w >> (bit % 64) & 1 == 1)
    }

    /// Whether these uses share a namespace with `other`'s ([`shared`]).
    fn meets(&self, other: &Side) -> bool {
        self.none > 0
            || other.none > 0
            || self.bits.iter().zip(&other.bits).any(|(a, b)| a & b != 0)
    }

    /// The hits of these uses that share a namespace with some use of `other`.
    fn matched(&self, other: &Side) -> u64 {
        if other.none > 0 {
            return self.total;
        }
        let shared: u64 = self
            .hits
            .iter()
            .filter(|(b, _)| other.uses(*b))
            .map(|h| h.1)
            .sum();
        self.none + shared
    }
}

/// The namespaces of some uses: whether another use shares objects with one of them.
struct Namespaces<'a> {
    none: bool,
    some: BTreeSet<&'a str>,
}

impl<'a> Namespaces<'a> {
    fn of(uses: &[&'a Use]) -> Namespaces<'a> {
        Namespaces {
            none: uses.iter().any(|u| u.namespace.is_none()),
            some: uses.iter().filter_map(|u| u.namespace.as_deref()).collect(),
        }
    }

    fn share(&self, u: &Use) -> bool {
        match &u.namespace {
            None => !self.some.is_empty() || self.none,
            Some(ns) => self.none || self.some.contains(ns.as_str()),
        }
    }
}

/// Lines of code listed per side of an edge.
const LOCS_PER_SIDE: usize = 10;

/// Joins writers to readers of each resource; `requests` gives each app's total requests.
/// Keeps the `limit` edges with the most requests (writes + reads), each with its
/// `LOCS_PER_SIDE` busiest lines of code per side; `total_edges` counts them all.
pub fn build(uses: &[Use], requests: &BTreeMap<String, u64>, limit: usize) -> Deps {
    let mut counts = Counts::default();
    for u in uses {
        let k = Kinds {
            reads: if is_read(&u.verb) { u.hits } else { 0 },
            writes: if is_write(&u.verb) { u.hits } else { 0 },
        };
        if k.reads + k.writes > 0 {
            let ns = u.namespace.as_deref().unwrap_or_default();
            counts.add(&u.app, &u.group, &u.resource, ns, k);
        }
    }
    let lines = |sides: &BTreeSet<SideKey<'_>>| -> Result<Vec<Use>> {
        Ok(uses
            .iter()
            .filter(|u| sides.contains(&(u.app.as_str(), u.group.as_str(), u.resource.as_str())))
            .cloned()
            .collect())
    };
    assemble(&counts, requests, limit, lines).expect("uses at hand")
}

/// An app's use of a resource: (app, group, resource).
type SideKey<'a> = (&'a str, &'a str, &'a str);

/// Joins `counts`, then asks `lines` for the uses with their lines of code of the sides of the
/// edges kept, which must sum to the same requests per app, kind, resource and namespace.
fn assemble(
    counts: &Counts,
    requests: &BTreeMap<String, u64>,
    limit: usize,
    lines: impl FnOnce(&BTreeSet<SideKey<'_>>) -> Result<Vec<Use>>,
) -> Result<Deps> {
    let t = |id: u32| counts.texts.get(id);
    let none = counts.texts.ids.get("").copied();
    let mut keys: Vec<(&Key, &Kinds)> = counts.hits.iter().collect();
    keys.sort_unstable_by_key(|k| k.0);
    // Counts first, for every pair; lines of code only for the edges kept. A use counts for an
    // edge when the other side shares a namespace with it; a pair's requests are at most its
    // sides' totals, so once `limit` edges are at hand only a pair that could beat the last is
    // counted exactly.
    let mut total_edges = 0u64;
    type Ranked<'a> = (Reverse<u64>, &'a str, &'a str, &'a str, &'a str, u64, u64);
    let mut best: BinaryHeap<Ranked<'_>> = BinaryHeap::new();
    for block in keys.chunk_by(|a, b| (a.0.0, a.0.1) == (b.0.0, b.0.1)) {
        let (group, resource) = (block[0].0.0, block[0].0.1);
        let mut bit_of: foldhash::HashMap<u32, usize> = Default::default();
        for (k, _) in block {
            if Some(k.3) != none {
                let next = bit_of.len();
                bit_of.entry(k.3).or_insert(next);
            }
        }
        let words = bit_of.len().div_ceil(64);
        // Per app: (writes, reads).
        let mut apps: Vec<(u32, Side, Side)> = Vec::new();
        for (k, kinds) in block {
            if apps.last().is_none_or(|a| a.0 != k.2) {
                apps.push((k.2, Side::default(), Side::default()));
            }
            let app = apps.last_mut().expect("pushed");
            let bit = bit_of.get(&k.3).copied();
            if kinds.writes > 0 {
                app.1.add(bit, kinds.writes, words);
            }
            if kinds.reads > 0 {
                app.2.add(bit, kinds.reads, words);
            }
        }
        let mut writers: Vec<(u32, &Side)> = apps
            .iter()
            .filter(|a| a.1.total > 0)
            .map(|a| (a.0, &a.1))
            .collect();
        let mut readers: Vec<(u32, &Side)> = apps
            .iter()
            .filter(|a| a.2.total > 0)
            .map(|a| (a.0, &a.2))
            .collect();
        writers.sort_unstable_by_key(|w| Reverse(w.1.total));
        readers.sort_unstable_by_key(|r| Reverse(r.1.total));
        for &(w, writes) in &writers {
            for &(r, reads) in &readers {
                if w == r || !writes.meets(reads) {
                    continue;
                }
                total_edges += 1;
                let bound = writes.total + reads.total;
                if best.len() == limit && best.peek().is_some_and(|worst| bound < worst.0.0) {
                    continue;
                }
                let (wh, rh) = (writes.matched(reads), reads.matched(writes));
                let ranked = (Reverse(wh + rh), t(group), t(resource), t(w), t(r), wh, rh);
                if best.len() < limit {
                    best.push(ranked);
                } else if best.peek().is_some_and(|worst| ranked < *worst) {
                    best.pop();
                    best.push(ranked);
                }
            }
        }
    }
    let mut all: Vec<(u64, u64, &str, &str, &str, &str)> = best
        .into_iter()
        .map(|(_, group, resource, w, r, wh, rh)| (wh, rh, w, r, group, resource))
        .collect();
    all.sort_by(|a, b| (a.4, a.5, a.2, a.3).cmp(&(b.4, b.5, b.2, b.3)));
    let kept: BTreeSet<SideKey<'_>> = all
        .iter()
        .flat_map(|&(_, _, w, r, g, res)| [(w, g, res), (r, g, res)])
        .collect();
    let detailed = lines(&kept)?;
    // (group, resource) -> app -> (writes, reads)
    type Sides<'a> = BTreeMap<&'a str, (Vec<&'a Use>, Vec<&'a Use>)>;
    let mut by_line: BTreeMap<(&str, &str), Sides<'_>> = BTreeMap::new();
    for u in &detailed {
        let side = by_line
            .entry((&u.group, &u.resource))
            .or_default()
            .entry(&u.app)
            .or_default();
        if is_write(&u.verb) {
            side.0.push(u);
        } else if is_read(&u.verb) {
            side.1.push(u);
        }
    }
    let mut apps: BTreeSet<&str> = BTreeSet::new();
    let edges = all
        .into_iter()
        .map(|(writes, reads, w, r, group, resource)| {
            apps.insert(w);
            apps.insert(r);
            let side = |app| by_line.get(&(group, resource)).and_then(|s| s.get(app));
            let ws = side(w).map_or(&[][..], |s| &s.0[..]);
            let rs = side(r).map_or(&[][..], |s| &s.1[..]);
            let (wn, rn) = (Namespaces::of(ws), Namespaces::of(rs));
            let ws: Vec<&Use> = ws.iter().filter(|x| rn.share(x)).copied().collect();
            let rs: Vec<&Use> = rs.iter().filter(|y| wn.share(y)).copied().collect();
            let mut writer_locs = locs(&ws);
            writer_locs.truncate(LOCS_PER_SIDE);
            let mut reader_locs = locs(&rs);
            reader_locs.truncate(LOCS_PER_SIDE);
            Edge {
                writer: w.to_owned(),
                reader: r.to_owned(),
                group: group.to_owned(),
                resource: resource.to_owned(),
                writes,
                reads,
                writer_locs,
                reader_locs,
            }
        })
        .collect();
    Ok(Deps {
        nodes: apps
            .into_iter()
            .map(|a| Node {
                app: a.to_owned(),
                requests: requests.get(a).copied().unwrap_or(0),
            })
            .collect(),
        total_edges,
        edges,
    })
}

fn locs_cell(l: &[LocUse]) -> String {
    l.iter()
        .map(|l| format!("{} {}×{}", l.frame, l.verb, l.hits))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An edge as the table lists it: each side's lines of code in one cell.
#[derive(Default, Serialize)]
struct EdgeCells<'a> {
    writer: &'a str,
    reader: &'a str,
    group: &'a str,
    resource: &'a str,
    writes: u64,
    reads: u64,
    writer_locs: String,
    reader_locs: String,
}

impl Render for Deps {
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<EdgeCells<'_>> = self
            .edges
            .iter()
            .map(|e| EdgeCells {
                writer: &e.writer,
                reader: &e.reader,
                group: &e.group,
                resource: &e.resource,
                writes: e.writes,
                reads: e.reads,
                writer_locs: locs_cell(&e.writer_locs),
                reader_locs: locs_cell(&e.reader_locs),
            })
            .collect();
        vec![Table::of("deps", &rows)]
    }
}

/// `deps`: from the rollups of `0016_deps_rollup.sql` when they hold what the filters ask
/// about, else from a scan of `requests`.
fn deps_query(conn: &Connection, f: &Filters, limit: usize) -> Result<Deps> {
    if !by_app_only(f) {
        return deps_scan(conn, f, limit);
    }
    // The rollups count by app: an app filter that lets through some of an app's identities
    // and not others (a prefix of one version's text) needs the scan.
    let Some(identities_of) = whole_apps(conn, f)? else {
        return deps_scan(conn, f, limit);
    };
    let mut counts = Counts::default();
    // Per interned app: whether the filters let it through.
    let mut allowed: Vec<Option<bool>> = Vec::new();
    // Rows come by group and resource: each is interned once a run of rows.
    let mut last: Option<(String, String, u32, u32)> = None;
    Sql::default().rows(
        conn,
        "SELECT api_group, resource, app, namespace, reads, writes FROM object_access",
        |x| {
            let text = |i| x.get_ref(i).and_then(|v| Ok(v.as_str()?));
            let app_name = text(2)?;
            let app = counts.texts.id(app_name);
            if allowed.len() <= app as usize {
                allowed.resize(app as usize + 1, None);
            }
            let ok =
                *allowed[app as usize].get_or_insert_with(|| identities_of.contains_key(app_name));
            if !ok {
                return Ok(());
            }
            let (group, resource) = (text(0)?, text(1)?);
            let (g, r) = match &last {
                Some((lg, lr, g, r)) if lg == group && lr == resource => (*g, *r),
                _ => {
                    let ids = (counts.texts.id(group), counts.texts.id(resource));
                    last = Some((group.to_owned(), resource.to_owned(), ids.0, ids.1));
                    ids
                }
            };
            let ns = counts.texts.id(text(3)?);
            let k = Kinds {
                reads: x.get::<_, i64>(4)? as u64,
                writes: x.get::<_, i64>(5)? as u64,
            };
            counts.add_ids((g, r, app, ns), k);
            Ok(())
        },
    )?;
    let mut requests: BTreeMap<String, u64> = BTreeMap::new();
    Sql::default().rows(conn, "SELECT app, hits FROM app_requests", |x| {
        let app: String = x.get(0)?;
        if identities_of.contains_key(&app) {
            requests.insert(app, x.get::<_, i64>(1)? as u64);
        }
        Ok(())
    })?;
    let lines = |kept: &BTreeSet<SideKey<'_>>| -> Result<Vec<Use>> {
        let mut of_app = conn
            .prepare_cached(
                "SELECT purpose_id, namespace, verb, hits FROM object_uses \
                 WHERE api_group = ?1 AND resource = ?2 AND app = ?3",
            )
            .map_err(db)?;
        // The busiest sides have many thousand rows (an endpoint, purpose, namespace and verb
        // each): summed per purpose, namespace and verb first, then per line of code.
        let sides: Vec<SideKey<'_>> = kept.iter().copied().collect();
        let mut texts = Texts::default();
        let mut by_purpose: foldhash::HashMap<(usize, i64, u32, u32), u64> = Default::default();
        let mut add = |side: usize, x: &rusqlite::Row<'_>| -> rusqlite::Result<()> {
            let text = |i| x.get_ref(i).and_then(|v| Ok(v.as_str()?));
            let key = (side, x.get(0)?, texts.id(text(1)?), texts.id(text(2)?));
            *by_purpose.entry(key).or_default() += x.get::<_, i64>(3)? as u64;
            Ok(())
        };
        // One range of `object_uses` a side, however many builds its app came with.
        for (side, &(app, group, resource)) in sides.iter().enumerate() {
            let mut rows = of_app
                .query(rusqlite::params![group, resource, app])
                .map_err(db)?;
            while let Some(x) = rows.next().map_err(db)? {
                add(side, x).map_err(db)?;
            }
        }
        let purposes: Vec<i64> = by_purpose
            .keys()
            .map(|k| k.1)
            .filter(|&p| p != 0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Each purpose's own line, as an index in `frames` (purposes share their lines).
        let mut frames: Vec<Frame> = Vec::new();
        let mut frame_ids: foldhash::HashMap<Frame, u32> = Default::default();
        let line_of: foldhash::HashMap<i64, u32> = frames_of(conn, &purposes)?
            .into_iter()
            .filter_map(|(p, fr)| {
                let own = own_line(&fr)?;
                let id = *frame_ids.entry(own).or_insert_with_key(|f| {
                    frames.push(f.clone());
                    frames.len() as u32 - 1
                });
                Some((p, id))
            })
            .collect();
        let mut by_line: foldhash::HashMap<(usize, Option<u32>, u32, u32), u64> =
            Default::default();
        for ((side, p, namespace, verb), hits) in by_purpose {
            let line = line_of.get(&p).copied();
            *by_line.entry((side, line, namespace, verb)).or_default() += hits;
        }
        Ok(by_line
            .into_iter()
            .map(|((side, line, namespace, verb), hits)| {
                let (app, group, resource) = sides[side];
                let namespace = texts.get(namespace);
                Use {
                    app: app.to_owned(),
                    verb: texts.get(verb).to_owned(),
                    group: group.to_owned(),
                    resource: resource.to_owned(),
                    namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
                    loc: line.map(|l| frames[l as usize].clone()),
                    hits,
                }
            })
            .collect())
    };
    assemble(&counts, &requests, limit, lines)
}

/// Each app's requests (all of them), by app.
fn app_requests(conn: &Connection, f: &Filters) -> Result<BTreeMap<String, u64>> {
    let mut q = Sql::default();
    let s = src(&mut q, f);
    Ok(q.rows(
        conn,
        &format!(
            "{s} SELECT COALESCE(i.name, i.text), SUM(s.hits) FROM src s \
             JOIN identities i ON i.id = s.identity_id GROUP BY 1"
        ),
        |x| Ok((x.get::<_, String>(0)?, x.get::<_, i64>(1)? as u64)),
    )?
    .into_iter()
    .collect())
}

/// `deps` from a scan of `requests`.
fn deps_scan(conn: &Connection, f: &Filters, limit: usize) -> Result<Deps> {
    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let w = when(&mut q, f);
    let rows = q.rows(
        conn,
        &format!(
            "SELECT COALESCE(i.name, i.text), r.purpose_id, r.verb, COALESCE(r.api_group, ''), r.resource, \
             NULLIF(r.namespace, ''), COUNT(*) \
             FROM requests r{j} JOIN identities i ON i.id = r.identity_id \
             WHERE {w} AND r.resource IS NOT NULL \
             AND r.verb IN ('create', 'update', 'patch', 'delete', 'deletecollection', 'get', 'list', 'watch') \
             GROUP BY 1, 2, 3, 4, 5, 6"
        ),
        |x| {
            Ok((
                x.get::<_, String>(0)?,
                x.get::<_, Option<i64>>(1)?,
                x.get::<_, String>(2)?,
                x.get::<_, String>(3)?,
                x.get::<_, String>(4)?,
                x.get::<_, Option<String>>(5)?,
                x.get::<_, i64>(6)? as u64,
            ))
        },
    )?;
    let purposes: Vec<i64> = rows
        .iter()
        .filter_map(|r| r.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let frames = frames_of(conn, &purposes)?;
    let uses: Vec<Use> = rows
        .into_iter()
        .map(|(app, p, verb, group, resource, namespace, hits)| Use {
            app,
            verb,
            group,
            resource,
            namespace,
            loc: p.and_then(|p| frames.get(&p)).and_then(|fr| own_line(fr)),
            hits,
        })
        .collect();
    Ok(build(&uses, &app_requests(conn, f)?, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options("deps", &[("limit", "7")], Params { limit: 7 });
    }

    fn u(app: &str, verb: &str, res: &str, line: Option<u32>, hits: u64) -> Use {
        Use {
            app: app.into(),
            verb: verb.into(),
            group: String::new(),
            resource: res.into(),
            namespace: Some("shop".into()),
            loc: line.map(|l| Frame {
                function: format!("{app}::main"),
                file: "src/main.rs".into(),
                line: l,
            }),
            hits,
        }
    }

    #[test]
    fn joins_writers_to_readers_of_the_same_resource() {
        let uses = vec![
            u("writer", "create", "configmaps", Some(10), 2),
            u("writer", "patch", "configmaps", Some(11), 3),
            u("writer", "get", "configmaps", Some(12), 1), // its own read: no self edge
            u("reader", "watch", "configmaps", Some(20), 5),
            u("reader", "list", "configmaps", None, 1),
            u("reader", "list", "secrets", Some(21), 1), // nobody writes secrets
            u("other", "create", "pods", None, 1),
            // Another namespace shares no object with the writer's...
            Use {
                namespace: Some("elsewhere".into()),
                ..u("third", "get", "configmaps", Some(30), 4)
            },
            // ...but a watch across all namespaces does.
            Use {
                namespace: None,
                ..u("fourth", "watch", "configmaps", Some(40), 1)
            },
        ];
        let mut req = BTreeMap::new();
        req.insert("writer".to_string(), 6);
        req.insert("reader".to_string(), 7);
        let d = build(&uses, &req, 10);
        assert_eq!(d.total_edges, 2);
        assert_eq!(build(&uses, &req, 1).edges.len(), 1);
        let nodes: Vec<(&str, u64)> = d
            .nodes
            .iter()
            .map(|n| (n.app.as_str(), n.requests))
            .collect();
        assert_eq!(nodes, [("fourth", 0), ("reader", 7), ("writer", 6)]);
        let pairs: Vec<(&str, &str)> = d
            .edges
            .iter()
            .map(|e| (e.writer.as_str(), e.reader.as_str()))
            .collect();
        assert_eq!(pairs, [("writer", "fourth"), ("writer", "reader")]);
        assert_eq!((d.edges[0].writes, d.edges[0].reads), (5, 1));
        let e = &d.edges[1];
        assert_eq!(
            (
                e.writer.as_str(),
                e.reader.as_str(),
                e.resource.as_str(),
                e.writes,
                e.reads
            ),
            ("writer", "reader", "configmaps", 5, 6)
        );
        assert_eq!(
            e.writer_locs
                .iter()
                .map(|l| (l.frame.line, l.verb.as_str(), l.hits))
                .collect::<Vec<_>>(),
            [(11, "patch", 3), (10, "create", 2)]
        );
        assert_eq!(
            e.reader_locs
                .iter()
                .map(|l| (l.frame.line, l.hits))
                .collect::<Vec<_>>(),
            [(20, 5)]
        );
        let t = d.tables();
        assert_eq!(
            t[0].rows[1][6],
            "writer::main@src/main.rs:11 patch×3; writer::main@src/main.rs:10 create×2"
        );
    }
}
