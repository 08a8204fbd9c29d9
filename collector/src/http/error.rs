//! The one error type of the handlers: what the client did wrong, or that we failed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store;

/// Why a request to the collector failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The body is not what the route takes.
    #[error("bad request body: {0}")]
    BadBody(String),
    /// The body (as sent, or decompressed) is over the limit.
    #[error("request body larger than {limit} bytes{what}")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// `""` or `" once decompressed"`.
        what: &'static str,
    },
    /// A `Content-Encoding` other than gzip or identity.
    #[error("unsupported content encoding {0:?} (gzip and identity are)")]
    Encoding(String),
    /// The store failed; the batch was not stored.
    #[error("cannot store the batch")]
    Store(#[from] store::Error),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::BadBody(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Encoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Store(e) => {
                // Details stay in our log; the client learns only that it should retry.
                tracing::error!(error = %format!("{:#}", anyhow_chain(e)), "store failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, format!("{self}\n")).into_response()
    }
}

/// The error with its sources, `: `-separated.
fn anyhow_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
