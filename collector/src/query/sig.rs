//! SIG ownership: which SIG owns each endpoint, from the table shipped in `data/sigs.yaml`
//! (overridden entry by entry by the file `WHAKAPAPA_SIGS` names), beside the SIGs of the
//! tests that hit it; per-SIG coverage (`query coverage --by sig`) and the endpoints of one SIG
//! (`query endpoints --owner sig-storage`).
//!
//! # Example
//! ```
//! use whakapapa_collector::query::sig::SigTable;
//! let t = SigTable::shipped();
//! assert_eq!(t.owners("/apis/apps/v1/namespaces/{namespace}/deployments"), ["sig-apps"]);
//! assert_eq!(t.owners("/api/v1/namespaces/{namespace}/pods/{name}/binding"), ["sig-scheduling"]);
//! assert_eq!(t.owners("/api/v1/namespaces/{namespace}/pods/{name}/log"), ["sig-node"]);
//! assert_eq!(t.owners("/apis/storage.k8s.io/v1/storageclasses"), ["sig-storage"]);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::runs;
use super::usage::{EndpointRow, Level};
use super::{Counting, Error, Filters, Render, Result, Table};

/// The table shipped with the collector.
const SHIPPED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/sigs.yaml"));

/// The environment variable naming a file that overrides entries of the shipped table.
pub const ENV: &str = "WHAKAPAPA_SIGS";

/// API groups, core resources and paths → owning SIGs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigTable {
    #[serde(default)]
    default: Vec<String>,
    #[serde(default)]
    groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    core: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    paths: BTreeMap<String, Vec<String>>,
}

impl SigTable {
    /// Parses a table (the shape of `data/sigs.yaml`).
    pub fn parse(text: &str) -> std::result::Result<SigTable, String> {
        let t: SigTable = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        for (what, list) in std::iter::once(("default", &t.default))
            .chain(t.groups.iter().map(|(k, v)| (k.as_str(), v)))
            .chain(t.core.iter().map(|(k, v)| (k.as_str(), v)))
            .chain(t.paths.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if let Some(bad) = list
                .iter()
                .find(|s| !s.starts_with("sig-") && !s.starts_with("wg-"))
            {
                return Err(format!(
                    "{what:?}: {bad:?} is not a SIG (sig-... or wg-...)"
                ));
            }
        }
        Ok(t)
    }

    /// The table shipped in `data/sigs.yaml`.
    pub fn shipped() -> SigTable {
        SigTable::parse(SHIPPED).expect("the shipped SIG table parses")
    }

    /// The shipped table with the entries of the file `WHAKAPAPA_SIGS` names, if set.
    pub fn load() -> Result<SigTable> {
        let mut t = SigTable::shipped();
        if let Some(path) = std::env::var_os(ENV) {
            let bad = |m: String| Error::SigTable(format!("{}: {m}", path.to_string_lossy()));
            let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            let o = SigTable::parse(&text).map_err(bad)?;
            if !o.default.is_empty() {
                t.default = o.default;
            }
            t.groups.extend(o.groups);
            t.core.extend(o.core);
            t.paths.extend(o.paths);
        }
        Ok(t)
    }

    /// The SIGs owning the endpoint at this path template.
    pub fn owners(&self, path: &str) -> &[String] {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let found = match segs.as_slice() {
            ["apis", group, _version, ..] => self.groups.get(*group),
            ["api", "v1", rest @ ..] => {
                let rest: Vec<&str> = rest.iter().copied().filter(|s| *s != "watch").collect();
                let (res, sub) = match rest.as_slice() {
                    ["namespaces", "{namespace}", r, _name, s, ..] => (*r, Some(*s)),
                    ["namespaces", "{namespace}", r, ..] => (*r, None),
                    [r, _name, s, ..] => (*r, Some(*s)),
                    [r, ..] => (*r, None),
                    [] => ("", None),
                };
                sub.and_then(|s| self.core.get(&format!("{res}/{s}")))
                    .or_else(|| self.core.get(res))
            }
            _ => self
                .paths
                .iter()
                .filter(|(p, _)| path.starts_with(p.as_str()))
                .max_by_key(|(p, _)| p.len())
                .map(|(_, v)| v),
        };
        found.unwrap_or(&self.default)
    }
}

/// Whether `sig` (`storage` or `sig-storage`) owns the endpoint at `path`.
pub(crate) fn owns(table: &SigTable, path: &str, sig: &str) -> bool {
    let sig = if sig.starts_with("sig-") || sig.starts_with("wg-") {
        sig.to_owned()
    } else {
        format!("sig-{sig}")
    };
    table.owners(path).contains(&sig)
}

