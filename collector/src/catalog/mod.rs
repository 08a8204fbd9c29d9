//! The endpoint catalog of a Kubernetes release, built from its OpenAPI v2 document the way
//! APISnoop builds it.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::catalog::{Catalog, Level};
//!
//! let spec = br#"{"swagger":"2.0","info":{"title":"Kubernetes","version":"v1.36.0"},
//!   "paths":{"/api/v1/namespaces/{namespace}/pods":{"get":{
//!     "operationId":"listCoreV1NamespacedPod","tags":["core_v1"],
//!     "description":"list or watch objects of kind Pod",
//!     "x-kubernetes-action":"list",
//!     "x-kubernetes-group-version-kind":{"group":"","version":"v1","kind":"Pod"}}}}}"#;
//! let catalog = Catalog::from_openapi(spec, None).unwrap();
//! assert_eq!(catalog.release, "1.36.0");
//! let pods = &catalog.endpoints[0];
//! assert_eq!((pods.level, pods.category.as_str(), pods.eligible), (Level::Stable, "core", true));
//! ```
//!
//! The rules (APISnoop's `load_open_api`): endpoints are all operations except the deprecated
//! `watch*` ones (`x-kubernetes-action` `watch` / `watchlist`); level is alpha if the path
//! contains "alpha", beta if it contains "beta" (and the two service account issuer discovery
//! operations are beta), else stable; category is the first tag up to its first `_`;
//! deprecated means the description mentions "deprecated" in any case; eligible means stable,
//! not deprecated and not in the ineligible list; pending means eligible but for the pending
//! eligible list ([`Catalog::apply_pending`]), a third state counted apart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

mod conformance;

pub use conformance::{ConformanceTest, Pending};

/// Operations that are beta although their path does not say so (APISnoop hard-codes these).
const BETA_WITHOUT_BETA_PATH: [&str; 2] = [
    "getServiceAccountIssuerOpenIDConfiguration",
    "getServiceAccountIssuerOpenIDKeyset",
];

/// An HTTP method of an OpenAPI operation.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// GET
    #[default]
    Get,
    /// PUT
    Put,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// PATCH
    Patch,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
}

impl Method {
    /// Every method, in the order OpenAPI v2 lists them.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Put,
        Method::Post,
        Method::Delete,
        Method::Patch,
        Method::Head,
        Method::Options,
    ];

    /// Lowercase name as in the OpenAPI document (`get`, `put`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
            Method::Head => "head",
            Method::Options => "options",
        }
    }

    /// The method for its lowercase name.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// A dense index (0..7), for tables indexed by method.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// API maturity of an endpoint.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Path contains "alpha".
    Alpha,
    /// Path contains "beta" (or one of the two hard-coded beta operations).
    Beta,
    /// Everything else.
    #[default]
    Stable,
}

impl Level {
    /// `alpha`, `beta` or `stable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Alpha => "alpha",
            Level::Beta => "beta",
            Level::Stable => "stable",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One endpoint: an OpenAPI operation counted for coverage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The operation's `operationId`, e.g. `listCoreV1NamespacedPod`.
    pub operation_id: String,
    /// HTTP method.
    pub method: Method,
    /// Path template, e.g. `/api/v1/namespaces/{namespace}/pods`.
    pub path: String,
    /// Maturity.
    pub level: Level,
    /// First tag up to its first `_` (`core`, `apps`, `rbacAuthorization`, ...).
    pub category: String,
    /// `x-kubernetes-group-version-kind` group (`""` for core), if the operation has a GVK.
    pub group: Option<String>,
    /// `x-kubernetes-group-version-kind` version.
    pub version: Option<String>,
    /// `x-kubernetes-group-version-kind` kind.
    pub kind: Option<String>,
    /// `x-kubernetes-action` (`get`, `list`, `create`, `connect`, ...).
    pub action: Option<String>,
    /// The description mentions "deprecated".
    pub deprecated: bool,
    /// The operation's description (APISnoop's coverage export carries it).
    pub description: Option<String>,
    /// Conformance-eligible: stable, not deprecated, not ruled out, not pending.
    pub eligible: bool,
    /// Would be eligible, but the pending eligible list names it: not counted as eligible yet.
    pub pending: bool,
    /// Why the endpoint is ruled out of conformance, when the ineligible list names it.
    pub ineligible_reason: Option<String>,
    /// The ineligible list's link for the reason.
    pub ineligible_link: Option<String>,
}

