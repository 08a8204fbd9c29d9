//! The loop wired together: the collector, the stand-in API server auditing to it, and the
//! controller's `kube::Client` with the whakapapa layer sending full purposes to it.
//!
//! The tests include this file too (`tests/e2e/quickstart.rs`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use whakapapa::{PurposeLayer, Settings};
use whakapapa_testkit::{AuditStats, StandInApiServer, StandInConfig};

use super::collector::Collector;
use super::controller;

/// What one run of the loop leaves behind.
pub struct Finished {
    /// The collector, still serving, its database complete.
    pub collector: Collector,
    /// The stand-in's audit backend after its last batch.
    pub audit: AuditStats,
    /// What became of the full purposes the side channel took.
    pub purposes: whakapapa::Flushed,
    /// Where the stand-in API server listened.
    pub api_server: String,
}

/// The controller's client for `config`: the whakapapa layer with purpose on, full purposes
/// sent to `collector_url`.
fn controller_client(
    config: kube::Config,
    collector_url: &str,
) -> anyhow::Result<(kube::Client, PurposeLayer)> {
    let mut identity = whakapapa::identity!();
    identity.name = "shop-controller".to_owned();
    // Purpose on by explicit settings, not the environment, so the quickstart needs none.
    let settings = Settings::new(identity)
        .with_purpose(true)
        .with_collector_url(collector_url)
        .context("bad collector URL")?;
    let layer = PurposeLayer::new(settings);
    let client = kube::client::ClientBuilder::try_from(config)
        .context("cannot build the kube client")?
        .with_layer(&layer)
        .build();
    Ok((client, layer))
}

/// Runs the controller against a stand-in API server that audits to a fresh collector on
/// `db`, then waits until the audit batches and the full purposes are stored.
pub async fn run_loop(db: &Path) -> anyhow::Result<Finished> {
    let collector = Collector::start(db).await?;
    let api_server =
        StandInApiServer::start(StandInConfig::default().with_audit_webhook(collector.audit_url()))
            .await
            .context("cannot start the stand-in API server")?;
    let url = api_server.url();

    let config = kube::Config::new(url.parse().context("stand-in URL")?);
    let (client, layer) = controller_client(config, &collector.url())?;

    controller::run(client)
        .await
        .context("the controller failed")?;

    // Shutting the stand-in down sends its last audit batch; then the side channel drains.
    let audit = api_server.shutdown().await;
    let purposes =
        tokio::task::spawn_blocking(move || layer.flush(Duration::from_secs(30))).await?;
    Ok(Finished {
        collector,
        audit,
        purposes,
        api_server: url,
    })
}

/// What a run against the real control plane leaves behind.
pub struct FinishedReal {
    /// kube-apiserver's URL.
    pub api_server: String,
    /// The collector's URL.
    pub collector_url: String,
}

/// Runs the controller against a real control plane (`whakapapa_e2e::cluster`) whose
/// kube-apiserver audits to a real `whakapapa-collector serve`; once every request is stored,
/// stops it and copies its database to `db`.
pub async fn run_real(db: &Path) -> anyhow::Result<FinishedReal> {
    use whakapapa_e2e::cluster::{ControlPlane, KubeBinaries, Options, collector_binary};

    let binaries = KubeBinaries::find().map_err(anyhow::Error::msg)?;
    let mut cluster = ControlPlane::start(Options::new(binaries, collector_binary()?)).await?;
    let (client, layer) =
        controller_client(cluster.admin_config().await?, &cluster.side_channel_url())?;
    controller::run(client)
        .await
        .context("the controller failed")?;
    let flushed = tokio::task::spawn_blocking(move || layer.flush(Duration::from_secs(30))).await?;
    if !flushed.is_complete() {
        eprintln!("warning: the side channel did not deliver everything: {flushed}");
    }

    // kube-apiserver sends a batch at least every second: wait until what the collector knows
    // of the programs stops changing; on SIGTERM it folds its rollups and closes the file.
    let collector = cluster.collector_client().await?;
    let mut last = String::new();
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let request = http::Request::get("/api/v1/apps").body(Vec::new())?;
        let now = collector.request_text(request).await?;
        if now == last {
            break;
        }
        last = now;
    }
    let stored = cluster.stop_collector()?;
    for suffix in ["-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    std::fs::copy(&stored, db).with_context(|| format!("cannot write {}", db.display()))?;
    Ok(FinishedReal {
        api_server: cluster.apiserver_url().to_owned(),
        collector_url: cluster.collector_url(),
    })
}