/// Coverage of the endpoints one SIG owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SigTotals {
    /// The SIG.
    pub sig: String,
    /// Endpoints it owns.
    pub total: u64,
    /// Tested (under the query's counting).
    pub tested: u64,
    /// Hit by a conformance test.
    pub conf_tested: u64,
    /// Conformance eligible.
    pub eligible: u64,
    /// Eligible and tested.
    pub tested_eligible: u64,
    /// Eligible and hit by a conformance test.
    pub conf_tested_eligible: u64,
    /// Pending eligibility.
    pub pending: u64,
}

/// An endpoint with its owners and the SIGs of the tests that hit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigEndpoint {
    /// operationId.
    pub endpoint: String,
    /// Path template.
    pub path: String,
    /// Level.
    pub level: Level,
    /// Category.
    pub category: String,
    /// Its owners, from the SIG table.
    pub owners: Vec<String>,
    /// The SIGs (`[sig-...]`) of the tests that hit it.
    pub test_sigs: Vec<String>,
    /// Tested (under the query's counting).
    pub tested: bool,
    /// Hit by a conformance test.
    pub conf_tested: bool,
    /// Conformance eligible.
    pub eligible: bool,
    /// Pending eligibility.
    pub pending: bool,
}

/// `coverage --by sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigCoverage {
    /// Release label.
    pub release: String,
    /// What makes an endpoint tested.
    pub counting: Counting,
    /// Per SIG, by name; an endpoint owned by two SIGs counts for both.
    pub sigs: Vec<SigTotals>,
    /// Every endpoint, in catalog order.
    pub endpoints: Vec<SigEndpoint>,
}

/// Answers `coverage --by sig` from the release's endpoint rows (counted under `counting`).
pub fn coverage(
    conn: &Connection,
    f: &Filters,
    (rid, label): (i64, &str),
    counting: Counting,
    rows: &[EndpointRow],
) -> Result<SigCoverage> {
    let table = SigTable::load()?;
    let ids: HashMap<i64, String> = runs::endpoints(conn, Some(rid))?
        .into_iter()
        .map(|(id, e)| (id, e.endpoint))
        .collect();
    let tests = runs::tests(conn)?;
    let mut test_sigs: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for h in runs::test_hits(conn, f, None)? {
        if let (Some(ep), Some(sig)) = (
            ids.get(&h.endpoint),
            tests.get(&h.test).and_then(|t| t.sig.as_deref()),
        ) {
            test_sigs.entry(ep.as_str()).or_default().insert(sig);
        }
    }
    let mut sigs: BTreeMap<String, SigTotals> = BTreeMap::new();
    let mut endpoints = Vec::with_capacity(rows.len());
    for r in rows {
        let e = &r.endpoint;
        let owners = table.owners(&e.path).to_vec();
        for o in &owners {
            let s = sigs.entry(o.clone()).or_insert_with(|| SigTotals {
                sig: o.clone(),
                ..SigTotals::default()
            });
            s.total += 1;
            s.tested += r.tested as u64;
            s.conf_tested += r.conf_tested as u64;
            s.eligible += r.eligible as u64;
            s.tested_eligible += (r.eligible && r.tested) as u64;
            s.conf_tested_eligible += (r.eligible && r.conf_tested) as u64;
            s.pending += r.pending as u64;
        }
        endpoints.push(SigEndpoint {
            endpoint: e.operation_id.clone(),
            path: e.path.clone(),
            level: e.level,
            category: e.category.clone(),
            owners,
            test_sigs: test_sigs
                .get(e.operation_id.as_str())
                .map(|s| s.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default(),
            tested: r.tested,
            conf_tested: r.conf_tested,
            eligible: r.eligible,
            pending: r.pending,
        });
    }
    Ok(SigCoverage {
        release: label.to_owned(),
        counting,
        sigs: sigs.into_values().collect(),
        endpoints,
    })
}

/// A gap as the table lists it: one row per owner.
#[derive(Default, Serialize)]
struct GapCells<'a> {
    sig: &'a str,
    endpoint: &'a str,
    path: &'a str,
    test_sigs: String,
}

