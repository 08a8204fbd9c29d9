//! audit.k8s.io/v1 events as kube-apiserver's audit filter writes them at the Metadata level.
//!
//! The rules reproduced here are kube-apiserver's (`k8s.io/apiserver/pkg/audit/request.go`,
//! `pkg/endpoints/filters/audit*.go`): a client's `Audit-ID` header becomes the `auditID`
//! unchanged, else a fresh UUIDv4 is minted; the user agent is cut at 1024 bytes and
//! `...TRUNCATED` appended; timestamps are microsecond RFC 3339 in UTC; `objectRef` is set for
//! resource requests only; `responseStatus` is absent at `RequestReceived`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::request_info::RequestInfo;

/// kube-apiserver keeps this many bytes of a user agent in an audit event.
pub const MAX_USER_AGENT_LENGTH: usize = 1024;
/// What kube-apiserver appends to a user agent it cut.
pub const USER_AGENT_TRUNCATE_SUFFIX: &str = "...TRUNCATED";

/// The stage of a request an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Emitted as soon as the request is received, before it is handled.
    RequestReceived,
    /// Emitted when the response headers are sent, for long-running requests (watch).
    ResponseStarted,
    /// Emitted when the response body is complete.
    ResponseComplete,
}

/// The authenticated user, as `authentication.k8s.io/v1` `UserInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name, e.g. `kubernetes-admin` or `system:serviceaccount:shop:controller`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// The user's UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The user's groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The object a resource request is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// The resource, e.g. `pods`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// The namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The API group, absent for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    /// The API version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The subresource.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// The response's `metav1.Status` as a Metadata-level event carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    /// Always empty list metadata.
    pub metadata: BTreeMap<String, String>,
    /// `Failure` for errors, absent for success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The error message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The machine-readable reason, e.g. `NotFound`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The HTTP status code.
    pub code: u16,
}

/// One audit.k8s.io/v1 `Event`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `Event`.
    pub kind: String,
    /// `audit.k8s.io/v1`.
    pub api_version: String,
    /// `Metadata`.
    pub level: String,
    /// The request's audit ID, shared by all its stages.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// The stage this event records.
    pub stage: Stage,
    /// The request URI: path and query as the client sent them.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// The Kubernetes verb, or the lowercase method for non-resource requests.
    pub verb: String,
    /// The authenticated user.
    pub user: UserInfo,
    /// The client's addresses: forwarded-for entries, then the peer.
    #[serde(rename = "sourceIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    /// The user agent, cut at 1024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The object of a resource request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference>,
    /// The response status, from `ResponseStarted` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    /// When the request was received.
    pub request_received_timestamp: String,
    /// When this stage was reached.
    pub stage_timestamp: String,
    /// Authorization decision and other annotations, from `ResponseStarted` on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The body of one webhook POST: audit.k8s.io/v1 `EventList`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    /// `EventList`.
    pub kind: String,
    /// `audit.k8s.io/v1`.
    pub api_version: String,
    /// Always empty list metadata.
    pub metadata: BTreeMap<String, String>,
    /// The events of the batch.
    pub items: Vec<Event>,
}

impl EventList {
    /// Wraps a batch of events.
    pub fn new(items: Vec<Event>) -> Self {
        Self {
            kind: "EventList".to_owned(),
            api_version: "audit.k8s.io/v1".to_owned(),
            metadata: BTreeMap::new(),
            items,
        }
    }
}

/// What the audit filter knows about a request when it arrives.
#[derive(Clone, Debug)]
pub struct RequestAudit {
    /// The audit ID.
    pub audit_id: String,
    /// Path and query as received.
    pub request_uri: String,
    /// The resolved request.
    pub info: RequestInfo,
    /// The authenticated user.
    pub user: UserInfo,
    /// Source addresses.
    pub source_ips: Vec<String>,
    /// The truncated user agent.
    pub user_agent: Option<String>,
    /// When it was received (microsecond RFC 3339).
    pub received: String,
}

