use std::io::Read;
use std::path::PathBuf;

use super::*;

/// The Kubernetes 1.36 OpenAPI document and APISnoop's ineligible list: the project's test
/// data under `../shared/data`, else the copies embedded in the repository's `data/`.
/// `None` (and a SKIPPED note) when neither is there.
pub(crate) fn reference_data() -> Option<(Vec<u8>, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = root.join("../shared/data");
    let spec = std::fs::read(shared.join("kubernetes/openapi-v2-1.36.json"))
        .ok()
        .or_else(|| {
            let gz = std::fs::read(root.join("data/kubernetes/openapi-v2-1.36.json.gz")).ok()?;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut out)
                .ok()?;
            Some(out)
        });
    let ineligible = std::fs::read(shared.join("conformance/ineligible_endpoints.json"))
        .or_else(|_| std::fs::read(root.join("data/conformance/ineligible_endpoints.json")))
        .ok();
    match (spec, ineligible) {
        (Some(spec), Some(ineligible)) => Some((spec, ineligible)),
        _ => {
            eprintln!(
                "SKIPPED: Kubernetes 1.36 OpenAPI document or ineligible list not found under \
                 ../shared/data or data/"
            );
            None
        }
    }
}

pub(crate) fn catalog_1_36() -> Option<Catalog> {
    let (spec, ineligible) = reference_data()?;
    let ineligible = Ineligible::from_json(&ineligible).expect("ineligible list parses");
    Some(Catalog::from_openapi(&spec, Some(&ineligible)).expect("1.36 spec parses"))
}

#[test]
fn reproduces_apisnoop_counts_for_1_36() {
    let Some(catalog) = catalog_1_36() else {
        return;
    };
    assert_eq!(catalog.counts(), (908, 664, 563));
    // The 215 deprecated watch operations are not endpoints.
    assert!(
        catalog
            .endpoints
            .iter()
            .all(|e| !e.operation_id.starts_with("watch"))
    );
    assert!(catalog.watch_paths.iter().all(|p| p.contains("/watch/")));
    assert_eq!(catalog.watch_paths.len(), 215);
    let levels = |level| {
        catalog
            .endpoints
            .iter()
            .filter(|e| e.level == level)
            .count()
    };
    assert_eq!(
        levels(Level::Alpha) + levels(Level::Beta) + levels(Level::Stable),
        908
    );
    // The spec says "unversioned" (as kube-apiserver's /openapi/v2 does).
    assert_eq!(catalog.release, "unversioned");
}

