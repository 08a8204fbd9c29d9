//! What the store takes in and hands back: plain owned data, no SQL.
//!
//! Identities, tests and frames are the wire crate's own types ([`Identity`], [`TestInfo`],
//! [`Frame`]): what a user agent or a side-channel record says is stored as parsed.

use std::collections::BTreeMap;
use std::sync::Arc;

use whakapapa_wire::{Frame, Identity, TestInfo};

/// Row id of an `ingest_runs` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunId(pub i64);

/// Row id of a `releases` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReleaseId(pub i64);

/// The stage of an audit event, ranked so that a later stage is "more complete".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StageRank {
    /// `RequestReceived`: the request was read, nothing is known of the response.
    RequestReceived = 0,
    /// `ResponseStarted`: headers sent (long-running requests such as watch).
    ResponseStarted = 1,
    /// `ResponseComplete`: the response was sent.
    ResponseComplete = 2,
    /// `Panic`: the handler panicked; terminal.
    Panic = 3,
}

impl StageRank {
    /// The rank as stored in `requests.stage`.
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    /// The rank stored as `requests.stage`, back.
    pub fn from_i64(v: i64) -> Option<Self> {
        Some(match v {
            0 => Self::RequestReceived,
            1 => Self::ResponseStarted,
            2 => Self::ResponseComplete,
            3 => Self::Panic,
            _ => return None,
        })
    }
}

/// A user or impersonated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// `username`.
    pub name: String,
    /// `groups` as a JSON array (the store keeps it as text).
    pub groups_json: String,
}

/// What a user agent said about the program: parsed once per distinct user agent and shared.
///
/// The wire's [`UserAgent`](whakapapa_wire::UserAgent) in the form the ingest shares: its
/// identity and test behind `Arc`s, one per program and test for all the agents that name them,
/// and without what the store does not keep (`truncated`, `ua=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRecord {
    /// The program identity (shared by every agent of the program); its text is the key of
    /// `identities`.
    pub identity: Arc<Identity>,
    /// The test, if the user agent names one (shared like the identity); its name is the key
    /// of `tests`.
    pub test: Option<Arc<TestInfo>>,
    /// The purpose fingerprint in the user agent.
    pub fingerprint: Option<u64>,
    /// The frames the user agent carried, innermost first (possibly cut).
    pub frames: Vec<Frame>,
}

/// One audit event, mapped and parsed, ready to store.
///
/// Its texts (`auditID`, `verb`, `requestURI`, ...) live in one allocation, [`RequestTexts`],
/// read through the accessors: a dozen strings per event, each allocated by an ingest worker
/// and freed by another thread, were a third of the ingest's CPU time outside the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// `auditID`, `verb`, `requestURI`, the mapping, `objectRef` and `sourceIPs`.
    pub texts: RequestTexts,
    /// `requestReceivedTimestamp`, unix microseconds.
    pub received_us: i64,
    /// The event's stage.
    pub stage: StageRank,
    /// `stageTimestamp`, unix microseconds.
    pub stage_us: Option<i64>,
    /// The endpoint's index in the release's catalog, when mapped to one.
    pub endpoint_idx: Option<u32>,
    /// `user` (shared by the requests of one user).
    pub user: Option<Arc<UserRecord>>,
    /// `impersonatedUser`.
    pub impersonated_user: Option<Arc<UserRecord>>,
    /// `responseStatus.code`.
    pub status_code: Option<i64>,
    /// The parsed user agent (shared by every event with the same user agent).
    pub agent: Option<Arc<AgentRecord>>,
    /// The purpose fingerprint: the user agent's, else the one in a whakapapa Audit-ID.
    pub fingerprint: Option<u64>,
}

impl RequestRecord {
    /// `auditID`.
    pub fn audit_id(&self) -> &str {
        self.texts.get(AUDIT_ID).unwrap_or_default()
    }

