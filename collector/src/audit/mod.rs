//! Audit events as every kube-apiserver release has written them (`audit.k8s.io/v1alpha1`,
//! `v1beta1`, `v1`), in JSON or YAML.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::audit::{self, Format, Stage};
//!
//! let line = br#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",
//!   "auditID":"4d2b0a3e-5f7c-4b8a-9e1d-0c6f2a7b3d91","stage":"ResponseComplete",
//!   "requestURI":"/api/v1/namespaces/default/pods?limit=500","verb":"list",
//!   "user":{"username":"kubernetes-admin","groups":["system:masters"]},
//!   "requestReceivedTimestamp":"2026-11-20T10:00:00.000000Z"}"#;
//! assert_eq!(audit::sniff(line), Format::Document);
//! let event = audit::parse_event(line).unwrap();
//! assert_eq!(event.stage, Stage::ResponseComplete);
//! assert_eq!(event.verb, "list");
//! ```
//!
//! Parsing goes straight from bytes into [`EventRef`] with serde derive, borrowing strings
//! from the input ([`parse_event_ref`]); [`Event`] is its owned form. Fields we do not keep
//! (`requestObject`, `responseObject`, ...) are skipped without building values, which is what
//! makes ≥ 200k events/s possible. `verb` and `requestURI` are required (their absence is an
//! error naming the field: what lacks them is not an event); every other field is missing
//! from some version, level or stage and optional. The fields that older versions name
//! otherwise are read into the current ones ([`Event`] says how), so the rest of the
//! collector sees one shape.

mod borrowed;
mod managed;
mod scan;
mod timestamp;
mod yaml;

use serde::{Deserialize, Serialize};

pub use borrowed::{AnnotationsRef, EventRef, ObjectRefRef, StatusRef, Text, UserRef};
pub use managed::parse_gke_entry;
pub use scan::Format;
pub use scan::line_of;
pub(crate) use scan::{ArrayItems, skip_ws};
pub use yaml::parse_yaml_lenient;

/// The stage of request handling an event was written at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// The apiserver received the request, before any response.
    RequestReceived,
    /// Response headers were sent (long-running requests: watch, exec, proxy).
    ResponseStarted,
    /// The response body was completed.
    ResponseComplete,
    /// The handler panicked.
    Panic,
}

impl Stage {
    /// How complete the event's data is: a later stage of the same request wins.
    ///
    /// `Panic` and `ResponseComplete` are both final; `Panic` ranks highest so a request that
    /// panicked is never shown as completed normally.
    pub fn rank(self) -> u8 {
        match self {
            Stage::RequestReceived => 0,
            Stage::ResponseStarted => 1,
            Stage::ResponseComplete => 2,
            Stage::Panic => 3,
        }
    }

    /// The stage name as kube-apiserver writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    /// The stage for its name as kube-apiserver writes it.
    pub fn from_name(name: &str) -> Option<Stage> {
        Some(match name {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            _ => return None,
        })
    }
}

/// How much of the request and response the audit policy asked to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Nothing is logged (never seen in an event, but part of the type).
    None,
    /// Request metadata only.
    Metadata,
    /// Metadata and request body.
    Request,
    /// Metadata, request and response bodies.
    RequestResponse,
}

/// The authenticated (or impersonated) user of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// The user's name (`system:serviceaccount:ns:name`, `kubernetes-admin`, ...).
    #[serde(default)]
    pub username: String,
    /// The user's UID, when the authenticator gives one.
    #[serde(default)]
    pub uid: Option<String>,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The object a resource request is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Resource (plural) name, e.g. `pods`.
    #[serde(default)]
    pub resource: Option<String>,
    /// Namespace of the object, absent for cluster-scoped resources.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name of the object, absent for collection requests.
    #[serde(default)]
    pub name: Option<String>,
    /// UID of the object.
    #[serde(default)]
    pub uid: Option<String>,
    /// API group, empty or absent for the core group.
    #[serde(default)]
    pub api_group: Option<String>,
    /// API version.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Resource version of the object.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// Subresource, e.g. `status`, `log`, `exec`.
    #[serde(default)]
    pub subresource: Option<String>,
}