#[test]
fn spot_checks_endpoints_of_1_36() {
    let Some(catalog) = catalog_1_36() else {
        return;
    };
    struct Want {
        id: &'static str,
        method: Method,
        path: &'static str,
        level: Level,
        category: &'static str,
        gvk: Option<(&'static str, &'static str, &'static str)>,
        action: Option<&'static str>,
        eligible: bool,
    }
    let table = [
        Want {
            id: "listCoreV1NamespacedPod",
            method: Method::Get,
            path: "/api/v1/namespaces/{namespace}/pods",
            level: Level::Stable,
            category: "core",
            gvk: Some(("", "v1", "Pod")),
            action: Some("list"),
            eligible: true,
        },
        Want {
            id: "createAppsV1NamespacedDeployment",
            method: Method::Post,
            path: "/apis/apps/v1/namespaces/{namespace}/deployments",
            level: Level::Stable,
            category: "apps",
            gvk: Some(("apps", "v1", "Deployment")),
            action: Some("post"),
            eligible: true,
        },
        Want {
            id: "replaceAppsV1NamespacedDeploymentScale",
            method: Method::Put,
            path: "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            level: Level::Stable,
            category: "apps",
            gvk: Some(("autoscaling", "v1", "Scale")),
            action: Some("put"),
            eligible: true,
        },
        Want {
            id: "connectCoreV1GetNamespacedPodProxyWithPath",
            method: Method::Get,
            path: "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
            level: Level::Stable,
            category: "core",
            gvk: Some(("", "v1", "PodProxyOptions")),
            action: Some("connect"),
            eligible: true,
        },
        Want {
            id: "connectCoreV1DeleteNodeProxy",
            method: Method::Delete,
            path: "/api/v1/nodes/{name}/proxy",
            level: Level::Stable,
            category: "core",
            gvk: Some(("", "v1", "NodeProxyOptions")),
            action: Some("connect"),
            eligible: false,
        },
        Want {
            id: "deleteRbacAuthorizationV1CollectionClusterRole",
            method: Method::Delete,
            path: "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            level: Level::Stable,
            category: "rbacAuthorization",
            gvk: Some(("rbac.authorization.k8s.io", "v1", "ClusterRole")),
            action: Some("deletecollection"),
            eligible: false,
        },
        Want {
            id: "getServiceAccountIssuerOpenIDConfiguration",
            method: Method::Get,
            path: "/.well-known/openid-configuration/",
            level: Level::Beta,
            category: "WellKnown",
            gvk: None,
            action: None,
            eligible: false,
        },
        Want {
            id: "getCodeVersion",
            method: Method::Get,
            path: "/version/",
            level: Level::Stable,
            category: "version",
            gvk: None,
            action: None,
            eligible: true,
        },
        Want {
            id: "getAppsAPIGroup",
            method: Method::Get,
            path: "/apis/apps/",
            level: Level::Stable,
            category: "apps",
            gvk: None,
            action: None,
            eligible: true,
        },
    ];
    for want in table {
        let (_, got) = catalog
            .endpoint(want.id)
            .unwrap_or_else(|| panic!("{} missing", want.id));
        assert_eq!(got.method, want.method, "{}", want.id);
        assert_eq!(got.path, want.path, "{}", want.id);
        assert_eq!(got.level, want.level, "{}", want.id);
        assert_eq!(got.category, want.category, "{}", want.id);
        let gvk = got
            .group
            .as_deref()
            .zip(got.version.as_deref())
            .zip(got.kind.as_deref())
            .map(|((g, v), k)| (g, v, k));
        assert_eq!(gvk, want.gvk, "{}", want.id);
        assert_eq!(got.action.as_deref(), want.action, "{}", want.id);
        assert_eq!(got.eligible, want.eligible, "{}", want.id);
    }
    let (_, pods) = catalog.endpoint("listCoreV1NamespacedPod").unwrap();
    assert_eq!(
        pods.description.as_deref(),
        Some("list or watch objects of kind Pod")
    );
    let reason = |id| {
        let (_, e) = catalog.endpoint(id).unwrap();
        (e.ineligible_reason.clone(), e.ineligible_link.is_some())
    };
    assert_eq!(
        reason("deleteRbacAuthorizationV1CollectionClusterRole"),
        (Some("optional feature".to_owned()), true)
    );
    assert_eq!(reason("listCoreV1NamespacedPod"), (None, false));
    // Some alpha and beta endpoints exist and none of them is eligible.
    assert!(
        catalog
            .endpoints
            .iter()
            .filter(|e| e.level != Level::Stable)
            .all(|e| !e.eligible)
    );
    let alpha = catalog
        .endpoints
        .iter()
        .find(|e| e.path.contains("v1alpha"))
        .unwrap();
    assert_eq!(alpha.level, Level::Alpha);
}

/// A small spec exercising each rule.
const FIXTURE: &str = r#"{"swagger":"2.0","info":{"title":"Kubernetes","version":"v1.99.2"},
 "paths":{
  "/apis/demo/v1alpha1/widgets":{"get":{"operationId":"listDemoV1alpha1Widget","tags":["demo_v1alpha1"],"x-kubernetes-action":"list"}},
  "/apis/demo/v1beta1/widgets":{"get":{"operationId":"listDemoV1beta1Widget","tags":["demo_v1beta1"]}},
  "/apis/demo/v1/widgets":{
     "parameters":[{"name":"pretty","in":"query"}],
     "get":{"operationId":"listDemoV1Widget","tags":["demo_v1"],"description":"list Widgets",
            "x-kubernetes-action":"list","x-kubernetes-group-version-kind":{"group":"demo","version":"v1","kind":"Widget"}},
     "post":{"operationId":"createDemoV1Widget","tags":["demo_v1"],"description":"DEPRECATED: use gadgets","x-kubernetes-action":"post"},
     "delete":{"operationId":"deleteDemoV1CollectionWidget","tags":["demo_v1"],"x-kubernetes-action":"deletecollection"}},
  "/apis/demo/v1/watch/widgets":{"get":{"operationId":"watchDemoV1WidgetList","tags":["demo_v1"],"x-kubernetes-action":"watchlist"}},
  "/.well-known/openid-configuration/":{"get":{"operationId":"getServiceAccountIssuerOpenIDConfiguration","tags":["WellKnown"]}}
 },
 "definitions":{"io.demo.Widget":{"type":"object","description":"ignored"}}}"#;

