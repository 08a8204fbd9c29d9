//! The tower middleware: [`PurposeLayer`] and [`PurposeService`], and the layer's
//! [`PurposeHandle`].
//!
//! # Example
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! use whakapapa::{PurposeLayer, Settings};
//! let config = kube::Config::infer().await?;
//! // Never fails: a bad WHAKAPAPA_* value is one warning, and just that part stays off.
//! let layer = PurposeLayer::new(Settings::from_env(whakapapa::identity!()));
//! let client = kube::client::ClientBuilder::try_from(config)?.with_layer(&layer).build();
//! # Ok(()) }
//! ```
//!
//! # Where the purpose is captured, and how the inner service is called from the future
//!
//! `kube::Client` puts every stack behind `tower::buffer::Buffer`: `Service::call` runs on the
//! buffer's worker task, whose stack holds nothing of the application. The future `call`
//! returns is handed back and polled by the caller's task, so at its *first poll* the stack
//! holds the caller's async fns with their `file:line`. [`PurposeService::call`] therefore
//! only packs the request into a [`ResponseFuture`]; the future captures the stack at its first
//! poll, adds the headers and only then calls the inner service. The inner service (kube's
//! default stack is a non-`Clone` `BoxService`) is shared by the futures behind a mutex: a
//! future locks it, asks `poll_ready` and calls it in one go, so readiness is never used
//! twice; futures that find it not ready wait and are all woken by the next call. Switched
//! off, the layer is the inner service itself, untouched.
//!
//! [`PurposeService::call`]: crate::PurposeService#method.call
//! [`ResponseFuture`]: crate::future::ResponseFuture

use crate::gate::Gate;
use crate::identity::Identity;
use crate::purpose::{self, Trace};
use crate::render::Shared;
use crate::service::{Inner, PurposeService};
use crate::settings::Settings;
use crate::sidechannel::Flushed;
use crate::stats::{Counters, Stats};
use http::header::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use tower::Layer;

/// A [`Layer`] that attaches the program's identity and the calling code's purpose to every
/// request (`User-Agent`, `Audit-ID`, side channel), or does nothing when purpose is off.
/// Works for any `http::Request<B>` service: kube's stack, a hyper client, a tower stack.
///
/// Layers below it find the purpose the request was sent with in its extensions, as
/// `Arc<`[`Purpose`](crate::Purpose)`>` (frames empty until debug info is loaded, or when the
/// binary has none):
///
/// ```
/// # use std::sync::Arc;
/// # fn inner(request: &http::Request<()>) {
/// if let Some(purpose) = request.extensions().get::<Arc<whakapapa::Purpose>>() {
///     tracing::debug!(fingerprint = purpose.fingerprint, frames = purpose.frames.len());
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct PurposeLayer {
    shared: Option<Arc<Shared>>,
    /// Purpose off with the identity asked for: the `User-Agent` to give requests.
    identity_only: Option<HeaderValue>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for PurposeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurposeLayer")
            .field("purpose", &self.shared.is_some())
            .field("identity", &self.shared.as_ref().map(|s| &s.identity_text))
            .field("identity_only", &self.identity_only)
            .finish()
    }
}

impl PurposeLayer {
    /// A layer from explicit settings. It starts nothing: with purpose on, the first service
    /// built from it (`Layer::layer`, as kube's `ClientBuilder::with_layer` does) starts loading
    /// debug info in the background (so does [`wait_warm`](Self::wait_warm)), and the
    /// side-channel thread if a sink is set.
    pub fn new(settings: Settings) -> Self {
        // The identity text is printable ASCII by construction (the wire crate escapes it).
        let identity_only = (!settings.purpose && settings.identity_when_off)
            .then(|| HeaderValue::from_str(&settings.identity.user_agent()).ok())
            .flatten();
        let counters = Arc::new(Counters::new(settings.rejected));
        let shared = settings
            .purpose
            .then(|| Arc::new(Shared::new(settings, counters.clone())));
        Self {
            shared,
            identity_only,
            counters,
        }
    }

    /// A layer from [`Settings::from_env`]; never fails (a bad value is a warning).
    pub fn from_env(identity: Identity) -> Self {
        Self::new(Settings::from_env(identity))
    }

    /// Whether requests get identity and purpose.
    pub fn is_on(&self) -> bool {
        self.shared.is_some()
    }

