//! Operational counters of the collector, exposed at `/metrics` in Prometheus text format.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use whakapapa_collector::metrics::Metrics;
//!
//! let metrics = Metrics::default();
//! metrics.events_received(400);
//! metrics.unmapped("unknown_path", 2);
//! metrics.observe_batch_commit(Duration::from_millis(3));
//! assert!(metrics.render().contains("whakapapa_collector_events_received_total 400\n"));
//! ```
//!
//! The registry is plain atomics, shared by `Arc`: the HTTP handlers and the store's writer
//! thread increment it without locks (only the per-reason map of unmapped requests takes a
//! mutex, once per batch). Rendering reads each value once, so a scrape never blocks a writer
//! for longer than a map copy.

mod route;

pub use route::{CONTENT_TYPE, router};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the batch commit latency histogram's buckets: a webhook batch of
/// up to 400 events commits in well under 10 ms; the tail catches fsync stalls.
pub const COMMIT_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Prefix of every metric name.
const PREFIX: &str = "whakapapa_collector";

/// The collector's counters; cheap to share behind an `Arc` and to increment from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    events_received: AtomicU64,
    requests_stored: AtomicU64,
    duplicates: AtomicU64,
    unmapped: Mutex<BTreeMap<String, u64>>,
    batch_commit: Histogram,
    queue_depth: AtomicI64,
    side_channel_records: AtomicU64,
    unauthorized: AtomicU64,
    pods_mutated: AtomicU64,
}

impl Metrics {
    /// Counts audit events received (webhook bodies and ingested files), before dedup.
    pub fn events_received(&self, n: u64) {
        self.events_received.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts API requests newly stored (a row created in `requests`).
    pub fn requests_stored(&self, n: u64) {
        self.requests_stored.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts events recognised as redeliveries of a stage already stored.
    pub fn duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts stored requests that mapped to no endpoint, by reason (`unknown_path`, ...).
    pub fn unmapped(&self, reason: &str, n: u64) {
        // A poisoned lock only means another thread panicked mid-increment; the map is still
        // a valid map, so keep counting rather than lose the metric.
        let mut map = self.unmapped.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(reason) {
            Some(count) => *count += n,
            None => {
                map.insert(reason.to_owned(), n);
            }
        }
    }

    /// Records how long one batch's transaction took to commit.
    pub fn observe_batch_commit(&self, elapsed: Duration) {
        self.batch_commit.observe(elapsed);
    }

    /// Sets the number of batches waiting for the writer.
    pub fn set_queue_depth(&self, depth: i64) {
        self.queue_depth.store(depth, Ordering::Relaxed);
    }

    /// Adds `delta` (negative to remove) to the number of batches waiting for the writer.
    pub fn add_queue_depth(&self, delta: i64) {
        self.queue_depth.fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts side-channel purpose records received (`POST /purposes` or a spool file).
    pub fn side_channel_records(&self, n: u64) {
        self.side_channel_records.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts requests refused for missing or wrong credentials.
    pub fn unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts pods the admission webhook patched to switch purpose on.
    pub fn pods_mutated(&self) {
        self.pods_mutated.fetch_add(1, Ordering::Relaxed);
    }

    /// A point-in-time copy of every value, for tests and for rendering.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            events_received: self.events_received.load(Ordering::Relaxed),
            requests_stored: self.requests_stored.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            unmapped: self
                .unmapped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            batch_commit: self.batch_commit.snapshot(),
            queue_depth: self.queue_depth.load(Ordering::Relaxed),
            side_channel_records: self.side_channel_records.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            pods_mutated: self.pods_mutated.load(Ordering::Relaxed),
        }
    }

    /// Renders every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.snapshot().render()
    }
}

/// Values of [`Metrics`] at one instant.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Audit events received.
    pub events_received: u64,
    /// Requests newly stored.
    pub requests_stored: u64,
    /// Redelivered events.
    pub duplicates: u64,
    /// Unmapped requests by reason.
    pub unmapped: BTreeMap<String, u64>,
    /// Batch commit latency.
    pub batch_commit: HistogramSnapshot,
    /// Batches waiting for the writer.
    pub queue_depth: i64,
    /// Side-channel records received.
    pub side_channel_records: u64,
    /// Requests refused for credentials.
    pub unauthorized: u64,
    /// Pods patched by the admission webhook.
    pub pods_mutated: u64,
}

