//! What the store takes in and hands back: plain owned data, no SQL.

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// A program identity as parsed from a user agent or a side-channel record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The identity text as sent; the key of `identities`.
    pub text: String,
    /// Program name.
    pub name: Option<String>,
    /// Program version.
    pub version: Option<String>,
    /// Operating system.
    pub os: Option<String>,
    /// CPU architecture.
    pub arch: Option<String>,
    /// Source (`git`, `kubernetes`, ...).
    pub source: Option<String>,
    /// Source commit.
    pub commit: Option<String>,
    /// Who built it.
    pub built_by: Option<String>,
    /// When it was built.
    pub built_at: Option<String>,
}

/// A test name with what the e2e conventions say about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRecord {
    /// The test name; the key of `tests`.
    pub name: String,
    /// `sig-node` from `[sig-node]`.
    pub sig: Option<String>,
    /// `[Conformance]` present.
    pub conformance: bool,
    /// Other `[...]` tags as a JSON array.
    pub tags_json: String,
}

/// A line of code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameRecord {
    /// Function path.
    pub function: String,
    /// File, relative to its crate.
    pub file: String,
    /// 1-based line.
    pub line: i64,
}

/// What a user agent said about the program: parsed once per distinct user agent and shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRecord {
    /// The program identity (shared by every agent of the program).
    pub identity: Arc<IdentityRecord>,
    /// The test, if the user agent names one (shared like the identity).
    pub test: Option<Arc<TestRecord>>,
    /// The purpose fingerprint in the user agent.
    pub fingerprint: Option<u64>,
    /// The frames the user agent carried, innermost first (possibly cut).
    pub frames: Vec<FrameRecord>,
}

/// One audit event, mapped and parsed, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// `auditID`.
    pub audit_id: String,
    /// `requestReceivedTimestamp`, unix microseconds.
    pub received_us: i64,
    /// The event's stage.
    pub stage: StageRank,
    /// `stageTimestamp`, unix microseconds.
    pub stage_us: Option<i64>,
    /// `verb`.
    pub verb: String,
    /// `requestURI`.
    pub request_uri: String,
    /// The endpoint's index in the release's catalog, when mapped to one.
    pub endpoint_idx: Option<u32>,
    /// `endpoint`, `non_resource` or `unmapped:<reason>`.
    pub mapping: String,
    /// `objectRef.namespace`.
    pub namespace: Option<String>,
    /// `objectRef.resource`.
    pub resource: Option<String>,
    /// `objectRef.subresource`.
    pub subresource: Option<String>,
    /// `objectRef.name`.
    pub name: Option<String>,
    /// `objectRef.apiGroup`.
    pub api_group: Option<String>,
    /// `objectRef.apiVersion`.
    pub api_version: Option<String>,
    /// `user` (shared by the requests of one user).
    pub user: Option<Arc<UserRecord>>,
    /// `impersonatedUser`.
    pub impersonated_user: Option<Arc<UserRecord>>,
    /// `sourceIPs`, comma-separated.
    pub source_ips: Option<String>,
    /// `responseStatus.code`.
    pub status_code: Option<i64>,
    /// The parsed user agent (shared by every event with the same user agent).
    pub agent: Option<Arc<AgentRecord>>,
    /// The purpose fingerprint: the user agent's, else the one in a whakapapa Audit-ID.
    pub fingerprint: Option<u64>,
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

/// One input batch: stored in one transaction, wholly or not at all.
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
}

/// A catalog to store as a release.
#[derive(Debug, Clone)]
pub struct ReleaseRecord {
    /// Release label (`1.36.0`).
    pub label: String,
    /// The OpenAPI document as loaded.
    pub spec: Vec<u8>,
    /// The ineligible list used, if any (JSON).
    pub ineligible: Option<String>,
    /// The endpoints, in catalog order (index = the mapper's index).
    pub endpoints: Vec<EndpointRecord>,
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
    /// The ineligible list used, if any (JSON).
    pub ineligible: Option<String>,
}

/// A full purpose from the side channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeUpsert {
    /// The fingerprint.
    pub fingerprint: u64,
    /// The program identity.
    pub identity: IdentityRecord,
    /// The test, if any.
    pub test: Option<TestRecord>,
    /// Every frame, innermost first.
    pub frames: Vec<FrameRecord>,
    /// The tracing span, if any.
    pub span: Option<String>,
    /// When the program first saw this purpose.
    pub seen_at: Option<String>,
}
