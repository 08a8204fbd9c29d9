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

/// Every case of the issue against the real 1.36 catalog.
#[test]
fn maps_every_case_on_the_1_36_spec() {
    let Some(catalog) = crate::catalog::tests::catalog_1_36() else {
        return;
    };
    let mapper = Mapper::new(&catalog);
    let table: &[(&str, &str, &str)] = &[
        // list vs get, namespaced and cluster-scoped, all namespaces.
        (
            "list",
            "/api/v1/namespaces/default/pods?limit=500&resourceVersion=0",
            "listCoreV1NamespacedPod",
        ),
        (
            "list",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dkind-worker",
            "listCoreV1PodForAllNamespaces",
        ),
        (
            "get",
            "/api/v1/namespaces/default/pods/web-0",
            "readCoreV1NamespacedPod",
        ),
        ("list", "/api/v1/nodes", "listCoreV1Node"),
        ("get", "/api/v1/nodes/kind-worker", "readCoreV1Node"),
        (
            "get",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
            "readRbacAuthorizationV1ClusterRole",
        ),
        (
            "get",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles/admin",
            "readRbacAuthorizationV1NamespacedRole",
        ),
        (
            "list",
            "/apis/apps/v1/deployments",
            "listAppsV1DeploymentForAllNamespaces",
        ),
        // watch=true on a collection is its list endpoint; on one object kube-apiserver serves a get.
        (
            "watch",
            "/api/v1/namespaces/default/pods?allowWatchBookmarks=true&watch=true",
            "listCoreV1NamespacedPod",
        ),
        (
            "watch",
            "/api/v1/nodes?fieldSelector=metadata.name%3Dkind-worker&watch=true",
            "listCoreV1Node",
        ),
        (
            "get",
            "/api/v1/namespaces/default/pods/web-0?watch=true",
            "readCoreV1NamespacedPod",
        ),
        // create, update, patch, delete, deletecollection.
        (
            "create",
            "/apis/apps/v1/namespaces/ns/deployments?fieldManager=kubectl-client-side-apply",
            "createAppsV1NamespacedDeployment",
        ),
        (
            "update",
            "/apis/apps/v1/namespaces/ns/deployments/web",
            "replaceAppsV1NamespacedDeployment",
        ),
        (
            "patch",
            "/apis/apps/v1/namespaces/ns/deployments/web?fieldManager=kubectl&force=true",
            "patchAppsV1NamespacedDeployment",
        ),
        (
            "delete",
            "/apis/apps/v1/namespaces/ns/deployments/web",
            "deleteAppsV1NamespacedDeployment",
        ),
        (
            "deletecollection",
            "/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb",
            "deleteCoreV1CollectionNamespacedPod",
        ),
        (
            "deletecollection",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "deleteRbacAuthorizationV1CollectionClusterRole",
        ),
        // Subresources.
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/status",
            "readCoreV1NamespacedPodStatus",
        ),
        (
            "patch",
            "/api/v1/namespaces/ns/pods/web-0/status",
            "patchCoreV1NamespacedPodStatus",
        ),
        (
            "update",
            "/apis/apps/v1/namespaces/ns/deployments/web/status",
            "replaceAppsV1NamespacedDeploymentStatus",
        ),
        (
            "get",
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            "readAppsV1NamespacedDeploymentScale",
        ),
        (
            "patch",
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            "patchAppsV1NamespacedDeploymentScale",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/log?container=app&follow=true",
            "readCoreV1NamespacedPodLog",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods/web-0/exec?command=sh&stdin=true&tty=true",
            "connectCoreV1PostNamespacedPodExec",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/exec?command=date",
            "connectCoreV1GetNamespacedPodExec",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods/web-0/attach?stdin=true",
            "connectCoreV1PostNamespacedPodAttach",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/portforward?ports=8080",
            "connectCoreV1GetNamespacedPodPortforward",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods/web-0/portforward",
            "connectCoreV1PostNamespacedPodPortforward",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods/web-0/binding",
            "createCoreV1NamespacedPodBinding",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/bindings",
            "createCoreV1NamespacedBinding",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods/web-0/eviction",
            "createCoreV1NamespacedPodEviction",
        ),
        (
            "patch",
            "/api/v1/namespaces/ns/pods/web-0/ephemeralcontainers",
            "patchCoreV1NamespacedPodEphemeralcontainers",
        ),
        (
            "patch",
            "/api/v1/namespaces/ns/pods/web-0/resize",
            "patchCoreV1NamespacedPodResize",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/serviceaccounts/default/token",
            "createCoreV1NamespacedServiceAccountToken",
        ),
        (
            "update",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/approval",
            "replaceCertificatesV1CertificateSigningRequestApproval",
        ),
        (
            "get",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/status",
            "readCertificatesV1CertificateSigningRequestStatus",
        ),
        // Namespace status and finalize.
        (
            "get",
            "/api/v1/namespaces/ns/status",
            "readCoreV1NamespaceStatus",
        ),
        (
            "update",
            "/api/v1/namespaces/ns/finalize",
            "replaceCoreV1NamespaceFinalize",
        ),
        (
            "update",
            "/api/v1/namespaces/status/finalize",
            "replaceCoreV1NamespaceFinalize",
        ),
        // Proxy with any trailing path, including /metrics and /healthz.
        (
            "get",
            "/api/v1/nodes/kind-worker/proxy/metrics",
            "connectCoreV1GetNodeProxyWithPath",
        ),
        (
            "get",
            "/api/v1/nodes/kind-worker:10250/proxy/metrics/cadvisor",
            "connectCoreV1GetNodeProxyWithPath",
        ),
        (
            "get",
            "/api/v1/nodes/kind-worker/proxy",
            "connectCoreV1GetNodeProxy",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/services/https:web:443/proxy/healthz",
            "connectCoreV1GetNamespacedServiceProxyWithPath",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/services/web/proxy/api/v1/things",
            "connectCoreV1PostNamespacedServiceProxyWithPath",
        ),
        (
            "delete",
            "/api/v1/namespaces/ns/pods/web-0/proxy/x",
            "connectCoreV1DeleteNamespacedPodProxyWithPath",
        ),
        (
            "patch",
            "/api/v1/namespaces/ns/pods/web-0/proxy/",
            "connectCoreV1PatchNamespacedPodProxy",
        ),
        (
            "update",
            "/api/v1/namespaces/ns/pods/web-0/proxy/a/b",
            "connectCoreV1PutNamespacedPodProxyWithPath",
        ),
        // HEAD/OPTIONS: kube-apiserver writes a resource HEAD as `get`, an OPTIONS with no verb.
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/proxy/index.html",
            "connectCoreV1GetNamespacedPodProxyWithPath",
        ),
        (
            "",
            "/api/v1/namespaces/ns/pods/web-0/proxy",
            "connectCoreV1OptionsNamespacedPodProxy",
        ),
        (
            "options",
            "/api/v1/nodes/n/proxy/x",
            "connectCoreV1OptionsNodeProxyWithPath",
        ),
        (
            "head",
            "/api/v1/namespaces/ns/services/web/proxy",
            "connectCoreV1HeadNamespacedServiceProxy",
        ),
        // Names that APISnoop mistakes for non-resource URLs or proxies.
        ("get", "/api/v1/namespaces/metrics", "readCoreV1Namespace"),
        ("get", "/api/v1/namespaces/healthz", "readCoreV1Namespace"),
        (
            "delete",
            "/api/v1/namespaces/proxy",
            "deleteCoreV1Namespace",
        ),
        (
            "list",
            "/api/v1/namespaces/proxy/pods",
            "listCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/metrics/configmaps/healthz",
            "readCoreV1NamespacedConfigMap",
        ),
        (
            "get",
            "/api/v1/namespaces/healthz/services/proxy",
            "readCoreV1NamespacedService",
        ),
        (
            "get",
            "/api/v1/namespaces/healthz/services/proxy/proxy",
            "connectCoreV1GetNamespacedServiceProxy",
        ),
        (
            "get",
            "/api/v1/namespaces/proxy/pods/proxy/proxy/proxy",
            "connectCoreV1GetNamespacedPodProxyWithPath",
        ),
        ("get", "/api/v1/nodes/metrics", "readCoreV1Node"),
        (
            "get",
            "/api/v1/namespaces/ns/pods/status",
            "readCoreV1NamespacedPod",
        ),
        ("get", "/api/v1/namespaces/watch", "readCoreV1Namespace"),
        // Discovery the spec lists is an endpoint (APISnoop counts these too).
        ("get", "/api", "getCoreAPIVersions"),
        ("get", "/api/v1", "getCoreV1APIResources"),
        ("get", "/apis", "getAPIVersions"),
        ("get", "/apis/apps", "getAppsAPIGroup"),
        ("get", "/apis/apps/v1", "getAppsV1APIResources"),
        ("get", "/apis/apps/v1/", "getAppsV1APIResources"),
        ("get", "/version", "getCodeVersion"),
        (
            "get",
            "/.well-known/openid-configuration",
            "getServiceAccountIssuerOpenIDConfiguration",
        ),
        (
            "get",
            "/openid/v1/jwks",
            "getServiceAccountIssuerOpenIDKeyset",
        ),
        ("get", "/logs/", "logFileListHandler"),
        ("get", "/logs/pods/kube-apiserver.log", "logFileHandler"),
        // Non-resource URLs.
        ("get", "/healthz", "non_resource:healthz"),
        (
            "get",
            "/healthz/poststarthook/rbac/bootstrap-roles",
            "non_resource:healthz",
        ),
        ("get", "/livez?verbose", "non_resource:livez"),
        ("get", "/readyz/shutdown", "non_resource:readyz"),
        ("head", "/readyz", "non_resource:readyz"),
        ("get", "/metrics", "non_resource:metrics"),
        ("get", "/metrics/slis", "non_resource:metrics"),
        ("get", "/openapi/v2?timeout=32s", "non_resource:openapi"),
        ("get", "/openapi/v3", "non_resource:openapi"),
        (
            "get",
            "/openapi/v3/apis/apps/v1?hash=0123",
            "non_resource:openapi",
        ),
        ("get", "/apis/metrics.k8s.io", "non_resource:discovery"),
        (
            "get",
            "/apis/metrics.k8s.io/v1beta1",
            "non_resource:discovery",
        ),
        ("get", "/debug/pprof/heap", "non_resource:debug"),
        ("get", "/", "non_resource:root"),
        // Unmapped, with the reason: a CRD, an aggregated API, another release's API.
        (
            "list",
            "/apis/stable.example.com/v1/namespaces/ns/crontabs",
            "unmapped:unknown_path",
        ),
        (
            "get",
            "/apis/metrics.k8s.io/v1beta1/nodes",
            "unmapped:unknown_path",
        ),
        (
            "list",
            "/apis/extensions/v1beta1/ingresses",
            "unmapped:unknown_path",
        ),
        (
            "list",
            "/api/v1/namespaces/ns/widgets",
            "unmapped:unknown_path",
        ),
        (
            "get",
            "/api/v1/proxy/namespaces/ns/pods/web-0",
            "unmapped:unknown_path",
        ),
        (
            "create",
            "/api/v1/namespaces/ns/pods/web-0/log",
            "unmapped:no_operation_for_verb",
        ),
        ("post", "/version", "unmapped:no_operation_for_verb"),
        (
            "watch",
            "/api/v1/watch/namespaces/ns/pods",
            "unmapped:deprecated_watch",
        ),
        (
            "watch",
            "/api/v1/watch/namespaces/ns/pods/web-0",
            "unmapped:deprecated_watch",
        ),
        (
            "watch",
            "/apis/apps/v1/watch/deployments",
            "unmapped:deprecated_watch",
        ),
        (
            "escalate",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            "unmapped:unknown_verb",
        ),
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

