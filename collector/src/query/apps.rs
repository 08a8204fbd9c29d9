//! `apps`: the program identities seen and what they use; `apps --rbac`: the least-privilege
//! RBAC each needs for what it did ([`rbac`] derives it).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, Row};
use serde::Serialize;

use super::rbac::{self, AppRbac};
use super::sql::{Sql, by_app_only, db, release, src, time, when, who, whole_apps};
use super::{Answer, Filters, Given, Param, Query, Render, Result, Table};
use crate::store;

/// `apps`' options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// RBAC rules instead.
    pub rbac: bool,
}

impl Query for Params {
    const NAME: &'static str = "apps";
    const PARAMS: &'static [Param] = &[Param::switch("rbac", "Least-privilege RBAC YAML per app")];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            rbac: g.switch("rbac")?,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(if self.rbac {
            rbac(conn, f)?
        } else {
            Answer::new(apps(conn, f)?)
        })
    }
}

/// An endpoint an app used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsedEndpoint {
    /// operationId.
    pub endpoint: String,
    /// Requests.
    pub hits: u64,
}

/// `apps`: one identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppRow {
    /// Name (the identity text when unparsed).
    pub app: String,
    /// Identity text.
    pub identity: String,
    /// Version.
    pub version: Option<String>,
    /// OS.
    pub os: Option<String>,
    /// Architecture.
    pub arch: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Commit.
    pub commit: Option<String>,
    /// Built by.
    pub built_by: Option<String>,
    /// Built at.
    pub built_at: Option<String>,
    /// Requests.
    pub requests: u64,
    /// Distinct endpoints.
    pub endpoints: u64,
    /// First request.
    pub first_seen: String,
    /// Last request.
    pub last_seen: String,
    /// Endpoints by hits.
    pub used: Vec<UsedEndpoint>,
}

/// An app as the table lists it (without what it used).
#[derive(Default, Serialize)]
struct AppCells<'a> {
    app: &'a str,
    version: Option<&'a str>,
    commit: Option<&'a str>,
    built_by: Option<&'a str>,
    built_at: Option<&'a str>,
    requests: u64,
    endpoints: u64,
    first_seen: &'a str,
    last_seen: &'a str,
    identity: &'a str,
}

impl Render for Vec<AppRow> {
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<AppCells<'_>> = self
            .iter()
            .map(|r| AppCells {
                app: &r.app,
                version: r.version.as_deref(),
                commit: r.commit.as_deref(),
                built_by: r.built_by.as_deref(),
                built_at: r.built_at.as_deref(),
                requests: r.requests,
                endpoints: r.endpoints,
                first_seen: &r.first_seen,
                last_seen: &r.last_seen,
                identity: &r.identity,
            })
            .collect();
        vec![Table::of("apps", &rows)]
    }
}

impl Render for Vec<AppRbac> {
    fn tables(&self) -> Vec<Table> {
        rbac::tables(self)
    }
    fn text(&self) -> String {
        rbac::yaml_all(self)
    }
}

/// `apps`.
fn apps(conn: &Connection, f: &Filters) -> Result<Vec<AppRow>> {
    let (rid, _, _) = release(conn, f)?;
    let mut q = Sql::default();
    let s = src(&mut q, f);
    let r = q.p(rid);
    let n = |x: &Row<'_>, i| x.get::<_, i64>(i).map(|v| v as u64);
    let mut rows = q.rows(
        conn,
        &format!(
            "{s}, a AS (SELECT s.identity_id, SUM(s.hits) AS hits, \
             COUNT(DISTINCT e.id) AS eps, MIN(s.first_us) AS first, MAX(s.last_us) AS last FROM src s \
             LEFT JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             WHERE s.identity_id <> 0 GROUP BY s.identity_id) \
             SELECT i.id, COALESCE(i.name, i.text), i.text, i.version, i.os, i.arch, i.source, \
             i.source_commit, i.built_by, i.built_at, a.hits, a.eps, a.first, a.last \
             FROM a JOIN identities i ON i.id = a.identity_id"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                AppRow {
                    app: x.get(1)?,
                    identity: x.get(2)?,
                    version: x.get(3)?,
                    os: x.get(4)?,
                    arch: x.get(5)?,
                    source: x.get(6)?,
                    commit: x.get(7)?,
                    built_by: x.get(8)?,
                    built_at: x.get(9)?,
                    requests: n(x, 10)?,
                    endpoints: n(x, 11)?,
                    first_seen: time(x.get(12)?),
                    last_seen: time(x.get(13)?),
                    used: vec![],
                },
            ))
        },
    )?;
    let mut used: HashMap<i64, Vec<UsedEndpoint>> = HashMap::new();
    for (id, u) in q.rows(
        conn,
        &format!(
            "{s} SELECT s.identity_id, e.operation_id, SUM(s.hits) FROM src s \
             JOIN endpoints e ON e.id = s.endpoint_id AND e.release_id = {r} \
             WHERE s.identity_id <> 0 GROUP BY s.identity_id, e.id ORDER BY 1, 3 DESC, 2"
        ),
        |x| {
            Ok((
                x.get::<_, i64>(0)?,
                UsedEndpoint {
                    endpoint: x.get(1)?,
                    hits: n(x, 2)?,
                },
            ))
        },
    )? {
        used.entry(id).or_default().push(u);
    }
    for (id, row) in &mut rows {
        row.used = used.remove(id).unwrap_or_default();
    }
    let mut rows: Vec<AppRow> = rows.into_iter().map(|(_, r)| r).collect();
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| (&a.app, &a.identity).cmp(&(&b.app, &b.identity)))
    });
    Ok(rows)
}

