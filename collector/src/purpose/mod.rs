//! Full purposes from whakapapa's side channel (KEP.md "Side channel"): one
//! [`Record`] per fingerprint with the identity and every frame, read
//! from a request body or a spool file.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::purpose;
//!
//! let body = br#"{"whakapapa":1,"fingerprint":"9c0e4b7d12aa03f1","identity":{"name":"shop"},"frames":[{"function":"shop::main","file":"src/main.rs","line":17}],"seen_at":"2026-11-20T10:03:11.402Z"}
//! {"not":"a record"}
//! "#;
//! let (records, errors) = purpose::parse_records(body);
//! assert_eq!(records[0].fingerprint, 0x9c0e4b7d12aa03f1);
//! assert_eq!(errors[0].0, 2); // line 2
//! ```
//!
//! The body is ndjson (one record a line) or a JSON array; each record is parsed on its own,
//! so a bad one is reported with its line and the rest are kept.

use serde::Deserialize;
use whakapapa_wire::{RECORD_VERSION as VERSION, Record};

use crate::audit::{ArrayItems, line_of, skip_ws};

/// Why a record was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurposeError {
    /// The line or item is not a valid record.
    #[error("invalid purpose record: {0}")]
    Invalid(String),
    /// Valid JSON, but without the `whakapapa` key.
    #[error("not a whakapapa purpose record (no `whakapapa` key)")]
    NotARecord,
    /// A newer format than this collector reads.
    #[error("unsupported purpose record version {0} (this collector reads {VERSION})")]
    UnsupportedVersion(u32),
    /// The array holding the records is broken.
    #[error("invalid purpose record list: {0}")]
    List(String),
}

/// Parses one record. Its `seen_at` must be an RFC 3339 time, and is kept in the one form the
/// store writes (UTC, `Z`); an identity without `user_agent` gets the text of its fields.
pub fn parse_record(bytes: &[u8]) -> Result<Record, PurposeError> {
    let mut record: Record = serde_json::from_slice(bytes).map_err(|e| {
        // Say why in the terms of the format: not a record, a newer one, or a bad one.
        match serde_json::from_slice::<VersionProbe>(bytes) {
            Ok(VersionProbe { whakapapa: None }) => PurposeError::NotARecord,
            Ok(VersionProbe { whakapapa: Some(v) }) if v != VERSION => {
                PurposeError::UnsupportedVersion(v)
            }
            _ => PurposeError::Invalid(e.to_string()),
        }
    })?;
    if record.whakapapa != VERSION {
        return Err(PurposeError::UnsupportedVersion(record.whakapapa));
    }
    if let Some(seen_at) = &mut record.seen_at {
        let time: jiff::Timestamp = seen_at
            .parse()
            .map_err(|e| PurposeError::Invalid(format!("seen_at {seen_at:?}: {e}")))?;
        *seen_at = time.to_string();
    }
    if record.identity.text.is_empty() {
        record.identity.text = record.identity.render();
    }
    Ok(record)
}

/// Parses a side-channel body or spool file: ndjson or a JSON array. Returns the good records
/// and, for each bad one, its 1-based line number (where the item starts) and the error.
pub fn parse_records(body: &[u8]) -> (Vec<Record>, Vec<(usize, PurposeError)>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let start = skip_ws(body, 0);
    if body.get(start) == Some(&b'[') {
        let items = match ArrayItems::new(body, start) {
            Ok(items) => items,
            Err(e) => {
                errors.push((line_of(body, start), PurposeError::List(e.to_string())));
                return (records, errors);
            }
        };
        for item in items {
            match item {
                Ok((at, bytes)) => match parse_record(bytes) {
                    Ok(record) => records.push(record),
                    Err(e) => errors.push((line_of(body, at), e)),
                },
                Err(e) => {
                    let at = e.offset().unwrap_or(start);
                    errors.push((line_of(body, at), PurposeError::List(e.to_string())));
                    break;
                }
            }
        }
        return (records, errors);
    }
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match parse_record(line) {
            Ok(record) => records.push(record),
            Err(e) => errors.push((n + 1, e)),
        }
    }
    (records, errors)
}

/// Whether a JSON line is a purpose record rather than an audit event: its top-level object
/// has the `whakapapa` key.
///
/// Called on every input line, so the common cases cost only a look at the first key: records
/// are written with `whakapapa` first, kube-apiserver writes events with `kind` first. Any
/// other first key falls back to reading every top-level key (values are skipped unbuilt).
pub fn is_record(line: &[u8]) -> bool {
    let start = skip_ws(line, 0);
    if line.get(start) != Some(&b'{') {
        return false;
    }
    let key = skip_ws(line, start + 1);
    let first_key = line.get(key + 1..).and_then(|rest| {
        let len = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
        (line[key] == b'"' && rest[len] == b'"').then(|| &rest[..len])
    });
    match first_key {
        Some(b"whakapapa") => true,
        Some(b"kind" | b"apiVersion" | b"level" | b"auditID") => false,
        _ => serde_json::from_slice::<KeyProbe>(line).is_ok_and(|probe| probe.whakapapa.is_some()),
    }
}

/// The format version of an object, if it has one; every other value is skipped.
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    whakapapa: Option<u32>,
}

/// Only the `whakapapa` key of an object; every other value is skipped.
#[derive(Deserialize)]
struct KeyProbe {
    #[serde(default)]
    whakapapa: Option<serde::de::IgnoredAny>,
}

#[cfg(test)]
mod tests;
