//! A small controller's work against the API server, from distinctly named async fns, so the
//! collector can say which line of which function hit which endpoint.
//!
//! Its test (`tests/e2e/quickstart.rs`) runs it too, so its expectations follow this file.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

/// The namespace the controller manages.
pub const NAMESPACE: &str = "shop";
/// How many times `reconcile` runs.
pub const ROUNDS: usize = 3;

/// Sets up what the controller manages, reconciles it a few times, then reads a log and
/// watches the pods: every request it makes, by the function that makes it.
pub async fn run(client: kube::Client) -> kube::Result<()> {
    ensure_namespace(&client).await?;
    deploy_app(&client).await?;
    for round in 0..ROUNDS {
        reconcile(&client, round).await?;
    }
    read_logs(&client).await?;
    watch_pods(&client).await?;
    Ok(())
}

async fn ensure_namespace(client: &kube::Client) -> kube::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = from_json(json!({"metadata": {"name": NAMESPACE}}));
    let params = PostParams::default();
    namespaces.create(&params, &namespace).await?;
    Ok(())
}

async fn deploy_app(client: &kube::Client) -> kube::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let deployment: Deployment = from_json(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1.29"}]}},
        },
    }));
    let params = PostParams::default();
    deployments.create(&params, &deployment).await?;
    start_pods(client, 2).await
}

/// Stands in for the deployment controller: there is none behind the stand-in API server.
async fn start_pods(client: &kube::Client, count: usize) -> kube::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    for i in 0..count {
        let pod: Pod = from_json(json!({
            "metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.29"}]},
        }));
        pods.create(&PostParams::default(), &pod).await?;
    }
    Ok(())
}

async fn reconcile(client: &kube::Client, round: usize) -> kube::Result<()> {
    ensure_configmap(client, round).await?;
    scale_deployment(client, round as i32 + 1).await?;
    record_event(client, round).await?;
    renew_lease(client).await?;
    list_pods(client).await?;
    Ok(())
}

async fn ensure_configmap(client: &kube::Client, round: usize) -> kube::Result<()> {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let data = BTreeMap::from([("round".to_owned(), round.to_string())]);
    if configmaps.get_opt("web-config").await?.is_none() {
        let configmap: ConfigMap =
            from_json(json!({"metadata": {"name": "web-config"}, "data": data}));
        let params = PostParams::default();
        configmaps.create(&params, &configmap).await?;
    } else {
        let patch = Patch::Merge(json!({"data": data}));
        let params = PatchParams::default();
        configmaps.patch("web-config", &params, &patch).await?;
    }
    Ok(())
}

async fn scale_deployment(client: &kube::Client, replicas: i32) -> kube::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    let params = PatchParams::default();
    deployments.patch_scale("web", &params, &patch).await?;
    Ok(())
}

async fn record_event(client: &kube::Client, round: usize) -> kube::Result<()> {
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    let event: Event = from_json(json!({
        "metadata": {"generateName": "web-"},
        "eventTime": MicroTime(jiff::Timestamp::now()),
        "reportingController": "shop-controller",
        "reportingInstance": "shop-controller-0",
        "action": "Scale",
        "reason": "Reconciled",
        "note": format!("round {round}"),
        "type": "Normal",
        "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": NAMESPACE},
    }));
    events.create(&PostParams::default(), &event).await?;
    Ok(())
}

async fn renew_lease(client: &kube::Client) -> kube::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let now = MicroTime(jiff::Timestamp::now());
    match leases.get_opt("shop-controller").await? {
        None => {
            let lease: Lease = from_json(json!({
                "metadata": {"name": "shop-controller"},
                "spec": {"holderIdentity": "shop-controller-0", "leaseDurationSeconds": 15,
                         "acquireTime": now, "renewTime": now},
            }));
            leases.create(&PostParams::default(), &lease).await?;
        }
        Some(mut lease) => {
            if let Some(spec) = lease.spec.as_mut() {
                spec.renew_time = Some(now);
            }
            let params = PostParams::default();
            leases.replace("shop-controller", &params, &lease).await?;
        }
    }
    Ok(())
}

async fn list_pods(client: &kube::Client) -> kube::Result<usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    Ok(list.items.len())
}

/// A pod that no node runs yet has no log: kube-apiserver answers 400, which is no failure of
/// the controller's.
async fn read_logs(client: &kube::Client) -> kube::Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    match pods.logs("web-0", &LogParams::default()).await {
        Err(kube::Error::Api(status)) if status.code == 400 => Ok(String::new()),
        other => other,
    }
}

/// kube-runtime's watcher: a list, then a watch from its resourceVersion; stops once the
/// initial objects are in.
async fn watch_pods(client: &kube::Client) -> kube::Result<usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut events = watcher(pods, watcher::Config::default()).boxed();
    let mut seen = 0;
    while let Some(event) = events.try_next().await.map_err(watch_error)? {
        match event {
            watcher::Event::InitApply(_) => seen += 1,
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    // The watch request itself starts when the stream is polled after the initial list.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), events.next()).await;
    Ok(seen)
}

fn watch_error(error: watcher::Error) -> kube::Error {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        other => kube::Error::Service(other.into()),
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("the controller's objects are valid")
}
