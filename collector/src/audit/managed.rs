//! Audit events as managed control planes export them, read into [`Event`]: GKE's Cloud
//! Logging `LogEntry` (an `AuditLog` in `protoPayload`), EKS's CloudWatch Logs exports (the
//! event as a JSON string in each log event's `message`) and S3 export lines (a timestamp, a
//! space, the event).
//!
//! GKE does not write the apiserver's event: it writes a Cloud Audit Log of it, so the event
//! is rebuilt (KEP.md "Managed control planes" lists what is lost). EKS keeps the event
//! whole; only its envelope is taken off.

use std::borrow::Cow;

use serde::Deserialize;

use super::{
    Annotations, AuditError, Event, ObjectRef, Stage, Status, Text, UserInfo, parse_event, scan,
    timestamp,
};

/// A Cloud Logging `LogEntry`, the fields a Kubernetes audit entry uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogEntry<'a> {
    #[serde(default, borrow)]
    insert_id: Option<Text<'a>>,
    /// When the apiserver logged the request.
    #[serde(default, deserialize_with = "timestamp::optional")]
    timestamp: Option<jiff::Timestamp>,
    /// When Cloud Logging received the entry: the receive time when `timestamp` is absent.
    #[serde(default, deserialize_with = "timestamp::optional")]
    receive_timestamp: Option<jiff::Timestamp>,
    proto_payload: Option<AuditLog<'a>>,
    /// GKE writes the apiserver's audit annotations as entry labels.
    #[serde(default, borrow)]
    labels: Labels<'a>,
}

#[derive(Deserialize, Default)]
struct Labels<'a> {
    #[serde(rename = "authorization.k8s.io/decision", default, borrow)]
    decision: Option<Text<'a>>,
    #[serde(rename = "k8s.io/deprecated", default, borrow)]
    deprecated: Option<Text<'a>>,
    #[serde(rename = "k8s.io/removed-release", default, borrow)]
    removed_release: Option<Text<'a>>,
}

/// `google.cloud.audit.AuditLog`, the fields we read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditLog<'a> {
    #[serde(default, borrow)]
    service_name: Option<Text<'a>>,
    #[serde(borrow)]
    method_name: Option<Text<'a>>,
    #[serde(default, borrow)]
    resource_name: Option<Text<'a>>,
    #[serde(default, borrow)]
    authentication_info: Option<AuthenticationInfo<'a>>,
    #[serde(default, borrow)]
    request_metadata: Option<RequestMetadata<'a>>,
    #[serde(default, borrow)]
    status: Option<RpcStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthenticationInfo<'a> {
    #[serde(default, borrow)]
    principal_email: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestMetadata<'a> {
    #[serde(default, borrow)]
    caller_ip: Option<Text<'a>>,
    #[serde(default, borrow)]
    caller_supplied_user_agent: Option<Text<'a>>,
}

/// `google.rpc.Status`: a gRPC code, 0 (or absent: `{}`) for success.
#[derive(Deserialize)]
struct RpcStatus<'a> {
    #[serde(default)]
    code: Option<i32>,
    #[serde(default, borrow)]
    message: Option<Text<'a>>,
}

