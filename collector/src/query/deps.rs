//! Dependencies between programs through the objects they share: app A writes (create, update,
//! patch, delete, deletecollection) objects of a resource that app B reads (get, list, watch).
//! They share objects when both use the same namespace, or when either side is cluster-wide
//! (a cluster-scoped resource, or a list/watch across all namespaces). A write to a subresource
//! (`pods/status`) writes the object, so it counts for the resource.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, app_names, by_app_only, frames_of, own_line, src, when, who};
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

/// One app's reads (or writes) of a resource, summed per namespace.
#[derive(Debug, Default)]
struct Summed {
    total: u64,
    /// Hits without a namespace (cluster-scoped, or across all namespaces).
    none: u64,
    has_none: bool,
    /// Hits per namespace id, by id.
    by_ns: Vec<(u32, u64)>,
}

impl Summed {
    fn of<'a>(uses: &[&'a Use], names: &mut HashMap<&'a str, u32>) -> Summed {
        let mut s = Summed::default();
        let mut by: BTreeMap<u32, u64> = BTreeMap::new();
        for u in uses {
            s.total += u.hits;
            match &u.namespace {
                None => {
                    s.has_none = true;
                    s.none += u.hits;
                }
                Some(ns) => {
                    let next = names.len() as u32;
                    *by.entry(*names.entry(ns).or_insert(next)).or_default() += u.hits;
                }
            }
        }
        s.by_ns = by.into_iter().collect();
        s
    }

    /// The hits of these uses that share a namespace with some use of `other` ([`shared`]).
    fn matched(&self, other: &Summed) -> u64 {
        if other.total == 0 {
            return 0;
        }
        if other.has_none {
            return self.total;
        }
        let mut hits = self.none;
        let mut theirs = other.by_ns.iter().peekable();
        for &(ns, h) in &self.by_ns {
            while theirs.next_if(|&&(o, _)| o < ns).is_some() {}
            if theirs.peek().is_some_and(|&&(o, _)| o == ns) {
                hits += h;
            }
        }
        hits
    }
}

fn shared(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Lines of code listed per side of an edge.
const LOCS_PER_SIDE: usize = 10;

/// Joins writers to readers of each resource; `requests` gives each app's total requests.
/// Keeps the `limit` edges with the most requests (writes + reads), each with its
/// `LOCS_PER_SIDE` busiest lines of code per side; `total_edges` counts them all.
pub fn build(uses: &[Use], requests: &BTreeMap<String, u64>, limit: usize) -> Deps {
    let lines = |sides: &BTreeSet<Side<'_>>| -> Result<Vec<Use>> {
        Ok(uses
            .iter()
            .filter(|u| sides.contains(&(u.app.as_str(), u.group.as_str(), u.resource.as_str())))
            .cloned()
            .collect())
    };
    assemble(uses, requests, limit, lines).expect("uses at hand")
}

/// An app's use of a resource: (app, group, resource).
type Side<'a> = (&'a str, &'a str, &'a str);

