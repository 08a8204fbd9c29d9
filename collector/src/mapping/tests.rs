use super::*;
use crate::catalog::Catalog;

/// A small spec with the shapes that matter: namespaced and cluster-scoped resources,
/// subresources, proxy with a tail, namespace status, discovery and a legacy watch path.
const FIXTURE: &str = r#"{"info":{"version":"v1.36.0"},"paths":{
 "/api/":{"get":{"operationId":"getCoreAPIVersions","tags":["core"]}},
 "/api/v1/":{"get":{"operationId":"getCoreV1APIResources","tags":["core_v1"]}},
 "/api/v1/namespaces":{"get":{"operationId":"listCoreV1Namespace","tags":["core_v1"]},
                       "post":{"operationId":"createCoreV1Namespace","tags":["core_v1"]}},
 "/api/v1/namespaces/{name}":{"get":{"operationId":"readCoreV1Namespace","tags":["core_v1"]},
                              "delete":{"operationId":"deleteCoreV1Namespace","tags":["core_v1"]}},
 "/api/v1/namespaces/{name}/status":{"get":{"operationId":"readCoreV1NamespaceStatus","tags":["core_v1"]}},
 "/api/v1/namespaces/{namespace}/pods":{"get":{"operationId":"listCoreV1NamespacedPod","tags":["core_v1"]},
    "delete":{"operationId":"deleteCoreV1CollectionNamespacedPod","tags":["core_v1"]}},
 "/api/v1/namespaces/{namespace}/pods/{name}":{"get":{"operationId":"readCoreV1NamespacedPod","tags":["core_v1"]}},
 "/api/v1/namespaces/{namespace}/pods/{name}/proxy":{"get":{"operationId":"connectCoreV1GetNamespacedPodProxy","tags":["core_v1"]}},
 "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}":{"get":{"operationId":"connectCoreV1GetNamespacedPodProxyWithPath","tags":["core_v1"]},
    "head":{"operationId":"connectCoreV1HeadNamespacedPodProxyWithPath","tags":["core_v1"]}},
 "/api/v1/nodes":{"get":{"operationId":"listCoreV1Node","tags":["core_v1"]}},
 "/api/v1/watch/namespaces/{namespace}/pods":{"get":{"operationId":"watchCoreV1NamespacedPodList","tags":["core_v1"],"x-kubernetes-action":"watchlist"}},
 "/apis/apps/":{"get":{"operationId":"getAppsAPIGroup","tags":["apps"]}},
 "/version/":{"get":{"operationId":"getCodeVersion","tags":["version"]}},
 "/logs/{logpath}":{"get":{"operationId":"logFileHandler","tags":["logs"]}}
}}"#;

fn fixture() -> (Catalog, Mapper) {
    let catalog = Catalog::from_openapi(FIXTURE.as_bytes(), None).unwrap();
    let mapper = Mapper::new(&catalog);
    (catalog, mapper)
}

/// The operation id, non-resource kind or unmapped reason a request maps to.
fn outcome(catalog: &Catalog, mapping: Mapping) -> String {
    match mapping {
        Mapping::Endpoint(i) => catalog.endpoints[i].operation_id.clone(),
        Mapping::NonResource(kind) => format!("non_resource:{kind}"),
        Mapping::Unmapped(reason) => reason.label().to_owned(),
    }
}

