//! The loop wired together: the collector, the stand-in API server auditing to it, and the
//! controller's `kube::Client` with the whakapapa layer sending full purposes to it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use whakapapa::{Identity, PurposeLayer, Settings};
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
/// sent to `collector_url`. `identity` is the program's (`whakapapa::identity!()` in the
/// binary's crate, whose directory source paths are sent relative to), named
/// `shop-controller`.
pub fn controller_client(
    config: kube::Config,
    collector_url: &str,
    mut identity: Identity,
) -> anyhow::Result<(kube::Client, PurposeLayer)> {
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
/// `db`, then waits until the audit batches and the full purposes are stored. `identity` as
/// for [`controller_client`].
pub async fn run_loop(db: &Path, identity: Identity) -> anyhow::Result<Finished> {
    let collector = Collector::start(db).await?;
    let api_server =
        StandInApiServer::start(StandInConfig::default().with_audit_webhook(collector.audit_url()))
            .await
            .context("cannot start the stand-in API server")?;
    let url = api_server.url();

    let config = kube::Config::new(url.parse().context("stand-in URL")?);
    let (client, layer) = controller_client(config, &collector.url(), identity)?;

    controller::run(client)
        .await
        .context("the controller failed")?;

    // Shutting the stand-in down sends its last audit batch; then the side channel drains.
    let audit = api_server.shutdown().await;
    let purposes =
        tokio::task::spawn_blocking(move || layer.handle().flush(Duration::from_secs(30))).await?;
    Ok(Finished {
        collector,
        audit,
        purposes,
        api_server: url,
    })
}
