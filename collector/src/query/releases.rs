//! `releases`: the releases in the database, with their endpoints and requests.

use rusqlite::Connection;
use serde::Serialize;

use super::sql::{Sql, fixed_time, src};
use super::{Answer, Error, Filters, Given, Query, Render, Result, Table};

/// `releases` takes only the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params;

impl Query for Params {
    const NAME: &'static str = "releases";

    fn parse(_: &mut Given) -> Result<Self> {
        Ok(Params)
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(releases(conn, f)?))
    }
}

/// A release in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReleaseRow {
    /// Label.
    pub release: String,
    /// sha256 of its OpenAPI document.
    pub spec_sha256: String,
    /// When it was loaded.
    pub loaded_at: String,
    /// Endpoints.
    pub total_endpoints: u64,
    /// Conformance-eligible endpoints.
    pub eligible_endpoints: u64,
    /// Requests mapped to its endpoints.
    pub requests: u64,
}

impl Render for Vec<ReleaseRow> {
    fn tables(&self) -> Vec<Table> {
        vec![Table::of("releases", self)]
    }
}

/// `releases`.
fn releases(conn: &Connection, f: &Filters) -> Result<Vec<ReleaseRow>> {
    let mut sql = Sql::default();
    let hits = if f.narrows() {
        let s = src(&mut sql, f);
        format!(
            "{s}, h AS (SELECT e.release_id, SUM(s.hits) AS hits FROM src s JOIN endpoints e ON e.id = s.endpoint_id GROUP BY e.release_id)"
        )
    } else {
        "WITH h AS (SELECT e.release_id, SUM(eu.hits) AS hits FROM endpoint_usage eu JOIN endpoints e ON e.id = eu.endpoint_id GROUP BY e.release_id)".to_owned()
    };
    let cond = match &f.release {
        Some(l) => format!("WHERE r.label = {}", sql.p(l.clone())),
        None => String::new(),
    };
    let text = format!(
        "{hits} SELECT r.label, r.spec_sha256, r.loaded_at, \
         (SELECT COUNT(*) FROM endpoints e WHERE e.release_id = r.id), \
         (SELECT COUNT(*) FROM endpoints e WHERE e.release_id = r.id AND e.eligible = 1), \
         COALESCE((SELECT hits FROM h WHERE h.release_id = r.id), 0) \
         FROM releases r {cond} ORDER BY r.id"
    );
    let rows = sql.rows(conn, &text, |r| {
        Ok(ReleaseRow {
            release: r.get(0)?,
            spec_sha256: r.get(1)?,
            loaded_at: fixed_time(r.get(2)?),
            total_endpoints: r.get::<_, i64>(3)? as u64,
            eligible_endpoints: r.get::<_, i64>(4)? as u64,
            requests: r.get::<_, i64>(5)? as u64,
        })
    })?;
    if rows.is_empty()
        && let Some(l) = &f.release
    {
        return Err(Error::UnknownRelease(l.clone()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options("releases", &[], Params);
    }
}
