//! `sunburst`: coverage as a level → category → endpoint tree, for the web page's chart.

use rusqlite::Connection;
use serde::Serialize;

use super::coverage::coverage;
use super::sql::release;
use super::usage::{Counts, EndpointRow, Level, endpoint_rows, grouped};
use super::{Answer, COUNTING, Counting, Filters, Given, Param, Query, Render, Result, Table};

/// `sunburst`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// What makes an endpoint tested.
    pub counting: Counting,
}

impl Query for Params {
    const NAME: &'static str = "sunburst";
    const PARAMS: &'static [Param] = &[COUNTING];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            counting: g.counting()?,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        let (rid, label, _) = release(conn, f)?;
        let rows = endpoint_rows(conn, f, self.counting, rid, None, false)?;
        Ok(Answer::new(sunburst(&label, self.counting, &rows)))
    }
}

/// An endpoint as a sunburst leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunburstEndpoint {
    /// operationId.
    pub endpoint: String,
    /// Path template.
    pub path: String,
    /// Kind.
    pub kind: String,
    /// Action.
    pub action: String,
    /// Tested.
    pub tested: bool,
    /// Hit by a conformance test.
    pub conf_tested: bool,
    /// Conformance eligible.
    pub eligible: bool,
    /// Requests.
    pub hits: u64,
}

/// A category ring of the sunburst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunburstCategory {
    /// The category.
    pub category: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Its endpoints, by name.
    pub endpoints: Vec<SunburstEndpoint>,
}

/// A level ring of the sunburst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SunburstLevel {
    /// The level.
    pub level: Level,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// Its categories, by name.
    pub categories: Vec<SunburstCategory>,
}

/// `sunburst`: coverage as a level → category → endpoint tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sunburst {
    /// Release label.
    pub release: String,
    /// What made an endpoint tested.
    pub counting: Counting,
    /// Over all endpoints.
    pub totals: Counts,
    /// stable, beta, alpha.
    pub levels: Vec<SunburstLevel>,
}

/// Builds the sunburst tree from endpoint rows.
pub fn sunburst(release: &str, counting: Counting, rows: &[EndpointRow]) -> Sunburst {
    let cov = coverage(release, counting, 0, rows);
    let mut levels: Vec<SunburstLevel> = cov
        .by_level
        .iter()
        .map(|l| SunburstLevel {
            level: l.level,
            counts: l.counts,
            categories: Vec::new(),
        })
        .collect();
    for mut rs in grouped(rows).into_values() {
        rs.sort_by(|a, b| a.endpoint.operation_id.cmp(&b.endpoint.operation_id));
        let level = levels
            .iter_mut()
            .find(|l| l.level == rs[0].endpoint.level)
            .expect("every level of the rows is in the coverage");
        level.categories.push(SunburstCategory {
            category: rs[0].endpoint.category.clone(),
            counts: Counts::of(&rs),
            endpoints: rs
                .iter()
                .map(|r| SunburstEndpoint {
                    endpoint: r.endpoint.operation_id.clone(),
                    path: r.endpoint.path.clone(),
                    kind: r.endpoint.kind.clone(),
                    action: r.endpoint.action.clone(),
                    tested: r.tested,
                    conf_tested: r.conf_tested,
                    eligible: r.eligible,
                    hits: r.hits,
                })
                .collect(),
        });
    }
    Sunburst {
        release: release.to_owned(),
        counting,
        totals: cov.totals,
        levels,
    }
}

/// A leaf as the table lists it, under its level and category.
#[derive(Default, Serialize)]
struct Leaf<'a> {
    level: Level,
    category: &'a str,
    endpoint: &'a str,
    tested: bool,
    conf_tested: bool,
    eligible: bool,
    hits: u64,
}

impl Render for Sunburst {
    fn tables(&self) -> Vec<Table> {
        let mut leaves = Vec::new();
        for l in &self.levels {
            for c in &l.categories {
                for e in &c.endpoints {
                    leaves.push(Leaf {
                        level: l.level,
                        category: &c.category,
                        endpoint: &e.endpoint,
                        tested: e.tested,
                        conf_tested: e.conf_tested,
                        eligible: e.eligible,
                        hits: e.hits,
                    });
                }
            }
        }
        vec![Table::of("sunburst", &leaves)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::usage::sample::rows;

    #[test]
    fn parses_its_options() {
        crate::query::request::options("sunburst", &[], Params::default());
    }

    #[test]
    fn sunburst_nests_levels_categories_endpoints() {
        let s = sunburst("1.36.0", Counting::Any, &rows());
        type Shape = Vec<(String, Vec<(String, Vec<String>)>)>;
        let shape: Shape = s
            .levels
            .iter()
            .map(|l| {
                (
                    l.level.to_string(),
                    l.categories
                        .iter()
                        .map(|c| {
                            (
                                c.category.clone(),
                                c.endpoints.iter().map(|e| e.endpoint.clone()).collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    "stable".to_string(),
                    vec![
                        ("apps".to_string(), vec!["d".to_string()]),
                        ("core".into(), vec!["a".into(), "c".into()])
                    ]
                ),
                ("beta".into(), vec![("core".into(), vec!["e".into()])]),
                ("alpha".into(), vec![("apps".into(), vec!["b".into()])]),
            ]
        );
        assert_eq!(s.levels[0].counts.tested, 2);
        assert_eq!(s.totals.total, 5);
    }
}