impl RequestAudit {
    /// The event for `stage` reached at `now`; `status` is the response status from
    /// `ResponseStarted` on.
    pub fn event(&self, stage: Stage, now: &str, status: Option<ResponseStatus>) -> Event {
        let object_ref = self.info.is_resource_request.then(|| ObjectReference {
            resource: self.info.resource.clone(),
            namespace: self.info.namespace.clone(),
            name: self.info.name.clone(),
            api_group: self.info.api_group.clone(),
            api_version: self.info.api_version.clone(),
            subresource: self.info.subresource.clone(),
        });
        let mut annotations = BTreeMap::new();
        if stage != Stage::RequestReceived {
            // Authorization runs after the audit filter records RequestReceived, so only
            // later stages carry its decision.
            annotations.insert(
                "authorization.k8s.io/decision".to_owned(),
                "allow".to_owned(),
            );
            annotations.insert(
                "authorization.k8s.io/reason".to_owned(),
                "the stand-in API server allows every request".to_owned(),
            );
        }
        Event {
            kind: "Event".to_owned(),
            api_version: "audit.k8s.io/v1".to_owned(),
            level: "Metadata".to_owned(),
            audit_id: self.audit_id.clone(),
            stage,
            request_uri: self.request_uri.clone(),
            verb: self.info.verb.clone(),
            user: self.user.clone(),
            source_ips: self.source_ips.clone(),
            user_agent: self.user_agent.clone(),
            object_ref,
            response_status: if stage == Stage::RequestReceived {
                None
            } else {
                status
            },
            request_received_timestamp: self.received.clone(),
            stage_timestamp: now.to_owned(),
            annotations,
        }
    }
}

/// The audit ID for a request: the client's `Audit-ID` header unchanged when present and not
/// empty, else `fresh` (kube-apiserver mints a UUIDv4).
pub fn audit_id(header: Option<&[u8]>, fresh: impl FnOnce() -> String) -> String {
    match header {
        Some(value) if !value.is_empty() => String::from_utf8_lossy(value).into_owned(),
        _ => fresh(),
    }
}

/// A random (version 4) UUID in its canonical lowercase form, from 16 random bytes.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The user agent as the audit event records it: absent when empty, cut at 1024 bytes with
/// `...TRUNCATED` appended when longer. Cut on bytes, as Go slices a string.
pub fn truncate_user_agent(header: Option<&[u8]>) -> Option<String> {
    let value = header.filter(|v| !v.is_empty())?;
    if value.len() > MAX_USER_AGENT_LENGTH {
        let mut cut = String::from_utf8_lossy(&value[..MAX_USER_AGENT_LENGTH]).into_owned();
        cut.push_str(USER_AGENT_TRUNCATE_SUFFIX);
        Some(cut)
    } else {
        Some(String::from_utf8_lossy(value).into_owned())
    }
}

/// The client's addresses as kube-apiserver lists them: `X-Forwarded-For` entries, else
/// `X-Real-Ip`, then the peer address unless it is already last.
pub fn source_ips(
    forwarded_for: Option<&str>,
    real_ip: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Vec<String> {
    let mut ips: Vec<String> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string())
        .collect();
    if ips.is_empty()
        && let Some(ip) = real_ip.and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
    {
        ips.push(ip.to_string());
    }
    if let Some(peer) = peer {
        let peer = peer.to_string();
        if ips.last() != Some(&peer) {
            ips.push(peer);
        }
    }
    ips
}

