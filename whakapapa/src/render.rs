//! What a layer's services share: the identity, the side channel and the render cache, one
//! rendered `User-Agent` per distinct stack and thread, and how a request gets its headers.

use crate::identity::Identity;
use crate::modules::addresses;
use crate::purpose::{self, KeyMap, Purpose, Trace};
use crate::settings::Settings;
use crate::sidechannel::{self, Flushed, SideChannel, Sinks};
use crate::stats::{self, Counters};
use crate::wire;
use crate::wire::stack::address_fingerprint;
use http::Request;
use http::header::{HeaderName, HeaderValue, USER_AGENT};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

/// The `Audit-ID` request header kube-apiserver adopts as the audit event's ID.
pub(crate) static AUDIT_ID: HeaderName = HeaderName::from_static("audit-id");

/// Most distinct stacks remembered per layer; when full the memory starts over.
const CACHE_MAX: usize = 4096;

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
    pub(crate) identity: Identity,
    pub(crate) identity_text: String,
    /// Started by the first request that has a record to send (see [`Shared::side`]).
    side: OnceLock<Option<SideChannel>>,
    sinks: Sinks,
    queue_capacity: usize,
    cache: RwLock<KeyMap<u64, CacheEntry>>,
    pub(crate) counters: Arc<Counters>,
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
    pub(crate) fn new(settings: Settings, counters: Arc<Counters>) -> Self {
        let sinks = Sinks {
            collector: settings.collector_url,
            spool: settings.spool,
        };
        Self {
            identity_text: settings.identity.user_agent(),
            identity: settings.identity,
            side: OnceLock::new(),
            sinks,
            queue_capacity: settings.queue_capacity,
            cache: RwLock::default(),
            counters,
        }
    }

    /// Starts what the services' requests need in the background, once: loading debug info
    /// (beginning with the caller's stack, application code) and the side channel's thread.
    /// Called when a service is built from the layer, so that a first request does not share
    /// its moment with those threads' start, which costs it milliseconds on two cores
    /// (BENCHMARKS.md, "A new user's application").
    pub(crate) fn start(&self) {
        let mut caller = Trace::new();
        caller.capture();
        crate::warmup::start(caller.ips());
        self.side();
    }

    /// The side channel, its thread started on first use (none without a sink), so that
    /// building a layer starts nothing.
    fn side(&self) -> Option<&SideChannel> {
        self.side
            .get_or_init(|| {
                SideChannel::start(
                    self.sinks.clone(),
                    self.queue_capacity,
                    self.counters.clone(),
                )
            })
            .as_ref()
    }

    /// What became of the records queued so far; nothing was queued before the side channel
    /// started.
    pub(crate) fn flush(&self, timeout: std::time::Duration) -> Flushed {
        match self.side.get() {
            Some(Some(side)) => side.flush(timeout),
            _ => Flushed::default(),
        }
    }

    /// Adds `User-Agent` and `Audit-ID` for the calling code's stack. Runs at the first poll
    /// of the request's future, on the caller's task. Never fails the request: a capture that
    /// goes wrong leaves it as it was, counted.
    pub(crate) fn decorate<B>(&self, request: &mut Request<B>) {
        stats::bump(&self.counters.requests);
        // Captured before `catch_unwind`, whose frames the unwinder would otherwise walk too:
        // the unwinder pays per physical frame.
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
            Ok(None) | Err(_) => stats::bump(&self.counters.capture_failures),
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
            stats::bump(&self.counters.purposes_resolved);
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
        if let Some(side) = self.side()
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
