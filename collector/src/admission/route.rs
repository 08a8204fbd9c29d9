//! `POST /mutate`: the API server's admission review in, the patched review out.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::{Injection, mutate, to_wire};
use crate::metrics::Metrics;

#[derive(Clone)]
struct AdmissionState {
    injection: Arc<Injection>,
    metrics: Arc<Metrics>,
}

/// A router serving `POST /mutate` with `injection`; counts patched pods in `metrics`.
pub fn router(injection: Injection, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/mutate", post(review))
        .with_state(AdmissionState {
            injection: Arc::new(injection),
            metrics,
        })
}

async fn review(State(state): State<AdmissionState>, body: Bytes) -> Response {
    match serde_json::from_slice::<AdmissionReview<Pod>>(&body) {
        Ok(review) => {
            let answer = mutate(review, &state.injection);
            if answer.response.as_ref().is_some_and(|r| r.patch.is_some()) {
                state.metrics.pods_mutated();
            }
            Json(to_wire(&answer)).into_response()
        }
        Err(pod_error) => match serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body) {
            // A well-formed review whose object is not a pod we can read: admit it unchanged
            // (never block a pod because of us) and say why in a warning the user sees.
            Ok(other) => match TryInto::<AdmissionRequest<DynamicObject>>::try_into(other) {
                Ok(request) => {
                    tracing::warn!(uid = %request.uid, error = %pod_error, "admission object is not a readable pod");
                    let mut response = AdmissionResponse::from(&request);
                    response.warnings = Some(vec![format!(
                        "whakapapa: pod not mutated, object unreadable: {pod_error}"
                    )]);
                    Json(to_wire(&response.into_review())).into_response()
                }
                Err(_) => bad_request("admission review has no request"),
            },
            Err(error) => bad_request(&format!("body is not an AdmissionReview: {error}")),
        },
    }
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}
