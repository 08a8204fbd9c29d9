//! A stand-in for kube-apiserver on loopback: it answers kube-rs requests with real Kubernetes
//! JSON from an in-memory store and audits every request the way kube-apiserver's webhook
//! backend does, POSTing audit.k8s.io/v1 `EventList` batches to a webhook such as the
//! collector's `/audit`.
//!
//! It is a stand-in, not an API server: no admission, no authorization (everyone is allowed),
//! no controllers or kubelets (pods stay `Pending`), patches applied as JSON merge patches.
//! What it reproduces faithfully is what the audit trail records: the verb kube-apiserver's
//! request-info resolver derives, the object reference, the user, the source IPs, the client's
//! `Audit-ID` adopted unchanged, the user agent cut at 1024 bytes, the stages of each request
//! and the batching of the webhook backend.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use whakapapa_testkit::{StandInApiServer, StandInConfig, fixtures};
//!
//! let config = StandInConfig::default()
//!     .with_audit_webhook("http://127.0.0.1:8080/audit")
//!     .with_object(fixtures::pod("default", "web-0"));
//! let server = StandInApiServer::start(config).await?;
//! let client = kube::Client::try_from(server.config())?;
//! // ... requests through `client` ...
//! println!("{} requests", server.seen().len());
//! server.flush_audit().await; // every audit event so far is acknowledged (or given up)
//! let stats = server.shutdown().await;
//! println!("{} audit events delivered", stats.events_delivered);
//! # Ok(()) }
//! ```

mod audit;
mod audit_webhook;
mod http;
mod objects;
mod openapi;
mod record;
mod request_info;
mod resources;
mod selector;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

pub use audit::UserInfo;
pub use audit_webhook::AuditStats;
pub use record::Seen;

use record::{Recorder, RecordingListener};

/// How a [`StandInApiServer`] behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StandInConfig {
    /// Where audit `EventList` batches are POSTed (`http://` only); none: no auditing.
    pub audit_webhook: Option<String>,
    /// Most events in one batch (kube-apiserver: 400).
    pub audit_batch_max_size: usize,
    /// Longest a batch collects events before it is sent (kube-apiserver: 30 s).
    pub audit_batch_max_wait: Duration,
    /// Events buffered before new ones are dropped (kube-apiserver: 10000).
    pub audit_buffer_size: usize,
    /// First wait before a failed batch is resent, growing 1.5× (kube-apiserver: 10 s).
    pub audit_initial_backoff: Duration,
    /// Attempts per batch before it is given up (kube-apiserver: 5).
    pub audit_attempts: u32,
    /// Timeout of one webhook POST.
    pub audit_timeout: Duration,
    /// Bearer tokens and the users they authenticate; an unknown token gets 401.
    pub tokens: BTreeMap<String, UserInfo>,
    /// The user of requests without an `Authorization` header (like kind's admin
    /// kubeconfig, whose client certificate the stand-in does not ask for).
    pub default_user: UserInfo,
    /// Longest a watch stays open (a smaller `timeoutSeconds` wins).
    pub watch_timeout: Duration,
    /// Objects the store holds before the first request, as a client would create them.
    pub objects: Vec<serde_json::Value>,
    /// Keep every connection's bytes as the client sent them
    /// ([`StandInApiServer::raw_connections`]).
    pub record_connections: bool,
}

impl Default for StandInConfig {
    fn default() -> Self {
        Self {
            audit_webhook: None,
            audit_batch_max_size: 400,
            audit_batch_max_wait: Duration::from_secs(1),
            audit_buffer_size: 10_000,
            audit_initial_backoff: Duration::from_millis(100),
            audit_attempts: 5,
            audit_timeout: Duration::from_secs(10),
            tokens: BTreeMap::new(),
            default_user: UserInfo {
                username: "kubernetes-admin".to_owned(),
                uid: String::new(),
                groups: vec![
                    "kubeadm:cluster-admins".to_owned(),
                    "system:authenticated".to_owned(),
                ],
            },
            watch_timeout: Duration::from_secs(60),
            objects: Vec::new(),
            record_connections: false,
        }
    }
}

