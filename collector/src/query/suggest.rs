//! Skeleton kube-rs tests for untested conformance-eligible endpoints, from the journeys real
//! programs take through them: the calls in the order programs make them, ranked by use.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rusqlite::Connection;
use serde::Serialize;

use super::journeys::{self, Journey, MINING, journeys_query, sequence_cell};
use super::sql::{Sql, release};
use super::tests::gaps;
use super::usage::{Endpoint, Level};
use super::{Answer, Filters, Given, LIMIT, Param, Query, Render, Result, Table};

/// `suggest`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Longest list returned.
    pub limit: usize,
    /// How journeys are mined.
    pub journeys: journeys::Params,
}

impl Query for Params {
    const NAME: &'static str = "suggest";
    const PARAMS: &'static [Param] = &[LIMIT, MINING[0], MINING[1], MINING[2]];

    fn parse(g: &mut Given) -> Result<Self> {
        Ok(Params {
            journeys: journeys::Params::parse_mining(g)?,
            limit: g.positive("limit")?.unwrap_or(20),
        })
    }

    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer> {
        Ok(Answer::new(suggest_query(
            conn,
            f,
            self.limit,
            &self.journeys,
        )?))
    }
}

/// An untested eligible endpoint with its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The endpoint.
    pub info: Endpoint,
    /// Distinct programs using it.
    pub programs: u64,
    /// Requests.
    pub hits: u64,
    /// The programs' lines of code calling it (`file:line`), most requests first.
    pub locs: Vec<String>,
}

/// A suggested test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// operationId.
    pub endpoint: String,
    /// Path template.
    pub path: String,
    /// Level.
    pub level: Level,
    /// Category.
    pub category: String,
    /// Programs using it.
    pub programs: u64,
    /// Requests.
    pub hits: u64,
    /// The programs' lines of code calling it (`file:line`), most requests first.
    pub locs: Vec<String>,
    /// The journey the test follows (`null`: none seen; the test calls the endpoint alone).
    pub journey: Option<Journey>,
    /// The test's Rust source.
    pub code: String,
}

/// By programs, then hits, then operationId.
fn rank(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| {
        b.programs
            .cmp(&a.programs)
            .then(b.hits.cmp(&a.hits))
            .then_with(|| a.info.operation_id.cmp(&b.info.operation_id))
    });
}

/// Ranks candidates by programs, then hits, and writes a test for each of the first `limit`.
pub fn suggest(
    mut candidates: Vec<Candidate>,
    journeys: &[Journey],
    catalog: &BTreeMap<String, Endpoint>,
    limit: usize,
) -> Vec<Suggestion> {
    rank(&mut candidates);
    candidates
        .into_iter()
        .take(limit)
        .map(|c| {
            // journeys are sorted by support, then length: the first one through it is best.
            let journey = journeys
                .iter()
                .find(|j| j.sequence.contains(&c.info.operation_id))
                .cloned();
            let code = code(&c, journey.as_ref(), catalog);
            Suggestion {
                endpoint: c.info.operation_id.clone(),
                path: c.info.path.clone(),
                level: c.info.level,
                category: c.info.category.clone(),
                programs: c.programs,
                hits: c.hits,
                locs: c.locs.clone(),
                journey,
                code,
            }
        })
        .collect()
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else {
            out.push('_');
        }
    }
    out
}

/// The k8s-openapi type path of a group/version/kind.
fn type_path(group: &str, version: &str, kind: &str) -> Option<String> {
    if kind.is_empty() || version.is_empty() {
        return None;
    }
    let module = match group {
        "" => "api::core".to_owned(),
        "apiextensions.k8s.io" => "apiextensions_apiserver::pkg::apis::apiextensions".to_owned(),
        "apiregistration.k8s.io" => "kube_aggregator::pkg::apis::apiregistration".to_owned(),
        "internal.apiserver.k8s.io" => "api::apiserverinternal".to_owned(),
        g => format!("api::{}", g.split('.').next().unwrap_or(g).replace('-', "")),
    };
    Some(format!("k8s_openapi::{module}::{version}::{kind}"))
}

fn concrete_path(path: &str) -> String {
    path.replace("{namespace}", "default")
        .replace("{name}", "example")
        .replace("{path}", "")
}