/// The HTTP status of a gRPC code, as `google.rpc.Code` documents each code's HTTP mapping.
fn http_status(grpc: i32) -> i32 {
    match grpc {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

/// Whether a JSON object (a line or an array item) looks like a Cloud Logging entry: it has a
/// `protoPayload` key. A cheap byte search, asked only of what did not parse as an event.
pub(crate) fn is_log_entry(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"\"protoPayload\"").is_some()
}

/// Parses one GKE Cloud Logging entry of a Kubernetes API request into the event it records.
///
/// `methodName` (`io.k8s.core.v1.pods.create`) gives the verb, its last segment;
/// `resourceName` (`core/v1/namespaces/default/pods/foo`) the URI and objectRef; `insertId`
/// the auditID. Entries of other services (`container.googleapis.com`: cluster operations, not
/// API requests) are rejected.
pub fn parse_gke_entry(bytes: &[u8]) -> Result<Event, AuditError> {
    let entry: LogEntry<'_> =
        serde_json::from_slice(bytes).map_err(|e| AuditError::from_json(bytes, &e))?;
    let invalid = |message: String| AuditError::Invalid { offset: 0, message };
    let Some(log) = entry.proto_payload else {
        return Err(invalid("log entry without `protoPayload`".into()));
    };
    if let Some(service) = log.service_name.as_deref()
        && service != "k8s.io"
    {
        return Err(invalid(format!(
            "log entry of service `{service}`, not a Kubernetes API request (`k8s.io`)"
        )));
    }
    let method = log
        .method_name
        .ok_or_else(|| invalid("log entry without `protoPayload.methodName`".into()))?;
    let verb = match method.rsplit_once('.') {
        Some((_, verb)) if !verb.is_empty() => verb.to_owned(),
        _ => return Err(invalid(format!("`methodName` {method:?} has no verb"))),
    };
    let insert_id = entry
        .insert_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("log entry without `insertId`".into()))?;
    let resource_name = log.resource_name.as_deref().unwrap_or_default();
    let (request_uri, object_ref) = uri_of(resource_name);
    let metadata = log.request_metadata;
    let status = log.status.map(|s| {
        let code = s.code.unwrap_or(0);
        Status {
            code: Some(http_status(code)),
            status: Some(if code == 0 { "Success" } else { "Failure" }.into()),
            reason: None,
            message: s.message.map(Text::into_owned),
        }
    });
    let received = entry.timestamp.or(entry.receive_timestamp);
    Ok(Event {
        api_version: None,
        level: None,
        audit_id: insert_id.into_owned(),
        stage: Stage::ResponseComplete,
        request_uri,
        verb,
        user: UserInfo {
            username: log
                .authentication_info
                .and_then(|a| a.principal_email)
                .map(Text::into_owned)
                .unwrap_or_default(),
            uid: None,
            groups: Vec::new(),
        },
        impersonated_user: None,
        source_ips: metadata
            .as_ref()
            .and_then(|m| m.caller_ip.clone())
            .map(Text::into_owned)
            .into_iter()
            .collect(),
        user_agent: metadata
            .and_then(|m| m.caller_supplied_user_agent)
            .map(Text::into_owned),
        object_ref,
        response_status: status,
        request_received_timestamp: received,
        stage_timestamp: None,
        annotations: Annotations {
            authorization_decision: entry.labels.decision.map(Text::into_owned),
            deprecated: entry.labels.deprecated.map(Text::into_owned),
            removed_release: entry.labels.removed_release.map(Text::into_owned),
        },
    })
}

/// The request URI and objectRef of a GKE `resourceName`: `core/v1/…` is `/api/v1/…`,
/// `GROUP/VERSION/…` is `/apis/GROUP/VERSION/…`; a name whose second segment is not a version
/// is a non-resource path (`/` + the name), without an objectRef.
fn uri_of(resource_name: &str) -> (String, Option<ObjectRef>) {
    let name = resource_name.trim_start_matches('/');
    let mut parts = name.splitn(3, '/');
    let (group, version, rest) = (parts.next(), parts.next(), parts.next());
    let versioned = version
        .is_some_and(|v| v.len() > 1 && v.starts_with('v') && v.as_bytes()[1].is_ascii_digit());
    let (Some(group), Some(version), true) = (group, version, versioned) else {
        return (format!("/{name}"), None);
    };
    let rest = rest.unwrap_or_default();
    let uri = if group == "core" {
        format!("/api/{version}/{rest}")
    } else {
        format!("/apis/{group}/{version}/{rest}")
    };
    let uri = uri.trim_end_matches('/').to_owned();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let owned = |s: &&str| (*s).to_owned();
    // namespaces/NS/RESOURCE[/NAME[/SUB]], else RESOURCE[/NAME[/SUB]] (`namespaces/NS` itself
    // is the namespace object).
    let (namespace, tail) = match segments.as_slice() {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some((*ns).to_owned()), tail),
        all => (None, all),
    };
    let object = ObjectRef {
        resource: tail.first().map(owned),
        namespace,
        name: tail.get(1).map(owned),
        uid: None,
        api_group: (group != "core").then(|| group.to_owned()),
        api_version: Some(version.to_owned()),
        resource_version: None,
        subresource: tail.get(2).map(owned),
    };
    (uri, Some(object))
}

/// Length of an S3 export line's prefix (`2024-01-01T00:00:00.000Z `), when the line has one:
/// an RFC 3339 timestamp and one space before the event.
pub(crate) fn export_prefix(line: &[u8]) -> Option<usize> {
    let space = memchr::memchr(b' ', &line[..line.len().min(40)])?;
    let stamp = std::str::from_utf8(&line[..space]).ok()?;
    let looks = stamp.len() >= 20 && stamp.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    (looks && timestamp::parse(stamp).is_ok() && line.get(space + 1) == Some(&b'{'))
        .then_some(space + 1)
}

