//! Maps an audit event's `(verb, requestURI)` to the endpoint it called, through path templates
//! compiled into a trie.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::catalog::Catalog;
//! use whakapapa_collector::mapping::{Mapper, Mapping, NonResourceKind, UnmappedReason};
//!
//! let spec = br#"{"info":{"version":"v1.36.0"},"paths":{
//!   "/api/v1/namespaces/{namespace}/pods":{"get":{"operationId":"listCoreV1NamespacedPod",
//!     "tags":["core_v1"],"x-kubernetes-action":"list"}},
//!   "/api/v1/namespaces/{namespace}/pods/{name}":{"get":{"operationId":"readCoreV1NamespacedPod",
//!     "tags":["core_v1"],"x-kubernetes-action":"get"}}}}"#;
//! let catalog = Catalog::from_openapi(spec, None).unwrap();
//! let mapper = Mapper::new(&catalog);
//! let Mapping::Endpoint(i) = mapper.map("watch", "/api/v1/namespaces/ns/pods?watch=true") else {
//!     panic!()
//! };
//! assert_eq!(catalog.endpoints[i].operation_id, "listCoreV1NamespacedPod");
//! assert_eq!(mapper.map("get", "/healthz/etcd"), Mapping::NonResource(NonResourceKind::Healthz));
//! assert_eq!(
//!     mapper.map("create", "/api/v1/namespaces/ns/pods"),
//!     Mapping::Unmapped(UnmappedReason::NoOperationForVerb)
//! );
//! ```
//!
//! How verbs and URIs are read:
//! - The audit `verb` is Kubernetes' verb: `get`, `list`, `watch` → GET; `create` → POST;
//!   `update` → PUT; `patch` → PATCH; `delete`, `deletecollection` → DELETE. Non-resource
//!   requests carry the lowercase HTTP method (`get`, `post`, `head`, `options`, ...).
//!   kube-apiserver writes resource HEAD requests as `get`, so they count as GET.
//! - The path alone tells list from get and collection from object, so the query string is
//!   ignored: a `watch` (`?watch=true`) on a collection maps to the collection's list endpoint,
//!   since the `watch*` operations are not endpoints. A `watch=true` on a single object is
//!   served by kube-apiserver as a `get` (the audit verb says `get`), and maps to the read
//!   endpoint. The legacy `/watch/` paths match the deprecated `watch*` operations and are
//!   reported unmapped as [`UnmappedReason::DeprecatedWatch`].
//! - Templates match segment by segment, literal children before parameters, with
//!   backtracking; a trailing `{path}` (proxy) or `{logpath}` takes the whole rest of the path.
//!   So objects and namespaces named `metrics`, `healthz`, `proxy` or `status` are ordinary
//!   names, and `.../proxy/metrics` is a proxy request.
//! - Only paths that match no template are classified as non-resource (`/healthz`, `/livez`,
//!   `/readyz`, `/metrics`, `/openapi/...`, discovery of groups the spec does not know, ...).
//!   Discovery documents that the spec lists (`/api`, `/apis/apps/v1`, `/version`) are
//!   endpoints, as APISnoop counts them.

use std::fmt;

use crate::catalog::{Catalog, Method};

/// No operation for this method at a node.
const NONE: u32 = u32::MAX;
/// A deprecated `watch*` operation (not an endpoint) at a node.
const WATCH: u32 = u32::MAX - 1;

/// Where a request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// An endpoint of the catalog: index into `Catalog::endpoints`.
    Endpoint(usize),
    /// A non-resource URL that is not an endpoint.
    NonResource(NonResourceKind),
    /// Matches no endpoint, for this reason.
    Unmapped(UnmappedReason),
}

impl Mapping {
    /// The stored form of the mapping: `endpoint`, `non_resource` or `unmapped:<reason>`.
    pub fn label(&self) -> &'static str {
        match self {
            Mapping::Endpoint(_) => "endpoint",
            Mapping::NonResource(_) => "non_resource",
            Mapping::Unmapped(reason) => reason.label(),
        }
    }

    /// The endpoint index, if the request mapped to one.
    pub fn endpoint(&self) -> Option<usize> {
        match self {
            Mapping::Endpoint(i) => Some(*i),
            _ => None,
        }
    }
}

/// Kinds of non-resource URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NonResourceKind {
    /// `/healthz` and its checks.
    Healthz,
    /// `/livez` and its checks.
    Livez,
    /// `/readyz` and its checks.
    Readyz,
    /// `/metrics`, `/metrics/slis`, ...
    Metrics,
    /// `/openapi/v2`, `/openapi/v3/...`.
    OpenApi,
    /// `/version` (when not an endpoint of the catalog).
    Version,
    /// `/api`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}` not in the catalog.
    Discovery,
    /// `/debug/...` (pprof, flags).
    Debug,
    /// `/`.
    Root,
    /// Any other path outside `/api` and `/apis`.
    Other,
}

