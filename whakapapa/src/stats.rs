//! What a layer did, counted, so that failures that never fail a request are still visible:
//! [`Stats`], read through [`PurposeHandle::stats`](crate::PurposeHandle::stats).

use std::sync::atomic::{AtomicU64, Ordering};

/// One layer's counters, shared by its services and its side channel.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) capture_failures: AtomicU64,
    pub(crate) purposes_resolved: AtomicU64,
    pub(crate) records_queued: AtomicU64,
    pub(crate) records_dropped: AtomicU64,
    pub(crate) records_spooled: AtomicU64,
    pub(crate) records_posted: AtomicU64,
    pub(crate) sink_failures: AtomicU64,
    pub(crate) settings_rejected: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// Counters that start with the settings' rejected values.
    pub(crate) fn new(settings_rejected: u64) -> Self {
        Self {
            settings_rejected: AtomicU64::new(settings_rejected),
            ..Self::default()
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            requests: get(&self.requests),
            capture_failures: get(&self.capture_failures),
            purposes_resolved: get(&self.purposes_resolved),
            records_queued: get(&self.records_queued),
            records_dropped: get(&self.records_dropped),
            records_spooled: get(&self.records_spooled),
            records_posted: get(&self.records_posted),
            sink_failures: get(&self.sink_failures),
            settings_rejected: get(&self.settings_rejected),
            symbols_warm: crate::purpose::is_warm(),
        }
    }
}

/// A snapshot of one layer's counters (every service built from it, and its side channel).
/// Every counter only grows; none of what it counts ever failed a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests that went through the layer with purpose on (each counted once, at its first
    /// poll).
    pub requests: u64,
    /// Requests sent without identity and purpose because the stack could not be captured or
    /// rendered; they went out as they were.
    pub capture_failures: u64,
    /// Stacks resolved to a purpose (cache misses); the rest reused a cached purpose.
    pub purposes_resolved: u64,
    /// Side-channel records queued (once per fingerprint and destination).
    pub records_queued: u64,
    /// Side-channel records dropped because the queue was full (the next request on that path
    /// tries again).
    pub records_dropped: u64,
    /// Records appended to the spool file.
    pub records_spooled: u64,
    /// Records the collector accepted (a 2xx answer).
    pub records_posted: u64,
    /// Failed spool writes or collector posts (each batch counts once per sink; its records are
    /// [`Flushed::failed`](crate::Flushed)).
    pub sink_failures: u64,
    /// Environment values the layer's settings could not use and ignored, each logged once as
    /// a warning ([`Settings::from_env`](crate::Settings::from_env)).
    pub settings_rejected: u64,
    /// Whether debug info has been loaded in the background (once per process, for every
    /// layer).
    pub symbols_warm: bool,
}
