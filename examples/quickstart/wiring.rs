//! The loop wired together: the collector, the stand-in API server auditing to it, and the
//! controller's `kube::Client` with the whakapapa layer sending full purposes to it.
//!
//! The tests include this file too (`tests/e2e/quickstart.rs`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use whakapapa::{PurposeLayer, Settings};
use whakapapa_e2e::{AuditStats, StandInApiServer, StandInConfig};

use super::collector::Collector;
use super::controller;

/// What one run of the loop leaves behind.
pub struct Finished {
    /// The collector, still serving, its database complete.
    pub collector: Collector,
    /// The stand-in's audit backend after its last batch.
    pub audit: AuditStats,
    /// Whether the side channel delivered every full purpose.
    pub purposes_delivered: bool,
    /// Where the stand-in API server listened.
    pub api_server: String,
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

    let mut identity = whakapapa::identity!();
    identity.name = "shop-controller".to_owned();
    // Purpose on by explicit settings, not the environment, so the quickstart needs none.
    let settings = Settings::new(identity)
        .with_purpose(true)
        .with_collector_url(&collector.url())
        .context("bad collector URL")?;
    let layer = PurposeLayer::new(settings);
    let config = kube::Config::new(url.parse().context("stand-in URL")?);
    let client = kube::client::ClientBuilder::try_from(config)
        .context("cannot build the kube client")?
        .with_layer(&layer)
        .build();

    controller::run(client)
        .await
        .context("the controller failed")?;

    // Shutting the stand-in down sends its last audit batch; then the side channel drains.
    let audit = api_server.shutdown().await;
    let purposes_delivered =
        tokio::task::spawn_blocking(move || layer.flush(Duration::from_secs(5))).await?;
    Ok(Finished {
        collector,
        audit,
        purposes_delivered,
        api_server: url,
    })
}
