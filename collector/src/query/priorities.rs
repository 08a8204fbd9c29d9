//! Usage-driven priorities: the lines of code of the real programs (requests from no test)
//! that call each endpoint, which `tests --gaps` and `suggest` show beside the number of
//! programs they rank untested endpoints by.

use std::collections::{BTreeSet, HashMap};

use rusqlite::Connection;

use super::sql::{Sql, frames_of, own_line, when, who};
use super::{Filters, Result};

/// operationId (of release `rid`) → the programs' own lines of code (`file:line`) calling it,
/// most requests first, from requests of no test the filters select.
pub(crate) fn program_locs(
    conn: &Connection,
    f: &Filters,
    rid: i64,
    only: Option<&[i64]>,
) -> Result<HashMap<String, Vec<String>>> {
    let mut q = Sql::default();
    let only = only.map_or(String::new(), |ids| {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!(" AND e.id IN ({})", ids.join(", "))
    });
    let text = if f.has_window() {
        let j = who(&mut q, f, "r");
        let w = when(&mut q, f);
        let r = q.p(rid);
        format!(
            "SELECT e.operation_id, r.purpose_id, COUNT(*) FROM requests r{j} \
             JOIN endpoints e ON e.id = r.endpoint_id AND e.release_id = {r} \
             WHERE {w} AND r.test_id IS NULL AND r.purpose_id IS NOT NULL{only} GROUP BY 1, 2"
        )
    } else {
        let j = who(&mut q, f, "u");
        let ok = if f.ok_only {
            " AND u.code BETWEEN 200 AND 299"
        } else {
            ""
        };
        let r = q.p(rid);
        format!(
            "SELECT e.operation_id, u.purpose_id, SUM(u.hits) FROM usage u{j} \
             JOIN endpoints e ON e.id = u.endpoint_id AND e.release_id = {r} \
             WHERE u.test_id = 0 AND u.purpose_id <> 0{ok}{only} GROUP BY 1, 2"
        )
    };
    let rows = q.rows(conn, &text, |x| {
        Ok((
            x.get::<_, String>(0)?,
            x.get::<_, i64>(1)?,
            x.get::<_, i64>(2)?,
        ))
    })?;
    let purposes: Vec<i64> = rows
        .iter()
        .map(|r| r.1)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let frames = frames_of(conn, &purposes)?;
    // operationId → line → requests
    let mut by: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for (ep, purpose, hits) in rows {
        if let Some(line) = frames.get(&purpose).and_then(|fr| own_line(fr)) {
            *by.entry(ep)
                .or_default()
                .entry(format!("{}:{}", line.file, line.line))
                .or_default() += hits;
        }
    }
    Ok(by
        .into_iter()
        .map(|(ep, lines)| {
            let mut v: Vec<(String, i64)> = lines.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (ep, v.into_iter().map(|(l, _)| l).collect())
        })
        .collect())
}