fn step_code(out: &mut String, n: usize, e: &Endpoint) {
    let _ = writeln!(
        out,
        "    // {n}. {}: {} {}",
        e.operation_id,
        e.method.as_str().to_uppercase(),
        e.path
    );
    let sub = e.path.rsplit('/').next().unwrap_or("");
    let after_name = e.path.contains("{name}/");
    let typed = type_path(&e.group, &e.version, &e.kind).and_then(|ty| {
        let call = match (after_name.then_some(sub), e.action.as_str()) {
            (None, "get") => r#"api.get("example").await?"#.to_owned(),
            (None, "list") | (None, "watch") | (None, "watchlist") => "api.list(&ListParams::default()).await?".to_owned(),
            (None, "post") => "api.create(&PostParams::default(), &object(\"example\")?).await?".to_owned(),
            (None, "put") => r#"api.replace("example", &PostParams::default(), &object("example")?).await?"#.to_owned(),
            (None, "patch") => r#"api.patch("example", &PatchParams::default(), &Patch::Merge(label())).await?"#.to_owned(),
            (None, "delete") => r#"api.delete("example", &DeleteParams::default()).await?"#.to_owned(),
            (None, "deletecollection") => "api.delete_collection(&DeleteParams::default(), &ListParams::default()).await?".to_owned(),
            (Some(s @ ("status" | "scale")), "get") => format!(r#"api.get_{s}("example").await?"#),
            (Some(s @ ("status" | "scale")), "put") => {
                format!(r#"api.replace_{s}("example", &PostParams::default(), serde_json::to_vec(&api.get_{s}("example").await?)?).await?"#)
            }
            (Some(s @ ("status" | "scale")), "patch") => {
                format!(r#"api.patch_{s}("example", &PatchParams::default(), &Patch::Merge(label())).await?"#)
            }
            (Some("log"), "get") => r#"api.logs("example", &Default::default()).await?"#.to_owned(),
            (Some("eviction"), "post") => r#"api.evict("example", &Default::default()).await?"#.to_owned(),
            _ => return None,
        };
        let scope = if e.path.contains("{namespace}") {
            "Api::namespaced(client.clone(), \"default\")"
        } else {
            "Api::all(client.clone())"
        };
        Some(format!("    {{\n        let api: Api<{ty}> = {scope};\n        let _ = {call};\n    }}\n"))
    });
    match typed {
        Some(code) => out.push_str(&code),
        None => {
            // No typed kube-rs call for it: the raw request.
            let _ = writeln!(
                out,
                "    {{\n        let request = http::Request::builder().method(\"{}\").uri(\"{}\").body(Vec::new())?;\n        let _ = client.request_text(request).await?;\n    }}",
                e.method.as_str().to_uppercase(),
                concrete_path(&e.path)
            );
        }
    }
}

/// A subresource (`.../{name}/scale`) is reached through its parent's `Api<K>` in kube-rs: the
/// step takes the parent's group, version and kind when the catalog has the parent.
fn with_parent_type(e: &Endpoint, catalog: &BTreeMap<String, Endpoint>) -> Endpoint {
    let Some((parent, _)) = e
        .path
        .rsplit_once('/')
        .filter(|(p, _)| p.ends_with("{name}"))
    else {
        return e.clone();
    };
    match catalog.values().find(|c| c.path == parent) {
        Some(p) => Endpoint {
            group: p.group.clone(),
            version: p.version.clone(),
            kind: p.kind.clone(),
            ..e.clone()
        },
        None => e.clone(),
    }
}

/// The test for one candidate.
pub fn code(
    c: &Candidate,
    journey: Option<&Journey>,
    catalog: &BTreeMap<String, Endpoint>,
) -> String {
    let e = &c.info;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// {} ({} {}) is conformance eligible and no test calls it;\n/// {} program(s) do, {} request(s).",
        e.operation_id,
        e.method.as_str().to_uppercase(),
        e.path,
        c.programs,
        c.hits
    );
    if !c.locs.is_empty() {
        let _ = writeln!(out, "/// Called from {}.", c.locs.join(", "));
    }
    let steps: Vec<Endpoint> = match journey {
        Some(j) => {
            let _ = writeln!(
                out,
                "/// The calls follow {}'s `{}`, seen {} time(s) in this order.",
                j.app, j.purpose, j.support
            );
            j.sequence
                .iter()
                .map(|op| {
                    catalog.get(op).cloned().unwrap_or_else(|| Endpoint {
                        operation_id: op.clone(),
                        ..e.clone()
                    })
                })
                .collect()
        }
        None => vec![e.clone()],
    };
    let mut body = String::new();
    for (i, s) in steps.iter().enumerate() {
        step_code(&mut body, i + 1, &with_parent_type(s, catalog));
    }
    // Only what the steps use, so the skeleton compiles without warnings.
    let imports: Vec<&str> = [
        "Api",
        "DeleteParams",
        "ListParams",
        "Patch",
        "PatchParams",
        "PostParams",
    ]
    .into_iter()
    .filter(|name| {
        body.contains(&format!("{name}<"))
            || body.contains(&format!("{name}::"))
            || body.contains(&format!("{name}("))
    })
    .collect();
    let _ = writeln!(
        out,
        "#[tokio::test]\n#[ignore = \"needs a cluster\"]\nasync fn {}() -> Result<(), Box<dyn std::error::Error>> {{",
        snake(&e.operation_id)
    );
    if !imports.is_empty() {
        let _ = writeln!(out, "    use kube::api::{{{}}};", imports.join(", "));
    }
    out.push_str("    let client = kube::Client::try_default().await?;\n");
    if body.contains("object(") {
        out.push_str(
            "    fn object<T: serde::de::DeserializeOwned>(name: &str) -> serde_json::Result<T> {\n        \
             serde_json::from_value(serde_json::json!({\"metadata\": {\"name\": name}}))\n    }\n",
        );
    }
    if body.contains("label()") {
        out.push_str(
            "    let label = || serde_json::json!({\"metadata\": {\"labels\": {\"whakapapa.dev/suggested\": \"true\"}}});\n",
        );
    }
    out.push_str(&body);
    out.push_str("    Ok(())\n}\n");
    out
}

/// A suggestion as the table lists it (without the code).
#[derive(Default, Serialize)]
struct SuggestionCells<'a> {
    endpoint: &'a str,
    level: Level,
    category: &'a str,
    programs: u64,
    hits: u64,
    lines_of_code: String,
    journey: String,
}

impl Render for Vec<Suggestion> {
    fn tables(&self) -> Vec<Table> {
        let rows: Vec<SuggestionCells<'_>> = self
            .iter()
            .map(|x| SuggestionCells {
                endpoint: &x.endpoint,
                level: x.level,
                category: &x.category,
                programs: x.programs,
                hits: x.hits,
                lines_of_code: x.locs.join("; "),
                journey: x.journey.as_ref().map(sequence_cell).unwrap_or_default(),
            })
            .collect();
        vec![Table::of("suggest", &rows)]
    }

    fn text(&self) -> String {
        text(self)
    }
}

/// As text: each suggestion's heading and code.
fn text(s: &[Suggestion]) -> String {
    let mut out = String::new();
    for (i, x) in s.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "// #{} {} — {} program(s), {} request(s)",
            i + 1,
            x.endpoint,
            x.programs,
            x.hits
        );
        out.push_str(&x.code);
    }
    if s.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

