//! `coverage`: APISnoop's totals, by level and category (`query coverage --counting any`,
//! `GET /api/v1/coverage?export=apisnoop` for APISnoop's own layout).

use rusqlite::Connection;
use serde::Serialize;

use super::sql::release;
use super::usage::{Counts, EndpointRow, Level, endpoint_rows, grouped};
use super::{
    Answer, COUNTING, Counting, Error, Filters, Given, Param, Query, Render, Result, Table,
};

/// `coverage`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    /// What makes an endpoint tested.
    pub counting: Counting,
    /// Write APISnoop's coverage JSON instead.
    pub apisnoop: bool,
    /// Totals and gaps per owning SIG instead (`by=sig`, [`super::sig`]).
    pub by_sig: bool,
}

impl Query for Params {
    const NAME: &'static str = "coverage";
    const PARAMS: &'static [Param] = &[
        COUNTING,
        Param::value("export", "LAYOUT", "`apisnoop`: APISnoop's coverage JSON"),
        Param::value("by", "KEY", "`sig`: totals and gaps per owning SIG"),
    ];

    fn parse(g: &mut Given) -> Result<Self> {
        let counting = g.counting()?;
        let apisnoop = g
            .parsed(&["export"], |k, v| {
                if v == "apisnoop" {
                    Ok(true)
                } else {
                    Err(Error::BadValue {
                        name: k.to_owned(),
                        value: v.to_owned(),
                        expected: "apisnoop",
                    })
                }
            })?
            .unwrap_or(false);
        let by_sig = g
            .parsed(&["by"], |k, v| {
                if v == "sig" {
                    Ok(true)
                } else {
                    Err(Error::BadValue {
                        name: k.to_owned(),
                        value: v.to_owned(),
                        expected: "sig",
                    })
                }
            })?
            .unwrap_or(false);
        if by_sig && apisnoop {
            return Err(Error::BadValue {
                name: "by".to_owned(),
                value: "sig".to_owned(),
                expected: "no --export apisnoop beside it",
            });
        }
        Ok(Params {
            counting,
            apisnoop,
            by_sig,
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        let (rid, label, loaded_at) = release(conn, f)?;
        if self.apisnoop {
            return Ok(Answer::new(super::apisnoop::run(
                conn, f, rid, &label, loaded_at,
            )?));
        }
        let rows = endpoint_rows(conn, f, self.counting, rid, None, false)?;
        if self.by_sig {
            let c = super::sig::coverage(conn, f, (rid, &label), self.counting, &rows)?;
            return Ok(Answer::new(c));
        }
        let requests = rows.iter().map(|r| r.hits).sum();
        Ok(Answer::new(coverage(
            &label,
            self.counting,
            requests,
            &rows,
        )))
    }
}

/// Coverage of one level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LevelCounts {
    /// The level.
    pub level: Level,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Coverage of one category of a level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CategoryCounts {
    /// The level.
    pub level: Level,
    /// The category.
    pub category: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// `coverage`: APISnoop's totals by level and category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Release label.
    pub release: String,
    /// What made an endpoint tested.
    pub counting: Counting,
    /// Requests counted (mapped to an endpoint of the release).
    pub requests: u64,
    /// Over all endpoints.
    pub totals: Counts,
    /// Per level, stable, beta, alpha.
    pub by_level: Vec<LevelCounts>,
    /// Per level and category.
    pub by_category: Vec<CategoryCounts>,
}

/// Aggregates endpoint rows (one per endpoint of the release) into coverage.
pub fn coverage(
    release: &str,
    counting: Counting,
    requests: u64,
    rows: &[EndpointRow],
) -> Coverage {
    let all: Vec<&EndpointRow> = rows.iter().collect();
    let by_category: Vec<CategoryCounts> = grouped(rows)
        .into_values()
        .map(|rs| CategoryCounts {
            level: rs[0].endpoint.level,
            category: rs[0].endpoint.category.clone(),
            counts: Counts::of(&rs),
        })
        .collect();
    let mut by_level: Vec<LevelCounts> = Vec::new();
    for c in &by_category {
        match by_level.last_mut() {
            Some(l) if l.level == c.level => {
                let mut sum = l.counts;
                sum.total += c.counts.total;
                sum.tested += c.counts.tested;
                sum.conf_tested += c.counts.conf_tested;
                sum.eligible += c.counts.eligible;
                sum.tested_eligible += c.counts.tested_eligible;
                sum.conf_tested_eligible += c.counts.conf_tested_eligible;
                sum.pending += c.counts.pending;
                sum.conf_tested_pending += c.counts.conf_tested_pending;
                l.counts = sum;
            }
            _ => by_level.push(LevelCounts {
                level: c.level,
                counts: c.counts,
            }),
        }
    }
    Coverage {
        release: release.to_owned(),
        counting,
        requests,
        totals: Counts::of(&all),
        by_level,
        by_category,
    }
}

/// The first table's row: the totals with what they count.
#[derive(Default, Serialize)]
struct Totals<'a> {
    release: &'a str,
    counting: Counting,
    requests: u64,
    #[serde(flatten)]
    counts: Counts,
}

impl Render for Coverage {
    fn tables(&self) -> Vec<Table> {
        let totals = Totals {
            release: &self.release,
            counting: self.counting,
            requests: self.requests,
            counts: self.totals,
        };
        vec![
            Table::of("totals", &[totals]),
            Table::of("by_level", &self.by_level),
            Table::of("by_category", &self.by_category),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::usage::sample::rows;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "coverage",
            &[("counting", "any"), ("export", "apisnoop")],
            Params {
                counting: Counting::Any,
                apisnoop: true,
                by_sig: false,
            },
        );
        crate::query::request::options(
            "coverage",
            &[("by", "sig")],
            Params {
                by_sig: true,
                ..Params::default()
            },
        );
        let err = |params: &[(&str, &str)]| {
            crate::query::Request::from_params("coverage", params.iter().copied())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("by", "app")]),
            "bad value \"app\" for `by`: expected sig"
        );
        assert!(
            err(&[("by", "sig"), ("export", "apisnoop")]).contains("no --export apisnoop"),
            "by=sig and export=apisnoop together"
        );
    }

    #[test]
    fn coverage_counts_per_level_and_category_in_apisnoop_order() {
        let c = coverage("1.36.0", Counting::Tests, 7, &rows());
        assert_eq!(
            c.totals,
            Counts {
                total: 5,
                tested: 3,
                conf_tested: 1,
                eligible: 2,
                tested_eligible: 2,
                conf_tested_eligible: 1,
                pending: 0,
                conf_tested_pending: 0
            }
        );
        let levels: Vec<(&str, u64, u64)> = c
            .by_level
            .iter()
            .map(|l| (l.level.as_str(), l.counts.total, l.counts.tested))
            .collect();
        assert_eq!(levels, [("stable", 3, 2), ("beta", 1, 1), ("alpha", 1, 0)]);
        let cats: Vec<(&str, &str, u64)> = c
            .by_category
            .iter()
            .map(|l| (l.level.as_str(), l.category.as_str(), l.counts.total))
            .collect();
        assert_eq!(
            cats,
            [
                ("stable", "apps", 1),
                ("stable", "core", 2),
                ("beta", "core", 1),
                ("alpha", "apps", 1)
            ]
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["by_level"][0]["tested_eligible"], 2);
        assert_eq!(json["by_category"][1]["category"], "core");
    }
}
