//! The verb, resource and object a request is about, derived from its method, path and query
//! exactly as kube-apiserver's request-info resolver does
//! (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`).
//!
//! Its verb is what the audit event records: `get` without a name is `list` (or `watch` with a
//! true `watch` parameter), `delete` without a name is `deletecollection`, the deprecated
//! `/watch/` and `/proxy/` path prefixes set the verb themselves, and every non-resource URL
//! (`/version`, `/api`, `/apis/apps/v1`, `/openapi/v2`, ...) records the lowercase HTTP method.

/// What a request is about, as kube-apiserver's `RequestInfo` holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the request names an API resource (else it is a non-resource URL).
    pub is_resource_request: bool,
    /// The URL path.
    pub path: String,
    /// The Kubernetes verb (`list`, `watch`, `get`, `create`, ...) or, for non-resource
    /// requests, the lowercase HTTP method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    /// The API group, empty for the core group.
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace, empty for cluster-scoped requests.
    pub namespace: String,
    /// The resource, e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `status` or `log`.
    pub subresource: String,
    /// The object's name, empty for collections.
    pub name: String,
    /// True when the verb came from a deprecated `/watch/` or `/proxy/` path prefix.
    pub verb_via_path_prefix: bool,
}

/// Prefixes under which the API server serves resources; `api` is the groupless one.
const API_PREFIXES: [&str; 2] = ["api", "apis"];
/// Path segments that set the verb themselves (deprecated forms).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Namespace subresources, so `/namespaces/x/status` is not mistaken for a resource `status`.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Resolves a request as kube-apiserver does; `query` holds the decoded query parameters.
pub fn resolve(method: &str, path: &str, query: &[(String, String)]) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_owned(),
        verb: method.to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let trimmed = path.trim_matches('/');
    let parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if parts.len() < 3 || !API_PREFIXES.contains(&parts[0]) {
        return info;
    }
    info.api_prefix = parts[0].to_owned();
    let mut rest = &parts[1..];
    if info.api_prefix != "api" {
        // One part (the prefix) is consumed already: a group needs group/version/resource.
        if rest.len() < 3 {
            return info;
        }
        info.api_group = rest[0].to_owned();
        rest = &rest[1..];
    }
    info.is_resource_request = true;
    info.api_version = rest[0].to_owned();
    rest = &rest[1..];

    if SPECIAL_VERBS.contains(&rest[0]) {
        if rest.len() < 2 {
            // kube-apiserver answers such a URL with an error; the verb stays the method's.
            return info;
        }
        info.verb = rest[0].to_owned();
        info.verb_via_path_prefix = true;
        rest = &rest[1..];
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_owned();
    }

    if rest[0] == "namespaces" && rest.len() > 1 {
        info.namespace = rest[1].to_owned();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }

    if rest.len() >= 3 && info.verb != "proxy" {
        info.subresource = rest[2].to_owned();
    }
    if rest.len() >= 2 {
        info.name = rest[1].to_owned();
    }
    if !rest.is_empty() {
        info.resource = rest[0].to_owned();
    }

    if info.name.is_empty() && info.verb == "get" {
        info.verb = if watch_requested(query) {
            "watch"
        } else {
            "list"
        }
        .to_owned();
        // A field selector on exactly one name makes it a request about that object.
        if let Some(name) = field_selector_name(query) {
            info.name = name;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_owned();
    }
    info
}

