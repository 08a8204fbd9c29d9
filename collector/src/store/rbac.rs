//! `apps --rbac`'s answer kept per app (`0017_rbac_grants.sql`): the set of accesses it is
//! derived from grows as folds offer it their accesses ([`add`]), listing the apps that
//! gained one in `rbac_stale`; the end of a bulk run, a fold asked for (`Store::fold`) and,
//! serving, an `apps --rbac` query through the API derive them again ([`refresh`]), and a
//! query derives the apps still stale itself ([`derive_app`]), so an answer never waits on a
//! fold.
//!
//! An app's answer depends on the whole of its set (resources merge into rules by their
//! verbs), so a stale app is derived again whole, from its range of `access_grants`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::query::rbac::{self, AccessRef, AppRbac, Deriver};

/// An access, as `access_grants` keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grant<'a> {
    pub app: &'a str,
    pub url: bool,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub verb: &'a str,
    pub user: i64,
}

/// Adds accesses to the set, each once, in about their key order (the fold's, texts by first
/// appearance: neighbouring keys share pages, which stay in the page cache); an app that gained one is stale. Most are in it already (the same access at
/// another endpoint or by another build of the app, or counted again after a remap).
pub(super) fn add<'a>(
    conn: &Connection,
    grants: impl IntoIterator<Item = Grant<'a>>,
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO access_grants (app, url, api_group, resource, subresource, \
         namespace, verb, user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut stale = conn.prepare_cached("INSERT OR IGNORE INTO rbac_stale (app) VALUES (?1)")?;
    let mut marked = None;
    for g in grants {
        let new = insert.execute(params![
            g.app,
            g.url,
            g.group,
            g.resource,
            g.subresource,
            g.namespace,
            g.verb,
            g.user
        ])? == 1;
        if new && marked != Some(g.app) {
            stale.execute(params![g.app])?;
            marked = Some(g.app);
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
    for app in stale {
        match derive_app(conn, &app)? {
            Some(a) => put.execute(params![app, rbac::element_json(&a)])?,
            None => gone.execute(params![app])?,
        };
    }
    conn.execute("DELETE FROM rbac_stale", [])?;
    Ok(())
}

/// The apps that gained an access since their answer was kept, by name.
pub(crate) fn stale_apps(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT app FROM rbac_stale ORDER BY app")?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// The kept answers: (app, its element of the answer's JSON), by app.
pub(crate) fn kept(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    conn.prepare_cached("SELECT app, json FROM rbac_apps ORDER BY app")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The kept answer of `app`, if it has one.
pub(crate) fn kept_of(conn: &Connection, app: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT json FROM rbac_apps WHERE app = ?1")?
        .query_row(params![app], |r| r.get(0))
        .optional()
}

/// Derives one app's RBAC from its accesses (`None`: it has none).
pub(crate) fn derive_app(conn: &Connection, app: &str) -> rusqlite::Result<Option<AppRbac>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM access_grants a LEFT JOIN users u ON u.id = a.user_id \
         WHERE a.app = ?1"
    ))?;
    let mut d = Deriver::default();
    add_rows(&mut d, st.query(params![app])?)?;
    Ok(d.finish().into_iter().next())
}

/// What [`add_rows`] reads of `access_grants a` and `users u`.
pub(crate) const COLUMNS: &str = "a.app, u.name, a.verb, a.api_group, a.url, \
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
