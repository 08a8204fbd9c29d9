//! Mutating admission webhook that switches purpose on for every container of a pod.
//!
//! # Example
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::core::admission::AdmissionReview;
//! use whakapapa_collector::admission::{Injection, mutate};
//!
//! let injection = Injection::new("https://whakapapa-collector.whakapapa.svc:8443").unwrap();
//! let review: AdmissionReview<Pod> = serde_json::from_str(r#"{
//!   "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
//!   "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
//!     "kind": {"group": "", "version": "v1", "kind": "Pod"},
//!     "resource": {"group": "", "version": "v1", "resource": "pods"},
//!     "operation": "CREATE", "userInfo": {"username": "admin"},
//!     "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
//!       "spec": {"containers": [{"name": "app", "image": "shop:1"}]}}}}"#).unwrap();
//! let response = mutate(review, &injection).response.unwrap();
//! assert!(response.allowed && response.patch.is_some());
//! ```
//!
//! Which pods are reviewed is the API server's choice: the `MutatingWebhookConfiguration` that
//! `whakapapa-collector manifests` prints selects namespaces carrying the opt-in label, so
//! [`mutate`] patches every pod it is given. A container that already sets a variable keeps
//! its own value (setting `KUBE_CLIENT_SUBMIT_PURPOSE` to anything, even empty, is how a pod
//! opts out); the others get it appended to their `env`.

mod route;

pub use route::router;

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::Value;

/// The variable that switches the whakapapa layer on in a program.
pub const PURPOSE_ENV: &str = "KUBE_CLIENT_SUBMIT_PURPOSE";
/// The variable naming the collector that receives side-channel purpose records.
pub const COLLECTOR_URL_ENV: &str = "WHAKAPAPA_COLLECTOR_URL";

/// Errors building an [`Injection`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The collector URL given to inject is not an absolute http(s) URL.
    #[error("collector url {url:?} is not an absolute http:// or https:// url")]
    CollectorUrl {
        /// The rejected value.
        url: String,
    },
}

/// What the webhook injects into containers; validated once when built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    collector_url: String,
}

impl Injection {
    /// Injects `KUBE_CLIENT_SUBMIT_PURPOSE=1` and `WHAKAPAPA_COLLECTOR_URL=collector_url`.
    pub fn new(collector_url: impl Into<String>) -> Result<Self, Error> {
        let collector_url = collector_url.into();
        let valid = collector_url
            .parse::<http::Uri>()
            .ok()
            .filter(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
            })
            .is_some();
        if !valid {
            return Err(Error::CollectorUrl { url: collector_url });
        }
        Ok(Self { collector_url })
    }

    /// The collector URL injected as `WHAKAPAPA_COLLECTOR_URL`.
    pub fn collector_url(&self) -> &str {
        &self.collector_url
    }

    fn vars(&self) -> [EnvVar; 2] {
        [
            EnvVar {
                name: PURPOSE_ENV.to_owned(),
                value: Some("1".to_owned()),
                ..EnvVar::default()
            },
            EnvVar {
                name: COLLECTOR_URL_ENV.to_owned(),
                value: Some(self.collector_url.clone()),
                ..EnvVar::default()
            },
        ]
    }
}

/// Answers one pod admission review: allowed, with a JSON Patch adding the purpose variables
/// to every container and init container that lacks them (no patch when none does).
///
/// A review without a request is answered as invalid; operations other than `CREATE` and
/// reviews without an object are allowed unchanged.
pub fn mutate(
    review: AdmissionReview<Pod>,
    injection: &Injection,
) -> AdmissionReview<DynamicObject> {
    let request: AdmissionRequest<Pod> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return AdmissionResponse::invalid("admission review has no request").into_review();
        }
    };
    let response = AdmissionResponse::from(&request);
    let pod = match (&request.operation, &request.object) {
        (Operation::Create, Some(pod)) => pod,
        _ => return response.into_review(),
    };
    let ops = patch_operations(pod, injection);
    if ops.is_empty() {
        return response.into_review();
    }
    match response.clone().with_patch(Patch(ops)) {
        Ok(patched) => patched.into_review(),
        // A patch of strings always serializes; should it not, admit the pod unchanged rather
        // than block its creation.
        Err(_) => response.into_review(),
    }
}