/// An endpoint as the table lists it: its owners and tests' SIGs in one cell each.
#[derive(Default, Serialize)]
struct EndpointCells<'a> {
    endpoint: &'a str,
    level: Level,
    category: &'a str,
    owners: String,
    test_sigs: String,
    tested: bool,
    conf_tested: bool,
    eligible: bool,
    pending: bool,
}

impl Render for SigCoverage {
    /// Totals per SIG; the gaps (eligible endpoints not tested) by SIG; every endpoint with its
    /// owners.
    fn tables(&self) -> Vec<Table> {
        let mut gaps: Vec<(&str, &SigEndpoint)> = self
            .endpoints
            .iter()
            .filter(|e| e.eligible && !e.tested)
            .flat_map(|e| e.owners.iter().map(move |o| (o.as_str(), e)))
            .collect();
        gaps.sort_by(|a, b| (a.0, &a.1.endpoint).cmp(&(b.0, &b.1.endpoint)));
        let gaps: Vec<GapCells<'_>> = gaps
            .into_iter()
            .map(|(sig, e)| GapCells {
                sig,
                endpoint: &e.endpoint,
                path: &e.path,
                test_sigs: e.test_sigs.join(" "),
            })
            .collect();
        let endpoints: Vec<EndpointCells<'_>> = self
            .endpoints
            .iter()
            .map(|x| EndpointCells {
                endpoint: &x.endpoint,
                level: x.level,
                category: &x.category,
                owners: x.owners.join(" "),
                test_sigs: x.test_sigs.join(" "),
                tested: x.tested,
                conf_tested: x.conf_tested,
                eligible: x.eligible,
                pending: x.pending,
            })
            .collect();
        vec![
            Table::of("by_sig", &self.sigs),
            Table::of("gaps", &gaps),
            Table::of("endpoints", &endpoints),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_and_core_resource_of_1_36_has_an_owner() {
        let t = SigTable::shipped();
        let groups = [
            "admissionregistration.k8s.io",
            "apiextensions.k8s.io",
            "apiregistration.k8s.io",
            "apps",
            "authentication.k8s.io",
            "authorization.k8s.io",
            "autoscaling",
            "batch",
            "certificates.k8s.io",
            "coordination.k8s.io",
            "discovery.k8s.io",
            "events.k8s.io",
            "flowcontrol.apiserver.k8s.io",
            "internal.apiserver.k8s.io",
            "networking.k8s.io",
            "node.k8s.io",
            "policy",
            "rbac.authorization.k8s.io",
            "resource.k8s.io",
            "scheduling.k8s.io",
            "storage.k8s.io",
            "storagemigration.k8s.io",
        ];
        for g in groups {
            assert!(t.groups.contains_key(g), "{g}");
        }
        for r in [
            "bindings",
            "componentstatuses",
            "configmaps",
            "endpoints",
            "events",
            "limitranges",
            "namespaces",
            "nodes",
            "persistentvolumeclaims",
            "persistentvolumes",
            "pods",
            "podtemplates",
            "replicationcontrollers",
            "resourcequotas",
            "secrets",
            "serviceaccounts",
            "services",
        ] {
            assert!(t.core.contains_key(r), "{r}");
        }
    }

    #[test]
    fn paths_find_their_resource() {
        let t = SigTable::shipped();
        let o = |p: &str| t.owners(p).join(" ");
        assert_eq!(o("/api/v1/nodes/{name}/proxy"), "sig-node");
        assert_eq!(
            o("/api/v1/watch/namespaces/{namespace}/services"),
            "sig-network"
        );
        assert_eq!(o("/api/v1/namespaces/{name}/finalize"), "sig-api-machinery");
        assert_eq!(
            o("/api/v1/namespaces/{namespace}/pods/{name}/eviction"),
            "sig-apps"
        );
        assert_eq!(o("/api/v1/"), "sig-api-machinery");
        assert_eq!(o("/.well-known/openid-configuration/"), "sig-auth");
        assert_eq!(o("/apis/example.com/v1/widgets"), "sig-api-machinery");
        assert!(owns(&t, "/apis/storage.k8s.io/v1/csidrivers", "storage"));
        assert!(!owns(&t, "/apis/storage.k8s.io/v1/csidrivers", "sig-apps"));
    }

    #[test]
    fn a_bad_table_says_what() {
        let e = SigTable::parse("groups:\n  apps: [apps]\n").unwrap_err();
        assert_eq!(e, "\"apps\": \"apps\" is not a SIG (sig-... or wg-...)");
        assert!(SigTable::parse("group: {}\n").is_err(), "unknown key");
    }
}