#[test]
fn applies_each_rule_to_a_fixture() {
    let ineligible = Ineligible::from_json(
        br#"[{"endpoint":"deleteDemoV1CollectionWidget","reason":"too dangerous","link":"https://example.invalid/1"}]"#,
    )
    .unwrap();
    let catalog = Catalog::from_openapi(FIXTURE.as_bytes(), Some(&ineligible)).unwrap();
    assert_eq!(catalog.release, "1.99.2");
    assert_eq!(catalog.watch_paths, vec!["/apis/demo/v1/watch/widgets"]);
    type Row<'a> = (&'a str, Level, &'a str, bool, bool, Option<&'a str>);
    let table: Vec<Row> = catalog
        .endpoints
        .iter()
        .map(|e| {
            (
                e.operation_id.as_str(),
                e.level,
                e.category.as_str(),
                e.deprecated,
                e.eligible,
                e.ineligible_reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        table,
        vec![
            (
                "getServiceAccountIssuerOpenIDConfiguration",
                Level::Beta,
                "WellKnown",
                false,
                false,
                None
            ),
            ("listDemoV1Widget", Level::Stable, "demo", false, true, None),
            (
                "createDemoV1Widget",
                Level::Stable,
                "demo",
                true,
                false,
                None
            ),
            (
                "deleteDemoV1CollectionWidget",
                Level::Stable,
                "demo",
                false,
                false,
                Some("too dangerous")
            ),
            (
                "listDemoV1alpha1Widget",
                Level::Alpha,
                "demo",
                false,
                false,
                None
            ),
            (
                "listDemoV1beta1Widget",
                Level::Beta,
                "demo",
                false,
                false,
                None
            ),
        ]
    );
    assert_eq!(catalog.counts(), (6, 3, 1));
}

#[test]
fn rejects_bad_specs_clearly() {
    let cases: &[(&str, &str)] = &[
        ("not json", "invalid OpenAPI document at line 1 column 2"),
        (r#"{"openapi":"3.0.0"}"#, "has no `paths`"),
        (r#"{"paths":{}}"#, "has no operations"),
        (
            r#"{"paths":{"/x":{"get":{"tags":["a"]}}}}"#,
            "operation `get /x` has no operationId",
        ),
        (
            r#"{"paths":{"/x":{"get":{"operationId":"a"}},"/y":{"put":{"operationId":"a"}}}}"#,
            "operationId `a` is used twice",
        ),
        (
            r#"{"paths":{"x":{"get":{"operationId":"a"}}}}"#,
            "does not start with `/`",
        ),
        (
            r#"{"paths":{"/x":{"get":{"operationId":7}}}}"#,
            "invalid OpenAPI document at line 1 column 38: invalid type: integer `7`",
        ),
    ];
    for (spec, want) in cases {
        let err = Catalog::from_openapi(spec.as_bytes(), None).unwrap_err();
        assert!(
            err.to_string().contains(want),
            "{spec}: got {err}, want {want}"
        );
    }
    let err = Ineligible::from_json(br#"[{"reason":"x"}]"#).unwrap_err();
    assert!(
        err.to_string().contains(
            "invalid ineligible endpoints list at line 1 column 15: missing field `endpoint`"
        ),
        "{err}"
    );
}

/// `/openapi/v3` as kube-apiserver 1.36 answers it (abridged: three of its entries).
const V3_DISCOVERY: &str = r#"{"paths":{
  "api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=7C0E6A4D"},
  "apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=5A1F0B2C"},
  "apis/stable.example.com/v1":{"serverRelativeURL":"/openapi/v3/apis/stable.example.com/v1?hash=0D3E"}}}"#;

/// A CRD's group-version document as kube-apiserver serves it under `/openapi/v3` (abridged to
/// two operations; v3 keeps v2's operationId, tags and x-kubernetes-* fields).
const V3_CRONTABS: &str = r#"{"openapi":"3.0.0","info":{"title":"Kubernetes CRD Swagger","version":"v0.1.0"},
 "paths":{
  "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs":{
   "get":{"tags":["stableExampleCom_v1"],"description":"list objects of kind CronTab",
     "operationId":"listStableExampleComV1NamespacedCronTab",
     "responses":{"200":{"description":"OK"}},
     "x-kubernetes-action":"list",
     "x-kubernetes-group-version-kind":{"group":"stable.example.com","version":"v1","kind":"CronTab"}},
   "post":{"tags":["stableExampleCom_v1"],"description":"create a CronTab",
     "operationId":"createStableExampleComV1NamespacedCronTab",
     "requestBody":{"content":{"application/json":{}}},
     "x-kubernetes-action":"post",
     "x-kubernetes-group-version-kind":{"group":"stable.example.com","version":"v1","kind":"CronTab"}}}},
 "components":{"schemas":{}}}"#;