    /// Waits up to `timeout` until debug info is loaded, and says whether it is. Requests
    /// never wait for it: until then each goes with its identity and fingerprint, and its
    /// frames follow through the side channel. A short-lived program that wants the frames
    /// in the user agent of its very first request calls this first.
    ///
    /// ```no_run
    /// # use whakapapa::{PurposeLayer, Settings};
    /// let layer = PurposeLayer::new(Settings::new(whakapapa::identity!()));
    /// layer.wait_warm(std::time::Duration::from_secs(2));
    /// ```
    pub fn wait_warm(&self, timeout: Duration) -> bool {
        if self.shared.is_none() {
            return false;
        }
        let mut caller = Trace::new();
        caller.capture();
        crate::warmup::start(caller.ips());
        crate::warmup::hurry();
        purpose::wait_warm(timeout)
    }

    /// Whether, purpose being off, requests get the identity alone as their `User-Agent`.
    pub fn sends_identity_only(&self) -> bool {
        self.identity_only.is_some()
    }

    /// The handle to this layer's side channel and counters, for [`flush`](PurposeHandle::flush)
    /// before exit and [`stats`](PurposeHandle::stats); every clone of the layer and every
    /// service built from it share them.
    pub fn handle(&self) -> PurposeHandle {
        PurposeHandle {
            shared: self.shared.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// What a [`PurposeLayer`] has done and still has to do: its side channel's records
/// ([`flush`](Self::flush)) and its counters ([`stats`](Self::stats)). From
/// [`PurposeLayer::handle`], or beside the client from [`client`](crate::client) and the
/// other helpers; cheap to clone. Layers do not share these: each handle speaks for its own.
///
/// ```no_run
/// # fn run(config: kube::Config) -> Result<(), Box<dyn std::error::Error>> {
/// let layer = whakapapa::PurposeLayer::from_env(whakapapa::identity!());
/// let handle = layer.handle();
/// let client = kube::client::ClientBuilder::try_from(config)?.with_layer(&layer).build();
/// // ... the program's requests through `client` ...
/// # drop(client);
/// let flushed = handle.flush(std::time::Duration::from_secs(5));
/// eprintln!("whakapapa: {flushed}; {} requests", handle.stats().requests);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PurposeHandle {
    shared: Option<Arc<Shared>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for PurposeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PurposeHandle")
            .field("purpose", &self.shared.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

impl PurposeHandle {
    /// Waits up to `timeout` until the layer's side channel has handled every record queued
    /// so far (call before exit), and says what became of them: see [`Flushed`]. With no side
    /// channel (purpose off, or no sink set) nothing was queued and it is complete at once.
    pub fn flush(&self, timeout: Duration) -> Flushed {
        self.shared
            .as_ref()
            .map_or_else(Flushed::default, |shared| shared.flush(timeout))
    }

    /// The layer's counters so far.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl<S> Layer<S> for PurposeLayer {
    type Service = PurposeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = match &self.shared {
            None => match &self.identity_only {
                None => Inner::Off(inner),
                Some(user_agent) => Inner::Identity(inner, user_agent.clone()),
            },
            Some(shared) => {
                shared.start();
                Inner::On {
                    gate: Arc::new(Gate::new(inner)),
                    shared: shared.clone(),
                }
            }
        };
        PurposeService { inner }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn id() -> Identity {
        Identity::new("app", "1")
    }

    #[test]
    fn off_layer_is_the_inner_service() {
        let layer = PurposeLayer::new(Settings::off(id()));
        assert!(!layer.is_on());
        let svc = layer.layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::io::Error>(http::Response::new(()))
        }));
        assert!(matches!(svc.inner, Inner::Off(_)));
        let identity = PurposeLayer::new(Settings::off(id()).with_identity_when_off(true));
        assert!(!identity.is_on() && identity.sends_identity_only());
        // Purpose on already sends the identity: the setting changes nothing there.
        let on = PurposeLayer::new(Settings::new(id()).with_identity_when_off(true));
        assert!(on.is_on() && !on.sends_identity_only());
        let handle = layer.handle();
        assert_eq!(handle.flush(Duration::from_millis(1)), Flushed::default());
        assert!(handle.flush(Duration::from_millis(1)).is_complete());
        assert_eq!(handle.stats().requests, 0);
    }
}