/// The endpoints of one release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// Release label: the spec's `info.version` without a leading `v` (`v1.36.0` → `1.36.0`).
    /// Specs that say `unversioned` (as kube-apiserver's `/openapi/v2` does) keep that label;
    /// callers should then ask for one.
    pub release: String,
    /// Endpoints ordered by path, then method.
    pub endpoints: Vec<Endpoint>,
    /// Path templates of the deprecated `watch*` operations, which are not endpoints; the
    /// mapper uses them to say why a `/watch/` request maps to none.
    pub watch_paths: Vec<String>,
}

impl Catalog {
    /// Builds the catalog from an OpenAPI v2 document (JSON), with an optional list of endpoints
    /// ruled out of conformance.
    pub fn from_openapi(
        bytes: &[u8],
        ineligible: Option<&Ineligible>,
    ) -> Result<Catalog, CatalogError> {
        let spec: Spec = serde_json::from_slice(bytes).map_err(|e| CatalogError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e),
        })?;
        let paths = spec.paths.ok_or(CatalogError::NoPaths)?;
        let extensions = spec.extensions;
        let order = spec.order;
        let mut endpoints = Vec::new();
        let mut watch_paths = Vec::new();
        let mut seen = HashSet::new();
        for (path, item) in paths {
            if !path.starts_with('/') {
                return Err(CatalogError::BadPath { path });
            }
            for (method, op) in item.operations() {
                let Some(op) = op else { continue };
                if matches!(op.action.as_deref(), Some("watch" | "watchlist")) {
                    watch_paths.push(path.clone());
                    continue;
                }
                let operation_id = match op.operation_id.as_deref() {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => {
                        return Err(CatalogError::NoOperationId {
                            path,
                            method: method.as_str(),
                        });
                    }
                };
                if !seen.insert(operation_id.clone()) {
                    return Err(CatalogError::DuplicateOperationId { operation_id });
                }
                let level = if path.contains("alpha") {
                    Level::Alpha
                } else if path.contains("beta")
                    || BETA_WITHOUT_BETA_PATH.contains(&operation_id.as_str())
                {
                    Level::Beta
                } else {
                    Level::Stable
                };
                let category = op
                    .tags
                    .first()
                    .map(|tag| tag.split('_').next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                let deprecated = op
                    .description
                    .as_deref()
                    .is_some_and(|d| d.to_ascii_lowercase().contains("deprecated"));
                let ruled_out = ineligible.and_then(|list| list.get(&operation_id));
                let eligible = level == Level::Stable && !deprecated && ruled_out.is_none();
                let (group, version, kind) = match op.gvk {
                    Some(gvk) => (Some(gvk.group), Some(gvk.version), Some(gvk.kind)),
                    None => (None, None, None),
                };
                endpoints.push(Endpoint {
                    operation_id,
                    method,
                    path: path.clone(),
                    level,
                    category,
                    group,
                    version,
                    kind,
                    action: op.action,
                    deprecated,
                    description: op.description,
                    eligible,
                    pending: false,
                    ineligible_reason: ruled_out.map(|r| r.reason.clone()),
                    ineligible_link: ruled_out.and_then(|r| r.link.clone()),
                });
            }
        }
        if endpoints.is_empty() {
            return Err(CatalogError::NoOperations);
        }
        mark_extensions(&mut endpoints, &extensions);
        if !order.is_empty() {
            // Endpoints keep the positions they were stored at; new ones follow in path order.
            let position: HashMap<&str, usize> = order
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            let mut keyed: Vec<(usize, Endpoint)> = endpoints
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    let at = position
                        .get(e.operation_id.as_str())
                        .copied()
                        .unwrap_or(order.len() + i);
                    (at, e)
                })
                .collect();
            keyed.sort_by_key(|(at, _)| *at);
            endpoints = keyed.into_iter().map(|(_, e)| e).collect();
        }
        watch_paths.dedup();
        let release = spec
            .info
            .and_then(|i| i.version)
            .map(|v| v.strip_prefix('v').unwrap_or(&v).to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unversioned".to_owned());
        Ok(Catalog {
            release,
            endpoints,
            watch_paths,
        })
    }

    /// The endpoint with this operation id.
    pub fn endpoint(&self, operation_id: &str) -> Option<(usize, &Endpoint)> {
        self.endpoints
            .iter()
            .enumerate()
            .find(|(_, e)| e.operation_id == operation_id)
    }

    /// Marks the endpoints the pending eligible list names that would otherwise be eligible
    /// as pending, no longer eligible; returns the listed operation ids that are not such an
    /// endpoint of this catalog (unknown, or not eligible for another reason).
    pub fn apply_pending(&mut self, pending: &Pending) -> Vec<String> {
        let mut marked = HashSet::new();
        for e in &mut self.endpoints {
            if e.eligible && pending.contains(&e.operation_id) {
                e.eligible = false;
                e.pending = true;
            }
            if e.pending {
                marked.insert(e.operation_id.as_str());
            }
        }
        pending
            .iter()
            .filter(|id| !marked.contains(id))
            .map(str::to_owned)
            .collect()
    }

    /// Counts: (endpoints, stable, eligible).
    pub fn counts(&self) -> (usize, usize, usize) {
        let stable = self
            .endpoints
            .iter()
            .filter(|e| e.level == Level::Stable)
            .count();
        let eligible = self.endpoints.iter().filter(|e| e.eligible).count();
        (self.endpoints.len(), stable, eligible)
    }
}

