//! The side channel: full purposes (identity and every frame), once per fingerprint, appended
//! to a spool file and/or posted to the collector as ndjson, from a background thread.
//!
//! The request path only tries to put a record on a bounded queue: when it is full the record
//! is dropped, counted and reported through `tracing`, and the request goes on.

use crate::identity::Identity;
use crate::stats::{self, Counters};
use crate::wire::{Address, Frame, Record};
use bytes::Bytes;
use http_body_util::Full;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the worker waits to fill a batch after its first record.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Most records in one batch.
const BATCH_MAX: usize = 256;
/// Longest a collector post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where records go.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sinks {
    pub(crate) collector: Option<http::Uri>,
    pub(crate) spool: Option<PathBuf>,
}

/// What a flush found: of the full-purpose records a layer's side channel took since it
/// started, how many got to every sink, how many did not, and how many are still on their way.
///
/// Counts are of records (one per new purpose), for the life of the side channel, as they
/// stood when the flush returned.
///
/// ```no_run
/// # let layer = whakapapa::PurposeLayer::from_env(whakapapa::identity!());
/// let flushed = layer.handle().flush(std::time::Duration::from_secs(5));
/// if !flushed.is_complete() {
///     eprintln!("whakapapa: {flushed}");
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Flushed {
    /// Records every sink accepted: appended to the spool and/or posted to the collector.
    pub delivered: u64,
    /// Records at least one sink did not take (a failed spool write or collector post); they
    /// are not tried again.
    pub failed: u64,
    /// Purposes dropped because the queue was full and not queued again since (the next
    /// request on that path tries again).
    pub dropped: u64,
    /// Records queued but not yet written or posted when the timeout ran out.
    pub pending: u64,
}

impl Flushed {
    /// Whether every purpose was delivered: nothing failed, dropped or still pending.
    pub fn is_complete(&self) -> bool {
        self.failed == 0 && self.dropped == 0 && self.pending == 0
    }
}

impl std::fmt::Display for Flushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} purposes delivered, {} failed, {} dropped, {} pending",
            self.delivered, self.failed, self.dropped, self.pending
        )
    }
}

#[derive(Default)]
struct Progress {
    queued: u64,
    delivered: u64,
    failed: u64,
    /// Fingerprints dropped for a full queue and not queued since.
    dropped: HashSet<u64>,
}

impl Progress {
    fn done(&self) -> u64 {
        self.delivered + self.failed
    }

    fn flushed(&self) -> Flushed {
        Flushed {
            delivered: self.delivered,
            failed: self.failed,
            dropped: self.dropped.len() as u64,
            pending: self.queued.saturating_sub(self.done()),
        }
    }
}

/// Records queued and done, and the condition `flush` waits on.
type Tally = (Mutex<Progress>, Condvar);

fn wait_done(progress: &Tally, timeout: Duration) -> Flushed {
    let (lock, cvar) = progress;
    let progress = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let target = progress.queued;
    let (progress, _) = cvar
        .wait_timeout_while(progress, timeout, |p| p.done() < target)
        .unwrap_or_else(PoisonError::into_inner);
    progress.flushed()
}

/// Fingerprints whose record went to a destination, process-wide: `(destination, fingerprint)`.
/// Two layers writing to the same place send a purpose once; to different places, once each.
static SENT: LazyLock<Mutex<HashSet<(u64, u64)>>> = LazyLock::new(Mutex::default);

/// A record to send, made on the channel's thread.
type Pending = Box<dyn FnOnce() -> Record + Send>;

/// The request side of the channel: dedupes fingerprints and queues records.
pub(crate) struct SideChannel {
    tx: SyncSender<Pending>,
    destination: u64,
    progress: Arc<Tally>,
    counters: Arc<Counters>,
}

