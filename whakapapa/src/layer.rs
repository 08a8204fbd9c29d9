//! The tower middleware: [`PurposeLayer`] and [`PurposeService`].
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

use crate::future::ResponseFuture;
use crate::identity::Identity;
use crate::modules::addresses;
use crate::purpose::{self, KeyMap, Purpose, Trace};
use crate::sidechannel::Flushed;
use crate::sidechannel::{self, SideChannel, Sinks};
use crate::stats::{self, CAPTURE_FAILURES, PURPOSES_RESOLVED, REQUESTS, SETTINGS_REJECTED};
use crate::wire;
use crate::wire::stack::address_fingerprint;
use http::Request;
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tower::{BoxError, Layer, Service};

/// Switches purpose on when set to anything but empty, `0`, `false`, `no` or `off`.
pub const ENV_SUBMIT_PURPOSE: &str = "KUBE_CLIENT_SUBMIT_PURPOSE";
/// Base URL of the collector, `http://host[:port][/path]`; full purposes are posted to
/// `{url}/purposes`.
pub const ENV_COLLECTOR_URL: &str = "WHAKAPAPA_COLLECTOR_URL";
/// A file full purposes are appended to as JSON lines.
pub const ENV_SPOOL: &str = "WHAKAPAPA_SPOOL";
/// Side-channel queue length, a whole number from 1 to [`QUEUE_CAPACITY_MAX`].
pub const ENV_QUEUE_CAPACITY: &str = "WHAKAPAPA_QUEUE_CAPACITY";
/// With purpose off, `1`, `true`, `yes` or `on` sends the identity alone as the `User-Agent`
/// (as client-go programs always do); `0`, `false`, `no`, `off` or unset sends nothing.
pub const ENV_IDENTITY: &str = "WHAKAPAPA_IDENTITY";

/// The side-channel queue length unless set otherwise.
pub const QUEUE_CAPACITY_DEFAULT: usize = 1024;
/// The longest side-channel queue: its slots are allocated up front.
pub const QUEUE_CAPACITY_MAX: usize = 65_536;

/// The `Audit-ID` request header kube-apiserver adopts as the audit event's ID.
pub static AUDIT_ID: HeaderName = HeaderName::from_static("audit-id");

/// Most distinct stacks remembered per layer; when full the memory starts over.
const CACHE_MAX: usize = 4096;

/// A setting given in code that whakapapa cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The collector URL is not a URL.
    #[error("collector URL {url:?} is not a valid URL")]
    CollectorUrl {
        /// The value given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The collector URL is not a plain `http://host[:port][/path]` URL.
    #[error("collector URL {url:?} must be an http:// URL with a host")]
    CollectorScheme {
        /// The value given.
        url: String,
    },
}

/// What the layer does: whether purpose is on, who the program is and where full purposes go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Attach identity and purpose to requests; off, the layer changes nothing.
    pub purpose: bool,
    /// Who the program is.
    pub identity: Identity,
    /// Collector base URL for full purposes.
    pub collector_url: Option<http::Uri>,
    /// File full purposes are appended to.
    pub spool: Option<PathBuf>,
    /// Side-channel queue length (at most [`QUEUE_CAPACITY_MAX`]); records beyond it are
    /// dropped and counted.
    pub queue_capacity: usize,
    /// With purpose off, still send the identity as the `User-Agent` of requests that have
    /// none (no purpose, no fingerprint, no `Audit-ID`); with purpose on it changes nothing.
    pub identity_when_off: bool,
}

impl Settings {
    /// Purpose on, no side channel.
    pub fn new(identity: Identity) -> Self {
        Self {
            purpose: true,
            identity,
            collector_url: None,
            spool: None,
            queue_capacity: QUEUE_CAPACITY_DEFAULT,
            identity_when_off: false,
        }
    }