    /// `verb`.
    pub fn verb(&self) -> &str {
        self.texts.get(VERB).unwrap_or_default()
    }

    /// `requestURI`.
    pub fn request_uri(&self) -> &str {
        self.texts.get(REQUEST_URI).unwrap_or_default()
    }

    /// `endpoint`, `non_resource` or `unmapped:<reason>`.
    pub fn mapping(&self) -> &str {
        self.texts.get(MAPPING).unwrap_or_default()
    }

    /// `objectRef.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.texts.get(NAMESPACE)
    }

    /// `objectRef.resource`.
    pub fn resource(&self) -> Option<&str> {
        self.texts.get(RESOURCE)
    }

    /// `objectRef.subresource`.
    pub fn subresource(&self) -> Option<&str> {
        self.texts.get(SUBRESOURCE)
    }

    /// `objectRef.name`.
    pub fn name(&self) -> Option<&str> {
        self.texts.get(NAME)
    }

    /// `objectRef.apiGroup`.
    pub fn api_group(&self) -> Option<&str> {
        self.texts.get(API_GROUP)
    }

    /// `objectRef.apiVersion`.
    pub fn api_version(&self) -> Option<&str> {
        self.texts.get(API_VERSION)
    }

    /// `sourceIPs`, comma-separated.
    pub fn source_ips(&self) -> Option<&str> {
        self.texts.get(SOURCE_IPS)
    }

    /// Whether kube-apiserver marked the request deprecated (`k8s.io/deprecated`), and with
    /// which `k8s.io/removed-release`: `Some("1.25")`, `Some("")` when no removal is planned,
    /// `None` when the API is not deprecated (or the event does not say).
    pub fn deprecation(&self) -> Option<&str> {
        self.texts.get(DEPRECATION)
    }
}

const AUDIT_ID: usize = 0;
const VERB: usize = 1;
const REQUEST_URI: usize = 2;
const MAPPING: usize = 3;
const NAMESPACE: usize = 4;
const RESOURCE: usize = 5;
const SUBRESOURCE: usize = 6;
const NAME: usize = 7;
const API_GROUP: usize = 8;
const API_VERSION: usize = 9;
const SOURCE_IPS: usize = 10;
const DEPRECATION: usize = 11;
const TEXTS: usize = 12;

/// The texts of a [`RequestRecord`], to build one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestText<'a> {
    /// `auditID`.
    pub audit_id: &'a str,
    /// `verb`.
    pub verb: &'a str,
    /// `requestURI`.
    pub request_uri: &'a str,
    /// `endpoint`, `non_resource` or `unmapped:<reason>`.
    pub mapping: &'a str,
    /// `objectRef.namespace`.
    pub namespace: Option<&'a str>,
    /// `objectRef.resource`.
    pub resource: Option<&'a str>,
    /// `objectRef.subresource`.
    pub subresource: Option<&'a str>,
    /// `objectRef.name`.
    pub name: Option<&'a str>,
    /// `objectRef.apiGroup`.
    pub api_group: Option<&'a str>,
    /// `objectRef.apiVersion`.
    pub api_version: Option<&'a str>,
    /// `sourceIPs`, comma-separated.
    pub source_ips: Option<&'a str>,
    /// See [`RequestRecord::deprecation`].
    pub deprecation: Option<&'a str>,
}

/// The texts of a [`RequestRecord`] back to back in one allocation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestTexts {
    all: Box<str>,
    /// Where each text ends in `all` (it starts where the one before ends).
    ends: [u32; TEXTS],
    /// Bit `i` set: text `i` is present.
    present: u16,
}