impl NonResourceKind {
    /// Stable lowercase name (`healthz`, `livez`, `readyz`, `metrics`, `openapi`, `version`,
    /// `discovery`, `debug`, `root`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            NonResourceKind::Healthz => "healthz",
            NonResourceKind::Livez => "livez",
            NonResourceKind::Readyz => "readyz",
            NonResourceKind::Metrics => "metrics",
            NonResourceKind::OpenApi => "openapi",
            NonResourceKind::Version => "version",
            NonResourceKind::Discovery => "discovery",
            NonResourceKind::Debug => "debug",
            NonResourceKind::Root => "root",
            NonResourceKind::Other => "other",
        }
    }
}

impl fmt::Display for NonResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request maps to no endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum UnmappedReason {
    /// No path template matches (a CRD, an aggregated API, another release's API).
    UnknownPath,
    /// The path matches, but has no operation for the verb's HTTP method.
    NoOperationForVerb,
    /// A legacy `/watch/` path: a deprecated `watch*` operation, not an endpoint.
    DeprecatedWatch,
    /// The verb is not one kube-apiserver writes for requests.
    UnknownVerb,
    /// The request URI is not a path.
    InvalidUri,
    /// The request's release has no catalog loaded (set by the store, not the mapper).
    UnknownRelease,
}

impl UnmappedReason {
    /// Every reason.
    pub const ALL: [UnmappedReason; 6] = [
        UnmappedReason::UnknownPath,
        UnmappedReason::NoOperationForVerb,
        UnmappedReason::DeprecatedWatch,
        UnmappedReason::UnknownVerb,
        UnmappedReason::InvalidUri,
        UnmappedReason::UnknownRelease,
    ];

    /// Stable snake_case name (`unknown_path`, `no_operation_for_verb`, `deprecated_watch`,
    /// `unknown_verb`, `invalid_uri`, `unknown_release`).
    pub fn as_str(self) -> &'static str {
        match self {
            UnmappedReason::UnknownPath => "unknown_path",
            UnmappedReason::NoOperationForVerb => "no_operation_for_verb",
            UnmappedReason::DeprecatedWatch => "deprecated_watch",
            UnmappedReason::UnknownVerb => "unknown_verb",
            UnmappedReason::InvalidUri => "invalid_uri",
            UnmappedReason::UnknownRelease => "unknown_release",
        }
    }

    /// `unmapped:<reason>`, the stored form.
    pub fn label(self) -> &'static str {
        match self {
            UnmappedReason::UnknownPath => "unmapped:unknown_path",
            UnmappedReason::NoOperationForVerb => "unmapped:no_operation_for_verb",
            UnmappedReason::DeprecatedWatch => "unmapped:deprecated_watch",
            UnmappedReason::UnknownVerb => "unmapped:unknown_verb",
            UnmappedReason::InvalidUri => "unmapped:invalid_uri",
            UnmappedReason::UnknownRelease => "unmapped:unknown_release",
        }
    }

    /// The reason for its [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<UnmappedReason> {
        UnmappedReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for UnmappedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP method behind an audit verb, `None` for verbs kube-apiserver does not write.