/// [`build`], where `uses` may come without lines of code: `lines` gives the uses with their
/// lines of code of the sides of the edges kept, which must sum to the same requests per app,
/// verb, resource and namespace.
fn assemble(
    uses: &[Use],
    requests: &BTreeMap<String, u64>,
    limit: usize,
    lines: impl FnOnce(&BTreeSet<Side<'_>>) -> Result<Vec<Use>>,
) -> Result<Deps> {
    // (group, resource) -> app -> (writes, reads)
    type Sides<'a> = BTreeMap<&'a str, (Vec<&'a Use>, Vec<&'a Use>)>;
    fn sides(uses: &[Use]) -> BTreeMap<(&str, &str), Sides<'_>> {
        let mut by: BTreeMap<(&str, &str), Sides<'_>> = BTreeMap::new();
        for u in uses {
            let side = by
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
        by
    }
    let by = sides(uses);
    // Counts first, for every pair; lines of code only for the edges kept. A use counts for an
    // edge when the other side shares a namespace with it, so each side is summed per
    // namespace, and the `limit` best edges are kept as they come.
    let mut total_edges = 0u64;
    type Ranked<'a> = (Reverse<u64>, &'a str, &'a str, &'a str, &'a str, u64, u64);
    let mut best: BinaryHeap<Ranked<'_>> = BinaryHeap::new();
    for ((group, resource), sides) in &by {
        let mut names: HashMap<&str, u32> = HashMap::new();
        let summed: Vec<(&str, Summed, Summed)> = sides
            .iter()
            .map(|(app, (writes, reads))| {
                (
                    *app,
                    Summed::of(writes, &mut names),
                    Summed::of(reads, &mut names),
                )
            })
            .collect();
        for (w, writes, _) in summed.iter().filter(|s| s.1.total > 0) {
            for (r, _, reads) in summed.iter().filter(|s| s.2.total > 0) {
                if w == r {
                    continue;
                }
                let (wh, rh) = (writes.matched(reads), reads.matched(writes));
                if wh == 0 || rh == 0 {
                    continue;
                }
                total_edges += 1;
                let ranked = (Reverse(wh + rh), *group, *resource, *w, *r, wh, rh);
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
    let kept: BTreeSet<Side<'_>> = all
        .iter()
        .flat_map(|&(_, _, w, r, g, res)| [(w, g, res), (r, g, res)])
        .collect();
    let detailed = lines(&kept)?;
    let by_line = sides(&detailed);
    let mut apps: BTreeSet<&str> = BTreeSet::new();
    let edges = all
        .into_iter()
        .map(|(writes, reads, w, r, group, resource)| {
            apps.insert(w);
            apps.insert(r);
            let side = |app| by_line.get(&(group, resource)).and_then(|s| s.get(app));
            let ws = side(w).map_or(&[][..], |s| &s.0[..]);
            let rs = side(r).map_or(&[][..], |s| &s.1[..]);
            let ws: Vec<&Use> = ws
                .iter()
                .filter(|x| rs.iter().any(|y| shared(&x.namespace, &y.namespace)))
                .copied()
                .collect();
            let rs: Vec<&Use> = rs
                .iter()
                .filter(|y| ws.iter().any(|x| shared(&x.namespace, &y.namespace)))
                .copied()
                .collect();
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

/// `deps`: from the rollups of `0015_access_rollups.sql` when they hold what the filters ask about, else
/// from a scan of `requests`.
fn deps_query(conn: &Connection, f: &Filters, limit: usize) -> Result<Deps> {
    if !by_app_only(f) {
        return deps_scan(conn, f, limit);
    }
    // Requests per endpoint, identity and object read or written, summed per app, resource,
    // namespace and whether read or written: all the join counts. Texts are interned as they
    // come (the table repeats a few hundred of them).
    let names = app_names(conn)?;
    let mut texts: foldhash::HashMap<String, u32> = foldhash::HashMap::default();
    let mut intern = |t: &str| -> u32 {
        if let Some(&i) = texts.get(t) {
            return i;
        }
        let i = texts.len() as u32;
        texts.insert(t.to_owned(), i);
        i
    };
    // (identity, group, resource, namespace, writes) -> requests
    let mut counts: foldhash::HashMap<(i64, u32, u32, u32, bool), u64> = Default::default();
    // (identity, group, resource) -> the endpoints with its uses of the resource
    let mut at: foldhash::HashMap<(i64, u32, u32), Vec<i64>> = Default::default();
    // identity -> its requests (all of them: `access` counts every request with an identity)
    let mut requests: foldhash::HashMap<i64, u64> = Default::default();
    let mut q = Sql::default();
    let j = who(&mut q, f, "a");
    q.rows(
        conn,
        &format!(
            "SELECT a.endpoint_id, a.identity_id, a.url, a.api_group, a.resource, a.namespace, \
             a.verb, a.hits FROM access a{j}"
        ),
        |x| {
            let text = |i| x.get_ref(i).and_then(|v| Ok(v.as_str()?));
            let (endpoint, identity): (i64, i64) = (x.get(0)?, x.get(1)?);
            let hits = x.get::<_, i64>(7)? as u64;
            *requests.entry(identity).or_default() += hits;
            let verb = text(6)?;
            if x.get::<_, bool>(2)? || !(is_write(verb) || is_read(verb)) {
                return Ok(());
            }
            let (group, resource) = (intern(text(3)?), intern(text(4)?));
            let namespace = intern(text(5)?);
            let writes = is_write(verb);
            *counts
                .entry((identity, group, resource, namespace, writes))
                .or_default() += hits;
            let endpoints = at.entry((identity, group, resource)).or_default();
            if endpoints.last() != Some(&endpoint) {
                endpoints.push(endpoint);
            }
            Ok(())
        },
    )?;
    let mut text_of = vec![""; texts.len()];
    for (t, &i) in &texts {
        text_of[i as usize] = t;
    }
    // Per app: its identities' uses summed, as the scan groups them by app name.
    let mut by_app: BTreeMap<(&str, u32, u32, u32, bool), u64> = BTreeMap::new();
    let mut identities_of: HashMap<&str, Vec<i64>> = HashMap::new();
    for (&(identity, group, resource, namespace, writes), &hits) in &counts {
        if let Some(app) = names.get(&identity) {
            *by_app
                .entry((app, group, resource, namespace, writes))
                .or_default() += hits;
        }
    }
    for (id, app) in &names {
        identities_of.entry(app).or_default().push(*id);
    }
    // The joins tell reads from writes only: any verb of the kind stands for all of them.
    let uses: Vec<Use> = by_app
        .into_iter()
        .map(|((app, group, resource, namespace, writes), hits)| Use {
            app: app.to_owned(),
            verb: if writes { "update" } else { "get" }.to_owned(),
            group: text_of[group as usize].to_owned(),
            resource: text_of[resource as usize].to_owned(),
            namespace: Some(text_of[namespace as usize])
                .filter(|ns| !ns.is_empty())
                .map(str::to_owned),
            loc: None,
            hits,
        })
        .collect();
    let lines = |kept: &BTreeSet<Side<'_>>| -> Result<Vec<Use>> {
        let mut rows = Vec::new();
        let id = |t: &str| texts.get(t).copied();
        for &(app, group, resource) in kept {
            let (Some(g), Some(res)) = (id(group), id(resource)) else {
                continue;
            };
            let identities = identities_of.get(app).into_iter().flatten();
            let found = identities.flat_map(|&identity| {
                let endpoints = at.get(&(identity, g, res)).into_iter().flatten();
                endpoints.map(move |&endpoint| (endpoint, identity))
            });
            for (endpoint, identity) in found.collect::<BTreeSet<_>>() {
                let mut q = Sql::default();
                let (e, i) = (q.p(endpoint), q.p(identity));
                let (g, r) = (q.p(group.to_owned()), q.p(resource.to_owned()));
                let found = q.rows(
                    conn,
                    &format!(
                        "SELECT purpose_id, namespace, verb, hits FROM object_uses \
                         WHERE endpoint_id = {e} AND identity_id = {i} AND api_group = {g} \
                         AND resource = {r}"
                    ),
                    |x| {
                        Ok((
                            x.get::<_, i64>(0)?,
                            x.get::<_, String>(1)?,
                            x.get::<_, String>(2)?,
                            x.get::<_, i64>(3)? as u64,
                        ))
                    },
                )?;
                rows.extend(found.into_iter().map(|r| (app, group, resource, r)));
            }
        }
        let purposes: Vec<i64> = rows
            .iter()
            .map(|r| r.3.0)
            .filter(|&p| p != 0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let frames = frames_of(conn, &purposes)?;
        Ok(rows
            .into_iter()
            .map(|(app, group, resource, (p, namespace, verb, hits))| Use {
                app: app.to_owned(),
                verb,
                group: group.to_owned(),
                resource: resource.to_owned(),
                namespace: (!namespace.is_empty()).then_some(namespace),
                loc: frames.get(&p).and_then(|fr| own_line(fr)),
                hits,
            })
            .collect())
    };
    let mut per_app: BTreeMap<String, u64> = BTreeMap::new();
    for (identity, hits) in requests {
        if let Some(app) = names.get(&identity) {
            *per_app.entry(app.clone()).or_default() += hits;
        }
    }
    assemble(&uses, &per_app, limit, lines)
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