/// `apps --rbac`: from the answers kept per app (`0017_rbac_grants.sql`, `store::rbac`) when
/// the filters ask about whole apps ([`whole_apps`]), deriving the apps stale there; with
/// other filters, from a scan of `requests`.
fn rbac(conn: &Connection, f: &Filters) -> Result<Answer> {
    if !by_app_only(f) {
        return Ok(Answer::new(rbac::derive(&accesses_scan(conn, f)?)));
    }
    let wanted = match &f.app {
        None => None,
        Some(_) => match whole_apps(conn, f)? {
            Some(apps) => Some(apps),
            None => return Ok(Answer::new(rbac::derive(&accesses_scan(conn, f)?))),
        },
    };
    // Stale first: an app kept after this read is at least as current as the list.
    let stale = store::rbac::stale_apps(conn).map_err(db)?;
    let mut apps: BTreeMap<String, String> = match &wanted {
        None => store::rbac::kept(conn).map_err(db)?.into_iter().collect(),
        Some(w) => {
            let mut kept = BTreeMap::new();
            for app in w.keys() {
                if let Some(json) = store::rbac::kept_of(conn, app).map_err(db)? {
                    kept.insert(app.clone(), json);
                }
            }
            kept
        }
    };
    let wanted = |app: &str| wanted.as_ref().is_none_or(|w| w.contains_key(app));
    for app in stale.into_iter().filter(|a| wanted(a)) {
        match store::rbac::derive_app(conn, &app).map_err(db)? {
            Some(a) => apps.insert(app, rbac::element_json(&a)),
            None => apps.remove(&app),
        };
    }
    Ok(Answer::new(Kept(apps.into_values().collect())))
}

/// `apps --rbac` as kept: each app's element of the answer's JSON, by app. Printed as kept;
/// read back for tables and YAML.
#[derive(Debug)]
struct Kept(Vec<String>);

impl Kept {
    fn apps(&self) -> Vec<AppRbac> {
        self.0
            .iter()
            .map(|e| rbac::parse_element(e).expect("kept answers are the answer's JSON"))
            .collect()
    }
}

impl Serialize for Kept {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.apps().serialize(s)
    }
}

impl Render for Kept {
    fn tables(&self) -> Vec<Table> {
        rbac::tables(&self.apps())
    }
    fn text(&self) -> String {
        rbac::yaml_all(&self.apps())
    }
    fn json(&self) -> String {
        rbac::json_of(&self.0)
    }
}

/// An access as the scan selects it: app, user, verb, group, resource, subresource,
/// namespace, request URI of a non-resource URL.
fn access(x: &rusqlite::Row<'_>) -> rusqlite::Result<rbac::Access> {
    Ok(rbac::Access {
        app: x.get(0)?,
        user: x.get(1)?,
        verb: x.get(2)?,
        api_group: x.get(3)?,
        resource: x.get(4)?,
        subresource: x.get(5)?,
        namespace: x.get(6)?,
        uri: x.get(7)?,
    })
}

/// Observed accesses per app, from a scan of `requests`.
fn accesses_scan(conn: &Connection, f: &Filters) -> Result<Vec<rbac::Access>> {
    let mut q = Sql::default();
    let j = who(&mut q, f, "r");
    let w = when(&mut q, f);
    q.rows(
        conn,
        &format!(
            "SELECT COALESCE(i.name, i.text), u.name, r.verb, r.api_group, r.resource, r.subresource, \
             r.namespace, CASE WHEN r.resource IS NULL THEN r.request_uri ELSE '' END AS uri \
             FROM requests r{j} JOIN identities i ON i.id = r.identity_id \
             LEFT JOIN users u ON u.id = COALESCE(r.impersonated_user_id, r.user_id) \
             WHERE {w} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
        ),
        access,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options("apps", &[("rbac", "true")], Params { rbac: true });
    }
}