    /// Purpose off: the layer is a pass-through.
    pub fn off(identity: Identity) -> Self {
        Self {
            purpose: false,
            ..Self::new(identity)
        }
    }

    /// Reads [`ENV_SUBMIT_PURPOSE`], then, when it switches purpose on, [`ENV_COLLECTOR_URL`],
    /// [`ENV_SPOOL`] and [`ENV_QUEUE_CAPACITY`], and when it leaves purpose off,
    /// [`ENV_IDENTITY`] (a value other than `1`, `true`, `yes`, `on`, `0`, `false`, `no`,
    /// `off` is rejected as below, and the identity is not sent). Never fails: a value it cannot use (a
    /// collector URL that is not `http://host[:port][/path]`, a spool file this process cannot
    /// create or append to, a capacity that is not a whole number from 1 to
    /// [`QUEUE_CAPACITY_MAX`]) is logged once as a `tracing` warning naming the variable, the
    /// value and the rule, counted in [`Stats::settings_rejected`](crate::Stats), and only
    /// that part is left off (that sink, or the default capacity); requests still get
    /// identity and purpose. An empty value counts as unset.
    pub fn from_env(identity: Identity) -> Self {
        Self::from_vars(identity, |name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(identity: Identity, var: impl Fn(&str) -> Option<String>) -> Self {
        let purpose = var(ENV_SUBMIT_PURPOSE).is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            !matches!(v.as_str(), "" | "0" | "false" | "no" | "off")
        });
        let mut settings = Self {
            purpose,
            ..Self::new(identity)
        };
        if !purpose {
            // Switched off changes nothing, not even a warning about a side-channel setting;
            // only the identity can be asked for.
            if let Some(value) = var(ENV_IDENTITY).filter(|v| !v.trim().is_empty()) {
                match value.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => settings.identity_when_off = true,
                    "0" | "false" | "no" | "off" => {}
                    _ => reject(
                        ENV_IDENTITY,
                        &value,
                        "must be 1, true, yes or on (send the identity) or 0, false, no or off",
                        &"not a switch",
                        "the identity is not sent and requests go out unchanged",
                    ),
                }
            }
            return settings;
        }
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = set(ENV_COLLECTOR_URL) {
            match settings.clone().with_collector_url(&url) {
                Ok(with) => settings = with,
                Err(err) => {
                    let reason = match &err {
                        SettingsError::CollectorUrl { source, .. } => source.to_string(),
                        SettingsError::CollectorScheme { .. } => "no http scheme or host".into(),
                    };
                    reject(
                        ENV_COLLECTOR_URL,
                        &url,
                        "must be an http://host[:port][/path] URL",
                        &reason,
                        "full purposes are not posted to a collector, requests still carry identity and purpose",
                    );
                }
            }
        }
        if let Some(spool) = set(ENV_SPOOL) {
            // Opened now, so that a path it can never write is one warning, not one per batch.
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spool);
            match opened {
                Ok(_) => settings.spool = Some(spool.into()),
                Err(err) => reject(
                    ENV_SPOOL,
                    &spool,
                    "must be a file this process can create or append to",
                    &err,
                    "full purposes are not spooled, requests still carry identity and purpose",
                ),
            }
        }
        if let Some(capacity) = set(ENV_QUEUE_CAPACITY) {
            let reason = match capacity.trim().parse::<usize>() {
                Ok(n) if (1..=QUEUE_CAPACITY_MAX).contains(&n) => {
                    settings.queue_capacity = n;
                    None
                }
                Ok(n) => Some(format!("{n} is out of range")),
                Err(err) => Some(err.to_string()),
            };
            if let Some(reason) = reason {
                reject(
                    ENV_QUEUE_CAPACITY,
                    &capacity,
                    &format!("must be a whole number from 1 to {QUEUE_CAPACITY_MAX}"),
                    &reason,
                    &format!(
                        "the queue keeps its default length of {}, requests still carry \
                         identity and purpose",
                        settings.queue_capacity
                    ),
                );
            }
        }
        settings
    }

    /// Sets whether purpose is on.
    pub fn with_purpose(mut self, on: bool) -> Self {
        self.purpose = on;
        self
    }

    /// Sets whether, with purpose off, requests without a `User-Agent` get the identity as
    /// theirs ([`ENV_IDENTITY`] from the environment).
    pub fn with_identity_when_off(mut self, on: bool) -> Self {
        self.identity_when_off = on;
        self
    }

    /// Posts full purposes to `{url}/purposes`; an error unless `url` is
    /// `http://host[:port][/path]`.
    pub fn with_collector_url(mut self, url: &str) -> Result<Self, SettingsError> {
        let uri: http::Uri = url
            .trim()
            .parse()
            .map_err(|source| SettingsError::CollectorUrl {
                url: url.into(),
                source,
            })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(SettingsError::CollectorScheme { url: url.into() });
        }
        self.collector_url = Some(uri);
        Ok(self)
    }

    /// Appends full purposes to `path` as JSON lines. A path that cannot be written is found
    /// when records are delivered: counted in [`Stats::sink_failures`](crate::Stats) and
    /// reported by [`PurposeLayer::flush`].
    pub fn with_spool(mut self, path: impl Into<PathBuf>) -> Self {
        self.spool = Some(path.into());
        self
    }

    /// Sets the side-channel queue length; 0 is taken as 1 and anything above
    /// [`QUEUE_CAPACITY_MAX`] as that.
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.clamp(1, QUEUE_CAPACITY_MAX);
        self
    }
}