#[test]
fn maps_core_cases_on_a_fixture() {
    let (catalog, mapper) = fixture();
    let table: &[(&str, &str, &str)] = &[
        (
            "list",
            "/api/v1/namespaces/default/pods?limit=500",
            "listCoreV1NamespacedPod",
        ),
        (
            "watch",
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1",
            "listCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/default/pods/web-0",
            "readCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/default/pods/web-0?watch=true",
            "readCoreV1NamespacedPod",
        ),
        (
            "deletecollection",
            "/api/v1/namespaces/default/pods",
            "deleteCoreV1CollectionNamespacedPod",
        ),
        ("create", "/api/v1/namespaces", "createCoreV1Namespace"),
        ("get", "/api/v1/namespaces/default", "readCoreV1Namespace"),
        (
            "get",
            "/api/v1/namespaces/default/status",
            "readCoreV1NamespaceStatus",
        ),
        (
            "delete",
            "/api/v1/namespaces/default",
            "deleteCoreV1Namespace",
        ),
        ("list", "/api/v1/nodes", "listCoreV1Node"),
        // Names that look like non-resource paths or subresources are ordinary names.
        ("get", "/api/v1/namespaces/metrics", "readCoreV1Namespace"),
        (
            "get",
            "/api/v1/namespaces/healthz/pods/proxy",
            "readCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/proxy/pods/metrics",
            "readCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/status/status",
            "readCoreV1NamespaceStatus",
        ),
        // Proxy with any tail, including /metrics and /healthz.
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/proxy",
            "connectCoreV1GetNamespacedPodProxy",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/proxy/",
            "connectCoreV1GetNamespacedPodProxy",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0:8080/proxy/metrics",
            "connectCoreV1GetNamespacedPodProxyWithPath",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/proxy/healthz",
            "connectCoreV1GetNamespacedPodProxyWithPath",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/proxy/a/b/c?x=1",
            "connectCoreV1GetNamespacedPodProxyWithPath",
        ),
        (
            "head",
            "/api/v1/namespaces/ns/pods/web-0/proxy/a",
            "connectCoreV1HeadNamespacedPodProxyWithPath",
        ),
        ("get", "/logs/kube-apiserver/audit.log", "logFileHandler"),
        // Discovery listed in the spec is an endpoint, with or without the trailing slash.
        ("get", "/api", "getCoreAPIVersions"),
        ("get", "/api/v1", "getCoreV1APIResources"),
        ("get", "/apis/apps", "getAppsAPIGroup"),
        ("get", "/version", "getCodeVersion"),
        ("get", "/version/?timeout=32s", "getCodeVersion"),
        // Non-resource URLs.
        ("get", "/healthz", "non_resource:healthz"),
        ("get", "/livez/etcd", "non_resource:livez"),
        ("get", "/readyz?verbose", "non_resource:readyz"),
        ("get", "/metrics", "non_resource:metrics"),
        ("get", "/openapi/v2", "non_resource:openapi"),
        (
            "get",
            "/openapi/v3/apis/apps/v1?hash=abc",
            "non_resource:openapi",
        ),
        ("get", "/apis", "non_resource:discovery"),
        ("get", "/apis/example.com", "non_resource:discovery"),
        ("get", "/apis/example.com/v1", "non_resource:discovery"),
        ("get", "/debug/pprof/profile", "non_resource:debug"),
        ("get", "/", "non_resource:root"),
        ("get", "/ui/", "non_resource:other"),
        // Unmapped, with the reason.
        (
            "list",
            "/apis/example.com/v1/widgets",
            "unmapped:unknown_path",
        ),
        (
            "list",
            "/api/v1/namespaces/ns/widgets",
            "unmapped:unknown_path",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods",
            "unmapped:no_operation_for_verb",
        ),
        (
            "watch",
            "/api/v1/watch/namespaces/ns/pods",
            "unmapped:deprecated_watch",
        ),
        (
            "impersonate",
            "/api/v1/namespaces/ns/pods",
            "unmapped:unknown_verb",
        ),
        ("get", "*", "unmapped:invalid_uri"),
        ("get", "", "unmapped:invalid_uri"),
    ];
    let mut failures = Vec::new();
    for (verb, uri, want) in table {
        let got = outcome(&catalog, mapper.map(verb, uri));
        if got != *want {
            failures.push(format!("{verb} {uri}: got {got}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verbs_map_to_methods() {
    let table = [
        ("get", Some(Method::Get)),
        ("list", Some(Method::Get)),
        ("watch", Some(Method::Get)),
        ("create", Some(Method::Post)),
        ("update", Some(Method::Put)),
        ("patch", Some(Method::Patch)),
        ("delete", Some(Method::Delete)),
        ("deletecollection", Some(Method::Delete)),
        ("post", Some(Method::Post)),
        ("put", Some(Method::Put)),
        ("head", Some(Method::Head)),
        ("options", Some(Method::Options)),
        ("", Some(Method::Options)),
        ("proxy", None),
        ("GET", None),
    ];
    for (verb, want) in table {
        assert_eq!(method_for_verb(verb), want, "{verb:?}");
    }
}

#[test]
fn labels_are_stable() {
    for reason in UnmappedReason::ALL {
        assert_eq!(UnmappedReason::from_name(reason.as_str()), Some(reason));
        assert_eq!(reason.label(), format!("unmapped:{}", reason.as_str()));
        assert_eq!(Mapping::Unmapped(reason).label(), reason.label());
    }
    assert_eq!(Mapping::Endpoint(3).label(), "endpoint");
    assert_eq!(
        Mapping::NonResource(NonResourceKind::Livez).label(),
        "non_resource"
    );
}