/// A CloudWatch Logs log event (`filter-log-events` and `get-log-events` write `events` of
/// these); its `message` is the apiserver's event as one JSON string.
#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(default, borrow)]
    message: Option<Text<'a>>,
}

/// The events of a CloudWatch Logs export (`{"events":[…], …}`): each `events` item's
/// `message` parsed as an audit event, an item that is not one reported with its offset.
pub(crate) fn parse_cloudwatch(
    body: &[u8],
    events_at: usize,
) -> Result<(Vec<Event>, Vec<AuditError>), AuditError> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for item in scan::ArrayItems::new(body, events_at)? {
        let (at, bytes) = item?;
        let message = serde_json::from_slice::<LogEvent<'_>>(bytes)
            .map_err(|e| AuditError::from_json(bytes, &e).shifted(at))
            .and_then(|e| {
                e.message.ok_or(AuditError::Invalid {
                    offset: at,
                    message: "CloudWatch log event without `message`".into(),
                })
            });
        match message {
            // The message's own offsets point into the decoded string: report the item's.
            Ok(m) => match parse_event(m.as_bytes()) {
                Ok(e) => events.push(e),
                Err(e) => errors.push(AuditError::Invalid {
                    offset: at,
                    message: format!("`message` is not an audit event: {}", message_of(e)),
                }),
            },
            Err(e) => errors.push(e),
        }
    }
    Ok((events, errors))
}