impl RequestTexts {
    /// The texts, copied into one allocation.
    pub fn new(t: &RequestText<'_>) -> RequestTexts {
        let texts = [
            Some(t.audit_id),
            Some(t.verb),
            Some(t.request_uri),
            Some(t.mapping),
            t.namespace,
            t.resource,
            t.subresource,
            t.name,
            t.api_group,
            t.api_version,
            t.source_ips,
            t.deprecation,
        ];
        let mut all = String::with_capacity(texts.iter().flatten().map(|s| s.len()).sum());
        let mut ends = [0; TEXTS];
        let mut present = 0;
        for (i, text) in texts.into_iter().enumerate() {
            if let Some(text) = text {
                all.push_str(text);
                present |= 1 << i;
            }
            // Records are built from one audit event line, far below 4 GiB.
            ends[i] = u32::try_from(all.len()).unwrap_or(u32::MAX);
        }
        RequestTexts {
            all: all.into_boxed_str(),
            ends,
            present,
        }
    }

    fn get(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.all.get(start..self.ends[i] as usize)
    }
}

impl std::fmt::Debug for RequestTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            "audit_id",
            "verb",
            "request_uri",
            "mapping",
            "namespace",
            "resource",
            "subresource",
            "name",
            "api_group",
            "api_version",
            "source_ips",
            "deprecation",
        ];
        let mut s = f.debug_struct("RequestTexts");
        for (i, name) in names.into_iter().enumerate() {
            s.field(name, &self.get(i));
        }
        s.finish()
    }
}

/// A rejected input line or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedRecord {
    /// File path, `-` or `POST /audit`.
    pub source: String,
    /// 1-based line, when the input has lines.
    pub line: Option<u64>,
    /// Why it was rejected.
    pub reason: String,
}

/// One input batch: stored wholly or not at all.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The run it belongs to.
    pub run: RunId,
    /// The release its endpoint indexes refer to.
    pub release: Option<ReleaseId>,
    /// Events read (including malformed ones).
    pub events: u64,
    /// The requests (one per event; stages of one request are merged by the store).
    pub requests: Vec<RequestRecord>,
    /// Lines rejected.
    pub malformed: Vec<MalformedRecord>,
}

/// What storing a batch did, event by event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events read.
    pub events: u64,
    /// Requests stored for the first time.
    pub new: u64,
    /// Events that moved a request to a more complete stage.
    pub advanced: u64,
    /// Events of an earlier stage than the one stored (nothing to change).
    pub earlier_stage: u64,
    /// Events already stored (redelivered or retried): nothing changed.
    pub duplicates: u64,
    /// Malformed lines.
    pub malformed: u64,
    /// New requests not mapped to an endpoint, by mapping (`non_resource`, `unmapped:<reason>`).
    pub unmapped: BTreeMap<String, u64>,
}

impl BatchOutcome {
    /// Adds another outcome's counts to this one.
    pub fn add(&mut self, other: &BatchOutcome) {
        self.events += other.events;
        self.new += other.new;
        self.advanced += other.advanced;
        self.earlier_stage += other.earlier_stage;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        for (k, v) in &other.unmapped {
            *self.unmapped.entry(k.clone()).or_default() += v;
        }
    }
}

/// One endpoint of a catalog, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// `operationId`.
    pub operation_id: String,
    /// HTTP method, lowercase.
    pub method: String,
    /// Path template.
    pub path: String,
    /// alpha, beta or stable.
    pub level: String,
    /// First tag up to its first `_`.
    pub category: String,
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// `x-kubernetes-action`.
    pub action: String,
    /// Description mentions "deprecated".
    pub deprecated: bool,
    /// Conformance eligible.
    pub eligible: bool,
    /// Why not eligible, when listed as ineligible.
    pub ineligible_reason: Option<String>,
    /// Would be eligible, but listed as pending.
    pub pending: bool,
    /// The operation's description in the spec.
    pub description: Option<String>,
}

/// One test of a release's `conformance.yaml`, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceTestRecord {
    /// The Ginkgo name (what a request's test is called).
    pub codename: String,
    /// The conformance name.
    pub testname: String,
    /// What it checks.
    pub description: String,
    /// The releases as written (`v1.21, v1.35`).
    pub release: String,
    /// The release it was promoted in, as APISnoop reads `release` (`1.35.0`).
    pub promotion_release: String,
    /// Its source file in kubernetes/kubernetes.
    pub file: String,
}