impl StandInConfig {
    /// Sends audit batches to `url`, e.g. the collector's `http://127.0.0.1:PORT/audit`.
    pub fn with_audit_webhook(mut self, url: impl Into<String>) -> Self {
        self.audit_webhook = Some(url.into());
        self
    }

    /// Cuts batches at `max_size` events or `max_wait`, whichever comes first.
    pub fn with_audit_batching(mut self, max_size: usize, max_wait: Duration) -> Self {
        self.audit_batch_max_size = max_size.max(1);
        self.audit_batch_max_wait = max_wait;
        self
    }

    /// Starts with `object` stored (its `apiVersion` and `kind` say where; a namespaced one
    /// goes to its `metadata.namespace`, which must exist: `default` does).
    pub fn with_object(mut self, object: impl serde::Serialize) -> Self {
        // A fixture that does not serialise is caught as a bad object by `start`.
        self.objects
            .push(serde_json::to_value(object).unwrap_or(serde_json::Value::Null));
        self
    }

    /// Keeps every connection's bytes as the client sent them.
    pub fn with_connections_recorded(mut self) -> Self {
        self.record_connections = true;
        self
    }

    /// Authenticates `Authorization: Bearer <token>` as `user`.
    pub fn with_token(mut self, token: impl Into<String>, user: UserInfo) -> Self {
        self.tokens.insert(token.into(), user);
        self
    }
}

/// Why the stand-in could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StandInError {
    /// Binding 127.0.0.1 failed.
    #[error("binding the stand-in API server to 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// The audit webhook URL is not a usable `http://` URL.
    #[error("audit webhook url {url:?}: {reason}")]
    WebhookUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object of [`StandInConfig::objects`] cannot be stored.
    #[error("stand-in object {object}: {reason}")]
    Object {
        /// `apiVersion/kind namespace/name`, as far as the object tells.
        object: String,
        /// Why it cannot be stored.
        reason: String,
    },
}

/// A running stand-in API server on `127.0.0.1`.
pub struct StandInApiServer {
    addr: SocketAddr,
    state: Arc<http::AppState>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    audit_task: Option<JoinHandle<()>>,
}

