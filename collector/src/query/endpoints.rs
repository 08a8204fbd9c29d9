//! `endpoints`: each endpoint of the release with its hits, apps, tests and lines of code.

use rusqlite::Connection;

use super::sql::release;
use super::usage::{EndpointRow, endpoint_rows, sort_endpoints};
use super::{Answer, COUNTING, Counting, Filters, Given, Param, Query, Render, Result, Table};

/// `endpoints`' options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// What makes an endpoint tested.
    pub counting: Counting,
    /// Only this level.
    pub level: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this API group (`core` or `""` for the core group).
    pub group: Option<String>,
    /// Only tested (`true`) or untested (`false`) endpoints.
    pub tested: Option<bool>,
    /// Only eligible (`true`) or ineligible (`false`) endpoints.
    pub eligible: Option<bool>,
    /// Only endpoints this SIG owns (`sig-storage` or `storage`), per the SIG table.
    pub owner: Option<String>,
}

impl Query for Params {
    const NAME: &'static str = "endpoints";
    const PARAMS: &'static [Param] = &[
        COUNTING,
        Param::value("level", "LEVEL", "Only this level"),
        Param::value("category", "CATEGORY", "Only this category"),
        Param::value(
            "group",
            "GROUP",
            "Only this API group, `core` for the core group",
        ),
        Param::value(
            "tested",
            "BOOL",
            "Only tested (true) or untested (false) endpoints",
        ),
        Param::value(
            "eligible",
            "BOOL",
            "Only eligible (true) or ineligible (false) endpoints",
        ),
        Param::value(
            "owner",
            "SIG",
            "Only endpoints this SIG owns, per the SIG table",
        ),
    ];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            counting: g.counting()?,
            level: g.text("level")?,
            category: g.text("category")?,
            group: g.any_text("group")?,
            tested: g.bool("tested")?,
            eligible: g.bool("eligible")?,
            owner: g.text("owner")?,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(endpoints(conn, f, self)?))
    }
}

impl Render for Vec<EndpointRow> {
    fn tables(&self) -> Vec<Table> {
        vec![Table::of("endpoints", self)]
    }
}

/// `endpoints`.
fn endpoints(conn: &Connection, f: &Filters, o: &Params) -> Result<Vec<EndpointRow>> {
    let (rid, _, _) = release(conn, f)?;
    let mut rows = endpoint_rows(conn, f, o.counting, rid, None, true)?;
    let group = o.group.as_deref().map(|g| if g == "core" { "" } else { g });
    rows.retain(|r| {
        let e = &r.endpoint;
        o.level.as_ref().is_none_or(|l| e.level.as_str() == l)
            && o.category.as_ref().is_none_or(|c| &e.category == c)
            && group.is_none_or(|g| e.group == g)
            && o.tested.is_none_or(|t| r.tested == t)
            && o.eligible.is_none_or(|e| r.eligible == e)
    });
    if let Some(sig) = &o.owner {
        let table = super::sig::SigTable::load()?;
        rows.retain(|r| super::sig::owns(&table, &r.endpoint.path, sig));
    }
    sort_endpoints(&mut rows);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "endpoints",
            &[
                ("level", "stable"),
                ("tested", "false"),
                ("eligible", "true"),
                ("group", ""),
                ("owner", "storage"),
            ],
            Params {
                level: Some("stable".into()),
                tested: Some(false),
                eligible: Some(true),
                group: Some(String::new()),
                owner: Some("storage".into()),
                ..Default::default()
            },
        );
    }
}