/// An environment value that cannot be used: one warning naming the variable, the value and
/// the rule, and a count in [`Stats::settings_rejected`](crate::Stats).
fn reject(
    variable: &str,
    value: &str,
    rule: &str,
    reason: &dyn std::fmt::Display,
    consequence: &str,
) {
    stats::bump(&SETTINGS_REJECTED);
    tracing::warn!(
        variable,
        value,
        rule,
        reason = %reason,
        "whakapapa: ignoring {variable}={value:?}: it {rule} ({reason}); {consequence}"
    );
}

/// A purpose rendered once per stack and reused.
pub(crate) struct Rendered {
    user_agent: HeaderValue,
    /// What goes into the request's extensions; its fingerprint is the one sent.
    purpose: Arc<Purpose>,
}

struct CacheEntry {
    ips: Box<[usize]>,
    thread: u64,
    rendered: Arc<Rendered>,
}

/// What all services of one layer share.
pub(crate) struct Shared {
    identity: Identity,
    identity_text: String,
    side: Option<SideChannel>,
    cache: RwLock<KeyMap<u64, CacheEntry>>,
}

thread_local! {
    /// This thread's name and its hash, read once per thread.
    static THREAD: (u64, Option<Arc<str>>) = {
        let name = std::thread::current().name().map(Arc::from);
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        (h.finish(), name)
    };
}

impl Shared {
    fn new(settings: Settings) -> Self {
        let sinks = Sinks {
            collector: settings.collector_url,
            spool: settings.spool,
        };
        Self {
            identity_text: settings.identity.user_agent(),
            identity: settings.identity,
            side: SideChannel::start(sinks, settings.queue_capacity),
            cache: RwLock::default(),
        }
    }

