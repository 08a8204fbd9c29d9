//! The handlers of [`super::app`].

use std::io::Read as _;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::{AppError, AppState};
use crate::audit;
use crate::ingest::purpose_upsert;
use crate::purpose;
use crate::store::{Batch, MalformedRecord};

/// What `POST /audit` answers once the batch is committed.
#[derive(Debug, Serialize)]
pub struct AuditAck {
    events: u64,
    new: u64,
    advanced: u64,
    duplicates: u64,
}

/// `POST /audit`: a webhook `EventList` (or array, or single event), maybe gzipped.
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AuditAck>, AppError> {
    let body = decoded(&state, &headers, body)?;
    // All or nothing: the webhook backend resends a whole batch, so half of one is never stored.
    let events = match audit::parse_batch_ref(&body) {
        Ok(events) => events,
        Err(e) => {
            let reason = e.to_string();
            let rejected = Batch {
                run: state.webhook.run,
                release: state.webhook.release,
                events: 0,
                requests: Vec::new(),
                malformed: vec![MalformedRecord {
                    source: "POST /audit".into(),
                    line: e.offset().map(|o| audit::line_of(&body, o) as u64),
                    reason: reason.clone(),
                }],
            };
            if let Err(e) = state.store.apply(rejected).await {
                tracing::warn!(error = %e, "cannot record a rejected body");
            }
            return Err(AppError::BadBody(reason));
        }
    };
    let requests: Vec<_> = state
        .webhook
        .convert(|c| events.into_iter().map(|e| c.record_ref(e)).collect());
    let n = requests.len() as u64;
    state.metrics.events_received(n);
    state.metrics.add_queue_depth(1);
    let started = std::time::Instant::now();
    let outcome = state
        .store
        .apply(Batch {
            run: state.webhook.run,
            release: state.webhook.release,
            events: n,
            requests,
            malformed: Vec::new(),
        })
        .await;
    state.metrics.add_queue_depth(-1);
    let outcome = outcome?;
    state.metrics.observe_batch_commit(started.elapsed());
    state.metrics.requests_stored(outcome.new);
    state.metrics.duplicates(outcome.duplicates);
    for (mapping, count) in &outcome.unmapped {
        let reason = mapping.strip_prefix("unmapped:").unwrap_or(mapping);
        state.metrics.unmapped(reason, *count);
    }
    Ok(Json(AuditAck {
        events: outcome.events,
        new: outcome.new,
        advanced: outcome.advanced,
        duplicates: outcome.duplicates,
    }))
}

/// A side-channel record the collector could not read.
#[derive(Debug, Serialize)]
pub struct Rejected {
    line: usize,
    reason: String,
}

/// What `POST /purposes` answers.
#[derive(Debug, Serialize)]
pub struct PurposesAck {
    stored: usize,
    rejected: Vec<Rejected>,
}

/// `POST /purposes`: side-channel records, ndjson or a JSON array; each record stands alone,
/// so good ones are stored beside bad ones (reported by line). Nothing good at all is a 400.
pub async fn purposes(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PurposesAck>, AppError> {
    let body = decoded(&state, &headers, body)?;
    let (records, errors) = purpose::parse_records(&body);
    let rejected: Vec<Rejected> = errors
        .into_iter()
        .map(|(line, e)| Rejected {
            line,
            reason: e.to_string(),
        })
        .collect();
    if records.is_empty() {
        return Err(AppError::BadBody(match rejected.first() {
            Some(r) => format!("line {}: {}", r.line, r.reason),
            None => "no purpose records".into(),
        }));
    }
    state.metrics.side_channel_records(records.len() as u64);
    let stored = state
        .store
        .upsert_purposes(records.into_iter().map(purpose_upsert).collect())
        .await?;
    Ok(Json(PurposesAck { stored, rejected }))
}

/// `GET /healthz`: the process serves.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database writer answers.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database not ready\n")
        }
    }
}

/// The body as sent, decompressed per `Content-Encoding`, within the limits.
fn decoded(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, AppError> {
    let limits = state.webhook.limits;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge {
                limit: limits.max_body,
                what: "",
            }
        } else {
            AppError::BadBody(e.body_text())
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("identity") | Some("") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::new();
            let limit = limits.max_decompressed as u64;
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| AppError::BadBody(format!("invalid gzip: {e}")))?;
            if out.len() as u64 > limit {
                return Err(AppError::TooLarge {
                    limit: limits.max_decompressed,
                    what: " once decompressed",
                });
            }
            Ok(out.into())
        }
        Some(other) => Err(AppError::Encoding(other.to_owned())),
    }
}
