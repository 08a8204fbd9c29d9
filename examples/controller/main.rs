//! A small controller with whakapapa on its client: it makes sure a `shop` pod exists, counts
//! the pods, then reconciles each one through a kube-runtime `Controller` (one merge patch per
//! pod), and stops after a few reconciles.
//!
//! ```text
//! # against whatever kubeconfig or in-cluster config kube infers:
//! KUBE_CLIENT_SUBMIT_PURPOSE=1 cargo run --example controller
//! # against an in-process stand-in for kube-apiserver, printing the audit log it records:
//! KUBE_CLIENT_SUBMIT_PURPOSE=1 WHAKAPAPA_SPOOL=purposes.jsonl cargo run --example controller -- --stand-in
//! ```
//!
//! Without `KUBE_CLIENT_SUBMIT_PURPOSE` the client is kube's own, byte for byte.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use serde_json::json;

/// The label the controller manages.
const SELECTOR: &str = "app=shop";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut stand_in = false;
    let mut reconciles = 2usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stand-in" => stand_in = true,
            "--reconciles" => {
                let n = args.next().context("--reconciles needs a number")?;
                reconciles = n
                    .parse()
                    .with_context(|| format!("--reconciles {n:?} is not a number"))?;
            }
            other => {
                anyhow::bail!("unknown argument {other:?} (known: --stand-in, --reconciles N)")
            }
        }
    }

    if !stand_in {
        let (client, whakapapa) = whakapapa::infer_client(whakapapa::identity!()).await?;
        return control(client, &whakapapa, reconciles).await;
    }

    let audit = audit_sink::start().await?;
    let config = whakapapa_testkit::StandInConfig::default()
        .with_audit_webhook(format!("{}/audit", audit.url))
        .with_audit_batching(100, Duration::from_millis(50));
    let server = whakapapa_testkit::StandInApiServer::start(config).await?;
    eprintln!("stand-in API server on {}", server.url());
    let config = kube::Config::new(server.url().parse()?);
    let (client, whakapapa) = whakapapa::client(config, whakapapa::identity!())?;
    control(client, &whakapapa, reconciles).await?;
    server.flush_audit().await;
    println!("audit log (verb, URI, auditID, userAgent) as the stand-in API server recorded it:");
    for line in audit.lines() {
        println!("{line}");
    }
    Ok(())
}

/// The controller's work; every request is made by a distinctly named async fn.
async fn control(
    client: kube::Client,
    whakapapa: &whakapapa::PurposeHandle,
    reconciles: usize,
) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::default_namespaced(client);
    ensure_shop_pod(&pods).await?;
    let n = count_shop_pods(&pods).await?;
    eprintln!("{n} shop pods");
    reconcile_shop_pods(pods, reconciles).await?;
    // Requests made before debug info was loaded have their frames resolved on the side
    // channel's thread: give it the time a debug build takes to load them.
    let flushed = whakapapa.flush(Duration::from_secs(30));
    if !flushed.is_complete() {
        eprintln!("warning: not every full purpose was delivered before exit: {flushed}");
    }
    Ok(())
}

async fn ensure_shop_pod(pods: &Api<Pod>) -> anyhow::Result<()> {
    if pods.get_opt("shop-web").await?.is_some() {
        return Ok(());
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "shop-web", "labels": {"app": "shop"}},
        "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]}
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    Ok(())
}

async fn count_shop_pods(pods: &Api<Pod>) -> anyhow::Result<usize> {
    let list = pods.list(&ListParams::default().labels(SELECTOR)).await?;
    Ok(list.items.len())
}

async fn reconcile_shop_pods(pods: Api<Pod>, reconciles: usize) -> anyhow::Result<()> {
    let config = watcher::Config::default().labels(SELECTOR);
    let mut runs = Controller::new(pods.clone(), config)
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(pods),
        )
        .take(reconciles)
        .boxed();
    while let Some(run) = runs.next().await {
        let (object, _) = run.context("reconciling")?;
        eprintln!("reconciled {}", object.name);
    }
    Ok(())
}

/// Marks a pod as seen by this controller.
async fn reconcile(pod: Arc<Pod>, pods: Arc<Api<Pod>>) -> Result<Action, kube::Error> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let seen = json!({"metadata": {"annotations": {"shop.example/seen": "true"}}});
    pods.patch(name, &PatchParams::default(), &Patch::Merge(&seen))
        .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// An audit webhook on loopback that keeps one line per completed request.
mod audit_sink {
    use super::*;
    use axum::routing::post;
    use axum::{Json, Router};

    pub struct AuditSink {
        pub url: String,
        lines: Arc<Mutex<BTreeMap<String, String>>>,
    }

    impl AuditSink {
        /// One line per request, in the order the stand-in received them.
        pub fn lines(&self) -> Vec<String> {
            self.lines
                .lock()
                .map(|l| l.values().cloned().collect())
                .unwrap_or_default()
        }
    }

    pub async fn start() -> anyhow::Result<AuditSink> {
        let lines: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let keep = lines.clone();
        let app = Router::new().route(
            "/audit",
            post(move |Json(list): Json<serde_json::Value>| async move {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let mut lines = keep
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for e in items.iter().filter(|e| e["stage"] == "ResponseComplete") {
                    let key = format!(
                        "{}{}",
                        e["requestReceivedTimestamp"].as_str().unwrap_or(""),
                        e["auditID"]
                    );
                    let line = format!(
                        "{} {} {}\n    {}",
                        e["verb"].as_str().unwrap_or("?"),
                        e["requestURI"].as_str().unwrap_or("?"),
                        e["auditID"].as_str().unwrap_or("?"),
                        e["userAgent"].as_str().unwrap_or("?"),
                    );
                    lines.insert(key, line);
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(axum::serve(listener, app).into_future());
        Ok(AuditSink { url, lines })
    }
}