/// Endpoints of extension groups (`group` → what serves it: `CustomResourceDefinition` or
/// `APIService`): their group is their category, and they are never conformance eligible
/// (conformance is about Kubernetes' own APIs).
fn mark_extensions(endpoints: &mut [Endpoint], extensions: &BTreeMap<String, String>) {
    for endpoint in endpoints {
        let Some(kind) = endpoint.group.as_deref().and_then(|g| extensions.get(g)) else {
            continue;
        };
        endpoint.category = endpoint.group.clone().unwrap_or_default();
        endpoint.eligible = false;
        endpoint.ineligible_reason = Some(format!(
            "extension: served by a {kind}, not by Kubernetes itself"
        ));
        endpoint.ineligible_link = None;
    }
}

/// The OpenAPI v3 documents a server lists at `/openapi/v3`
/// (`{"paths":{"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=..."}}}`):
/// each group-version's name and the URL to fetch it from, in name order.
pub fn openapi_v3_documents(bytes: &[u8]) -> Result<Vec<(String, String)>, CatalogError> {
    #[derive(Deserialize)]
    struct Discovery {
        paths: Option<BTreeMap<String, Entry>>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "serverRelativeURL")]
        url: Option<String>,
    }
    let discovery: Discovery = serde_json::from_slice(bytes).map_err(|e| CatalogError::Json {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e),
    })?;
    let paths = discovery.paths.ok_or(CatalogError::NoPaths)?;
    paths
        .into_iter()
        .map(|(name, entry)| match entry.url {
            Some(url) if url.starts_with('/') => Ok((name, url)),
            _ => Err(CatalogError::NoDocumentUrl { name }),
        })
        .collect()
}