/// Every endpoint's own template, with its parameters filled in, maps back to it; every
/// deprecated watch template maps to `deprecated_watch`.
#[test]
fn every_1_36_template_maps_to_itself() {
    let Some(catalog) = crate::catalog::tests::catalog_1_36() else {
        return;
    };
    let mapper = Mapper::new(&catalog);
    let fill = |template: &str| {
        template
            .split('/')
            .map(|s| if s.starts_with('{') { "x1" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    };
    for (i, endpoint) in catalog.endpoints.iter().enumerate() {
        let path = fill(&endpoint.path);
        assert_eq!(
            mapper.map_method(endpoint.method, &path),
            Mapping::Endpoint(i),
            "{} {path} ({})",
            endpoint.method,
            endpoint.operation_id
        );
    }
    for template in &catalog.watch_paths {
        assert_eq!(
            mapper.map("watch", &fill(template)),
            Mapping::Unmapped(UnmappedReason::DeprecatedWatch),
            "{template}"
        );
    }
}

/// APISnoop's `find_operation_id` (apps/snoopdb/postgres/snoopUtils.py), ported as literally as
/// we can, to compare with: tries of path parts per part count, `proxy` and namespace
/// status/finalize rewriting, the ignored-path list, first variable child wins.
mod apisnoop {
    use crate::catalog::Catalog;

    const IGNORED_PATHS: [&str; 9] = [
        "metrics",
        "readyz",
        "livez",
        "healthz",
        "example.com",
        "kope.io",
        "snapshot.storage.k8s.io",
        "metrics.k8s.io",
        "wardle.k8s.io",
    ];

    #[derive(Default)]
    struct Level {
        /// Children in insertion order, as a Python dict keeps them.
        parts: Vec<(String, Level)>,
        methods: Vec<(String, String)>,
    }

    pub struct Spec {
        by_len: Vec<(usize, Level)>,
    }

    impl Spec {
        /// `load_openapi_spec`, from the catalog's endpoints plus the watch paths (whose
        /// operations APISnoop also loads; they are then not endpoints).
        pub fn new(catalog: &Catalog) -> Spec {
            let mut spec = Spec { by_len: Vec::new() };
            let ops = catalog
                .endpoints
                .iter()
                .map(|e| (e.path.as_str(), e.method.as_str(), e.operation_id.as_str()))
                .chain(
                    catalog
                        .watch_paths
                        .iter()
                        .map(|p| (p.as_str(), "get", "watch")),
                );
            for (path, method, op) in ops {
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                let len = parts.len();
                let root = match spec.by_len.iter().position(|(l, _)| *l == len) {
                    Some(i) => &mut spec.by_len[i].1,
                    None => {
                        spec.by_len.push((len, Level::default()));
                        &mut spec.by_len.last_mut().unwrap().1
                    }
                };
                let mut level = root;
                for part in parts {
                    let i = match level.parts.iter().position(|(k, _)| k == part) {
                        Some(i) => i,
                        None => {
                            level.parts.push((part.to_owned(), Level::default()));
                            level.parts.len() - 1
                        }
                    };
                    level = &mut level.parts[i].1;
                }
                level.methods.push((method.to_owned(), op.to_owned()));
            }
            spec
        }

        /// `find_operation_id`: the operation id, or `None` (error or ignored).
        pub fn find(&self, verb: &str, uri: &str) -> Option<String> {
            let method = match verb {
                "get" | "list" | "watch" if uri.ends_with("HEAD") => "head",
                "get" | "list" | "watch" => "get",
                "proxy" => "proxy",
                "" => "options",
                "create" | "post" => "post",
                "update" | "put" => "put",
                "patch" => "patch",
                "connect" => "connect",
                "delete" | "delete_collection" | "deletecollection" => "delete",
                _ => return None,
            };
            let path = uri.split(['?', '#']).next().unwrap_or_default();
            let mut parts: Vec<String> = path
                .trim_matches('/')
                .split('/')
                .map(str::to_owned)
                .collect();
            if let Some(proxy) = parts.iter().position(|p| p == "proxy") {
                let tail = parts[proxy + 1..].join("/");
                parts.truncate(proxy + 1);
                if !tail.is_empty() {
                    parts.push(tail);
                }
            } else if parts.len() == 5
                && parts[2] == "namespaces"
                && (parts[4] == "status" || parts[4] == "finalize")
            {
                let last = parts[4].clone();
                parts.truncate(3);
                parts.push("{name}".into());
                parts.push(last);
            }
            let mut level: &Level = &self.by_len.iter().find(|(l, _)| *l == parts.len())?.1;
            if parts.iter().any(|p| IGNORED_PATHS.contains(&p.as_str()))
                || parts == ["openapi", "v2"]
            {
                return None;
            }
            for part in &parts {
                level = match level.parts.iter().find(|(k, _)| k == part) {
                    Some((_, next)) => next,
                    None => &level.parts.iter().find(|(k, _)| k.contains('{'))?.1,
                };
            }
            let (_, op) = level.methods.iter().find(|(m, _)| m == method)?;
            Some(op.clone())
        }
    }
}

/// APISnoop's mapping and ours agree on a request to every endpoint of 1.36 (as kube-apiserver
/// logs it); the requests where they differ are ones APISnoop gets wrong, listed here.
#[test]
fn agrees_with_apisnoop_except_where_it_is_wrong() {
    let Some(catalog) = crate::catalog::tests::catalog_1_36() else {
        return;
    };
    let mapper = Mapper::new(&catalog);
    let reference = apisnoop::Spec::new(&catalog);
    let counted = |op: Option<String>| op.filter(|op| catalog.endpoint(op).is_some());
    let ours = |verb: &str, uri: &str| {
        mapper
            .map(verb, uri)
            .endpoint()
            .map(|i| catalog.endpoints[i].operation_id.clone())
    };
    // A request to every endpoint, as kube-apiserver logs it (HEAD is logged as `get`).
    let mut reached = std::collections::HashSet::new();
    for e in &catalog.endpoints {
        let uri = e
            .path
            .split('/')
            .map(|s| match s {
                "{namespace}" => "shop",
                "{path}" => "some/sub/path",
                "{logpath}" => "kube-apiserver.log",
                s if s.starts_with('{') => "web-1",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let verb = match (e.method, e.action.as_deref()) {
            (Method::Get | Method::Head, Some("list")) => "list",
            (Method::Get | Method::Head, _) => "get",
            (Method::Post, _) => "create",
            (Method::Put, _) => "update",
            (Method::Patch, _) => "patch",
            (Method::Delete, Some("deletecollection")) => "deletecollection",
            (Method::Delete, _) => "delete",
            (Method::Options, _) => "",
        };
        let theirs = counted(reference.find(verb, &uri));
        let ours = ours(verb, &uri);
        assert_eq!(ours, theirs, "{verb} {uri}");
        reached.extend(ours);
    }
    // Every endpoint but HEAD (logged as GET) was reached by both.
    let head = catalog
        .endpoints
        .iter()
        .filter(|e| e.method == Method::Head)
        .count();
    assert_eq!(reached.len(), catalog.endpoints.len() - head);

    // Requests where APISnoop is wrong: (verb, uri, what APISnoop says, what is right).
    let wrong: &[(&str, &str, Option<&str>, &str)] = &[
        // `{logpath}` is a wildcard in kube-apiserver (`/logs/{logpath:*}`).
        (
            "get",
            "/logs/pods/kube-apiserver.log",
            None,
            "logFileHandler",
        ),
        (
            "get",
            "/api/v1/namespaces/metrics",
            None,
            "readCoreV1Namespace",
        ),
        (
            "get",
            "/api/v1/namespaces/healthz/pods",
            None,
            "listCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/ns/pods/web-0/proxy/metrics",
            None,
            "connectCoreV1GetNamespacedPodProxyWithPath",
        ),
        (
            "get",
            "/api/v1/nodes/kind-worker/proxy/healthz",
            None,
            "connectCoreV1GetNodeProxyWithPath",
        ),
        (
            "get",
            "/api/v1/namespaces/proxy/pods/web",
            None,
            "readCoreV1NamespacedPod",
        ),
        (
            "get",
            "/api/v1/namespaces/proxy/configmaps/web",
            None,
            "readCoreV1NamespacedConfigMap",
        ),
    ];
    for (verb, uri, theirs, right) in wrong {
        assert_eq!(
            counted(reference.find(verb, uri)).as_deref(),
            *theirs,
            "APISnoop on {verb} {uri}"
        );
        assert_eq!(ours(verb, uri).as_deref(), Some(*right), "{verb} {uri}");
    }
}
