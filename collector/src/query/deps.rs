//! Dependencies between programs through the objects they share: app A writes (create, update,
//! patch, delete, deletecollection) objects of a resource that app B reads (get, list, watch).
//! They share objects when both use the same namespace, or when either side is cluster-wide
//! (a cluster-scoped resource, or a list/watch across all namespaces). A write to a subresource
//! (`pods/status`) writes the object, so it counts for the resource.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    let matching = |writes: &[&Use], reads: &[&Use]| -> (u64, u64) {
        let w = writes
            .iter()
            .filter(|x| reads.iter().any(|y| shared(&x.namespace, &y.namespace)))
            .map(|u| u.hits)
            .sum();
        let r = reads
            .iter()
            .filter(|y| writes.iter().any(|x| shared(&x.namespace, &y.namespace)))
            .map(|u| u.hits)
            .sum();
        (w, r)
    };
    // Counts first, for every pair; lines of code only for the edges kept.
    let mut all: Vec<(u64, u64, &str, &str, &str, &str)> = Vec::new();
    for ((group, resource), sides) in &by {
        for (w, (writes, _)) in sides.iter().filter(|(_, s)| !s.0.is_empty()) {
            for (r, (_, reads)) in sides.iter().filter(|(_, s)| !s.1.is_empty()) {
                if w == r {
                    continue;
                }
                let (wh, rh) = matching(writes, reads);
                if wh > 0 && rh > 0 {
                    all.push((wh, rh, w, r, group, resource));
                }
            }
        }
    }
    let total_edges = all.len() as u64;
    all.sort_by(|a, b| {
        (b.0 + b.1)
            .cmp(&(a.0 + a.1))
            .then_with(|| (a.4, a.5, a.2, a.3).cmp(&(b.4, b.5, b.2, b.3)))
    });
    all.truncate(limit);
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

/// `deps`: from the rollups of migration 13 when they hold what the filters ask about, else
/// from a scan of `requests`.
fn deps_query(conn: &Connection, f: &Filters, limit: usize) -> Result<Deps> {
    if !by_app_only(f) {
        return deps_scan(conn, f, limit);
    }
    // Requests per endpoint, identity and object read or written; summed per app below.
    let mut q = Sql::default();
    let j = who(&mut q, f, "a");
    let rows = q.rows(
        conn,
        &format!(
            "SELECT a.endpoint_id, a.identity_id, a.api_group, a.resource, a.namespace, a.verb, \
             SUM(a.hits) FROM access a{j} WHERE a.url = 0 AND a.verb IN ({OBJECT_VERBS}) \
             GROUP BY a.endpoint_id, a.identity_id, a.api_group, a.resource, a.namespace, a.verb"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                x.get::<_, i64>(1)?,
                x.get::<_, String>(2)?,
                x.get::<_, String>(3)?,
                x.get::<_, String>(4)?,
                x.get::<_, String>(5)?,
                x.get::<_, i64>(6)? as u64,
            ))
        },
    )?;
    let names = app_names(conn)?;
    // (app, verb, group, resource, namespace) -> requests; and where each app's uses of a
    // resource are: (endpoint, identity) pairs.
    let mut counts: HashMap<(&str, String, String, String, String), u64> = HashMap::new();
    let mut at: HashMap<(&str, String, String), BTreeSet<(i64, i64)>> = HashMap::new();
    for (endpoint, identity, group, resource, namespace, verb, hits) in rows {
        let Some(app) = names.get(&identity) else {
            continue;
        };
        at.entry((app, group.clone(), resource.clone()))
            .or_default()
            .insert((endpoint, identity));
        *counts
            .entry((app, verb, group, resource, namespace))
            .or_default() += hits;
    }
    let uses: Vec<Use> = counts
        .into_iter()
        .map(|((app, verb, group, resource, namespace), hits)| Use {
            app: app.to_owned(),
            verb,
            group,
            resource,
            namespace: (!namespace.is_empty()).then_some(namespace),
            loc: None,
            hits,
        })
        .collect();
    let lines = |kept: &BTreeSet<Side<'_>>| -> Result<Vec<Use>> {
        let mut rows = Vec::new();
        for &(app, group, resource) in kept {
            let key = (app, group.to_owned(), resource.to_owned());
            for &(endpoint, identity) in at.get(&key).into_iter().flatten() {
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
    assemble(&uses, &app_requests(conn, f)?, limit, lines)
}

/// The verbs of `deps`' reads and writes, as an SQL list.
const OBJECT_VERBS: &str =
    "'create', 'update', 'patch', 'delete', 'deletecollection', 'get', 'list', 'watch'";

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
pub(crate) fn deps_scan(conn: &Connection, f: &Filters, limit: usize) -> Result<Deps> {
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
