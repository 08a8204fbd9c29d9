//! Full purposes from whakapapa's side channel (KEP.md "Side channel"): one record per
//! fingerprint with the identity and every frame.
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

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::audit::{ArrayItems, line_of, skip_ws};
use crate::useragent::{Frame, Identity};

/// The side-channel format version this collector reads.
pub const VERSION: u32 = 1;

/// One full purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposeRecord {
    /// Format version: the `whakapapa` key that marks a record.
    pub whakapapa: u32,
    /// The purpose fingerprint (16 lowercase hex digits on the wire).
    #[serde(
        serialize_with = "serialize_fingerprint",
        deserialize_with = "deserialize_fingerprint"
    )]
    pub fingerprint: u64,
    /// The program's identity; `identity.text` is the record's `user_agent`.
    pub identity: Identity,
    /// The test name, if any.
    #[serde(default)]
    pub test: Option<String>,
    /// Every frame, innermost first.
    pub frames: Vec<Frame>,
    /// The tracing span the request was made in, if any.
    #[serde(default)]
    pub span: Option<String>,
    /// When the process first saw this purpose.
    #[serde(default)]
    pub seen_at: Option<jiff::Timestamp>,
}

fn serialize_fingerprint<S: Serializer>(fp: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{fp:016x}"))
}

fn deserialize_fingerprint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(serde::de::Error::custom(format_args!(
            "fingerprint {text:?} is not 16 hex digits"
        )));
    }
    u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
}

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

impl PurposeRecord {
    /// Parses one record.
    pub fn parse(bytes: &[u8]) -> Result<PurposeRecord, PurposeError> {
        let mut record: PurposeRecord = serde_json::from_slice(bytes).map_err(|e| {
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
        if record.identity.text.is_empty() {
            record.identity.text = record.identity.render();
        }
        Ok(record)
    }
}

/// Parses a side-channel body or spool file: ndjson or a JSON array. Returns the good records
/// and, for each bad one, its 1-based line number (where the item starts) and the error.
pub fn parse_records(body: &[u8]) -> (Vec<PurposeRecord>, Vec<(usize, PurposeError)>) {
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
                Ok((at, bytes)) => match PurposeRecord::parse(bytes) {
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
        match PurposeRecord::parse(line) {
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