/// A catalog to store as a release.
#[derive(Debug, Clone)]
pub struct ReleaseRecord {
    /// Release label (`1.36.0`).
    pub label: String,
    /// The OpenAPI document as loaded.
    pub spec: Vec<u8>,
    /// The ineligible list used, if any (APISnoop's JSON or Kubernetes' YAML).
    pub ineligible: Option<String>,
    /// The pending eligible list used, if any (YAML).
    pub pending: Option<String>,
    /// The release's conformance tests; `None` keeps those already stored for the release.
    pub conformance: Option<Vec<ConformanceTestRecord>>,
    /// The endpoints, in catalog order (index = the mapper's index).
    pub endpoints: Vec<EndpointRecord>,
    /// A refresh of a release stored before (a live cluster's catalog, which grows as CRDs and
    /// aggregated APIs are added): replaces the stored document when its endpoints keep their
    /// positions, and adds the new ones after them. Otherwise another document under a stored
    /// label is a [`ReleaseConflict`](super::Error::ReleaseConflict).
    pub refresh: bool,
}

/// A release as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRelease {
    /// Its id.
    pub id: ReleaseId,
    /// Its label.
    pub label: String,
    /// The OpenAPI document.
    pub spec: Vec<u8>,
    /// The ineligible list used, if any (APISnoop's JSON or Kubernetes' YAML).
    pub ineligible: Option<String>,
    /// The pending eligible list used, if any (YAML).
    pub pending: Option<String>,
    /// Conformance tests stored for the release.
    pub conformance_tests: u64,
}

/// A full purpose from the side channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeUpsert {
    /// The fingerprint.
    pub fingerprint: u64,
    /// The program identity.
    pub identity: Identity,
    /// The test, if any.
    pub test: Option<TestInfo>,
    /// Every frame, innermost first.
    pub frames: Vec<Frame>,
    /// The tracing span, if any.
    pub span: Option<String>,
    /// When the program first saw this purpose.
    pub seen_at: Option<String>,
    /// The record's JSON line when it has module addresses instead of frames: kept until
    /// `symbolize` names them, the purpose incomplete meanwhile.
    pub unresolved: Option<String>,
}

/// How [`Store::remap_blocking`](super::Store::remap_blocking) maps a stored request again:
/// (verb, requestURI) → the endpoint's index in the release, or `None` if still unmapped.
pub struct RemapFn(Box<MapRequest>);

/// (verb, requestURI) → the endpoint's index.
type MapRequest = dyn Fn(&str, &str) -> Option<u32> + Send;

impl RemapFn {
    /// Wraps a function of (verb, requestURI).
    pub fn new(map: impl Fn(&str, &str) -> Option<u32> + Send + 'static) -> RemapFn {
        RemapFn(Box::new(map))
    }

    /// The endpoint index of a request, if it maps.
    pub fn map(&self, verb: &str, request_uri: &str) -> Option<u32> {
        (self.0)(verb, request_uri)
    }
}

impl std::fmt::Debug for RemapFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemapFn")
    }
}

/// What a remap changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Remapped {
    /// Requests stored as unmapped that now map to an endpoint.
    pub remapped: u64,
    /// Requests still unmapped.
    pub still_unmapped: u64,
}

/// Whether a function is kube-rs's rather than the application's: purposes name the
/// application's own lines and functions, the innermost frames outside kube-rs.
pub(crate) fn is_library(function: &str) -> bool {
    const LIB: [&str; 5] = [
        "kube_client::",
        "kube::",
        "kube_runtime::",
        "kube_core::",
        "<kube_client::",
    ];
    LIB.iter().any(|l| function.starts_with(l))
}
