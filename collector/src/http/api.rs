//! The Query API: `GET /api/v1/<name>?<filters>&<options>` answers a query as JSON (KEP.md,
//! "Query API"), the same JSON `query <name> --format json` prints.
//!
//! # Example
//! ```no_run
//! # async fn f(store: whakapapa_collector::store::Store) -> std::io::Result<()> {
//! let app = whakapapa_collector::http::api::router(store);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! Each query runs on the blocking pool with its own read connection (WAL lets it read beside
//! the writer), opened and closed inside the blocking task, never across an `.await`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::query::{self, Request};
use crate::store::{self, Store};

/// Why a query failed, as the client sees it: `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The query failed (bad input, unknown name, or the database).
    #[error(transparent)]
    Query(#[from] query::Error),
    /// The query string is not `application/x-www-form-urlencoded`.
    #[error("{0}")]
    QueryString(String),
    /// The database could not be opened.
    #[error("cannot open the database")]
    Open(#[source] store::Error),
    /// The rollups could not be brought up to date before answering.
    #[error("cannot fold pending rollups")]
    Fold(#[source] store::Error),
    /// The query task died.
    #[error("the query did not finish")]
    Join(#[source] tokio::task::JoinError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::Query(e) if e.is_not_found() => (StatusCode::NOT_FOUND, self.to_string()),
            ApiError::Query(e) if e.is_input() => (StatusCode::BAD_REQUEST, self.to_string()),
            ApiError::QueryString(_) => (StatusCode::BAD_REQUEST, self.to_string()),
            _ => {
                // Details stay in our log; the client learns that it was not its fault.
                tracing::error!(error = %chain(&self), "query failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        let body = serde_json::json!({ "error": message }).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The Query API's routes, with their state; the server merges them into its router.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/v1/{name}", get(answer))
        .with_state(store)
}

/// Takes `fresh` (`true`, `1` or empty: yes; `false` or `0`: no) out of the query string.
fn take_fresh(pairs: &mut Vec<(String, String)>) -> Result<bool, ApiError> {
    let mut fresh = false;
    let mut bad = None;
    pairs.retain(|(k, v)| {
        if k != "fresh" {
            return true;
        }
        match v.as_str() {
            "" | "true" | "1" => fresh = true,
            "false" | "0" => fresh = false,
            _ => bad = Some(v.clone()),
        }
        false
    });
    match bad {
        Some(value) => Err(ApiError::Query(query::Error::BadValue {
            name: "fresh".into(),
            value,
            expected: "true or false",
        })),
        None => Ok(fresh),
    }
}

async fn answer(
    State(store): State<Store>,
    Path(name): Path<String>,
    pairs: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(mut pairs) = pairs.map_err(|e| ApiError::QueryString(e.body_text()))?;
    // `fresh`: every batch acknowledged so far is in the answer, folded into the rollups
    // first (a round trip through the writer, behind the batches it is storing). Without it
    // the answer is what the rollups hold, folded between batches and at most seconds behind.
    let fresh = take_fresh(&mut pairs)?;
    let request = Request::from_params(&name, pairs)?;
    if fresh {
        store.fold().await.map_err(ApiError::Fold)?;
    }
    if request.reads_journeys() {
        // Counted once, when first asked after a bulk ingest; a no-op when nothing is new.
        store.fold_journeys().await.map_err(ApiError::Fold)?;
    }
    if request.reads_rbac() {
        // Serving, apps are derived when asked, not between batches (each derivation costs
        // the size of its app, which a webhook batch would wait for).
        store.refresh_rbac().await.map_err(ApiError::Fold)?;
    }
    let json = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let conn = store.reader().map_err(ApiError::Open)?;
        Ok(request.run(&conn)?.to_json())
    })
    .await
    .map_err(ApiError::Join)??;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}
