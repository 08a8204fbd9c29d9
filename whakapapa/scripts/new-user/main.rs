//! A new user's kube-rs program: list, get and create Pods, and print, as one JSON object, how
//! long the first request took (alone and from the start of `main`) and a steady `get`. Built
//! with the `whakapapa` feature, its client comes from `whakapapa::infer_client`.
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let start = Instant::now();
    let client = make_client().await?;
    let pods: Api<Pod> = Api::default_namespaced(client);
    let before = Instant::now();
    let list = pods.list(&ListParams::default()).await?;
    let first = before.elapsed();
    let first_from_start = start.elapsed();
    let got = pods.get("checkout-0").await?;
    let pod = new_pod();
    let created = pods.create(&PostParams::default(), &pod).await?;
    let before = Instant::now();
    for _ in 0..200 {
        pods.get("checkout-0").await?;
    }
    let steady = before.elapsed() / 200;
    println!(
        "{{\"first_request_us\":{},\"from_start_us\":{},\"steady_get_us\":{},\"listed\":{},\"got\":{:?},\"created\":{:?}}}",
        first.as_micros(),
        first_from_start.as_micros(),
        steady.as_micros(),
        list.items.len(),
        got.metadata.name.unwrap_or_default(),
        created.metadata.name.unwrap_or_default()
    );
    Ok(())
}

fn new_pod() -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some("checkout-1".into());
    pod
}

#[cfg(feature = "whakapapa")]
async fn make_client() -> anyhow::Result<kube::Client> {
    let (client, _whakapapa) = whakapapa::infer_client(whakapapa::identity!()).await?;
    Ok(client)
}

#[cfg(not(feature = "whakapapa"))]
async fn make_client() -> anyhow::Result<kube::Client> {
    Ok(kube::Client::try_default().await?)
}