/// Whether the `watch` parameter asks for a watch: any value but `false` or `0`, as
/// kube-apiserver's fallback parser reads it (a bool parameter: `true`, `1`, ...).
pub fn watch_requested(query: &[(String, String)]) -> bool {
    query
        .iter()
        .find(|(k, _)| k == "watch")
        .is_some_and(|(_, v)| !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"))
}

/// The name a `fieldSelector` pins with `metadata.name=NAME` (or `==`), when it is the only
/// requirement and a valid path segment name.
fn field_selector_name(query: &[(String, String)]) -> Option<String> {
    let selector = &query.iter().find(|(k, _)| k == "fieldSelector")?.1;
    if selector.contains(',') {
        return None;
    }
    let value = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    let valid = !value.is_empty()
        && value != "."
        && value != ".."
        && !value.contains('/')
        && !value.contains('%');
    valid.then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resolves_like_kube_apiserver() {
        // (method, path, query, resource?, verb, group, version, namespace, resource, sub, name)
        #[allow(clippy::type_complexity)]
        let cases: &[(
            &str,
            &str,
            &[(&str, &str)],
            bool,
            &str,
            &str,
            &str,
            &str,
            &str,
            &str,
            &str,
        )] = &[
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[],
                true,
                "list",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[("watch", "true")],
                true,
                "watch",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[("watch", "1")],
                true,
                "watch",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[("watch", "false")],
                true,
                "list",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web-0",
                &[],
                true,
                "get",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web-0",
            ),
            (
                "HEAD",
                "/api/v1/namespaces/default/pods/web-0",
                &[],
                true,
                "get",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web-0",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web-0/log",
                &[],
                true,
                "get",
                "",
                "v1",
                "default",
                "pods",
                "log",
                "web-0",
            ),
            (
                "PUT",
                "/api/v1/namespaces/default/pods/web-0/status",
                &[],
                true,
                "update",
                "",
                "v1",
                "default",
                "pods",
                "status",
                "web-0",
            ),
            (
                "POST",
                "/api/v1/namespaces/default/configmaps",
                &[],
                true,
                "create",
                "",
                "v1",
                "default",
                "configmaps",
                "",
                "",
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                &[],
                true,
                "patch",
                "apps",
                "v1",
                "shop",
                "deployments",
                "scale",
                "web",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/default/pods/web-0",
                &[],
                true,
                "delete",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web-0",
            ),
            (
                "DELETE",
                "/api/v1/namespaces/default/pods",
                &[],
                true,
                "deletecollection",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/pods",
                &[],
                true,
                "list",
                "",
                "v1",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces",
                &[],
                true,
                "list",
                "",
                "v1",
                "",
                "namespaces",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop",
                &[],
                true,
                "get",
                "",
                "v1",
                "shop",
                "namespaces",
                "",
                "shop",
            ),
            (
                "PUT",
                "/api/v1/namespaces/shop/finalize",
                &[],
                true,
                "update",
                "",
                "v1",
                "shop",
                "namespaces",
                "finalize",
                "shop",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/status",
                &[],
                true,
                "get",
                "",
                "v1",
                "shop",
                "namespaces",
                "status",
                "shop",
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/default/pods",
                &[],
                true,
                "watch",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/default/pods/web-0",
                &[],
                true,
                "watch",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web-0",
            ),
            (
                "GET",
                "/api/v1/proxy/namespaces/default/pods/web-0/metrics",
                &[],
                true,
                "proxy",
                "",
                "v1",
                "default",
                "pods",
                "",
                "web-0",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/web-0/proxy/metrics",
                &[],
                true,
                "get",
                "",
                "v1",
                "default",
                "pods",
                "proxy",
                "web-0",
            ),
            (
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                &[("fieldSelector", "metadata.name=ctrl")],
                true,
                "list",
                "coordination.k8s.io",
                "v1",
                "kube-system",
                "leases",
                "",
                "ctrl",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                &[("fieldSelector", "metadata.name=a,status.phase=Running")],
                true,
                "list",
                "",
                "v1",
                "default",
                "pods",
                "",
                "",
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods/web-0/eviction",
                &[],
                true,
                "create",
                "",
                "v1",
                "default",
                "pods",
                "eviction",
                "web-0",
            ),
            (
                "GET",
                "/api/v1/nodes/n1",
                &[],
                true,
                "get",
                "",
                "v1",
                "",
                "nodes",
                "",
                "n1",
            ),
            (
                "OPTIONS",
                "/api/v1/nodes/n1",
                &[],
                true,
                "",
                "",
                "v1",
                "",
                "nodes",
                "",
                "n1",
            ),
            // Non-resource URLs: the lowercase method.
            ("GET", "/version", &[], false, "get", "", "", "", "", "", ""),
            ("GET", "/api", &[], false, "get", "", "", "", "", "", ""),
            ("GET", "/api/v1", &[], false, "get", "", "", "", "", "", ""),
            (
                "GET",
                "/apis/apps/v1",
                &[],
                false,
                "get",
                "",
                "",
                "",
                "",
                "",
                "",
            ),
            (
                "GET",
                "/openapi/v2",
                &[],
                false,
                "get",
                "",
                "",
                "",
                "",
                "",
                "",
            ),
            (
                "POST",
                "/healthz",
                &[],
                false,
                "post",
                "",
                "",
                "",
                "",
                "",
                "",
            ),
            ("HEAD", "/", &[], false, "head", "", "", "", "", "", ""),
        ];
        for &(method, path, query, res, verb, group, version, ns, resource, sub, name) in cases {
            let got = resolve(method, path, &q(query));
            let case = format!("{method} {path} {query:?}");
            assert_eq!(got.is_resource_request, res, "{case}");
            assert_eq!(got.verb, verb, "{case}");
            assert_eq!(got.api_group, group, "{case}");
            assert_eq!(got.api_version, version, "{case}");
            assert_eq!(got.namespace, ns, "{case}");
            assert_eq!(got.resource, resource, "{case}");
            assert_eq!(got.subresource, sub, "{case}");
            assert_eq!(got.name, name, "{case}");
        }
    }
}