fn message_of(e: AuditError) -> Cow<'static, str> {
    match e {
        AuditError::Invalid { message, .. } => message.into(),
        AuditError::Empty => "empty".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GKE Data Access entry as `gcloud logging read --format=json` prints one (compacted).
    pub(crate) const GKE_CREATE: &str = r#"{"insertId":"8b0b3b2e-5a8f-4d8e-9f0a-3c1d2e4f5a6b","labels":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding"},"logName":"projects/demo-project/logs/cloudaudit.googleapis.com%2Factivity","operation":{"first":true,"id":"8b0b3b2e-5a8f-4d8e-9f0a-3c1d2e4f5a6b","last":true,"producer":"k8s.io"},"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"jane@example.com"},"authorizationInfo":[{"granted":true,"permission":"io.k8s.core.v1.configmaps.create","resource":"core/v1/namespaces/default/configmaps/settings"}],"methodName":"io.k8s.core.v1.configmaps.create","requestMetadata":{"callerIp":"203.0.113.9","callerSuppliedUserAgent":"kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234"},"resourceName":"core/v1/namespaces/default/configmaps/settings","serviceName":"k8s.io","status":{}},"receiveTimestamp":"2026-11-20T10:00:01.456789Z","resource":{"labels":{"cluster_name":"demo","location":"europe-west1","project_id":"demo-project"},"type":"k8s_cluster"},"timestamp":"2026-11-20T10:00:01.123456Z"}"#;

    #[test]
    fn a_gke_entry_becomes_its_event() {
        let e = parse_gke_entry(GKE_CREATE.as_bytes()).unwrap();
        assert_eq!(e.audit_id, "8b0b3b2e-5a8f-4d8e-9f0a-3c1d2e4f5a6b");
        assert_eq!(e.verb, "create");
        assert_eq!(
            e.request_uri,
            "/api/v1/namespaces/default/configmaps/settings"
        );
        assert_eq!(e.stage, Stage::ResponseComplete);
        assert_eq!(e.user.username, "jane@example.com");
        assert_eq!(e.source_ips, ["203.0.113.9"]);
        assert_eq!(
            e.user_agent.as_deref(),
            Some("kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234")
        );
        assert_eq!(e.status_code(), Some(200));
        assert_eq!(e.received_us(), Some(1_795_168_801_123_456));
        assert_eq!(
            e.annotations.authorization_decision.as_deref(),
            Some("allow")
        );
        let o = e.object_ref.unwrap();
        assert_eq!(
            (
                o.resource.as_deref(),
                o.namespace.as_deref(),
                o.name.as_deref()
            ),
            (Some("configmaps"), Some("default"), Some("settings"))
        );
        assert_eq!((o.api_group, o.api_version.as_deref()), (None, Some("v1")));
    }

    #[test]
    fn gke_labels_carry_the_deprecation_to_the_record() {
        let line = GKE_CREATE.replace(
            r#""labels":{"#,
            r#""labels":{"k8s.io/deprecated":"true","k8s.io/removed-release":"1.25","#,
        );
        let e = parse_gke_entry(line.as_bytes()).unwrap();
        assert_eq!(e.annotations.deprecated.as_deref(), Some("true"));
        let r = crate::ingest::Converter::new(None).record(e);
        assert_eq!(r.deprecation(), Some("1.25"));
        let plain = parse_gke_entry(GKE_CREATE.as_bytes()).unwrap();
        assert_eq!(
            crate::ingest::Converter::new(None)
                .record(plain)
                .deprecation(),
            None
        );
    }

    /// A resource name, the URI rebuilt from it, and the object reference it names.
    type UriCase<'a> = (
        &'a str,
        &'a str,
        Option<(&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>)>,
    );

    #[test]
    fn resource_names_rebuild_uris() {
        let cases: &[UriCase] = &[
            (
                "core/v1/namespaces/default/pods",
                "/api/v1/namespaces/default/pods",
                Some(("pods", Some("default"), None, None)),
            ),
            (
                "core/v1/namespaces/kube-system/pods/web-0/status",
                "/api/v1/namespaces/kube-system/pods/web-0/status",
                Some(("pods", Some("kube-system"), Some("web-0"), Some("status"))),
            ),
            (
                "core/v1/namespaces/team-a",
                "/api/v1/namespaces/team-a",
                Some(("namespaces", None, Some("team-a"), None)),
            ),
            (
                "core/v1/nodes/gke-node-1",
                "/api/v1/nodes/gke-node-1",
                Some(("nodes", None, Some("gke-node-1"), None)),
            ),
            (
                "apps/v1/namespaces/shop/deployments/web",
                "/apis/apps/v1/namespaces/shop/deployments/web",
                Some(("deployments", Some("shop"), Some("web"), None)),
            ),
            (
                "flowcontrol.apiserver.k8s.io/v1beta3/flowschemas/exempt",
                "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas/exempt",
                Some(("flowschemas", None, Some("exempt"), None)),
            ),
            ("readyz", "/readyz", None),
            ("version/", "/version/", None),
        ];
        for (name, uri, object) in cases {
            let (got, o) = uri_of(name);
            assert_eq!(&got, uri, "{name}");
            let o = o.map(|o| (o.resource.unwrap(), o.namespace, o.name, o.subresource));
            let want = object.map(|(r, ns, n, s)| {
                (
                    r.to_owned(),
                    ns.map(str::to_owned),
                    n.map(str::to_owned),
                    s.map(str::to_owned),
                )
            });
            assert_eq!(o, want, "{name}");
        }
    }

    #[test]
    fn grpc_codes_become_http_statuses() {
        let denied = GKE_CREATE.replace(
            r#""status":{}"#,
            r#""status":{"code":7,"message":"PERMISSION_DENIED"}"#,
        );
        let e = parse_gke_entry(denied.as_bytes()).unwrap();
        assert_eq!(e.status_code(), Some(403));
        let missing = GKE_CREATE.replace(r#""status":{}"#, r#""status":{"code":5}"#);
        assert_eq!(
            parse_gke_entry(missing.as_bytes()).unwrap().status_code(),
            Some(404)
        );
    }

    #[test]
    fn entries_that_are_not_api_requests_are_rejected_with_the_reason() {
        let cluster_op = GKE_CREATE.replace(
            r#""serviceName":"k8s.io""#,
            r#""serviceName":"container.googleapis.com""#,
        );
        let no_method =
            GKE_CREATE.replace(r#""methodName":"io.k8s.core.v1.configmaps.create","#, "");
        let no_insert =
            GKE_CREATE.replace(r#""insertId":"8b0b3b2e-5a8f-4d8e-9f0a-3c1d2e4f5a6b","#, "");
        for (input, reason) in [
            (cluster_op.as_str(), "service `container.googleapis.com`"),
            (no_method.as_str(), "without `protoPayload.methodName`"),
            (no_insert.as_str(), "without `insertId`"),
            (r#"{"protoPayload":{"methodName":3}}"#, "invalid type"),
        ] {
            let err = parse_gke_entry(input.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn export_prefixes_are_recognised() {
        assert_eq!(
            export_prefix(br#"2024-01-01T00:00:00.000Z {"kind":"Event"}"#),
            Some(25)
        );
        assert_eq!(export_prefix(br#"2024-01-01T00:00:00Z {"a":1}"#), Some(21));
        assert_eq!(export_prefix(br#"{"kind":"Event"}"#), None);
        assert_eq!(export_prefix(b"2024-01-01T00:00:00.000Z not json"), None);
        assert_eq!(export_prefix(b"2024-13-45T00:00:00.000Z {}"), None);
    }
}