pub fn method_for_verb(verb: &str) -> Option<Method> {
    Some(match verb {
        "get" | "list" | "watch" => Method::Get,
        "create" | "post" => Method::Post,
        "update" | "put" => Method::Put,
        "patch" => Method::Patch,
        "delete" | "deletecollection" => Method::Delete,
        "head" => Method::Head,
        // kube-apiserver leaves the verb empty for an OPTIONS on a resource path.
        "options" | "" => Method::Options,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
struct Node {
    /// Literal children sorted by [`by_len_then_bytes`], for binary search.
    literals: Vec<(Box<str>, u32)>,
    /// The `{param}` child (all parameter names at one position share it).
    param: Option<u32>,
    /// The `{path}` / `{logpath}` child that takes the rest of the path.
    tail: Option<u32>,
    /// Operation per method: endpoint index, [`NONE`] or [`WATCH`].
    ops: [u32; 7],
}

impl Node {
    fn new() -> Node {
        Node {
            literals: Vec::new(),
            param: None,
            tail: None,
            ops: [NONE; 7],
        }
    }

    fn has_ops(&self) -> bool {
        self.ops.iter().any(|&op| op != NONE)
    }
}

/// Compiled path templates of one catalog.
#[derive(Clone, Debug)]
pub struct Mapper {
    nodes: Vec<Node>,
}

impl Mapper {
    /// Compiles the catalog's endpoints (and its deprecated watch paths, to recognise them).
    pub fn new(catalog: &Catalog) -> Mapper {
        let mut mapper = Mapper {
            nodes: vec![Node::new()],
        };
        for (i, endpoint) in catalog.endpoints.iter().enumerate() {
            let node = mapper.insert(&endpoint.path);
            let index = u32::try_from(i).expect("fewer than 4 billion endpoints");
            mapper.nodes[node].ops[endpoint.method.index()] = index;
        }
        for path in &catalog.watch_paths {
            let node = mapper.insert(path);
            let slot = &mut mapper.nodes[node].ops[Method::Get.index()];
            if *slot == NONE {
                *slot = WATCH;
            }
        }
        for node in &mut mapper.nodes {
            node.literals.sort_by(|a, b| by_len_then_bytes(&a.0, &b.0));
        }
        mapper
    }

    fn insert(&mut self, template: &str) -> usize {
        let mut node = 0usize;
        let segments: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
        for (n, segment) in segments.iter().enumerate() {
            let is_param = segment.starts_with('{') && segment.ends_with('}');
            let is_last = n + 1 == segments.len();
            let next = if is_param && is_last && matches!(*segment, "{path}" | "{logpath}") {
                self.nodes[node].tail
            } else if is_param {
                self.nodes[node].param
            } else {
                self.nodes[node]
                    .literals
                    .iter()
                    .find(|(s, _)| &**s == *segment)
                    .map(|(_, i)| *i)
            };
            let next = match next {
                Some(next) => next as usize,
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(Node::new());
                    let id32 = id as u32;
                    let parent = &mut self.nodes[node];
                    if is_param && is_last && matches!(*segment, "{path}" | "{logpath}") {
                        parent.tail = Some(id32);
                    } else if is_param {
                        parent.param = Some(id32);
                    } else {
                        parent.literals.push(((*segment).into(), id32));
                    }
                    id
                }
            };
            node = next;
        }
        node
    }

    /// Maps an audit event's verb and request URI.
    pub fn map(&self, verb: &str, request_uri: &str) -> Mapping {
        let Some(path) = path_of(request_uri) else {
            return Mapping::Unmapped(UnmappedReason::InvalidUri);
        };
        let method = method_for_verb(verb);
        match self.walk(0, path) {
            Some(node) => {
                let Some(method) = method else {
                    return Mapping::Unmapped(UnmappedReason::UnknownVerb);
                };
                match self.nodes[node as usize].ops[method.index()] {
                    NONE => Mapping::Unmapped(UnmappedReason::NoOperationForVerb),
                    WATCH => Mapping::Unmapped(UnmappedReason::DeprecatedWatch),
                    i => Mapping::Endpoint(i as usize),
                }
            }
            None => classify_unmatched(path),
        }
    }

    /// Maps an HTTP method and path (no query) directly.
    pub fn map_method(&self, method: Method, path: &str) -> Mapping {
        match self.walk(0, path) {
            Some(node) => match self.nodes[node as usize].ops[method.index()] {
                NONE => Mapping::Unmapped(UnmappedReason::NoOperationForVerb),
                WATCH => Mapping::Unmapped(UnmappedReason::DeprecatedWatch),
                i => Mapping::Endpoint(i as usize),
            },
            None => classify_unmatched(path),
        }
    }

    /// The node the rest of a path leads to from `node`, literal children first.
    fn walk(&self, node: u32, rest: &str) -> Option<u32> {
        let rest = rest.trim_start_matches('/');
        let here = &self.nodes[node as usize];
        if rest.is_empty() {
            return here.has_ops().then_some(node);
        }
        let (segment, after) = rest.split_once('/').unwrap_or((rest, ""));
        if let Ok(i) = here
            .literals
            .binary_search_by(|(s, _)| by_len_then_bytes(s, segment))
            && let Some(found) = self.walk(here.literals[i].1, after)
        {
            return Some(found);
        }
        if let Some(param) = here.param
            && let Some(found) = self.walk(param, after)
        {
            return Some(found);
        }
        here.tail.filter(|&t| self.nodes[t as usize].has_ops())
    }
}

/// Orders segments by length first: most comparisons in a binary search then end on the
/// length, without touching the bytes.
fn by_len_then_bytes(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The path of a request URI: without query or fragment, and without scheme and host if the
/// URI is absolute. `None` if there is no path.
fn path_of(uri: &str) -> Option<&str> {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let mut path = &uri[..end];
    for scheme in ["https://", "http://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            path = rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    path.starts_with('/').then_some(path)
}

/// What a path that matches no template is.
fn classify_unmatched(path: &str) -> Mapping {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let first = segments.next();
    let count = 1 + segments.count();
    let kind = match first {
        None => NonResourceKind::Root,
        Some("api") if count <= 2 => NonResourceKind::Discovery,
        Some("apis") if count <= 3 => NonResourceKind::Discovery,
        Some("api" | "apis") => {
            // `/api/v1/watch/...` or `/apis/g/v/watch/...` of a resource the spec lacks is still
            // an unknown path: only matched watch templates are `deprecated_watch`.
            return Mapping::Unmapped(UnmappedReason::UnknownPath);
        }
        Some("healthz") => NonResourceKind::Healthz,
        Some("livez") => NonResourceKind::Livez,
        Some("readyz") => NonResourceKind::Readyz,
        Some("metrics") => NonResourceKind::Metrics,
        Some("openapi") => NonResourceKind::OpenApi,
        Some("version") => NonResourceKind::Version,
        Some("debug") => NonResourceKind::Debug,
        Some(_) => NonResourceKind::Other,
    };
    Mapping::NonResource(kind)
}

#[cfg(test)]
mod tests;