impl StandInApiServer {
    /// Binds `127.0.0.1:0` and starts serving (and auditing, when a webhook is configured).
    pub async fn start(config: StandInConfig) -> Result<Self, StandInError> {
        let (backend, audit_task) = match &config.audit_webhook {
            Some(url) => {
                let uri: ::http::Uri =
                    url.parse()
                        .map_err(|e: ::http::uri::InvalidUri| StandInError::WebhookUrl {
                            url: url.clone(),
                            reason: e.to_string(),
                        })?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    return Err(StandInError::WebhookUrl {
                        url: url.clone(),
                        reason: "expected http://host:port/path".to_owned(),
                    });
                }
                let (backend, task) =
                    audit_webhook::AuditBackend::start(audit_webhook::BatchConfig {
                        url: uri,
                        max_batch_size: config.audit_batch_max_size.max(1),
                        max_batch_wait: config.audit_batch_max_wait,
                        buffer_size: config.audit_buffer_size,
                        initial_backoff: config.audit_initial_backoff,
                        attempts: config.audit_attempts,
                        timeout: config.audit_timeout,
                    });
                (Some(backend), Some(task))
            }
            None => (None, None),
        };
        let mut store = objects::ObjectStore::new();
        for object in config.objects {
            seed(&mut store, object)?;
        }
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(StandInError::Bind)?;
        let addr = listener.local_addr().map_err(StandInError::Bind)?;
        let recorder = Arc::new(Recorder::new(config.record_connections));
        let listener = RecordingListener {
            inner: listener,
            recorder: recorder.clone(),
        };
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let (changes, _) = tokio::sync::broadcast::channel(4096);
        let state = Arc::new(http::AppState {
            store: Mutex::new(store),
            recorder,
            changes,
            audit: backend,
            users: http::Users {
                tokens: config.tokens,
                anonymous: config.default_user,
            },
            shutdown: shutdown_rx.clone(),
            watch_timeout: config.watch_timeout,
            watches: Mutex::new(JoinSet::new()),
            server_address: addr.to_string(),
        });
        let mut stop = shutdown_rx;
        let server = tokio::spawn(
            axum::serve(
                listener,
                http::app(state.clone()).into_make_service_with_connect_info::<record::Peer>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .into_future(),
        );
        Ok(Self {
            addr,
            state,
            shutdown,
            server,
            audit_task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://127.0.0.1:PORT`, for `kube::Config::new`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube config for it (default namespace `default`, no credentials).
    pub fn config(&self) -> kube::Config {
        kube::Config::new(
            self.url()
                .parse()
                .expect("http://127.0.0.1:PORT is a valid URI"),
        )
    }

    /// The requests received so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.recorder.seen()
    }

    /// The requests received so far whose path and query contain `needle`.
    pub fn seen_with(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| {
                s.uri
                    .path_and_query()
                    .is_some_and(|p| p.as_str().contains(needle))
            })
            .collect()
    }

    /// Each connection's bytes as the client sent them, oldest first; empty unless
    /// [`StandInConfig::with_connections_recorded`].
    pub fn raw_connections(&self) -> Vec<Vec<u8>> {
        self.state.recorder.raw()
    }

    /// Sends the audit events buffered so far and waits until every batch sent so far is
    /// acknowledged by the webhook (or given up after its last attempt).
    pub async fn flush_audit(&self) {
        if let Some(backend) = &self.state.audit {
            backend.flush().await;
        }
    }

    /// What the audit backend has done so far.
    pub fn audit_stats(&self) -> AuditStats {
        self.state
            .audit
            .as_ref()
            .map(|b| b.stats())
            .unwrap_or_default()
    }

    /// Stops accepting requests, ends open watches, waits for requests in flight, then sends
    /// every remaining audit event, as kube-apiserver's buffered backend does on shutdown.
    pub async fn shutdown(self) -> AuditStats {
        let Self {
            state,
            shutdown,
            server,
            audit_task,
            ..
        } = self;
        let _ = shutdown.send(true);
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "stand-in API server stopped with an error")
            }
            Err(err) => tracing::warn!(error = %err, "stand-in API server task failed"),
        }
        let mut watches =
            std::mem::take(&mut *state.watches.lock().unwrap_or_else(|e| e.into_inner()));
        while watches.join_next().await.is_some() {}
        let stats = match &state.audit {
            Some(backend) => {
                backend.flush().await;
                backend.stats()
            }
            None => AuditStats::default(),
        };
        // The batcher ends once the last sender is gone; everything is flushed already.
        drop(state);
        if let Some(task) = audit_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        stats
    }
}

/// Stores `object` as a create of its kind would, before any request.
fn seed(store: &mut objects::ObjectStore, object: serde_json::Value) -> Result<(), StandInError> {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or("")
    };
    let described = format!(
        "{}/{} {}/{}",
        text("/apiVersion"),
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name")
    );
    let bad = |reason: String| StandInError::Object {
        object: described.clone(),
        reason,
    };
    let rt = resources::of_kind(text("/apiVersion"), text("/kind"))
        .ok_or_else(|| bad("not a kind the stand-in serves".to_owned()))?;
    let namespace = rt
        .namespaced
        .then(|| text("/metadata/namespace").to_owned());
    let fresh = objects::Fresh {
        now: "2026-01-01T00:00:00Z".to_owned(),
        uid: audit::uuid_v4(fastrand::u128(..).to_le_bytes()),
        name_suffix: String::new(),
    };
    store
        .create(rt, namespace.as_deref(), object.clone(), &fresh)
        .map(drop)
        .map_err(|e| bad(e.to_string()))
}