    /// Adds `User-Agent` and `Audit-ID` for the calling code's stack. Runs at the first poll
    /// of the request's future, on the caller's task. Never fails the request: a capture that
    /// goes wrong leaves it as it was, counted.
    pub(crate) fn decorate<B>(&self, request: &mut Request<B>) {
        stats::bump(&REQUESTS);
        // Captured before `catch_unwind`, whose frames the unwinder would otherwise walk too
        // (each physical frame costs the unwinder a few hundred nanoseconds).
        let mut trace = Trace::new();
        trace.capture();
        let existing = request.headers().get(USER_AGENT);
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.headers(&trace, existing)
        }));
        match made {
            Ok(Some((user_agent, audit_id, purpose))) => {
                let headers = request.headers_mut();
                headers.insert(USER_AGENT, user_agent);
                if !headers.contains_key(&AUDIT_ID) {
                    headers.insert(AUDIT_ID.clone(), audit_id);
                }
                request.extensions_mut().insert(purpose);
            }
            Ok(None) | Err(_) => stats::bump(&CAPTURE_FAILURES),
        }
    }

    fn headers(
        &self,
        trace: &Trace,
        existing: Option<&HeaderValue>,
    ) -> Option<(HeaderValue, HeaderValue, Arc<Purpose>)> {
        let thread = THREAD.with(|t| t.0);
        let key = trace.key() ^ thread.rotate_left(29);
        let rendered = match self.cached(key, trace, thread) {
            Some(rendered) => rendered,
            None => {
                let name = THREAD.with(|t| t.1.clone());
                self.resolve(key, trace, thread, name.as_deref())?
            }
        };

        let user_agent = match existing {
            None => rendered.user_agent.clone(),
            Some(value) => {
                // A user agent the request had is kept as `ua=`; its bytes may be anything.
                let existing = String::from_utf8_lossy(value.as_bytes());
                let text = wire::user_agent::render(
                    &self.identity_text,
                    rendered.purpose.test.as_deref(),
                    rendered.purpose.fingerprint,
                    Some(&existing),
                    &rendered.purpose.user_agent_frames(),
                );
                HeaderValue::from_str(&text).ok()?
            }
        };
        let audit_id = HeaderValue::from_bytes(&wire::audit_id::encode_ascii(
            rendered.purpose.fingerprint,
            fastrand::u64(..),
        ))
        .ok()?;
        Some((user_agent, audit_id, rendered.purpose.clone()))
    }

    fn cached(&self, key: u64, trace: &Trace, thread: u64) -> Option<Arc<Rendered>> {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let entry = cache.get(&key)?;
        (entry.thread == thread && *entry.ips == *trace.ips()).then(|| entry.rendered.clone())
    }

    #[cold]
    fn resolve(
        &self,
        key: u64,
        trace: &Trace,
        thread: u64,
        name: Option<&str>,
    ) -> Option<Arc<Rendered>> {
        let source_dir = self.identity.source_dir.as_deref();
        // Until the warm-up has loaded debug info, a request does not wait for it: it goes
        // with the fingerprint of its addresses, and its frames follow through the side
        // channel once its thread has resolved them.
        let warm = purpose::is_warm();
        let purpose = if warm {
            stats::bump(&PURPOSES_RESOLVED);
            let mut purpose = Purpose::of_trace(trace.ips(), source_dir, name);
            if purpose.frames.is_empty() {
                // No names (built without debug info): the addresses tell call paths apart.
                purpose.fingerprint = address_fingerprint(name, &addresses(trace.ips()));
            }
            purpose
        } else {
            Purpose::unresolved(address_fingerprint(name, &addresses(trace.ips())))
        };
        let fingerprint = purpose.fingerprint;
        let text = wire::user_agent::render(
            &self.identity_text,
            purpose.test.as_deref(),
            fingerprint,
            None,
            &purpose.user_agent_frames(),
        );
        let rendered = Arc::new(Rendered {
            user_agent: HeaderValue::from_str(&text).ok()?,
            purpose: Arc::new(purpose),
        });
        if let Some(side) = &self.side
            && side.wants(fingerprint)
        {
            let span = tracing::Span::current()
                .metadata()
                .map(|m| m.name().to_owned());
            let identity = self.identity.clone();
            let thread = name.map(str::to_owned);
            let resolved = warm.then(|| rendered.clone());
            let ips: Box<[usize]> = trace.ips().into();
            side.submit(fingerprint, move || {
                let late;
                let purpose = match &resolved {
                    Some(rendered) => rendered.purpose.as_ref(),
                    None => {
                        late = Purpose::of_trace(
                            &ips,
                            identity.source_dir.as_deref(),
                            thread.as_deref(),
                        );
                        &late
                    }
                };
                if purpose.frames.is_empty() {
                    let addresses = addresses(&ips);
                    sidechannel::unresolved_record(&identity, fingerprint, addresses, thread, span)
                } else {
                    let (test, frames) = (purpose.test.clone(), purpose.frames.clone());
                    sidechannel::record(&identity, fingerprint, test, frames, span)
                }
            });
        }
        if !warm {
            // Resolved once warm, by the next request on this path.
            return Some(rendered);
        }
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            key,
            CacheEntry {
                ips: trace.ips().into(),
                thread,
                rendered: rendered.clone(),
            },
        );
        Some(rendered)
    }
}