/// `suggest`.
fn suggest_query(
    conn: &Connection,
    f: &Filters,
    limit: usize,
    o: &journeys::Params,
) -> Result<Vec<Suggestion>> {
    let (rid, _, _) = release(conn, f)?;
    let sql = Sql::default();
    let catalog: BTreeMap<String, Endpoint> = sql
        .rows(
            conn,
            &format!(
                "SELECT {} FROM endpoints e WHERE e.release_id = {rid}",
                Endpoint::COLUMNS
            ),
            |x| Endpoint::from_row(x, 0),
        )?
        .into_iter()
        .map(|e| (e.operation_id.clone(), e))
        .collect();
    let candidates: Vec<Candidate> = gaps(conn, f)?
        .into_iter()
        .filter(|g| g.eligible)
        .filter_map(|g| {
            catalog.get(&g.endpoint).map(|info| Candidate {
                info: info.clone(),
                programs: g.programs,
                hits: g.hits,
                locs: g.locs.clone(),
            })
        })
        .collect();
    if candidates.is_empty() {
        return Ok(vec![]);
    }
    // Journeys are read until each endpoint a test is suggested for has its best one.
    let mut ranked = candidates.clone();
    rank(&mut ranked);
    let wanted: Vec<String> = ranked
        .iter()
        .take(limit)
        .map(|c| c.info.operation_id.clone())
        .collect();
    let js = journeys_query(conn, f, rid, o, |js| {
        wanted
            .iter()
            .all(|e| js.iter().any(|j| j.sequence.contains(e)))
    })?;
    Ok(suggest(candidates, &js, &catalog, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::usage::Method;

    #[test]
    fn parses_its_options() {
        crate::query::request::options(
            "suggest",
            &[("limit", "1")],
            Params {
                limit: 1,
                journeys: journeys::Params::default(),
            },
        );
    }

    fn info(
        op: &str,
        method: Method,
        path: &str,
        group: &str,
        kind: &str,
        action: &str,
    ) -> Endpoint {
        Endpoint {
            operation_id: op.into(),
            method,
            path: path.into(),
            level: Level::Stable,
            category: "apps".into(),
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            action: action.into(),
            description: None,
        }
    }

    #[test]
    fn writes_a_test_following_the_best_journey() {
        let read = info(
            "readAppsV1NamespacedDeployment",
            Method::Get,
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "apps",
            "Deployment",
            "get",
        );
        let scale = info(
            "patchAppsV1NamespacedDeploymentScale",
            Method::Patch,
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "apps",
            "Scale",
            "patch",
        );
        let nodes = info(
            "listCoreV1Node",
            Method::Get,
            "/api/v1/nodes",
            "",
            "Node",
            "list",
        );
        let catalog: BTreeMap<String, Endpoint> = [&read, &scale, &nodes]
            .iter()
            .map(|e| (e.operation_id.clone(), (*e).clone()))
            .collect();
        let journeys = vec![
            Journey {
                app: "other".into(),
                purpose: "x".into(),
                sequence: vec![nodes.operation_id.clone(), read.operation_id.clone()],
                support: 9,
            },
            Journey {
                app: "scaler".into(),
                purpose: "scaler::scale".into(),
                sequence: vec![read.operation_id.clone(), scale.operation_id.clone()],
                support: 4,
            },
        ];
        let cands = vec![
            Candidate {
                info: nodes.clone(),
                programs: 1,
                hits: 50,
                locs: vec![],
            },
            Candidate {
                info: scale.clone(),
                programs: 2,
                hits: 5,
                locs: vec!["src/scale.rs:7".into(), "src/main.rs:3".into()],
            },
        ];
        let s = suggest(cands, &journeys, &catalog, 5);
        assert_eq!(
            s.iter().map(|s| s.endpoint.as_str()).collect::<Vec<_>>(),
            [scale.operation_id.as_str(), nodes.operation_id.as_str()]
        );
        assert_eq!(s[0].journey.as_ref().unwrap().app, "scaler");
        assert_eq!(s[1].journey.as_ref().unwrap().app, "other");
        assert_eq!(
            s[0].code,
            r#"/// patchAppsV1NamespacedDeploymentScale (PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale) is conformance eligible and no test calls it;
/// 2 program(s) do, 5 request(s).
/// Called from src/scale.rs:7, src/main.rs:3.
/// The calls follow scaler's `scaler::scale`, seen 4 time(s) in this order.
#[tokio::test]
#[ignore = "needs a cluster"]
async fn patch_apps_v1_namespaced_deployment_scale() -> Result<(), Box<dyn std::error::Error>> {
    use kube::api::{Api, Patch, PatchParams};
    let client = kube::Client::try_default().await?;
    let label = || serde_json::json!({"metadata": {"labels": {"whakapapa.dev/suggested": "true"}}});
    // 1. readAppsV1NamespacedDeployment: GET /apis/apps/v1/namespaces/{namespace}/deployments/{name}
    {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), "default");
        let _ = api.get("example").await?;
    }
    // 2. patchAppsV1NamespacedDeploymentScale: PATCH /apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale
    {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), "default");
        let _ = api.patch_scale("example", &PatchParams::default(), &Patch::Merge(label())).await?;
    }
    Ok(())
}
"#
        );
        assert!(s[1].code.contains("let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());\n        let _ = api.list(&ListParams::default()).await?;"));
        let t = text(&s);
        assert!(t.starts_with(
            "// #1 patchAppsV1NamespacedDeploymentScale — 2 program(s), 5 request(s)\n/// patch"
        ));
        assert_eq!(
            s.tables()[0].rows[0][5..],
            [
                "src/scale.rs:7; src/main.rs:3",
                "readAppsV1NamespacedDeployment > patchAppsV1NamespacedDeploymentScale"
            ]
        );
    }

    #[test]
    fn falls_back_to_a_raw_request_and_maps_groups() {
        let proxy = info(
            "connectCoreV1GetNamespacedPodProxy",
            Method::Get,
            "/api/v1/namespaces/{namespace}/pods/{name}/proxy",
            "",
            "PodProxyOptions",
            "connect",
        );
        let mut out = String::new();
        step_code(&mut out, 1, &proxy);
        assert!(out.contains(r#"http::Request::builder().method("GET").uri("/api/v1/namespaces/default/pods/example/proxy").body(Vec::new())?"#), "{out}");
        assert_eq!(
            type_path("rbac.authorization.k8s.io", "v1", "Role").unwrap(),
            "k8s_openapi::api::rbac::v1::Role"
        );
        assert_eq!(
            type_path("apiextensions.k8s.io", "v1", "CustomResourceDefinition").unwrap(),
            "k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition"
        );
        assert_eq!(snake("listCoreV1Node"), "list_core_v1_node");
    }
}
