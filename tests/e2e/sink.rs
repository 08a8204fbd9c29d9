//! A loopback audit webhook that keeps every `EventList` it acknowledges, and can answer the
//! first POSTs with 503 to make the sender retry.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

#[derive(Default)]
struct Inner {
    /// Bodies of every POST, acknowledged or not.
    posts: Mutex<Vec<Value>>,
    /// Bodies acknowledged with 200.
    acknowledged: Mutex<Vec<Value>>,
    fail_first: AtomicUsize,
}

/// A running sink.
pub struct AuditSink {
    addr: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl AuditSink {
    /// Starts a sink that answers the first `fail_first` POSTs with 503.
    pub async fn start(fail_first: usize) -> Self {
        let inner = Arc::new(Inner {
            fail_first: AtomicUsize::new(fail_first),
            ..Inner::default()
        });
        let app = Router::new()
            .route("/audit", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            inner,
            server,
        }
    }

    /// The webhook URL to give the stand-in.
    pub fn url(&self) -> String {
        format!("http://{}/audit", self.addr)
    }

    /// Every POST body received, in arrival order.
    pub fn posts(&self) -> Vec<Value> {
        self.inner.posts.lock().unwrap().clone()
    }

    /// Every acknowledged `EventList`, in arrival order.
    pub fn batches(&self) -> Vec<Value> {
        self.inner.acknowledged.lock().unwrap().clone()
    }

    /// Every acknowledged event, in the order of their stages' timestamps: batches are sent
    /// concurrently, so they may arrive out of order (as from kube-apiserver).
    pub fn events(&self) -> Vec<Value> {
        let mut events: Vec<Value> = self
            .batches()
            .into_iter()
            .flat_map(|b| b["items"].as_array().cloned().unwrap_or_default())
            .collect();
        let rank = |e: &Value| match e["stage"].as_str() {
            Some("RequestReceived") => 0,
            Some("ResponseStarted") => 1,
            _ => 2,
        };
        events.sort_by(|a, b| {
            let key = |e: &Value| {
                (
                    e["stageTimestamp"].as_str().unwrap_or("").to_owned(),
                    rank(e),
                )
            };
            key(a).cmp(&key(b))
        });
        events
    }
}

impl Drop for AuditSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    let Ok(list) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    inner.posts.lock().unwrap().push(list.clone());
    let failing = inner
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    inner.acknowledged.lock().unwrap().push(list);
    StatusCode::OK
}
