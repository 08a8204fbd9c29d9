//! Identity and purpose for every Kubernetes API request: a tower middleware for kube-rs that
//! tells the API server who is calling (program, version, platform, commit, build) and why
//! (the application's call stack, as functions with `file:line`), in the `User-Agent` and
//! `Audit-ID` headers that kube-apiserver keeps in its audit log.
//!
//! # Example
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! // Switched on by KUBE_CLIENT_SUBMIT_PURPOSE; unset, the client is kube's own, unchanged.
//! let client = whakapapa::infer_client(whakapapa::identity!()).await?;
//! # Ok(()) }
//! ```
//!
//! The wire format is specified in `KEP.md`; the [`wire`] crate (`whakapapa-wire`, shared with
//! the collector) renders and parses it. The stack is captured when
//! the request's future is first polled, on the caller's task (see [`layer`] for why, and how
//! that works behind kube's `Buffer`).

pub mod build;
pub mod future;
pub mod identity;
pub mod layer;
pub mod purpose;
mod sidechannel;
mod stats;
mod warmup;

pub use identity::Identity;
pub use layer::{PurposeLayer, PurposeService, Settings, SettingsError};
pub use purpose::Purpose;
pub use stats::{Stats, stats};
/// The wire format: `User-Agent` grammar, `Audit-ID` and side-channel [`Record`].
pub use whakapapa_wire as wire;
pub use whakapapa_wire::Record;

/// Waits up to `timeout` until every layer's side channel has written or posted the full
/// purposes queued so far; call it before the program exits. Whether they all got there.
pub fn flush(timeout: std::time::Duration) -> bool {
    sidechannel::flush_all(timeout)
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A whakapapa setting is invalid.
    #[error("reading whakapapa settings")]
    Settings(#[from] SettingsError),
    /// kube could not build its client.
    #[error("building the kube client")]
    Kube(#[from] kube::Error),
}

/// A `kube::Client` from `config`, with kube's default stack wrapped in a [`PurposeLayer`]
/// configured from the environment ([`Settings::from_env`]).
pub fn client(config: kube::Config, identity: Identity) -> Result<kube::Client, Error> {
    client_with(config, Settings::from_env(identity)?)
}

/// A `kube::Client` from `config` with a [`PurposeLayer`] from explicit settings.
pub fn client_with(config: kube::Config, settings: Settings) -> Result<kube::Client, Error> {
    let layer = PurposeLayer::new(settings);
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build())
}

/// As [`client`], from the inferred configuration (kubeconfig, else in-cluster).
pub async fn infer_client(identity: Identity) -> Result<kube::Client, Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    client(config, identity)
}