impl SideChannel {
    /// Starts the background thread, counting into `counters`; `None` when no sink is set or
    /// the thread cannot start.
    pub(crate) fn start(sinks: Sinks, capacity: usize, counters: Arc<Counters>) -> Option<Self> {
        if sinks.collector.is_none() && sinks.spool.is_none() {
            return None;
        }
        let destination = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (
                sinks.collector.as_ref().map(ToString::to_string),
                &sinks.spool,
            )
                .hash(&mut h);
            h.finish()
        };
        let capacity = capacity.clamp(1, crate::settings::QUEUE_CAPACITY_MAX);
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let progress: Arc<Tally> = Arc::default();
        let worker_progress = progress.clone();
        let worker_counters = counters.clone();
        let spawned = std::thread::Builder::new()
            .name("whakapapa-sidechannel".into())
            .spawn(move || Worker::new(sinks, worker_counters).run(rx, &worker_progress));
        match spawned {
            Ok(_) => Some(Self {
                tx,
                destination,
                progress,
                counters,
            }),
            Err(err) => {
                tracing::warn!(error = %err, "whakapapa: side channel thread did not start; full purposes are not sent");
                None
            }
        }
    }

    /// Whether `fingerprint` still needs its record sent (first time in this process).
    pub(crate) fn wants(&self, fingerprint: u64) -> bool {
        !sent().contains(&(self.destination, fingerprint))
    }

    /// Queues the record `make` makes (on the channel's thread) unless its fingerprint went
    /// already; never blocks.
    pub(crate) fn submit(&self, fingerprint: u64, make: impl FnOnce() -> Record + Send + 'static) {
        let record: Pending = Box::new(make);
        if !sent().insert((self.destination, fingerprint)) {
            return;
        }
        let (lock, _) = &*self.progress;
        let mut progress = lock.lock().unwrap_or_else(PoisonError::into_inner);
        match self.tx.try_send(record) {
            Ok(()) => {
                progress.queued += 1;
                progress.dropped.remove(&fingerprint);
                stats::bump(&self.counters.records_queued);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                progress.dropped.insert(fingerprint);
                drop(progress);
                // Forget it, so the next request on this path tries again.
                sent().remove(&(self.destination, fingerprint));
                stats::bump(&self.counters.records_dropped);
                tracing::warn!(
                    fingerprint = format_args!("{fingerprint:016x}"),
                    dropped_total = self.counters.snapshot().records_dropped,
                    "whakapapa: side channel queue full, purpose record dropped"
                );
            }
        }
    }

    /// Waits until every record queued so far was written or posted (or failed), at most
    /// `timeout`; what became of the records.
    pub(crate) fn flush(&self, timeout: Duration) -> Flushed {
        wait_done(&self.progress, timeout)
    }
}

fn sent() -> std::sync::MutexGuard<'static, HashSet<(u64, u64)>> {
    SENT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The background side: batches records and hands them to the sinks.
struct Worker {
    sinks: Sinks,
    counters: Arc<Counters>,
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<
        hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Full<Bytes>,
        >,
    >,
}

impl Worker {
    fn new(sinks: Sinks, counters: Arc<Counters>) -> Self {
        Self {
            sinks,
            counters,
            runtime: None,
            client: None,
        }
    }

    fn run(mut self, rx: Receiver<Pending>, progress: &(Mutex<Progress>, Condvar)) {
        while let Ok(first) = rx.recv() {
            // A purpose queued before debug info was loaded is resolved here, off the
            // request path.
            let mut batch = vec![first()];
            let deadline = Instant::now() + BATCH_WINDOW;
            while batch.len() < BATCH_MAX {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(pending) => batch.push(pending()),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            let delivered = self.deliver(&batch);
            let (lock, cvar) = progress;
            let mut progress = lock.lock().unwrap_or_else(PoisonError::into_inner);
            if delivered {
                progress.delivered += batch.len() as u64;
            } else {
                progress.failed += batch.len() as u64;
            }
            drop(progress);
            cvar.notify_all();
        }
    }

    /// Hands `batch` to every sink; whether they all took it.
    fn deliver(&mut self, batch: &[Record]) -> bool {
        let mut all = true;
        let mut body = Vec::with_capacity(batch.len() * 512);
        for record in batch {
            // A `Record` holds only strings and numbers: serialising it cannot fail.
            if serde_json::to_writer(&mut body, record).is_ok() {
                body.push(b'\n');
            }
        }
        if let Some(path) = &self.sinks.spool {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(&body));
            match written {
                Ok(()) => stats::add(&self.counters.records_spooled, batch.len() as u64),
                Err(err) => {
                    all = false;
                    stats::bump(&self.counters.sink_failures);
                    tracing::warn!(path = %path.display(), error = %err, "whakapapa: appending purposes to the spool failed");
                }
            }
        }
        if let Some(url) = self.sinks.collector.clone() {
            match self.post(&url, body) {
                Ok(()) => stats::add(&self.counters.records_posted, batch.len() as u64),
                Err(reason) => {
                    all = false;
                    stats::bump(&self.counters.sink_failures);
                    tracing::warn!(url = %url, reason, "whakapapa: posting purposes to the collector failed");
                }
            }
        }
        all
    }