/// A [`Layer`] that attaches the program's identity and the calling code's purpose to every
/// request (`User-Agent`, `Audit-ID`, side channel), or does nothing when purpose is off.
/// Works for any `http::Request<B>` service: kube's stack, a hyper client, a tower stack.
///
/// Layers below it find the purpose the request was sent with in its extensions, as
/// `Arc<`[`Purpose`]`>` (frames empty until debug info is loaded, or when the binary has none):
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
    /// A layer from explicit settings. With purpose on, this starts loading debug info in the
    /// background, and the side-channel thread if a sink is set.
    pub fn new(settings: Settings) -> Self {
        // The identity text is printable ASCII by construction (the wire crate escapes it).
        let identity_only = (!settings.purpose && settings.identity_when_off)
            .then(|| HeaderValue::from_str(&settings.identity.user_agent()).ok())
            .flatten();
        let shared = settings.purpose.then(|| {
            let mut builder = Trace::new();
            builder.capture();
            crate::warmup::start(builder.ips().to_vec());
            Arc::new(Shared::new(settings))
        });
        Self {
            shared,
            identity_only,
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
        self.shared.is_some() && purpose::wait_warm(timeout)
    }

    /// Whether, purpose being off, requests get the identity alone as their `User-Agent`.
    pub fn sends_identity_only(&self) -> bool {
        self.identity_only.is_some()
    }

    /// Waits up to `timeout` until this layer's side channel has handled every record queued
    /// so far (call before exit), and says what became of them: see [`Flushed`]. With no side
    /// channel (purpose off, or no sink set) nothing was queued and it is complete at once.
    pub fn flush(&self, timeout: Duration) -> Flushed {
        self.shared
            .as_ref()
            .and_then(|s| s.side.as_ref())
            .map_or_else(Flushed::default, |side| side.flush(timeout))
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
            Some(shared) => Inner::On {
                gate: Arc::new(Gate::new(inner)),
                shared: shared.clone(),
            },
        };
        PurposeService { inner }
    }
}

/// The service [`PurposeLayer`] makes: the inner service itself when purpose is off, else the
/// inner service shared with the response futures, which call it at their first poll.
pub struct PurposeService<S> {
    inner: Inner<S>,
}

enum Inner<S> {
    Off(S),
    /// Off, but requests without a user agent get the identity's.
    Identity(S, HeaderValue),
    On {
        gate: Arc<Gate<S>>,
        shared: Arc<Shared>,
    },
}

impl<S> std::fmt::Debug for PurposeService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = matches!(self.inner, Inner::On { .. });
        f.debug_struct("PurposeService")
            .field("purpose", &on)
            .finish()
    }
}

impl<S: Clone> Clone for PurposeService<S> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Off(s) => Inner::Off(s.clone()),
            Inner::Identity(s, ua) => Inner::Identity(s.clone(), ua.clone()),
            Inner::On { gate, shared } => Inner::On {
                gate: gate.clone(),
                shared: shared.clone(),
            },
        };
        Self { inner }
    }
}

