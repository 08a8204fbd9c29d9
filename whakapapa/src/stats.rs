//! Process-wide counters of what whakapapa did, so that failures that never fail a request are
//! still visible.

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) static REQUESTS: AtomicU64 = AtomicU64::new(0);
pub(crate) static CAPTURE_FAILURES: AtomicU64 = AtomicU64::new(0);
pub(crate) static PURPOSES_RESOLVED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RECORDS_QUEUED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RECORDS_DROPPED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RECORDS_SPOOLED: AtomicU64 = AtomicU64::new(0);
pub(crate) static RECORDS_POSTED: AtomicU64 = AtomicU64::new(0);
pub(crate) static SINK_FAILURES: AtomicU64 = AtomicU64::new(0);
pub(crate) static SETTINGS_REJECTED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A snapshot of whakapapa's counters for this process (all layers together). Every counter
/// only grows; none of what it counts ever failed a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests that went through a layer with purpose on (each counted once, at its first
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
    /// Environment values that could not be used and were ignored, each logged once as a
    /// warning ([`Settings::from_env`](crate::Settings::from_env)).
    pub settings_rejected: u64,
    /// Whether debug info has been loaded in the background.
    pub symbols_warm: bool,
}

/// The counters so far.
pub fn stats() -> Stats {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    Stats {
        requests: get(&REQUESTS),
        capture_failures: get(&CAPTURE_FAILURES),
        purposes_resolved: get(&PURPOSES_RESOLVED),
        records_queued: get(&RECORDS_QUEUED),
        records_dropped: get(&RECORDS_DROPPED),
        records_spooled: get(&RECORDS_SPOOLED),
        records_posted: get(&RECORDS_POSTED),
        sink_failures: get(&SINK_FAILURES),
        settings_rejected: get(&SETTINGS_REJECTED),
        symbols_warm: crate::purpose::is_warm(),
    }
}