/// A timestamp as `metav1.MicroTime` writes it: RFC 3339 in UTC with six fraction digits.
pub fn micro_time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standin::request_info::resolve;

    #[test]
    fn client_audit_id_is_adopted_unchanged() {
        let fresh = || "fresh".to_owned();
        let cases: &[(Option<&[u8]>, &str)] = &[
            (
                Some(b"9c0e4b7d-12aa-83f1-95c4-1d2e3f405162"),
                "9c0e4b7d-12aa-83f1-95c4-1d2e3f405162",
            ),
            (Some(b"not-a-uuid-at-all"), "not-a-uuid-at-all"),
            (Some(b""), "fresh"),
            (None, "fresh"),
        ];
        for &(header, want) in cases {
            assert_eq!(audit_id(header, fresh), want, "{header:?}");
        }
    }

    #[test]
    fn uuid_v4_has_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = uuid_v4([0; 16]);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn user_agent_is_cut_at_1024_bytes() {
        let exact = "a".repeat(1024);
        let long = "b".repeat(1500);
        let cases: &[(Option<&[u8]>, Option<String>)] = &[
            (None, None),
            (Some(b""), None),
            (
                Some(b"kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234"),
                Some("kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234".to_owned()),
            ),
            (Some(exact.as_bytes()), Some(exact.clone())),
            (
                Some(long.as_bytes()),
                Some(format!("{}...TRUNCATED", "b".repeat(1024))),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(&truncate_user_agent(*header), want);
        }
    }

    #[test]
    fn source_ips_follow_forwarded_headers_then_peer() {
        let peer = Some("127.0.0.1".parse().unwrap());
        let cases: &[(Option<&str>, Option<&str>, &[&str])] = &[
            (None, None, &["127.0.0.1"]),
            (
                Some("10.0.0.1, 10.0.0.2"),
                None,
                &["10.0.0.1", "10.0.0.2", "127.0.0.1"],
            ),
            (
                Some("10.0.0.1, 127.0.0.1"),
                None,
                &["10.0.0.1", "127.0.0.1"],
            ),
            (None, Some("10.0.0.9"), &["10.0.0.9", "127.0.0.1"]),
            (Some("garbage"), None, &["127.0.0.1"]),
        ];
        for &(xff, real, want) in cases {
            assert_eq!(source_ips(xff, real, peer), want, "{xff:?} {real:?}");
        }
    }

    #[test]
    fn micro_time_has_six_fraction_digits_in_utc() {
        let ts: jiff::Timestamp = "2026-11-20T10:03:11.402Z".parse().unwrap();
        assert_eq!(micro_time(ts), "2026-11-20T10:03:11.402000Z");
        let ts: jiff::Timestamp = "2026-11-20T10:03:11Z".parse().unwrap();
        assert_eq!(micro_time(ts), "2026-11-20T10:03:11.000000Z");
    }

    #[test]
    fn events_carry_what_each_stage_knows() {
        let audit = RequestAudit {
            audit_id: "id-1".to_owned(),
            request_uri: "/apis/apps/v1/namespaces/shop/deployments/web/scale".to_owned(),
            info: resolve(
                "PATCH",
                "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                &[],
            ),
            user: UserInfo {
                username: "kubernetes-admin".to_owned(),
                ..UserInfo::default()
            },
            source_ips: vec!["127.0.0.1".to_owned()],
            user_agent: Some("shop/v1".to_owned()),
            received: "2026-11-20T10:03:11.402000Z".to_owned(),
        };
        let ok = ResponseStatus {
            code: 200,
            ..ResponseStatus::default()
        };
        let received = audit.event(
            Stage::RequestReceived,
            "2026-11-20T10:03:11.402000Z",
            Some(ok.clone()),
        );
        assert_eq!(received.response_status, None);
        assert!(received.annotations.is_empty());
        let complete = audit.event(
            Stage::ResponseComplete,
            "2026-11-20T10:03:11.403000Z",
            Some(ok),
        );
        let json = serde_json::to_value(&complete).unwrap();
        assert_eq!(json["kind"], "Event");
        assert_eq!(json["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(json["level"], "Metadata");
        assert_eq!(json["auditID"], "id-1");
        assert_eq!(json["stage"], "ResponseComplete");
        assert_eq!(json["verb"], "patch");
        assert_eq!(
            json["requestURI"],
            "/apis/apps/v1/namespaces/shop/deployments/web/scale"
        );
        assert_eq!(json["sourceIPs"][0], "127.0.0.1");
        assert_eq!(json["userAgent"], "shop/v1");
        assert_eq!(
            json["objectRef"],
            serde_json::json!({"resource": "deployments", "namespace": "shop", "name": "web",
                               "apiGroup": "apps", "apiVersion": "v1", "subresource": "scale"})
        );
        assert_eq!(
            json["responseStatus"],
            serde_json::json!({"metadata": {}, "code": 200})
        );
        assert_eq!(
            json["annotations"]["authorization.k8s.io/decision"],
            "allow"
        );
        let non_resource = RequestAudit {
            info: resolve("GET", "/version", &[]),
            ..audit
        };
        assert_eq!(
            non_resource
                .event(Stage::ResponseComplete, "t", None)
                .object_ref,
            None
        );
    }
}