/// The response status (a `metav1.Status`, of which the audit log keeps a few fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// HTTP status code.
    #[serde(default)]
    pub code: Option<i32>,
    /// `Success` or `Failure`.
    #[serde(default)]
    pub status: Option<String>,
    /// Machine-readable reason, e.g. `NotFound`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
}

/// One audit event: one stage of one API request, in the one shape every version is read into.
///
/// Deserialized through [`EventRef`] (one schema for both). `verb` and `requestURI` are
/// required: they make an object an event. Every other field may be absent, and each field
/// says what it holds then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `audit.k8s.io/v1`, `v1beta1` or `v1alpha1`; absent in some log lines.
    pub api_version: Option<String>,
    /// The audit level the event was recorded at, if it says.
    pub level: Option<Level>,
    /// Unique per request (the client's `Audit-ID` header when it sent one). An event without
    /// one (or with an empty one) gets `no-audit-id:` and a hash of what the stages of a
    /// request share: verb, URI, user, impersonated user, source IPs, user agent, receive time.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The stage the event was written at; `ResponseComplete` when the event has none.
    pub stage: Stage,
    /// The request URI as sent: path and query.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, ...), or the lowercase HTTP method
    /// for non-resource requests.
    pub verb: String,
    /// The authenticated user (empty when the event has none).
    pub user: UserInfo,
    /// The user the request impersonated, if any.
    pub impersonated_user: Option<UserInfo>,
    /// Source IPs, client first, then proxies.
    #[serde(rename = "sourceIPs")]
    pub source_ips: Vec<String>,
    /// The User-Agent header (at most 1024 bytes plus `...TRUNCATED`).
    pub user_agent: Option<String>,
    /// The object the request is about; absent for non-resource requests. v1alpha1's
    /// `apiVersion: apps/v1` is read as `apiGroup: apps`, `apiVersion: v1`.
    pub object_ref: Option<ObjectRef>,
    /// The response status; absent before the response (RequestReceived).
    pub response_status: Option<Status>,
    /// When the apiserver received the request: `requestReceivedTimestamp` (µs), else
    /// `timestamp` (v1alpha1 and v1beta1 of Kubernetes 1.7 and 1.8, to the second, the same
    /// on every stage of a request), else unknown.
    pub request_received_timestamp: Option<jiff::Timestamp>,
    /// When this stage was reached: `stageTimestamp`, else `metadata.creationTimestamp`
    /// (v1alpha1 and v1beta1 from 1.9 on), else unknown.
    pub stage_timestamp: Option<jiff::Timestamp>,
    /// The annotations we keep; the rest (long authorization reasons, admission details) are
    /// skipped unbuilt: they are most of a Metadata event's bytes and no query reads them
    /// (`cargo bench --bench mapping`, BENCHMARKS.md).
    pub annotations: Annotations,
}

/// The audit annotations the collector keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    /// `authorization.k8s.io/decision`: `allow` or `forbid`.
    #[serde(
        rename = "authorization.k8s.io/decision",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub authorization_decision: Option<String>,
    /// `k8s.io/deprecated`: `"true"` on a request to a deprecated API version.
    #[serde(
        rename = "k8s.io/deprecated",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub deprecated: Option<String>,
    /// `k8s.io/removed-release`: the release (`"1.22"`) that removes the requested API
    /// version, on requests to a deprecated version with a planned removal.
    #[serde(
        rename = "k8s.io/removed-release",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub removed_release: Option<String>,
}

impl Event {
    /// When the request was received, in microseconds since the Unix epoch, if the event says.
    pub fn received_us(&self) -> Option<i64> {
        self.request_received_timestamp.map(timestamp_us)
    }

    /// `stageTimestamp − requestReceivedTimestamp` in microseconds, when the event has both.
    pub fn latency_us(&self) -> Option<i64> {
        Some(timestamp_us(self.stage_timestamp?) - self.received_us()?)
    }

    /// The response status code, if the stage has one.
    pub fn status_code(&self) -> Option<i32> {
        self.response_status.as_ref().and_then(|s| s.code)
    }
}

