//! The audit webhook backend: events are buffered, cut into batches of up to `max_batch_size`
//! events or whatever arrived within `max_batch_wait`, and each batch is POSTed as one
//! audit.k8s.io/v1 `EventList`, as kube-apiserver's buffered webhook backend does
//! (`k8s.io/apiserver/plugin/pkg/audit/buffered`, `.../webhook`).
//!
//! Like kube-apiserver, a full buffer drops the event (counted), each batch is sent by its own
//! task (so batches can arrive out of order), and a failed POST — connection error, 429 or 5xx —
//! resends the whole batch with exponential backoff (factor 1.5) until the attempts run out;
//! kube-apiserver's own defaults are 400 events, 30 s, a 10 s first backoff and 5 attempts.
//! Send throttling (10 QPS) is not modelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::audit::{Event, EventList};

/// How the backend batches and retries.
#[derive(Clone, Debug)]
pub(crate) struct BatchConfig {
    pub url: http::Uri,
    pub max_batch_size: usize,
    pub max_batch_wait: Duration,
    pub buffer_size: usize,
    pub initial_backoff: Duration,
    pub attempts: u32,
    pub timeout: Duration,
}

/// What the backend has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditStats {
    /// Events the audit filter produced.
    pub events: u64,
    /// Events dropped because the buffer was full.
    pub events_dropped: u64,
    /// Batches the webhook acknowledged with a 2xx.
    pub batches_delivered: u64,
    /// Events in those batches.
    pub events_delivered: u64,
    /// POSTs that failed and were retried or given up.
    pub failed_attempts: u64,
    /// Batches given up after the last attempt (their events are lost, as in kube-apiserver).
    pub batches_lost: u64,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    events_dropped: AtomicU64,
    batches_delivered: AtomicU64,
    events_delivered: AtomicU64,
    failed_attempts: AtomicU64,
    batches_lost: AtomicU64,
}

enum Message {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// The sending half: cheap to clone, never blocks a request.
#[derive(Clone)]
pub(crate) struct AuditBackend {
    tx: mpsc::Sender<Message>,
    counters: Arc<Counters>,
}

impl AuditBackend {
    /// Starts the batching task; it ends once every `AuditBackend` clone is dropped and the
    /// last batch is sent.
    pub(crate) fn start(config: BatchConfig) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.buffer_size.max(1));
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(config, rx, counters.clone()));
        (Self { tx, counters }, task)
    }

    /// Queues an event; drops and counts it when the buffer is full.
    pub(crate) fn process(&self, event: Event) {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(Message::Event(Box::new(event))).is_err() {
            self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("audit buffer full: event dropped");
        }
    }

    /// Sends what is buffered now and waits until every batch sent so far is acknowledged or
    /// given up.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub(crate) fn stats(&self) -> AuditStats {
        stats(&self.counters)
    }
}

fn stats(c: &Counters) -> AuditStats {
    AuditStats {
        events: c.events.load(Ordering::Relaxed),
        events_dropped: c.events_dropped.load(Ordering::Relaxed),
        batches_delivered: c.batches_delivered.load(Ordering::Relaxed),
        events_delivered: c.events_delivered.load(Ordering::Relaxed),
        failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
        batches_lost: c.batches_lost.load(Ordering::Relaxed),
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn run(config: BatchConfig, mut rx: mpsc::Receiver<Message>, counters: Arc<Counters>) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let config = Arc::new(config);
    let mut in_flight = JoinSet::new();
    let mut closed = false;
    while !closed {
        // As buffered.go: the wait starts with the batch, not with its first event.
        let deadline = Instant::now() + config.max_batch_wait;
        let mut batch = Vec::new();
        let mut waiters = Vec::new();
        while batch.len() < config.max_batch_size {
            tokio::select! {
                message = rx.recv() => match message {
                    Some(Message::Event(event)) => batch.push(*event),
                    Some(Message::Flush(done)) => { waiters.push(done); break; }
                    None => { closed = true; break; }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !batch.is_empty() {
            in_flight.spawn(send(
                client.clone(),
                config.clone(),
                batch,
                counters.clone(),
            ));
        }
        while in_flight.try_join_next().is_some() {}
        if !waiters.is_empty() || closed {
            while in_flight.join_next().await.is_some() {}
            for done in waiters {
                let _ = done.send(());
            }
        }
    }
}

/// POSTs one batch, resending it whole after a failure.
async fn send(
    client: HttpClient,
    config: Arc<BatchConfig>,
    batch: Vec<Event>,
    counters: Arc<Counters>,
) {
    let count = batch.len() as u64;
    let body = match serde_json::to_vec(&EventList::new(batch)) {
        Ok(body) => Bytes::from(body),
        Err(err) => {
            tracing::error!(error = %err, "audit batch could not be encoded");
            counters.batches_lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut backoff = config.initial_backoff;
    for attempt in 1..=config.attempts.max(1) {
        match post(&client, &config, body.clone()).await {
            Ok(()) => {
                counters.batches_delivered.fetch_add(1, Ordering::Relaxed);
                counters
                    .events_delivered
                    .fetch_add(count, Ordering::Relaxed);
                return;
            }
            Err((reason, retry)) => {
                counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(attempt, events = count, %reason, "audit webhook POST failed");
                if !retry || attempt == config.attempts.max(1) {
                    break;
                }
                // Jitter of up to 20 %, as wait.Backoff's.
                let jitter = backoff.mul_f64(fastrand::f64() * 0.2);
                tokio::time::sleep(backoff + jitter).await;
                backoff = backoff.mul_f64(1.5);
            }
        }
    }
    counters.batches_lost.fetch_add(1, Ordering::Relaxed);
    tracing::error!(events = count, "audit batch given up");
}

/// One POST; the error says why and whether to retry.
async fn post(
    client: &HttpClient,
    config: &BatchConfig,
    body: Bytes,
) -> Result<(), (String, bool)> {
    let request = http::Request::post(config.url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Full::new(body))
        .map_err(|e| (format!("building the request: {e}"), false))?;
    let response = tokio::time::timeout(config.timeout, client.request(request))
        .await
        .map_err(|_| ("timed out".to_owned(), true))?
        .map_err(|e| (format!("connection: {e}"), true))?;
    let status = response.status();
    // Read the body so the connection can be reused.
    let _ = response.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        let retry = status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        Err((format!("webhook answered {status}"), retry))
    }
}