/// The review as JSON for kube-apiserver, with `response.patch` base64-encoded.
///
/// kube-apiserver decodes `patch` as Go `[]byte`, i.e. a base64 string; kube-core serializes
/// its `Vec<u8>` as an array of numbers (kube-rs issue #1781), so the field is rewritten here.
pub fn to_wire(review: &AdmissionReview<DynamicObject>) -> Value {
    let mut value = serde_json::to_value(review).unwrap_or(Value::Null);
    let patch = review.response.as_ref().and_then(|r| r.patch.clone());
    if let (Some(patch), Some(response)) = (patch, value.get_mut("response")) {
        let encoded = serde_json::to_value(k8s_openapi::ByteString(patch)).unwrap_or(Value::Null);
        response["patch"] = encoded;
    }
    value
}

/// The JSON Patch operations [`mutate`] sends for `pod`.
pub fn patch_operations(pod: &Pod, injection: &Injection) -> Vec<PatchOperation> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let vars = injection.vars();
    let mut ops = Vec::new();
    let groups: [(&str, &[Container]); 2] = [
        ("containers", &spec.containers),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (field, containers) in groups {
        for (index, container) in containers.iter().enumerate() {
            let missing: Vec<&EnvVar> = vars
                .iter()
                .filter(|var| !sets(container, &var.name))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let index = index.to_string();
            let env = PointerBuf::from_tokens(["spec", field, index.as_str(), "env"]);
            if container.env.is_none() {
                ops.push(add(
                    env,
                    Value::Array(missing.iter().map(|v| to_value(v)).collect()),
                ));
            } else {
                for var in missing {
                    let mut path = env.clone();
                    path.push_back("-");
                    ops.push(add(path, to_value(var)));
                }
            }
        }
    }
    ops
}

