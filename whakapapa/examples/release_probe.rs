//! What whakapapa sends from a release build: makes one `Api::<Pod>::get` from a named async fn
//! against a loopback stand-in that records the `User-Agent`, and prints it with the frame it
//! should name and the binary's size, as one JSON object.
//!
//! `whakapapa/scripts/release-profiles.sh` builds it with each `debug` setting and tabulates
//! the results (README, "The library").

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use whakapapa::Settings;

type Agents = Arc<Mutex<Vec<String>>>;

/// A stand-in for kube-apiserver's `GET /api/v1/namespaces/{ns}/pods/{name}`.
async fn get_pod(
    State(agents): State<Agents>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> axum::Json<serde_json::Value> {
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    agents
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(ua.to_owned());
    axum::Json(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": "u1", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
    }))
}

mod inventory {
    use super::*;

    /// The application's call, from a named async fn.
    pub async fn fetch_checkout_pod(api: &Api<Pod>) -> kube::Result<u32> {
        let line = line!() + 1;
        api.get("checkout-0").await?;
        Ok(line)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let agents = Agents::default();
    let app = Router::new()
        .route("/api/v1/namespaces/{ns}/pods/{name}", get(get_pod))
        .with_state(agents.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(axum::serve(listener, app).into_future());

    let config = kube::Config::new(url.parse()?);
    let built = Instant::now();
    let (client, whakapapa) =
        whakapapa::client_with(config, Settings::new(whakapapa::identity!()))?;
    // Debug info loads in the background from here; the first request is not made to wait.
    while !whakapapa.stats().symbols_warm {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let warm_up_ms = built.elapsed().as_secs_f64() * 1e3;
    let api: Api<Pod> = Api::default_namespaced(client);
    let mut request_us = Vec::new();
    let mut line = 0;
    for _ in 0..3 {
        let start = Instant::now();
        line = inventory::fetch_checkout_pod(&api).await?;
        request_us.push((start.elapsed().as_secs_f64() * 1e6).round());
    }

    let user_agent = agents
        .lock()
        .ok()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default();
    let expected =
        format!("release_probe::inventory::fetch_checkout_pod@examples/release_probe.rs:{line}");
    let binary_bytes = std::fs::metadata(std::env::current_exe()?)?.len();
    let report = json!({
        "optimized": !cfg!(debug_assertions),
        "user_agent": user_agent,
        "expected_frame": expected,
        "names_the_caller": user_agent.contains(&expected),
        "binary_bytes": binary_bytes,
        "warm_up_ms": (warm_up_ms * 10.0).round() / 10.0,
        "requests_us": request_us,
    });
    println!("{report}");
    Ok(())
}