impl Snapshot {
    /// Renders the snapshot in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        counter(
            &mut out,
            "events_received_total",
            "Audit events received, before deduplication.",
            self.events_received,
        );
        counter(
            &mut out,
            "requests_stored_total",
            "API requests newly stored.",
            self.requests_stored,
        );
        counter(
            &mut out,
            "duplicate_events_total",
            "Audit events recognised as redeliveries of a stage already stored.",
            self.duplicates,
        );
        header(
            &mut out,
            "unmapped_requests_total",
            "Stored requests that mapped to no OpenAPI endpoint, by reason.",
            "counter",
        );
        for (reason, n) in &self.unmapped {
            let _ = writeln!(
                out,
                "{PREFIX}_unmapped_requests_total{{reason=\"{}\"}} {n}",
                escape_label(reason)
            );
        }
        self.batch_commit.render(&mut out);
        header(
            &mut out,
            "queue_depth",
            "Batches waiting for the store's writer.",
            "gauge",
        );
        let _ = writeln!(out, "{PREFIX}_queue_depth {}", self.queue_depth);
        counter(
            &mut out,
            "side_channel_records_total",
            "Side-channel purpose records received.",
            self.side_channel_records,
        );
        counter(
            &mut out,
            "unauthorized_requests_total",
            "Requests refused for missing or wrong credentials.",
            self.unauthorized,
        );
        counter(
            &mut out,
            "admission_pods_mutated_total",
            "Pods the admission webhook patched to switch purpose on.",
            self.pods_mutated,
        );
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}_{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}_{name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{PREFIX}_{name} {value}");
}

/// Escapes a label value as the text format requires: backslash, double quote, line feed.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A fixed-bucket latency histogram of atomics; sums are kept in nanoseconds so no float
/// needs an atomic.
#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative count per bucket of [`COMMIT_BUCKETS`], then one for `+Inf`.
    buckets: [AtomicU64; COMMIT_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let index = COMMIT_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(COMMIT_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = Vec::with_capacity(self.buckets.len());
        let mut running = 0;
        for bucket in &self.buckets {
            running += bucket.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        // Buckets are read one by one while writers run: report the count as the `+Inf`
        // bucket so the exposition stays self-consistent (`+Inf` == `_count`).
        HistogramSnapshot {
            cumulative,
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
            count: running,
        }
    }
}

/// The batch commit histogram at one instant.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Cumulative counts for each bound of [`COMMIT_BUCKETS`], then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Total time observed.
    pub sum: Duration,
    /// Observations.
    pub count: u64,
}