fn sets(container: &Container, name: &str) -> bool {
    container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|var| var.name == name)
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn to_value(var: &EnvVar) -> Value {
    serde_json::json!({ "name": var.name, "value": var.value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn injection() -> Injection {
        Injection::new("https://whakapapa-collector.whakapapa.svc:8443").unwrap()
    }

    fn review(operation: &str, spec: Value) -> AdmissionReview<Pod> {
        serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "b9f1c2de-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop",
                "operation": operation,
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"generateName": "web-", "namespace": "shop"},
                           "spec": spec},
                "oldObject": null,
                "dryRun": false
            }
        }))
        .unwrap()
    }

    /// Applies the response's patch to the pod of the review, as the API server does.
    fn patched_env(spec: Value) -> (Value, bool) {
        let pod = json!({"spec": spec.clone()});
        let response = mutate(review("CREATE", spec), &injection())
            .response
            .unwrap();
        assert!(response.allowed);
        assert_eq!(response.uid, "b9f1c2de-0000-4000-8000-000000000001");
        let Some(patch) = response.patch else {
            return (pod, false);
        };
        let patch: Patch = serde_json::from_slice(&patch).unwrap();
        let mut pod = pod;
        json_patch::patch(&mut pod, &patch).unwrap();
        (pod, true)
    }

    fn env_of(pod: &Value, field: &str, index: usize) -> Vec<(String, String)> {
        pod["spec"][field][index]["env"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_owned(),
                    v["value"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    /// Name, pod spec, then per container (field, index) the env it should end with.
    type Case = (
        &'static str,
        Value,
        Vec<(&'static str, usize, Vec<(String, String)>)>,
    );

    #[test]
    fn containers_and_init_containers_get_both_variables() {
        let url = "https://whakapapa-collector.whakapapa.svc:8443";
        let cases: Vec<Case> = vec![
            (
                "no env at all",
                json!({"containers": [{"name": "app", "image": "shop:1"}]}),
                vec![(
                    "containers",
                    0,
                    vec![pair(PURPOSE_ENV, "1"), pair(COLLECTOR_URL_ENV, url)],
                )],
            ),
            (
                "existing env kept first",
                json!({"containers": [{"name": "app", "image": "shop:1",
                                        "env": [{"name": "RUST_LOG", "value": "info"}]}]}),
                vec![(
                    "containers",
                    0,
                    vec![
                        pair("RUST_LOG", "info"),
                        pair(PURPOSE_ENV, "1"),
                        pair(COLLECTOR_URL_ENV, url),
                    ],
                )],
            ),
            (
                "init containers and every container",
                json!({"initContainers": [{"name": "migrate", "image": "shop:1"}],
                       "containers": [{"name": "app", "image": "shop:1"},
                                      {"name": "sidecar", "image": "proxy:2", "env": []}]}),
                vec![
                    (
                        "initContainers",
                        0,
                        vec![pair(PURPOSE_ENV, "1"), pair(COLLECTOR_URL_ENV, url)],
                    ),
                    (
                        "containers",
                        0,
                        vec![pair(PURPOSE_ENV, "1"), pair(COLLECTOR_URL_ENV, url)],
                    ),
                    (
                        "containers",
                        1,
                        vec![pair(PURPOSE_ENV, "1"), pair(COLLECTOR_URL_ENV, url)],
                    ),
                ],
            ),
            (
                "a container's own value wins; only the missing one is added",
                json!({"containers": [{"name": "app", "image": "shop:1",
                                        "env": [{"name": COLLECTOR_URL_ENV, "value": "http://mine:8080"}]}]}),
                vec![(
                    "containers",
                    0,
                    vec![
                        pair(COLLECTOR_URL_ENV, "http://mine:8080"),
                        pair(PURPOSE_ENV, "1"),
                    ],
                )],
            ),
        ];
        for (name, spec, want) in cases {
            let (pod, patched) = patched_env(spec);
            assert!(patched, "{name}: expected a patch");
            for (field, index, env) in want {
                assert_eq!(env_of(&pod, field, index), env, "{name}: {field}[{index}]");
            }
        }
    }

    #[test]
    fn pods_that_already_set_both_are_left_alone() {
        let cases = [
            json!({"containers": [{"name": "app", "image": "shop:1", "env": [
                {"name": PURPOSE_ENV, "value": ""},
                {"name": COLLECTOR_URL_ENV, "value": "http://mine:8080"}]}]}),
            json!({"containers": [{"name": "app", "image": "shop:1", "env": [
                {"name": COLLECTOR_URL_ENV, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "url"}}},
                {"name": PURPOSE_ENV, "value": "1"}]}]}),
        ];
        for spec in cases {
            let (pod, patched) = patched_env(spec.clone());
            assert!(!patched, "unexpected patch for {spec}");
            assert_eq!(pod["spec"], spec);
        }
    }

    #[test]
    fn other_operations_are_allowed_unchanged() {
        let spec = json!({"containers": [{"name": "app", "image": "shop:1"}]});
        for operation in ["UPDATE", "DELETE", "CONNECT"] {
            let response = mutate(review(operation, spec.clone()), &injection())
                .response
                .unwrap();
            assert!(response.allowed, "{operation}");
            assert!(response.patch.is_none(), "{operation}");
        }
    }

    #[test]
    fn a_review_without_request_is_invalid() {
        let review: AdmissionReview<Pod> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"
        }))
        .unwrap();
        let response = mutate(review, &injection()).response.unwrap();
        assert!(!response.allowed);
    }

    #[test]
    fn collector_url_must_be_absolute_http() {
        for bad in [
            "",
            "collector:8080",
            "ftp://collector",
            "http://",
            "https://a b",
        ] {
            assert!(Injection::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "http://127.0.0.1:8080",
            "https://whakapapa-collector.whakapapa.svc:8443",
        ] {
            assert_eq!(Injection::new(good).unwrap().collector_url(), good);
        }
    }
}
