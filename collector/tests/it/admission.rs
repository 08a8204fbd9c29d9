//! `POST /mutate` with AdmissionReview v1 requests as kube-apiserver sends them.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use whakapapa_collector::admission::{self, COLLECTOR_URL_ENV, Injection, PURPOSE_ENV};
use whakapapa_collector::metrics::Metrics;

const URL: &str = "https://whakapapa-collector.whakapapa.svc:443";

/// An AdmissionReview v1 for a Deployment's pod, as kube-apiserver sends it.
fn review(containers: Value) -> Value {
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "3f0c5e4a-9d2b-4c61-8a7e-2b1d0f9e8c7a",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "a1b2", "groups": ["system:serviceaccounts", "system:authenticated"]
            },
            "object": {
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "generateName": "shop-controller-7d9f8b6c5-", "namespace": "shop",
                    "labels": {"app": "shop-controller", "pod-template-hash": "7d9f8b6c5"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "shop-controller-7d9f8b6c5", "uid": "c3d4",
                        "controller": true, "blockOwnerDeletion": true}]
                },
                "spec": {
                    "containers": containers,
                    "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                    "serviceAccountName": "shop-controller"
                },
                "status": {}
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

async fn post(app: axum::Router, body: String) -> (StatusCode, Vec<u8>) {
    let response = app
        .oneshot(
            Request::post("/mutate")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

#[tokio::test]
async fn pods_in_opted_in_namespaces_get_purpose_switched_on() {
    let metrics = Arc::new(Metrics::default());
    let app = admission::router(Injection::new(URL).unwrap(), metrics.clone());
    let containers = json!([
        {"name": "controller", "image": "shop-controller:0.3.1",
         "env": [{"name": "RUST_LOG", "value": "info"}]},
        {"name": "proxy", "image": "envoy:1.31"}
    ]);
    let request = review(containers.clone());
    let (status, body) = post(app.clone(), request.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"], request["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");

    // Apply the base64 JSON Patch to the pod as kube-apiserver does.
    let patch: k8s_openapi::ByteString = serde_json::from_value(response["patch"].clone()).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch.0).unwrap();
    let mut pod = request["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
    for container in pod.spec.unwrap().containers {
        let env: Vec<(String, Option<String>)> = container
            .env
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect();
        assert!(
            env.contains(&(PURPOSE_ENV.to_owned(), Some("1".to_owned()))),
            "{env:?}"
        );
        assert!(
            env.contains(&(COLLECTOR_URL_ENV.to_owned(), Some(URL.to_owned()))),
            "{env:?}"
        );
    }
    assert_eq!(metrics.snapshot().pods_mutated, 1);

    // A pod that already sets both is admitted without a patch.
    let own = json!([{"name": "controller", "image": "shop-controller:0.3.1", "env": [
        {"name": PURPOSE_ENV, "value": "0"},
        {"name": COLLECTOR_URL_ENV, "value": "http://elsewhere:8080"}]}]);
    let (status, body) = post(app, review(own).to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert_eq!(metrics.snapshot().pods_mutated, 1);
}

#[tokio::test]
async fn unreadable_input_is_answered_clearly() {
    let app = admission::router(Injection::new(URL).unwrap(), Arc::new(Metrics::default()));
    let (status, body) = post(app.clone(), "{not json".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("not an AdmissionReview"));

    // A review whose object is not a readable pod is admitted unchanged, with a warning.
    let mut odd = review(json!([]));
    odd["request"]["object"]["spec"]["containers"] = json!("not a list");
    let (status, body) = post(app, odd.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true);
    assert!(
        answer["response"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not mutated")
    );
}