impl<S, B> Service<Request<B>> for PurposeService<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.inner {
            Inner::Off(s) | Inner::Identity(s, _) => s.poll_ready(cx).map_err(Into::into),
            // Readiness is asked for by each response future, right before it calls.
            Inner::On { .. } => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match &mut self.inner {
            Inner::Off(s) => ResponseFuture::passthrough(s.call(request)),
            Inner::Identity(s, user_agent) => {
                let mut request = request;
                // As client-go: a user agent the caller set is theirs to keep.
                if !request.headers().contains_key(USER_AGENT) {
                    request.headers_mut().insert(USER_AGENT, user_agent.clone());
                }
                ResponseFuture::passthrough(s.call(request))
            }
            Inner::On { gate, shared } => {
                ResponseFuture::deferred(request, gate.clone(), shared.clone())
            }
        }
    }
}

/// The inner service, shared by the response futures that call it.
///
/// A future calls it under the lock right after `poll_ready` said ready, so readiness is never
/// used twice. A service keeps only the last waker it was polled with, so futures that find it
/// not ready also wait here, and every call (or a waiting future going away) wakes them all to
/// ask again: no wake-up is lost.
pub(crate) struct Gate<S> {
    service: Mutex<S>,
    waiting: Mutex<Vec<Waker>>,
    any_waiting: AtomicBool,
}

impl<S> Gate<S> {
    fn new(service: S) -> Self {
        Self {
            service: Mutex::new(service),
            waiting: Mutex::default(),
            any_waiting: AtomicBool::new(false),
        }
    }

    /// Calls the service with `request` if it is ready; else keeps `cx`'s waker and hands
    /// the request back.
    pub(crate) fn try_call<B>(
        &self,
        cx: &mut Context<'_>,
        request: Request<B>,
    ) -> Called<S::Future, B, S::Error>
    where
        S: Service<Request<B>>,
    {
        let mut service = self.service.lock().unwrap_or_else(PoisonError::into_inner);
        match service.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                let fut = service.call(request);
                drop(service);
                self.wake_all();
                Called::Sent(fut)
            }
            Poll::Ready(Err(err)) => {
                drop(service);
                self.wake_all();
                Called::Failed(err)
            }
            Poll::Pending => {
                // Registered before the lock is released, so the next caller's `wake_all`
                // cannot miss it.
                let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                self.any_waiting.store(true, Ordering::SeqCst);
                drop(waiting);
                drop(service);
                Called::NotReady(request)
            }
        }
    }

    /// Wakes every future waiting for the service to be ready.
    pub(crate) fn wake_all(&self) {
        if self.any_waiting.swap(false, Ordering::SeqCst) {
            let waiting =
                std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
            for waker in waiting {
                waker.wake();
            }
        }
    }
}