    fn post(&mut self, base: &http::Uri, body: Vec<u8>) -> Result<(), String> {
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("starting a runtime: {e}"))?;
            self.runtime = Some(runtime);
        }
        let client = self.client.get_or_insert_with(|| {
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http()
        });
        let url = purposes_url(base);
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/x-ndjson")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("building the request: {e}"))?;
        let runtime = self.runtime.as_ref().ok_or("no runtime")?;
        let response = runtime
            .block_on(async { tokio::time::timeout(POST_TIMEOUT, client.request(request)).await })
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| format!("{e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("status {}", response.status()))
        }
    }
}

/// `{base}/purposes`, keeping any path prefix of the base URL.
pub(crate) fn purposes_url(base: &http::Uri) -> String {
    let text = base.to_string();
    format!("{}/purposes", text.trim_end_matches('/'))
}

/// A record for a new purpose.
pub(crate) fn record(
    identity: &Identity,
    fingerprint: u64,
    test: Option<String>,
    frames: Vec<Frame>,
    span: Option<String>,
) -> Record {
    Record {
        whakapapa: crate::wire::RECORD_VERSION,
        fingerprint,
        identity: identity.wire(),
        test,
        frames,
        span,
        seen_at: Some(format!("{:.3}", jiff::Timestamp::now())),
        addresses: Vec::new(),
        thread: None,
        source_dir: None,
    }
}

/// A record for a purpose whose frames have no names: its addresses, with what
/// `whakapapa-collector symbolize` needs to resolve them as the program would have.
pub(crate) fn unresolved_record(
    identity: &Identity,
    fingerprint: u64,
    addresses: Vec<Address>,
    thread: Option<String>,
    span: Option<String>,
) -> Record {
    Record {
        addresses,
        thread,
        source_dir: identity.source_dir.clone(),
        ..record(identity, fingerprint, None, Vec::new(), span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_url_table() {
        for (base, want) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/purposes"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/purposes"),
            ("http://c:1/prefix/", "http://c:1/prefix/purposes"),
        ] {
            assert_eq!(purposes_url(&base.parse().unwrap()), want);
        }
    }

    #[test]
    fn record_has_the_kep_shape() {
        let mut id = Identity::new("shop-controller", "0.3.1");
        id.commit = "4f2a9c1".into();
        let r = record(
            &id,
            0x9c0e4b7d12aa03f1,
            Some("t".into()),
            vec![Frame::new("a::b", "src/a.rs", 3)],
            None,
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["whakapapa"], 1);
        assert_eq!(v["fingerprint"], "9c0e4b7d12aa03f1");
        assert_eq!(v["identity"]["name"], "shop-controller");
        assert_eq!(v["identity"]["commit"], "4f2a9c1");
        assert_eq!(v["frames"][0]["file"], "src/a.rs");
        assert_eq!(v["frames"][0]["line"], 3);
        assert!(v["span"].is_null());
        let seen = v["seen_at"].as_str().unwrap();
        assert!(seen.ends_with('Z') && seen.contains('.'), "{seen}");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("p.jsonl");
        let counters = Arc::new(Counters::default());
        let side = SideChannel::start(
            Sinks {
                collector: None,
                spool: Some(spool.clone()),
            },
            1,
            counters.clone(),
        )
        .unwrap();
        let id = Identity::new("x", "1");
        for fp in 0..200u64 {
            let r = record(&id, fp, None, vec![], None);
            side.submit(fp, move || r);
        }
        let flushed = side.flush(Duration::from_secs(10));
        let lines = std::fs::read_to_string(&spool).unwrap().lines().count() as u64;
        let dropped = counters.snapshot().records_dropped;
        assert_eq!(flushed.delivered, lines);
        assert_eq!((flushed.failed, flushed.pending), (0, 0));
        assert_eq!(flushed.dropped, dropped);
        assert!(!flushed.is_complete());
        assert!(lines >= 1);
        assert!(
            dropped >= 1,
            "a queue of one cannot take 200 records at once"
        );
        assert!(lines + dropped >= 200);
        // The first record always finds the queue empty; the same fingerprint again is not sent.
        assert!(!side.wants(0));
        let r = record(&id, 0, None, vec![], None);
        side.submit(0, move || r);
        assert_eq!(side.flush(Duration::from_secs(10)), flushed);
        let lines_after = std::fs::read_to_string(&spool).unwrap().lines().count() as u64;
        assert_eq!(lines_after, lines);
    }
}