const V2_PODS: &str = r#"{"swagger":"2.0","info":{"title":"Kubernetes","version":"v1.36.3"},
 "paths":{"/api/v1/namespaces/{namespace}/pods":{"get":{
   "operationId":"listCoreV1NamespacedPod","tags":["core_v1"],"x-kubernetes-action":"list",
   "x-kubernetes-group-version-kind":{"group":"","version":"v1","kind":"Pod"}}}}}"#;

#[test]
fn v3_discovery_lists_every_group_version_document() {
    let docs = openapi_v3_documents(V3_DISCOVERY.as_bytes()).unwrap();
    assert_eq!(
        docs,
        [
            (
                "api/v1".to_owned(),
                "/openapi/v3/api/v1?hash=7C0E6A4D".to_owned()
            ),
            (
                "apis/apps/v1".to_owned(),
                "/openapi/v3/apis/apps/v1?hash=5A1F0B2C".to_owned()
            ),
            (
                "apis/stable.example.com/v1".to_owned(),
                "/openapi/v3/apis/stable.example.com/v1?hash=0D3E".to_owned()
            ),
        ]
    );
    assert_eq!(
        openapi_v3_documents(br#"{"paths":{"apis/x/v1":{}}}"#),
        Err(CatalogError::NoDocumentUrl {
            name: "apis/x/v1".into()
        })
    );
    assert_eq!(openapi_v3_documents(b"{}"), Err(CatalogError::NoPaths));
    assert!(matches!(
        openapi_v3_documents(b"{\"paths\":"),
        Err(CatalogError::Json { line: 1, .. })
    ));
}

fn extensions() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "stable.example.com".to_owned(),
        "CustomResourceDefinition".to_owned(),
    )])
}

#[test]
fn a_crds_v3_document_becomes_extension_endpoints() {
    let merged = merge_openapi(
        Some(V2_PODS.as_bytes()),
        &[V3_CRONTABS.as_bytes().to_vec()],
        None,
        &extensions(),
    )
    .unwrap();
    let catalog = Catalog::from_openapi(&merged, None).unwrap();
    assert_eq!(catalog.release, "1.36.3", "info is v2's");
    let ids: Vec<_> = catalog
        .endpoints
        .iter()
        .map(|e| e.operation_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "listCoreV1NamespacedPod",
            "listStableExampleComV1NamespacedCronTab",
            "createStableExampleComV1NamespacedCronTab"
        ]
    );
    let crontabs = &catalog.endpoints[1];
    assert_eq!(crontabs.category, "stable.example.com");
    assert_eq!(crontabs.kind.as_deref(), Some("CronTab"));
    assert!(!crontabs.eligible);
    assert_eq!(
        crontabs.ineligible_reason.as_deref(),
        Some("extension: served by a CustomResourceDefinition, not by Kubernetes itself")
    );
    let pods = &catalog.endpoints[0];
    assert_eq!((pods.category.as_str(), pods.eligible), ("core", true));
    assert_eq!(catalog.counts(), (3, 3, 1), "extensions are not eligible");
}

#[test]
fn a_refreshed_catalog_keeps_stored_positions_and_adds_new_endpoints_after_them() {
    // First load: pods only. Later the cluster serves a CRD whose path sorts before pods'.
    let first = merge_openapi(Some(V2_PODS.as_bytes()), &[], None, &BTreeMap::new()).unwrap();
    let crd_first_path = V3_CRONTABS.replace("/apis/stable.example.com", "/a/stable.example.com");
    let second = merge_openapi(
        Some(V2_PODS.as_bytes()),
        &[crd_first_path.into_bytes()],
        Some(&first),
        &extensions(),
    )
    .unwrap();
    let catalog = Catalog::from_openapi(&second, None).unwrap();
    let ids: Vec<_> = catalog
        .endpoints
        .iter()
        .map(|e| e.operation_id.as_str())
        .collect();
    assert_eq!(ids[0], "listCoreV1NamespacedPod", "stored position kept");
    assert_eq!(ids.len(), 3);
    // Rebuilding from the stored document gives the same catalog (what `serve` does later).
    assert_eq!(Catalog::from_openapi(&second, None).unwrap(), catalog);
    // The CRD is deleted: its endpoints stay (requests stored against them keep them), still
    // extensions.
    let third = merge_openapi(
        Some(V2_PODS.as_bytes()),
        &[],
        Some(&second),
        &BTreeMap::new(),
    )
    .unwrap();
    let after = Catalog::from_openapi(&third, None).unwrap();
    assert_eq!(after.endpoints, catalog.endpoints);
}