/// One OpenAPI document made of a live cluster's documents: the paths of its `/openapi/v2`
/// (`v2`, if it has one) and of every `/openapi/v3` group-version document (`v3`), over those of
/// the document made last time (`previous`, whose operations keep their positions), with
/// `extensions` (group → `CustomResourceDefinition` or `APIService`) recorded in it, so the
/// catalog [`Catalog::from_openapi`] builds from the result is the same whenever it is rebuilt.
///
/// A path is taken from the first of v2, v3 and previous that has it; a previous path whose
/// operations the cluster now serves under another path is dropped. `info` is v2's (else the
/// first v3 document's).
pub fn merge_openapi(
    v2: Option<&[u8]>,
    v3: &[Vec<u8>],
    previous: Option<&[u8]>,
    extensions: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CatalogError> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        info: Option<serde_json::Value>,
        #[serde(default)]
        paths: Option<BTreeMap<String, serde_json::Value>>,
        #[serde(rename = "x-whakapapa-extensions", default)]
        extensions: BTreeMap<String, String>,
    }
    let parse = |bytes: &[u8]| -> Result<Doc, CatalogError> {
        serde_json::from_slice(bytes).map_err(|e| CatalogError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e),
        })
    };
    let mut extensions = extensions.clone();
    let mut info = None;
    let mut paths: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for bytes in v2.into_iter().chain(v3.iter().map(Vec::as_slice)) {
        let doc = parse(bytes)?;
        info = info.or(doc.info);
        extensions.extend(doc.extensions);
        for (path, item) in doc.paths.unwrap_or_default() {
            paths.entry(path).or_insert(item);
        }
    }
    if paths.is_empty() {
        return Err(CatalogError::NoOperations);
    }
    let operation_ids = |item: &serde_json::Value| -> Vec<String> {
        Method::ALL
            .iter()
            .filter_map(|m| item.get(m.as_str())?.get("operationId")?.as_str())
            .map(str::to_owned)
            .collect()
    };
    let mut order = Vec::new();
    if let Some(previous) = previous {
        let before = Catalog::from_openapi(previous, None)?;
        order = before
            .endpoints
            .into_iter()
            .map(|e| e.operation_id)
            .collect();
        let doc = parse(previous)?;
        let served: HashSet<String> = paths.values().flat_map(operation_ids).collect();
        for (path, item) in doc.paths.unwrap_or_default() {
            if paths.contains_key(&path)
                || operation_ids(&item).iter().any(|id| served.contains(id))
            {
                continue;
            }
            paths.insert(path, item);
        }
        // A group once served by an extension stays one for the endpoints it had.
        for (group, kind) in doc.extensions {
            extensions.entry(group).or_insert(kind);
        }
        info = info.or(doc.info);
    }
    let mut doc = serde_json::Map::new();
    doc.insert("swagger".into(), "2.0".into());
    if let Some(info) = info {
        doc.insert("info".into(), info);
    }
    doc.insert(
        "paths".into(),
        serde_json::to_value(paths).unwrap_or_default(),
    );
    if !extensions.is_empty() {
        doc.insert(
            "x-whakapapa-extensions".into(),
            serde_json::to_value(extensions).unwrap_or_default(),
        );
    }
    if !order.is_empty() {
        doc.insert("x-whakapapa-order".into(), order.into());
    }
    serde_json::to_vec(&serde_json::Value::Object(doc)).map_err(|e| CatalogError::Json {
        line: 0,
        column: 0,
        message: e.to_string(),
    })
}

/// Endpoints ruled out of conformance, in APISnoop's `ineligible_endpoints.json` format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ineligible {
    entries: HashMap<String, IneligibleEntry>,
}

/// Why one endpoint is ineligible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IneligibleEntry {
    /// The operation id.
    pub endpoint: String,
    /// Why it is ruled out.
    pub reason: String,
    /// Where that was decided.
    #[serde(default)]
    pub link: Option<String>,
}