/// What [`Gate::try_call`] did.
// Moved once per request; boxing the request would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Called<F, B, E> {
    /// Called; the service's future.
    Sent(F),
    /// Not ready: the request back, the waker kept.
    NotReady(Request<B>),
    /// The service failed.
    Failed(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn id() -> Identity {
        Identity::new("app", "1")
    }

    #[test]
    fn env_switch_table() {
        for (pairs, on) in [
            (&[][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "0")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "False")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, " off ")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "no")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "1")][..], true),
            (&[(ENV_SUBMIT_PURPOSE, "true")][..], true),
            (&[(ENV_SUBMIT_PURPOSE, "yes")][..], true),
        ] {
            let s = Settings::from_vars(id(), vars(pairs));
            assert_eq!(s.purpose, on, "{pairs:?}");
        }
    }

    #[test]
    fn side_channel_settings_table() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("p.jsonl");
        let spool_text = spool.to_str().unwrap().to_owned();
        let on = Settings::from_vars(id(), |name| match name {
            ENV_SUBMIT_PURPOSE => Some("1".into()),
            ENV_COLLECTOR_URL => Some("http://127.0.0.1:9/x".into()),
            ENV_SPOOL => Some(spool_text.clone()),
            ENV_QUEUE_CAPACITY => Some(" 16 ".into()),
            _ => None,
        });
        assert_eq!(
            on.collector_url.unwrap().to_string(),
            "http://127.0.0.1:9/x"
        );
        assert_eq!(on.spool.unwrap(), spool);
        assert_eq!(on.queue_capacity, 16);
        // Off: side-channel variables are not even read, so a bad one cannot matter.
        let off = Settings::from_vars(id(), vars(&[(ENV_COLLECTOR_URL, "ftp://nope")]));
        assert!(!off.purpose && off.collector_url.is_none() && off.spool.is_none());
    }

    #[test]
    fn bad_env_values_leave_just_their_part_off() {
        for (name, value) in [
            (ENV_COLLECTOR_URL, "ftp://nope"),
            (ENV_COLLECTOR_URL, "https://c:1"),
            (ENV_COLLECTOR_URL, "http://exa mple"),
            (ENV_SPOOL, "/nonexistent-dir-of-whakapapa/p.jsonl"),
            (ENV_QUEUE_CAPACITY, "0"),
            (ENV_QUEUE_CAPACITY, "65537"),
            (ENV_QUEUE_CAPACITY, "lots"),
        ] {
            let s = Settings::from_vars(id(), |n| match n {
                ENV_SUBMIT_PURPOSE => Some("1".into()),
                n if n == name => Some(value.into()),
                _ => None,
            });
            assert!(s.purpose, "{name}={value}");
            assert!(
                s.collector_url.is_none() && s.spool.is_none(),
                "{name}={value}"
            );
            assert_eq!(s.queue_capacity, QUEUE_CAPACITY_DEFAULT, "{name}={value}");
        }
    }

    #[test]
    fn identity_switch_table() {
        for (value, want) in [
            (None, false),
            (Some(""), false),
            (Some("1"), true),
            (Some(" TRUE "), true),
            (Some("yes"), true),
            (Some("on"), true),
            (Some("0"), false),
            (Some("off"), false),
            (Some("no"), false),
            (Some("maybe"), false),
            (Some("2"), false),
        ] {
            let s = Settings::from_vars(id(), |n| {
                (n == ENV_IDENTITY)
                    .then(|| value.map(str::to_owned))
                    .flatten()
            });
            assert!(!s.purpose, "{value:?}");
            assert_eq!(s.identity_when_off, want, "{value:?}");
        }
        // With purpose on the identity is sent anyway; the variable is not read.
        let on = Settings::from_vars(id(), |n| match n {
            ENV_SUBMIT_PURPOSE => Some("1".into()),
            ENV_IDENTITY => Some("garbage".into()),
            _ => None,
        });
        assert!(on.purpose && !on.identity_when_off);
    }

    #[test]
    fn bad_collector_urls_are_errors_from_code() {
        for (url, want) in [
            ("https://c:1", "must be an http:// URL"),
            ("/purposes", "must be an http:// URL"),
            ("http://exa mple", "is not a valid URL"),
        ] {
            let err = Settings::new(id()).with_collector_url(url).unwrap_err();
            assert!(err.to_string().contains(want), "{url}: {err}");
            assert!(err.to_string().contains(url), "{err}");
        }
    }

    #[test]
    fn queue_capacity_from_code_is_clamped() {
        assert_eq!(Settings::new(id()).with_queue_capacity(0).queue_capacity, 1);
        assert_eq!(
            Settings::new(id())
                .with_queue_capacity(usize::MAX)
                .queue_capacity,
            QUEUE_CAPACITY_MAX
        );
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
        assert_eq!(layer.flush(Duration::from_millis(1)), Flushed::default());
        assert!(layer.flush(Duration::from_millis(1)).is_complete());
    }
}
