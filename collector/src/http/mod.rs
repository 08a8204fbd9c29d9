//! The collector's HTTP server: the audit webhook, the side channel, health; other modules'
//! routers merged in [`app`].
//!
//! # Example
//! ```no_run
//! # async fn f(store: whakapapa_collector::store::Store, run: whakapapa_collector::store::RunId)
//! # -> std::io::Result<()> {
//! use whakapapa_collector::http::{self, AppState, Limits};
//! let state = AppState::new(store, run, None, None, Limits::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, http::app(state)).await
//! # }
//! ```
//!
//! `POST /audit` answers 200 only once its batch is committed (the store is opened
//! `durable` by `serve`), so kube-apiserver's webhook backend retries whatever was not stored;
//! a retried batch changes nothing. Handlers run on the runtime; the store's writer is its own
//! thread, reached through a channel, so no connection is held across an `.await`.

pub mod api;
mod error;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::ingest::Converter;
use crate::mapping::Mapper;
use crate::metrics::Metrics;
use crate::store::{ReleaseId, RunId, Store};

pub use error::AppError;

/// Body size limits of the webhook and the side channel.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Limits {
    /// Largest body accepted as sent (compressed or not): larger is 413.
    pub max_body: usize,
    /// Largest body once decompressed: larger is 413.
    pub max_decompressed: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 << 20,
            max_decompressed: 128 << 20,
        }
    }
}

impl Limits {
    /// Limits with these sizes in bytes.
    pub fn new(max_body: usize, max_decompressed: usize) -> Limits {
        Limits {
            max_body,
            max_decompressed: max_decompressed.max(max_body),
        }
    }
}

/// What the webhook stores into: the run and the catalog it maps with.
#[derive(Debug)]
pub struct Webhook {
    run: RunId,
    release: Option<ReleaseId>,
    limits: Limits,
    /// Shared so each distinct user agent is parsed once, not once per batch; one per core, so
    /// concurrent batches convert side by side. Each is held only while one batch is
    /// converted, never across an `.await`.
    converters: Vec<std::sync::Mutex<Converter>>,
}

impl Webhook {
    /// Runs `f` with a converter nobody else is using (or waits for the first).
    pub(crate) fn convert<T>(&self, f: impl FnOnce(&mut Converter) -> T) -> T {
        let mut guard = self
            .converters
            .iter()
            .find_map(|c| c.try_lock().ok())
            .unwrap_or_else(|| {
                self.converters[0]
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            });
        f(&mut guard)
    }
}

/// State shared by the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Operational counters (served at `/metrics`).
    pub metrics: Arc<Metrics>,
    webhook: Arc<Webhook>,
}

impl AppState {
    /// State storing into `run`, mapping with `mapper` against `release`.
    pub fn new(
        store: Store,
        run: RunId,
        release: Option<ReleaseId>,
        mapper: Option<Arc<Mapper>>,
        limits: Limits,
    ) -> AppState {
        AppState {
            store,
            metrics: Arc::new(Metrics::default()),
            webhook: Arc::new(Webhook {
                run,
                release,
                limits,
                converters: (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
                    .map(|_| std::sync::Mutex::new(Converter::new(mapper.clone())))
                    .collect(),
            }),
        }
    }

    /// Maps with `mapper` from now on (a refreshed catalog of the same release, whose endpoints
    /// keep their indexes): each converter takes it once the batch it converts is done.
    pub fn set_mapper(&self, mapper: Arc<Mapper>) {
        for converter in &self.webhook.converters {
            converter
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .set_mapper(Some(mapper.clone()));
        }
    }

    /// Shares these counters instead of fresh ones.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> AppState {
        self.metrics = metrics;
        self
    }
}

/// The collector's router: `POST /audit`, `POST /purposes`, `/healthz`, `/readyz`, `/metrics`,
/// the query API under `/api/v1` and the web page at `/`.
///
/// Other modules contribute their own `Router` (already given its state) with `.merge(...)`
/// here, so their handlers stay in their modules.
pub fn app(state: AppState) -> Router {
    let limit = state.webhook.limits.max_body;
    let ingest = Router::new()
        .route("/audit", post(routes::audit))
        .route("/purposes", post(routes::purposes))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .merge(ingest)
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .with_state(state.clone())
        .merge(crate::metrics::router(state.metrics.clone()))
        .merge(api::router(state.store.clone()))
        // The web page at `/` and `/assets/...` (collector/src/web).
        .merge(crate::web::router())
}