fn timestamp_us(ts: jiff::Timestamp) -> i64 {
    // i128 → i64 cannot overflow: jiff timestamps span ±10k years, well within i64 µs.
    ts.as_microsecond()
}

/// A list of events, the body the webhook backend posts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// `audit.k8s.io/v1` or `audit.k8s.io/v1beta1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `EventList`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The events.
    #[serde(default)]
    pub items: Vec<Event>,
}

/// Why audit input was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditError {
    /// The input was not a valid audit event or event list.
    #[error("invalid audit event at byte {offset}: {message}")]
    Invalid {
        /// Byte offset into the input where the problem was found.
        offset: usize,
        /// What was wrong, e.g. ``missing field `auditID` ``.
        message: String,
    },
    /// The input was empty (or only whitespace).
    #[error("empty input, expected an audit event")]
    Empty,
}

impl AuditError {
    /// The byte offset the error refers to, if any.
    pub fn offset(&self) -> Option<usize> {
        match self {
            AuditError::Invalid { offset, .. } => Some(*offset),
            AuditError::Empty => None,
        }
    }

    /// The error with its offset shifted by `base`, for an item parsed out of a larger body.
    pub(crate) fn shifted(self, base: usize) -> AuditError {
        match self {
            AuditError::Invalid { offset, message } => AuditError::Invalid {
                offset: offset + base,
                message,
            },
            other => other,
        }
    }

    pub(crate) fn from_json(input: &[u8], err: &serde_json::Error) -> AuditError {
        let offset = byte_offset(input, err.line(), err.column());
        // serde_json appends " at line L column C"; we give the byte offset instead.
        let mut message = err.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        AuditError::Invalid { offset, message }
    }
}

/// Converts serde_json's 1-based line/column into a byte offset into `input`.
fn byte_offset(input: &[u8], line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let mut start = 0;
    for _ in 1..line {
        match memchr_newline(&input[start..]) {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    (start + column.saturating_sub(1)).min(input.len())
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Parses one event, e.g. one line of a log backend file.
///
/// Trailing whitespace (the line's `\r`) is fine; anything else after the event is an error.
pub fn parse_event(line: &[u8]) -> Result<Event, AuditError> {
    parse_event_ref(line).map(EventRef::into_owned)
}

/// Parses one event like [`parse_event`], borrowing its strings from `line`.
pub fn parse_event_ref(line: &[u8]) -> Result<EventRef<'_>, AuditError> {
    if skip_ws(line, 0) == line.len() {
        return Err(AuditError::Empty);
    }
    // One UTF-8 check of the whole line is cheaper than serde_json's check of each string;
    // a line that fails it is parsed as bytes, which reports where the bad byte is.
    match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(line),
    }
    .map_err(|e| AuditError::from_json(line, &e))
}

/// Parses a whole document: an `EventList` object, a bare JSON array of events, or a single
/// event.
///
/// All or nothing: the first bad event fails the whole document (a webhook batch is
/// acknowledged or rejected as one). Use [`parse_batch_lenient`] to keep the good events.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Event>, AuditError> {
    parse_batch_ref(body).map(|events| events.into_iter().map(EventRef::into_owned).collect())
}

/// [`parse_batch`], borrowing the events' strings from `body` instead of copying each one
/// (the webhook's path: a batch is converted to records right away; [`parse_batch`] is this
/// made owned).
pub fn parse_batch_ref(body: &[u8]) -> Result<Vec<EventRef<'_>>, AuditError> {
    /// [`EventList`], borrowing: the same fields, checked the same way.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Items<'a> {
        #[serde(borrow, default, rename = "apiVersion")]
        _api_version: Option<Text<'a>>,
        #[serde(borrow, default, rename = "kind")]
        _kind: Option<Text<'a>>,
        #[serde(borrow, default)]
        items: Vec<EventRef<'a>>,
    }
    let start = skip_ws(body, 0);
    let json = |e: serde_json::Error| AuditError::from_json(body, &e);
    match body.get(start) {
        None => Err(AuditError::Empty),
        Some(b'[') => serde_json::from_slice(body).map_err(json),
        // serde cannot rewind, so a cheap structural scan decides list or single event first.
        Some(b'{') => match scan::find_items(body, start)? {
            Some(_) => serde_json::from_slice::<Items<'_>>(body)
                .map(|list| list.items)
                .map_err(json),
            None => parse_event_ref(body).map(|e| vec![e]),
        },
        Some(_) => Err(AuditError::Invalid {
            offset: start,
            message: "expected an EventList object, a JSON array or an event".into(),
        }),
    }
}

