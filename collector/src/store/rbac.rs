//! `apps --rbac`'s answer kept per app (`0017_rbac_grants.sql`): the set of accesses it is
//! derived from grows as `access` gains keys ([`add`]), listing the identities that gained one
//! in `rbac_stale`; a fold of everything derives their apps again ([`refresh`]), and a query
//! derives the apps still stale itself ([`derive_app`]), so an answer never waits on a fold.
//!
//! An app's answer depends on the whole of its set (resources merge into rules by their
//! verbs), so a stale app is derived again whole; its set is one range of `access_grants` per
//! identity.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, params};

use crate::query::rbac::{self, AccessRef, AppRbac, Deriver};

/// An access of a new `access` key, as `access_grants` keys it (field order = its primary
/// key's, so sorted grants insert in key order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Grant<'a> {
    pub identity: i64,
    pub url: bool,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub verb: &'a str,
    pub user: i64,
}

/// Adds the accesses of new `access` keys to the set; an identity that gained one is stale.
/// Most are in it already (the same access at another endpoint, or counted again after a
/// remap).
pub(super) fn add(conn: &Connection, mut grants: Vec<Grant<'_>>) -> rusqlite::Result<()> {
    if grants.is_empty() {
        return Ok(());
    }
    // In key order: neighbouring keys share pages, which stay in the page cache.
    grants.sort_unstable();
    grants.dedup();
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO access_grants (identity_id, url, api_group, resource, \
         subresource, namespace, verb, user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut stale =
        conn.prepare_cached("INSERT OR IGNORE INTO rbac_stale (identity_id) VALUES (?1)")?;
    let mut marked = None;
    for g in grants {
        let new = insert.execute(params![
            g.identity,
            g.url,
            g.group,
            g.resource,
            g.subresource,
            g.namespace,
            g.verb,
            g.user
        ])? == 1;
        if new && marked != Some(g.identity) {
            stale.execute(params![g.identity])?;
            marked = Some(g.identity);
        }
    }
    Ok(())
}

/// Derives every stale app again and keeps its answer; the stale list empties.
pub(crate) fn refresh(conn: &Connection) -> rusqlite::Result<()> {
    let stale = stale_apps(conn)?;
    if stale.is_empty() {
        return Ok(());
    }
    let mut put = conn.prepare_cached(
        "INSERT INTO rbac_apps (app, json) VALUES (?1, ?2) \
         ON CONFLICT DO UPDATE SET json = excluded.json",
    )?;
    let mut gone = conn.prepare_cached("DELETE FROM rbac_apps WHERE app = ?1")?;
    // One app at a time: the writer holds one app's rules, not every app's.
    for (app, ids) in identities_of(conn, stale)? {
        match derive_app(conn, &ids)? {
            Some(a) => put.execute(params![app, rbac::element_json(&a)])?,
            None => gone.execute(params![app])?,
        };
    }
    conn.execute("DELETE FROM rbac_stale", [])?;
    Ok(())
}

/// The apps (identity name, else text) of the identities that gained an access since their
/// app's answer was kept, by name.
pub(crate) fn stale_apps(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    conn.prepare_cached(
        "SELECT DISTINCT COALESCE(i.name, i.text) FROM rbac_stale s \
         JOIN identities i ON i.id = s.identity_id",
    )?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// Every identity of each of `apps`, by app: one pass over `identities`, which has no index
/// by name (a log of distinct user agents makes an identity per request).
pub(crate) fn identities_of(
    conn: &Connection,
    apps: BTreeSet<String>,
) -> rusqlite::Result<BTreeMap<String, Vec<i64>>> {
    let mut of: BTreeMap<String, Vec<i64>> = apps.into_iter().map(|a| (a, Vec::new())).collect();
    if of.is_empty() {
        return Ok(of);
    }
    let mut st = conn.prepare_cached("SELECT COALESCE(name, text), id FROM identities")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(ids) = of.get_mut(r.get_ref(0)?.as_str()?) {
            ids.push(r.get(1)?);
        }
    }
    Ok(of)
}

/// The kept answers: (app, its element of the answer's JSON), by app.
pub(crate) fn kept(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare_cached("SELECT app, json FROM rbac_apps ORDER BY app")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Derives one app's RBAC from the accesses of its identities, `ids` ([`identities_of`];
/// `None`: they have none).
pub(crate) fn derive_app(conn: &Connection, ids: &[i64]) -> rusqlite::Result<Option<AppRbac>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM identities i CROSS JOIN access_grants a ON a.identity_id = i.id \
         LEFT JOIN users u ON u.id = a.user_id WHERE i.id = ?1"
    ))?;
    let mut d = Deriver::default();
    for id in ids {
        add_rows(&mut d, st.query(params![id])?)?;
    }
    Ok(d.finish().into_iter().next())
}

/// What [`add_rows`] reads of `access_grants a`, `identities i` and `users u`.
pub(crate) const COLUMNS: &str = "COALESCE(i.name, i.text), u.name, a.verb, a.api_group, a.url, \
     a.resource, a.subresource, a.namespace";

/// Adds rows of [`COLUMNS`] to `d`. A non-resource URL's path is in `resource`; '' stands for
/// an absent field, which the deriver takes as the same.
pub(crate) fn add_rows(d: &mut Deriver, mut rows: rusqlite::Rows<'_>) -> rusqlite::Result<()> {
    while let Some(r) = rows.next()? {
        let text = |i| r.get_ref(i).and_then(|v| Ok(v.as_str()?));
        let url = r.get::<_, bool>(4)?;
        let resource = text(5)?;
        d.add(AccessRef {
            app: text(0)?,
            user: r.get_ref(1)?.as_str_or_null()?,
            verb: text(2)?,
            api_group: Some(text(3)?),
            resource: (!url).then_some(resource),
            subresource: Some(text(6)?),
            namespace: Some(text(7)?),
            uri: if url { resource } else { "" },
        });
    }
    Ok(())
}
