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

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// A snapshot of whakapapa's counters for this process (all layers together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests that went through a layer with purpose on.
    pub requests: u64,
    /// Requests sent unchanged because their purpose could not be captured.
    pub capture_failures: u64,
    /// Stacks resolved to a purpose (cache misses); the rest reused a cached purpose.
    pub purposes_resolved: u64,
    /// Side-channel records queued (once per fingerprint per layer).
    pub records_queued: u64,
    /// Side-channel records dropped because the queue was full.
    pub records_dropped: u64,
    /// Records appended to the spool file.
    pub records_spooled: u64,
    /// Records the collector accepted.
    pub records_posted: u64,
    /// Failed spool writes or collector posts (each batch counts once per sink).
    pub sink_failures: u64,
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
        symbols_warm: crate::purpose::is_warm(),
    }
}