impl Ineligible {
    /// Parses the JSON array of `{endpoint, reason, link}`.
    pub fn from_json(bytes: &[u8]) -> Result<Ineligible, CatalogError> {
        let list: Vec<IneligibleEntry> =
            serde_json::from_slice(bytes).map_err(|e| CatalogError::IneligibleJson {
                line: e.line(),
                column: e.column(),
                message: strip_position(&e),
            })?;
        Ok(Ineligible {
            entries: list.into_iter().map(|e| (e.endpoint.clone(), e)).collect(),
        })
    }

    /// The entry for an operation id.
    pub fn get(&self, operation_id: &str) -> Option<&IneligibleEntry> {
        self.entries.get(operation_id)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Why a catalog could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogError {
    /// The OpenAPI document is not valid JSON of the expected shape.
    #[error("invalid OpenAPI document at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// No `paths` object: not an OpenAPI v2 document.
    #[error("OpenAPI document has no `paths`; is it an OpenAPI v2 (swagger 2.0) document?")]
    NoPaths,
    /// `paths` has no operations at all.
    #[error("OpenAPI document has no operations")]
    NoOperations,
    /// A path key that is not a path.
    #[error("OpenAPI path {path:?} does not start with `/`")]
    BadPath {
        /// The key.
        path: String,
    },
    /// An operation without `operationId`.
    #[error("OpenAPI operation `{method} {path}` has no operationId")]
    NoOperationId {
        /// Path template.
        path: String,
        /// Method.
        method: &'static str,
    },
    /// Two operations with the same `operationId`.
    #[error("OpenAPI operationId `{operation_id}` is used twice")]
    DuplicateOperationId {
        /// The id.
        operation_id: String,
    },
    /// An `/openapi/v3` entry without a `serverRelativeURL`.
    #[error("OpenAPI v3 discovery entry {name:?} has no serverRelativeURL")]
    NoDocumentUrl {
        /// The group-version's name (`apis/apps/v1`).
        name: String,
    },
    /// The ineligible list is not an array of `{endpoint, reason, link}`.
    #[error("invalid ineligible endpoints list at line {line} column {column}: {message}")]
    IneligibleJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was wrong.
        message: String,
    },
    /// A conformance metadata list (YAML) is not of the expected shape.
    #[error("invalid {what} at line {line} column {column}: {message}")]
    MetadataYaml {
        /// Which list.
        what: &'static str,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What was wrong.
        message: String,
    },
}

fn strip_position(e: &serde_json::Error) -> String {
    let mut message = e.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    message
}

/// The parts of an OpenAPI v2 document the catalog needs; the rest (definitions, ~90 % of the
/// bytes) is skipped without being built.
#[derive(Deserialize)]
struct Spec {
    #[serde(default)]
    info: Option<Info>,
    #[serde(default)]
    paths: Option<BTreeMap<String, PathItem>>,
    /// Extension groups of a live cluster ([`merge_openapi`]).
    #[serde(rename = "x-whakapapa-extensions", default)]
    extensions: BTreeMap<String, String>,
    /// Operation ids in the order they were stored ([`merge_openapi`]).
    #[serde(rename = "x-whakapapa-order", default)]
    order: Vec<String>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
struct PathItem {
    get: Option<Operation>,
    put: Option<Operation>,
    post: Option<Operation>,
    delete: Option<Operation>,
    patch: Option<Operation>,
    head: Option<Operation>,
    options: Option<Operation>,
}

impl PathItem {
    fn operations(self) -> [(Method, Option<Operation>); 7] {
        [
            (Method::Get, self.get),
            (Method::Put, self.put),
            (Method::Post, self.post),
            (Method::Delete, self.delete),
            (Method::Patch, self.patch),
            (Method::Head, self.head),
            (Method::Options, self.options),
        ]
    }
}

#[derive(Deserialize)]
struct Operation {
    #[serde(rename = "operationId", default)]
    operation_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "x-kubernetes-action", default)]
    action: Option<String>,
    #[serde(rename = "x-kubernetes-group-version-kind", default)]
    gvk: Option<Gvk>,
}

#[derive(Deserialize)]
struct Gvk {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

#[cfg(test)]
pub(crate) mod tests;