impl HistogramSnapshot {
    fn render(&self, out: &mut String) {
        let name = "batch_commit_seconds";
        header(
            out,
            name,
            "Time to commit one batch's transaction.",
            "histogram",
        );
        for (bound, n) in COMMIT_BUCKETS.iter().zip(&self.cumulative) {
            let _ = writeln!(out, "{PREFIX}_{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{PREFIX}_{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{PREFIX}_{name}_sum {}", self.sum.as_secs_f64());
        let _ = writeln!(out, "{PREFIX}_{name}_count {}", self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every non-comment line is `name{labels} value` with a parseable value, and every
    /// sample's family was declared with `# TYPE` before it.
    fn samples(text: &str) -> Vec<(String, f64)> {
        let mut declared = Vec::new();
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (name, value) = line.rsplit_once(' ').expect("sample has a value");
            let family = name.split('{').next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| family.strip_suffix(s))
                .filter(|b| declared.iter().any(|d| d == b))
                .unwrap_or(family);
            assert!(
                declared.iter().any(|d| d == base),
                "{name} has no # TYPE before it"
            );
            out.push((name.to_owned(), value.parse().expect("numeric value")));
        }
        out
    }

    fn value(text: &str, name: &str) -> f64 {
        samples(text)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
            .1
    }

    #[test]
    fn counters_render_their_totals() {
        let m = Metrics::default();
        m.events_received(400);
        m.events_received(3);
        m.requests_stored(350);
        m.duplicates(53);
        m.side_channel_records(7);
        m.unauthorized();
        m.pods_mutated();
        m.set_queue_depth(4);
        m.add_queue_depth(-1);
        let text = m.render();
        let cases = [
            ("whakapapa_collector_events_received_total", 403.0),
            ("whakapapa_collector_requests_stored_total", 350.0),
            ("whakapapa_collector_duplicate_events_total", 53.0),
            ("whakapapa_collector_side_channel_records_total", 7.0),
            ("whakapapa_collector_unauthorized_requests_total", 1.0),
            ("whakapapa_collector_admission_pods_mutated_total", 1.0),
            ("whakapapa_collector_queue_depth", 3.0),
        ];
        for (name, want) in cases {
            assert_eq!(value(&text, name), want, "{name}");
        }
    }

    #[test]
    fn unmapped_is_labelled_by_reason_and_escaped() {
        let m = Metrics::default();
        m.unmapped("unknown_path", 2);
        m.unmapped("no_operation_for_verb", 1);
        m.unmapped("unknown_path", 3);
        m.unmapped("odd\"re\\ason\n", 1);
        let text = m.render();
        assert_eq!(
            value(
                &text,
                "whakapapa_collector_unmapped_requests_total{reason=\"unknown_path\"}"
            ),
            5.0
        );
        assert_eq!(
            value(
                &text,
                "whakapapa_collector_unmapped_requests_total{reason=\"no_operation_for_verb\"}"
            ),
            1.0
        );
        assert!(
            text.contains("{reason=\"odd\\\"re\\\\ason\\n\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_count() {
        let m = Metrics::default();
        let observations = [
            Duration::from_micros(100), // <= 0.5 ms
            Duration::from_micros(500), // on the bound: `le` is inclusive
            Duration::from_millis(3),   // <= 5 ms
            Duration::from_millis(40),  // <= 50 ms
            Duration::from_secs(10),    // +Inf only
        ];
        for d in observations {
            m.observe_batch_commit(d);
        }
        let snap = m.snapshot().batch_commit;
        assert_eq!(snap.count, 5);
        assert_eq!(snap.cumulative.len(), COMMIT_BUCKETS.len() + 1);
        assert!(snap.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(snap.cumulative[0], 2);
        assert_eq!(snap.cumulative[3], 3);
        assert_eq!(snap.cumulative[6], 4);
        assert_eq!(snap.cumulative[11], 4);
        assert_eq!(snap.cumulative[12], 5);
        let text = m.render();
        assert_eq!(
            value(
                &text,
                "whakapapa_collector_batch_commit_seconds_bucket{le=\"+Inf\"}"
            ),
            5.0
        );
        assert_eq!(
            value(
                &text,
                "whakapapa_collector_batch_commit_seconds_bucket{le=\"0.0005\"}"
            ),
            2.0
        );
        assert_eq!(
            value(&text, "whakapapa_collector_batch_commit_seconds_count"),
            5.0
        );
        let sum = value(&text, "whakapapa_collector_batch_commit_seconds_sum");
        assert!((sum - 10.0436).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn increments_from_many_threads_are_not_lost() {
        let m = std::sync::Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        m.events_received(1);
                        m.unmapped("unknown_path", 1);
                        m.observe_batch_commit(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = m.snapshot();
        assert_eq!(snap.events_received, 40_000);
        assert_eq!(snap.unmapped["unknown_path"], 40_000);
        assert_eq!(snap.batch_commit.count, 40_000);
    }
}
