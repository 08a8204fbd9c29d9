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
//! let (client, whakapapa) = whakapapa::infer_client(whakapapa::identity!()).await?;
//! # Ok(()) }
//! ```
//!
//! # Dependencies
//!
//! kube 5 with its `client` feature, and tokio (`rt`, `rt-multi-thread`, `time`) for the
//! warm-up thread and the side channel's posts. The TLS stack, `runtime`, `derive` and the
//! rest stay the application's choice in its own `kube` dependency (kube's default features
//! give rustls), so a kube-rs application that adds whakapapa compiles only the debug-info
//! readers (`backtrace`, `addr2line`, `object`) and the wire crate besides what it had.
//!
//! # Environment
//!
//! [`Settings::from_env`] (behind [`client`], [`infer_client`] and [`PurposeLayer::from_env`])
//! reads:
//!
//! | variable | value |
//! |---|---|
//! | `KUBE_CLIENT_SUBMIT_PURPOSE` | anything but empty, `0`, `false`, `no`, `off` switches purpose on; unset, the client is kube's own and no other variable is read but the next |
//! | `WHAKAPAPA_IDENTITY` | with purpose off, `1`/`true`/`yes`/`on` sends the identity user agent alone, as client-go programs do (no fingerprint, no frames, Audit-ID untouched); unset, off stays byte-identical ([`Settings::with_identity_when_off`] from code) |
//! | `WHAKAPAPA_COLLECTOR_URL` | `http://host[:port][/path]`: full purposes are posted to `{url}/purposes` |
//! | `WHAKAPAPA_SPOOL` | a file this process can create or append to: full purposes are appended as JSON lines |
//! | `WHAKAPAPA_QUEUE_CAPACITY` | the side-channel queue length, 1 to 65536 (default 1024) |
//!
//! A bad value never stops the program nor fails a request: it is one `tracing` warning naming
//! the variable, the value and the rule, a count in the layer's [`Stats::settings_rejected`], and that part
//! alone is off (that sink, or the default length); requests keep identity and purpose. The
//! builders used from code ([`Settings::with_collector_url`]) return an error instead.
//!
//! # Before exit
//!
//! The layer's [`PurposeHandle`] ([`PurposeLayer::handle`], or the second half of what
//! [`client`] and the other helpers return) waits for its side channel
//! ([`PurposeHandle::flush`]) and says what became of the full purposes, as a [`Flushed`]: how
//! many were delivered, failed, dropped or are still pending; [`PurposeHandle::stats`] has the
//! layer's counters.
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, whakapapa) = whakapapa::infer_client(whakapapa::identity!()).await?;
//! // ... the program's requests through `client` ...
//! # drop(client);
//! let flushed = whakapapa.flush(std::time::Duration::from_secs(5));
//! if !flushed.is_complete() {
//!     eprintln!("whakapapa: {flushed}");
//! }
//! # Ok(()) }
//! ```
//!
//! # Debug info
//!
//! Frames are named from the binary's debug info: `debug = "limited"` in the release profile
//! gives full function paths with `file:line` (`"line-tables-only"`: `file:line`, inlined
//! functions nameless). A binary without debug info (cargo's release default) still sends
//! distinct, stable fingerprints, and its side-channel records carry the stack as module
//! addresses (build-id and offset) that `whakapapa-collector symbolize FILE` names later from
//! the build's unstripped binary or `objcopy --only-keep-debug` file; that needs a side
//! channel (`WHAKAPAPA_COLLECTOR_URL` or `WHAKAPAPA_SPOOL`) and a linker that writes a GNU
//! build-id (the default with gcc or clang on Linux).
//!
//! No request waits for debug info to load: until a background thread (started when the
//! client is built from the layer; building the layer starts nothing) has loaded it, requests
//! go with identity and fingerprint and their frames follow through the side channel.
//! [`PurposeLayer::wait_warm`] waits for it, for a program that wants frames in its first
//! user agent; [`PurposeHandle::flush`] before exit also waits for those late frames.
//!
//! The wire format is specified in `KEP.md`; the [`wire`] crate (`whakapapa-wire`, shared with
//! the collector) renders and parses it. The stack is captured when
//! the request's future is first polled, on the caller's task (see [`layer`] for why, and how
//! that works behind kube's `Buffer`).

pub mod build;
pub mod future;
mod gate;
pub mod identity;
pub mod layer;
mod modules;
pub mod purpose;
mod render;
pub mod service;
pub mod settings;
mod sidechannel;
mod stats;
mod warmup;

pub use identity::Identity;
pub use layer::{PurposeHandle, PurposeLayer};
pub use purpose::Purpose;
pub use service::PurposeService;
pub use settings::{Settings, SettingsError};
pub use sidechannel::Flushed;
pub use stats::Stats;
/// The wire format: `User-Agent` grammar, `Audit-ID` and side-channel [`Record`].
pub use whakapapa_wire as wire;
pub use whakapapa_wire::Record;

/// Why a client could not be built. Settings from the environment never are a reason: see
/// [`Settings::from_env`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// kube could not build its client.
    #[error("building the kube client")]
    Kube(#[from] kube::Error),
}

/// A `kube::Client` from `config`, with kube's default stack wrapped in a [`PurposeLayer`]
/// configured from the environment ([`Settings::from_env`]), and the layer's handle (to
/// [`flush`](PurposeHandle::flush) before exit); fails only when kube does.
pub fn client(
    config: kube::Config,
    identity: Identity,
) -> Result<(kube::Client, PurposeHandle), Error> {
    client_with(config, Settings::from_env(identity))
}

/// As [`client`], with a [`PurposeLayer`] from explicit settings.
pub fn client_with(
    config: kube::Config,
    settings: Settings,
) -> Result<(kube::Client, PurposeHandle), Error> {
    let layer = PurposeLayer::new(settings);
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build();
    Ok((client, layer.handle()))
}

/// As [`client`], from the inferred configuration (kubeconfig, else in-cluster).
pub async fn infer_client(identity: Identity) -> Result<(kube::Client, PurposeHandle), Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    client(config, identity)
}

#[cfg(doctest)]
#[doc = include_str!("readme.md")]
struct ReadmeSnippets;

#[cfg(test)]
mod readme {
    /// The lines of each ```` ```rust ```` block of a markdown text, rustdoc's hidden lines
    /// (`# ...`) left out.
    fn rust_blocks(text: &str) -> Vec<Vec<&str>> {
        let mut blocks = Vec::new();
        let mut open: Option<Vec<&str>> = None;
        for line in text.lines() {
            match &mut open {
                None if line.starts_with("```rust") => open = Some(Vec::new()),
                None => {}
                Some(_) if line.starts_with("```") => blocks.extend(open.take()),
                Some(_) if line == "#" || line.starts_with("# ") => {}
                Some(block) => block.push(line),
            }
        }
        blocks
    }

    #[test]
    fn every_rust_snippet_of_the_readme_is_a_doctest() {
        let doctests = rust_blocks(include_str!("readme.md"));
        let snippets = rust_blocks(include_str!("../../README.md"));
        assert!(!snippets.is_empty());
        for snippet in snippets {
            assert!(
                doctests.contains(&snippet),
                "a README snippet that whakapapa/src/readme.md does not compile:\n{}",
                snippet.join("\n")
            );
        }
    }
}