/// Parses a whole document like [`parse_batch`], but keeps every good event and reports each
/// bad one with its byte offset, so one malformed item does not lose the rest.
///
/// Fails as a whole only when the document's structure itself is broken (not JSON, no
/// `items`, unbalanced brackets).
pub fn parse_batch_lenient(body: &[u8]) -> Result<(Vec<Event>, Vec<AuditError>), AuditError> {
    let start = skip_ws(body, 0);
    let items = match body.get(start) {
        None => return Err(AuditError::Empty),
        Some(b'[') => ArrayItems::new(body, start)?,
        Some(b'{') => match scan::find_items(body, start)? {
            Some(items_at) => ArrayItems::new(body, items_at)?,
            None => {
                if let Some(events_at) = scan::find_key(body, start, b"\"events\"")? {
                    // A CloudWatch Logs export (EKS).
                    return managed::parse_cloudwatch(body, events_at);
                }
                // A single event, or a single GKE log entry.
                return parse_item(body).map(|e| (vec![e], Vec::new()));
            }
        },
        Some(_) => {
            return Err(AuditError::Invalid {
                offset: start,
                message: "expected an EventList object, a JSON array or an event".into(),
            });
        }
    };
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for item in items {
        let (at, bytes) = item?;
        match parse_item(bytes) {
            Ok(event) => events.push(event),
            Err(e) => errors.push(e.shifted(at)),
        }
    }
    Ok((events, errors))
}

/// One item of a document: an event, else a GKE log entry (`gcloud logging read
/// --format=json` writes an array of them); an item that is neither gets the event's error.
fn parse_item(bytes: &[u8]) -> Result<Event, AuditError> {
    parse_event(bytes).or_else(|e| {
        if managed::is_log_entry(bytes) {
            parse_gke_entry(bytes)
        } else {
            Err(e)
        }
    })
}

/// Parses one line that is not an audit event but a managed control plane's record of one: a
/// GKE Cloud Logging entry (a Log Router sink writes one per line), an EKS S3 export line
/// (`2024-01-01T00:00:00.000Z {"kind":"Event",…}`) or a CloudWatch Logs export on one line.
/// `None` when the line is none of these.
pub fn parse_managed_line(line: &[u8]) -> Option<Result<Vec<Event>, AuditError>> {
    if let Some(at) = managed::export_prefix(line) {
        return Some(
            parse_event(&line[at..])
                .map(|e| vec![e])
                .map_err(|e| e.shifted(at)),
        );
    }
    let start = skip_ws(line, 0);
    if line.get(start) != Some(&b'{') {
        return None;
    }
    if managed::is_log_entry(line) {
        return Some(parse_gke_entry(line).map(|e| vec![e]));
    }
    match scan::find_key(line, start, b"\"events\"") {
        Ok(Some(at)) => Some(
            managed::parse_cloudwatch(line, at).and_then(|(events, errors)| {
                match errors.into_iter().next() {
                    Some(e) => Err(e),
                    None => Ok(events),
                }
            }),
        ),
        _ => None,
    }
}

/// Tells whether input is JSON lines (one event per line, the log backend) or a single JSON
/// document (an `EventList`, a JSON array, or one possibly pretty-printed event).
///
/// Looks only at the first value, so a prefix of a large file (say 64 KiB) is enough. A
/// one-line value followed by more lines is JSON lines, even when each line is a whole
/// `EventList` (parse such a line with [`parse_batch`]).
pub fn sniff(input: &[u8]) -> Format {
    scan::sniff(input)
}

#[cfg(test)]
pub(crate) mod tests;
